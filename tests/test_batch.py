"""kmeans_batch: many independent problems through a queue of slots."""

import jax
import numpy as np
import pytest
from conftest import make_blobs

import jaxmix

KEY = jax.random.key(0)


def _problems(b=7, n=80, d=2, k=3, seed=0):
    return np.stack([make_blobs(seed + i, n=n, d=d, k=k)[0] for i in range(b)])


@pytest.mark.parametrize("slots", [1, 3, None])
def test_equals_single_fits_from_same_init(slots):
    xs = _problems()
    c0 = xs[:, :3].copy()
    r = jaxmix.kmeans_batch(KEY, xs, 3, init=c0, tol=0.0, slots=slots)
    for i in range(len(xs)):
        s = jaxmix.kmeans(KEY, xs[i], 3, init=c0[i], tol=0.0, algorithm="lloyd")
        np.testing.assert_allclose(r.centers[i], s.centers, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(r.labels[i], s.labels)
        np.testing.assert_allclose(r.inertia[i], s.inertia, rtol=1e-5)
        assert int(r.n_iter[i]) == int(s.n_iter) and bool(r.converged[i]) == bool(s.converged)
        np.testing.assert_allclose(r.history[i], s.history, rtol=1e-4)


@pytest.mark.parametrize(("init", "n_init"), [("k-means++", 1), ("random", 3)])
def test_keys_and_restarts_match_kmeans(init, n_init):
    xs = _problems(b=5, n=60, d=3, k=4, seed=10)
    keys = jax.random.split(KEY, len(xs))
    r = jaxmix.kmeans_batch(KEY, xs, 4, init=init, n_init=n_init, max_iter=50, slots=4)
    for i in range(len(xs)):
        s = jaxmix.kmeans(keys[i], xs[i], 4, init=init, n_init=n_init, max_iter=50, algorithm="lloyd")
        np.testing.assert_allclose(r.inertia[i], s.inertia, rtol=1e-5)
        np.testing.assert_allclose(r.centers[i], s.centers, rtol=1e-4, atol=1e-4)


def test_ragged_problems_by_zero_weight_padding():
    sizes = [30, 55, 80]
    raw = [make_blobs(20 + i, n=m, d=2, k=3)[0] for i, m in enumerate(sizes)]
    xs = np.zeros((3, 80, 2), np.float32)
    w = np.zeros((3, 80), np.float32)
    for i, a in enumerate(raw):
        xs[i, : len(a)] = a
        xs[i, len(a) :] = 1e3  # far away: would dominate a centre if it counted
        w[i, : len(a)] = 1.0
    c0 = np.stack([a[:3] for a in raw])
    r = jaxmix.kmeans_batch(KEY, xs, 3, init=c0, weights=w, tol=0.0)
    for i, a in enumerate(raw):
        s = jaxmix.kmeans(KEY, a, 3, init=c0[i], tol=0.0)
        np.testing.assert_allclose(r.centers[i], s.centers, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(r.labels[i, : len(a)], s.labels)
        np.testing.assert_allclose(r.inertia[i], s.inertia, rtol=1e-5)


def test_empty_cluster_is_relocated_in_batch():
    xs = _problems(b=3, n=40, d=2, k=3, seed=30)
    c0 = np.zeros((3, 3, 2), np.float32)
    c0[:, 1:] = 1e3  # two empty clusters at the first step of every problem
    r = jaxmix.kmeans_batch(KEY, xs, 3, init=c0, slots=2)
    for i in range(3):
        s = jaxmix.kmeans(KEY, xs[i], 3, init=c0[i], algorithm="lloyd")
        np.testing.assert_allclose(r.centers[i], s.centers, rtol=1e-5, atol=1e-5)
        assert np.all(np.bincount(np.asarray(r.labels[i]), minlength=3) > 0)


def test_many_features_use_the_gemm_path():
    xs = _problems(b=4, n=50, d=12, k=3, seed=40)
    c0 = xs[:, :3].copy()
    r = jaxmix.kmeans_batch(KEY, xs, 3, init=c0)
    for i in range(4):
        s = jaxmix.kmeans(KEY, xs[i], 3, init=c0[i])
        np.testing.assert_allclose(r.inertia[i], s.inertia, rtol=1e-5)


def test_batch_errors():
    xs = _problems(b=2, n=10, d=2, k=2)
    with pytest.raises(ValueError, match="3-D"):
        jaxmix.kmeans_batch(KEY, xs[0], 2)
    with pytest.raises(ValueError, match="weights must be 2-D"):
        jaxmix.kmeans_batch(KEY, xs, 2, weights=np.ones(10))
    with pytest.raises(ValueError, match="weights must have shape"):
        jaxmix.kmeans_batch(KEY, xs, 2, weights=np.ones((2, 9)))
    w = np.ones((2, 10), np.float32)
    w[1, 1:] = 0.0
    with pytest.raises(ValueError, match="positive weight in every problem"):
        jaxmix.kmeans_batch(KEY, xs, 2, weights=w)
    bad = xs.copy()
    bad[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        jaxmix.kmeans_batch(KEY, bad, 2)
    with pytest.raises(ValueError, match="init must have shape"):
        jaxmix.kmeans_batch(KEY, xs, 2, init=np.zeros((2, 3, 2)))
