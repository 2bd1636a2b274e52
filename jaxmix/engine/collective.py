"""Row reductions that also work when the rows are split over devices.

A fit on a row-sharded `x` runs the same pure functions under
`jax.shard_map`: each device holds its own block of rows, and every sum over
rows (the sufficient statistics, the objective, the data moments) becomes a
`psum` over the mesh axes that split the rows. The fitting code calls the
helpers below at those places; outside a sharded fit (`row_axes()` is None)
they are the plain single-device operations, so the unsharded programs are
unchanged.

The axes are set at trace time by `sharding` (a context manager around the
traced body), never read at run time, so there is no global state in a
compiled program.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

_AXES: list[tuple[str, ...] | None] = [None]


@contextlib.contextmanager
def row_axes(axes: tuple[str, ...]) -> Iterator[None]:
    """Trace the body with rows split over the mesh `axes` (inside `shard_map`)."""
    _AXES.append(tuple(axes))
    try:
        yield
    finally:
        _AXES.pop()


def axes() -> tuple[str, ...] | None:
    """The mesh axes that split the rows, or None outside a sharded fit."""
    return _AXES[-1]


def sharded() -> bool:
    return _AXES[-1] is not None


def allsum(tree: Any) -> Any:
    """Sum a pytree of per-device partial sums over all row shards."""
    a = _AXES[-1]
    if a is None:
        return tree
    return jax.tree_util.tree_map(lambda v: lax.psum(v, a), tree)


def n_shards() -> int:
    a = _AXES[-1]
    if a is None:
        return 1
    size = 1
    for name in a:
        size *= lax.axis_size(name)
    return size


def shard_index() -> jax.Array:
    """This device's position along the row axes (0 outside a sharded fit)."""
    a = _AXES[-1]
    if a is None:
        return jnp.int32(0)
    return lax.axis_index(a).astype(jnp.int32)


def row_offset(n_local: int) -> jax.Array:
    """Global index of this device's first row (rows are split evenly)."""
    return shard_index() * n_local


def global_rows(n_local: int) -> int:
    return n_local * n_shards()


def take_rows(a: jax.Array, idx: jax.Array) -> jax.Array:
    """`a[idx]` for global row indices `idx` (any shape) of a row-sharded `a`.

    Each device contributes the rows it holds and zeros elsewhere; one psum
    gives every device the same rows.
    """
    if _AXES[-1] is None:
        return a[idx]
    n_local = a.shape[0]
    local = idx - row_offset(n_local)
    mine = (local >= 0) & (local < n_local)
    rows = a[jnp.clip(local, 0, n_local - 1)]
    mask = mine.reshape(mine.shape + (1,) * (rows.ndim - mine.ndim))
    return allsum(jnp.where(mask, rows, jnp.zeros((), rows.dtype)))


def top_k(scores: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """The `k` highest per-row `scores` (n_local,) over all shards; ties go to the highest row.

    Returns `(values, global_indices)`, each (k,), highest first; with
    fewer than k rows in all, the missing entries are -inf (index 0).
    """
    n = scores.shape[0]
    t = min(k, n)
    vals, rev = lax.top_k(scores[::-1], t)
    idx = (n - 1 - rev).astype(jnp.int32)
    if _AXES[-1] is not None:
        vals, idx = merge_top(vals, idx + row_offset(n), k)
        t = vals.shape[0]
    if t < k:
        vals = jnp.concatenate([vals, jnp.full((k - t,), -jnp.inf, vals.dtype)])
        idx = jnp.concatenate([idx, jnp.zeros((k - t,), jnp.int32)])
    return vals, idx


def inverse_cdf(u: jax.Array, p: jax.Array) -> jax.Array:
    """Global row indices for uniform draws `u` in [0, 1) under per-row weights `p >= 0`.

    Inverse-CDF sampling on the cumulative sum over all rows (all shards in
    order): a row with `p == 0` has an empty interval and is never drawn
    while the total is positive.
    """
    cum = jnp.cumsum(p)
    if _AXES[-1] is None:
        # "compare_all": one fused pass, no binary-search loop to compile.
        return jnp.clip(jnp.searchsorted(cum, u * cum[-1], side="right", method="compare_all"), 0, p.shape[0] - 1)
    n = p.shape[0]
    totals = lax.all_gather(cum[-1], _AXES[-1])  # (n_shards,)
    ends = jnp.cumsum(totals)
    target = u * ends[-1]
    s = totals.shape[0]
    owner = jnp.clip(jnp.searchsorted(ends, target, side="right", method="compare_all"), 0, s - 1)
    start = jnp.where(owner > 0, ends[jnp.maximum(owner - 1, 0)], 0.0)
    local = jnp.clip(jnp.searchsorted(cum, target - start, side="right", method="compare_all"), 0, n - 1)
    return (owner * n + local).astype(jnp.int32)


def draw_rows(x: jax.Array, u: jax.Array, p: jax.Array) -> jax.Array:
    """Rows of `x` drawn by `inverse_cdf(u, p)` (shape `u.shape + (d,)`)."""
    return take_rows(x, inverse_cdf(u, p))


def merge_top(vals: jax.Array, idx: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """Merge each shard's top `k` (`vals`, global `idx`, highest first, ties to the highest row)."""
    a = _AXES[-1]
    if a is None:
        return vals, idx
    t = vals.shape[0]
    s = n_shards()
    # Later shards first, so that top_k's first-of-equals is the highest row.
    all_v = lax.all_gather(vals, a, tiled=True).reshape(s, t)[::-1].reshape(-1)
    all_i = lax.all_gather(idx, a, tiled=True).reshape(s, t)[::-1].reshape(-1)
    out_v, pos = lax.top_k(all_v, min(k, all_v.shape[0]))
    return out_v, all_i[pos]
