"""EEV: equal volumes and shapes, variable orientations, Sigma_k = lambda D_k A D_k^T (mclust's EEV).

Stored like "full": covariances (k, d, d). Closed form (Celeux and Govaert
1995): with W_k = L_k diag(w_k) L_k^T (eigenvalues in ascending order),
D_k = L_k and lambda A = diag(sum_k w_k) / n.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmix.families._decomposition import rotate
from jaxmix.families.gaussian_full import Full


class EEV(Full):
    name = "EEV"
    mclust_name = "EEV"
    supports_prior = False

    def n_covariance_parameters(self, k: int, d: int) -> int:
        return d + k * d * (d - 1) // 2

    def covariance(
        self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, previous: jax.Array | None = None
    ) -> jax.Array:
        e, vecs = jnp.linalg.eigh(scatter)
        e = jnp.maximum(e, 0.0)
        common = jnp.sum(jnp.where((nk > 0)[:, None], e, 0.0), 0) / jnp.sum(nk)
        return rotate(vecs, jnp.broadcast_to(common, e.shape))


MODEL = EEV()
