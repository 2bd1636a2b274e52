"""Spherical covariances: one variance per component (scikit-learn's "spherical", mclust's VII).

covariances (k,); precisions_cholesky (k,) = 1 / sqrt(variances).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.families._protocol import VarianceCovariance


class Spherical(VarianceCovariance):
    name = "spherical"
    mclust_name = "VII"
    supports_prior = True

    def cov_shape(self, k: int, d: int) -> tuple[int, ...]:
        return (k,)

    def n_covariance_parameters(self, k: int, d: int) -> int:
        return k

    def log_det(self, prec_chol: jax.Array, d: int) -> jax.Array:
        return d * jnp.log(prec_chol)

    def dense(self, cov: Any, k: int, d: int) -> Any:
        return cov[:, None, None] * np.eye(d, dtype=cov.dtype)[None]

    def sample_noise(self, z: jax.Array, cov: jax.Array, labels: jax.Array) -> jax.Array:
        return z * jnp.sqrt(cov)[labels][:, None]

    def lowest_relative_variance(self, cov: jax.Array, reg_covar: jax.Array, var: jax.Array) -> jax.Array:
        return (cov - reg_covar) / jnp.mean(var)

    def mahalanobis(self, xc: jax.Array, means: jax.Array, prec_chol: jax.Array) -> jax.Array:
        prec = prec_chol**2
        sq = jnp.sum(xc * xc, 1)[:, None] - 2.0 * xc @ means.T + jnp.sum(means * means, 1)[None]
        return jnp.maximum(sq, 0.0) * prec[None]

    def covariance(
        self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, previous: jax.Array | None = None
    ) -> jax.Array:
        return jnp.mean(scatter, axis=1) / nk_safe

    def covariance_map(self, scatter: jax.Array, n: jax.Array, dev: jax.Array, prior: Any, d: int) -> jax.Array:
        shrink = prior.kappa * n / (prior.kappa + n)
        tr = jnp.sum(scatter, axis=1) + shrink * jnp.sum(dev**2, axis=1)
        return (prior.scale + tr) / (prior.nu + (n + 1) * d + 2)


SPHERICAL = Spherical()
MODEL = SPHERICAL
