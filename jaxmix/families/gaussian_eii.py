"""EII: one variance for every component and feature, Sigma_k = lambda I (mclust's EII; "E" for d = 1).

Stored like "spherical": covariances (k,), all equal. M-step: lambda = tr(sum_k W_k) / (n d).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmix.families.gaussian_spherical import Spherical


class EII(Spherical):
    name = "EII"
    mclust_name = "EII"
    supports_prior = False

    def n_covariance_parameters(self, k: int, d: int) -> int:
        return 1

    def covariance(
        self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, previous: jax.Array | None = None
    ) -> jax.Array:
        d = scatter.shape[1]
        return jnp.broadcast_to(jnp.sum(scatter) / (d * jnp.sum(nk)), nk.shape)


MODEL = EII()
