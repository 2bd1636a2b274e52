"""VEV: variable volumes and orientations, one shape, Sigma_k = lambda_k D_k A D_k^T (mclust's VEV).

Stored like "full": covariances (k, d, d). With W_k = L_k diag(w_k) L_k^T
(eigenvalues ascending), D_k = L_k; then alternate A = shape(sum_k w_k / lambda_k)
and lambda_k = sum_j (w_kj / A_j) / (d n_k) (Celeux and Govaert 1995) until converged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmix.families._decomposition import rotate, volumes_and_common_shape
from jaxmix.families.gaussian_full import Full


class VEV(Full):
    name = "VEV"
    mclust_name = "VEV"
    supports_prior = False
    iterative = True

    def n_covariance_parameters(self, k: int, d: int) -> int:
        return k + d - 1 + k * d * (d - 1) // 2

    def covariance(
        self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, previous: jax.Array | None = None
    ) -> jax.Array:
        e, vecs = jnp.linalg.eigh(scatter)
        lam, shape = volumes_and_common_shape(jnp.maximum(e, 0.0), nk, previous)
        return rotate(vecs, lam[:, None] * shape[None])


MODEL = VEV()
