"""The benchmark workloads W1-W6 (float32, synthetic blobs, fixed seeds).

Each function runs jaxmix and every installed peer on the same data, from
the same starting point and for the same number of iterations where the
peer allows it, and returns one row per library.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from harness import Row, blobs, gemm_seconds, inertia, measure, peer

import jaxmix

KEY = jax.random.key(0)


def _roofline(pending: Any, n: int, d: int, k: int, gemm_s: float) -> Any:
    """Add the row's fraction of the GEMM roofline once it is measured."""

    def hook(row: Row) -> None:
        row["gemm_s"] = gemm_s
        row["gflops"] = 2 * n * k * d / row["per_iter_s"] / 1e9
        row["roofline_fraction"] = gemm_s / row["per_iter_s"]

    pending.post.append(hook)
    return pending


def _kmeans_same_start(
    wid: str, n: int, d: int, k: int, iters: int, repeats: int, peers: bool, algorithm_variants: bool = True
) -> list[Row]:
    """k-means from the same initial centres for `iters` Lloyd iterations (tol = 0)."""
    x = blobs(0, n, d, k)
    c0 = x[np.random.default_rng(1).choice(n, k, replace=False)].copy()
    xj, cj = jnp.asarray(x), jnp.asarray(c0)
    gemm = gemm_seconds(n, d, k, repeats)

    def run():
        return jax.block_until_ready(jaxmix.kmeans(KEY, xj, k, init=cj, max_iter=iters, tol=0.0))

    program = (lambda x, c: jaxmix.kmeans(KEY, x, k, init=c, max_iter=iters, tol=0.0), (xj, cj))
    ours = measure(
        wid,
        "jaxmix",
        run,
        lambda r: r.n_iter,
        lambda r: r.inertia,
        compiled=True,
        program=program,
        data_bytes=x.nbytes,
    )
    rows = [_roofline(ours, n, d, k, gemm)]
    if algorithm_variants:
        # The same fit with every distance computed in every iteration: what
        # the bounds (algorithm="auto" picks "hamerly" here) save.
        dense = measure(
            wid,
            "jaxmix (lloyd)",
            lambda: jax.block_until_ready(
                jaxmix.kmeans(KEY, xj, k, init=cj, max_iter=iters, tol=0.0, algorithm="lloyd")
            ),
            lambda r: r.n_iter,
            lambda r: r.inertia,
            compiled=True,
            variant=True,
            note='algorithm="lloyd": dense iterations, for comparison',
        )
        rows.append(_roofline(dense, n, d, k, gemm))
    if not peers:
        return rows

    def sk() -> Row:
        from sklearn.cluster import KMeans

        def fit():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return KMeans(k, init=c0, n_init=1, max_iter=iters, tol=0.0, algorithm="lloyd").fit(x)

        return measure(wid, "scikit-learn", fit, lambda m: m.n_iter_, lambda m: m.inertia_)

    def sk_elkan() -> Row:
        from sklearn.cluster import KMeans

        def fit():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return KMeans(k, init=c0, n_init=1, max_iter=iters, tol=0.0, algorithm="elkan").fit(x)

        return measure(
            wid,
            "scikit-learn (elkan)",
            fit,
            lambda m: m.n_iter_,
            lambda m: m.inertia_,
            note="scikit-learn's bounded algorithm (Elkan 2003)",
        )

    def fa() -> Row:
        import faiss

        # FAISS's GPU build is the peer when jaxmix runs on a GPU and one is installed.
        on_gpu = jax.default_backend() == "gpu" and hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0

        def fit():
            # max_points_per_centroid = n: FAISS uses every point (no silent subsampling).
            km = faiss.Kmeans(
                d, k, niter=iters, max_points_per_centroid=n, min_points_per_centroid=1, verbose=False, gpu=on_gpu
            )
            km.train(x, init_centroids=c0)
            km.index.search(x, 1)  # labels, as the other libraries return them
            return km

        name = "faiss (gpu)" if on_gpu else "faiss"
        return measure(wid, name, fit, lambda m: iters, lambda m: inertia(xj, m.centroids))

    rows.append(peer(wid, "scikit-learn", sk))
    if algorithm_variants and k <= 256:  # Elkan keeps n x k bounds: 9 GB and 30 s a fit at W6's size
        rows.append(peer(wid, "scikit-learn (elkan)", sk_elkan))
    rows.append(peer(wid, "faiss", fa))
    return rows


def w1(quick: bool, repeats: int) -> list[Row]:
    """W1: k-means, 20 Lloyd iterations, n = 1,000,000, d = 32, k = 100 (quick: n = 100,000)."""
    return _kmeans_same_start("W1", 100_000 if quick else 1_000_000, 32, 100, 20, repeats, peers=True)


def w2(quick: bool, repeats: int) -> list[Row]:
    """W2: 1,000 independent k-means problems (n = 500, d = 2, k = 5, 50 iterations): jaxmix.kmeans_batch vs a loop."""
    b, n, d, k, iters = (200 if quick else 1000), 500, 2, 5, 50
    xs = np.stack([blobs(100 + i, n, d, k) for i in range(b)])
    c0 = xs[:, :k].copy()  # the first k rows of each problem
    xj, cj = jnp.asarray(xs), jnp.asarray(c0)
    keys = jax.random.split(KEY, b)

    def batch():
        return jax.block_until_ready(jaxmix.kmeans_batch(KEY, xj, k, init=cj, max_iter=iters, tol=0.0))

    rows = [
        measure(
            "W2",
            "jaxmix",
            batch,
            lambda r: int(jnp.max(r.n_iter)),
            lambda r: float(jnp.sum(r.inertia)),
            compiled=True,
            program=(lambda x, c: jaxmix.kmeans_batch(KEY, x, k, init=c, max_iter=iters, tol=0.0), (xj, cj)),
            note="jaxmix.kmeans_batch (a queue of problems through slots)",
        )
    ]
    fit_all = jax.jit(jax.vmap(lambda key, x, c: jaxmix.kmeans(key, x, k, init=c, max_iter=iters, tol=0.0)))
    rows.append(
        measure(
            "W2",
            "jaxmix (vmap)",
            lambda: jax.block_until_ready(fit_all(keys, xj, cj)),
            lambda r: int(jnp.max(r.n_iter)),
            lambda r: float(jnp.sum(r.inertia)),
            compiled=True,
            variant=True,
            note="jax.vmap(jaxmix.kmeans): every problem runs until the slowest stops",
        )
    )

    def sk() -> Row:
        from sklearn.cluster import KMeans

        def loop():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return [KMeans(k, init=c0[i], n_init=1, max_iter=iters, tol=0.0).fit(xs[i]) for i in range(b)]

        return measure(
            "W2",
            "scikit-learn",
            loop,
            lambda ms: max(m.n_iter_ for m in ms),
            lambda ms: sum(m.inertia_ for m in ms),
        )

    rows.append(peer("W2", "scikit-learn", sk))
    return rows


def w2g(quick: bool, repeats: int) -> list[Row]:
    """W2g: 1,000 independent GMM problems (n = 500, d = 2, k = 5, full, 50 EM iterations): jaxmix.gmm_batch vs a loop."""
    b, n, d, k, iters = (100 if quick else 1000), 500, 2, 5, 50
    # reg_covar 1e-3 for both: from these random starts a few of the 1,000
    # problems collapse a component onto two points, where scikit-learn's
    # float32 Cholesky raises (jaxmix falls back to the diagonal).
    REG = 1e-3
    xs = np.stack([blobs(100 + i, n, d, k) for i in range(b)])
    starts = [_gmm_start(xs[i], k, "full") for i in range(b)]
    w0, m0, _, p0 = (np.stack([s[j] for s in starts]) for j in range(4))
    xj = jnp.asarray(xs)
    inits = tuple(jnp.asarray(a, jnp.float32) for a in (w0, m0, p0))

    def fit(x, w, m, p):
        return jaxmix.gmm_batch(
            KEY, x, k, max_iter=iters, tol=0.0, reg_covar=REG, weights_init=w, means_init=m, precisions_init=p
        )

    rows = [
        measure(
            "W2g",
            "jaxmix",
            lambda: jax.block_until_ready(fit(xj, *inits)),
            lambda r: int(jnp.max(r.n_iter)),
            lambda r: float(jnp.mean(r.log_likelihood)),
            compiled=True,
            program=(fit, (xj, *inits)),
            note="jaxmix.gmm_batch (vmap over problems); objective: mean log-likelihood over problems",
        )
    ]

    def sk() -> Row:
        from sklearn.mixture import GaussianMixture

        def loop():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning: tol = 0
                return [
                    GaussianMixture(
                        k,
                        max_iter=iters,
                        tol=0.0,
                        reg_covar=REG,
                        weights_init=w0[i],
                        means_init=m0[i],
                        precisions_init=p0[i],
                    ).fit(xs[i])
                    for i in range(b)
                ]

        def objective(ms) -> float:
            return float(np.mean([m.score(xs[i]) for i, m in enumerate(ms)]))

        return measure("W2g", "scikit-learn", loop, lambda ms: max(m.n_iter_ for m in ms), objective)

    rows.append(peer("W2g", "scikit-learn", sk))
    return rows


def w3(quick: bool, repeats: int) -> list[Row]:
    """W3: k-means, 10 restarts, k-means++ init, to convergence (tol 1e-4), n = 100,000, d = 16, k = 20."""
    n, d, k = (20_000 if quick else 100_000), 16, 20
    x = blobs(3, n, d, k)
    xj = jnp.asarray(x)

    def run():
        return jax.block_until_ready(jaxmix.kmeans(KEY, xj, k, n_init=10, tol=1e-4))

    rows = [
        measure(
            "W3",
            "jaxmix",
            run,
            lambda r: r.n_iter,
            lambda r: r.inertia,
            compiled=True,
            start="own-start",
            program=(lambda x: jaxmix.kmeans(KEY, x, k, n_init=10, tol=1e-4), (xj,)),
        )
    ]

    def sk() -> Row:
        from sklearn.cluster import KMeans

        def fit():
            return KMeans(k, init="k-means++", n_init=10, tol=1e-4, random_state=0).fit(x)

        return measure("W3", "scikit-learn", fit, lambda m: m.n_iter_, lambda m: m.inertia_, start="own-start")

    rows.append(peer("W3", "scikit-learn", sk))
    return rows


def _gmm_start(x: np.ndarray, k: int, ct: str) -> tuple[Any, ...]:
    """Shared initial parameters: k random rows as means, the data covariance, equal weights."""
    means = x[np.random.default_rng(3).choice(len(x), k, replace=False)].astype(np.float64)
    var = np.cov(x.T).astype(np.float64)
    if ct == "full":
        cov = np.stack([var] * k)
        prec = np.linalg.inv(cov)
    else:
        cov = np.stack([np.diag(var)] * k)
        prec = 1.0 / cov
    return np.full(k, 1.0 / k), means, cov, prec


def _gmm(wid: str, ct: str, quick: bool, repeats: int) -> list[Row]:
    n, d, k, iters = (20_000 if quick else 200_000), 16, 16, 50
    x = blobs(2, n, d, k)
    w0, m0, c0, p0 = _gmm_start(x, k, ct)
    xj = jnp.asarray(x)

    def score(weights, means, covs) -> float:
        p = jaxmix.GMMParams.from_covariances(
            *(jnp.asarray(a, jnp.float32) for a in (weights, means, covs)), covariance_type=ct
        )
        return float(jaxmix.score(p, xj))

    def fit(x):
        return jaxmix.gmm(
            KEY, x, k, covariance_type=ct, max_iter=iters, tol=0.0, weights_init=w0, means_init=m0, precisions_init=p0
        )

    def run():
        return jax.block_until_ready(fit(xj))

    rows = [
        measure(
            wid,
            "jaxmix",
            run,
            lambda g: g.n_iter,
            lambda g: g.log_likelihood,
            compiled=True,
            program=(fit, (xj,)),
        )
    ]

    def sk() -> Row:
        from sklearn.mixture import GaussianMixture

        def fit():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning: tol = 0
                return GaussianMixture(
                    k, covariance_type=ct, max_iter=iters, tol=0.0, weights_init=w0, means_init=m0, precisions_init=p0
                ).fit(x)

        return measure(
            wid,
            "scikit-learn",
            fit,
            lambda m: m.n_iter_,
            lambda m: score(m.weights_, m.means_, m.covariances_),
        )

    def gx() -> Row:
        from gmmx import EMFitter, GaussianMixtureModelJax

        start = GaussianMixtureModelJax.from_squeezed(
            means=jnp.asarray(m0, jnp.float32),
            covariances=jnp.asarray(c0, jnp.float32),
            weights=jnp.asarray(w0, jnp.float32),
            covariance_type=ct,
        )
        fitter = EMFitter(max_iter=iters, tol=0.0)

        def fit():
            return jax.block_until_ready(fitter.fit(xj, start))

        def objective(r) -> float:
            covs = np.squeeze(np.asarray(r.gmm.covariances.values), axis=0)
            if ct == "diag":
                covs = covs[..., 0]
            return score(np.asarray(r.gmm.weights_numpy), np.asarray(r.gmm.means_numpy), covs)

        return measure(wid, "gmmx", fit, lambda r: r.n_iter, objective, compiled=True)

    rows += [peer(wid, "scikit-learn", sk), peer(wid, "gmmx", gx)]
    return rows


def w4(quick: bool, repeats: int) -> list[Row]:
    """W4: GMM, full covariance, 50 EM iterations, n = 200,000, d = 16, k = 16 (quick: n = 20,000)."""
    return _gmm("W4", "full", quick, repeats)


def w5(quick: bool, repeats: int) -> list[Row]:
    """W5: GMM, diag covariance, 50 EM iterations, n = 200,000, d = 16, k = 16 (quick: n = 20,000)."""
    return _gmm("W5", "diag", quick, repeats)


def w6(quick: bool, repeats: int) -> list[Row]:
    """W6: large k with bounded memory, n = 2,000,000, d = 64, k = 1,000, 5 iterations (quick: n = 100,000)."""
    return _kmeans_same_start(
        "W6", 100_000 if quick else 2_000_000, 64, 1000, 5, repeats, peers=not quick, algorithm_variants=not quick
    )


WORKLOADS = {"W1": w1, "W2": w2, "W2g": w2g, "W3": w3, "W4": w4, "W5": w5, "W6": w6}
