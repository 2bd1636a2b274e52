"""Component families: each covariance module on the protocol, checked against direct formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmix.families import SCIKIT_LEARN_TYPES
from jaxmix.families._protocol import CovarianceModel
from jaxmix.families.registry import covariance_model


def _full_cov(name, cov, k, d):
    """The (k, d, d) matrices a family's covariances stand for."""
    if name == "full":
        return np.asarray(cov)
    if name == "tied":
        return np.broadcast_to(np.asarray(cov), (k, d, d))
    if name == "diag":
        return np.stack([np.diag(c) for c in np.asarray(cov)])
    return np.stack([c * np.eye(d) for c in np.asarray(cov)])


@pytest.mark.parametrize("name", SCIKIT_LEARN_TYPES)
def test_each_family_matches_the_gaussian_density_and_counts(name):
    model = covariance_model(name)
    assert isinstance(model, CovarianceModel) and model.name == name
    k, d = 3, 4
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, d))
    means = rng.normal(size=(k, d))
    a = rng.normal(size=(k, d, d))
    mats = a @ np.swapaxes(a, 1, 2) + d * np.eye(d)
    cov = {"full": mats, "tied": mats[0], "diag": np.stack([np.diag(m) for m in mats]), "spherical": mats[:, 0, 0]}[
        name
    ]
    assert cov.shape == model.cov_shape(k, d)
    with jax.enable_x64(True):
        prec = model.precisions_cholesky(jnp.asarray(cov))
        got = np.asarray(model.log_gaussian(jnp.asarray(x), jnp.asarray(means), prec))
        back = np.asarray(model.covariances_from_precisions_cholesky(prec))
    full = _full_cov(name, cov, k, d)
    want = np.stack(
        [
            -0.5
            * (
                d * np.log(2 * np.pi)
                + np.linalg.slogdet(s)[1]
                + np.einsum("id,de,ie->i", x - m, np.linalg.inv(s), x - m)
            )
            for m, s in zip(means, full, strict=True)
        ],
        axis=1,
    )
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(back, cov, rtol=1e-10)
    per_component = {"full": d * (d + 1) // 2, "tied": 0, "diag": d, "spherical": 1}[name]
    shared = d * (d + 1) // 2 if name == "tied" else 0
    assert model.n_parameters(k, d) == k - 1 + k * d + k * per_component + shared


@pytest.mark.parametrize("name", SCIKIT_LEARN_TYPES)
def test_each_family_m_step_is_the_weighted_covariance(name):
    model = covariance_model(name)
    k, d = 2, 3
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, d))
    r = rng.dirichlet(np.ones(k), size=50)
    w = rng.uniform(0.5, 2.0, size=50)
    rw = r * w[:, None]
    with jax.enable_x64(True):
        second = model.second_moments(jnp.asarray(x), jnp.asarray(rw), jnp.asarray(w))
        nk = rw.sum(0)
        means = (rw.T @ x) / nk[:, None]
        cov = np.asarray(model.covariance(model.scatter(second, jnp.asarray(nk), jnp.asarray(means)), nk, nk))
    full = np.stack([((x - m).T * rw[:, j]) @ (x - m) / nk[j] for j, m in enumerate(means)])
    want = {
        "full": full,
        "tied": np.einsum("k,kde->de", nk, full) / nk.sum(),
        "diag": np.stack([np.diag(f) for f in full]),
        "spherical": np.array([np.trace(f) / d for f in full]),
    }[name]
    np.testing.assert_allclose(cov, want, rtol=1e-10, atol=1e-12)


def test_an_unknown_family_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"covariance_type must be one of .*'VEV'.*'XYZ'"):
        covariance_model("XYZ")


@pytest.mark.parametrize("name", SCIKIT_LEARN_TYPES)
def test_each_family_expands_to_dense_matrices_and_samples_with_them(name):
    model = covariance_model(name)
    k, d = 2, 3
    rng = np.random.default_rng(2)
    a = rng.normal(size=(k, d, d))
    mats = a @ np.swapaxes(a, 1, 2) + np.eye(d)
    cov = {
        "full": mats,
        "tied": mats[0],
        "diag": np.diagonal(mats, axis1=1, axis2=2).copy(),
        "spherical": mats[:, 0, 0],
    }[name]
    dense = model.dense(cov, k, d)
    assert isinstance(dense, np.ndarray)  # NumPy in, NumPy out (no eager JAX operation)
    np.testing.assert_array_equal(dense, _full_cov(name, cov, k, d))
    labels = np.repeat(np.arange(k), 20_000)
    z = jax.random.normal(jax.random.key(0), (labels.size, d))
    noise = np.asarray(model.sample_noise(z, jnp.asarray(cov, jnp.float32), jnp.asarray(labels)))
    for j in range(k):
        np.testing.assert_allclose(np.cov(noise[labels == j].T), dense[j], rtol=0.06, atol=0.06 * dense[j].max())
    if not model.shared:  # one component's unit covariance, as the toolbox pads components with
        unit = model.add_to_diagonal(np.zeros(model.cov_shape(1, d)[1:]), 1.0)
        np.testing.assert_array_equal(model.dense(np.stack([unit] * k), k, d), np.broadcast_to(np.eye(d), (k, d, d)))
