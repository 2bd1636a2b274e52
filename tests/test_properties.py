"""Property tests: the Lyapunov functions never get worse, on any data."""

import jax
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import jaxmix

# A few shapes only: every new shape compiles once.
shapes = st.tuples(st.sampled_from([7, 30]), st.sampled_from([1, 3]), st.sampled_from([1, 2, 5]))


@given(shape=shapes, seed=st.integers(0, 2**16), scale=st.sampled_from([1e-3, 1.0, 1e3]), weighted=st.booleans())
def test_kmeans_inertia_never_increases(shape, seed, scale, weighted):
    n, d, k = shape
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, d)) * scale).astype(np.float32)
    x[: n // 3] = x[0]  # duplicated points make empty clusters likely
    w = rng.uniform(0, 2, size=n).astype(np.float32) if weighted else None
    if w is not None:
        w[rng.random(n) < 0.3] = 0.0
        w[:k] = 1.0  # enough rows with positive weight
    r = jaxmix.kmeans(jax.random.key(seed), x, k, weights=w, init="random", max_iter=20, tol=0.0)
    h = np.asarray(r.history, np.float64)
    assert np.all(np.isfinite(h)) and np.all(np.isfinite(r.centers)) and not bool(r.nonfinite)
    # float32 distances by GEMM resolve differences down to ~eps times the
    # data's spread: that is the tolerance, relative to the k=1 inertia.
    ww = np.ones(n) if w is None else w
    spread = float(np.sum(ww * ((x - np.average(x, axis=0, weights=ww)) ** 2).sum(1)))
    atol = 1e-5 * spread + 1e-30
    assert np.all(np.diff(h) <= atol)
    assert float(r.inertia) <= h[int(r.n_iter) - 1] + atol
    labels = np.asarray(r.labels)
    assert labels.min() >= 0 and labels.max() < k


@given(shape=shapes, seed=st.integers(0, 2**16), log_beta=st.floats(-3, 3))
def test_soft_kmeans_free_energy_never_increases(shape, seed, log_beta):
    n, d, k = shape
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    r = jaxmix.soft_kmeans(jax.random.key(seed), x, k, beta=10.0**log_beta, max_iter=20, tol=0.0)
    h = np.asarray(r.history, np.float64)
    assert np.all(np.isfinite(h)) and not bool(r.nonfinite)
    assert np.all(np.diff(h) <= 1e-4 * np.abs(h[0]) + 1e-6)
    np.testing.assert_allclose(np.asarray(r.weights).sum(), 1.0, rtol=1e-5)


@given(
    shape=st.tuples(st.sampled_from([24]), st.sampled_from([1, 2]), st.sampled_from([1, 3])),
    seed=st.integers(0, 2**16),
    ct=st.sampled_from(["full", "tied", "diag", "spherical"]),
)
def test_gmm_log_likelihood_never_decreases(shape, seed, ct):
    n, d, k = shape
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(size=(n // 2, d)), rng.normal(size=(n - n // 2, d)) * 0.5 + 3]).astype(np.float32)
    with jax.enable_x64(True):  # float64 so that the test checks EM, not float32 round-off
        r = jaxmix.gmm(
            jax.random.key(seed), x.astype(np.float64), k, covariance_type=ct, reg_covar=0.0, max_iter=25, tol=0.0
        )
        h = np.asarray(r.history)
        # reg_covar=0 may legitimately hit a singular covariance (a component
        # on one point, or on d points in d dimensions): its likelihood is
        # unbounded and float64 cannot follow EM there.
        cov = np.asarray(r.params.covariances)
        var = np.linalg.eigvalsh(cov) if ct in ("full", "tied") else cov
        if bool(r.nonfinite) or np.min(var) < 1e-10 * max(np.max(var), 1e-300):
            return
        assert np.all(np.diff(h) >= -1e-9 * np.abs(h).max())
