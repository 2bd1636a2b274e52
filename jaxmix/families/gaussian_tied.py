"""One covariance shared by all components (scikit-learn's "tied", mclust's EEE).

covariances (d, d); precisions_cholesky (d, d), upper triangular U.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.families._protocol import MatrixCovariance


class Tied(MatrixCovariance):
    name = "tied"
    mclust_name = "EEE"
    supports_prior = True
    shared = True

    def cov_shape(self, k: int, d: int) -> tuple[int, ...]:
        return (d, d)

    def second_shape(self, k: int, d: int) -> tuple[int, ...]:
        return (d, d)

    def n_covariance_parameters(self, k: int, d: int) -> int:
        return d * (d + 1) // 2

    def dense(self, cov: Any, k: int, d: int) -> Any:
        return cov[None] * np.ones((k, 1, 1), dtype=cov.dtype)

    def sample_noise(self, z: jax.Array, cov: jax.Array, labels: jax.Array) -> jax.Array:
        return z @ jnp.linalg.cholesky(cov).T

    def block_width(self, k: int, d: int) -> int:
        return max(k, d * d, d)

    def pair_work(self, d: int) -> int:
        return 2 * d

    def mahalanobis(self, xc: jax.Array, means: jax.Array, prec_chol: jax.Array) -> jax.Array:
        y = xc @ prec_chol
        mu = means @ prec_chol
        return jnp.maximum(jnp.sum(y * y, 1)[:, None] - 2.0 * y @ mu.T + jnp.sum(mu * mu, 1)[None], 0.0)

    def second_moments(self, xc: jax.Array, r: jax.Array, wc: jax.Array) -> jax.Array:
        return xc.T @ (xc * wc[:, None])  # sum_i w_i x_i x_i^T

    def scatter(self, second: jax.Array, nk: jax.Array, means: jax.Array) -> jax.Array:
        return second - (nk[:, None] * means).T @ means

    def covariance(
        self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, previous: jax.Array | None = None
    ) -> jax.Array:
        return scatter / jnp.sum(nk)

    def covariance_map(self, scatter: jax.Array, n: jax.Array, dev: jax.Array, prior: Any, d: int) -> jax.Array:
        k = n.shape[0]
        shrink = prior.kappa * n / (prior.kappa + n)
        mean_term = (shrink[:, None] * dev).T @ dev
        return (prior.scale + scatter + mean_term) / (prior.nu + jnp.sum(n) + k + d + 1)


TIED = Tied()
MODEL = TIED
