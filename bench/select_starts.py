"""Which start should `jaxmix.select` use by default? BIC tables on public data against R's mclust.

    .venv/bin/python bench/select_starts.py [--data faithful geyser ...] [--save]

For each data set: mclust's `mclustBIC(x, G = 1:9)` (its fourteen models, or E
and V for one feature) in a fresh Rscript process, and `jaxmix.select` over the
same grid in float64 with each start configuration:

- kmeans x 10: k-means on the raw columns, 10 restarts (the default before this bench);
- hc x 1: mclust's start alone (model-based agglomeration on SVD-scaled data);
- hc x 10: mclust's start for restart 0, k-means on standardised columns for restarts 1-9.

Per data set and configuration: the model and k each picks, the BIC difference of
the picks (jaxmix - mclust; negative: jaxmix found a better fit), and how many
cells (model, k) are worse than mclust's by more than 1 BIC unit. Data: R's
`datasets` (faithful, iris, USArrests, trees), MASS (geyser), mclust (diabetes,
banknote, thyroid) and scikit-learn's wine, all public and read from the
installed packages (no network). Needs R with mclust and MASS
(`apt-get install r-base-core r-cran-mclust`).
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from mclust_models import run_mclust  # noqa: E402

R_DATA = {
    "faithful": "datasets::faithful",
    "iris": "datasets::iris[, 1:4]",
    "geyser": "MASS::geyser",
    "USArrests": "datasets::USArrests",
    "trees": "datasets::trees",
    "diabetes": "mclust::diabetes[, 2:4]",
    "banknote": "mclust::banknote[, 2:7]",
    "thyroid": "mclust::thyroid[, 2:6]",
}
CONFIGS = (("kmeans", 10), ("hc", 1), ("hc", 10))


def load(name: str) -> np.ndarray:
    if name == "wine":
        from sklearn.datasets import load_wine

        return load_wine().data.astype(np.float64)
    expr = R_DATA[name]
    code = f"suppressMessages(library(mclust)); write.table(as.matrix({expr}), col.names=FALSE, row.names=FALSE)"
    out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, check=True).stdout
    return np.array([[float(v) for v in line.split()] for line in out.splitlines() if line.strip()])


def run_jaxmix(x: np.ndarray, init: str, n_init: int, progress: bool = False) -> tuple[np.ndarray, list[str], float]:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jaxmix

    t0 = time.perf_counter()
    s = jaxmix.select(
        jax.random.key(0),
        jax.numpy.asarray(x),
        range(1, 10),
        "mclust",
        init=init,
        n_init=n_init,
        tol=1e-8,
        progress=progress,
    )
    return np.asarray(s.bic), list(s.covariance_types), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", default=[*R_DATA, "wine"])
    ap.add_argument("--save", action="store_true")
    ap.add_argument("--progress", action="store_true", help="a line per covariance model on stderr")
    args = ap.parse_args()
    if not shutil.which("Rscript"):
        sys.exit("needs R with mclust (apt-get install r-base-core r-cran-mclust)")
    head = "| data (n x d) | mclust's pick, BIC |"
    rule = "|---|---|"
    for init, n_init in CONFIGS:
        head += f" {init} x {n_init}: pick, BIC - mclust's, cells worse by > 1, s |"
        rule += "---|"
    rows = [head, rule]
    totals = {c: [0, 0] for c in CONFIGS}
    for name in args.data:
        x = load(name)
        peer = run_mclust(x)
        assert peer is not None
        pb = peer["bic"]
        i, j = np.unravel_index(np.nanargmin(pb), pb.shape)
        row = f"| {name} ({x.shape[0]} x {x.shape[1]}) | {peer['models'][j]} {i + 1}, {pb[i, j]:.2f} |"
        for init, n_init in CONFIGS:
            bic, models, seconds = run_jaxmix(x, init, n_init, args.progress)
            cols = [models.index(m) for m in peer["models"]]
            ours = bic[:, cols]
            ok = np.isfinite(pb)
            worse = int(np.sum(ok & ~(ours <= pb + 1.0)))
            totals[(init, n_init)][0] += worse
            totals[(init, n_init)][1] += int(ok.sum())
            a, b = np.unravel_index(np.nanargmin(ours), ours.shape)
            row += (
                f" {peer['models'][b]} {a + 1}, {ours[a, b] - pb[i, j]:+.2f}, {worse}/{int(ok.sum())}, {seconds:.0f} |"
            )
        rows.append(row)
        print(row, flush=True)
    rows.append(
        "| all | |" + "".join(f" cells worse by > 1: {w} of {c} |" for (w, c) in (totals[cfg] for cfg in CONFIGS))
    )
    text = "\n".join(rows)
    print(text)
    if args.save:
        day = datetime.date.today().isoformat()
        out = HERE / "results" / f"{day}-select-starts.md"
        out.write_text("# select's starts against mclust (bench/select_starts.py)\n\n" + text + "\n")
        print(f"saved {out}")


if __name__ == "__main__":
    main()
