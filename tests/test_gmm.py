"""Gaussian mixtures: oracles (scipy, scikit-learn) and invariants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_blobs
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture

import jaxmix
from jaxmix.engine import random as jr
from jaxmix.models import gmm as _gmm
from jaxmix.models import gmm_em

KEY = jax.random.key(0)
TYPES = ("full", "tied", "diag", "spherical")


def random_params(rng, ct, k, d, dtype=np.float64):
    w = rng.dirichlet(np.ones(k))
    means = rng.normal(scale=3.0, size=(k, d))
    if ct == "full":
        a = rng.normal(size=(k, d, d))
        cov = a @ a.transpose(0, 2, 1) + d * np.eye(d)
    elif ct == "tied":
        a = rng.normal(size=(d, d))
        cov = a @ a.T + d * np.eye(d)
    elif ct == "diag":
        cov = rng.uniform(0.5, 2.0, size=(k, d))
    else:
        cov = rng.uniform(0.5, 2.0, size=k)
    return w.astype(dtype), means.astype(dtype), cov.astype(dtype)


def dense_covs(ct, cov, k, d):
    if ct == "full":
        return cov
    if ct == "tied":
        return np.broadcast_to(cov, (k, d, d))
    if ct == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([c * np.eye(d) for c in cov])


def scipy_log_prob(x, w, means, covs):
    dens = sum(w[j] * multivariate_normal(means[j], covs[j]).pdf(x) for j in range(len(w)))
    return np.log(dens)


@pytest.mark.parametrize("ct", TYPES)
def test_log_prob_matches_scipy_float64(ct):
    rng = np.random.default_rng(0)
    k, d = 3, 4
    w, means, cov = random_params(rng, ct, k, d)
    x = rng.normal(scale=3.0, size=(50, d))
    expected = scipy_log_prob(x, w, means, dense_covs(ct, cov, k, d))
    with jax.enable_x64(True):
        p = jaxmix.GMMParams.from_covariances(jnp.asarray(w), jnp.asarray(means), jnp.asarray(cov), ct)
        got = np.asarray(jaxmix.log_prob(p, x))
    np.testing.assert_allclose(got, expected, atol=1e-8, rtol=0)


@pytest.mark.parametrize("ct", TYPES)
def test_log_prob_matches_scipy_float32(ct):
    rng = np.random.default_rng(1)
    k, d = 3, 4
    w, means, cov = random_params(rng, ct, k, d)
    x = rng.normal(scale=3.0, size=(50, d))
    expected = scipy_log_prob(x, w, means, dense_covs(ct, cov, k, d))
    p = jaxmix.GMMParams.from_covariances(*(jnp.asarray(a, jnp.float32) for a in (w, means, cov)), ct)
    got = np.asarray(jaxmix.log_prob(p, x.astype(np.float32)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_parameter_counts():
    expected = {"spherical": 13, "diag": 21, "tied": 26, "full": 41}
    rng = np.random.default_rng(2)
    for ct, count in expected.items():
        w, means, cov = random_params(rng, ct, 2, 5, np.float32)
        assert jaxmix.n_parameters(jaxmix.GMMParams.from_covariances(w, means, cov, ct)) == count


@pytest.mark.parametrize("ct", TYPES)
def test_50_iterations_match_sklearn_float64(ct):
    rng = np.random.default_rng(3)
    x, _ = make_blobs(4, n=400, d=3, k=3, spread=1.0, dtype=np.float64)
    k, d = 3, 3
    w, means, cov = random_params(rng, ct, k, d)
    prec = np.linalg.inv(cov) if ct in ("full", "tied") else 1.0 / cov
    ref = GaussianMixture(
        k, covariance_type=ct, max_iter=50, tol=0.0, weights_init=w, means_init=means, precisions_init=prec
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: 50 iterations with tol 0
        ref.fit(x)
    with jax.enable_x64(True):
        g = jaxmix.gmm(
            KEY, x, k, covariance_type=ct, max_iter=50, tol=0.0, weights_init=w, means_init=means, precisions_init=prec
        )
        assert g.params.means.dtype == jnp.float64
        np.testing.assert_allclose(g.params.weights, ref.weights_, rtol=1e-6)
        np.testing.assert_allclose(g.params.means, ref.means_, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(g.params.covariances, ref.covariances_, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(
            g.params.precisions_cholesky @ np.swapaxes(g.params.precisions_cholesky, -1, -2)
            if ct in ("full", "tied")
            else g.params.precisions_cholesky**2,
            ref.precisions_,
            rtol=1e-6,
            atol=1e-9,
        )
        assert int(g.n_iter) == 50 and not bool(g.converged)
        np.testing.assert_allclose(g.history[-1], ref.lower_bound_, rtol=1e-9)


def test_old_faithful_best_of_10_matches_sklearn():
    x = jaxmix.datasets.load_faithful()
    ref = GaussianMixture(2, covariance_type="full", n_init=10, random_state=0).fit(x)
    g = jaxmix.gmm(KEY, x, 2, covariance_type="full", n_init=10)
    np.testing.assert_allclose(float(g.log_likelihood), ref.score(x), atol=1e-3)
    np.testing.assert_allclose(float(jaxmix.score(g.params, x)), ref.score(x), atol=1e-3)
    assert bool(g.converged) and not bool(g.nonfinite)


@pytest.mark.parametrize("ct", TYPES)
def test_float32_offset_agrees_with_float64(ct):
    x, _ = make_blobs(5, n=600, d=2, k=3, spread=1.0, dtype=np.float64)
    prec = {"full": np.stack([np.eye(2)] * 3), "tied": np.eye(2), "diag": np.ones((3, 2)), "spherical": np.ones(3)}[ct]
    init = dict(weights_init=np.full(3, 1 / 3), precisions_init=prec)
    with jax.enable_x64(True):
        ref = jaxmix.gmm(KEY, x, 3, covariance_type=ct, max_iter=30, tol=0.0, means_init=x[:3], **init)
        ref_means = np.asarray(ref.params.means)
        ref_cov = np.asarray(ref.params.covariances)
        ref_ll = float(ref.log_likelihood)
    far = (x + 1e4).astype(np.float32)
    g = jaxmix.gmm(KEY, far, 3, covariance_type=ct, max_iter=30, tol=0.0, means_init=far[:3], **init)
    assert g.params.means.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(g.params.means) - 1e4, ref_means, atol=5e-3)
    np.testing.assert_allclose(g.params.covariances, ref_cov, rtol=2e-2, atol=2e-3)
    # The log-likelihood does not depend on the offset.
    np.testing.assert_allclose(float(g.log_likelihood), ref_ll, rtol=1e-4)


@pytest.mark.parametrize("prior", [None, True])
def test_degenerate_data_gives_finite_parameters(prior):
    x = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0]], np.float32), 10, axis=0)
    for ct in TYPES:
        g = jaxmix.gmm(KEY, x, 5, covariance_type=ct, prior=prior, init="random")
        for a in (g.params.weights, g.params.means, g.params.covariances, g.params.precisions_cholesky):
            assert np.all(np.isfinite(np.asarray(a))), (ct, prior)
        assert not bool(g.nonfinite)
        assert np.isfinite(float(g.log_likelihood))


def test_restarts_equal_loop(blobs):
    x, _ = blobs
    keys = jr.split(KEY, 4)  # restart r's stream
    singles = [jaxmix.gmm(k, x, 3, init="random", max_iter=20) for k in keys]
    best = max(singles, key=lambda s: float(s.log_likelihood))
    g = jaxmix.gmm(KEY, x, 3, init="random", n_init=4, max_iter=20)
    np.testing.assert_allclose(g.log_likelihood, best.log_likelihood, rtol=1e-6)
    # the same restart, 20 EM steps (not converged) vmapped vs alone: float32 rounding only
    np.testing.assert_allclose(g.params.means, best.params.means, rtol=1e-4, atol=1e-4)


def test_vmap_over_datasets_equals_loop():
    xs = np.stack([make_blobs(s, n=150, d=2, k=2)[0] for s in range(3)])
    keys = jax.random.split(KEY, 3)
    batched = jax.vmap(lambda k, x: jaxmix.gmm(k, x, 2, covariance_type="diag", max_iter=20))(keys, xs)
    for b in range(3):
        one = jaxmix.gmm(keys[b], xs[b], 2, covariance_type="diag", max_iter=20)
        np.testing.assert_allclose(batched.params.means[b], one.params.means, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(batched.log_likelihood[b], one.log_likelihood, rtol=1e-5)


def test_tol_and_reg_covar_do_not_recompile(blobs):
    x, _ = blobs
    jaxmix.gmm(KEY, x, 2)
    before = _gmm._gmm._cache_size()
    for tol, reg in ((1e-2, 1e-6), (1e-4, 1e-3), (0.0, 0.1)):
        jaxmix.gmm(KEY, x, 2, tol=tol, reg_covar=reg)
    assert _gmm._gmm._cache_size() == before


def test_history_and_convergence(blobs):
    x, _ = blobs
    g = jaxmix.gmm(KEY, x, 3, tol=1e-4, max_iter=200)
    n = int(g.n_iter)
    h = np.asarray(g.history)
    assert bool(g.converged) and n < 200
    assert abs(h[n - 1] - h[n - 2]) < 1e-4
    assert np.all(np.diff(h[:n]) >= -1e-5)


@pytest.mark.parametrize("init", _gmm.INIT_METHODS)
def test_init_methods(blobs, init):
    x, true_centres = blobs
    # Random responsibilities start every component at the data mean; breaking
    # that symmetry takes many small steps, so give EM room.
    slow = dict(tol=1e-8, max_iter=2000) if init == "random" else {}
    g = jaxmix.gmm(KEY, x, 3, init=init, n_init=2, **slow)
    assert not bool(g.nonfinite)
    found = np.sort(np.asarray(g.params.means)[:, 0])
    np.testing.assert_allclose(found, np.sort(true_centres[:, 0]), atol=0.3)


def test_toolbox_consistency(blobs):
    x, _ = blobs
    g = jaxmix.gmm(KEY, x, 3)
    p = g.params
    proba = np.asarray(jaxmix.predict_proba(p, x), np.float64)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(jaxmix.predict(p, x), proba.argmax(1))
    np.testing.assert_array_equal(g.labels, proba.argmax(1))
    lp = np.asarray(jaxmix.log_prob(p, x))
    np.testing.assert_allclose(float(jaxmix.score(p, x)), lp.mean(), rtol=1e-5)
    n, n_par = len(x), jaxmix.n_parameters(p)
    np.testing.assert_allclose(float(jaxmix.bic(p, x)), -2 * lp.sum() + n_par * np.log(n), rtol=1e-5)
    np.testing.assert_allclose(float(jaxmix.aic(p, x)), -2 * lp.sum() + 2 * n_par, rtol=1e-5)
    ent = -np.sum(np.where(proba > 0, proba * np.log(np.maximum(proba, 1e-300)), 0.0))
    np.testing.assert_allclose(float(jaxmix.entropy(p, x)), ent, rtol=1e-3, atol=1e-3)
    icl = -2 * lp.sum() + n_par * np.log(n) - 2 * np.log(proba.max(1)).sum()
    np.testing.assert_allclose(float(jaxmix.icl(p, x)), icl, rtol=1e-5)


def test_sklearn_bic_aic_agree():
    x = jaxmix.datasets.load_faithful()
    ref = GaussianMixture(2, covariance_type="diag", random_state=0).fit(x)
    p = jaxmix.GMMParams.from_covariances(ref.weights_, ref.means_, ref.covariances_, "diag")
    np.testing.assert_allclose(float(jaxmix.bic(p, x)), ref.bic(x), rtol=1e-5)
    np.testing.assert_allclose(float(jaxmix.aic(p, x)), ref.aic(x), rtol=1e-5)


@pytest.mark.parametrize("ct", TYPES)
def test_sample_moments(ct):
    rng = np.random.default_rng(6)
    w, means, cov = random_params(rng, ct, 2, 2, np.float32)
    p = jaxmix.GMMParams.from_covariances(w, means, cov, ct)
    xs, ys = jaxmix.sample(KEY, p, 20000)
    xs, ys = np.asarray(xs), np.asarray(ys)
    np.testing.assert_allclose(np.bincount(ys, minlength=2) / 20000, w, atol=0.02)
    dense = dense_covs(ct, cov, 2, 2)
    for j in range(2):
        np.testing.assert_allclose(xs[ys == j].mean(0), means[j], atol=0.1)
        np.testing.assert_allclose(np.cov(xs[ys == j].T), dense[j], rtol=0.1, atol=0.1)


def test_toolbox_under_jit_and_vmap(blobs):
    x, _ = blobs
    p = jaxmix.gmm(KEY, x, 3).params
    f = jax.jit(lambda p, x: jaxmix.log_prob(p, x))
    np.testing.assert_allclose(f(p, x), jaxmix.log_prob(p, x), rtol=1e-6)
    xb = np.stack([x[:100], x[100:200]])
    vb = jax.vmap(lambda xx: jaxmix.score(p, xx))(xb)
    np.testing.assert_allclose(vb, [jaxmix.score(p, xb[0]), jaxmix.score(p, xb[1])], rtol=1e-6)
    g = jax.grad(lambda xx: jnp.sum(jaxmix.log_prob(p, xx)))(jnp.asarray(x[:5]))
    assert np.all(np.isfinite(g))


def test_map_prior_shrinks_and_stays_finite():
    x, _ = make_blobs(7, n=60, d=3, k=2, spread=0.5)
    ml = jaxmix.gmm(KEY, x, 6, covariance_type="full", reg_covar=0.0, init="random_from_data", n_init=3)
    mp = jaxmix.gmm(KEY, x, 6, covariance_type="full", prior=True, reg_covar=0.0, init="random_from_data", n_init=3)
    assert not bool(mp.nonfinite)
    # The prior keeps every covariance's smallest eigenvalue away from 0.
    ev = np.linalg.eigvalsh(np.asarray(mp.params.covariances))
    assert ev.min() > 1e-3
    assert float(mp.log_likelihood) <= float(ml.log_likelihood) + 1e-3 or bool(ml.nonfinite)


def test_map_prior_formula_one_step():
    # One MAP M-step from hard responsibilities against a numpy computation.
    x, _ = make_blobs(8, n=40, d=2, k=2, spread=1.0, dtype=np.float64)
    with jax.enable_x64(True):
        g = jaxmix.gmm(
            KEY, x, 1, covariance_type="full", prior=jaxmix.GMMPrior(shrinkage=0.5, dof=5.0), max_iter=1, reg_covar=0.0
        )
        n, d = x.shape
        xbar = x.mean(0)
        mu_p = x.mean(0)
        fac = (1.0 / 1) ** (2.0 / d)
        scale = fac * np.cov(x.T, bias=True)
        w_scatter = (x - xbar).T @ (x - xbar)
        expected_cov = (scale + w_scatter + 0.5 * n / (0.5 + n) * np.outer(xbar - mu_p, xbar - mu_p)) / (
            5.0 + n + d + 2
        )
        np.testing.assert_allclose(g.params.covariances[0], expected_cov, rtol=1e-8)
        np.testing.assert_allclose(g.params.means[0], (n * xbar + 0.5 * mu_p) / (n + 0.5), rtol=1e-8)


def test_zero_weight_rows_change_nothing(blobs):
    x, _ = blobs
    xp = np.concatenate([x, np.full((20, 2), 500.0, np.float32)])
    w = np.r_[np.ones(len(x)), np.zeros(20)].astype(np.float32)
    a = jaxmix.gmm(KEY, x, 3, means_init=x[:3], max_iter=20, tol=0.0)
    b = jaxmix.gmm(KEY, xp, 3, means_init=x[:3], max_iter=20, tol=0.0, weights=w)
    np.testing.assert_allclose(b.params.means, a.params.means, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(b.log_likelihood, a.log_likelihood, rtol=1e-5)


def test_reinit_collapsed_recovers_a_lost_component():
    rng = np.random.default_rng(9)
    x = np.concatenate([rng.normal(size=(100, 2)) + c for c in ([0, 0], [8, 8], [8, -8])]).astype(np.float32)
    start = dict(
        means_init=np.array([[0, 0], [8, 8], [100, 100]], np.float32),
        weights_init=np.ones(3) / 3,
        precisions_init=np.stack([np.eye(2)] * 3),
        max_iter=100,
    )
    stuck = jaxmix.gmm(KEY, x, 3, **start)
    assert np.asarray(stuck.collapsed).tolist() == [False, False, True]
    assert np.all(np.isfinite(np.asarray(stuck.params.means)))
    fixed = jaxmix.gmm(KEY, x, 3, reinit_collapsed=True, **start)
    assert not np.any(np.asarray(fixed.collapsed))
    np.testing.assert_allclose(fixed.params.weights, [1 / 3] * 3, atol=0.01)
    assert float(fixed.log_likelihood) > float(stuck.log_likelihood) + 0.5


@pytest.mark.parametrize("beta", [0.3, 1e3])
def test_em_with_fixed_isotropic_covariance_is_soft_kmeans(beta):
    """The lecture's bridge, on the shared engine.

    r_ik ∝ pi_k exp(-beta ||x_i - m_k||^2) is pi_k N(x_i; m_k, sigma^2 I) with
    sigma^2 = 1 / (2 beta) (the lecture's slide writes beta^-1 I, dropping
    the 1/2 of the Gaussian exponent). EM that keeps the covariances fixed
    there and updates only means and weights is soft k-means; for large beta
    both are k-means.
    """
    x, _ = make_blobs(10, n=200, d=2, k=3, spread=0.7, dtype=np.float64)
    c0 = x[:3]
    n_iter = 15
    with jax.enable_x64(True):
        cov = jnp.full((3,), 1.0 / (2 * beta))
        params = jaxmix.GMMParams.from_covariances(jnp.full((3,), 1 / 3), jnp.asarray(c0), cov, "spherical")
        w = jnp.ones(len(x))

        @jax.jit  # one compiled step, not an eager compile per operation
        def step(params):
            stats = gmm_em.e_step(jnp.asarray(x), w, jnp.zeros(2), params, 64)
            return jaxmix.GMMParams.from_covariances(
                stats.resp / stats.resp.sum(), stats.sums / stats.resp[:, None], cov, "spherical"
            )

        for _ in range(n_iter):
            params = step(params)
        soft = jaxmix.soft_kmeans(KEY, x, 3, beta=beta, init=c0, max_iter=n_iter, tol=0.0)
        np.testing.assert_allclose(soft.centers, params.means, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(soft.weights, params.weights, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(
            jaxmix.soft_kmeans_predict_proba(soft, x), jaxmix.predict_proba(params, x), rtol=1e-8, atol=1e-12
        )
        if beta > 100:
            km = jaxmix.kmeans(KEY, x, 3, init=c0, max_iter=n_iter, tol=0.0)
            np.testing.assert_allclose(params.means, km.centers, rtol=1e-9)
            np.testing.assert_array_equal(jaxmix.predict(params, x), km.labels)


def test_a_component_collapsing_in_float32_stays_finite():
    # Found by the W2g benchmark: from this start, one component shrinks onto
    # two points; in float32 its scatter (sum r x x^T - N m m^T) came out
    # indefinite by more than reg_covar and NaN spread through the fit.
    rng = np.random.default_rng(150)
    centres = rng.normal(scale=4.0, size=(5, 2)).astype(np.float32)
    x = centres[rng.integers(0, 5, size=500)] + rng.normal(size=(500, 2)).astype(np.float32)
    means = x[np.random.default_rng(3).choice(500, 5, replace=False)].astype(np.float64)
    prec = np.stack([np.linalg.inv(np.cov(x.T).astype(np.float64))] * 5)
    g = jaxmix.gmm(
        jax.random.key(0),
        x,
        5,
        max_iter=50,
        tol=0.0,
        weights_init=np.full(5, 0.2),
        means_init=means,
        precisions_init=prec,
    )
    assert not bool(g.nonfinite) and np.isfinite(float(g.log_likelihood))
    assert np.all(np.linalg.eigvalsh(np.asarray(g.params.covariances, np.float64)) > 0)
    with jax.enable_x64(True):
        ref = jaxmix.gmm(
            jax.random.key(0),
            x.astype(np.float64),
            5,
            max_iter=50,
            tol=0.0,
            weights_init=np.full(5, 0.2),
            means_init=means,
            precisions_init=prec,
        )
    assert float(jnp.min(ref.params.weights)) < 0.01  # the float64 fit collapses a component too
    np.testing.assert_allclose(float(g.log_likelihood), float(ref.log_likelihood), rtol=0.01)
