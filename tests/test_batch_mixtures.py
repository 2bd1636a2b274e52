"""gmm_batch and soft_kmeans_batch: a batch equals the loop of single fits, ragged sizes by zero weights."""

import jax
import numpy as np
import pytest
from conftest import make_blobs

import jaxmix

B, N, K = 5, 80, 3


def _ragged(dtype):
    """B problems padded to N rows: problem i has N - 7 i real rows, the padding (weight 0) at the end."""
    xs = np.stack([make_blobs(i, n=N, d=2, k=K, dtype=dtype)[0] for i in range(B)])
    sizes = [N - 7 * i for i in range(B)]
    w = np.zeros((B, N), dtype)
    for i, m in enumerate(sizes):
        w[i, :m] = 1.0
        xs[i, m:] = 1e3  # garbage in the padding must not matter
    return xs, w, sizes


@pytest.mark.parametrize("ct", ["full"])
def test_gmm_batch_equals_the_loop_and_the_unpadded_fits(ct):
    with jax.enable_x64(True):
        xs, w, sizes = _ragged(np.float64)
        r = jaxmix.gmm_batch(jax.random.key(0), xs, K, covariance_type=ct, weights=w, max_iter=40)
        r2 = jaxmix.gmm_batch(jax.random.key(0), xs, K, covariance_type=ct, n_init=3, weights=w, max_iter=40)
        keys = jax.random.split(jax.random.key(0), B)
        assert r.params.means.shape == (B, K, 2) and r.labels.shape == (B, N)
        for i, m in enumerate(sizes):
            padded = jaxmix.gmm(keys[i], xs[i], K, covariance_type=ct, weights=w[i], max_iter=40)
            # The unpadded fits compile one program per size: check the most padded one.
            plain = jaxmix.gmm(keys[i], xs[i, :m], K, covariance_type=ct, max_iter=40) if i == B - 1 else padded
            for g in (padded, plain):
                np.testing.assert_allclose(r.params.means[i], g.params.means, atol=1e-8)
                np.testing.assert_allclose(r.params.covariances[i], g.params.covariances, atol=1e-8)
                np.testing.assert_allclose(r.log_likelihood[i], g.log_likelihood, rtol=1e-10)
                assert int(r.n_iter[i]) == int(g.n_iter)
            np.testing.assert_array_equal(r.labels[i, :m], plain.labels[:m])
            # With restarts, equal optima in another component order may tie up to
            # rounding: the likelihood is what must agree.
            g3 = jaxmix.gmm(keys[i], xs[i], K, covariance_type=ct, n_init=3, weights=w[i], max_iter=40)
            np.testing.assert_allclose(r2.log_likelihood[i], g3.log_likelihood, rtol=1e-10)


def test_soft_kmeans_batch_equals_the_loop_with_one_beta_per_problem():
    with jax.enable_x64(True):
        xs, w, sizes = _ragged(np.float64)
        betas = np.linspace(0.5, 2.0, B)
        r = jaxmix.soft_kmeans_batch(jax.random.key(1), xs, K, beta=betas, weights=w, max_iter=60)
        keys = jax.random.split(jax.random.key(1), B)
        for i, m in enumerate(sizes):
            g = jaxmix.soft_kmeans(keys[i], xs[i], K, beta=betas[i], weights=w[i], max_iter=60)
            if i == B - 1:
                g = jaxmix.soft_kmeans(keys[i], xs[i, :m], K, beta=betas[i], max_iter=60)
            np.testing.assert_allclose(r.centers[i], g.centers, atol=1e-8)
            np.testing.assert_allclose(r.weights[i], g.weights, atol=1e-10)
            np.testing.assert_allclose(r.objective[i], g.objective, rtol=1e-10)
            np.testing.assert_array_equal(r.labels[i, :m], g.labels[:m])
        same = jaxmix.soft_kmeans_batch(jax.random.key(1), xs, K, beta=1.0, weights=w, max_iter=60)
        assert same.beta.shape == (B,) and bool(np.all(same.beta == 1.0))


def test_batch_errors():
    xs, w, _ = _ragged(np.float32)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"problem\(s\) \[4\]"):
        w2 = w.copy()
        w2[4, 2:] = 0.0
        jaxmix.gmm_batch(key, xs, K, weights=w2)
    with pytest.raises(ValueError, match="shape"):
        jaxmix.gmm_batch(key, xs, K, weights=w[:, :5])
    with pytest.raises(ValueError, match=r"ndim|dimensions|3"):
        jaxmix.gmm_batch(key, xs[0], K)
    with pytest.raises(ValueError, match=r"NaN|finite"):
        bad = xs.copy()
        bad[1, 3, 0] = np.nan
        jaxmix.soft_kmeans_batch(key, bad, K, beta=1.0)
    with pytest.raises(ValueError, match="beta"):
        jaxmix.soft_kmeans_batch(key, xs, K, beta=np.ones(B + 1))
    with pytest.raises(ValueError, match="beta"):
        jaxmix.soft_kmeans_batch(key, xs, K, beta=-1.0)
    with pytest.raises(ValueError, match="covariance_type"):
        jaxmix.gmm_batch(key, xs, K, covariance_type="round")
    with pytest.raises(ValueError, match=">= 0"):
        jaxmix.gmm_batch(key, xs, K, weights=-w)


def test_many_restarts_run_in_groups_with_the_same_winner():
    from jaxmix.models import gmm as G

    # W4's shape with 300 restarts: vmapped groups, not one 300-wide vmap.
    assert G.restart_group_size(200_000, 16, 16, "full", 4, 300) < 300
    assert G.restart_group_size(272, 3, 2, "full", 4, 300) == 300
    with jax.enable_x64(True):
        x = jaxmix.datasets.load_faithful().astype(np.float64)
        x = (x - x.mean(0)) / x.std(0)
        kw = dict(
            covariance_type="diag",
            n_components=3,
            init="k-means++",
            n_init=23,
            max_iter=30,
            chunk_size=272,
            reinit_collapsed=False,
        )
        args = (jax.random.key(5), x, np.ones(272), np.float64(1e-4), np.float64(1e-6), None, (None, None, None))
        one = G._gmm(*args, **kw)
        grouped = G._gmm(*args, **kw, restart_group=5)  # 5 groups, the last padded
        np.testing.assert_allclose(grouped.params.means, one.params.means, atol=1e-12)
        np.testing.assert_allclose(grouped.log_likelihood, one.log_likelihood, rtol=1e-13)
        assert int(grouped.n_iter) == int(one.n_iter)
    many = jaxmix.gmm(jax.random.key(0), x, 3, n_init=300, max_iter=20)
    assert bool(np.isfinite(many.log_likelihood)) and many.params.means.shape == (3, 2)


def test_per_problem_starts_are_checked_and_used():
    xs, _, _ = _ragged(np.float32)
    key = jax.random.key(0)
    w0, m0 = np.full((B, K), 1 / K), xs[:, :K]
    prec = np.tile(np.eye(2), (B, K, 1, 1))
    r = jaxmix.gmm_batch(key, xs, K, weights_init=w0, means_init=m0, precisions_init=prec, max_iter=3)
    g = jaxmix.gmm(
        jax.random.split(key, B)[2], xs[2], K, weights_init=w0[2], means_init=m0[2], precisions_init=prec[2], max_iter=3
    )
    np.testing.assert_allclose(r.params.means[2], g.params.means, atol=1e-5)
    bad = prec.copy()
    bad[3, 1] = -np.eye(2)
    for kw, msg in [
        (dict(precisions_init=bad), "positive definite"),
        (dict(weights_init=np.full((B, K), 0.3)), "sum to 1"),
        (dict(means_init=m0[:, :2]), "rows per problem"),
        (dict(means_init=m0[:3]), "leading axis"),
    ]:
        with pytest.raises(ValueError, match=msg):
            jaxmix.gmm_batch(key, xs, K, **kw)
