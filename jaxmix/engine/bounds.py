"""Exact Lloyd iterations that skip most distance computations (Hamerly 2010).

Each row carries its label and two bounds: `upper` >= the distance to its own
centre and `lower` <= the distance to every other centre. When the centres
move by `delta`, the bounds move by at most that much (triangle inequality),
so a row whose `upper` stays below `max(lower, s[label])` (s = half the
distance from its centre to the nearest other centre) provably keeps its
label. Only the remaining rows are gathered, in chunks, and get the full
distance GEMM. After the first few iterations that is a small fraction of
the data, so an iteration costs a fraction of a dense one.

The labels are the dense algorithm's, not an approximation: bounds are
widened by a margin that covers the rounding error of the GEMM expansion
(`||x||^2 - 2 x.m + ||m||^2`), so a row is skipped only when the dense
computation could not have picked another centre; every other row is
assigned by the same formula and the same tie rule as the dense E-step.

The cluster statistics are kept up to date from the rows whose label
changed (their weight, weighted sum and weighted squared norm move from the
old cluster to the new one), so an iteration never passes over all rows
except for the cheap bound test and the compaction. The changes are
accumulated apart from the statistics of the first full assignment, so
their rounding error scales with the size of the changes, not of the sums.

Extra memory: three (n,) arrays per restart (labels, upper, lower) and one
(n,) index array during an assignment.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmix.engine.distances import min_argmin, partial_sq_distances, sq_norms


class Bounds(NamedTuple):
    labels: jax.Array  # (n,) int32 nearest centre
    upper: jax.Array  # (n,) >= distance to centers[labels]
    lower: jax.Array  # (n,) <= distance to every other centre


class Changes(NamedTuple):
    """What the relabelled rows add to the cluster statistics (shifted coordinates)."""

    counts: jax.Array  # (k,) weights
    sums: jax.Array  # (k, d) weighted rows
    sq: jax.Array  # (k,) weighted squared norms

    @staticmethod
    def zero(k: int, d: int, dtype) -> Changes:
        return Changes(jnp.zeros((k,), dtype), jnp.zeros((k, d), dtype), jnp.zeros((k,), dtype))

    def __add__(self, other):
        return Changes(*(a + b for a, b in zip(self, other, strict=True)))

    def moved(self, xc: jax.Array, w: jax.Array, old: jax.Array, new: jax.Array) -> Changes:
        """Rows `xc` (weights `w`, 0 for rows that stay) leave `old` and join `new`.

        A label outside [0, k) (an unknown old label) is skipped.
        """
        xx = sq_norms(xc)

        def shift(a, vals):
            return a.at[new].add(vals, mode="drop").at[old].add(-vals, mode="drop")

        return Changes(shift(self.counts, w), shift(self.sums, xc * w[:, None]), shift(self.sq, w * xx))


def unknown_bounds(n: int, dtype) -> Bounds:
    """Bounds that force every row to be assigned; labels -1 (in no cluster yet)."""
    return Bounds(jnp.full((n,), -1, jnp.int32), jnp.full((n,), jnp.inf, dtype), jnp.zeros((n,), dtype))


def _half_separation(centers: jax.Array) -> jax.Array:
    """s_j = half the distance from centre j to its nearest other centre, (k,)."""
    k = centers.shape[0]
    diff = centers[:, None, :] - centers[None, :, :]
    dist = jnp.sqrt(jnp.sum(diff * diff, axis=-1))
    dist = jnp.where(jnp.eye(k, dtype=bool), jnp.inf, dist)
    # Rounded down a little: s must not exceed the true half-distance.
    return 0.5 * jnp.min(dist, axis=1) * (1 - 8 * jnp.finfo(centers.dtype).eps)


def move(bounds: Bounds, delta: jax.Array) -> Bounds:
    """Bounds after each centre j moved by `delta[j]` (its Euclidean shift)."""
    k = delta.shape[0]
    eps = jnp.finfo(delta.dtype).eps
    if k == 1:
        return bounds._replace(upper=(bounds.upper + delta[0]) * (1 + 4 * eps))
    top, arg = lax.top_k(delta, 2)
    others = jnp.where(bounds.labels == arg[0], top[1], top[0])
    upper = (bounds.upper + delta[bounds.labels]) * (1 + 4 * eps)
    lower = jnp.maximum(bounds.lower - others, 0.0) * (1 - 4 * eps)
    return Bounds(bounds.labels, upper, lower)


def assign(
    x: jax.Array, weights: jax.Array, shift: jax.Array, centers: jax.Array, bounds: Bounds, chunk_size: int
) -> tuple[Bounds, Changes]:
    """Labels of every row for `centers` (shifted coordinates), fresh bounds, and the statistics' changes.

    Rows the bounds cannot settle are compacted into a list and processed
    `chunk_size` at a time in a `while_loop` whose trip count is the number
    of such chunks (under `vmap`: the largest over the batch). Rows whose
    label changes move their statistics from the old cluster to the new.
    """
    n, d = x.shape
    k = centers.shape[0]
    c = max(1, min(int(chunk_size), n))
    dt = x.dtype
    eps = jnp.finfo(dt).eps
    cc = sq_norms(centers)
    cmax = jnp.max(cc)
    s = _half_separation(centers)
    need = bounds.upper > jnp.maximum(bounds.lower, s[jnp.maximum(bounds.labels, 0)])
    n_need = jnp.sum(need.astype(jnp.int32))
    # Compaction: the r-th row that needs work goes to slot r; unused slots
    # point past the end and are dropped on write.
    n_slots = -(-n // c) * c
    pos = jnp.where(need, jnp.cumsum(need.astype(jnp.int32)) - 1, n_slots)
    todo = jnp.full((n_slots,), n, jnp.int32).at[pos].set(jnp.arange(n, dtype=jnp.int32), mode="drop")
    # Error of the GEMM expansion of a squared distance: about (d + 2) eps
    # (||x||^2 + ||m||^2); twice that keeps every skipped row certain.
    margin = 2 * (d + 2) * eps

    def body(state):
        j, b, ch = state
        rows = lax.dynamic_slice_in_dim(todo, j * c, c)
        real = rows < n
        xg = jnp.take(x, rows, axis=0, mode="clip") - shift
        p = partial_sq_distances(xg, centers, cc)
        m1, lab = min_argmin(p)
        xx = sq_norms(xg)
        slack = margin * (xx + cmax)
        upper = jnp.sqrt(jnp.maximum(m1 + xx, 0.0) + slack)
        if k > 1:
            m2 = jnp.min(jnp.where(lax.broadcasted_iota(jnp.int32, p.shape, 1) == lab[:, None], jnp.inf, p), axis=1)
            lower = jnp.sqrt(jnp.maximum(m2 + xx - slack, 0.0))
        else:
            lower = jnp.full_like(upper, jnp.inf)
        old = jnp.take(b.labels, rows, mode="clip")
        w = jnp.where(real & (lab != old), jnp.take(weights, rows, mode="clip"), 0.0)
        ch = ch.moved(xg, w, jnp.where(old >= 0, old, k), lab)
        b = Bounds(
            b.labels.at[rows].set(lab, mode="drop"),
            b.upper.at[rows].set(upper, mode="drop"),
            b.lower.at[rows].set(lower, mode="drop"),
        )
        return j + 1, b, ch

    state = (jnp.int32(0), bounds, Changes.zero(k, d, dt))
    _, out, changes = lax.while_loop(lambda st: st[0] * c < n_need, body, state)
    return out, changes
