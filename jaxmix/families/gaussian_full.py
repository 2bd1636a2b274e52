"""Full covariances: one (d, d) matrix per component (scikit-learn's "full", mclust's VVV).

covariances (k, d, d); precisions_cholesky (k, d, d), upper triangular U_k.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxmix.families._protocol import MatrixCovariance


class Full(MatrixCovariance):
    name = "full"
    mclust_name = "VVV"
    supports_prior = True

    def cov_shape(self, k: int, d: int) -> tuple[int, ...]:
        return (k, d, d)

    def second_shape(self, k: int, d: int) -> tuple[int, ...]:
        return (k, d, d)

    def n_covariance_parameters(self, k: int, d: int) -> int:
        return k * d * (d + 1) // 2

    def dense(self, cov: Any, k: int, d: int) -> Any:
        return cov

    def sample_noise(self, z: jax.Array, cov: jax.Array, labels: jax.Array) -> jax.Array:
        return jnp.einsum("nde,ne->nd", jnp.linalg.cholesky(cov)[labels], z)

    def block_width(self, k: int, d: int) -> int:
        return max(k * d, d * d, k)

    def pair_work(self, d: int) -> int:
        return d * d

    def mahalanobis(self, xc: jax.Array, means: jax.Array, prec_chol: jax.Array) -> jax.Array:
        # One GEMM of x against all k factors side by side, `x @ [U_1 .. U_k]`,
        # then `||x U_k - mu_k U_k||^2` (no batched triangular solve).
        c, d = xc.shape
        k = means.shape[0]
        u = jnp.transpose(prec_chol, (1, 0, 2)).reshape(d, k * d)  # [U_1 ... U_k]
        y = (xc @ u).reshape(c, k, d) - jnp.einsum("kd,kde->ke", means, prec_chol)[None]
        return jnp.sum(y * y, axis=-1)

    def second_moments(self, xc: jax.Array, r: jax.Array, wc: jax.Array) -> jax.Array:
        # sum_i r_ik x_i x_i^T, contracted over rows with the d-wide operand on the left
        # (`x^T @ Z`: ~4x faster on XLA:CPU than `r^T @ (x (x) x)`, bench/ W4).
        c, d = xc.shape
        k = r.shape[1]
        z = (r[:, :, None] * xc[:, None, :]).reshape(c, k * d)
        return jnp.transpose((xc.T @ z).reshape(d, k, d), (1, 0, 2))

    def scatter(self, second: jax.Array, nk: jax.Array, means: jax.Array) -> jax.Array:
        return second - nk[:, None, None] * means[:, :, None] * means[:, None, :]

    def covariance(
        self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, previous: jax.Array | None = None
    ) -> jax.Array:
        return scatter / nk_safe[:, None, None]

    def covariance_map(self, scatter: jax.Array, n: jax.Array, dev: jax.Array, prior: Any, d: int) -> jax.Array:
        shrink = prior.kappa * n / (prior.kappa + n)
        mean_term = shrink[:, None, None] * dev[:, :, None] * dev[:, None, :]
        return (prior.scale[None] + scatter + mean_term) / (prior.nu + n + d + 2)[:, None, None]


FULL = Full()
MODEL = FULL
