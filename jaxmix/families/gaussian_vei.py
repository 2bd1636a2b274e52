"""VEI: variable volumes, one diagonal shape, Sigma_k = lambda_k A (mclust's VEI).

Stored like "diag": covariances (k, d). No closed form: alternate
A = shape(sum_k diag(W_k) / lambda_k) and lambda_k = tr(W_k A^-1) / (d n_k)
(Celeux and Govaert 1995) until converged.
"""

from __future__ import annotations

import jax

from jaxmix.families._decomposition import volumes_and_common_shape
from jaxmix.families.gaussian_diag import Diag


class VEI(Diag):
    name = "VEI"
    mclust_name = "VEI"
    supports_prior = False
    iterative = True

    def n_covariance_parameters(self, k: int, d: int) -> int:
        return k + d - 1

    def covariance(
        self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, previous: jax.Array | None = None
    ) -> jax.Array:
        lam, shape = volumes_and_common_shape(scatter, nk, previous)
        return lam[:, None] * shape[None]


MODEL = VEI()
