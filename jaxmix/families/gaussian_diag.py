"""Diagonal covariances: one variance per component and feature (scikit-learn's "diag", mclust's VVI).

covariances (k, d); precisions_cholesky (k, d) = 1 / sqrt(variances).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.families._protocol import VarianceCovariance


class Diag(VarianceCovariance):
    name = "diag"
    mclust_name = "VVI"
    supports_prior = True

    def cov_shape(self, k: int, d: int) -> tuple[int, ...]:
        return (k, d)

    def n_covariance_parameters(self, k: int, d: int) -> int:
        return k * d

    def log_det(self, prec_chol: jax.Array, d: int) -> jax.Array:
        return jnp.sum(jnp.log(prec_chol), axis=-1)

    def dense(self, cov: Any, k: int, d: int) -> Any:
        return cov[:, :, None] * np.eye(d, dtype=cov.dtype)[None]

    def sample_noise(self, z: jax.Array, cov: jax.Array, labels: jax.Array) -> jax.Array:
        return z * jnp.sqrt(cov)[labels]

    def lowest_relative_variance(self, cov: jax.Array, reg_covar: jax.Array, var: jax.Array) -> jax.Array:
        return jnp.min((cov - reg_covar) / var[None], axis=1)

    def mahalanobis(self, xc: jax.Array, means: jax.Array, prec_chol: jax.Array) -> jax.Array:
        # expanded into GEMMs
        prec = prec_chol**2
        maha = (xc * xc) @ prec.T - 2.0 * xc @ (means * prec).T + jnp.sum(means * means * prec, 1)[None]
        return jnp.maximum(maha, 0.0)

    def covariance(
        self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, previous: jax.Array | None = None
    ) -> jax.Array:
        return scatter / nk_safe[:, None]

    def covariance_map(self, scatter: jax.Array, n: jax.Array, dev: jax.Array, prior: Any, d: int) -> jax.Array:
        shrink = prior.kappa * n / (prior.kappa + n)
        return (prior.scale + scatter + shrink[:, None] * dev**2) / (prior.nu + n + 3)[:, None]


DIAG = Diag()
MODEL = DIAG
