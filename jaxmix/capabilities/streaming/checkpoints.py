"""Streaming checkpoints: their format constants, fingerprints of the key, the options and the source
(sampled batch digests), and the errors that name a checkpoint that does not match.
"""

from __future__ import annotations

import hashlib
import struct
import zipfile
import zlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.capabilities.sources import Batch, Source

CHECKPOINT_FORMAT = "jaxmix-stream-checkpoint"


CHECKPOINT_VERSION = 2  # 2: bound to the source by sampled batch digests, with a manifest of members


SAMPLED_BATCHES = 8  # batches of a sliceable source digested to bind a checkpoint to its data


MIN_PAD_ROWS = 8


INIT_SAMPLE_MIN = 10_000


def _key_data(key: Any) -> list[int]:
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return [int(v) for v in np.asarray(data).ravel()]


def _digest(a: Any) -> str:
    a = np.ascontiguousarray(np.asarray(a))
    h = hashlib.sha256(str((a.dtype.str, a.shape)).encode())
    h.update(a.reshape(-1).view(np.uint8))  # the buffer itself: no copy of a batch
    return h.hexdigest()[:16]


def _batch_at(source: Source, i: int) -> Batch:
    it = source.batches(i)
    try:
        return next(it)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def _batch_digest(batch: Batch) -> str:
    return _digest(batch.x) + ("" if batch.weights is None else _digest(batch.weights))


def _source_digest(source: Source) -> dict[str, Any] | None:
    """What binds a checkpoint to a source of known size, beyond its first batch (None for a callable).

    Rows and batches counted, and digests of SAMPLED_BATCHES batches spread
    evenly from the first to the last, read by index: another data set of
    the same shape and the same first batch differs here (unless it differs
    only between the sampled batches). A callable source's size is only
    known after a pass: the first pass records a digest of all its batches
    instead (`_Run.chain`).
    """
    n = source.n_batches
    if n is None:
        return None
    picks = sorted({round(j * (n - 1) / (SAMPLED_BATCHES - 1)) for j in range(SAMPLED_BATCHES)})
    batches = {str(i): _batch_digest(_batch_at(source, i)) for i in picks}
    return {"n_rows": source.n_rows, "n_batches": n, "batches": batches}


def _chain(previous: str, batch: Batch) -> str:
    """A running digest of a callable source's batches, kept in the checkpoint as a string."""
    return hashlib.sha256((previous + _batch_digest(batch)).encode()).hexdigest()[:16]


def _data_difference(saved: Any, now: dict[str, Any]) -> str:
    """Which part of the source differs from the checkpoint's, in words."""
    if not isinstance(saved, dict) or not isinstance(now, dict):
        return "another source"
    for key in ("n_rows", "n_batches"):
        if saved.get(key) != now[key]:
            return f"{key} {saved.get(key)!r} in the checkpoint, {now[key]!r} now"
    if isinstance(now["batches"], dict) and isinstance(saved.get("batches"), dict):
        diff = [i for i in now["batches"] if saved["batches"].get(i) != now["batches"][i]]
        return f"the content of batch{'es' if len(diff) > 1 else ''} {', '.join(diff)} differs"
    return "the content of the batches differs"


# What damage to a checkpoint (truncation, flipped bits) raises while it is read.
_DAMAGED = (
    ValueError,
    OSError,
    KeyError,
    EOFError,
    IndexError,
    TypeError,
    AttributeError,
    RuntimeError,
    NotImplementedError,
    MemoryError,
    OverflowError,
    RecursionError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
)


def _unreadable(path: str, why: str) -> ValueError:
    return ValueError(
        f"{path}: not a readable jaxmix stream checkpoint (damaged or truncated: {why}); remove it to start afresh"
    )
