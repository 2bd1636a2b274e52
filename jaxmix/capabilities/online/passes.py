"""What the online fits share: counter-based random numbers (a 32-bit hash of seed, stream and index),
the loop of one pass over an in-memory array, row samples for seeding, and the checks of batches
and of the drivers' arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmix.engine import validation as V

NO_LIMIT = 2**30  # "max_no_improvement=None": never stop on the EWA


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


def _sample_rows(key, x, w, m_true, m: int):
    """`m_true` distinct rows of positive weight drawn uniformly (Gumbel top-m), as `m >= m_true` rows.

    The rows past `m_true` (and any pick without positive weight) get weight
    0: `m` is rounded up so that samples of nearby sizes share one program.
    """
    score = jnp.where(w > 0, _uniform(_seed_of(key), _SAMPLE_SALT, 0, w.shape[0], x.dtype), -jnp.inf)
    top, idx = lax.top_k(score, m)
    keep = (jnp.arange(m) < m_true) & jnp.isfinite(top)
    return x[idx], jnp.where(keep, w[idx], 0.0)


@functools.partial(jax.jit, static_argnames=("chunk_size",))
def _mean_variance(x, w, *, chunk_size):
    from jaxmix.engine.loop import weighted_mean_and_variance

    return weighted_mean_and_variance(x, w, chunk_size)[1]


def _check_batch(batch: Any, d: int | None, dtype: Any, name: str = "batch") -> jax.Array:
    x = V.check_data(batch, name=name)
    if d is not None and x.shape[1] != d:
        raise ValueError(f"{name} has {x.shape[1]} features but the state (first batch) has {d}")
    return x if dtype is None else x.astype(dtype)


def _check_ratio(value: Any, name: str) -> float:
    V.check_scalar(value, name, nonnegative=True)
    return value


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
