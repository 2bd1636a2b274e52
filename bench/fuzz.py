"""The hostile-input campaign: every case of tests/_hostile.py against every public entry point.

    .venv/bin/python bench/fuzz.py                 # the whole cross product (about 10 minutes on 2 cores)
    .venv/bin/python bench/fuzz.py --only gmm      # entry points whose name contains "gmm"

Each call must end in a finite result (and leave its input as it was) or a
ValueError/TypeError whose message names the problem in jaxmix's words (no
XLA or tracer text). Anything else is a failure and is printed in full. The
script ends with a table per entry point (calls, finite results, clear
errors, failures) and exits with status 1 if there was any failure; a call
that runs for more than 5 minutes (a hang) stops it with a traceback. CI
runs a hypothesis sample of the same cases (tests/test_hardening.py).
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import jax
from _hostile import CASES, classify

import jaxmix

KEY = jax.random.key(0)
K_VALUES = (1, 2, 6, 7, 0, -1, 2.5, True)


def _models() -> tuple[Any, Any, Any]:
    x = np.random.default_rng(1).normal(size=(40, 2)).astype(np.float32)
    return jaxmix.kmeans(KEY, x, 2), jaxmix.gmm(KEY, x, 2), jaxmix.soft_kmeans(KEY, x, 2, beta=1.0)


def _stack(x: Any) -> Any:
    return np.stack([np.asarray(x)] * 2) if isinstance(x, (np.ndarray, list)) else x


def entry_points(k: Any, models: tuple[Any, Any, Any]) -> dict[str, Callable[[Any], Any]]:
    from jaxmix import sklearn as jsk

    km, gm, sk = models

    def attrs(est: Any) -> dict[str, Any]:
        return {a: v for a, v in vars(est).items() if a.endswith("_") and not a.startswith("_")}

    ks = [1, k] if isinstance(k, int) and not isinstance(k, bool) and k > 1 else k
    out: dict[str, Callable[[Any], Any]] = {
        "kmeans": lambda x: jaxmix.kmeans(KEY, x, k),
        "kmeans (random, 2 restarts)": lambda x: jaxmix.kmeans(KEY, x, k, init="random", n_init=2),
        "kmeans (hamerly)": lambda x: jaxmix.kmeans(KEY, x, k, algorithm="hamerly"),
        "soft_kmeans": lambda x: jaxmix.soft_kmeans(KEY, x, k, beta=1.0),
        "gmm prior": lambda x: jaxmix.gmm(KEY, x, k, prior=True),
        "gmm reinit_collapsed": lambda x: jaxmix.gmm(KEY, x, k, reinit_collapsed=True),
        "select": lambda x: jaxmix.select(KEY, x, ks, ("full", "diag"), n_init=2),
        "kmeans_batch": lambda x: jaxmix.kmeans_batch(KEY, _stack(x), k),
        "gmm_batch": lambda x: jaxmix.gmm_batch(KEY, _stack(x), k),
        "soft_kmeans_batch": lambda x: jaxmix.soft_kmeans_batch(KEY, _stack(x), k, beta=1.0),
        "stream.kmeans": lambda x: jaxmix.stream.kmeans(KEY, x, k, progress=False),
        "stream.gmm": lambda x: jaxmix.stream.gmm(KEY, x, k, progress=False),
        "stream.soft_kmeans": lambda x: jaxmix.stream.soft_kmeans(KEY, x, k, beta=1.0, progress=False),
        "stream.minibatch_kmeans": lambda x: jaxmix.stream.minibatch_kmeans(KEY, x, k, progress=False),
        "stream.online_gmm": lambda x: jaxmix.stream.online_gmm(KEY, x, k, progress=False),
        "sklearn.KMeans": lambda x: attrs(jsk.KMeans(k, n_init=1, random_state=0).fit(x)),
        "sklearn.MiniBatchKMeans": lambda x: attrs(jsk.MiniBatchKMeans(k, n_init=1, random_state=0).fit(x)),
        "sklearn.GaussianMixture": lambda x: attrs(jsk.GaussianMixture(k, random_state=0).fit(x)),
        "sklearn.SoftKMeans": lambda x: attrs(jsk.SoftKMeans(k, random_state=0).fit(x)),
    }
    for ct in ("full", "tied", "diag", "spherical"):
        out[f"gmm {ct}"] = functools.partial(_gmm, k=k, ct=ct)
    if k == 2:  # the toolbox does not take k: once is enough
        out.update(
            {
                "kmeans_predict": lambda x: jaxmix.kmeans_predict(km.centers, x),
                "transform": lambda x: jaxmix.transform(km.centers, x),
                "predict": lambda x: jaxmix.predict(gm.params, x),
                "predict_proba": lambda x: jaxmix.predict_proba(gm.params, x),
                "log_prob": lambda x: jaxmix.log_prob(gm.params, x),
                "score": lambda x: jaxmix.score(gm.params, x),
                "bic / aic / icl / entropy": lambda x: [
                    f(gm.params, x) for f in (jaxmix.bic, jaxmix.aic, jaxmix.icl, jaxmix.entropy)
                ],
                "soft_kmeans_predict_proba": lambda x: jaxmix.soft_kmeans_predict_proba(sk, x),
                "gmm_fixed_point": lambda x: jaxmix.gmm_fixed_point(gm.params, x, tol=1e-4),
                "soft_kmeans_fixed_point": lambda x: jaxmix.soft_kmeans_fixed_point(sk.centers, sk.weights, x, 1.0),
                "fit_gradient": lambda x: jaxmix.fit_gradient(KEY, x, gm.params, n_steps=3, batch_size=2),
                "stream.predict": lambda x: list(jaxmix.stream.predict(gm, x)),
                "shard_rows": lambda x: jaxmix.shard_rows(x, jax.make_mesh((1,), ("data",))),
                "save(x as metadata)": lambda x: _save_metadata(x),
            }
        )
    return out


def _gmm(x: Any, *, k: Any, ct: str) -> Any:
    return jaxmix.gmm(KEY, x, k, covariance_type=ct)


def from_covariances_cases() -> dict[str, Callable[[], Any]]:
    """Hostile arguments for `jaxmix.GMMParams.from_covariances` (a public constructor)."""
    f = jaxmix.GMMParams.from_covariances
    return {
        "lists": lambda: f([0.5, 0.5], [[0.0], [1.0]], [1.0, 2.0], "spherical"),
        "negative variance": lambda: f([0.5, 0.5], [[0.0], [1.0]], [1.0, -2.0], "spherical"),
        "zero variance diag": lambda: f([1.0], [[0.0, 0.0]], [[1.0, 0.0]], "diag"),
        "not PD full": lambda: f([1.0], [[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]], "full"),
        "NaN covariance": lambda: f([1.0], [[0.0, 0.0]], [[[np.nan, 0.0], [0.0, 1.0]]], "full"),
        "wrong shape": lambda: f([1.0], [[0.0, 0.0]], [1.0, 1.0], "tied"),
        "weights vs means": lambda: f([0.5, 0.5], [[0.0, 0.0]], [1.0], "spherical"),
        "unknown type": lambda: f([1.0], [[0.0]], [1.0], "round"),
        "strings": lambda: f(["a"], [["b"]], ["c"], "spherical"),
        "complex": lambda: f([1.0], [[0j]], [1.0 + 0j], "spherical"),
        "1-D means": lambda: f([1.0], [0.0], [1.0], "spherical"),
    }


def _save_metadata(x: Any) -> Any:
    with tempfile.TemporaryDirectory() as d:
        jaxmix.save(jaxmix.KMeansResult(*[np.zeros(1, np.float32)] * 7), f"{d}/m.npz", metadata=x)
        return None


def cli_cases() -> list[tuple[str, list[str], bytes | None]]:
    """(name, argv after `jaxmix`, file content or None): bad files and options for the command line."""
    return [
        ("fit: empty file", ["fit", "{f}", "-k", "2", "--no-plot"], b""),
        ("fit: text", ["fit", "{f}", "-k", "2", "--no-plot"], b"a,b\nx,y\n"),
        ("fit: NaN cell", ["fit", "{f}", "-k", "2", "--no-plot"], b"1,2\nnan,3\n4,5\n"),
        ("fit: ragged rows", ["fit", "{f}", "-k", "2", "--no-plot"], b"1,2\n3\n4,5\n"),
        ("fit: k > n", ["fit", "{f}", "-k", "9", "--no-plot"], b"1,2\n3,4\n"),
        ("fit: k = 0", ["fit", "{f}", "-k", "0", "--no-plot"], b"1,2\n3,4\n"),
        ("fit: 1e30 column", ["fit", "{f}", "-k", "2", "--no-plot"], b"1e30,1\n-1e30,2\n3e30,3\n"),
        ("fit: binary junk", ["fit", "{f}", "-k", "2", "--no-plot"], bytes(range(256))),
        ("predict: not a model", ["predict", "{f}", "{f}"], b"1,2\n3,4\n"),
        ("info: truncated npz", ["info", "{f}"], b"PK\x03\x04" + bytes(40)),
        ("select: bad k", ["select", "{f}", "--k", "3..1", "--no-plot"], b"1,2\n3,4\n5,6\n"),
        ("fit: missing file", ["fit", "/nonexistent/x.csv", "-k", "2"], None),
    ]


def run_cli() -> tuple[int, int, list[str]]:
    ok = fails = 0
    problems = []
    with tempfile.TemporaryDirectory() as d:
        for name, argv, content in cli_cases():
            f = os.path.join(d, "data.csv")
            if content is not None:
                with open(f, "wb") as fh:
                    fh.write(content)
            args = [a.replace("{f}", f) for a in argv] + (["-o", os.path.join(d, "out")] if argv[0] == "fit" else [])
            done = subprocess.run([sys.executable, "-m", "jaxmix.cli", *args], capture_output=True, timeout=300, cwd=d)
            err = done.stderr.decode()
            clean = done.returncode == 2 and err.startswith("jaxmix: error:") and "Traceback" not in err
            if clean:
                ok += 1
            else:
                fails += 1
                problems.append(f"CLI {name}: exit {done.returncode}: {err[-800:]}")
    return ok, fails, problems


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", default=[], help="entry points whose name contains one of these")
    ap.add_argument("--no-cli", action="store_true", help="skip the command-line cases")
    args = ap.parse_args(argv)
    models = _models()
    tally: dict[str, Counter[str]] = {}
    failures: list[str] = []
    t0 = time.perf_counter()
    for k in K_VALUES:
        for name, fn in entry_points(k, models).items():
            if args.only and not any(o in name for o in args.only):
                continue
            for case, build in CASES.items():
                status, detail = classify(fn, build())
                tally.setdefault(name, Counter())[status] += 1
                if status == "FAILURE":
                    failures.append(f"{name} | case {case!r} | k={k!r}: {detail}")
                    print(failures[-1], flush=True)
    rows = ["| entry point | calls | finite results | clear errors | failures |", "|---|---|---|---|---|"]
    for name, c in tally.items():
        rows.append(f"| `{name}` | {sum(c.values())} | {c['finite']} | {c['error']} | {c['FAILURE']} |")
    if not args.only:
        c = tally.setdefault("GMMParams.from_covariances", Counter())
        for case, build in from_covariances_cases().items():
            status, detail = classify(lambda _, build=build: build(), None)
            c[status] += 1
            if status == "FAILURE":
                failures.append(f"GMMParams.from_covariances | case {case!r}: {detail}")
                print(failures[-1], flush=True)
        rows.append(
            f"| `GMMParams.from_covariances` | {sum(c.values())} | {c['finite']} | {c['error']} | {c['FAILURE']} |"
        )
    if not args.no_cli and not args.only:
        ok, bad, problems = run_cli()
        failures += problems
        rows.append(f"| `jaxmix` command line (bad files, options) | {ok + bad} | 0 | {ok} | {bad} |")
    total = Counter()
    for c in tally.values():
        total.update(c)
    print("\n".join(rows))
    print(
        f"\n{sum(total.values())} calls over {len(CASES)} hostile inputs x {len(K_VALUES)} values of k: "
        f"{total['finite']} finite results, {total['error']} clear errors, {len(failures)} failures "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
