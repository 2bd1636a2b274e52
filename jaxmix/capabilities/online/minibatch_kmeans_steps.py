"""Mini-batch k-means as pure, jitted steps (Sculley 2010, scikit-learn's update rule): its state,
seeding, one update, the stopping rule, a whole pass as one program; `minibatch_kmeans_init` and
`minibatch_kmeans_update`.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmix.capabilities.online.passes import (
    _STEP_SALT,
    _check_batch,
    _check_ratio,
    _pass_loop,
    _sample_rows,
    _seed_of,
    _uniform,
    _weighted_mean,
)
from jaxmix.engine import arrays as A
from jaxmix.engine import random as jr
from jaxmix.engine import validation as V
from jaxmix.engine.chunks import default_chunk_size
from jaxmix.engine.programs import fit_jit
from jaxmix.engine.seeding import initial_centers
from jaxmix.models import kmeans_steps as K

KMEANS_INIT_METHODS = ("k-means++", "random")


class MiniBatchKMeansState(NamedTuple):
    """State of a mini-batch k-means fit (a pytree; every field a JAX array).

    `centered` holds the centres minus `shift`; `state.centers` gives them in
    data coordinates.
    """

    centered: jax.Array  # (k, d) centres minus `shift`
    counts: jax.Array  # (k,) weight each centre has absorbed (scikit-learn's `_counts`)
    shift: jax.Array  # (d,) weighted mean of the first batch
    seed: jax.Array  # () uint32, seed of the counter-based draws of the random reassignment
    n_steps: jax.Array  # () int32, updates done
    since_reassign: jax.Array  # () rows (of positive weight) seen since the last reassignment check
    ewa_inertia: jax.Array  # () EWA of the per-unit-weight batch inertia; -1 (unset) until the second update
    ewa_inertia_min: jax.Array  # () lowest EWA so far (the dtype's largest value at first)
    no_improvement: jax.Array  # () int32, consecutive updates without a new lowest EWA
    center_change: jax.Array  # () squared movement of all centres in the last update

    @property
    def centers(self) -> jax.Array:
        """(k, d) centres in data coordinates."""
        return self.centered + self.shift


class MiniBatchKMeansResult(NamedTuple):
    """The outcome of `minibatch_kmeans`."""

    centers: jax.Array  # (k, d)
    labels: jax.Array | None  # (n,) int32 nearest centre of each row (array input only, else None)
    inertia: jax.Array | None  # () sum_i w_i ||x_i - centre||^2 over all rows (array input only, else None)
    n_steps: int  # updates (batches) done
    n_passes: int  # passes over the data started
    converged: bool  # True when an early-stopping criterion (tol, max_no_improvement) ended the fit
    history: jax.Array  # (n_steps,) per-unit-weight inertia of each batch before its update
    state: MiniBatchKMeansState  # to continue with `minibatch_kmeans_update`


def _mbk_seed(key, x, w, init_centers, *, n_clusters, method, n_init, chunk_size):
    """Seeds from the first batch; with restarts, the lowest inertia on that batch wins."""
    shift = _weighted_mean(x, w)
    if n_init == 1:
        c0 = initial_centers(key, x, shift, w, init_centers, method, n_clusters, chunk_size)
    else:
        keys = jr.split(key, n_init)
        c0s = jax.vmap(lambda kk: initial_centers(kk, x, shift, w, None, method, n_clusters, chunk_size))(keys)
        inertia = jax.vmap(lambda c: K.e_step(x, w, shift, c, chunk_size).inertia)(c0s)
        c0 = c0s[jnp.argmin(jnp.where(jnp.isfinite(inertia), inertia, jnp.inf))]
    dt = x.dtype
    return MiniBatchKMeansState(
        centered=c0,
        counts=jnp.zeros((n_clusters,), dt),
        shift=shift,
        seed=_seed_of(key),
        n_steps=jnp.int32(0),
        since_reassign=jnp.zeros((), dt),
        ewa_inertia=jnp.full((), -1, dt),  # finite sentinels: a state never holds NaN or inf
        ewa_inertia_min=jnp.full((), jnp.finfo(dt).max, dt),
        no_improvement=jnp.int32(0),
        center_change=jnp.full((), jnp.inf, dt),
    )


_mbk_init = fit_jit(static_argnames=("n_clusters", "method", "n_init", "chunk_size"))(_mbk_seed)


def _mbk_step(state: MiniBatchKMeansState, x, w, ratio, alpha, chunk_size: int):
    """One mini-batch update (pure): `(state, batch inertia (weighted sum), per-unit-weight inertia)`."""
    k = state.centered.shape[0]
    b = x.shape[0]
    dt = state.centered.dtype
    c = state.centered
    st = K.e_step(x, w, state.shift, c, chunk_size)  # counts, sums about the shift, inertia (old centres)
    seen = state.counts
    counts = seen + st.counts
    safe = jnp.where(counts > 0, counts, 1.0)
    new = jnp.where((st.counts > 0)[:, None], c + (st.sums - st.counts[:, None] * c) / safe[:, None], c)

    # Random reassignment of centres with low counts (scikit-learn's rule):
    # checked when a centre has never been hit or every 10 k rows.
    rows = jnp.sum(w > 0).astype(dt)
    since = state.since_reassign + rows
    check = jnp.any(seen == 0) | (since >= 10 * k)
    since = jnp.where(check, 0.0, since)
    to_reassign = check & (ratio > 0) & (counts < ratio * jnp.max(counts))
    rank = jnp.argsort(jnp.argsort(counts))  # at most half a batch of centres, the lowest counts
    to_reassign = to_reassign & (rank < jnp.floor(0.5 * rows))
    n_pick = min(k, b)
    score = jnp.where(w > 0, _uniform(state.seed, _STEP_SALT, state.n_steps, b, dt), -jnp.inf)
    _, picks = lax.top_k(score, n_pick)  # distinct rows of positive weight, uniformly
    order = jnp.clip(jnp.cumsum(to_reassign) - 1, 0, n_pick - 1)
    new = jnp.where(to_reassign[:, None], x[picks[order]] - state.shift, new)
    keep_min = jnp.min(jnp.where(to_reassign, jnp.inf, counts))
    counts = jnp.where(to_reassign, keep_min, counts)

    # EWA of the per-unit-weight batch inertia (scikit-learn's early stopping;
    # the first update's inertia, that of the initial centres, is skipped).
    total = jnp.sum(w)
    per_row = st.inertia / jnp.maximum(total, jnp.finfo(dt).tiny)
    track = (state.n_steps > 0) & (total > 0)
    unset = (state.ewa_inertia < 0) | jnp.isnan(state.ewa_inertia)  # NaN: the sentinel of older saved states
    ewa = jnp.where(unset, per_row, state.ewa_inertia * (1 - alpha) + per_row * alpha)
    ewa = jnp.where(track, ewa, state.ewa_inertia)
    improved = ewa < state.ewa_inertia_min
    ewa_min = jnp.where(track & improved, ewa, state.ewa_inertia_min)
    no_imp = jnp.where(track, jnp.where(improved, 0, state.no_improvement + 1), state.no_improvement)
    out = MiniBatchKMeansState(
        centered=new,
        counts=counts,
        shift=state.shift,
        seed=state.seed,
        n_steps=state.n_steps + 1,
        since_reassign=since,
        ewa_inertia=ewa,
        ewa_inertia_min=ewa_min,
        no_improvement=no_imp.astype(jnp.int32),
        center_change=jnp.sum((new - c) ** 2),
    )
    return out, st.inertia, per_row


@fit_jit(static_argnames=("chunk_size",))
def _mbk_update(state, x, w, ratio, alpha, *, chunk_size):
    out, inertia, _ = _mbk_step(state, x, w, ratio, alpha, chunk_size)
    return out, inertia


def _mbk_stopped(state: MiniBatchKMeansState, tol_abs, max_no_improvement):
    """scikit-learn's early stopping: small centre movement (tol > 0) or no EWA improvement."""
    small = (tol_abs > 0) & (state.center_change <= tol_abs)
    return (state.n_steps >= 2) & (small | (state.no_improvement >= max_no_improvement))


@fit_jit(static_argnames=("batch_size", "chunk_size"))
def _mbk_pass(
    state, x, w, n_valid, pass_index, steps_left, ratio, alpha, tol_abs, max_no_improvement, *, batch_size, chunk_size
):
    def step(s, xb, wb):
        s, _, per_row = _mbk_step(s, xb, wb, ratio, alpha, chunk_size)
        return s, per_row

    return _pass_loop(
        step,
        lambda s: _mbk_stopped(s, tol_abs, max_no_improvement),
        state,
        x,
        w,
        n_valid,
        state.seed,
        pass_index,
        steps_left,
        batch_size,
    )


@functools.partial(jax.jit, static_argnames=("chunk_size",))
def _labels_inertia(x, w, shift, centered, *, chunk_size):
    labels, dist = K.assign(x, shift, centered, chunk_size, exact=True)
    return labels, jnp.sum(w * dist)


@fit_jit(static_argnames=("m", "n_clusters", "method", "n_init", "chunk_size"))
def _mbk_start(key, x, w, m_true, init_centers, *, m, n_clusters, method, n_init, chunk_size):
    """Seeds for an in-memory fit from `m_true` random rows (sampling and seeding: one program)."""
    xi, wi = _sample_rows(key, x, w, m_true, m)
    return _mbk_seed(
        key, xi, wi, init_centers, n_clusters=n_clusters, method=method, n_init=n_init, chunk_size=chunk_size
    )


def minibatch_kmeans_init(
    key: jax.Array,
    first_batch: Any,
    n_clusters: int,
    *,
    init: str | Any = "k-means++",
    n_init: int = 1,
    weights: Any = None,
) -> MiniBatchKMeansState:
    """Start a mini-batch k-means fit from the first batch of rows.

    The centres are seeded on `first_batch` ("k-means++": greedy k-means++,
    "random": distinct rows, both weighted; or an explicit (k, d) array);
    with `n_init > 1` the seeding with the lowest inertia on the batch wins.
    Counts start at 0, so the first update moves each centre that receives
    rows to their mean (scikit-learn's behaviour).

    Args:
      key: a JAX PRNG key (seeding, then the random reassignment).
      first_batch: (b, d) rows, b >= n_clusters.
      n_clusters: number of centres k.
      init: "k-means++", "random" or a (k, d) array.
      n_init: seedings tried (1 with an array).
      weights: (b,) non-negative sample weights (default ones).

    Returns:
      A `MiniBatchKMeansState` for `minibatch_kmeans_update`.

    Example:
      >>> import jax, jaxmix
      >>> from jaxmix.capabilities.online import minibatch_kmeans_init
      >>> x = jaxmix.datasets.load_faithful()
      >>> s = minibatch_kmeans_init(jax.random.key(0), x[:100], 2)
      >>> s.centers.shape, int(s.n_steps)
      ((2, 2), 0)
    """
    V.check_key(key)
    x = _check_batch(first_batch, None, None, name="first_batch")
    b, d = x.shape
    k = V.check_positive_int(n_clusters, "n_clusters")
    if k > b:
        raise ValueError(f"n_clusters={k} must be <= the number of rows of the first batch ({b})")
    w = V.check_weights(weights, b, x.dtype)
    V.check_n_clusters(k, b, w)
    n_init = V.check_positive_int(n_init, "n_init")
    init_centers, method, n_init = V.check_init(init, KMEANS_INIT_METHODS, k, d, x.dtype, n_init)
    chunk = default_chunk_size(b, k, x.dtype.itemsize, n_init)
    return _mbk_init(key, x, w, init_centers, n_clusters=k, method=method, n_init=n_init, chunk_size=chunk)


def minibatch_kmeans_update(
    state: MiniBatchKMeansState,
    batch: Any,
    weights: Any = None,
    *,
    reassignment_ratio: float = 0.01,
    smoothing: float = 0.1,
) -> tuple[MiniBatchKMeansState, jax.Array]:
    """One mini-batch k-means step (Sculley 2010), scikit-learn's update rule.

    Each row goes to its nearest centre; centre k, which has absorbed weight
    `W_k` so far and receives weight `w_k` now (sum of its rows' weights,
    weighted sum `S_k`), moves with learning rate `w_k / (W_k + w_k)`:
    `m_k <- (W_k m_k + S_k) / (W_k + w_k)`, `W_k <- W_k + w_k`.

    When some centre has never received weight, or every `10 k` rows, the
    centres whose count is below `reassignment_ratio * max(counts)` (at most
    half a batch of them) jump to random rows of this batch and their counts
    become the smallest remaining count (scikit-learn's reassignment;
    `reassignment_ratio=0` turns it off).

    Pure and jit-compiled; callable inside `jax.jit` (value checks then skip).

    Args:
      state: from `minibatch_kmeans_init` or a previous update.
      batch: (b, d) rows.
      weights: (b,) non-negative sample weights (default ones).
      reassignment_ratio: >= 0, see above (traced).
      smoothing: weight of the newest batch in the EWA of the per-unit-weight
        batch inertia kept for early stopping, in (0, 1] (traced).

    Returns:
      `(state, batch_inertia)`: the batch's weighted inertia
      `sum_i w_i ||x_i - m_{k_i}||^2` under the centres *before* the update.

    Example:
      >>> import jax, jaxmix
      >>> from jaxmix.capabilities.online import minibatch_kmeans_init, minibatch_kmeans_update
      >>> x = jaxmix.datasets.load_faithful()
      >>> s = minibatch_kmeans_init(jax.random.key(0), x[:100], 2)
      >>> for i in range(0, 272, 100):
      ...     s, inertia = minibatch_kmeans_update(s, x[i : i + 100])
      >>> int(s.n_steps), float(s.counts.sum())
      (3, 272.0)
    """
    d = state.shift.shape[0]
    x = _check_batch(batch, d, state.centered.dtype)
    w = V.check_weights(weights, x.shape[0], x.dtype)
    _check_ratio(reassignment_ratio, "reassignment_ratio")
    V.check_scalar(smoothing, "smoothing", positive=True)
    if not A.is_traced(smoothing) and float(smoothing) > 1:
        raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
    dt = x.dtype
    chunk = default_chunk_size(x.shape[0], state.centered.shape[0], dt.itemsize)
    return _mbk_update(state, x, w, jnp.asarray(reassignment_ratio, dt), jnp.asarray(smoothing, dt), chunk_size=chunk)
