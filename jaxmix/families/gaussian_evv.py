"""EVV: equal volumes, variable shapes and orientations, Sigma_k = lambda C_k, |C_k| = 1 (mclust's EVV).

Stored like "full": covariances (k, d, d). Closed form: C_k = W_k / |W_k|^(1/d),
lambda = sum_k |W_k|^(1/d) / n.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmix.families._decomposition import geometric_mean, rotate, shape_of
from jaxmix.families.gaussian_full import Full


class EVV(Full):
    name = "EVV"
    mclust_name = "EVV"
    supports_prior = False

    def n_covariance_parameters(self, k: int, d: int) -> int:
        return 1 + k * (d * (d + 1) // 2 - 1)

    def covariance(
        self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, previous: jax.Array | None = None
    ) -> jax.Array:
        e, vecs = jnp.linalg.eigh(scatter)
        volume = jnp.sum(jnp.where(nk > 0, geometric_mean(e), 0.0)) / jnp.sum(nk)
        return rotate(vecs, volume * shape_of(e))


MODEL = EVV()
