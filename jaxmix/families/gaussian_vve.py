"""VVE: variable volumes and shapes, one orientation, Sigma_k = lambda_k D A_k D^T (mclust's VVE).

Stored like "full": covariances (k, d, d). No closed form: alternate
lambda_k A_k = diag(D^T W_k D) / n_k given D and a majorise-minimise step of D
(`_decomposition.common_orientation`), from the orientation of sum_k W_k.
"""

from __future__ import annotations

import jax

from jaxmix.families._decomposition import diagonal_in, fit_common_orientation, floor, rotate
from jaxmix.families.gaussian_full import Full


class VVE(Full):
    name = "VVE"
    mclust_name = "VVE"
    supports_prior = False
    iterative = True

    def n_covariance_parameters(self, k: int, d: int) -> int:
        return k * d + d * (d - 1) // 2

    def covariance(
        self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, previous: jax.Array | None = None
    ) -> jax.Array:
        orient = fit_common_orientation(scatter, previous, lambda b: nk[:, None] / floor(b))
        return rotate(orient, floor(diagonal_in(orient, scatter)) / nk_safe[:, None])


MODEL = VVE()
