"""EVE: equal volumes, variable shapes, one orientation, Sigma_k = lambda D A_k D^T (mclust's EVE).

Stored like "full": covariances (k, d, d). No closed form: alternate the
shapes given D (A_k = shape(diag(D^T W_k D)), lambda = sum_k |diag(D^T W_k D)|^(1/d) / n)
and a majorise-minimise step of D (`_decomposition.common_orientation`), from
the orientation of sum_k W_k, until D changes by less than sqrt(eps).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmix.families._decomposition import diagonal_in, fit_common_orientation, geometric_mean, rotate, shape_of
from jaxmix.families.gaussian_full import Full


class EVE(Full):
    name = "EVE"
    mclust_name = "EVE"
    supports_prior = False
    iterative = True

    def n_covariance_parameters(self, k: int, d: int) -> int:
        return 1 + k * (d - 1) + d * (d - 1) // 2

    def covariance(
        self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, previous: jax.Array | None = None
    ) -> jax.Array:
        live = (nk > 0)[:, None]
        orient = fit_common_orientation(scatter, previous, lambda b: jnp.where(live, 1.0 / shape_of(b), 0.0))
        b = diagonal_in(orient, scatter)
        volume = jnp.sum(jnp.where(nk > 0, geometric_mean(b), 0.0)) / jnp.sum(nk)
        return rotate(orient, volume * shape_of(b))


MODEL = EVE()
