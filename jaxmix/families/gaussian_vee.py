"""VEE: variable volumes, one shape and orientation, Sigma_k = lambda_k C with |C| = 1 (mclust's VEE).

Stored like "full": covariances (k, d, d). No closed form: alternate
C = (sum_k W_k / lambda_k) / |.|^(1/d) and lambda_k = tr(W_k C^-1) / (d n_k) until converged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmix.families._decomposition import (
    floor,
    geometric_mean,
    iterate,
    previous_volumes,
    relative_change,
    volumes,
)
from jaxmix.families.gaussian_full import Full


class VEE(Full):
    name = "VEE"
    mclust_name = "VEE"
    supports_prior = False
    iterative = True

    def n_covariance_parameters(self, k: int, d: int) -> int:
        return k + d * (d + 1) // 2 - 1

    def covariance(
        self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, previous: jax.Array | None = None
    ) -> jax.Array:
        d = scatter.shape[-1]
        live = (nk > 0)[:, None, None]

        def shape(lam: jax.Array) -> tuple[jax.Array, jax.Array]:
            e, u = jnp.linalg.eigh(jnp.sum(jnp.where(live, scatter / lam[:, None, None], 0.0), 0))
            return u, floor(e) / geometric_mean(e)  # C = u diag(e) u^T, |C| = 1

        def step(lam: jax.Array) -> tuple[jax.Array, jax.Array]:
            u, e = shape(lam)
            new = volumes(jnp.einsum("kij,ji->k", scatter, (u / e) @ u.T), nk, d)
            return new, relative_change(new, lam)

        start = volumes(jnp.trace(scatter, axis1=1, axis2=2), nk, d)
        lam = iterate(step, previous_volumes(previous, start), scatter.dtype)
        u, e = shape(lam)
        return lam[:, None, None] * ((u * e) @ u.T)[None]


MODEL = VEE()
