"""jaxmix benchmarks against its peers, measured in one process.

    python3 dev.py bench            # all workloads, full size
    python3 dev.py bench --quick    # smaller data, a quick look
    python3 dev.py bench --only W1

Every workload runs jaxmix and each installed peer on the same data, from
the same initial centres, for the same number of iterations (tol = 0), and
reports the median and min/max wall time over `--repeats` runs after a
warm-up, jaxmix's compile time separately, the peak resident memory added by
the call, and each library's final objective. Ratios are jaxmix / peer
(below 1 means jaxmix is faster). Missing peers are reported as skipped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxmix
from jaxmix import _kmeans

RESULTS = Path(__file__).resolve().parent / "results"


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 2 ms."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.peak = 0
        self._stop = threading.Event()

    def _rss(self) -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * self.page
        except OSError:  # not Linux: no sampling
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss() - self.base)
            time.sleep(0.002)

    def __enter__(self) -> PeakRSS:
        self.base = self._rss()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join()
        self.peak = max(self.peak, self._rss() - self.base)


def timed(fn: Callable[[], Any], repeats: int) -> dict[str, Any]:
    """Warm up once, then time `repeats` runs; peak memory of the first timed run.

    `first_s` is the warm-up call (for jaxmix: tracing and compilation included).
    """
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    times = []
    out = None
    with PeakRSS() as mem:
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    for _ in range(repeats - 1):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return {
        "median_s": float(np.median(times)),
        "min_s": float(np.min(times)),
        "max_s": float(np.max(times)),
        "peak_mib": mem.peak / 2**20,
        "first_s": first,
        "out": out,
    }


def blobs(seed: int, n: int, d: int, k: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d)).astype(np.float32)
    x = centres[rng.integers(0, k, size=n)]
    x += rng.normal(size=(n, d)).astype(np.float32)
    return x


def gemm_seconds(x: np.ndarray, c: np.ndarray, repeats: int) -> float:
    """The machine's own limit: one float32 distance GEMM of the Lloyd shape."""
    f = jax.jit(lambda x, c: jnp.min(x @ c.T, axis=1))  # the reduction keeps the output from being the cost
    xj, cj = jnp.asarray(x), jnp.asarray(c)
    return timed(lambda: jax.block_until_ready(f(xj, cj)), repeats)["median_s"]


def w1(quick: bool, repeats: int) -> list[dict[str, Any]]:
    """W1: k-means, 20 Lloyd iterations, n = 1e6, d = 32, k = 100 (quick: n = 1e5)."""
    n, d, k, iters = (100_000 if quick else 1_000_000), 32, 100, 20
    x = blobs(0, n, d, k)
    c0 = x[np.random.default_rng(1).choice(n, k, replace=False)].copy()
    rows: list[dict[str, Any]] = []
    key = jax.random.key(0)
    xj, cj = jnp.asarray(x), jnp.asarray(c0)

    # Compile time: lower+compile of the jitted fit, measured on its own.
    chunk = jaxmix._chunks.default_chunk_size(n, k, 4)
    t = time.perf_counter()
    _kmeans._kmeans.lower(
        key, xj, jnp.ones(n), cj, jnp.float32(0), n_clusters=k, init="array", n_init=1, max_iter=iters, chunk_size=chunk
    ).compile()
    compile_s = time.perf_counter() - t

    def run_jaxmix():
        return jax.block_until_ready(jaxmix.kmeans(key, xj, k, init=cj, max_iter=iters, tol=0.0))

    res = timed(run_jaxmix, repeats)
    r = res.pop("out")
    gemm = gemm_seconds(x, c0, repeats)
    per_iter = res["median_s"] / int(r.n_iter)
    rows.append(
        {
            "workload": "W1",
            "library": "jaxmix",
            **res,
            "n_iter": int(r.n_iter),
            "per_iter_s": per_iter,
            "objective": float(r.inertia),
            "compile_s": compile_s,
            "gemm_s": gemm,
            "roofline_fraction": gemm / per_iter,
        }
    )

    try:
        from sklearn.cluster import KMeans

        def run_sklearn():
            return KMeans(k, init=c0, n_init=1, max_iter=iters, tol=0.0, algorithm="lloyd").fit(x)

        res = timed(run_sklearn, repeats)
        m = res.pop("out")
        rows.append(
            {
                "workload": "W1",
                "library": "scikit-learn",
                **res,
                "n_iter": int(m.n_iter_),
                "per_iter_s": res["median_s"] / m.n_iter_,
                "objective": float(m.inertia_),
            }
        )
    except ImportError:
        rows.append({"workload": "W1", "library": "scikit-learn", "skipped": "not installed"})

    try:
        import faiss

        def run_faiss():
            km = faiss.Kmeans(d, k, niter=iters, max_points_per_centroid=n, min_points_per_centroid=1, verbose=False)
            km.train(x, init_centroids=c0)
            km.index.search(x, 1)  # labels, as the other libraries return them
            return km

        res = timed(run_faiss, repeats)
        km = res.pop("out")
        # FAISS reports the objective of its last assignment (before the final update).
        rows.append(
            {
                "workload": "W1",
                "library": "faiss",
                **res,
                "n_iter": iters,
                "per_iter_s": res["median_s"] / iters,
                "objective": float(km.obj[-1]),
            }
        )
    except ImportError:
        rows.append({"workload": "W1", "library": "faiss", "skipped": "not installed"})
    return rows


def _gmm_start(rng, x, k, ct):
    """Shared initial parameters: k random rows as means, the data covariance, equal weights."""
    d = x.shape[1]
    means = x[rng.choice(len(x), k, replace=False)].astype(np.float64)
    var = np.cov(x.T).astype(np.float64)
    if ct == "full":
        cov = np.stack([var] * k)
        prec = np.linalg.inv(cov)
    else:
        cov = np.stack([np.diag(var)] * k)
        prec = 1.0 / cov
    return np.full(k, 1.0 / k), means, cov, prec, d


def gmm_workload(wid: str, ct: str, quick: bool, repeats: int) -> list[dict[str, Any]]:
    n, d, k, iters = (40_000 if quick else 200_000), 16, 16, 50
    x = blobs(2, n, d, k)
    w0, m0, c0, p0, _ = _gmm_start(np.random.default_rng(3), x, k, ct)
    key = jax.random.key(0)
    xj = jnp.asarray(x)
    rows: list[dict[str, Any]] = []

    def objective(weights, means, covs):
        p = jaxmix.GMMParams.from_covariances(
            jnp.asarray(weights, jnp.float32), jnp.asarray(means, jnp.float32), jnp.asarray(covs, jnp.float32), ct
        )
        return float(jaxmix.score(p, xj))

    def run_jaxmix():
        return jax.block_until_ready(
            jaxmix.gmm(
                key,
                xj,
                k,
                covariance_type=ct,
                max_iter=iters,
                tol=0.0,
                weights_init=w0,
                means_init=m0,
                precisions_init=p0,
            )
        )

    res = timed(run_jaxmix, repeats)
    g = res.pop("out")
    rows.append(
        {
            "workload": wid,
            "library": "jaxmix",
            **res,
            "n_iter": int(g.n_iter),
            "per_iter_s": res["median_s"] / int(g.n_iter),
            "objective": float(g.log_likelihood),
            "compile_s": max(0.0, res["first_s"] - res["median_s"]),
        }
    )

    try:
        import warnings

        from sklearn.mixture import GaussianMixture

        def run_sklearn():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return GaussianMixture(
                    k, covariance_type=ct, max_iter=iters, tol=0.0, weights_init=w0, means_init=m0, precisions_init=p0
                ).fit(x)

        res = timed(run_sklearn, repeats)
        m = res.pop("out")
        rows.append(
            {
                "workload": wid,
                "library": "scikit-learn",
                **res,
                "n_iter": int(m.n_iter_),
                "per_iter_s": res["median_s"] / m.n_iter_,
                "objective": objective(m.weights_, m.means_, m.covariances_),
            }
        )
    except ImportError:
        rows.append({"workload": wid, "library": "scikit-learn", "skipped": "not installed"})

    try:
        from gmmx import EMFitter, GaussianMixtureModelJax

        start = GaussianMixtureModelJax.from_squeezed(
            means=jnp.asarray(m0, jnp.float32),
            covariances=jnp.asarray(c0, jnp.float32),
            weights=jnp.asarray(w0, jnp.float32),
            covariance_type=ct,
        )
        fitter = EMFitter(max_iter=iters, tol=0.0)

        def run_gmmx():
            return jax.block_until_ready(fitter.fit(xj, start))

        res = timed(run_gmmx, repeats)
        r = res.pop("out")
        gm = r.gmm
        covs = np.squeeze(np.asarray(gm.covariances.values), axis=0)
        if ct == "diag":
            covs = covs.reshape(k, d, -1)[..., 0] if covs.ndim == 3 else covs
        rows.append(
            {
                "workload": wid,
                "library": "gmmx",
                **res,
                "n_iter": int(r.n_iter),
                "per_iter_s": res["median_s"] / int(r.n_iter),
                "objective": objective(np.asarray(gm.weights_numpy), np.asarray(gm.means_numpy), covs),
                "compile_s": max(0.0, res["first_s"] - res["median_s"]),
            }
        )
    except ImportError:
        rows.append({"workload": wid, "library": "gmmx", "skipped": "not installed"})
    return rows


def w4(quick: bool, repeats: int) -> list[dict[str, Any]]:
    """W4: GMM, full covariance, 50 EM iterations, n = 200,000, d = 16, k = 16 (quick: n = 40,000)."""
    return gmm_workload("W4", "full", quick, repeats)


def w5(quick: bool, repeats: int) -> list[dict[str, Any]]:
    """W5: GMM, diag covariance, 50 EM iterations, n = 200,000, d = 16, k = 16 (quick: n = 40,000)."""
    return gmm_workload("W5", "diag", quick, repeats)


WORKLOADS = {"W1": w1, "W4": w4, "W5": w5}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "jax": jax.__version__, "jaxmix": jaxmix.__version__}
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("scikit-learn", "faiss-cpu", "gmmx", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "missing"
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| workload | library | median s | min s | max s | s / iter | jaxmix / peer | compile s | peak MiB | objective |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in dict.fromkeys(r["workload"] for r in rows):
        group = [r for r in rows if r["workload"] == w]
        ours = next((r for r in group if r["library"] == "jaxmix" and "skipped" not in r), None)
        for r in group:
            if "skipped" in r:
                lines.append(f"| {w} | {r['library']} | skipped: {r['skipped']} | | | | | | | |")
                continue
            ratio = "" if ours is None or r is ours else f"{ours['per_iter_s'] / r['per_iter_s']:.2f}"
            comp = f"{r['compile_s']:.2f}" if "compile_s" in r else ""
            if "compile_s" in r and r["library"] == "jaxmix" and r is not ours:
                comp = ""
            lines.append(
                f"| {w} | {r['library']} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['max_s']:.3f} | "
                f"{r['per_iter_s']:.4f} | {ratio} | {comp} | {r['peak_mib']:.0f} | {r['objective']:.6g} |"
            )
        if ours is not None and "gemm_s" in ours:
            lines.append(
                f"| {w} | (bare distance GEMM) | {ours['gemm_s']:.4f} | | | | "
                f"Lloyd iter = {1 / ours['roofline_fraction']:.2f}x GEMM | | | |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller data")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per library (default 5)")
    p.add_argument("--only", nargs="*", default=None, help="workload ids, e.g. W1")
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = p.parse_args(argv)
    device = jax.devices()[0]
    dev_name = f"{device.platform}-{getattr(device, 'device_kind', 'cpu')}".replace(" ", "_")
    print(f"# jaxmix bench, {dt.date.today()}, {dev_name}, {os.cpu_count()} cores, {versions()}", flush=True)
    rows: list[dict[str, Any]] = []
    for wid, fn in WORKLOADS.items():
        if args.only and wid not in args.only:
            continue
        print(f"running {wid}: {fn.__doc__}", file=sys.stderr, flush=True)
        rows += fn(args.quick, args.repeats)
    md = table(rows)
    print(md)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        stem = f"{dt.date.today()}-{dev_name}{'-quick' if args.quick else ''}"
        meta = {"date": str(dt.date.today()), "device": dev_name, "cores": os.cpu_count(), "versions": versions()}
        (RESULTS / f"{stem}.json").write_text(json.dumps({**meta, "rows": rows}, indent=1))
        (RESULTS / f"{stem}.md").write_text(f"{meta}\n\n{md}\n")
        print(f"wrote {RESULTS / stem}.json and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
