"""Hostile inputs for the hardening tests (tests/test_hardening.py) and the fuzz campaign (bench/fuzz.py).

`CASES` maps a name to a zero-argument function that builds a fresh input:
shapes at the edges (n = 1, d = 1, empty, wrong rank), duplicated points,
constant columns, extreme magnitudes, every dtype family, NaN and inf,
non-contiguous, read-only memory-mapped, lists, pandas frames.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

# Words that only appear in messages from JAX/XLA internals, never in jaxmix's own.
INTERNAL_MARKERS = (
    "XlaRuntimeError",
    "INTERNAL:",
    "jaxlib",
    "Traced<",
    "ShapedArray",
    "TracerArrayConversion",
    "ConcretizationTypeError",
    "UnexpectedTracerError",
    "mhlo",
    "stablehlo",
    "RESOURCE_EXHAUSTED",
    "dot_general",
    "Incompatible shapes for broadcasting",
)


def _base(n: int = 6, d: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def _memmap() -> np.ndarray:
    folder = tempfile.mkdtemp(prefix="jaxmix-hostile-")
    path = os.path.join(folder, "x.npy")
    np.save(path, _base().astype(np.float32))
    return np.load(path, mmap_mode="r")


def _with(value: float) -> np.ndarray:
    x = _base()
    x[3, 1] = value
    return x


def _frame(mixed: bool = False) -> Any:
    import pandas as pd

    x = _base()
    if mixed:
        return pd.DataFrame({"a": x[:, 0], "b": ["u"] * len(x)})
    return pd.DataFrame(x, columns=["a", "b"])


CASES: dict[str, Callable[[], Any]] = {
    "normal 6x2": lambda: _base().astype(np.float32),
    "n=1": lambda: _base(1),
    "d=1": lambda: _base(6, 1),
    "n=2": lambda: _base(2),
    "all duplicates": lambda: np.repeat(_base(1), 6, axis=0),
    "two distinct rows": lambda: np.repeat(_base(2), 3, axis=0),
    "constant column": lambda: np.c_[_base()[:, 0], np.full(6, 3.0)],
    "1e30 beside 1e-30": lambda: np.c_[_base()[:, 0] * 1e30, _base()[:, 1] * 1e-30],
    "scale 1e20": lambda: _base() * 1e20,
    "scale 1e-25": lambda: _base() * 1e-25,
    "offset 1e7": lambda: _base() + 1e7,
    "float16": lambda: _base().astype(np.float16),
    "int64": lambda: (_base() * 10).astype(np.int64),
    "uint8": lambda: np.abs(_base() * 10).astype(np.uint8),
    "bool": lambda: _base() > 0,
    "object numbers": lambda: _base().astype(object),
    "object strings": lambda: np.array([["a", "b"]] * 6, dtype=object),
    "complex": lambda: _base().astype(np.complex64),
    "strings": lambda: np.array([["1", "2"]] * 6),
    "nan": lambda: _with(np.nan),
    "inf": lambda: _with(np.inf),
    "-inf": lambda: _with(-np.inf),
    "empty 0x2": lambda: np.zeros((0, 2)),
    "empty 6x0": lambda: np.zeros((6, 0)),
    "1-D": lambda: _base()[:, 0],
    "3-D": lambda: _base()[None],
    "scalar": lambda: np.float32(1.0),
    "list": lambda: _base().tolist(),
    "ragged list": lambda: [[1.0, 2.0], [3.0]],
    "fortran order": lambda: np.asfortranarray(_base()),
    "non-contiguous": lambda: _base(12, 4)[::2, ::2],
    "negative strides": lambda: _base()[::-1, ::-1],
    "read-only": lambda: _read_only(),
    "read-only memmap": _memmap,
    "DataFrame": _frame,
    "DataFrame with text": lambda: _frame(mixed=True),
    "None": lambda: None,
    "a string": lambda: "abc",
}


def _read_only() -> np.ndarray:
    x = _base()
    x.setflags(write=False)
    return x


def leaves_finite(obj: Any) -> bool:
    """True if every float array or number inside `obj` (pytrees, dicts of fitted attributes) is finite."""
    import jax

    for leaf in jax.tree.leaves(obj, is_leaf=lambda a: a is None):
        if leaf is None or isinstance(leaf, (str, bytes)):
            continue
        try:
            a = np.asarray(leaf)
        except Exception:
            continue
        if a.dtype.kind in "fc" and a.size and not np.all(np.isfinite(a)):
            return False
    return True
