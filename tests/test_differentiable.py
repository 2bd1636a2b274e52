"""Gradients: through the toolbox, through converged fits (implicit), and fits by gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix

FAITHFUL = jaxmix.datasets.load_faithful()
Z = (FAITHFUL - FAITHFUL.mean(0)) / FAITHFUL.std(0)


def _fd(f, x, idx, eps=1e-6):
    e = jnp.zeros_like(x).at[idx].set(eps)
    return (f(x + e) - f(x - e)) / (2 * eps)


def test_grad_through_toolbox_and_soft_responsibilities():
    with jax.enable_x64(True):
        x = jnp.asarray(Z, jnp.float64)
        p = jaxmix.gmm(jax.random.key(0), x, 2, covariance_type="full").params
        r0 = jaxmix.predict_proba(p, x)[:, 0]
        i = int(jnp.argmax(r0 * (1 - r0)))  # the least certain point: a gradient well above rounding
        for f in (
            lambda x: jnp.sum(jaxmix.log_prob(p, x)),
            lambda x: jnp.sum(jaxmix.predict_proba(p, x)[:, 0] ** 2),
            lambda x: jaxmix.score(p, x),
        ):
            g = jax.grad(f)(x)
            np.testing.assert_allclose(g[i, 1], _fd(f, x, (i, 1)), rtol=1e-5)
        gm = jax.grad(
            lambda m: jnp.sum(jaxmix.log_prob(jaxmix.GMMParams.from_covariances(p.weights, m, p.covariances), x))
        )(p.means)
        assert gm.shape == (2, 2) and bool(jnp.all(jnp.isfinite(gm)))
        s = jaxmix.soft_kmeans(jax.random.key(0), x, 2, beta=1.0)

        def f(x):
            return jnp.sum(jaxmix.soft_kmeans_predict_proba(s, x)[:, 1] ** 3)

        r1 = jaxmix.soft_kmeans_predict_proba(s, x)[:, 1]
        i = int(jnp.argmax(r1 * (1 - r1)))
        np.testing.assert_allclose(jax.grad(f)(x)[i, 0], _fd(f, x, (i, 0)), rtol=1e-5)


@pytest.mark.parametrize("ct", ["full", "tied", "diag", "spherical"])
def test_implicit_gradients_of_converged_gmm_match_finite_differences(ct):
    with jax.enable_x64(True):
        x = jnp.asarray(Z, jnp.float64)
        p = jaxmix.gmm(jax.random.key(0), x, 2, covariance_type=ct, tol=1e-12, max_iter=1000).params

        def f(x, reg):
            q = jaxmix.gmm_fixed_point(p, x, reg_covar=reg, tol=1e-13, max_iter=5000)
            return jnp.sum(q.means**2) + jnp.sum(q.covariances) + q.weights[0]

        gx, greg = jax.grad(f, argnums=(0, 1))(x, 1e-3)
        for idx in [(0, 0), (100, 1), (200, 0)]:
            np.testing.assert_allclose(gx[idx], _fd(lambda y: f(y, 1e-3), x, idx), rtol=1e-4)
        fd_reg = (f(x, 1e-3 + 1e-6) - f(x, 1e-3 - 1e-6)) / 2e-6
        np.testing.assert_allclose(greg, fd_reg, rtol=1e-4)


def test_implicit_gradients_of_soft_kmeans_match_finite_differences():
    with jax.enable_x64(True):
        x = jnp.asarray(Z, jnp.float64)
        s = jaxmix.soft_kmeans(jax.random.key(0), x, 2, beta=2.0, tol=1e-14, max_iter=2000)

        def f(x, beta):
            c, pi = jaxmix.soft_kmeans_fixed_point(s.centers, s.weights, x, beta, tol=1e-13, max_iter=5000)
            return jnp.sum(c[0]) + pi[1]

        gx, gb = jax.grad(f, argnums=(0, 1))(x, 2.0)
        np.testing.assert_allclose(gx[3, 1], _fd(lambda y: f(y, 2.0), x, (3, 1)), rtol=1e-4)
        np.testing.assert_allclose(gb, (f(x, 2.0 + 1e-6) - f(x, 2.0 - 1e-6)) / 2e-6, rtol=1e-4)


def test_implicit_gradient_does_not_unroll_the_loop():
    # Reverse-mode JAX cannot differentiate a while_loop at all, so a gradient
    # that exists came from the custom VJP (a linear solve at the fixed point),
    # not from unrolling EM's iterations.
    from jaxmix.capabilities.implicit import _gmm_step, _iterate

    p = jaxmix.gmm(jax.random.key(0), Z, 2, covariance_type="diag").params
    x = jnp.asarray(Z)
    w = jnp.ones(x.shape[0], x.dtype)
    reg = jnp.asarray(1e-6, x.dtype)
    assert "custom_vjp_call" in str(jax.make_jaxpr(lambda x: jaxmix.gmm_fixed_point(p, x, tol=1e-6).means)(x))
    with pytest.raises(ValueError, match=r"[Rr]everse-mode"):
        jax.grad(lambda x: _iterate(_gmm_step, p, (x, w, reg), 50, 1e-6).means.sum())(x)
    g = jax.grad(lambda x: jaxmix.gmm_fixed_point(p, x, tol=1e-6).means.sum())(x)
    assert g.shape == x.shape and bool(jnp.all(jnp.isfinite(g)))


@pytest.mark.parametrize("ct", ["full", "diag"])  # tied and spherical: the round trip below
def test_gradient_fit_reaches_em_log_likelihood(ct):
    em = jaxmix.gmm(jax.random.key(0), Z, 3, covariance_type=ct, n_init=3, tol=1e-6, max_iter=500)
    start = jaxmix.gmm(jax.random.key(0), Z, 3, covariance_type=ct, max_iter=1).params
    r = jaxmix.fit_gradient(jax.random.key(1), Z, start, n_steps=2000, batch_size=128, learning_rate=0.01)
    gap = (em.log_likelihood - r.log_likelihood) / abs(em.log_likelihood)
    assert float(gap) < 0.01
    assert r.params.covariance_type == ct and r.loss.shape == (2000,)
    np.testing.assert_allclose(jaxmix.score(r.params, Z), r.log_likelihood, rtol=1e-4)


def test_raw_parametrisation_round_trips_and_trains_jointly():
    for ct, cov in (("tied", [[1.0, 0.3], [0.3, 2.0]]), ("spherical", [0.5, 2.0]), ("diag", [[1.0, 2.0], [0.5, 3.0]])):
        r = jaxmix.GMMParams.from_covariances([0.3, 0.7], [[0.0, 1.0], [2.0, -1.0]], cov, ct)
        back = jaxmix.gradient.from_raw(jaxmix.gradient.to_raw(r))
        assert back.covariance_type == ct
        np.testing.assert_allclose(back.covariances, r.covariances, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(back.weights, r.weights, rtol=1e-5)
    p = jaxmix.gmm(jax.random.key(0), Z, 2, covariance_type="full").params
    q = jaxmix.gradient.from_raw(jaxmix.gradient.to_raw(p))
    for a, b in ((q.weights, p.weights), (q.means, p.means), (q.covariances, p.covariances)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # A learnable linear map of the data trained together with the mixture.
    raw = jaxmix.gradient.to_raw(p)
    a = jnp.eye(2)

    def loss(a, raw):
        return jaxmix.gradient.nll(raw, jnp.asarray(Z) @ a) - jnp.linalg.slogdet(a)[1]

    ga, graw = jax.grad(loss, argnums=(0, 1))(a, raw)
    assert ga.shape == (2, 2) and graw.chol.shape == (2, 2, 2) and bool(jnp.all(jnp.isfinite(ga)))


def test_reverse_mode_through_a_fit_names_the_differentiable_way():
    """jax.grad through gmm / soft_kmeans names gmm_fixed_point / soft_kmeans_fixed_point, a traced
    n_clusters says it is static, and covariances' zero gradient is documented (issue 17, item 10)."""
    x = jnp.asarray(np.random.default_rng(0).normal(size=(40, 2)), jnp.float32)
    key = jax.random.key(0)
    with pytest.raises(TypeError, match="gmm_fixed_point"):
        jax.grad(lambda x: jaxmix.gmm(key, x, 2, max_iter=3).log_likelihood)(x)
    with pytest.raises(TypeError, match="soft_kmeans_fixed_point"):
        jax.grad(lambda b: jaxmix.soft_kmeans(key, x, 2, beta=b, max_iter=3).objective)(1.0)
    with pytest.raises(TypeError, match="static argument"):
        jax.jit(lambda k: jaxmix.kmeans(key, x, k).inertia)(2)
    assert "grad" in jaxmix.GMMParams.__doc__ and "from_covariances" in jaxmix.GMMParams.__doc__
