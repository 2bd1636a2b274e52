"""Soft k-means: the free energy, the hard limit, and its interfaces."""

import jax
import numpy as np
import pytest
from conftest import make_blobs

import jaxmix
from jaxmix.engine import random as jr
from jaxmix.models import soft_kmeans as _soft_kmeans

KEY = jax.random.key(0)


def numpy_soft_step(x, c, pi, beta):
    d = ((x[:, None, :] - c[None]) ** 2).sum(-1)
    logits = np.log(pi)[None] - beta * d
    m = logits.max(1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(1))
    r = np.exp(logits - lse[:, None])
    big_r = r.sum(0)
    return (r.T @ x) / big_r[:, None], big_r / big_r.sum(), -lse.sum() / beta


def test_one_iteration_equals_numpy():
    x, _ = make_blobs(0, n=80, d=3, k=3, dtype=np.float64)
    c0 = x[:3]
    c1, pi1, f0 = numpy_soft_step(x, c0, np.full(3, 1 / 3), 0.3)
    r = jaxmix.soft_kmeans(KEY, x, 3, beta=0.3, init=c0, max_iter=1, chunk_size=11)
    np.testing.assert_allclose(r.centers, c1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r.weights, pi1, rtol=1e-5)
    np.testing.assert_allclose(r.history[0], f0, rtol=1e-5)


def test_free_energy_never_increases(blobs):
    x, _ = blobs
    for beta in (0.01, 0.3, 10.0):
        r = jaxmix.soft_kmeans(KEY, x, 4, beta=beta, init="random", max_iter=60, tol=0.0)
        h = np.asarray(r.history)
        assert np.all(np.diff(h) <= 1e-5 * np.abs(h[0])), beta


def test_large_beta_is_kmeans():
    x, _ = make_blobs(1, n=400, d=2, k=4, spread=0.4)
    c0 = x[:4]
    km = jaxmix.kmeans(KEY, x, 4, init=c0, tol=0.0)
    soft = jaxmix.soft_kmeans(KEY, x, 4, beta=1e4, init=c0, tol=0.0)
    np.testing.assert_allclose(soft.centers, km.centers, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(soft.labels, km.labels)
    np.testing.assert_allclose(soft.objective, km.inertia, rtol=1e-3)
    counts = np.bincount(np.asarray(km.labels), minlength=4)
    np.testing.assert_allclose(soft.weights, counts / counts.sum(), rtol=1e-5)


def test_small_beta_spreads_responsibility(blobs):
    x, _ = blobs
    r = jaxmix.soft_kmeans(KEY, x, 3, beta=1e-6, max_iter=5)
    p = np.asarray(jaxmix.soft_kmeans_predict_proba(r, x))
    assert p.min() > 0.2  # nearly uniform over the three clusters


def test_predict_proba_rows_sum_to_one_and_match_labels(blobs):
    x, _ = blobs
    r = jaxmix.soft_kmeans(KEY, x, 3, beta=0.5, n_init=3)
    p = np.asarray(jaxmix.soft_kmeans_predict_proba(r, x, chunk_size=64))
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(p.argmax(1), r.labels)


def test_beta_change_does_not_recompile(blobs):
    x, _ = blobs
    jaxmix.soft_kmeans(KEY, x, 3, beta=1.0)
    before = _soft_kmeans._soft_kmeans._cache_size()
    for beta in (0.1, 2.0, 30.0):
        jaxmix.soft_kmeans(KEY, x, 3, beta=beta, tol=beta * 1e-4)
    assert _soft_kmeans._soft_kmeans._cache_size() == before


def test_beta_sweep_under_vmap(blobs):
    x, _ = blobs
    betas = np.array([0.01, 0.1, 1.0, 10.0], np.float32)
    swept = jax.vmap(lambda b: jaxmix.soft_kmeans(KEY, x, 3, beta=b, max_iter=40))(betas)
    for i, b in enumerate(betas):
        one = jaxmix.soft_kmeans(KEY, x, 3, beta=float(b), max_iter=40)
        np.testing.assert_allclose(swept.centers[i], one.centers, rtol=1e-4, atol=1e-4)


def test_restarts_pick_lowest_free_energy(blobs):
    x, _ = blobs
    keys = jr.split(KEY, 4)  # restart r's stream
    singles = [jaxmix.soft_kmeans(k, x, 5, beta=2.0, init="random", max_iter=30) for k in keys]
    r = jaxmix.soft_kmeans(KEY, x, 5, beta=2.0, init="random", n_init=4, max_iter=30)
    np.testing.assert_allclose(r.objective, min(float(s.objective) for s in singles), rtol=1e-5)


def test_zero_weight_rows_change_nothing(blobs):
    x, _ = blobs
    xp = np.concatenate([x, np.full((10, 2), 1e3, np.float32)])
    w = np.r_[np.ones(len(x)), np.zeros(10)].astype(np.float32)
    a = jaxmix.soft_kmeans(KEY, x, 3, beta=0.5, init=x[:3])
    b = jaxmix.soft_kmeans(KEY, xp, 3, beta=0.5, init=x[:3], weights=w)
    np.testing.assert_allclose(b.centers, a.centers, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(b.weights, a.weights, rtol=1e-5)


def test_offset_data_keeps_precision_in_float32():
    x, _ = make_blobs(2, n=500, d=2, k=3)
    a = jaxmix.soft_kmeans(KEY, x, 3, beta=1.0, init=x[:3])
    b = jaxmix.soft_kmeans(KEY, x + np.float32(1e4), 3, beta=1.0, init=x[:3] + np.float32(1e4))
    np.testing.assert_allclose(b.objective, a.objective, rtol=1e-3)
    np.testing.assert_allclose(np.asarray(b.centers) - 1e4, a.centers, atol=2e-2)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_beta(blobs, bad):
    x, _ = blobs
    with pytest.raises(ValueError, match="beta"):
        jaxmix.soft_kmeans(KEY, x, 3, beta=bad)


def test_one_row_and_constant_data_fit_without_error():
    # The beta bound divided by the data's squared span, which underflowed to 0 for constant data.
    one = jaxmix.soft_kmeans(jax.random.key(0), np.ones((1, 2), np.float32), 1, beta=1.0)
    np.testing.assert_array_equal(one.centers, [[1.0, 1.0]])
    flat = jaxmix.soft_kmeans(jax.random.key(0), np.full((5, 2), 3.0, np.float32), 2, beta=1.0)
    np.testing.assert_array_equal(flat.centers, np.full((2, 2), 3.0))
