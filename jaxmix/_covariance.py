"""The covariance type of a Gaussian mixture by name: each function hands over to the family
module of that name (`jaxmix.families`), where what depends on the type lives.

Shapes follow scikit-learn (k components, d features):

| type        | covariances | precisions_cholesky             |
|-------------|-------------|---------------------------------|
| "full"      | (k, d, d)   | (k, d, d) upper triangular U_k  |
| "tied"      | (d, d)      | (d, d)                          |
| "diag"      | (k, d)      | (k, d) = 1 / sqrt(variances)    |
| "spherical" | (k,)        | (k,)                            |

with precision = U U^T, so `||(x - mu) U||^2` is the Mahalanobis distance.
"""

from __future__ import annotations

import jax

from jaxmix.families import COVARIANCE_MODELS, covariance_model

COVARIANCE_TYPES = tuple(COVARIANCE_MODELS)


def cov_shape(covariance_type: str, k: int, d: int) -> tuple[int, ...]:
    return covariance_model(covariance_type).cov_shape(k, d)


def n_parameters(covariance_type: str, k: int, d: int) -> int:
    """Free parameters: k - 1 weights, k d means, and the covariances."""
    return covariance_model(covariance_type).n_parameters(k, d)


def precisions_cholesky(cov: jax.Array, covariance_type: str) -> jax.Array:
    """Cholesky factors of the precisions from covariances (NaN if not positive definite)."""
    return covariance_model(covariance_type).precisions_cholesky(cov)


def covariances_from_precisions_cholesky(prec_chol: jax.Array, covariance_type: str) -> jax.Array:
    """Inverse of `precisions_cholesky`: covariance = (U U^T)^-1."""
    return covariance_model(covariance_type).covariances_from_precisions_cholesky(prec_chol)


def log_det_precision_cholesky(prec_chol: jax.Array, covariance_type: str, d: int) -> jax.Array:
    """log |U| per component: (k,), or () for "tied"."""
    return covariance_model(covariance_type).log_det(prec_chol, d)


def log_gaussian(xc: jax.Array, means: jax.Array, prec_chol: jax.Array, covariance_type: str) -> jax.Array:
    """log N(x_i; mu_k, Sigma_k) for a chunk: (c, d) -> (c, k)."""
    return covariance_model(covariance_type).log_gaussian(xc, means, prec_chol)


def second_moments(xc: jax.Array, r: jax.Array, wc: jax.Array, covariance_type: str) -> jax.Array:
    """The chunk's contribution to the second-moment statistic (`r` includes the sample weights):
    full (k, d, d) sum_i r_ik x_i x_i^T; tied (d, d) sum_i w_i x_i x_i^T; diag, spherical (k, d)."""
    return covariance_model(covariance_type).second_moments(xc, r, wc)


def zero_second_moments(covariance_type: str, k: int, d: int, dtype) -> jax.Array:
    return covariance_model(covariance_type).zero_second_moments(k, d, dtype)


def scatter(second: jax.Array, nk: jax.Array, means: jax.Array, covariance_type: str) -> jax.Array:
    """Within-component scatter W = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T from moments.

    Returns the same shape as `second` ("tied": summed over components;
    "diag"/"spherical": only the diagonal, clipped at 0 against round-off).
    """
    return covariance_model(covariance_type).scatter(second, nk, means)


def add_to_diagonal(cov: jax.Array, value: jax.Array, covariance_type: str) -> jax.Array:
    return covariance_model(covariance_type).add_to_diagonal(cov, value)


def symmetrize(cov: jax.Array, covariance_type: str) -> jax.Array:
    return covariance_model(covariance_type).symmetrize(cov)
