"""Single-pass (streaming) fits: mini-batch k-means and online EM for Gaussian mixtures.

Both models keep a small state (centres and counts; running sufficient
statistics) and update it from one batch of rows at a time, so a data set
that does not fit in memory is read once per pass, batch by batch.

- **Mini-batch k-means** (Sculley 2010, "Web-scale k-means clustering",
  WWW '10): each batch is assigned to the nearest centres; centre k moves
  towards the weighted mean of its new rows with the per-centre learning
  rate `eta_k = w_k / (W_k + w_k)`, where `W_k` is the weight the centre has
  seen before and `w_k` the weight it receives now:
  `m_k <- m_k + (S_k - w_k m_k) / (W_k + w_k)`, `W_k <- W_k + w_k`
  (`S_k` = weighted sum of the batch rows assigned to k). This is
  scikit-learn's `MiniBatchKMeans` update (with sample weights: a count of
  1 per unit of weight), including its random reassignment of centres with
  low counts (`reassignment_ratio`) and its early stopping on an
  exponentially weighted average (EWA) of the batch inertia.
- **Online EM** (stepwise EM; Cappé and Moulines 2009, "On-line
  expectation-maximization algorithm for latent data models", JRSS-B 71(3)):
  running sufficient statistics per unit weight `s` are blended with the
  batch's, `s <- (1 - rho_t) s + rho_t s_batch`, with step size
  `rho_t = (t + t0)^(-kappa)` for the t-th update (t = 1, 2, ...),
  `kappa` in (0.5, 1], `t0 >= 0`; after each batch (past an optional
  burn-in) the closed-form M-step of `jaxmix._gmm` turns `s` into
  parameters. With `kappa = 1, t0 = 0` the statistics are the plain
  running average of every batch seen.

All statistics are taken about a fixed shift (the weighted mean of the
first batch), so float32 keeps its precision for data far from the origin;
the states hold centres / parameters in those shifted coordinates
(`state.centers` and `state.params` give them in data coordinates).

The update functions are pure and jit-compiled once at module level; the
drivers loop over batches on the host (an iterable source) or run each pass
as one compiled loop (an in-memory array).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmix import _bar
from jaxmix import _gmm as G
from jaxmix import _kmeans as K
from jaxmix import _validation as V
from jaxmix._chunks import default_chunk_size
from jaxmix._gmm_params import GMMParams
from jaxmix._jit import fit_jit
from jaxmix._seeding import initial_centers
from jaxmix.families import check_covariance_type

KMEANS_INIT_METHODS = ("k-means++", "random")
GMM_INIT_METHODS = G.INIT_METHODS
NO_LIMIT = 2**30  # "max_no_improvement=None": never stop on the EWA


# --------------------------------------------------------------------------- #
# Mini-batch k-means
# --------------------------------------------------------------------------- #


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


# Counter-based random numbers for the shuffles and the reassignment: a
# 32-bit integer hash ("lowbias32", C. Wellons) of (seed, stream, index).
# Every threefry draw inside a program costs ~0.1-0.2 s of XLA:CPU compile
# time (measured); these draws only pick rows, for which a good hash is enough.
_M1, _M2, _GOLDEN = np.uint32(0x7FEB352D), np.uint32(0x846CA68B), np.uint32(0x9E3779B9)
_PASS_SALT, _STEP_SALT, _SAMPLE_SALT = np.uint32(0x5BD1E995), np.uint32(0x27D4EB2F), np.uint32(0x165667B1)


def _mix32(h: jax.Array) -> jax.Array:
    h = h ^ (h >> 16)
    h = h * _M1
    h = h ^ (h >> 15)
    h = h * _M2
    return h ^ (h >> 16)


def _seed_of(key: jax.Array) -> jax.Array:
    """A () uint32 seed from a JAX PRNG key (typed or raw)."""
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    data = jnp.ravel(data).astype(jnp.uint32)
    h = jnp.uint32(0)
    for i in range(data.shape[0]):
        h = _mix32(h ^ (data[i] + np.uint32((0x9E3779B9 * (i + 1)) & 0xFFFFFFFF)))
    return h


def _uniform(seed: jax.Array, salt: np.uint32, stream: jax.Array | int, n: int, dtype: Any) -> jax.Array:
    """(n,) numbers in [0, 1) for draw `stream` of `seed` (salt: the kind of draw)."""
    base = _mix32((seed ^ salt) + _mix32(jnp.asarray(stream).astype(jnp.uint32) * _GOLDEN))
    h = _mix32(base + jnp.arange(n, dtype=jnp.uint32) * _GOLDEN)
    return (h >> 8).astype(dtype) * jnp.asarray(2.0**-24, dtype)


def _weighted_mean(x: jax.Array, w: jax.Array) -> jax.Array:
    return (w @ x) / jnp.maximum(jnp.sum(w), jnp.finfo(x.dtype).tiny)


def _mbk_seed(key, x, w, init_centers, *, n_clusters, method, n_init, chunk_size):
    """Seeds from the first batch; with restarts, the lowest inertia on that batch wins."""
    shift = _weighted_mean(x, w)
    if n_init == 1:
        c0 = initial_centers(key, x, shift, w, init_centers, method, n_clusters, chunk_size)
    else:
        keys = jax.random.split(key, n_init)
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


def _pass_loop(step, stop, state, x, w, n_valid, seed, pass_index, steps_left, batch_size: int):
    """One shuffled pass over the first `n_valid` rows of `x` in batches, as one `while_loop`.

    Rows are visited in a random order (each once); the last batch is
    completed with rows of weight 0. Stops early when `stop(state)` holds
    or after `steps_left` batches. Returns `(state, batches done, stopped,
    per-batch objective (n_max,), NaN past the batches done)`.
    """
    n = x.shape[0]
    b = batch_size
    n_max = -(-n // b)
    u = _uniform(seed, _PASS_SALT, pass_index, n, x.dtype)
    order = jnp.argsort(jnp.where(jnp.arange(n) < n_valid, u, 2.0))
    order = jnp.concatenate([order, jnp.zeros((b,), order.dtype)])
    n_batches = jnp.minimum((n_valid + b - 1) // b, steps_left)
    hist0 = jnp.full((n_max,), jnp.nan, x.dtype)

    def cond(c):
        return (c[0] < n_batches) & ~c[2]

    def body(c):
        i, s, _, h = c
        idx = lax.dynamic_slice_in_dim(order, i * b, b)
        valid = i * b + jnp.arange(b) < n_valid
        s, obj = step(s, x[idx], jnp.where(valid, w[idx], 0.0))
        return i + 1, s, stop(s), h.at[i].set(obj)

    i, s, stopped, h = lax.while_loop(cond, body, (jnp.int32(0), state, jnp.bool_(False), hist0))
    return s, i, stopped, h


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


def _sample_rows(key, x, w, m_true, m: int):
    """`m_true` distinct rows of positive weight drawn uniformly (Gumbel top-m), as `m >= m_true` rows.

    The rows past `m_true` (and any pick without positive weight) get weight
    0: `m` is rounded up so that samples of nearby sizes share one program.
    """
    score = jnp.where(w > 0, _uniform(_seed_of(key), _SAMPLE_SALT, 0, w.shape[0], x.dtype), -jnp.inf)
    top, idx = lax.top_k(score, m)
    keep = (jnp.arange(m) < m_true) & jnp.isfinite(top)
    return x[idx], jnp.where(keep, w[idx], 0.0)


@fit_jit(static_argnames=("m", "n_clusters", "method", "n_init", "chunk_size"))
def _mbk_start(key, x, w, m_true, init_centers, *, m, n_clusters, method, n_init, chunk_size):
    """Seeds for an in-memory fit from `m_true` random rows (sampling and seeding: one program)."""
    xi, wi = _sample_rows(key, x, w, m_true, m)
    return _mbk_seed(
        key, xi, wi, init_centers, n_clusters=n_clusters, method=method, n_init=n_init, chunk_size=chunk_size
    )


@functools.partial(jax.jit, static_argnames=("chunk_size",))
def _mean_variance(x, w, *, chunk_size):
    from jaxmix._engine import weighted_mean_and_variance

    return weighted_mean_and_variance(x, w, chunk_size)[1]


def _check_batch(batch: Any, d: int | None, dtype: Any, name: str = "batch") -> jax.Array:
    x = V.check_data(batch, name=name)
    if d is not None and x.shape[1] != d:
        raise ValueError(f"{name} has {x.shape[1]} features but the state (first batch) has {d}")
    return x if dtype is None else x.astype(dtype)


def _check_ratio(value: Any, name: str) -> float:
    V.check_scalar(value, name, nonnegative=True)
    return value


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
      >>> from jaxmix._online import minibatch_kmeans_init
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
      >>> from jaxmix._online import minibatch_kmeans_init, minibatch_kmeans_update
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
    if not V.is_traced(smoothing) and float(smoothing) > 1:
        raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
    dt = x.dtype
    chunk = default_chunk_size(x.shape[0], state.centered.shape[0], dt.itemsize)
    return _mbk_update(state, x, w, jnp.asarray(reassignment_ratio, dt), jnp.asarray(smoothing, dt), chunk_size=chunk)


def _batch_items(batches: Iterable[Any]):
    """Yield `(x, weights or None)` from an iterable of arrays or `(x, weights)` pairs."""
    for item in batches:
        if isinstance(item, tuple) and len(item) == 2:
            yield item[0], item[1]
        else:
            yield item, None


def _is_array(batches: Any) -> bool:
    return isinstance(batches, (np.ndarray, jax.Array)) or (hasattr(batches, "__array__") and hasattr(batches, "ndim"))


def _check_iterable(batches: Any, n_passes: int) -> None:
    if isinstance(batches, (str, bytes)) or not isinstance(batches, Iterable):
        raise TypeError(f"batches must be an array or an iterable of (b, d) arrays, got {type(batches).__name__}")
    if n_passes > 1 and iter(batches) is batches:
        raise ValueError(
            "n_passes > 1 needs a re-iterable source (a list, or an object whose __iter__ starts over); "
            "an iterator or generator can be read once"
        )


def _check_driver_args(batch_size: Any, n_passes: Any, max_steps: Any) -> tuple[int, int, int]:
    b = V.check_positive_int(batch_size, "batch_size")
    p = V.check_positive_int(n_passes, "n_passes")
    m = NO_LIMIT if max_steps is None else V.check_positive_int(max_steps, "max_steps")
    return b, p, m


def minibatch_kmeans(
    key: jax.Array,
    batches: Any,
    n_clusters: int,
    *,
    init: str | Any = "k-means++",
    n_init: int = 1,
    batch_size: int = 1024,
    n_passes: int = 1,
    max_steps: int | None = None,
    weights: Any = None,
    reassignment_ratio: float = 0.01,
    tol: float = 0.0,
    max_no_improvement: int | None = None,
    init_size: int | None = None,
    progress: bool | None = None,
) -> MiniBatchKMeansResult:
    """Fit k-means by mini-batch updates (Sculley 2010; scikit-learn's `MiniBatchKMeans` rule).

    Each centre keeps a count of the weight it has absorbed and moves
    towards the mean of its new rows with learning rate
    `w_k / (W_k + w_k)` (1/count per unit of weight); see
    `minibatch_kmeans_update`.

    Two kinds of source:

    - an in-memory (n, d) array: each pass visits the rows in a new random
      order (from `key`) in batches of `batch_size` rows, as one compiled
      loop per pass; the seeds come from `init_size` random rows (default
      `3 * batch_size`, at least `3 * n_clusters`); the result has the labels and
      the inertia of all rows.
    - any iterable of (b, d) arrays or `(x, weights)` pairs (a list, a
      reader of files, ...): the seeds come from the first batch; every
      batch, the first included, then updates the state, one jitted call
      per batch (batches of one shape compile once). `n_passes > 1` needs a
      re-iterable source. `labels` and `inertia` are None: a stream is not
      read again.

    Args:
      key: a JAX PRNG key (seeding, shuffling, reassignment).
      batches: an (n, d) array or an iterable of batches.
      n_clusters: number of centres k.
      init: "k-means++", "random" or a (k, d) array.
      n_init: seedings tried on the initial rows (best inertia there wins).
      batch_size: rows per batch (array input only).
      n_passes: passes over the data.
      max_steps: stop after this many updates (default: no limit).
      weights: (n,) sample weights (array input; for an iterable give
        `(x, weights)` pairs).
      reassignment_ratio: see `minibatch_kmeans_update`; 0 turns it off.
      tol: stop when the squared movement of all centres in one update is
        at most `tol` times the mean per-feature variance (of the data for
        an array, of the first batch otherwise); 0 (default) disables it.
      max_no_improvement: stop after this many consecutive updates without
        a new lowest EWA of the batch inertia (scikit-learn's heuristic,
        smoothing `2 b / (n + 1)` for an array, `2 / (batches + 1)` for a
        sized iterable, 0.05 otherwise); None (default) disables it.
      init_size: rows used for seeding (array input only).
      progress: a tqdm bar over batches on stderr (None: only when stderr is
        a terminal).

    Returns:
      A `MiniBatchKMeansResult`.

    Example:
      >>> import jax, jaxmix
      >>> from jaxmix._online import minibatch_kmeans
      >>> x = jaxmix.datasets.load_faithful()
      >>> r = minibatch_kmeans(jax.random.key(0), x, 2, batch_size=64, n_passes=3)
      >>> r.centers.shape, r.n_steps, r.labels.shape
      ((2, 2), 15, (272,))
    """
    V.check_key(key)
    b, n_passes, max_steps = _check_driver_args(batch_size, n_passes, max_steps)
    _check_ratio(reassignment_ratio, "reassignment_ratio")
    V.check_scalar(tol, "tol", nonnegative=True)
    mni = NO_LIMIT if max_no_improvement is None else V.check_positive_int(max_no_improvement, "max_no_improvement", 0)
    if _is_array(batches):
        x = V.check_data(batches)
        w = V.check_weights(weights, x.shape[0], x.dtype, rescale=True)  # all weights at once: one common factor
        return _minibatch_kmeans_array(
            key,
            x,
            w,
            x.shape[0],
            n_clusters,
            init=init,
            n_init=n_init,
            batch_size=b,
            n_passes=n_passes,
            max_steps=max_steps,
            reassignment_ratio=reassignment_ratio,
            tol=tol,
            max_no_improvement=mni,
            init_size=init_size,
            progress=progress,
        )
    if weights is not None:
        raise ValueError("weights go with array input; for an iterable, yield (x, weights) pairs")
    _check_iterable(batches, n_passes)
    return _minibatch_kmeans_stream(
        key,
        batches,
        n_clusters,
        init=init,
        n_init=n_init,
        n_passes=n_passes,
        max_steps=max_steps,
        reassignment_ratio=reassignment_ratio,
        tol=tol,
        max_no_improvement=mni,
        progress=progress,
    )


def _init_rows(w: jax.Array, n_valid: int, k: int, batch_size: int, init_size: int | None) -> tuple[int, int]:
    """How many random rows seed an in-memory fit (scikit-learn's `init_size` rule), and that padded.

    Returns `(m_true, m)`: `m_true` rows of positive weight are drawn;
    `m` (static) is `m_true` rounded up to a power of two, at most n.
    """
    if init_size is None:
        m = 3 * min(batch_size, n_valid)
        m = 3 * k if m < k else m
    else:
        m = V.check_positive_int(init_size, "init_size")
        m = 3 * k if m < k else m
    m_true = min(m, int(np.count_nonzero(np.asarray(w) > 0)))
    return m_true, min(1 << (m_true - 1).bit_length(), w.shape[0])


def _minibatch_kmeans_array(
    key,
    x,
    w,
    n_valid: int,
    n_clusters,
    *,
    init,
    n_init,
    batch_size: int,
    n_passes: int,
    max_steps: int,
    reassignment_ratio,
    tol,
    max_no_improvement: int,
    init_size,
    progress,
    compute_labels: bool = True,
) -> MiniBatchKMeansResult:
    """The array driver; the first `n_valid` rows are the data (the rest: weight-0 padding)."""
    n = x.shape[0]
    k = V.check_n_clusters(n_clusters, n_valid, w)
    m_true, m = _init_rows(w, n_valid, k, batch_size, init_size)
    dt = x.dtype
    init_centers, method, n_init = V.check_init(init, KMEANS_INIT_METHODS, k, x.shape[1], dt, n_init)
    n_init = V.check_positive_int(n_init, "n_init")
    state = _mbk_start(
        key,
        x,
        w,
        jnp.int32(m_true),
        init_centers,
        m=m,
        n_clusters=k,
        method=method,
        n_init=n_init,
        chunk_size=default_chunk_size(m, k, dt.itemsize, n_init),
    )
    b = min(batch_size, n_valid)
    chunk = default_chunk_size(b, k, dt.itemsize)
    tol_abs = jnp.asarray(tol, dt) * _mean_variance(x, w, chunk_size=n) if tol else jnp.zeros((), dt)
    alpha = jnp.asarray(min(1.0, 2.0 * b / (n_valid + 1)), dt)
    per_pass = -(-n_valid // b)
    total = min(per_pass * n_passes, max_steps)
    hist: list[jax.Array] = []
    done, passes, stopped = 0, 0, False
    with _bar.bar(total, "jaxmix minibatch_kmeans", progress) as pbar:
        for p in range(n_passes):
            if done >= max_steps:
                break
            passes += 1
            state, i, stop, h = _mbk_pass(
                state,
                x,
                w,
                jnp.int32(n_valid),
                jnp.int32(p),
                jnp.int32(max_steps - done),
                jnp.asarray(reassignment_ratio, dt),
                alpha,
                tol_abs,
                jnp.int32(max_no_improvement),
                batch_size=b,
                chunk_size=chunk,
            )
            i_host = int(i)
            done += i_host
            hist.append(h[:i_host])
            pbar.update(i_host)
            if float(state.ewa_inertia) >= 0:
                pbar.set_postfix(inertia=f"{float(state.ewa_inertia):.4g}")
            if bool(stop):
                stopped = True
                break
    labels = inertia = None
    if compute_labels:
        labels, inertia = _labels_inertia(x, w, state.shift, state.centered, chunk_size=default_chunk_size(n, k))
    history = jnp.concatenate(hist) if hist else jnp.zeros((0,), dt)
    return MiniBatchKMeansResult(state.centers, labels, inertia, done, passes, stopped, history, state)


def _stream_alpha(batches: Any) -> float:
    try:
        return min(1.0, 2.0 / (len(batches) + 1))
    except TypeError:
        return 0.05


def _minibatch_kmeans_stream(
    key,
    batches,
    n_clusters,
    *,
    init,
    n_init,
    n_passes,
    max_steps,
    reassignment_ratio,
    tol,
    max_no_improvement,
    progress,
) -> MiniBatchKMeansResult:
    alpha = _stream_alpha(batches)
    early = bool(tol) or max_no_improvement < NO_LIMIT
    state: MiniBatchKMeansState | None = None
    tol_abs = 0.0
    hist: list[jax.Array] = []
    done, passes, stopped = 0, 0, False
    try:
        total = len(batches) * n_passes
    except TypeError:
        total = None
    with _bar.bar(total, "jaxmix minibatch_kmeans", progress) as pbar:
        for p in range(n_passes):
            if done >= max_steps or stopped:
                break
            passes += 1
            for j, (xb, wb) in enumerate(_batch_items(batches)):
                name = f"batch {j} of pass {p}"
                if state is None:
                    x0 = _check_batch(xb, None, None, name=name)
                    state = minibatch_kmeans_init(key, x0, n_clusters, init=init, n_init=n_init, weights=wb)
                    if tol:
                        w0 = V.check_weights(wb, x0.shape[0], x0.dtype)
                        tol_abs = float(tol) * float(_mean_variance(x0, w0, chunk_size=x0.shape[0]))
                x = _check_batch(xb, state.shift.shape[0], state.centered.dtype, name=name)
                w = V.check_weights(wb, x.shape[0], x.dtype)
                state, inertia = minibatch_kmeans_update(
                    state, x, w, reassignment_ratio=reassignment_ratio, smoothing=alpha
                )
                hist.append(inertia / jnp.sum(w))
                done += 1
                pbar.update(1)
                if early and bool(_mbk_stopped(state, tol_abs, max_no_improvement)):
                    stopped = True
                    break
                if done >= max_steps:
                    break
    if state is None:
        raise ValueError("batches is empty: no batch to fit")
    history = jnp.stack(hist) if hist else jnp.zeros((0,), state.centered.dtype)
    return MiniBatchKMeansResult(state.centers, None, None, done, passes, stopped, history, state)


# --------------------------------------------------------------------------- #
# Online EM for Gaussian mixtures
# --------------------------------------------------------------------------- #


class OnlineGMMState(NamedTuple):
    """State of an online EM fit (a pytree).

    `centered_params` has its means minus `shift`; `state.params` gives the
    mixture in data coordinates (a `jaxmix.GMMParams`).
    """

    centered_params: GMMParams  # current parameters, means about `shift`
    stats: G.GMMStats  # running statistics per unit weight about `shift` (resp sums to 1; loglik: running mean)
    shift: jax.Array  # (d,) weighted mean of the first batch
    n_steps: jax.Array  # () int32, updates done
    kappa: jax.Array  # () step-size exponent in (0.5, 1]
    t0: jax.Array  # () step-size offset >= 0
    reg_covar: jax.Array  # () added to the covariances' diagonal
    burn_in: jax.Array  # () int32, updates before the first M-step
    seed: jax.Array  # () uint32, seed of the shuffles of an in-memory fit

    @property
    def params(self) -> GMMParams:
        """The mixture in data coordinates."""
        p = self.centered_params
        return dataclasses.replace(p, means=p.means + self.shift)


class OnlineGMMResult(NamedTuple):
    """The outcome of `online_gmm`."""

    params: GMMParams  # weights, means, covariances, precisions_cholesky (data coordinates)
    n_steps: int  # updates (batches) done
    n_passes: int  # passes over the data
    history: jax.Array  # (n_steps,) mean log-likelihood per unit weight of each batch, before its update
    state: OnlineGMMState  # to continue with `online_gmm_update`


def _scaled(stats: G.GMMStats, factor) -> G.GMMStats:
    return G.GMMStats(*(a * factor for a in stats))


def _gmm_seed(key, x, w, kappa, t0, reg_covar, burn_in, *, ctype, k, method, chunk_size):
    shift = _weighted_mean(x, w)
    s0 = _scaled(G._initial_stats(key, x, w, shift, ctype, k, method, chunk_size), 1.0 / jnp.sum(w))
    params = G.m_step(s0, ctype, reg_covar, None)
    return OnlineGMMState(params, s0, shift, jnp.int32(0), kappa, t0, reg_covar, burn_in, _seed_of(key))


_gmm_init = fit_jit(static_argnames=("ctype", "k", "method", "chunk_size"))(_gmm_seed)


@fit_jit(static_argnames=("m", "ctype", "k", "method", "chunk_size"))
def _gmm_start(key, x, w, m_true, kappa, t0, reg_covar, burn_in, *, m, ctype, k, method, chunk_size):
    """`_gmm_init` on `m_true` random rows of an in-memory data set (one program)."""
    xi, wi = _sample_rows(key, x, w, m_true, m)
    return _gmm_seed(key, xi, wi, kappa, t0, reg_covar, burn_in, ctype=ctype, k=k, method=method, chunk_size=chunk_size)


def _gmm_step(state: OnlineGMMState, x, w, chunk_size: int):
    """One stepwise-EM update (pure): `(state, mean log-likelihood of the batch per unit weight)`."""
    p = state.centered_params
    dt = p.means.dtype
    total = jnp.sum(w)
    inv = 1.0 / jnp.maximum(total, jnp.finfo(dt).tiny)
    sb = _scaled(G.e_step(x, w, state.shift, p, chunk_size), inv)
    t = (state.n_steps + 1).astype(dt)
    rho = jnp.where(total > 0, (t + state.t0) ** (-state.kappa), 0.0)
    stats = G.GMMStats(*((1.0 - rho) * a + rho * b for a, b in zip(state.stats, sb, strict=True)))
    new = G.m_step(stats, p.covariance_type, state.reg_covar, None, previous=p.covariances)
    m_step_now = state.n_steps + 1 > state.burn_in
    new = jax.tree_util.tree_map(lambda a, b: jnp.where(m_step_now, a, b), new, p)
    return state._replace(centered_params=new, stats=stats, n_steps=state.n_steps + 1), sb.loglik


@fit_jit(static_argnames=("chunk_size",))
def _gmm_update(state, x, w, *, chunk_size):
    return _gmm_step(state, x, w, chunk_size)


@fit_jit(static_argnames=("batch_size", "chunk_size"))
def _gmm_pass(state, x, w, n_valid, pass_index, steps_left, *, batch_size, chunk_size):
    def step(s, xb, wb):
        return _gmm_step(s, xb, wb, chunk_size)

    return _pass_loop(
        step, lambda s: jnp.bool_(False), state, x, w, n_valid, state.seed, pass_index, steps_left, batch_size
    )


def _check_gmm_options(covariance_type: Any, init: Any, kappa: Any, t0: Any, reg_covar: Any, burn_in: Any) -> int:
    """Check the options of an online GMM fit; returns `burn_in`."""
    check_covariance_type(covariance_type)
    if not isinstance(init, str) or init not in GMM_INIT_METHODS:
        raise ValueError(f"init must be one of {GMM_INIT_METHODS}, got {init!r}")
    V.check_scalar(kappa, "kappa")
    V.check_scalar(t0, "t0", nonnegative=True)
    if not V.is_traced(kappa) and not 0.5 < float(kappa) <= 1.0:
        raise ValueError(f"kappa must be in (0.5, 1] (Robbins-Monro: sum rho = inf, sum rho^2 < inf), got {kappa}")
    V.check_scalar(reg_covar, "reg_covar", nonnegative=True)
    return V.check_positive_int(burn_in, "burn_in", 0)


def online_gmm_init(
    key: jax.Array,
    first_batch: Any,
    n_components: int,
    *,
    covariance_type: str = "full",
    init: str = "kmeans",
    weights: Any = None,
    kappa: float = 0.6,
    t0: float = 2.0,
    reg_covar: float = 1e-6,
    burn_in: int = 0,
) -> OnlineGMMState:
    """Start an online EM fit (Cappé and Moulines 2009) from the first batch.

    Initial responsibilities come from `init` on `first_batch` as in
    `jaxmix.gmm` ("kmeans", "k-means++", "random_from_data", "random"); their
    statistics per unit weight are the starting running statistics, and an
    M-step gives the starting parameters.

    Args:
      key: a JAX PRNG key.
      first_batch: (b, d) rows, b >= n_components.
      n_components: number of components k.
      covariance_type: "full", "tied", "diag" or "spherical".
      init: how the initial responsibilities are made.
      weights: (b,) non-negative sample weights (default ones).
      kappa: step-size exponent in (0.5, 1]: `rho_t = (t + t0)^(-kappa)`.
      t0: step-size offset >= 0 (larger: the first batches count less).
      reg_covar: >= 0, added to the diagonal of every covariance.
      burn_in: updates that only accumulate statistics before the first M-step.

    Returns:
      An `OnlineGMMState` for `online_gmm_update`.

    Example:
      >>> import jax, jaxmix
      >>> from jaxmix._online import online_gmm_init
      >>> x = jaxmix.datasets.load_faithful()
      >>> s = online_gmm_init(jax.random.key(0), x[:100], 2)
      >>> s.params.covariances.shape
      (2, 2, 2)
    """
    V.check_key(key)
    x = _check_batch(first_batch, None, None, name="first_batch")
    b, d = x.shape
    k = V.check_positive_int(n_components, "n_components")
    if k > b:
        raise ValueError(f"n_components={k} must be <= the number of rows of the first batch ({b})")
    w = V.check_weights(weights, b, x.dtype)
    V.check_n_clusters(k, b, w, name="n_components")
    burn = _check_gmm_options(covariance_type, init, kappa, t0, reg_covar, burn_in)
    dt = x.dtype
    chunk = min(G.gmm_chunk_size(b, k, d, covariance_type, dt.itemsize), b)
    return _gmm_init(
        key,
        x,
        w,
        jnp.asarray(kappa, dt),
        jnp.asarray(t0, dt),
        jnp.asarray(reg_covar, dt),
        jnp.int32(burn),
        ctype=covariance_type,
        k=k,
        method=init,
        chunk_size=chunk,
    )


def online_gmm_update(state: OnlineGMMState, batch: Any, weights: Any = None) -> tuple[OnlineGMMState, jax.Array]:
    """One stepwise-EM update (Cappé and Moulines 2009).

    E-step on the batch under the current parameters (the core GMM E-step,
    about the state's shift); the batch statistics per unit weight `s_b`
    are blended into the running ones, `s <- (1 - rho_t) s + rho_t s_b` with
    `rho_t = (t + t0)^(-kappa)` for the t-th update (t = 1, 2, ...); then the
    closed-form M-step (with `reg_covar`) gives the new parameters, unless
    `t <= burn_in`. Pure and jit-compiled (one compile per batch shape).

    Args:
      state: from `online_gmm_init` or a previous update.
      batch: (b, d) rows.
      weights: (b,) non-negative sample weights (default ones).

    Returns:
      `(state, batch_mean_log_likelihood)`: the batch's mean log-likelihood
      per unit weight under the parameters *before* the update.

    Example:
      >>> import jax, jaxmix
      >>> from jaxmix._online import online_gmm_init, online_gmm_update
      >>> x = jaxmix.datasets.load_faithful()
      >>> s = online_gmm_init(jax.random.key(0), x[:100], 2)
      >>> s, ll = online_gmm_update(s, x[100:200])
      >>> int(s.n_steps), bool(ll < 0)
      (1, True)
    """
    d = state.shift.shape[0]
    p = state.centered_params
    x = _check_batch(batch, d, p.means.dtype)
    w = V.check_weights(weights, x.shape[0], x.dtype)
    k = p.means.shape[0]
    chunk = min(G.gmm_chunk_size(x.shape[0], k, d, p.covariance_type, x.dtype.itemsize), x.shape[0])
    return _gmm_update(state, x, w, chunk_size=chunk)


def online_gmm(
    key: jax.Array,
    batches: Any,
    n_components: int,
    *,
    covariance_type: str = "full",
    init: str = "kmeans",
    kappa: float = 0.6,
    t0: float = 2.0,
    reg_covar: float = 1e-6,
    burn_in: int = 0,
    n_passes: int = 1,
    max_steps: int | None = None,
    batch_size: int = 1024,
    weights: Any = None,
    init_size: int | None = None,
    progress: bool | None = None,
) -> OnlineGMMResult:
    """Fit a Gaussian mixture by online (stepwise) EM, one batch at a time.

    Cappé and Moulines (2009): running sufficient statistics per unit
    weight, `s <- (1 - rho_t) s + rho_t s_batch` with
    `rho_t = (t + t0)^(-kappa)`, `kappa` in (0.5, 1], then an M-step after
    every batch (past `burn_in`); see `online_gmm_update`. The result's
    `params` is a `jaxmix.GMMParams`: `jaxmix.predict`, `log_prob`, `bic`,
    ... work on it.

    Sources as in `minibatch_kmeans`: an in-memory (n, d) array is shuffled
    by `key` every pass and read in batches of `batch_size` rows (one
    compiled loop per pass), seeded from `init_size` random rows (default
    `3 * batch_size`); any other iterable of (b, d) arrays or `(x, weights)`
    pairs is read as it comes, seeded from its first batch, which is then
    also the first update.

    Args:
      key: a JAX PRNG key.
      batches: an (n, d) array or an iterable of batches.
      n_components: number of components k.
      covariance_type: "full", "tied", "diag" or "spherical".
      init: initial responsibilities as in `jaxmix.gmm`.
      kappa, t0: the step-size schedule (kappa in (0.5, 1], t0 >= 0).
      reg_covar: >= 0, added to every covariance's diagonal.
      burn_in: updates before the first M-step.
      n_passes: passes over the data (a re-iterable source for > 1).
      max_steps: stop after this many updates (default: no limit).
      batch_size: rows per batch (array input).
      weights: (n,) sample weights (array input).
      init_size: rows used for the initialisation (array input).
      progress: a tqdm bar over batches (None: only when stderr is a terminal).

    Returns:
      An `OnlineGMMResult`: `params`, `n_steps`, `n_passes`, `history` (each
      batch's mean log-likelihood before its update), `state`.

    Example:
      >>> import jax, jaxmix
      >>> from jaxmix._online import online_gmm
      >>> x = jaxmix.datasets.load_faithful()
      >>> g = online_gmm(jax.random.key(0), x, 2, batch_size=64, n_passes=2)
      >>> jaxmix.predict(g.params, x).shape, g.n_steps
      ((272,), 10)
    """
    V.check_key(key)
    b, n_passes, max_steps = _check_driver_args(batch_size, n_passes, max_steps)
    opts = dict(covariance_type=covariance_type, init=init, kappa=kappa, t0=t0, reg_covar=reg_covar, burn_in=burn_in)
    hist: list[jax.Array] = []
    done, passes = 0, 0
    if _is_array(batches):
        x = V.check_data(batches)
        w = V.check_weights(weights, x.shape[0], x.dtype, rescale=True)  # all weights at once: one common factor
        n, d = x.shape
        k = V.check_n_clusters(n_components, n, w, name="n_components")
        burn = _check_gmm_options(covariance_type, init, kappa, t0, reg_covar, burn_in)
        m_true, m = _init_rows(w, n, k, b, init_size)
        dt = x.dtype
        state = _gmm_start(
            key,
            x,
            w,
            jnp.int32(m_true),
            jnp.asarray(kappa, dt),
            jnp.asarray(t0, dt),
            jnp.asarray(reg_covar, dt),
            jnp.int32(burn),
            m=m,
            ctype=covariance_type,
            k=k,
            method=init,
            chunk_size=min(G.gmm_chunk_size(m, k, d, covariance_type, dt.itemsize), m),
        )
        b = min(b, n)
        chunk = min(G.gmm_chunk_size(b, k, d, covariance_type, x.dtype.itemsize), b)
        per_pass = -(-n // b)
        with _bar.bar(min(per_pass * n_passes, max_steps), "jaxmix online_gmm", progress) as pbar:
            for p in range(n_passes):
                if done >= max_steps:
                    break
                passes += 1
                state, i, _, h = _gmm_pass(
                    state,
                    x,
                    w,
                    jnp.int32(n),
                    jnp.int32(p),
                    jnp.int32(max_steps - done),
                    batch_size=b,
                    chunk_size=chunk,
                )
                i_host = int(i)
                done += i_host
                hist.append(h[:i_host])
                pbar.update(i_host)
                pbar.set_postfix(loglik=f"{float(h[i_host - 1]):.4g}")
    else:
        if weights is not None:
            raise ValueError("weights go with array input; for an iterable, yield (x, weights) pairs")
        _check_iterable(batches, n_passes)
        st: OnlineGMMState | None = None
        try:
            total = len(batches) * n_passes
        except TypeError:
            total = None
        with _bar.bar(total, "jaxmix online_gmm", progress) as pbar:
            for p in range(n_passes):
                if done >= max_steps:
                    break
                passes += 1
                for j, (xb, wb) in enumerate(_batch_items(batches)):
                    name = f"batch {j} of pass {p}"
                    if st is None:
                        x0 = _check_batch(xb, None, None, name=name)
                        st = online_gmm_init(key, x0, n_components, weights=wb, **opts)  # type: ignore[arg-type]
                    x = _check_batch(xb, st.shift.shape[0], st.centered_params.means.dtype, name=name)
                    st, ll = online_gmm_update(st, x, wb)
                    hist.append(ll)
                    done += 1
                    pbar.update(1)
                    if done >= max_steps:
                        break
        if st is None:
            raise ValueError("batches is empty: no batch to fit")
        state = st
    history = jnp.concatenate([jnp.atleast_1d(h) for h in hist]) if hist else jnp.zeros((0,))
    return OnlineGMMResult(state.params, done, passes, history, state)


__all__ = [
    "MiniBatchKMeansResult",
    "MiniBatchKMeansState",
    "OnlineGMMResult",
    "OnlineGMMState",
    "minibatch_kmeans",
    "minibatch_kmeans_init",
    "minibatch_kmeans_update",
    "online_gmm",
    "online_gmm_init",
    "online_gmm_update",
]
