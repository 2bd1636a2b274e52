"""Size buckets: one compiled program serves a family of small fits.

A compiled program is specialised to its shapes and static options, and on
a 2-core CPU compiling one takes about a second, much more than fitting a
small data set. So a small fit runs in a program for *rounded-up* sizes:

- rows: n rounded up to the next of 4 steps per octave (..., 128, 160, 192,
  224, 256, ...), the extra rows of weight 0 (they change nothing);
- clusters / components: k rounded up to a power of two, at least 8 (16
  for k-means and soft k-means on the smallest data, `sweep_min_k`), the
  extra ones masked out (zero weight, never nearest, never counted, seeded
  from draws that do not depend on k): the fit equals the exact-k fit from
  the same key;
- restarts: n_init rounded up to a power of two, the extra ones never win;
- iterations: max_iter is a traced bound; only the history's length,
  rounded up to a power of two (at least 1024), is static.

A k sweep (k = 2..10) then compiles one or two programs, not nine; a grid search
over n_init, max_iter or slightly different row counts compiles none anew.

The padding costs arithmetic, so it applies only where compiling dominates:
problems of at most `SMALL_WORK` multiply-adds per iteration (n k d summed
over restarts, after rounding). Larger fits run at their exact sizes, where
a compile is small beside the fit.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

SMALL_WORK = 2**24
MIN_K = 8
# k-means and soft k-means on data this small (at most SWEEP_WORK multiply-adds per iteration
# with SWEEP_K clusters, after rounding rows and restarts) start the k buckets at SWEEP_K: a
# k sweep over 2..16 then compiles one program, not two, and the masked clusters cost
# microseconds per iteration. Wine (178 x 13, n_init=10): 192 * 16 * 13 * 16 = 0.64M. Equal to
# `programs.TINY_WORK`: these programs compile with the options for compile speed.
SWEEP_K = 16
SWEEP_WORK = 2**20
MIN_HISTORY = 1024


def round_rows(n: int) -> int:
    """n rounded up to 4 steps per octave: 5 -> 5 ... 8, 9 -> 10, 178 -> 192, 1000 -> 1024."""
    if n <= 8:
        return n
    step = 1 << (n.bit_length() - 3)
    return -(-n // step) * step


def pow2(v: int, minimum: int = 1) -> int:
    return max(minimum, 1 << max(0, v - 1).bit_length())


class Plan(NamedTuple):
    """The sizes a small fit runs at; `None` from `plan` means exact sizes."""

    n: int  # true rows
    rows: int  # rows of the program (>= n)
    k: int  # true clusters
    k_program: int  # clusters of the program (>= k)
    n_init: int
    n_init_program: int
    max_iter: int
    history: int  # static history length (>= max_iter)
    work: int  # multiply-adds per iteration of the distance pass (rows * k_program * d * n_init_program)


def sweep_min_k(n: int, d: int, n_init: int) -> int:
    """The k-means family's smallest k bucket for (n, d) data: `SWEEP_K` where a fit with that many
    clusters stays within `SWEEP_WORK` multiply-adds per iteration, else `MIN_K`."""
    return SWEEP_K if round_rows(n) * SWEEP_K * d * pow2(n_init) <= SWEEP_WORK else MIN_K


def plan(n: int, k: int, d: int, n_init: int, max_iter: int, min_k: int = MIN_K) -> Plan | None:
    """Bucketed sizes for a fit of (n, d) data with k clusters (rounded up to a power of two of at
    least `min_k`), or None where exact sizes pay."""
    rows = round_rows(n)
    kp = min(pow2(k, min_k), rows)
    if kp < k:  # k close to n: no room to round k
        kp = k
    ni = pow2(n_init)
    work = rows * kp * d * ni
    if work > SMALL_WORK:
        return None
    return Plan(n, rows, k, kp, n_init, ni, max_iter, pow2(max_iter, MIN_HISTORY), work)


# Per-row toolbox calls (predict, transform, log_prob, ...) pad rows up to this many
# elements (n * d): beyond it the pass costs more than its compile.
SMALL_ROWS_ELEMENTS = 2**22


def toolbox_small(x: Any) -> bool:
    """A per-row pass over concrete data of at most `SMALL_ROWS_ELEMENTS` on the host: padded to buckets."""
    from jaxmix.engine.arrays import host, is_traced

    if is_traced(x) or x.shape[0] * x.shape[1] > SMALL_ROWS_ELEMENTS:
        return False
    try:  # rows split over devices keep their layout
        import jax

        if isinstance(x, jax.Array) and len(x.sharding.device_set) > 1:
            return False
    except AttributeError:
        pass
    return host(x) is not None


def pad_rows_for_toolbox(x: Any) -> tuple[Any, int]:
    """`(x padded to its row bucket, n)` for a per-row pass over concrete host-sized data; else `(x, n)`.

    Padding rows repeat the first row; callers cut the outputs back to n.
    """
    from jaxmix.engine.arrays import host

    n = x.shape[0]
    if not toolbox_small(x):
        return x, n
    h: Any = host(x)
    rows = round_rows(n)
    if rows == n:
        return x, n
    return np.concatenate([h, np.broadcast_to(h[:1], (rows - n, h.shape[1]))]), n


def pad_rows(x: Any, weights: Any, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, weights) on the host, padded to `rows` with copies of the first row at weight 0."""
    x = np.asarray(x)
    w = np.asarray(weights, x.dtype)
    n = x.shape[0]
    if rows == n:
        return x, w
    xp = np.concatenate([x, np.broadcast_to(x[:1], (rows - n, x.shape[1]))])
    return xp, np.concatenate([w, np.zeros(rows - n, x.dtype)])


def pad_first(a: Any, size: int, fill: float = 0.0) -> np.ndarray:
    """`a` padded along its first axis to `size` with `fill` (on the host)."""
    a = np.asarray(a)
    if a.shape[0] == size:
        return a
    pad = np.full((size - a.shape[0], *a.shape[1:]), fill, a.dtype)
    return np.concatenate([a, pad])


def take_first(a: Any, size: int) -> Any:
    """The first `size` entries along axis 0, through the host (no compiled slice per shape)."""
    import jax

    if a.shape[0] == size:
        return a
    # device_put, not jnp.asarray: the latter compiles a small program per shape.
    return jax.device_put(np.asarray(a)[:size])


def centroid_inputs(
    p: Plan, x: Any, weights: Any, init_centers: Any, method: str, chunk_size: int | None, progress: bool
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """What a k-means-family program (`kmeans`, `soft_kmeans`) takes for a fit in its bucket.

    Returns `(padded, static)`: `padded = (x, weights, init_centers)` padded to the bucket's rows and
    clusters, followed by the traced counts `(k, max_iter, n_init)`; `static` the bucket's static arguments.
    """
    from jaxmix.engine.chunks import default_chunk_size

    xp, wp = pad_rows(x, weights, p.rows)
    given = None if init_centers is None else pad_first(init_centers, p.k_program)
    chunk = chunk_size or default_chunk_size(p.rows, p.k_program, x.dtype.itemsize, p.n_init_program)
    static = dict(
        n_clusters=p.k_program,
        init=method,
        n_init=p.n_init_program,
        max_iter=p.history,
        chunk_size=min(chunk, p.rows),
        progress=bool(progress),
    )
    counts = (np.int32(p.k), np.int32(p.max_iter), np.int32(p.n_init))
    return (xp, wp, given, *counts), static
