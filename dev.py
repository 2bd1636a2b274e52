#!/usr/bin/env python3
"""Set up and run jaxmix from a fresh clone with nothing but Python 3.11+.

    python3 dev.py demo    # make .venv, install jaxmix[plot], run `jaxmix demo`
    python3 dev.py test    # make .venv, install jaxmix[test], run ruff, mypy and pytest (heavy cases left out)
    python3 dev.py heavy   # the heavy test cases (notebooks, several processes, sweeps), run with the benchmarks
    python3 dev.py bench   # make .venv, install jaxmix[bench], run the benchmarks (args passed on)
    python3 dev.py notebooks [NAME...]   # install jaxmix[notebooks], re-execute notebooks/*.ipynb in place

The virtual environment lives in .venv next to this file; an install is
redone only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
# Two workers (one per core): the suite is compile-bound and XLA compiles on one thread.
# --dist loadfile keeps a file (and its module-scoped fixtures) on one worker.
# (--dist loadgroup with per-file groups set in conftest did not keep files together
# here: the 4-device sharding worker ran in both processes; see the stop-23 note.)
# --durations: the slowest cases, to keep the suite inside its 10 minutes on 2 cores.
PYTEST = (PY, "-m", "pytest", "-q", "-n", "2", "--dist", "loadfile", "--durations=15")


def run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    code = subprocess.call([str(c) for c in cmd], cwd=ROOT)
    if code:
        sys.exit(code)


def ensure(extra: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit(f"jaxmix needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = VENV / f".jaxmix-installed-{extra}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PY, "-m", "pip", "install", "--quiet", "-e", f".[{extra}]")
    stamp.write_text(digest)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"demo", "test", "heavy", "bench", "notebooks"}:
        sys.exit(__doc__)
    what, rest = argv[0], argv[1:]
    if what == "demo":
        ensure("plot")
        run(BIN / "jaxmix", "demo", *rest)
    elif what == "test":
        ensure("test")
        lint = ("jaxmix", "tests", "bench", "examples", "notebooks", "dev.py")
        run(PY, "-m", "ruff", "check", *lint)
        run(PY, "-m", "ruff", "format", "--check", *lint)
        run(PY, "-m", "mypy")
        run(*PYTEST, "-m", "not heavy", *rest)
    elif what == "heavy":
        # The cases marked heavy in tests/conftest.py (10-60 s each): not part of the 10-minute suite.
        ensure("test")
        run(*PYTEST, "-m", "heavy", *rest)
    elif what == "notebooks":
        ensure("notebooks")
        run(PY, "notebooks/execute.py", *rest)
    else:
        ensure("bench")
        run(PY, "bench/run.py", *rest)


if __name__ == "__main__":
    main(sys.argv[1:])
