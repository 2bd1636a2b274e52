"""VEI: variable volumes, one diagonal shape, Sigma_k = lambda_k A (mclust's VEI).

Stored like "diag": covariances (k, d). No closed form: alternate
A = shape(sum_k diag(W_k) / lambda_k) and lambda_k = tr(W_k A^-1) / (d n_k)
(Celeux and Govaert 1995) until converged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmix.families._decomposition import (
    iterate,
    previous_volumes,
    relative_change,
    shape_of,
    volumes,
)
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
        d = scatter.shape[1]
        live = (nk > 0)[:, None]

        def shape(lam: jax.Array) -> jax.Array:
            return shape_of(jnp.sum(jnp.where(live, scatter / lam[:, None], 0.0), 0))

        def step(lam: jax.Array) -> tuple[jax.Array, jax.Array]:
            new = volumes(jnp.sum(scatter / shape(lam), 1), nk, d)
            return new, relative_change(new, lam)

        lam = iterate(step, previous_volumes(previous, volumes(jnp.sum(scatter, 1), nk, d)), scatter.dtype)
        return lam[:, None] * shape(lam)[None]


MODEL = VEI()
