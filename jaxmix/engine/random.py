"""Random draws inside jaxmix's programs: a counter-based integer hash of the user's key.

`jax.random`'s default generator (threefry) costs about 0.1 s of lowering
and compiling on XLA:CPU at *every call site* of `split`, `fold_in`,
`uniform` or `gumbel` (each site inlines the twenty rounds of
Threefry-2x32); a k-means program with restarts and k-means++ seeding had
four such sites, a third of its compile. The draws a fit needs (restart
keys, k-means++ candidates, random starts) do not need a cryptographic
generator, so the programs draw from a small hash instead: a stream is two
uint32 words, child streams and draws hash the words with a counter
through three rounds of the `lowbias32` integer finaliser (C. Wellons,
"Prospecting for hash functions", 2018), a few dozen integer operations.

The user's key (a typed `jax.random.key` or a raw uint32 `PRNGKey`) enters
through `words`; a result depends only on the key and on the counters, so
draw `(j, t)` is the same whatever the number of draws around it (a masked
fit equals an exact one), and everything works under `jit`, `vmap` and on
traced keys. `split` mirrors `jax.random.split`: `split(key, n)[i]` is
restart i's stream in every fit (`kmeans`, `gmm`, `soft_kmeans`, `select`
and the batches use it alike).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_M1 = 0x7FEB352D
_M2 = 0x846CA68B
_GOLDEN = 0x9E3779B9
_SALT = (0x2545F491, 0x6C8E9CF5)  # the two words of a child stream


def _mix(h: jax.Array) -> jax.Array:
    """`lowbias32`: a bijective avalanche on uint32."""
    h = h ^ (h >> 16)
    h = h * np.uint32(_M1)
    h = h ^ (h >> 15)
    h = h * np.uint32(_M2)
    return h ^ (h >> 16)


def words(key: Any) -> jax.Array:
    """A stream's two uint32 words: a typed key's data, a raw uint32 key, or words already.

    Keys of more than two words (e.g. "rbg") are folded into two.
    """
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    key = key.astype(jnp.uint32)
    if key.shape[-1] == 2:
        return key
    w0, w1 = key[..., 0], key[..., 1]
    for i in range(2, key.shape[-1]):
        w0, w1 = _mix(w0 ^ key[..., i]), _mix(w1 + key[..., i] + np.uint32(_GOLDEN))
    return jnp.stack([w0, w1], axis=-1)


def _hash(w: jax.Array, counter: Any, salt: int) -> jax.Array:
    """One uint32 per counter (broadcast), from the stream words `w` (..., 2)."""
    c = jnp.asarray(counter).astype(jnp.uint32)
    h = _mix(c * np.uint32(_GOLDEN) + np.uint32(salt))
    h = _mix(h ^ w[..., 0])
    return _mix(h + w[..., 1])


def fold_in(key: Any, i: Any) -> jax.Array:
    """The child stream number `i` of `key` (words (..., 2); `i` broadcasts against key's batch axes)."""
    w = words(key)
    i = jnp.asarray(i)
    return jnp.stack([_hash(w, i, _SALT[0]), _hash(w, i, _SALT[1])], axis=-1)


def split(key: Any, n: int) -> jax.Array:
    """`n` child streams, (n, 2) words: `split(key, n)[i] == fold_in(key, i)` for every n."""
    w = words(key)
    return fold_in(w[None], jnp.arange(n, dtype=jnp.uint32))


def bits(key: Any, shape: tuple[int, ...]) -> jax.Array:
    """uint32 draws: key words (..., 2) give draws of shape `key.shape[:-1] + shape`; the entry at flat
    index c of `shape` depends only on its stream and c."""
    w = words(key)
    size = 1
    for s in shape:
        size *= s
    c = np.arange(size, dtype=np.uint32).reshape(shape)
    w = w.reshape(w.shape[:-1] + (1,) * len(shape) + (2,))
    return _hash(w, c, 0)


def _unit(w: jax.Array, c: Any, dtype: Any) -> jax.Array:
    """Uniform [0, 1) draws at counters `c` of streams `w` (broadcast): a float32 draw is a multiple
    of 2^-24; a float64 draw adds a second hash below that grid, so both precisions choose the same
    row of an inverse-CDF draw unless a boundary falls within 2^-24."""
    coarse = (_hash(w, c, 0) >> 8).astype(jnp.float32) * np.float32(2.0**-24)
    if jnp.dtype(dtype) != jnp.float64:
        return coarse.astype(dtype)
    fine = (_hash(w, c, _SALT[0]) >> 8).astype(jnp.float64) * 2.0**-24
    return coarse.astype(jnp.float64) + fine * 2.0**-24


def uniform_at(key: Any, counters: Any, dtype: Any) -> jax.Array:
    """Uniform draws in [0, 1) at given uint32 `counters` of one stream (one hash per draw; a draw
    depends only on the key and its counter)."""
    return _unit(words(key), jnp.asarray(counters).astype(jnp.uint32), dtype)


def uniform(key: Any, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """Uniform draws of `shape` per stream (counters 0, 1, ... in flat order), ordered alike in
    float32 and float64 (see `_unit`)."""
    w = words(key)
    c = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.uint32).reshape(shape)
    return _unit(w.reshape(w.shape[:-1] + (1,) * len(shape) + (2,)), c, dtype)


def gumbel(key: Any, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """Standard Gumbel draws (-log(-log u)), ordered alike for float32 and float64."""
    u = uniform(key, shape, dtype)
    tiny = jnp.finfo(dtype).tiny
    return -jnp.log(-jnp.log(jnp.maximum(u, tiny)))
