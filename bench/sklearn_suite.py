"""scikit-learn's own test files, run against `jaxmix.sklearn`.

    .venv/bin/python bench/sklearn_suite.py [-k EXPR] [--keep] [-- PYTEST ARGS]

Copies the installed scikit-learn's `cluster/tests/test_k_means.py`,
`mixture/tests/test_gaussian_mixture.py` and `mixture/tests/test_mixture.py`
to a temporary folder, swaps only the estimator imports (`KMeans`,
`MiniBatchKMeans`, `GaussianMixture` from `sklearn.cluster` /
`sklearn.mixture`) for `jaxmix.sklearn`'s, and runs them with pytest, with
scikit-learn's own conftest loaded as a plugin (its fixtures: `global_dtype`,
`global_random_seed`) and its float32 variants on
(`SKLEARN_RUN_FLOAT32_TESTS=1`). Everything else the files import (private
helpers such as `_mini_batch_step`, `kmeans_plusplus`, `k_means`) stays
scikit-learn's, so tests of those helpers pass without touching jaxmix.

Prints passed / failed / error / skipped counts, then the failing tests
grouped by file, splitting off the sparse cases (jaxmix refuses sparse input
with a TypeError by design). Not part of the test suite: it is CPU heavy
(several minutes on two cores).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FILES = (
    "cluster/tests/test_k_means.py",
    "mixture/tests/test_gaussian_mixture.py",
    "mixture/tests/test_mixture.py",
)
SWAPPED = ("KMeans", "MiniBatchKMeans", "GaussianMixture")
IMPORT = re.compile(r"^from sklearn\.(cluster|mixture) import (.+)$", re.M)


def swap_imports(source: str) -> tuple[str, list[str]]:
    """`from sklearn.cluster import KMeans, k_means` -> the estimators from jaxmix.sklearn, the rest kept."""
    swapped: list[str] = []

    def repl(m: re.Match[str]) -> str:
        names = [n.strip() for n in m.group(2).split(",")]
        ours = [n for n in names if n in SWAPPED]
        rest = [n for n in names if n not in SWAPPED]
        swapped.extend(ours)
        lines = []
        if rest:
            lines.append(f"from sklearn.{m.group(1)} import {', '.join(rest)}")
        if ours:
            lines.append(f"from jaxmix.sklearn import {', '.join(ours)}")
        return "\n".join(lines)

    return IMPORT.sub(repl, source), swapped


def is_sparse_case(name: str) -> bool:
    return any(s in name for s in ("csr", "sparse", "X_csr"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", default=None, help="pytest -k expression")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    ap.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = ap.parse_args()

    import sklearn

    sk = Path(sklearn.__file__).resolve().parent
    tmp = Path(tempfile.mkdtemp(prefix="jaxmix_sklearn_suite_"))
    try:
        for rel in FILES:
            src, swapped = swap_imports((sk / rel).read_text())
            if not swapped:
                raise SystemExit(f"{rel}: no estimator import found to swap (scikit-learn's file changed?)")
            (tmp / Path(rel).name).write_text(src)
            print(f"{rel}: swapped {', '.join(swapped)}")
        report = tmp / "report.xml"
        env = dict(os.environ, SKLEARN_RUN_FLOAT32_TESTS="1", JAXMIX_COMPILE=os.environ.get("JAXMIX_COMPILE", "fast"))
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "sklearn.conftest",
            "--rootdir",
            str(tmp),
            "--junitxml",
            str(report),
            "-W",
            "default",
            *(["-k", args.k] if args.k else []),
            *args.pytest_args,
            str(tmp),
        ]
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        if not report.exists():
            print(proc.stdout[-5000:], proc.stderr[-5000:], sep="\n")
            return 2
        counts: Counter[str] = Counter()
        failing: list[tuple[str, str, str, str]] = []
        for case in ET.parse(report).getroot().iter("testcase"):
            file = case.get("classname", "").split(".")[0]
            name = case.get("name", "")
            kinds = [c.tag for c in case]
            if "failure" in kinds:
                counts["failed"] += 1
                failing.append(("failed", file, name, case.find("failure").get("message", "")))  # type: ignore[union-attr]
            elif "error" in kinds:
                counts["error"] += 1
                failing.append(("error", file, name, case.find("error").get("message", "")))  # type: ignore[union-attr]
            elif "skipped" in kinds:
                counts["skipped"] += 1
            else:
                counts["passed"] += 1
        sparse = [f for f in failing if is_sparse_case(f[2])]
        other = [f for f in failing if not is_sparse_case(f[2])]
        print()
        print(
            f"passed {counts['passed']}  failed {counts['failed']}  error {counts['error']}  "
            f"skipped {counts['skipped']}  (of the failures and errors, {len(sparse)} are sparse-input cases)"
        )
        print(f"\nfailing, not sparse ({len(other)}):")
        for kind, file, name, msg in sorted(other, key=lambda f: (f[1], f[2])):
            first = msg.strip().splitlines()[0][:140] if msg.strip() else ""
            print(f"  {kind:6s} {file}::{name}  -- {first}")
        if args.keep:
            print(f"\nfiles kept in {tmp}")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
