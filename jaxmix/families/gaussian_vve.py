"""VVE: variable volumes and shapes, one orientation, Sigma_k = lambda_k D A_k D^T (mclust's VVE).

Stored like "full": covariances (k, d, d). No closed form: alternate
lambda_k A_k = diag(D^T W_k D) / n_k given D and a majorise-minimise step of D
(`_decomposition.common_orientation`), from the orientation of sum_k W_k.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmix.families._decomposition import (
    INNER_MAX_ITER,
    ORIENTATION_WARM_STEPS,
    common_orientation,
    diagonal_in,
    floor,
    iterate,
    largest_eigenvalues,
    previous_orientation,
    rotate,
)
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
        top = largest_eigenvalues(scatter)

        def step(orient: jax.Array) -> tuple[jax.Array, jax.Array]:
            inv_shapes = nk[:, None] / floor(diagonal_in(orient, scatter))
            new = common_orientation(scatter, orient, inv_shapes, top)
            return new, jnp.max(jnp.abs(new - orient))

        steps = INNER_MAX_ITER if previous is None else ORIENTATION_WARM_STEPS
        orient = iterate(step, previous_orientation(previous, scatter), scatter.dtype, steps)
        return rotate(orient, floor(diagonal_in(orient, scatter)) / nk_safe[:, None])


MODEL = VVE()
