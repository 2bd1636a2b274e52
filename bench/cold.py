"""Time to first result, as users meet it: whole processes, cold and second run.

    python3 dev.py bench --only T            # via bench/run.py (all T* tasks)
    .venv/bin/python bench/cold.py [--only T1 T3] [--rounds 3]

Each task runs in a fresh Python process: imports, data loading, the work
and exit, timed from outside (process seconds) and inside (work seconds,
after the imports). jaxmix runs twice per round: **cold** (an empty jaxmix
program cache in a new folder) and **second** (the same folder again, as a
user's second run of a script). Peers run in their own processes on the
same data: scikit-learn for the estimator tasks, R's mclust for `select`
when `Rscript` and mclust are installed (`apt-get install r-base-core
r-cran-mclust`). Inside the jaxmix process, XLA compiles are counted and
timed with `jax.monitoring`, so each row also gives the number of programs
compiled and their seconds. Medians over `--rounds` rounds (interleaved).

Data: scikit-learn's bundled wine data (178 x 13, standardised) and Old
Faithful (272 x 2), written once to .npy files so that every process loads
the same numbers the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Prologue of every jaxmix process: count and time XLA compiles.
_JAX_PROLOGUE = """
import time, json, sys
t_start = time.perf_counter()
import numpy as np
import jax
compiles = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, secs, **kw: compiles.append(secs) if event == "/jax/core/compile/backend_compile_duration" else None)
"""
_PLAIN_PROLOGUE = """
import time, json, sys
t_start = time.perf_counter()
import numpy as np
compiles = []
"""
_EPILOGUE = """
t_work = time.perf_counter() - t_work0
print("RESULT " + json.dumps({"work_s": t_work, "import_s": t_work0 - t_start,
      "compiles": len(compiles), "compile_s": sum(compiles), "check": check}))
"""

# Each task: what it does, the jaxmix code, the scikit-learn code. Code sees
# `X` (wine) or `F` (faithful) loaded from .npy; it must set `check`.
TASKS: dict[str, dict[str, str]] = {
    "T1": {
        "what": "KMeans(3, n_init=10).fit(wine)",
        "jaxmix": "from jaxmix.sklearn import KMeans\n{LOAD}\nm = KMeans(3, n_init=10, random_state=0).fit(X)\ncheck = float(m.inertia_)",
        "sklearn": "from sklearn.cluster import KMeans\n{LOAD}\nm = KMeans(3, n_init=10, random_state=0).fit(X)\ncheck = float(m.inertia_)",
    },
    "T2": {
        "what": "k sweep: KMeans(k, n_init=10), k = 2..10",
        "jaxmix": "from jaxmix.sklearn import KMeans\n{LOAD}\ncheck = [float(KMeans(k, n_init=10, random_state=0).fit(X).inertia_) for k in range(2, 11)]",
        "sklearn": "from sklearn.cluster import KMeans\n{LOAD}\ncheck = [float(KMeans(k, n_init=10, random_state=0).fit(X).inertia_) for k in range(2, 11)]",
    },
    "T3": {
        "what": 'GaussianMixture(3, "full").fit(wine)',
        "jaxmix": "from jaxmix.sklearn import GaussianMixture\n{LOAD}\nm = GaussianMixture(3, covariance_type='full', random_state=0).fit(X)\ncheck = float(m.lower_bound_)",
        "sklearn": "from sklearn.mixture import GaussianMixture\n{LOAD}\nm = GaussianMixture(3, covariance_type='full', random_state=0).fit(X)\ncheck = float(m.lower_bound_)",
    },
    "T4": {
        "what": "BIC grid: 4 covariance types x k = 1..6, n_init=3",
        "jaxmix": "from jaxmix.sklearn import GaussianMixture\n{LOAD}\n{GRID}",
        "sklearn": "from sklearn.mixture import GaussianMixture\n{LOAD}\n{GRID}",
    },
    "T5": {
        "what": "select on Old Faithful: k = 1..9 x 4 types (mclust: all 14 models)",
        "jaxmix": "import jaxmix\n{LOAD}\ns = jaxmix.select(jax.random.key(0), F, range(1, 10))\ncheck = [s.best_covariance_type, int(s.best_k)]",
        "mclust": "suppressMessages(library(mclust))\nF <- read.csv('{FAITHFUL}')\nm <- Mclust(F, G = 1:9, verbose = FALSE)\ncat(m$modelName, m$G, '\\n')",
    },
    "T5b": {
        "what": "select on Old Faithful, mclust's one start per cell (init='hc', n_init=1)",
        "jaxmix": "import jaxmix\n{LOAD}\ns = jaxmix.select(jax.random.key(0), F, range(1, 10), n_init=1)\ncheck = [s.best_covariance_type, int(s.best_k)]",
        "mclust": "suppressMessages(library(mclust))\nF <- read.csv('{FAITHFUL}')\nm <- Mclust(F, G = 1:9, verbose = FALSE)\ncat(m$modelName, m$G, '\\n')",
    },
    "T6": {
        "what": "command line: jaxmix fit faithful.csv --k 3 (process only)",
        "cli": "fit",
    },
}

_GRID = (
    "check = {}\n"
    "for ct in ('full', 'tied', 'diag', 'spherical'):\n"
    "    for k in range(1, 7):\n"
    "        check[f'{ct}{k}'] = float(GaussianMixture(k, covariance_type=ct, n_init=3, random_state=0).fit(X).bic(X))\n"
    "check = min(check, key=check.get)"
)


def _write_data(folder: Path) -> dict[str, str]:
    import numpy as np

    from jaxmix.datasets import load_faithful

    paths = {"wine": str(folder / "wine.npy"), "faithful": str(folder / "faithful.npy")}
    try:
        from sklearn.datasets import load_wine

        w = load_wine().data
        np.save(paths["wine"], ((w - w.mean(0)) / w.std(0)).astype(np.float64))
    except ImportError:  # no scikit-learn: wine-shaped data from a fixed seed
        np.save(paths["wine"], np.random.default_rng(0).normal(size=(178, 13)))
    f = np.asarray(load_faithful())
    np.save(paths["faithful"], f)
    paths["faithful_csv"] = str(folder / "faithful.csv")
    np.savetxt(paths["faithful_csv"], f, delimiter=",", header="eruptions,waiting", comments="")
    return paths


def _python_code(task: str, lib: str, paths: dict[str, str]) -> str:
    load = f"X = np.load({paths['wine']!r}); F = np.load({paths['faithful']!r})\nt_work0 = time.perf_counter()"
    body = TASKS[task][lib].replace("{LOAD}", load).replace("{GRID}", _GRID)
    prologue = _JAX_PROLOGUE if lib == "jaxmix" else _PLAIN_PROLOGUE
    return prologue + body + _EPILOGUE


def _run(cmd: list[str], env: dict[str, str]) -> dict[str, object]:
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed:\n{p.stderr[-3000:]}")
    out: dict[str, object] = {"process_s": wall}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            out.update(json.loads(line[7:]))
    return out


def _measure(task: str, paths: dict[str, str], cache: Path, python: str) -> dict[str, dict[str, object]]:
    """One round of a task: jaxmix cold, jaxmix second, and the peer."""
    env = dict(os.environ, JAXMIX_CACHE_DIR=str(cache))
    spec = TASKS[task]
    res: dict[str, dict[str, object]] = {}
    shutil.rmtree(cache, ignore_errors=True)
    if "cli" in spec:
        cmd = [
            str(Path(python).parent / "jaxmix"),
            "fit",
            paths["faithful_csv"],
            "-k",
            "3",
            "-o",
            str(cache / "out"),
            "--quiet",
        ]
        env["JAXMIX_NO_PROGRESS"] = "1"
        res["cold"] = _run(cmd, env)
        shutil.rmtree(cache / "out", ignore_errors=True)
        res["second"] = _run(cmd, env)
        code = "import time, sys, numpy as np\nfrom sklearn.cluster import KMeans\nX = np.loadtxt(sys.argv[1], delimiter=',', skiprows=1)\nKMeans(3, n_init=1, random_state=0).fit(X)"
        res["peer"] = _run([python, "-c", code, paths["faithful_csv"]], env)
        res["peer"]["peer"] = "scikit-learn script"
        return res
    code = _python_code(task, "jaxmix", paths)
    res["cold"] = _run([python, "-c", code], env)
    res["second"] = _run([python, "-c", code], env)
    if "sklearn" in spec:
        res["peer"] = _run([python, "-c", _python_code(task, "sklearn", paths)], env)
        res["peer"]["peer"] = "scikit-learn"
    elif "mclust" in spec and shutil.which("Rscript"):
        script = spec["mclust"].replace("{FAITHFUL}", paths["faithful_csv"])
        try:
            res["peer"] = _run(["Rscript", "-e", script], env)
            res["peer"]["peer"] = "R mclust"
        except RuntimeError as e:  # mclust not installed
            print(f"mclust skipped: {str(e)[:200]}", file=sys.stderr)
    return res


def run(only: list[str] | None = None, rounds: int = 3, python: str = sys.executable) -> tuple[str, list[dict]]:
    """Measure the tasks; returns (markdown table, rows)."""
    tasks = [t for t in TASKS if not only or t in only]
    with tempfile.TemporaryDirectory(prefix="jaxmix-cold-") as tmp:
        paths = _write_data(Path(tmp))
        cache = Path(tmp) / "cache"
        per: dict[str, list[dict[str, dict[str, object]]]] = {t: [] for t in tasks}
        for r in range(rounds):
            for t in tasks:
                print(f"round {r + 1}/{rounds}: {t} {TASKS[t]['what']}", file=sys.stderr, flush=True)
                per[t].append(_measure(t, paths, cache, python))
    rows = []
    for t in tasks:
        runs = per[t]

        def med(kind: str, field: str, runs=runs) -> float:
            vals = [float(r[kind][field]) for r in runs if kind in r and field in r[kind]]  # type: ignore[arg-type]
            return statistics.median(vals) if vals else float("nan")

        row = {"task": t, "what": TASKS[t]["what"], "peer": runs[0].get("peer", {}).get("peer", "-")}
        for kind in ("cold", "second", "peer"):
            for field in ("process_s", "work_s", "compiles", "compile_s"):
                row[f"{kind}_{field}"] = med(kind, field)
        row["check_jaxmix"] = runs[0]["cold"].get("check")
        row["check_peer"] = runs[0].get("peer", {}).get("check")
        rows.append(row)
    return table(rows), rows


def _f(v: float, digits: int = 2) -> str:
    return "-" if v != v else f"{v:.{digits}f}"


def table(rows: list[dict]) -> str:
    head = (
        "| task | what | peer | peer process s | jaxmix cold process s | cold / peer | cold programs | cold compile s "
        "| s per program | second process s | second / peer | second programs | jaxmix work s (cold / second) "
        "| peer work s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        peer = r["peer_process_s"]
        lines.append(
            f"| {r['task']} | {r['what']} | {r['peer']} | {_f(peer)} | {_f(r['cold_process_s'])} | "
            f"{_f(r['cold_process_s'] / peer, 1)}x | {_f(r['cold_compiles'], 0)} | {_f(r['cold_compile_s'])} | "
            f"{_f(r['cold_compile_s'] / r['cold_compiles'] if r['cold_compiles'] else float('nan'))} | "
            f"{_f(r['second_process_s'])} | {_f(r['second_process_s'] / peer, 1)}x | {_f(r['second_compiles'], 0)} | "
            f"{_f(r['cold_work_s'])} / {_f(r['second_work_s'])} | {_f(r['peer_work_s'], 3)} |"
        )
    return head + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", default=None, help="task ids, e.g. T1 T3")
    p.add_argument("--rounds", type=int, default=3, help="rounds per task (median), default 3")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    unknown = set(args.only or ()) - set(TASKS)
    if unknown:
        p.error(f"unknown tasks {sorted(unknown)}; choose from {list(TASKS)}")
    md, rows = run(args.only, args.rounds)
    print(md)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
