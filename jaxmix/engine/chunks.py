"""Bounded-memory passes over the rows of a data set.

Every model in jaxmix reduces the data to sums over rows (sufficient
statistics). `scan_rows` walks the rows in fixed-size chunks with
`lax.scan`, so no array bigger than one chunk times the number of clusters
ever exists, and it never copies or pads the data: the last chunk is slid
back to end at row n and the rows it shares with the previous chunk are
marked invalid (callers give them weight 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxmix.engine import collective as coll

# Passes whose data fit in one block of this size run as a single chunk.
BLOCK_BYTES = 64 * 2**20
# A block of (chunk_size, n_clusters) distances is kept near this size.
# Measured on XLA:CPU (bench/): the E-step reads its block several times,
# so it must stay in cache: at k = 1000 (W6) blocks of 1-2k rows (4-8 MiB)
# ran 1.8x faster than 16k rows (64 MiB); at k = 100 (W1) 16k rows (6.5
# MiB) beat smaller blocks, whose per-chunk overhead then dominates.
E_STEP_BLOCK_BYTES = 8 * 2**20
MAX_CHUNK_ROWS = 16384
MIN_CHUNK_ROWS = 256


def default_chunk_size(n_samples: int, n_clusters: int, itemsize: int = 4, n_batch: int = 1) -> int:
    """Rows per chunk so that one (rows, n_clusters) block stays near 8 MiB (at most 16384 rows).

    Args:
      n_samples: number of rows of the data.
      n_clusters: number of clusters or components.
      itemsize: bytes per element of the data's dtype.
      n_batch: how many blocks live at once (e.g. restarts run by vmap).

    Returns:
      An int in [1, n_samples].
    """
    rows = E_STEP_BLOCK_BYTES // max(1, n_clusters * itemsize * n_batch)
    rows = max(MIN_CHUNK_ROWS, min(MAX_CHUNK_ROWS, rows))
    return int(max(1, min(n_samples, rows)))


def row_pass_chunk(n_samples: int, width: int, itemsize: int = 4) -> int:
    """Rows per chunk for a pass whose per-row temporaries are `width` wide.

    Passes without a (rows, k) distance block (moments, seeding, exact
    distances): when all rows fit in one block of 64 MiB they are one chunk
    (no slicing copies, no loop to compile); otherwise chunks of
    MAX_CHUNK_ROWS, which stay in cache (larger chunks were measured slower:
    each slice is a copy).
    """
    if n_samples * width * itemsize <= BLOCK_BYTES:
        return int(n_samples)
    return int(min(n_samples, MAX_CHUNK_ROWS))


def scan_rows(
    fn: Callable[[Any, Any, jax.Array], tuple[Any, Any]],
    carry: Any,
    rows: Any,
    chunk_size: int,
) -> tuple[Any, Any]:
    """Fold `fn` over chunks of rows; reassemble its per-row outputs.

    Args:
      fn: `fn(carry, chunk, valid) -> (carry, out)`. `chunk` has the
        structure of `rows` with leading dimension `chunk_size`; `valid` is a
        (chunk_size,) bool mask, False for rows that an earlier chunk already
        covered. `out` is None or a pytree of per-row arrays
        (leading dimension `chunk_size`).
      carry: initial running value (e.g. zero statistics).
      rows: a pytree of arrays sharing the leading dimension n.
      chunk_size: rows per chunk (static); clipped to n.

    Returns:
      `(carry, outs)` where `outs` has leading dimension n (or is None).
    """
    leaves = jax.tree_util.tree_leaves(rows)
    n = leaves[0].shape[0]
    c = max(1, min(int(chunk_size), n))
    n_chunks = -(-n // c)
    row_ids = jnp.arange(c)

    def body(carry, i):
        nominal = i * c
        start = jnp.minimum(nominal, n - c)
        chunk = jax.tree_util.tree_map(lambda a: lax.dynamic_slice_in_dim(a, start, c), rows)
        valid = start + row_ids >= nominal
        return fn(carry, chunk, valid)

    if n_chunks == 1:
        carry, outs = body(carry, jnp.int32(0))
        return carry, outs
    carry, outs = lax.scan(body, carry, jnp.arange(n_chunks, dtype=jnp.int32))
    if outs is None:
        return carry, None
    overlap = n_chunks * c - n  # rows of the last chunk already covered

    def assemble(o):
        return jnp.concatenate([o[:-1].reshape((-1, *o.shape[2:])), o[-1, overlap:]])

    return carry, jax.tree_util.tree_map(assemble, outs)


def map_rows(fn: Callable[[Any], Any], rows: Any, chunk_size: int) -> Any:
    """Apply a row-wise `fn` chunk by chunk; outputs have leading dimension n."""

    def body(carry, chunk, valid):
        del valid
        return carry, fn(chunk)

    _, outs = scan_rows(body, None, rows, chunk_size)
    return outs


def top_rows(
    score_fn: Callable[[Any, jax.Array], jax.Array], rows: Any, k: int, chunk_size: int
) -> tuple[jax.Array, jax.Array]:
    """The `k` rows with the highest score, in one pass of bounded memory.

    Args:
      score_fn: `score_fn(chunk, valid) -> (chunk_size,)` scores; return
        -inf for rows that must not be picked (including invalid ones).
      rows: a pytree of arrays sharing the leading dimension n.
      k: how many rows (static).
      chunk_size: rows per chunk.

    Returns:
      `(scores, indices)`, each (k,), highest score first. Equal scores
      resolve to the highest row index (scikit-learn's argpartition does so
      on its relocation test case). Fewer than k eligible rows leave -inf
      scores (with arbitrary indices) at the end.
    """
    n = jax.tree_util.tree_leaves(rows)[0].shape[0]
    c = max(1, min(int(chunk_size), n))
    t = min(k, c)

    def fold(best, chunk, valid):
        chunk, ids = chunk
        s = score_fn(chunk, valid)
        s = jnp.where(valid, s, -jnp.inf)
        # top_k keeps the first of equal values: scan rows backwards and put
        # later chunks first, so that ties go to the highest index.
        top_s, top_i = lax.top_k(s[::-1], t)
        all_s = jnp.concatenate([top_s, best[0]])
        all_i = jnp.concatenate([ids[::-1][top_i], best[1]])
        keep, pos = lax.top_k(all_s, k)
        return (keep, all_i[pos]), None

    dtype = jnp.result_type(float)
    init = (jnp.full((k,), -jnp.inf, dtype), jnp.zeros((k,), jnp.int32))
    (scores, idx), _ = scan_rows(fold, init, (rows, jnp.arange(n, dtype=jnp.int32)), chunk_size)
    if coll.sharded():  # global row indices, best over all shards
        return coll.merge_top(scores, idx + coll.row_offset(n), k)
    return scores, idx
