"""EVI: equal volumes, variable diagonal shapes, Sigma_k = lambda A_k (mclust's EVI).

Stored like "diag": covariances (k, d). Closed form (Celeux and Govaert 1995):
A_k = diag(W_k) / |diag(W_k)|^(1/d), lambda = sum_k |diag(W_k)|^(1/d) / n.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmix.families._decomposition import geometric_mean, shape_of
from jaxmix.families.gaussian_diag import Diag


class EVI(Diag):
    name = "EVI"
    mclust_name = "EVI"
    supports_prior = False

    def n_covariance_parameters(self, k: int, d: int) -> int:
        return 1 + k * (d - 1)

    def covariance(
        self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, previous: jax.Array | None = None
    ) -> jax.Array:
        volume = jnp.sum(jnp.where(nk > 0, geometric_mean(scatter), 0.0)) / jnp.sum(nk)
        return volume * shape_of(scatter)


MODEL = EVI()
