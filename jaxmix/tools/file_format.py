"""The model file format at the byte level: its constants, how arrays are written (`.npy` members), and
the bounded, checked reader (`read_header`, `read_raw`, `ModelFileError`); `files.py` maps objects to
and from it. See docs/model-format.md and the `files` module docstring.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import struct
import zipfile
import zlib
from typing import IO, Any

import numpy as np

from jaxmix.engine.disk import open_regular

FORMAT = "jaxmix-model"
FORMAT_VERSION = 1
HEADER = "__jaxmix__"
RESERVED = frozenset({"format", "format_version", "jaxmix_version", "kind", "arrays", "metadata"})
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_ZIP_MAGIC = b"PK\x03\x04"
# Bounds checked before anything is inflated: a damaged or hostile file must not make `load`
# read gigabytes. The header is JSON of names and small metadata; a few MiB is already huge.
HEADER_MAX_BYTES = 16 * 2**20
NPY_HEADER_MAX = 2**16  # an .npy member's own header (dtype, shape), beyond its data
MAX_DEPTH = 32  # JSON nesting of the header (its metadata included); Python's parser recurses
# A fixed timestamp: the same model always gives the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _write_array(f: IO[bytes], arr: np.ndarray) -> None:
    np.lib.format.write_array(f, arr, allow_pickle=False)


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    _write_array(buf, arr)
    return buf.getvalue()


def _version() -> str:
    from jaxmix import __version__  # at call time: jaxmix/__init__ imports this module

    return __version__


class ModelFileError(ValueError):
    """A file that `load` cannot read as a jaxmix model; the message names the file."""


def _bad(path: Any, why: str) -> ModelFileError:
    return ModelFileError(f"{os.fspath(path)}: {why}")


def _depth(obj: Any) -> int:
    """How deep dicts and lists nest in `obj` (1 for a flat one), counted without recursion; stops past MAX_DEPTH."""
    deepest, stack = 0, [(obj, 1)]
    while stack and deepest <= MAX_DEPTH:
        o, level = stack.pop()
        if isinstance(o, dict):
            o = list(o.values())
        if isinstance(o, (list, tuple)):
            deepest = max(deepest, level)
            stack.extend((c, level + 1) for c in o)
    return deepest


def _read(path: str | os.PathLike[str], with_arrays: bool) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The checked header and (optionally) the arrays it lists.

    Sizes are checked before anything is inflated: the header member
    against HEADER_MAX_BYTES, each array member's declared size and .npy
    header against the dtype and shape the JSON header gives it, so a
    small hostile file cannot make this read gigabytes.
    """
    with open_regular(path, "model file", ModelFileError) as f:  # FileNotFoundError for a missing file
        magic = f.read(4)
        if not magic:
            raise _bad(path, "the file is empty, not a jaxmix model file")
        if magic != _ZIP_MAGIC:
            raise _bad(path, "not a jaxmix model file (not an .npz archive)")
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as z:
                members = {i.filename: i for i in z.infolist()}
                if HEADER + ".npy" not in members:
                    raise _bad(path, f"not a jaxmix model file (an .npz archive without a {HEADER} member)")
                header = _parse_header(path, _member(path, z, members[HEADER + ".npy"], HEADER, None))
                arrays = {}
                if with_arrays:
                    for name, spec in header["arrays"].items():
                        if name + ".npy" not in members:
                            raise _bad(path, f"truncated or corrupt model file: array {name!r} is missing")
                        arrays[name] = _member(path, z, members[name + ".npy"], name, spec)
        except ModelFileError:
            raise
        except (
            ValueError,
            zipfile.BadZipFile,
            zlib.error,  # a damaged compressed member (found by the corruption fuzz test)
            struct.error,
            EOFError,
            OSError,
            KeyError,
            IndexError,
            RuntimeError,
            NotImplementedError,  # a damaged header naming an unknown compression method
            MemoryError,  # a damaged .npy header claiming an enormous shape
            OverflowError,
        ) as e:
            raise _bad(path, f"truncated or corrupt model file ({type(e).__name__}: {e})") from None
    return header, arrays


def _member(path: Any, z: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, spec: dict[str, Any] | None) -> np.ndarray:
    """One .npy member, of the dtype and shape `spec` gives (None: the header, 1-D uint8 of at most HEADER_MAX_BYTES).

    Nothing is inflated before the member's declared size fits the
    expected one, and no data before its .npy header agrees with `spec`.
    """
    what = "the header" if spec is None else f"array {name!r}"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):  # bzip2/lzma inflate without bound
        raise _bad(path, f"corrupt model file: {what} uses compression method {info.compress_type}")
    shape: tuple[int, ...] = ()
    if spec is None:
        dtype, limit = np.dtype(np.uint8), HEADER_MAX_BYTES
    else:
        dtype, shape = np.dtype(spec["dtype"]), tuple(spec["shape"])  # checked by _parse_header
        limit = math.prod(shape) * dtype.itemsize
    if info.file_size > limit + NPY_HEADER_MAX:
        raise _bad(
            path,
            f"corrupt model file: {what} inflates to {info.file_size} bytes, "
            + ("more than a header may" if spec is None else f"more than its {dtype.str} {list(shape)} take"),
        )
    with z.open(info) as m:
        version = np.lib.format.read_magic(m)
        if version not in ((1, 0), (2, 0)):
            raise _bad(path, f"corrupt model file: {what} is an .npy of version {version}")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        got_shape, fortran, got_dtype = read_header(m, max_header_size=NPY_HEADER_MAX)
        if spec is None:
            if got_dtype != dtype or len(got_shape) != 1 or got_shape[0] > limit:
                raise _bad(path, f"not a jaxmix model file ({HEADER} is not UTF-8 bytes)")
            shape = tuple(got_shape)
        elif got_dtype.str != dtype.str or got_shape != shape:
            raise _bad(
                path,
                f"corrupt model file: array {name!r} is {got_dtype.str} {list(got_shape)}, "
                f"the header says {dtype.str} {list(shape)}",
            )
        flat = np.empty(math.prod(shape), dtype)
        if _read_into(m, flat.view(np.uint8)) != flat.nbytes or m.read(1):  # the last read checks the CRC
            raise _bad(path, f"truncated or corrupt model file: {what} does not hold {flat.nbytes} bytes of data")
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


def _read_into(f: IO[bytes], out: np.ndarray) -> int:
    """Fill the uint8 array `out` from `f` in 16 MiB reads (never a second copy of the whole); bytes read."""
    got = 0
    while got < out.size:
        chunk = f.read(min(out.size - got, 2**24))
        if not chunk:
            break
        out[got : got + len(chunk)] = np.frombuffer(chunk, np.uint8)
        got += len(chunk)
    return got


def _parse_header(path: Any, raw: np.ndarray) -> dict[str, Any]:
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(path, f"corrupt model header ({e})") from None
    except RecursionError:
        header = None  # nested deeper than Python's parser goes: refused below
    if header is None or _depth(header) > MAX_DEPTH:
        raise _bad(path, f"corrupt model header: JSON nested more than {MAX_DEPTH} levels deep")
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _bad(path, f"not a jaxmix model file (header format is not {FORMAT!r})")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _bad(path, f"corrupt model header (format_version {version!r})")
    if version > FORMAT_VERSION:
        raise _bad(
            path,
            f"model format version {version} (written by jaxmix {header.get('jaxmix_version', '?')}) is newer than "
            f"this jaxmix {_version()} reads (up to {FORMAT_VERSION}); upgrade jaxmix",
        )
    arrays = header.get("arrays")
    if not isinstance(arrays, dict) or not all(isinstance(v, dict) for v in arrays.values()):
        raise _bad(path, "corrupt model header (no array list)")
    for name, spec in arrays.items():
        _check_spec(path, name, spec)
    if not isinstance(header.get("kind"), str):
        raise _bad(path, "corrupt model header (no kind)")
    if not isinstance(header.get("metadata", {}), dict):  # save() only writes a dict; callers rely on one
        raise _bad(path, f"corrupt model header: metadata is a {type(header['metadata']).__name__}, not a JSON object")
    return header


def _check_spec(path: Any, name: str, spec: dict[str, Any]) -> None:
    """An array entry of the header: a name save() writes, a bool/integer/float dtype, a shape of sizes >= 0."""
    dtype, shape = spec.get("dtype"), spec.get("shape")
    try:
        dt = np.dtype(dtype) if isinstance(dtype, str) else None
    except TypeError:
        dt = None
    if not _NAME.match(name) or dt is None or dt.kind not in "biuf" or dt.fields is not None or dt.str != dtype:
        raise _bad(
            path, f"corrupt model header: array {name!r} has dtype {dtype!r} (jaxmix saves bool, integer, float)"
        )
    if (
        not isinstance(shape, list)
        or len(shape) > 32
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
    ):
        raise _bad(path, f"corrupt model header: array {name!r} has shape {shape!r}")


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header of a model file (kind, versions, array shapes, metadata), without its arrays.

    Raises:
      FileNotFoundError: no file at `path`.
      ValueError: not a jaxmix model file, corrupt, or of a newer format.
    """
    return _read(path, with_arrays=False)[0]


def read_raw(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and the arrays of a model file, checked, without building the object.

    Works for kinds this jaxmix does not know (e.g. to describe them).
    """
    return _read(path, with_arrays=True)
