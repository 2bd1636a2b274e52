"""One Lloyd iteration of k-means and the loop around it: the hard-assignment E-step and its
statistics (`KMeansStats`), the M-step, the relocation of empty clusters, and `_lloyd`, which runs
the dense iteration or Hamerly's bounded one (`engine/bounds.py`, the one hard-assignment fast
path outside the family protocol). `kmeans.py` builds the fit program (seeds, restarts, sizes)
on these.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmix.engine import bounds
from jaxmix.engine import collective as coll
from jaxmix.engine.chunks import map_rows, row_pass_chunk, scan_rows, top_rows
from jaxmix.engine.distances import min_argmin, partial_sq_distances, sq_norms
from jaxmix.engine.loop import iterate
from jaxmix.engine.seeding import initial_centers


class KMeansStats(NamedTuple):
    """Sufficient statistics of one E-step, summed over rows."""

    counts: jax.Array  # (k,) sum of weights assigned to each cluster
    sums: jax.Array  # (k, d) weighted sum of (x - shift) per cluster
    inertia: jax.Array  # () weighted sum of squared distances to the nearest centre


def _zero_stats(k: int, d: int, dtype: Any) -> KMeansStats:
    return KMeansStats(jnp.zeros((k,), dtype), jnp.zeros((k, d), dtype), jnp.zeros((), dtype))


def _nearest(
    xc: jax.Array, centers: jax.Array, centers_sq: jax.Array, exact: bool = False
) -> tuple[jax.Array, jax.Array]:
    """Nearest centre and squared distance to it for a chunk of centred rows.

    The GEMM expansion `||x||^2 - 2 x.m + ||m||^2` picks the centre and, in
    the loop, gives the distance. It loses about eps * ||x||^2 to
    cancellation, which is all of J for clusters much tighter than the
    data's spread; `exact=True` recomputes `||x - m||^2` directly (a gather
    of the centres, which on XLA:CPU doubles the cost of an E-step, so it is
    used for the reported inertia only).
    """
    m, lab = min_argmin(partial_sq_distances(xc, centers, centers_sq))
    if exact:
        return lab, sq_norms(xc - centers[lab])
    return lab, jnp.maximum(m + sq_norms(xc), 0.0)


def e_step(x: jax.Array, weights: jax.Array, shift: jax.Array, centers: jax.Array, chunk_size: int) -> KMeansStats:
    """Hard assignment and its statistics; see `e_step_with_dist`."""
    return e_step_with_dist(x, weights, shift, centers, chunk_size, with_dist=False)[0]


def e_step_with_dist(
    x: jax.Array,
    weights: jax.Array,
    shift: jax.Array,
    centers: jax.Array,
    chunk_size: int,
    with_dist: bool = True,
    active: jax.Array | None = None,
) -> tuple[KMeansStats, Any]:
    """Hard assignment and its statistics, accumulated chunk by chunk.

    Args:
      x: (n, d) data.
      weights: (n,) sample weights; 0 removes a row.
      shift: (d,) subtracted from every row before use.
      centers: (k, d) centres in shifted coordinates.
      chunk_size: rows per chunk (static).
      with_dist: also return each row's squared distance to its centre (n,)
        (GEMM expansion) and its label (n,), which the relocation of empty
        clusters uses; otherwise the second result is None.
      active: (k,) bool, clusters that exist (a masked fit); None for all.
        An inactive cluster is at infinite distance: it never gets a row.
    """
    k, d = centers.shape
    cc = masked_sq_norms(centers, active)

    def fold(acc: KMeansStats, chunk, valid):
        xc, wc = chunk
        xc = xc - shift
        wc = jnp.where(valid, wc, 0.0)
        lab, dist = _nearest(xc, centers, cc)
        return KMeansStats(
            acc.counts + jax.ops.segment_sum(wc, lab, k),
            acc.sums + jax.ops.segment_sum(xc * wc[:, None], lab, k),
            acc.inertia + jnp.sum(wc * dist),
        ), ((dist, lab) if with_dist else None)

    stats, dist = scan_rows(fold, _zero_stats(k, d, x.dtype), (x, weights), chunk_size)
    return coll.allsum(stats), dist


def masked_sq_norms(centers: jax.Array, active: jax.Array | None) -> jax.Array:
    """`||m_k||^2`, +inf for inactive clusters (never nearest in the GEMM expansion)."""
    cc = sq_norms(centers)
    return cc if active is None else jnp.where(active, cc, jnp.inf)


def _inertia_from_sums(stats: bounds.Changes, centers: jax.Array) -> jax.Array:
    """J of `centers` from per-cluster weights N, sums S and squared norms Q.

    `sum_k Q_k - 2 m_k . S_k + N_k ||m_k||^2`: the same GEMM-expansion
    precision as the dense E-step's per-row distances.
    """
    per_cluster = stats.sq - 2.0 * jnp.sum(centers * stats.sums, axis=1) + stats.counts * sq_norms(centers)
    return jnp.sum(jnp.maximum(per_cluster, 0.0))


def m_step(stats: KMeansStats, centers: jax.Array) -> jax.Array:
    """Means of the clusters; a cluster with no weight keeps its centre."""
    safe = jnp.where(stats.counts > 0, stats.counts, 1.0)
    return jnp.where((stats.counts > 0)[:, None], stats.sums / safe[:, None], centers)


def _relocation(x, weights, shift, centers, empty, chunk_size, labels=None, dist=None, active=None):
    """Which rows move into the empty clusters: `(rows, old, target, w)`, each (k,).

    scikit-learn's relocation: the r-th empty cluster (`target[r]`) receives
    the r-th farthest row (by distance to its own centre; the highest index
    first among equal distances, as scikit-learn's argpartition does on its
    test case), which leaves its old cluster; `w[r]` is its weight, 0 where
    nothing moves. Only rows of positive weight move. `dist`, when given, are
    the rows' squared distances from the E-step (no data pass needed);
    `labels`, when given, the rows' current labels.
    """
    k = centers.shape[0]
    cc = masked_sq_norms(centers, active)
    if dist is None:

        def distance_to_own_centre(chunk, valid):
            xc, wc = chunk
            _, dd = _nearest(xc - shift, centers, cc, exact=True)
            return jnp.where(valid & (wc > 0), dd, -jnp.inf)

        far_d, far_i = top_rows(distance_to_own_centre, (x, weights), k, chunk_size)
    else:
        far_d, far_i = coll.top_k(jnp.where(weights > 0, dist, -jnp.inf), k)
    if labels is None:  # the k candidates' own clusters, chunk by chunk: a (k, k) block would be O(k^2) memory
        far_x = coll.take_rows(x, far_i) - shift
        old = map_rows(lambda xc: _nearest(xc, centers, cc)[0], far_x, min(chunk_size, k))
    else:
        old = coll.take_rows(labels, far_i)
    target = jnp.argsort(~empty, stable=True)  # empty clusters first, in index order
    move = (jnp.arange(k) < jnp.sum(empty)) & jnp.isfinite(far_d)
    return far_i, old, target, jnp.where(move, coll.take_rows(weights, far_i), 0.0)


def _relocate_empty(
    x: jax.Array,
    weights: jax.Array,
    shift: jax.Array,
    centers: jax.Array,
    stats: KMeansStats,
    chunk_size: int,
    dist: jax.Array | None = None,
    active: jax.Array | None = None,
    labels: jax.Array | None = None,
) -> KMeansStats:
    """Move the points farthest from their centres into empty clusters (see `_relocation`).

    Runs only when a cluster is empty: the work sits in a `while_loop` of at
    most one trip, which under `vmap` (unlike `lax.cond`, which becomes a
    select running both branches) is skipped when no member needs it.
    """
    k = centers.shape[0]
    empty = stats.counts <= 0
    if active is not None:
        empty = empty & active

    def relocate(stats: KMeansStats) -> KMeansStats:
        rows, old, target, mw = _relocation(
            x, weights, shift, centers, empty, chunk_size, labels=labels, dist=dist, active=active
        )
        wx = (coll.take_rows(x, rows) - shift) * mw[:, None]
        counts = stats.counts - jax.ops.segment_sum(mw, old, k) + jax.ops.segment_sum(mw, target, k)
        sums = stats.sums - jax.ops.segment_sum(wx, old, k) + jax.ops.segment_sum(wx, target, k)
        return KMeansStats(counts, sums, stats.inertia)

    stats, _ = lax.while_loop(lambda s: s[1], lambda s: (relocate(s[0]), jnp.bool_(False)), (stats, jnp.any(empty)))
    return stats


def _relocate_empty_bounded(x, weights, shift, centers, total: bounds.Changes, b: bounds.Bounds, chunk_size):
    """`_relocate_empty` for the bounded algorithm: returns the statistics' changes and the bounds.

    A moved row gets its new label and bounds that force its reassignment
    (upper = inf), so the statistics keep matching the labels.
    """
    k, d = centers.shape
    empty = total.counts <= 0

    def relocate(state):
        b, _, _ = state
        rows, old, target, mw = _relocation(x, weights, shift, centers, empty, chunk_size, b.labels)
        moved = mw > 0
        rows_or_drop = jnp.where(moved, rows, x.shape[0])
        change = bounds.Changes.zero(k, d, x.dtype).moved(x[rows] - shift, mw, old, target)
        b = bounds.Bounds(
            b.labels.at[rows_or_drop].set(target.astype(b.labels.dtype), mode="drop"),  # argsort: int64 under x64
            b.upper.at[rows_or_drop].set(jnp.inf, mode="drop"),
            b.lower.at[rows_or_drop].set(0.0, mode="drop"),
        )
        return b, change, jnp.bool_(False)

    state = (b, bounds.Changes.zero(k, d, x.dtype), jnp.any(empty))
    b, change, _ = lax.while_loop(lambda s: s[2], relocate, state)
    return change, b


def assign(
    x: jax.Array,
    shift: jax.Array,
    centers: jax.Array,
    chunk_size: int,
    exact: bool = True,
    active: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Labels (n,) and squared distances to the nearest centre (n,).

    `exact=False` when only the labels are used: it skips the gather that
    makes the distances exact. `active`: (k,) bool, the clusters that exist.
    """
    cc = masked_sq_norms(centers, active)
    return map_rows(lambda xc: _nearest(xc - shift, centers, cc, exact=exact), x, chunk_size)


def _fit_single(
    key, x, weights, shift, tol_abs, init_centers, *, n_clusters, init, max_iter, chunk_size, algorithm, active=None
):
    """One restart from its own seeds; see `_lloyd`. `active`: (k,) bool mask of a masked fit."""
    n_active = None if active is None else jnp.sum(active.astype(jnp.int32))
    c0 = initial_centers(key, x, shift, weights, init_centers, init, n_clusters, chunk_size, n_active)
    return _lloyd(
        c0, x, weights, shift, tol_abs, max_iter=max_iter, chunk_size=chunk_size, algorithm=algorithm, active=active
    )


def _lloyd(c0, x, weights, shift, tol_abs, *, max_iter, chunk_size, algorithm, progress=False, active=None, limit=None):
    """Lloyd iterations from centres `c0` (shifted coordinates).

    Returns `(state, LoopInfo)` where `state[0]` are the final centres and
    `state[1]` the bounds (None for the dense algorithm). With `active` (a
    (k,) bool mask; dense algorithm only) the inactive clusters never take a
    row and are never relocated: the fit equals one with `sum(active)`
    clusters.
    """
    if active is not None and algorithm != "lloyd":
        raise ValueError("a masked k-means fit runs the dense (lloyd) algorithm")
    if coll.sharded() and algorithm != "lloyd":
        raise ValueError("a fit on row-sharded data runs the dense (lloyd) algorithm; use algorithm='lloyd' or 'auto'")

    def update(stats, centers, prev):
        """M-step and convergence test; `prev` = the previous (counts, sums)."""
        new = m_step(stats, centers)
        # Converged when the centres moved by at most tol_abs, or when the
        # statistics equal the previous iteration's (no assignment changed:
        # scikit-learn's strict convergence). The second test is what makes
        # tol = 0 reliable: XLA:CPU may evaluate `new` inside the movement's
        # fused reduction with a rounding that differs from the carried
        # value, so a fixed point can show a movement of one ulp.
        same = jnp.all(stats.counts == prev[0]) & jnp.all(stats.sums == prev[1])
        return new, (jnp.sum((new - centers) ** 2) <= tol_abs) | same, (stats.counts, stats.sums)

    k, d = c0.shape
    no_stats = (jnp.full((k,), jnp.nan, x.dtype), jnp.full((k, d), jnp.nan, x.dtype))
    if algorithm == "lloyd":

        def step(state, prev_objective):
            del prev_objective
            centers, _, prev = state
            stats, (dist, labels) = e_step_with_dist(x, weights, shift, centers, chunk_size, active=active)
            stats = _relocate_empty(x, weights, shift, centers, stats, chunk_size, dist, active=active, labels=labels)
            new, done, prev = update(stats, centers, prev)
            return (new, None, prev), stats.inertia, done

        state0: tuple[Any, ...] = (c0, None, no_stats)
    else:

        def step(state, prev_objective):
            del prev_objective
            centers, b, base, delta, prev = state
            b, change = bounds.assign(x, weights, shift, centers, b, chunk_size)
            delta = delta + change
            total = base + delta
            inertia = _inertia_from_sums(total, centers)
            reloc, b = _relocate_empty_bounded(x, weights, shift, centers, total, b, chunk_size)
            delta = delta + reloc
            total = base + delta
            new, done, prev = update(KMeansStats(total.counts, total.sums, inertia), centers, prev)
            moved = jnp.sqrt(jnp.sum((new - centers) ** 2, axis=1))
            return (new, bounds.move(b, moved), base, delta, prev), inertia, done

        # The first assignment (all rows) gives the base statistics; the loop
        # then only adds the changes, which are small, in `delta`.
        b0, base = bounds.assign(x, weights, shift, c0, bounds.unknown_bounds(x.shape[0], x.dtype), chunk_size)
        state0 = (c0, b0, base, bounds.Changes.zero(k, d, x.dtype), no_stats)
    return iterate(step, state0, max_iter, x.dtype, progress=progress, limit=limit)


def _final_assignment(x, weights, shift, state, chunk_size, active=None):
    """Labels for the final centres and each row's exact squared distance."""
    centers, b = state[:2]
    if b is None:
        labels, _ = assign(x, shift, centers, chunk_size, exact=False, active=active)
    else:
        labels = bounds.assign(x, weights, shift, centers, b, chunk_size)[0].labels
    # A separate pass for the exact distances: fused into the assignment's
    # chunk loop, the gather of centers[labels] doubled its cost on XLA:CPU.
    dist_chunk = max(chunk_size, row_pass_chunk(x.shape[0], x.shape[1], x.dtype.itemsize))
    dist = map_rows(lambda ch: sq_norms(ch[0] - shift - centers[ch[1]]), (x, labels), dist_chunk)
    return labels, dist
