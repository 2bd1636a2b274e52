"""The per-batch programs of streaming fits (one per model, compiled once per padded batch shape), and
batches padded with weight-0 rows to a few fixed sizes on their way to the device.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from jaxmix.capabilities.sources import Batch
from jaxmix.capabilities.streaming.checkpoints import MIN_PAD_ROWS
from jaxmix.engine.chunks import map_rows
from jaxmix.engine.distances import sq_norms
from jaxmix.engine.programs import fit_jit
from jaxmix.engine.seeding import kmeans_plusplus, random_points
from jaxmix.families.params import GMMParams
from jaxmix.models.gmm_em import accumulate as _gmm_accumulate
from jaxmix.models.gmm_em import e_step as _gmm_e_step
from jaxmix.models.gmm_em import m_step as _gmm_m_step
from jaxmix.models.gmm_em import weighted_log_prob as _gmm_weighted_log_prob
from jaxmix.models.gmm_starts import _nearest_one_hot
from jaxmix.models.kmeans_steps import assign as _kmeans_assign
from jaxmix.models.kmeans_steps import e_step as _kmeans_e_step
from jaxmix.models.kmeans_steps import m_step as _kmeans_m_step
from jaxmix.models.soft_kmeans import e_step as _soft_e_step
from jaxmix.models.soft_kmeans import m_step as _soft_m_step


class _Moments(NamedTuple):
    total: jax.Array  # () sum of weights
    sums: jax.Array  # (d,) sum_i w_i x_i
    n_pos: jax.Array  # () rows of positive weight
    mean: jax.Array  # (d,) running mean (Chan et al.'s merge), for the variance only
    m2: jax.Array  # () sum_i w_i ||x_i - mean||^2 about the running mean


def _zero_moments(d: int, dtype: Any) -> _Moments:
    z = jnp.zeros((), dtype)
    return _Moments(z, jnp.zeros((d,), dtype), z, jnp.zeros((d,), dtype), z)


@fit_jit()
def _moments_add(acc: _Moments, x: jax.Array, w: jax.Array) -> _Moments:
    """Merge one batch into the running moments; the variance is merged about batch means (no cancellation)."""
    wb = jnp.sum(w)
    sb = w @ x
    mb = sb / jnp.maximum(wb, jnp.finfo(x.dtype).tiny)
    m2b = w @ jnp.sum((x - mb) ** 2, axis=1)
    total = acc.total + wb
    frac = jnp.where(total > 0, wb / jnp.maximum(total, jnp.finfo(x.dtype).tiny), 0.0)
    delta = mb - acc.mean
    mean = acc.mean + delta * frac
    m2 = acc.m2 + m2b + jnp.sum(delta**2) * acc.total * frac
    return _Moments(total, acc.sums + sb, acc.n_pos + jnp.sum(w > 0).astype(x.dtype), mean, m2)


def _add(a: Any, b: Any) -> Any:
    return jax.tree_util.tree_map(jnp.add, a, b)


@fit_jit(static_argnames=("chunk_size",))
def _kmeans_add(acc, x, w, shift, centers, *, chunk_size):
    return _add(acc, _kmeans_e_step(x, w, shift, centers, chunk_size))


@fit_jit()
def _kmeans_update(stats, centers, prev_counts, prev_sums, tol_abs):
    # The in-memory rule (_kmeans._lloyd): the centres moved by at most
    # tol_abs, or the statistics equal the previous pass's.
    new = _kmeans_m_step(stats, centers)
    same = jnp.all(stats.counts == prev_counts) & jnp.all(stats.sums == prev_sums)
    return new, (jnp.sum((new - centers) ** 2) <= tol_abs) | same


@fit_jit(static_argnames=("chunk_size",))
def _kmeans_final_add(acc, x, w, shift, centers, *, chunk_size):
    labels, _ = _kmeans_assign(x, shift, centers, chunk_size, exact=False)
    return acc + jnp.sum(w * sq_norms(x - shift - centers[labels]))


@fit_jit(static_argnames=("chunk_size",))
def _soft_add(acc, x, w, shift, centers, pi, beta, *, chunk_size):
    return _add(acc, _soft_e_step(x, w, shift, centers, pi, beta, chunk_size))


@fit_jit()
def _soft_update(stats, centers, tol_abs):
    new, pi = _soft_m_step(stats, centers)
    return new, pi, jnp.sum((new - centers) ** 2) <= tol_abs


@fit_jit(static_argnames=("chunk_size",))
def _gmm_add(acc, x, w, shift, params, *, chunk_size):
    return _add(acc, _gmm_e_step(x, w, shift, params, chunk_size))


@fit_jit(static_argnames=("ctype", "chunk_size"))
def _gmm_onehot_add(acc, x, w, shift, centers, *, ctype, chunk_size):
    k = centers.shape[0]
    return _add(acc, _gmm_accumulate(x, w, shift, _nearest_one_hot(centers), ctype, k, chunk_size))


@fit_jit(static_argnames=("ctype",))
def _gmm_m(stats, reg_covar, *, ctype):
    return _gmm_m_step(stats, ctype, reg_covar, None)


@fit_jit(static_argnames=("ctype",))
def _gmm_update(stats, reg_covar, total, prev, tol, *, ctype):
    new = _gmm_m_step(stats, ctype, reg_covar, None)
    objective = stats.loglik / total
    return new, objective, jnp.abs(objective - prev) < tol


@fit_jit(static_argnames=("chunk_size",))
def _gmm_final_add(acc, x, w, shift, params, *, chunk_size):
    lse = map_rows(lambda xc: logsumexp(_gmm_weighted_log_prob(xc - shift, params), axis=1), x, chunk_size)
    return acc + jnp.sum(jnp.where(w > 0, w * lse, 0.0))


@fit_jit(static_argnames=("n_clusters", "chunk_size", "method"))
def _seed(key, x, shift, w, *, n_clusters, chunk_size, method):
    if method == "k-means++":
        return kmeans_plusplus(key, x, shift, w, n_clusters, chunk_size)
    return random_points(key, x, shift, w, n_clusters)


@fit_jit(static_argnames=("ctype",))
def _params_from_init(weights, means, covariances, shift, *, ctype):
    # As the in-memory gmm with weights_init, means_init and precisions_init all given.
    return GMMParams.from_covariances(weights, means - shift, covariances, ctype)


def _bucket(b: int, cap: int | None) -> int:
    """Rows a batch of `b` rows is padded to: `cap` (the source's batch_rows) or a power of two."""
    if cap is not None and b >= cap:
        return b
    p = max(MIN_PAD_ROWS, 1 << max(0, b - 1).bit_length())
    return p if cap is None else min(p, cap)


def _to_device(batch: Batch, cap: int | None, dtype: np.dtype) -> tuple[jax.Array, jax.Array]:
    """The batch and its weights on the device, padded with weight-0 rows (never written into `batch`)."""
    x = batch.x
    b = x.shape[0]
    w = np.ones((b,), dtype) if batch.weights is None else batch.weights
    rows = _bucket(b, cap)
    if rows > b:
        x = np.concatenate([x, np.zeros((rows - b, x.shape[1]), dtype)])
        w = np.concatenate([w, np.zeros((rows - b,), dtype)])
    return jnp.asarray(x), jnp.asarray(w)
