"""Batches of independent mixture problems: `gmm_batch` and `soft_kmeans_batch`.

B data sets of a common shape `(B, n, d)` are fitted by one compiled
program: the single-problem fit `vmap`ped over problems (and, inside it,
over restarts). Ragged data sets are padded to a common n with rows of
weight 0, which change nothing in any jaxmix fit. Problem i uses key
`jax.random.split(key, B)[i]`, so it equals `jaxmix.gmm(keys[i], xs[i], k,
weights=weights[i], ...)`; with its padding rows at the end, it also equals
the fit of the unpadded data set (up to float rounding: the row blocks
differ).

Under `vmap` every problem runs until the slowest stops (at most
`max_iter` iterations; finished problems are frozen, not re-run). For
k-means, `kmeans_batch` runs a queue instead and avoids that wait.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.engine import arrays as A
from jaxmix.engine import parameter_checks as PC
from jaxmix.engine import validation as V
from jaxmix.engine.chunks import default_chunk_size
from jaxmix.families.registry import covariance_model
from jaxmix.models.gmm import GMMResult, gmm, gmm_chunk_size
from jaxmix.models.gmm import check_options as check_gmm_options
from jaxmix.models.soft_kmeans import SoftKMeansResult, soft_kmeans


def _check_batch(key: Any, xs: Any, weights: Any, k: Any, name: str) -> tuple[jax.Array, jax.Array, int, jax.Array]:
    V.check_key(key)
    xs, w = V.check_batch_data(xs, weights)
    k = V.check_positive_int(k, name)
    hw = A.host(w)
    if not A.is_traced(w):
        rows = np.sum(hw > 0, axis=1) if hw is not None else jnp.sum(w > 0, axis=1)
        short = [int(i) for i in np.flatnonzero(np.asarray(rows) < k)]
        if short:
            raise ValueError(
                f"{name}={k} needs at least {k} rows of positive weight in every problem; "
                f"problem(s) {short[:10]} have {[int(rows[i]) for i in short[:10]]}"
            )
    return xs, w, k, jax.random.split(key, xs.shape[0])


def _batched_starts(weights_init, means_init, precisions_init, ctype, b, k, d, dtype) -> tuple[Any, Any, Any]:
    """Per-problem starts with a leading B axis, each checked in one pass over the whole stack.

    The single-problem checks apply to the stack seen as one larger problem:
    (B, k, d) means as (B k, d) centres, (B, ...) precisions as B k
    components (B "tied" matrices as B "full" ones).
    """

    def batched(name: str, value: Any, ndim: int) -> Any:
        if value is None:
            return None
        value = A.as_float_array(value, name).astype(dtype)
        if value.ndim != ndim or value.shape[0] != b:
            raise ValueError(
                f"{name} must have a leading axis of length B={b} and {ndim} dimensions, got {value.shape}"
            )
        return value

    w0 = batched("weights_init", weights_init, 2)
    if w0 is not None:
        if w0.shape[1] != k:
            raise ValueError(f"weights_init has {w0.shape[1]} entries per problem but n_components={k}")
        V.check_finite(w0, "weights_init")
        if not A.is_traced(w0):
            h0 = np.asarray(w0)
            worst = float(np.max(np.abs(np.sum(h0, axis=1) - 1.0)))
            if bool(np.any(h0 < 0)) or worst > max(1e-6, 10 * float(jnp.finfo(dtype).eps)):
                raise ValueError("weights_init must be >= 0 and sum to 1 in every problem")
    m0 = batched("means_init", means_init, 3)
    if m0 is not None:
        if m0.shape[1] != k:
            raise ValueError(f"means_init has {m0.shape[1]} rows per problem but n_components={k}")
        V.check_centers(m0.reshape(b * k, -1), b * k, d, dtype, name="means_init")
    model = covariance_model(ctype)
    p0 = batched("precisions_init", precisions_init, 1 + len(model.cov_shape(k, d)))
    if p0 is not None:
        if model.shared:  # one (d, d) matrix per problem
            PC.check_precisions(p0, "full", b, d, dtype)
        else:
            PC.check_precisions(p0.reshape((b * p0.shape[1], *p0.shape[2:])), ctype, b * k, d, dtype)
    return w0, m0, p0


@functools.partial(
    jax.jit,
    static_argnames=("k", "covariance_type", "init", "n_init", "max_iter", "chunk_size", "reinit_collapsed"),
)
def _gmm_batch(
    keys, xs, w, tol, reg_covar, inits, *, k, covariance_type, init, n_init, max_iter, chunk_size, reinit_collapsed
):
    def one(key, x, wi, inits_i):
        return gmm(
            key,
            x,
            k,
            covariance_type=covariance_type,
            init=init,
            n_init=n_init,
            max_iter=max_iter,
            tol=tol,
            reg_covar=reg_covar,
            weights=wi,
            reinit_collapsed=reinit_collapsed,
            chunk_size=chunk_size,
            weights_init=inits_i[0],
            means_init=inits_i[1],
            precisions_init=inits_i[2],
        )

    return jax.vmap(one)(keys, xs, w, inits)


def gmm_batch(
    key: jax.Array,
    xs: Any,
    n_components: int,
    *,
    covariance_type: str = "full",
    init: str = "kmeans",
    n_init: int = 1,
    max_iter: int = 100,
    tol: float = 1e-3,
    reg_covar: float = 1e-6,
    weights: Any = None,
    weights_init: Any = None,
    means_init: Any = None,
    precisions_init: Any = None,
    reinit_collapsed: bool = False,
    chunk_size: int | None = None,
) -> GMMResult:
    """Fit a Gaussian mixture to each of B independent data sets `xs[i]`, in one compiled program.

    Problem i equals `jaxmix.gmm(jax.random.split(key, B)[i], xs[i],
    n_components, weights=weights[i], ...)` with the same options.

    Args:
      key: a JAX PRNG key.
      xs: (B, n_samples, n_features) data; pad ragged data sets with rows of weight 0.
      n_components: components per problem; each problem needs that many
        rows of positive weight.
      weights: (B, n_samples) non-negative weights; 0 marks padding.
      weights_init, means_init, precisions_init: as in `jaxmix.gmm`, with a
        leading axis of length B (one start per problem).
      covariance_type, init, n_init, max_iter, tol, reg_covar,
      reinit_collapsed, chunk_size: as in `jaxmix.gmm`.

    Returns:
      A `GMMResult` whose fields have a leading axis of length B.

    Example:
      >>> import jax, jax.numpy as jnp, jaxmix
      >>> xs = jax.random.normal(jax.random.key(1), (8, 60, 2)) * 0.3 + jnp.arange(60)[None, :, None] // 30 * 4.0
      >>> r = jaxmix.gmm_batch(jax.random.key(0), xs, 2, covariance_type="diag")
      >>> r.params.means.shape, r.labels.shape, bool(r.converged.all())
      ((8, 2, 2), (8, 60), True)
    """
    xs, w, k, keys = _check_batch(key, xs, weights, n_components, "n_components")
    b, n, d = xs.shape
    check_gmm_options(covariance_type, init, reg_covar)
    n_init = V.check_positive_int(n_init, "n_init")
    max_iter = V.check_positive_int(max_iter, "max_iter")
    V.check_scalar(tol, "tol", nonnegative=True)
    chunk = V.check_chunk_size(chunk_size) or gmm_chunk_size(n, k, d, covariance_type, xs.dtype.itemsize, b * n_init)
    inits = _batched_starts(weights_init, means_init, precisions_init, covariance_type, b, k, d, xs.dtype)
    return _gmm_batch(
        keys,
        xs,
        w,
        jnp.asarray(tol, xs.dtype),
        jnp.asarray(reg_covar, xs.dtype),
        tuple(inits),
        k=k,
        covariance_type=covariance_type,
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        chunk_size=min(chunk, n),
        reinit_collapsed=bool(reinit_collapsed),
    )


@functools.partial(jax.jit, static_argnames=("k", "init", "n_init", "max_iter", "chunk_size"))
def _soft_kmeans_batch(keys, xs, w, beta, tol, *, k, init, n_init, max_iter, chunk_size):
    def one(key, x, wi, b):
        return soft_kmeans(
            key, x, k, beta=b, init=init, n_init=n_init, max_iter=max_iter, tol=tol, weights=wi, chunk_size=chunk_size
        )

    return jax.vmap(one)(keys, xs, w, beta)


def soft_kmeans_batch(
    key: jax.Array,
    xs: Any,
    n_clusters: int,
    *,
    beta: Any,
    init: str = "k-means++",
    n_init: int = 1,
    max_iter: int = 300,
    tol: float = 1e-4,
    weights: Any = None,
    chunk_size: int | None = None,
) -> SoftKMeansResult:
    """Fit soft k-means to each of B independent data sets `xs[i]`, in one compiled program.

    Problem i equals `jaxmix.soft_kmeans(jax.random.split(key, B)[i], xs[i],
    n_clusters, beta=beta[i], weights=weights[i], ...)`.

    Args:
      key: a JAX PRNG key.
      xs: (B, n_samples, n_features) data; pad ragged data sets with rows of weight 0.
      n_clusters: clusters per problem.
      beta: stiffness, > 0: one value for all problems or one per problem (B,).
      weights: (B, n_samples) non-negative weights; 0 marks padding.
      init ("k-means++" or "random"), n_init, max_iter, tol, chunk_size: as in `jaxmix.soft_kmeans`.

    Returns:
      A `SoftKMeansResult` whose fields have a leading axis of length B.

    Example:
      >>> import jax, jax.numpy as jnp, jaxmix
      >>> xs = jax.random.normal(jax.random.key(1), (8, 60, 2)) * 0.3 + jnp.arange(60)[None, :, None] // 30 * 4.0
      >>> r = jaxmix.soft_kmeans_batch(jax.random.key(0), xs, 2, beta=2.0)
      >>> r.centers.shape, r.weights.shape
      ((8, 2, 2), (8, 2))
    """
    xs, w, k, keys = _check_batch(key, xs, weights, n_clusters, "n_clusters")
    b, n, _ = xs.shape
    if not isinstance(init, str) or init not in ("k-means++", "random"):
        raise ValueError(f"init must be 'k-means++' or 'random' for a batch, got {init!r}")
    betas = A.as_float_array(beta, "beta").astype(xs.dtype)
    if betas.ndim == 0:
        betas = jnp.broadcast_to(betas, (b,))
    if betas.shape != (b,):
        raise ValueError(f"beta must be a number or have shape ({b},), got {tuple(betas.shape)}")
    if not A.is_traced(betas) and not bool(jnp.all(jnp.isfinite(betas) & (betas > 0))):
        raise ValueError("beta must be finite and > 0")
    n_init = V.check_positive_int(n_init, "n_init")
    max_iter = V.check_positive_int(max_iter, "max_iter")
    V.check_scalar(tol, "tol", nonnegative=True)
    chunk = V.check_chunk_size(chunk_size) or default_chunk_size(n, k, xs.dtype.itemsize, b * n_init)
    return _soft_kmeans_batch(
        keys,
        xs,
        w,
        betas,
        jnp.asarray(tol, xs.dtype),
        k=k,
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        chunk_size=min(chunk, n),
    )
