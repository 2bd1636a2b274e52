"""Bad input to the Gaussian mixture and its toolbox."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix

KEY = jax.random.key(0)
X = np.random.default_rng(0).normal(size=(30, 2)).astype(np.float32)


def test_bad_covariance_type():
    with pytest.raises(ValueError, match="covariance_type"):
        jaxmix.gmm(KEY, X, 2, covariance_type="ellipsoidal")


def test_bad_init():
    with pytest.raises(ValueError, match="init must be one of"):
        jaxmix.gmm(KEY, X, 2, init="kmeans++")
    with pytest.raises(ValueError, match="init must be one of"):
        jaxmix.gmm(KEY, X, 2, init=X[:2])


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"weights_init": [0.5, 0.6]}, "sum to 1"),
        ({"weights_init": [1.5, -0.5]}, ">= 0"),
        ({"weights_init": [1.0]}, "1 entries"),
        ({"means_init": np.zeros((3, 2))}, "3 rows"),
        ({"precisions_init": np.array([[[1.0, 2.0], [2.0, 1.0]]] * 2)}, "positive definite"),
        ({"precisions_init": np.array([[[1.0, 0.5], [0.0, 1.0]]] * 2)}, "symmetric"),
        ({"precisions_init": np.eye(2)}, "shape"),
        ({"reg_covar": -1.0}, "reg_covar"),
        ({"tol": float("nan")}, "tol"),
        ({"prior": jaxmix.GMMPrior(dof=0.5)}, "dof"),
        ({"prior": jaxmix.GMMPrior(weight_concentration=0.5)}, "weight_concentration"),
        ({"prior": jaxmix.GMMPrior(scale=-np.eye(2))}, "positive definite"),
        ({"prior": jaxmix.GMMPrior(mean=np.zeros(3))}, "3 entries"),
    ],
)
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        jaxmix.gmm(KEY, X, 2, **kw)


def test_diag_precisions_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        jaxmix.gmm(KEY, X, 2, covariance_type="diag", precisions_init=np.array([[1.0, 0.0], [1.0, 1.0]]))


def test_prior_type():
    with pytest.raises(TypeError, match="GMMPrior"):
        jaxmix.gmm(KEY, X, 2, prior={"dof": 3})


def test_bad_data_and_n_components():
    with pytest.raises(ValueError, match="NaN"):
        jaxmix.gmm(KEY, np.full((5, 2), np.nan), 2)
    with pytest.raises(ValueError, match="n_components"):
        jaxmix.gmm(KEY, X, 31)


def test_toolbox_rejects_mismatch():
    p = jaxmix.gmm(KEY, X, 2).params
    with pytest.raises(ValueError, match="features"):
        jaxmix.log_prob(p, np.zeros((3, 3)))
    with pytest.raises(TypeError, match="GMMParams"):
        jaxmix.predict(X[:2], X)
    bad = jaxmix.GMMParams(jnp.array([0.7, 0.7]), p.means, p.covariances, p.precisions_cholesky, "full")
    with pytest.raises(ValueError, match="sum to 1"):
        jaxmix.score(bad, X)
    with pytest.raises(ValueError, match="n_samples"):
        jaxmix.sample(KEY, p, 0)
