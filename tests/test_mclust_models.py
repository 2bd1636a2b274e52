"""mclust's fourteen covariance models (issue 18): counts, densities, M-steps against NumPy, structure, EM."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, stats
from scipy.linalg import expm

import jaxmix
from jaxmix.families import MCLUST_MODELS
from jaxmix.families.registry import COVARIANCE_MODELS, check_covariance_type, covariance_model

# mclust 6's nVarParams(model, d = 4, G = 3), written out (the covariance part of nMclustParams).
MCLUST_VAR_PARAMS_G3_D4 = {
    "EII": 1,
    "VII": 3,
    "EEI": 4,
    "VEI": 6,
    "EVI": 10,
    "VVI": 12,
    "EEE": 10,
    "VEE": 12,
    "EVE": 16,
    "VVE": 18,
    "EEV": 22,
    "VEV": 24,
    "EVV": 28,
    "VVV": 30,
}


def _spd(rng, k, d):
    a = rng.normal(size=(k, d, d))
    return a @ np.swapaxes(a, 1, 2) + d * np.eye(d)


def _stored(model, mats):
    """Covariances in `model`'s storage shape, from (k, d, d) SPD matrices."""
    if model.matrix:
        return mats[0] if model.shared else mats
    diag = np.diagonal(mats, axis1=1, axis2=2).copy()
    return diag if len(model.cov_shape(1, 1)) == 2 else diag[:, 0]


def _objective(covs, scatter, nk):
    """F = sum_k n_k log|Sigma_k| + tr(W_k Sigma_k^-1): what every model's M-step minimises."""
    return sum(
        n * np.linalg.slogdet(s)[1] + np.trace(w @ np.linalg.inv(s)) for s, w, n in zip(covs, scatter, nk, strict=True)
    )


def _scatter(rng, k=3, d=3, n=60):
    """Weighted scatter matrices W_k and counts n_k of random data and responsibilities."""
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    r = rng.dirichlet(np.ones(k), size=n)
    nk = r.sum(0)
    means = (r.T @ x) / nk[:, None]
    w = np.stack([((x - m).T * r[:, j]) @ (x - m) for j, m in enumerate(means)])
    return w, nk


def _m_step(name, w, nk):
    """The family's ML covariances as (k, d, d) matrices (no reg_covar), float64."""
    model = covariance_model(name)
    k, d = nk.size, w.shape[-1]
    with jax.enable_x64(True):
        if model.matrix and not model.shared:
            scatter = jnp.asarray(w)
        elif model.matrix:
            scatter = jnp.asarray(w.sum(0))
        else:
            scatter = jnp.asarray(np.diagonal(w, axis1=1, axis2=2))
        cov = np.asarray(model.covariance(scatter, jnp.asarray(nk), jnp.asarray(nk)))
    return model.dense(cov, k, d)


def test_parameter_counts_equal_mclusts():
    for name, var in MCLUST_VAR_PARAMS_G3_D4.items():
        assert covariance_model(name).n_parameters(3, 4) == 3 * 4 + (3 - 1) + var, name
    assert set(MCLUST_VAR_PARAMS_G3_D4) == set(MCLUST_MODELS)
    assert covariance_model("E").n_parameters(3, 1) == 3 + 2 + 1
    assert covariance_model("V").n_parameters(3, 1) == 3 + 2 + 3


@pytest.mark.parametrize("name", list(COVARIANCE_MODELS))
def test_log_density_of_every_model_matches_scipy(name):
    model = covariance_model(name)
    k, d = 3, 1 if model.univariate_only else 3
    rng = np.random.default_rng(5)
    cov = _stored(model, _spd(rng, k, d))
    assert cov.shape == model.cov_shape(k, d)
    x, means = rng.normal(size=(9, d)), rng.normal(size=(k, d))
    with jax.enable_x64(True):
        got = np.asarray(model.log_gaussian(jnp.asarray(x), jnp.asarray(means), model.precisions_cholesky(cov)))
    dense = model.dense(cov, k, d)
    want = np.stack([stats.multivariate_normal(means[j], dense[j]).logpdf(x) for j in range(k)], axis=1)
    np.testing.assert_allclose(got, want.reshape(got.shape), rtol=1e-8, atol=1e-8)


def _structure(cov):
    """Per component: volume |Sigma|^(1/d), shape (sorted eigenvalues / volume), eigenvectors."""
    e, vecs = np.linalg.eigh(cov)
    vol = np.exp(np.mean(np.log(e), axis=1))
    return vol, e / vol[:, None], vecs


@pytest.mark.parametrize("name", MCLUST_MODELS)
def test_m_step_result_has_the_models_structure(name):
    w, nk = _scatter(np.random.default_rng(11))
    cov = _m_step(name, w, nk)
    vol, shape, _ = _structure(cov)
    volume, shp, orient = name
    if volume == "E":
        np.testing.assert_allclose(vol, vol[0], rtol=1e-9)
    else:
        assert np.ptp(vol) > 1e-3 * vol.mean()
    if shp in "EI":
        np.testing.assert_allclose(shape, np.broadcast_to(shape[0], shape.shape), rtol=1e-7)
    if shp == "I":
        np.testing.assert_allclose(shape, 1.0, rtol=1e-9)
    if orient == "I":
        off = cov - np.stack([np.diag(np.diag(c)) for c in cov])
        assert np.abs(off).max() == 0.0
    elif orient == "E":  # one orientation: the covariances commute
        for a, b in itertools.combinations(cov, 2):
            np.testing.assert_allclose(a @ b, b @ a, atol=1e-8 * np.abs(a @ b).max())
    else:
        a, b = cov[0], cov[1]
        assert np.abs(a @ b - b @ a).max() > 1e-3 * np.abs(a @ b).max()


# Model A inside model B (B's set holds A's): B's optimum is at least as good.
NESTED = [
    ("EII", "VII"),
    ("EII", "EEI"),
    ("VII", "VEI"),
    ("EEI", "VEI"),
    ("EEI", "EVI"),
    ("VEI", "VVI"),
    ("EVI", "VVI"),
    ("EEI", "EEE"),
    ("VEI", "VEE"),
    ("EVI", "EVE"),
    ("VVI", "VVE"),
    ("EEE", "VEE"),
    ("EEE", "EVE"),
    ("EEE", "EEV"),
    ("VEE", "VVE"),
    ("EVE", "VVE"),
    ("VEE", "VEV"),
    ("EEV", "VEV"),
    ("EVE", "EVV"),
    ("EEV", "EVV"),
    ("VEV", "VVV"),
    ("EVV", "VVV"),
    ("VVE", "VVV"),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_m_steps_respect_the_models_nesting(seed):
    w, nk = _scatter(np.random.default_rng(seed))
    f = {name: _objective(_m_step(name, w, nk), w, nk) for name in MCLUST_MODELS}
    for inner, outer in NESTED:
        assert f[outer] <= f[inner] + 1e-9 * abs(f[inner]), (inner, outer, f[inner], f[outer])


def _numpy_m_step(name, w, nk):
    """An independent NumPy M-step (Celeux and Govaert 1995), loops over components, float64."""
    k, d = nk.size, w.shape[-1]
    n = nk.sum()
    diag = np.array([np.diag(m) for m in w])
    gm = lambda v: np.prod(v) ** (1.0 / d)  # noqa: E731
    if name == "EII":
        return np.stack([np.trace(w.sum(0)) / (n * d) * np.eye(d)] * k)
    if name == "EEI":
        return np.stack([np.diag(diag.sum(0) / n)] * k)
    if name == "EVI":
        lam = sum(gm(v) for v in diag) / n
        return np.stack([lam * np.diag(v / gm(v)) for v in diag])
    if name == "EVV":
        lam = sum(np.linalg.det(m) ** (1.0 / d) for m in w) / n
        return np.stack([lam * m / np.linalg.det(m) ** (1.0 / d) for m in w])
    if name == "EEV":
        eig = [np.linalg.eigh(m) for m in w]
        omega = sum(e for e, _ in eig) / n
        return np.stack([v @ np.diag(omega) @ v.T for _, v in eig])
    if name in ("VEI", "VEE", "VEV"):
        if name == "VEV":
            eig = [np.linalg.eigh(m) for m in w]
            mats = [np.diag(e) for e, _ in eig]
        else:
            mats = [np.diag(v) for v in diag] if name == "VEI" else list(w)
        lam = np.array([np.trace(m) / (d * c) for m, c in zip(mats, nk, strict=True)])
        for _ in range(10_000):
            c = sum(m / lv for m, lv in zip(mats, lam, strict=True))
            c = c / np.linalg.det(c) ** (1.0 / d)
            new = np.array([np.trace(m @ np.linalg.inv(c)) / (d * cn) for m, cn in zip(mats, nk, strict=True)])
            if np.max(np.abs(new - lam) / new) < 1e-14:
                break
            lam = new
        if name == "VEV":
            return np.stack([lv * v @ c @ v.T for lv, (_, v) in zip(lam, eig, strict=True)])
        return np.stack([lv * c for lv in lam])
    raise KeyError(name)


@pytest.mark.parametrize("name", ["EII", "EEI", "EVI", "EVV", "EEV", "VEI", "VEE", "VEV"])
def test_m_step_equals_an_independent_numpy_m_step(name):
    w, nk = _scatter(np.random.default_rng(3))
    np.testing.assert_allclose(_m_step(name, w, nk), _numpy_m_step(name, w, nk), rtol=1e-6, atol=1e-9)


def _orientation(theta):
    """An orthogonal 3 x 3 matrix from 3 angles (the exponential of a skew-symmetric matrix)."""
    a, b, c = theta
    return expm(np.array([[0.0, -a, -b], [a, 0.0, -c], [b, c, 0.0]]))


@pytest.mark.parametrize("name", ["EVE", "VVE"])
def test_common_orientation_m_step_matches_a_direct_minimisation(name):
    """EVE and VVE against scipy minimising F over the orientation, the volumes and shapes profiled out."""
    w, nk = _scatter(np.random.default_rng(4))
    n, d = nk.sum(), 3

    def covs(theta):
        dm = _orientation(theta)
        b = np.array([np.diag(dm.T @ m @ dm) for m in w])
        if name == "VVE":
            return np.stack([dm @ np.diag(v / c) @ dm.T for v, c in zip(b, nk, strict=True)])
        gm = np.prod(b, axis=1) ** (1.0 / d)
        lam = gm.sum() / n
        return np.stack([dm @ np.diag(lam * v / g) @ dm.T for v, g in zip(b, gm, strict=True)])

    best = min(
        (
            optimize.minimize(lambda t: _objective(covs(t), w, nk), t0, method="Nelder-Mead", tol=1e-12)
            for t0 in np.random.default_rng(0).uniform(-np.pi, np.pi, size=(4, 3))
        ),
        key=lambda r: r.fun,
    )
    ours = _m_step(name, w, nk)
    assert _objective(ours, w, nk) <= best.fun + 1e-7 * abs(best.fun)
    np.testing.assert_allclose(ours, covs(best.x), rtol=1e-3, atol=1e-4)


def _mixture_data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, 0.0], [0.0, 5.0, 2.0]])
    mats = _spd(rng, 3, 3) / 3
    labels = rng.integers(0, 3, size=n)
    z = rng.normal(size=(n, 3))
    return centres[labels] + np.einsum("nij,nj->ni", np.linalg.cholesky(mats)[labels], z)


@pytest.mark.parametrize("name", ["VEI", "EVE", "VVE", "VEV"])  # the iterative M-steps
def test_em_never_lowers_the_likelihood(name):
    x = _mixture_data()
    with jax.enable_x64(True):
        r = jaxmix.gmm(jax.random.key(1), x, 3, covariance_type=name, n_init=1, tol=0.0, max_iter=40, reg_covar=0.0)
        h = np.asarray(r.history)
    assert r.params.covariance_type == name
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:])), np.diff(h).min()
    assert h[-1] > h[0]


def test_univariate_names_need_one_feature_and_new_models_refuse_a_prior():
    x = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match="one feature"):
        jaxmix.gmm(jax.random.key(0), x, 2, covariance_type="E")
    with pytest.raises(ValueError, match="no conjugate-prior"):
        jaxmix.gmm(jax.random.key(0), x, 2, covariance_type="VEV", prior=True)
    assert check_covariance_type("VVV", 2, prior=True).supports_prior
    with pytest.raises(ValueError, match="differentiate"):
        p = jaxmix.gmm(jax.random.key(0), x, 2, covariance_type="VEV").params
        jaxmix.gmm_fixed_point(p, x)


def test_select_over_mclusts_models_on_one_feature_uses_e_and_v():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, 150), rng.normal(6, 3, 150)])[:, None]
    s = jaxmix.select(jax.random.key(0), x, (1, 2, 3), "mclust", n_init=2)
    assert s.covariance_types == ("E", "V")
    assert (s.best_k, s.best_covariance_type) == (2, "V")
    assert "V" in s.table()


def _two_blobs():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (150, 2)), rng.normal(5, 2, (150, 2)) @ [[1, 0.5], [0, 1]]])
    return x.astype(np.float32)


def test_model_files_and_the_estimator_take_an_mclust_model(tmp_path):
    from jaxmix.sklearn import GaussianMixture

    x = _two_blobs()
    r = jaxmix.gmm(jax.random.key(0), x, 2, covariance_type="VEV")
    jaxmix.save(r, tmp_path / "m.npz")
    back = jaxmix.load(tmp_path / "m.npz")
    assert back.params.covariance_type == "VEV"
    np.testing.assert_array_equal(np.asarray(back.params.covariances), np.asarray(r.params.covariances))

    est = GaussianMixture(2, covariance_type="VEV", random_state=0).fit(x)
    assert est.covariances_.shape == (2, 2, 2) and est.predict(x).shape == (300,)
    p = covariance_model("VEV").n_parameters(2, 2)
    np.testing.assert_allclose(est.bic(x), -2 * est.score(x) * 300 + p * np.log(300), rtol=1e-6)
    assert est.sample(7)[0].shape == (7, 2)


def test_batches_and_streams_take_an_mclust_model():
    """Heavy (tests/conftest.py): a program per capability."""
    import jaxmix.stream as js

    x = _two_blobs()
    r = jaxmix.gmm(jax.random.key(0), x, 2, covariance_type="VEV")
    b = jaxmix.gmm_batch(jax.random.key(0), np.stack([x, x[::-1]]), 2, covariance_type="VEV")
    np.testing.assert_allclose(np.asarray(b.log_likelihood), float(r.log_likelihood), rtol=1e-4)

    g = js.gmm(jax.random.key(0), x, 2, covariance_type="VEV", batch_rows=64)
    assert g.params.covariance_type == "VEV"
    assert abs(float(g.log_likelihood) - float(r.log_likelihood)) < 1e-3
    o = js.online_gmm(jax.random.key(0), x, 2, covariance_type="VEV", batch_size=64)
    assert o.params.covariances.shape == (2, 2, 2) and np.isfinite(np.asarray(o.params.covariances)).all()


def _rotation(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _generated_by(name, n=1500, seed=0):
    """Two components in 2-D whose covariances have exactly the structure `name` says."""
    volume, shape, orient = name
    lam = (1.0, 1.0) if volume == "E" else (1.0, 4.0)
    shapes = {"I": [(1.0, 1.0)] * 2, "E": [(4.0, 0.25)] * 2, "V": [(4.0, 0.25), (2.0, 0.5)]}[shape]
    angles = {"I": (0.0, 0.0), "E": (0.6, 0.6), "V": (0.6, -0.7)}[orient]
    covs = [lv * _rotation(t) @ np.diag(a) @ _rotation(t).T for lv, a, t in zip(lam, shapes, angles, strict=True)]
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    z = rng.normal(size=(n, 2))
    centres = np.array([[0.0, 0.0], [9.0, 3.0]])
    return centres[labels] + np.einsum("nij,nj->ni", np.linalg.cholesky(np.stack(covs))[labels], z)


@pytest.mark.parametrize("name", MCLUST_MODELS)
def test_select_picks_the_generating_model(name):
    """Heavy (tests/conftest.py): fourteen selects over the fourteen models."""
    with jax.enable_x64(True):
        s = jaxmix.select(jax.random.key(0), _generated_by(name), (1, 2, 3), "mclust", n_init=3)
    assert (s.best_k, s.best_covariance_type) == (2, name), s.table()


@pytest.mark.parametrize("name", ["EVI", "VEV"])
def test_one_em_iteration_equals_numpy(name):
    """From the same start, one EM iteration of `jaxmix.gmm` equals a NumPy E-step and the NumPy M-step above."""
    x = _mixture_data(n=200)
    rng = np.random.default_rng(7)
    k = 3
    model = covariance_model(name)
    r0 = rng.dirichlet(np.ones(k), size=len(x))
    nk0 = r0.sum(0)
    m0 = (r0.T @ x) / nk0[:, None]
    w0 = np.stack([((x - m).T * r0[:, j]) @ (x - m) for j, m in enumerate(m0)])
    cov0 = _numpy_m_step(name, w0, nk0)  # a start inside the model's set
    weights0 = np.array([0.2, 0.3, 0.5])
    precisions0 = np.linalg.inv(cov0) if model.matrix else 1.0 / np.diagonal(cov0, axis1=1, axis2=2)
    with jax.enable_x64(True):
        got = jaxmix.gmm(
            jax.random.key(0),
            x,
            k,
            covariance_type=name,
            weights_init=weights0,
            means_init=m0,
            precisions_init=precisions0,
            max_iter=1,
            tol=0.0,
            reg_covar=0.0,
        ).params
    logp = np.stack([stats.multivariate_normal(m0[j], cov0[j]).logpdf(x) for j in range(k)], 1) + np.log(weights0)
    resp = np.exp(logp - logp.max(1, keepdims=True))
    resp /= resp.sum(1, keepdims=True)
    nk = resp.sum(0)
    means = (resp.T @ x) / nk[:, None]
    w = np.stack([((x - m).T * resp[:, j]) @ (x - m) for j, m in enumerate(means)])
    np.testing.assert_allclose(np.asarray(got.weights), nk / nk.sum(), rtol=1e-9)
    np.testing.assert_allclose(np.asarray(got.means), means, rtol=1e-9, atol=1e-9)
    dense = model.dense(np.asarray(got.covariances), k, 3)
    np.testing.assert_allclose(dense, _numpy_m_step(name, w, nk), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["EVE", "VVE"])
def test_common_orientation_of_a_component_on_fewer_rows_than_features_returns(name):
    """A component on 4 rows in 6-D has a singular scatter: its shape's inverse overflows float32.
    The orientation's SVD then got inf and XLA:CPU's LAPACK never returned (select on mclust's
    banknote data hung); the M-step now gives finite covariances from the finite part."""
    rng = np.random.default_rng(0)
    d = 6
    rows = [rng.normal(size=(n, d)) * (1.0 if n > d else 1e-3) for n in (40, 30, 4)]
    w = np.stack([(r - r.mean(0)).T @ (r - r.mean(0)) for r in rows]).astype(np.float32)
    w[2] = np.outer(rows[2][0], rows[2][0]).astype(np.float32) * 1e-6  # rank one: b has exact zeros
    nk = np.array([40.0, 30.0, 4.0], np.float32)
    model = covariance_model(name)
    previous = jnp.broadcast_to(jnp.eye(d, dtype=jnp.float32), (3, d, d))
    for prev in (None, previous):
        cov = np.asarray(jax.jit(model.covariance)(jnp.asarray(w), jnp.asarray(nk), jnp.asarray(nk), prev))
        assert cov.shape == (3, d, d) and np.all(np.isfinite(cov))
    from jaxmix.families._decomposition import finite_direction

    g = jnp.array([[np.inf, 1.0], [2.0, -np.inf]], jnp.float32)
    np.testing.assert_array_equal(np.asarray(finite_direction(g)), [[1.0, 0.0], [0.0, -1.0]])
    np.testing.assert_allclose(
        np.asarray(finite_direction(jnp.array([[4.0, np.nan], [2.0, 1.0]]))), [[1, 0], [0.5, 0.25]]
    )
