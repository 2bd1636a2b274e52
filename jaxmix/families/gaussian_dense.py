"""Every closed-form covariance model as full matrices: one compiled program for a grid of models.

A small fit spends most of its time compiling, and a BIC grid over four
covariance types compiled four fit programs. The closed-form M-steps of
scikit-learn's four types and mclust's EII and EEI are all projections of
the same per-component scatter matrices W_k = sum_i r_ik (x_i - mu_k)(..)^T:

    full / VVV        W_k / n_k
    tied / EEE        sum_k W_k / n                      (every k the same)
    diag / VVI        diag(W_k) / n_k
    spherical / VII   tr(W_k) / (d n_k) I
    EII               tr(sum_k W_k) / (d n) I
    EEI               diag(sum_k W_k) / n

so a fit that stores (k, d, d) matrices and picks the projection by a
*traced* code runs any of them in one program (`lax.switch`; under `vmap`
only the code's branch runs). The E-step then evaluates full matrices,
which for small data costs microseconds more than a diagonal one. `models.gmm`
and `select` use it for small fits (`DENSE_FIT_WORK`); `from_dense` gives
the parameters back in the shapes of the model asked for. The other mclust
models iterate in their M-step and keep programs of their own.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmix.families.gaussian_full import Full

# Code of each model's projection (names as `names.MODULES`; mclust's E and V are EII and VII for d = 1).
PROJECTIONS = {
    "full": 0,
    "VVV": 0,
    "tied": 1,
    "EEE": 1,
    "diag": 2,
    "VVI": 2,
    "spherical": 3,
    "VII": 3,
    "V": 3,
    "EII": 4,
    "E": 4,
    "EEI": 5,
}

# Largest fit (rows x components x d^2 multiply-adds per E-step) run as full matrices.
DENSE_FIT_WORK = 2**22


def projection_code(covariance_type: str, rows: int, k: int, d: int) -> int | None:
    """The traced code for a fit of `covariance_type` run as full matrices, or None to run its own program."""
    code = PROJECTIONS.get(covariance_type)
    return code if code is not None and rows * k * d * d <= DENSE_FIT_WORK else None


class Dense(Full):
    name = "dense"
    mclust_name = ""

    def mahalanobis(self, xc: jax.Array, means: jax.Array, prec_chol: jax.Array) -> jax.Array:
        # As `Full`, but the sum over each component's d coordinates is a GEMM against a (k d, k)
        # block of ones: on XLA:CPU the reduction over a short trailing axis cost ~3x the rest of a
        # small E-step (d = 2, 90 vmapped fits: 4.9 -> 1.4 ms per E-step, same values).
        d = xc.shape[1]
        k = means.shape[0]
        u = jnp.transpose(prec_chol, (1, 0, 2)).reshape(d, k * d)
        y = xc @ u - jnp.einsum("kd,kde->ke", means, prec_chol).reshape(1, k * d)
        blocks = jnp.repeat(jnp.eye(k, dtype=xc.dtype), d, axis=0)
        return (y * y) @ blocks

    def second_moments(self, xc: jax.Array, r: jax.Array, wc: jax.Array) -> jax.Array:
        # sum_i r_ik x_i x_i^T as one GEMM of the rows' outer products (c, d^2) against r (c, k): the
        # data operand holds no restart axis, so vmapped fits share one GEMM (small data only:
        # the (c, d^2) block; 4.5 -> 1.6 ms for 90 fits of d = 2, k = 9, within round-off of `Full`).
        c, d = xc.shape
        k = r.shape[1]
        outer = (xc[:, :, None] * xc[:, None, :]).reshape(c, d * d)
        return (outer.T @ r).T.reshape(k, d, d)

    def project(self, scatter: jax.Array, nk: jax.Array, nk_safe: jax.Array, code: jax.Array) -> jax.Array:
        """The covariances (k, d, d) of the model with projection `code` from the scatter (k, d, d)."""
        k, d, _ = scatter.shape
        eye = jnp.eye(d, dtype=scatter.dtype)
        total = jnp.sum(nk)

        def variances(s: jax.Array) -> jax.Array:
            return jnp.maximum(jnp.diagonal(s, axis1=-2, axis2=-1), 0.0)  # as the diagonal families floor them

        def same(c: jax.Array) -> jax.Array:
            return jnp.broadcast_to(c, (k, d, d))

        branches = (
            lambda s: s / nk_safe[:, None, None],
            lambda s: same(jnp.sum(s, axis=0) / total),
            lambda s: variances(s)[:, :, None] * eye / nk_safe[:, None, None],
            lambda s: (jnp.mean(variances(s), axis=1) / nk_safe)[:, None, None] * eye,
            lambda s: same(jnp.sum(variances(s)) / (d * total) * eye),
            lambda s: same(jnp.sum(variances(s), axis=0) / total * eye),
        )
        return lax.switch(code, branches, scatter)


def from_dense(params: Any, covariance_type: str) -> Any:
    """`GMMParams` of the dense fit (any leading batch axes) in the shapes of `covariance_type`, via the host."""
    from jaxmix.families.registry import covariance_model

    model = covariance_model(covariance_type)
    rank = len(model.cov_shape(2, 3))  # (k, d, d) full, (d, d) tied, (k, d) diagonal, (k,) spherical

    def cut(a: Any) -> Any:
        a = np.asarray(a)
        if rank == 3:
            out = a
        elif model.matrix:
            out = a[..., 0, :, :]
        elif rank == 2:
            out = np.diagonal(a, axis1=-2, axis2=-1)
        else:
            out = a[..., 0, 0]
        return jax.device_put(np.ascontiguousarray(out))

    return dataclasses.replace(
        params,
        covariances=cut(params.covariances),
        precisions_cholesky=cut(params.precisions_cholesky),
        covariance_type=covariance_type,
    )


DENSE = Dense()
MODEL = DENSE
