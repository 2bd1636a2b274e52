"""Data sources read in batches: arrays, memmaps, `.npy` shards, HDF5, zarr, callables.

A source is iterated once per pass of a streaming fit and yields `Batch`es
of rows: `(x, weights)` with `x` a NumPy float array (b, d) and `weights`
None (all ones) or a (b,) array. Every pass must yield the same rows in the
same order (the streaming fits are exact EM: one pass = one E-step, and a
resumed fit skips the batches it has already consumed).

Nothing here holds the whole data set: row-sliceable sources (NumPy arrays,
`np.memmap`, `.npy` files opened with `mmap_mode="r"`, h5py Datasets, zarr
Arrays) are read by row slices of `batch_rows` rows and never written to.
Each batch is checked (rank, width, dtype, finiteness) as it is read and
converted to the float dtype jaxmix's in-memory fits use: float64 stays
float64 only when JAX's x64 mode is on, integers become the default float,
float16 becomes float32. h5py and zarr are optional and never imported:
their arrays are recognised by `shape`, `ndim`, `dtype` and slicing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxmix.engine.arrays import cast_host, float_dtype
from jaxmix.engine.disk import check_regular_file, open_regular
from jaxmix.engine.validation import check_magnitude

# Default batch: rows that fill about this many bytes in the fit's dtype.
BATCH_BYTES = 64 * 2**20


class Batch(NamedTuple):
    """One batch of rows."""

    x: np.ndarray  # (b, d) float
    weights: np.ndarray | None  # (b,) float >= 0, or None for all ones


def target_dtype(dtype: Any, name: str) -> np.dtype:
    """The float dtype a fit uses for data of `dtype` (as `jaxmix.engine.arrays.as_float_array`)."""
    dt = np.dtype(dtype)
    if dt == np.bool_:
        raise TypeError(f"{name} has dtype bool; pass numbers (e.g. x.astype(float))")
    if np.issubdtype(dt, np.complexfloating):
        raise TypeError(f"{name} has complex dtype {dt}; jaxmix clusters real data")
    if np.issubdtype(dt, np.integer):
        return np.dtype(float_dtype())
    if not jnp.issubdtype(dt, jnp.floating):  # jnp's test knows bfloat16 (np.issubdtype does not)
        raise TypeError(f"{name} has dtype {dt}; expected a real numeric array")
    if dt.itemsize < 4:
        return np.dtype(np.float32)
    if dt.itemsize > 4:  # float64, longdouble: float64 only with x64 on
        return np.dtype(float_dtype())
    return dt


def default_batch_rows(n_features: int, dtype: Any) -> int:
    """Rows in about 64 MiB of data (at least 1)."""
    return max(1, BATCH_BYTES // max(1, n_features * np.dtype(dtype).itemsize))


def _check_batch_rows(batch_rows: Any) -> int | None:
    if batch_rows is None:
        return None
    if isinstance(batch_rows, (bool, np.bool_)) or not isinstance(batch_rows, (int, np.integer)):
        raise TypeError(f"batch_rows must be an int, got {type(batch_rows).__name__} {batch_rows!r}")
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    return int(batch_rows)


def _checked_rows(x: Any, d: int, dtype: np.dtype, where: str) -> np.ndarray:
    """A (b, d) batch of `dtype`, finite; a new array unless `x` already is one (never written to)."""
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{where} must be 2-D (rows, n_features), got shape {a.shape}")
    if a.shape[1] != d:
        raise ValueError(f"{where} has {a.shape[1]} features, expected {d} (as the source's first batch)")
    target_dtype(a.dtype, where)  # rejects bool, complex, strings, objects
    a = cast_host(a, dtype, where)  # names values that overflow float32
    finite = np.isfinite(a)
    if not finite.all():
        raise ValueError(f"{where} contains {a.size - int(finite.sum())} NaN or infinite value(s)")
    if a.shape[0]:
        check_magnitude(a, where)
    return a


def _checked_weights(w: Any, b: int, dtype: np.dtype, where: str) -> np.ndarray:
    a = np.asarray(w)
    if a.shape != (b,):
        raise ValueError(f"{where}: weights must have shape ({b},) to match the batch, got {a.shape}")
    target_dtype(a.dtype, f"{where}: weights")
    a = a.astype(dtype, copy=False)
    if not np.isfinite(a).all():
        raise ValueError(f"{where}: weights contain NaN or infinite values")
    if (a < 0).any():
        raise ValueError(f"{where}: weights must be >= 0")
    return a


class Source:
    """Rows read in batches, the same rows each pass; see `as_source`.

    Attributes:
      n_features: columns d.
      n_rows: rows n, or None while unknown (a callable source before its
        first complete pass).
      n_batches: batches per pass, or None while unknown.
      dtype: the float dtype of the batches.
      name: a short description used in error messages.
    """

    n_features: int
    n_rows: int | None
    n_batches: int | None
    dtype: np.dtype
    name: str
    batch_rows: int | None  # rows per batch where the source decides it, else None

    def batches(self, start: int = 0) -> Iterator[Batch]:
        """The batches of one pass, from batch index `start` (earlier ones are skipped)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Batch]:
        return self.batches(0)

    def __repr__(self) -> str:
        return f"<jaxmix stream source {self.name}: n_rows={self.n_rows}, n_features={self.n_features}>"


class ArraySource(Source):
    """A row-sliceable 2-D array (NumPy, memmap, h5py Dataset, zarr Array) read by row slices."""

    def __init__(self, data: Any, weights: Any, batch_rows: int | None, name: str):
        shape = tuple(data.shape)
        if len(shape) != 2:
            hint = " (use x.reshape(-1, 1) for a single feature)" if len(shape) == 1 else ""
            raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {shape}{hint}")
        n, d = int(shape[0]), int(shape[1])
        if n < 1:
            raise ValueError(f"{name} is empty: it has 0 rows (shape {shape})")
        if d < 1:
            raise ValueError(f"{name} has 0 features (shape {shape})")
        self.data = data
        self.dtype = target_dtype(data.dtype, name)
        self.n_features, self.n_rows, self.name = d, n, name
        rows = batch_rows or default_batch_rows(d, self.dtype)
        self.batch_rows = min(rows, n)
        self.n_batches = -(-n // self.batch_rows)
        self.weights = None
        if weights is not None:
            if tuple(np.shape(weights)) != (n,):
                raise ValueError(f"weights must have shape ({n},) to match {name}, got {tuple(np.shape(weights))}")
            self.weights = weights

    def batches(self, start: int = 0) -> Iterator[Batch]:
        n, step = self.n_rows, self.batch_rows
        assert n is not None and step is not None
        for i in range(start, self.n_batches or 0):
            lo, hi = i * step, min(n, (i + 1) * step)
            where = f"{self.name}, batch {i} (rows {lo}:{hi})"
            x = _checked_rows(self.data[lo:hi], self.n_features, self.dtype, where)
            w = None if self.weights is None else _checked_weights(self.weights[lo:hi], hi - lo, self.dtype, where)
            yield Batch(x, w)


class ShardSource(Source):
    """`.npy` files read one after the other, each memory-mapped and sliced into batches."""

    def __init__(self, paths: Sequence[str], batch_rows: int | None, name: str):
        if not paths:
            raise ValueError(f"{name}: no .npy files")
        self.paths = list(paths)
        self.name = name
        shapes, dtypes = [], []
        for p in self.paths:
            shape, dtype = npy_header(p)
            if len(shape) != 2:
                raise ValueError(f"{p}: a shard must be 2-D (rows, n_features), got shape {shape}")
            target_dtype(dtype, p)
            shapes.append(shape)
            dtypes.append(dtype)
        d = shapes[0][1]
        for p, s in zip(self.paths, shapes, strict=True):
            if s[1] != d:
                raise ValueError(f"{p} has {s[1]} features but {self.paths[0]} has {d}: shards must agree")
        self.rows = [int(s[0]) for s in shapes]
        n = sum(self.rows)
        if n < 1 or d < 1:
            raise ValueError(f"{name} is empty: {n} rows, {d} features")
        self.dtype = target_dtype(np.result_type(*dtypes), name)
        self.n_features, self.n_rows = int(d), n
        self.batch_rows = min(batch_rows or default_batch_rows(d, self.dtype), max(self.rows))
        self.per_shard = [-(-r // self.batch_rows) for r in self.rows]
        self.n_batches = sum(self.per_shard)

    def batches(self, start: int = 0) -> Iterator[Batch]:
        i = 0
        for p, rows, nb in zip(self.paths, self.rows, self.per_shard, strict=True):
            if i + nb <= start:
                i += nb
                continue
            a = np.load(check_regular_file(p, ".npy shard"), mmap_mode="r", allow_pickle=False)
            step = self.batch_rows
            assert step is not None
            for j in range(nb):
                if i >= start:
                    lo, hi = j * step, min(rows, (j + 1) * step)
                    where = f"{p}, batch {i} (shard rows {lo}:{hi})"
                    yield Batch(_checked_rows(a[lo:hi], self.n_features, self.dtype, where), None)
                i += 1
            del a


def npy_header(path: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of a `.npy` file from its header, checked against the file's size.

    What `np.load(path, mmap_mode="r")` would refuse with a misleading
    message is refused here naming the file and the cause: not a regular
    file (a FIFO would block), not a `.npy` file, an object array (needs
    pickle), a file shorter than its header says (truncated).
    """
    with open_regular(path, ".npy shard") as f:
        size = os.fstat(f.fileno()).st_size
        if f.read(6) != b"\x93NUMPY":
            raise ValueError(f"{path}: not a .npy file (it does not start with the .npy magic string)")
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read:
                raise ValueError(f".npy format version {version} (jaxmix reads 1.0 and 2.0)")
            shape, _, dtype = read[version](f)
        except ValueError as e:
            raise ValueError(f"{path}: truncated or corrupt .npy header ({e})") from None
        if dtype.hasobject:
            raise TypeError(f"{path}: holds Python objects (dtype {dtype}), which cannot be read without pickle")
        need = f.tell() + math.prod(shape) * dtype.itemsize
    if size < need:
        raise ValueError(
            f"{path}: truncated: its header describes {dtype} {tuple(shape)} ({need} bytes) but the file holds "
            f"{size} bytes (an interrupted write or copy?)"
        )
    return tuple(shape), dtype


class CallableSource(Source):
    """A zero-argument callable returning an iterable of batches; called once per pass.

    Items are arrays (b, d) or pairs `(x, weights)`. The first batch fixes d
    and the dtype; the first complete pass fixes the number of batches and
    rows, and every later pass is checked against them.
    """

    def __init__(self, fn: Callable[[], Iterable[Any]], name: str):
        self.fn, self.name = fn, name
        self.batch_rows = None
        self.n_rows = self.n_batches = None
        it = iter(fn())
        try:
            first = next(it, None)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
        if first is None:
            raise ValueError(f"{name} yielded no batches: the source is empty")
        x = np.asarray(first[0] if isinstance(first, tuple) else first)
        if x.ndim != 2:
            raise ValueError(f"{name}, batch 0 must be 2-D (rows, n_features), got shape {x.shape}")
        if x.shape[1] < 1:
            raise ValueError(f"{name}, batch 0 has 0 features")
        self.n_features = int(x.shape[1])
        self.dtype = target_dtype(x.dtype, f"{name}, batch 0")

    def batches(self, start: int = 0) -> Iterator[Batch]:
        n_batches = n_rows = 0
        for i, item in enumerate(self.fn()):
            if isinstance(item, tuple):
                if len(item) != 2:
                    raise ValueError(f"{self.name}, batch {i}: a tuple batch must be (x, weights)")
                x, w = item
            else:
                x, w = item, None
            rows = int(np.shape(x)[0]) if np.ndim(x) >= 1 else 0
            n_batches, n_rows = n_batches + 1, n_rows + rows
            if i < start:
                continue
            where = f"{self.name}, batch {i}"
            xa = _checked_rows(x, self.n_features, self.dtype, where)
            wa = None if w is None else _checked_weights(w, xa.shape[0], self.dtype, where)
            yield Batch(xa, wa)
        if n_rows == 0:
            raise ValueError(f"{self.name} yielded no rows: the source is empty")
        if self.n_batches is None:
            self.n_batches, self.n_rows = n_batches, n_rows
        elif (n_batches, n_rows) != (self.n_batches, self.n_rows):
            raise ValueError(
                f"{self.name} yielded {n_batches} batches / {n_rows} rows in this pass but "
                f"{self.n_batches} / {self.n_rows} before: it must yield the same data every pass"
            )


def _is_row_sliceable(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("shape", "ndim", "dtype", "__getitem__"))


def _npy_paths(obj: Any) -> list[str] | None:
    """The shard paths named by a directory, a file, or a list of paths; None if `obj` is none of those."""
    if isinstance(obj, (str, os.PathLike)):
        p = os.fspath(obj)
        if os.path.isdir(p):
            files = sorted(f for f in os.listdir(p) if f.endswith(".npy"))
            if not files:
                raise ValueError(f"{p}: the directory holds no .npy files")
            return [os.path.join(p, f) for f in files]
        if not os.path.exists(p):
            raise FileNotFoundError(f"{p}: no such file or directory")
        return [p]
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(p, (str, os.PathLike)) for p in obj):
        return [os.fspath(p) for p in obj]
    return None


def as_source(obj: Any, *, batch_rows: int | None = None, weights: Any = None) -> Source:
    """Wrap data in a `Source` that streaming fits read in batches, once per pass.

    Accepts:
      - a NumPy array or `np.memmap` (n, d): row slices of `batch_rows`
        rows; the array is never copied whole and never written to;
      - a directory (its `*.npy` files in sorted name order), one `.npy`
        path, or a list of paths: each file is opened with
        `np.load(mmap_mode="r", allow_pickle=False)`; batches never span
        two files; the files must agree on n_features;
      - an h5py Dataset or a zarr Array (any object with `shape`, `ndim`,
        `dtype` and row slicing): read by row slices;
      - a zero-argument callable returning an iterable of batches, each an
        array (b, d) or a pair `(x, weights)`; it is called once per pass
        and must yield the same batches every pass;
      - a `Source` (returned as it is).

    Args:
      obj: the data, as above.
      batch_rows: rows per batch for row-sliceable sources (ignored by
        callables, which choose their own batches). Default: about 64 MiB of
        rows in the fit's dtype.
      weights: (n,) non-negative sample weights for an array-like source
        (any row-sliceable 1-D array, e.g. a memmap). Default: all ones.

    Returns:
      A `Source`: iterate it for `Batch(x, weights)` pairs; `n_features`,
      `n_rows` and `n_batches` (None while unknown) and `dtype` describe it.

    Raises:
      TypeError: an object that is none of the above, or non-numeric data.
      ValueError: wrong rank, empty data, mismatched widths, bad batch_rows.
        NaN/inf are reported when the batch holding them is read, naming the
        source and the batch index.

    Example:
      >>> import numpy as np, jaxmix.stream as js
      >>> src = js.as_source(np.arange(10.0).reshape(5, 2), batch_rows=2)
      >>> src.n_rows, src.n_batches, [b.x.shape[0] for b in src]
      (5, 3, [2, 2, 1])
    """
    batch_rows = _check_batch_rows(batch_rows)
    if isinstance(obj, Source):
        if weights is not None:
            raise ValueError("weights go to as_source together with the data, not with an existing source")
        if batch_rows is not None and obj.batch_rows is not None and batch_rows != obj.batch_rows:
            raise ValueError(f"the source already reads {obj.batch_rows} rows per batch; batch_rows={batch_rows}")
        return obj
    if isinstance(obj, np.ndarray) or (_is_row_sliceable(obj) and not isinstance(obj, (str, bytes))):
        kind = type(obj).__name__
        name = "memmap" if isinstance(obj, np.memmap) else ("array" if isinstance(obj, np.ndarray) else kind)
        if isinstance(obj, np.ndarray) and obj.dtype.fields is not None:
            raise TypeError(f"{name} has a structured dtype {obj.dtype}; expected a real numeric array")
        return ArraySource(obj, weights, batch_rows, name)
    paths = _npy_paths(obj)
    if paths is not None:
        if weights is not None:
            raise ValueError("weights are not supported for .npy shards (append a weight column and split it off)")
        name = os.fspath(obj) if isinstance(obj, (str, os.PathLike)) else f"{len(paths)} .npy files"
        return ShardSource(paths, batch_rows, name)
    if callable(obj):
        if weights is not None:
            raise ValueError("a callable source yields its weights itself, as (x, weights) pairs")
        return CallableSource(obj, getattr(obj, "__name__", "callable") + "()")
    raise TypeError(
        f"cannot read batches from a {type(obj).__name__}: give a NumPy array or memmap, a directory or list "
        "of .npy files, an h5py Dataset, a zarr Array, or a callable returning an iterable of batches"
    )
