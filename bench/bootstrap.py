"""The bootstrap LRT for k vs k + 1: jaxmix.bootstrap_lrt against R's mclustBootstrapLRT, same data.

    .venv/bin/python bench/bootstrap.py [--model EEE] [--max-k 3] [--n-boot 999] [--save]

Old Faithful, one covariance model, tests k = 1 .. max-k against k + 1 with
n-boot replicates each. jaxmix runs in one process twice (first call with its
compiles, then again); mclust in a fresh Rscript process (its time from R's
`system.time`, without R's start-up). Prints the LRTS and p-values of both and
the times. Needs R with mclust for the peer column.
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

R_SCRIPT = """
suppressMessages(library(mclust))
t <- system.time(b <- mclustBootstrapLRT(faithful, modelName = "{model}", maxG = {max_k}, nboot = {n_boot},
                                         verbose = FALSE))
cat(t[["elapsed"]], "\\n")
cat(b$obs, "\\n")
cat(b$p.value, "\\n")
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="EEE")
    ap.add_argument("--max-k", type=int, default=3)
    ap.add_argument("--n-boot", type=int, default=999)
    ap.add_argument("--save", action="store_true")
    args = ap.parse_args()
    import jax

    import jaxmix

    x = jaxmix.datasets.load_faithful()
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        t = jaxmix.bootstrap_lrt(
            jax.random.key(0), x, args.model, max_components=args.max_k, n_boot=args.n_boot, n_init=1
        )
        times.append(time.perf_counter() - t0)
    lines = [
        f"# bootstrap LRT on Old Faithful, {args.model}, k = 1..{args.max_k} vs k + 1, {args.n_boot} replicates",
        "",
        "| test | jaxmix LRTS | jaxmix p | mclust LRTS | mclust p |",
        "|---|---|---|---|---|",
    ]
    peer = None
    if shutil.which("Rscript"):
        code = R_SCRIPT.format(model=args.model, max_k=args.max_k, n_boot=args.n_boot)
        proc = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True)
        if proc.returncode == 0:
            out = proc.stdout.split("\n")
            peer = (float(out[0]), np.array(out[1].split(), float), np.array(out[2].split(), float))
    for i, k in enumerate(t.n_components):
        row = f"| {k} vs {k + 1} | {t.observed[i]:.3f} | {t.p_values[i]:.4g} |"
        row += f" {peer[1][i]:.3f} | {peer[2][i]:.4g} |" if peer is not None else " - | - |"
        lines.append(row)
    lines.append("")
    lines.append(
        f"time: jaxmix {times[0]:.1f} s first call (select, compiles, replicates), {times[1]:.1f} s again "
        f"({t.seconds:.1f} s of it in the replicates)"
        + (f"; mclust {peer[0]:.1f} s (R's system.time)" if peer is not None else "; mclust not installed")
        + f". jaxmix on {jax.default_backend()} ({jax.device_count()} device)."
    )
    text = "\n".join(lines)
    print(text)
    if args.save:
        out_path = HERE / "results" / f"{datetime.date.today().isoformat()}-bootstrap-lrt.md"
        out_path.write_text(text + "\n")
        print(f"saved {out_path}")


if __name__ == "__main__":
    main()
