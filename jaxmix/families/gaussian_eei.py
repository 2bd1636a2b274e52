"""EEI: one diagonal covariance for every component, Sigma_k = lambda A (mclust's EEI).

Stored like "diag": covariances (k, d), all rows equal. M-step: diag(sum_k W_k) / n.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmix.families.gaussian_diag import Diag


class EEI(Diag):
    name = "EEI"
    mclust_name = "EEI"
    supports_prior = False

    def n_covariance_parameters(self, k: int, d: int) -> int:
        return d

    def covariance(
        self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, previous: jax.Array | None = None
    ) -> jax.Array:
        return jnp.broadcast_to(jnp.sum(scatter, 0) / jnp.sum(nk), scatter.shape)


MODEL = EEI()
