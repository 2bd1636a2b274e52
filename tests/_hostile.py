"""Hostile inputs for the hardening tests (tests/test_hardening.py) and the fuzz campaign (bench/fuzz.py).

`CASES` maps a name to a zero-argument function that builds a fresh input:
shapes at the edges (n = 1, d = 1, empty, wrong rank), duplicated points,
constant columns, extreme magnitudes, every dtype family, NaN and inf,
non-contiguous, read-only memory-mapped, lists, pandas frames.
"""

from __future__ import annotations

import atexit
import faulthandler
import os
import shutil
import tempfile
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

HANG_SECONDS = 300  # one call (compilation included) taking longer than this counts as a hang

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


_FOLDER: list[str] = []


def _memmap() -> np.ndarray:
    if not _FOLDER:  # one file per process, removed at exit
        _FOLDER.append(tempfile.mkdtemp(prefix="jaxmix-hostile-"))
        atexit.register(shutil.rmtree, _FOLDER[0], True)
        np.save(os.path.join(_FOLDER[0], "x.npy"), _base().astype(np.float32))
    return np.load(os.path.join(_FOLDER[0], "x.npy"), mmap_mode="r")


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


def _read_only() -> np.ndarray:
    x = _base()
    x.setflags(write=False)
    return x


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
    "read-only": _read_only,
    "read-only memmap": _memmap,
    "DataFrame": _frame,
    "DataFrame with text": lambda: _frame(mixed=True),
    "None": lambda: None,
    "a string": lambda: "abc",
}


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


def classify(fn: Callable[[Any], Any], x: Any) -> tuple[str, str]:
    """Run fn(x) and say how it ended: ("finite" | "error" | "FAILURE", detail).

    "finite": every float in the result is finite and `x` is unchanged; "error": a
    ValueError/TypeError in jaxmix's words (or FileNotFoundError for a path that
    does not exist); anything else, an unchanged-input violation, or a call running
    past HANG_SECONDS (the process then exits with a traceback) is a failure.
    """
    before = np.array(x, copy=True) if isinstance(x, np.ndarray) else None
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)  # a hang ends the campaign with a traceback
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(x)
    except (ValueError, TypeError) as e:
        msg = str(e)
        if not msg or any(m in msg for m in INTERNAL_MARKERS):
            return "FAILURE", f"unclear {type(e).__name__}: {msg[:600]}"
        status, detail = "error", msg
    except Exception as e:
        if isinstance(e, FileNotFoundError) and isinstance(x, str):
            status, detail = "error", str(e)  # a path that does not exist (streaming sources accept paths)
        else:
            return "FAILURE", "".join(traceback.format_exception(e))[-1500:]
    else:
        if not leaves_finite(out):
            return "FAILURE", "NaN or inf in the result"
        status, detail = "finite", ""
    finally:
        faulthandler.cancel_dump_traceback_later()
    if before is not None:
        same = (
            np.array_equal(before, x, equal_nan=True)
            if before.dtype.kind in "fiub"
            else np.array_equal(before.astype(object), np.asarray(x).astype(object))
        )
        if not same:
            return "FAILURE", "the input was modified"
    return status, detail
