"""Model files: `save(obj, path)` and `load(path)`, in an open format without pickle.

A model file is a NumPy `.npz` archive (a zip of `.npy` members, readable by
`numpy.load(path, allow_pickle=False)` in any language with an npy reader):

- one member per array, named by the object's state (`centers`,
  `params.means`, ...), with its dtype and shape as saved;
- a member `__jaxmix__`: a uint8 array holding UTF-8 JSON,
  `{"format": "jaxmix-model", "format_version": 1, "jaxmix_version": ...,
  "kind": ..., "arrays": {name: {"dtype", "shape"}}, "metadata": {...},
  ...the kind's own JSON fields}`.

Files are written atomically (a temporary file in the same directory,
flushed and fsynced, then `os.replace`d onto the target), so a crash
mid-save never destroys an existing file. See docs/model-format.md.

`load` returns arrays as NumPy arrays, bit for bit with their saved dtype,
whatever JAX's x64 setting: a float64 model stays float64 even where JAX
would silently make it float32. Every jaxmix function accepts them.

Registering a class (the estimators do this):

    register(kind, cls, to_state, from_state)

- `kind`: a unique name stored in the file, e.g. "KMeansResult". A kind
  "pkg.Name" (e.g. "sklearn.KMeans") makes `load` import `jaxmix.pkg`
  first when the kind is not registered yet, so such files load without an
  explicit import.
- `to_state(obj) -> (meta, arrays)`: `meta` a dict of JSON values (str,
  int, float, bool, None, lists, dicts; no NaN), `arrays` a dict of array
  names to NumPy/JAX arrays of bool, integer or float dtype. Names use
  letters, digits, `_`, `.` and `-`.
- `from_state(meta, arrays) -> obj`: the inverse; `arrays` are NumPy
  arrays. A missing key (KeyError) is reported as a corrupt file.

To store one registered object inside another (an estimator holding a
fitted result), use `dump_state(obj, prefix)` in `to_state` and
`restore_state(meta_entry, arrays, prefix)` in `from_state`.

Example:
  >>> import jax, jaxmix, tempfile, os
  >>> r = jaxmix.kmeans(jax.random.key(0), jaxmix.datasets.load_faithful(), 2)
  >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
  >>> jaxmix.save(r, path)
  >>> r2 = jaxmix.load(path)
  >>> type(r2).__name__, r2.centers.dtype, bool((r2.centers == r.centers).all())
  ('KMeansResult', dtype('float32'), True)
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import jax
import numpy as np

from jaxmix._covariance import COVARIANCE_TYPES
from jaxmix._gmm import GMMResult
from jaxmix._gmm_params import GMMParams
from jaxmix._kmeans import KMeansResult
from jaxmix._soft_kmeans import SoftKMeansResult

FORMAT = "jaxmix-model"
FORMAT_VERSION = 1
HEADER = "__jaxmix__"
RESERVED = frozenset({"format", "format_version", "jaxmix_version", "kind", "arrays", "metadata"})
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_ZIP_MAGIC = b"PK\x03\x04"
# A fixed timestamp: the same model always gives the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class _Entry:
    cls: type
    to_state: Callable[[Any], tuple[dict[str, Any], dict[str, Any]]]
    from_state: Callable[[dict[str, Any], dict[str, np.ndarray]], Any]


_REGISTRY: dict[str, _Entry] = {}


def register(
    kind: str,
    cls: type,
    to_state: Callable[[Any], tuple[dict[str, Any], dict[str, Any]]],
    from_state: Callable[[dict[str, Any], dict[str, np.ndarray]], Any],
) -> None:
    """Teach `save` and `load` a class (see the module docstring).

    Registering a kind again replaces its entry only for the same class (by
    module and name, so a reloaded module may register again).

    Raises:
      ValueError: `kind` is empty or already taken by another class.
    """
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind must be a non-empty string, got {kind!r}")
    old = _REGISTRY.get(kind)
    if old is not None and (old.cls.__module__, old.cls.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"model kind {kind!r} is already registered for {old.cls.__qualname__}")
    _REGISTRY[kind] = _Entry(cls, to_state, from_state)


def _kind_of(obj: Any) -> str:
    for c in type(obj).__mro__:
        for kind, entry in _REGISTRY.items():
            if entry.cls is c:
                return kind
    known = ", ".join(sorted(e.cls.__name__ for e in _REGISTRY.values()))
    raise TypeError(f"cannot save a {type(obj).__name__}: jaxmix model files hold {known}")


def _as_saveable(name: str, a: Any) -> np.ndarray:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"array name {name!r} must use letters, digits, '_', '.' and '-'")
    if isinstance(a, jax.core.Tracer):
        raise TypeError(f"cannot save array {name!r}: it is traced (call save outside jit/vmap)")
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf" or arr.dtype.fields is not None:
        raise TypeError(f"cannot save array {name!r} of dtype {arr.dtype}: only bool, integer and float arrays")
    return arr


def dump_state(obj: Any, prefix: str = "") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """`(meta, arrays)` of a registered object; `meta["kind"]` names it, array names get `prefix`."""
    kind = _kind_of(obj)
    meta, arrays = _REGISTRY[kind].to_state(obj)
    return {"kind": kind, **meta}, {prefix + k: _as_saveable(prefix + k, v) for k, v in arrays.items()}


def restore_state(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], prefix: str = "") -> Any:
    """Inverse of `dump_state`: the object from its meta (with "kind") and the arrays under `prefix`."""
    kind = meta["kind"]
    entry = _lookup(kind)
    if entry is None:
        raise ValueError(f"unknown model kind {kind!r}")
    own = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
    return entry.from_state({k: v for k, v in meta.items() if k != "kind"}, own)


def _lookup(kind: Any) -> _Entry | None:
    if not isinstance(kind, str):
        return None
    if kind not in _REGISTRY and re.fullmatch(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*\.[A-Za-z_]\w*", kind):
        # "sklearn.KMeans" lives in jaxmix.sklearn, which registers it on import.
        module = "jaxmix." + kind.rsplit(".", 1)[0]
        try:
            importlib.import_module(module)
        except ImportError as e:
            _import_errors[kind] = f"importing {module} failed: {e}"
    return _REGISTRY.get(kind)


_import_errors: dict[str, str] = {}  # why a kind's module did not load, for the error message


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open a temporary file next to `path` for writing; on success it replaces `path`.

    The data are flushed and fsynced before `os.replace`, so `path` holds
    either its old content or the complete new one, never a mix; on any
    error the temporary file is removed and `path` is untouched.
    """
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(target) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the usual mode.
        os.chmod(tmp, _new_file_mode())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable (POSIX; not possible everywhere).
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _new_file_mode() -> int:
    # The process umask, read without changing it (os.umask would race with other threads).
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    return 0o644


def _write_array(f: IO[bytes], arr: np.ndarray) -> None:
    np.lib.format.write_array(f, arr, allow_pickle=False)


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    _write_array(buf, arr)
    return buf.getvalue()


def save(obj: Any, path: str | os.PathLike[str], *, metadata: Mapping[str, Any] | None = None) -> None:
    """Write a fitted model to `path` (an .npz model file; the name is used as given).

    Supports `KMeansResult` (from `kmeans` and `kmeans_batch`),
    `SoftKMeansResult`, `GMMResult`, `GMMParams`, and every class registered
    with `jaxmix._io.register`. The write is atomic: an existing file at
    `path` is replaced only once the new one is complete on disk.

    Args:
      obj: the object to save (concrete arrays, not inside `jit`).
      path: destination file.
      metadata: optional JSON-able dict stored with the model (the command
        line keeps its column names and standardisation here); read it back
        with `read_header(path)["metadata"]`.

    Raises:
      TypeError: `obj` is of a type jaxmix cannot save, or holds arrays of
        an unsupported dtype.
      ValueError: `metadata` (or the state) is not JSON-serialisable.

    Example:
      >>> import jax.numpy as jnp, jaxmix, tempfile, os
      >>> p = jaxmix.GMMParams.from_covariances(jnp.ones(1), jnp.zeros((1, 2)), jnp.eye(2)[None])
      >>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
      >>> jaxmix.save(p, path, metadata={"note": "unit Gaussian"})
      >>> jaxmix.load(path).covariance_type
      'full'
    """
    meta, arrays = dump_state(obj)
    clash = RESERVED.intersection(meta) - {"kind"}
    if clash:
        raise ValueError(f"model state uses reserved header keys {sorted(clash)}")
    header: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "jaxmix_version": _version(),
        **meta,
        "arrays": {k: {"dtype": v.dtype.str, "shape": list(v.shape)} for k, v in arrays.items()},
    }
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
        header["metadata"] = dict(metadata)
    try:
        text = json.dumps(header, allow_nan=False, sort_keys=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"model metadata must be JSON (str, numbers, bool, None, lists, dicts; no NaN): {e}") from None
    members = {HEADER: np.frombuffer(text.encode("utf-8"), np.uint8), **arrays}
    with atomic_write(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
        for name, arr in members.items():
            z.writestr(zipfile.ZipInfo(name + ".npy", date_time=_ZIP_DATE), _npy_bytes(arr), zipfile.ZIP_DEFLATED)


def _version() -> str:
    from jaxmix import __version__  # at call time: jaxmix/__init__ imports this module

    return __version__


class ModelFileError(ValueError):
    """A file that `load` cannot read as a jaxmix model; the message names the file."""


def _bad(path: Any, why: str) -> ModelFileError:
    return ModelFileError(f"{os.fspath(path)}: {why}")


def _read(path: str | os.PathLike[str], with_arrays: bool) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The checked header and (optionally) the arrays it lists."""
    with open(path, "rb") as f:  # FileNotFoundError for a missing file
        magic = f.read(4)
        if not magic:
            raise _bad(path, "the file is empty, not a jaxmix model file")
        if magic != _ZIP_MAGIC:
            raise _bad(path, "not a jaxmix model file (not an .npz archive)")
        f.seek(0)
        try:
            with np.load(f, allow_pickle=False) as z:
                if HEADER not in z.files:
                    raise _bad(path, f"not a jaxmix model file (an .npz archive without a {HEADER} member)")
                header = _parse_header(path, z[HEADER])
                arrays = {}
                if with_arrays:
                    for name, spec in header["arrays"].items():
                        if name not in z.files:
                            raise _bad(path, f"truncated or corrupt model file: array {name!r} is missing")
                        arrays[name] = _checked(path, name, z[name], spec)
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


def _parse_header(path: Any, raw: np.ndarray) -> dict[str, Any]:
    if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.ndim != 1:
        raise _bad(path, f"not a jaxmix model file ({HEADER} is not UTF-8 bytes)")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(path, f"corrupt model header ({e})") from None
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
    if not isinstance(header.get("kind"), str):
        raise _bad(path, "corrupt model header (no kind)")
    return header


def _checked(path: Any, name: str, arr: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    if not isinstance(arr, np.ndarray):  # numpy hands back raw bytes for a member that is not .npy
        raise _bad(path, f"truncated or corrupt model file: array {name!r} is not an .npy member")
    if arr.dtype.str != spec.get("dtype") or list(arr.shape) != spec.get("shape"):
        raise _bad(
            path,
            f"corrupt model file: array {name!r} is {arr.dtype.str} {list(arr.shape)}, "
            f"the header says {spec.get('dtype')} {spec.get('shape')}",
        )
    return arr


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


def load_with_header(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """`(load(path), read_header(path))` from one read of the file."""
    header, arrays = _read(path, with_arrays=True)
    kind = header["kind"]
    if _lookup(kind) is None:
        known = ", ".join(sorted(_REGISTRY))
        why = f"; {_import_errors[kind]}" if kind in _import_errors else ""
        raise _bad(path, f"unknown model kind {kind!r} (this jaxmix {_version()} reads {known}{why})")
    meta = {k: v for k, v in header.items() if k not in RESERVED or k == "kind"}
    try:
        obj = restore_state(meta, arrays)
    except KeyError as e:
        raise _bad(path, f"corrupt {kind} model file: {e} is missing") from None
    except (TypeError, ValueError) as e:
        raise _bad(path, f"corrupt {kind} model file: {e}") from None
    return obj, header


def load(path: str | os.PathLike[str]) -> Any:
    """Read a model file written by `save`.

    Arrays come back as NumPy arrays with exactly the saved bits and dtype
    (float64 stays float64 even with JAX's x64 off); pass them to any jaxmix
    function. No pickle is involved: the file is read with
    `numpy.load(..., allow_pickle=False)`.

    Raises:
      FileNotFoundError: no file at `path`.
      ValueError: naming `path`: not a jaxmix model file (a plain .npz, a
        CSV, random bytes), a truncated or corrupt file, a format version
        newer than this jaxmix reads, or an unknown kind.

    Example:
      >>> import jax, jaxmix, tempfile, os
      >>> g = jaxmix.gmm(jax.random.key(0), jaxmix.datasets.load_faithful(), 2)
      >>> path = os.path.join(tempfile.mkdtemp(), "gmm.npz")
      >>> jaxmix.save(g, path)
      >>> g2 = jaxmix.load(path)
      >>> g2.params.covariance_type, g2.params.means.shape, bool(g2.log_likelihood == g.log_likelihood)
      ('full', (2, 2), True)
    """
    return load_with_header(path)[0]


# --- the functional results ---------------------------------------------------


def _register_namedtuple(cls: Any) -> None:
    def to_state(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return {}, obj._asdict()

    def from_state(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
        del meta
        return cls(**{f: arrays[f] for f in cls._fields})

    register(cls.__name__, cls, to_state, from_state)


def _params_to_state(p: GMMParams) -> tuple[dict[str, Any], dict[str, Any]]:
    arrays = {"weights": p.weights, "means": p.means, "covariances": p.covariances}
    return {"covariance_type": p.covariance_type}, {**arrays, "precisions_cholesky": p.precisions_cholesky}


# The loaded fields are NumPy arrays where the annotations say jax.Array:
# both are accepted everywhere (see the module docstring), hence `Any`.
def _params_from_state(meta: dict[str, Any], arrays: dict[str, Any]) -> GMMParams:
    ctype = meta["covariance_type"]
    if ctype not in COVARIANCE_TYPES:
        raise ValueError(f"covariance_type {ctype!r} is not one of {COVARIANCE_TYPES}")
    return GMMParams(
        arrays["weights"], arrays["means"], arrays["covariances"], arrays["precisions_cholesky"], covariance_type=ctype
    )


def _gmm_result_to_state(r: GMMResult) -> tuple[dict[str, Any], dict[str, Any]]:
    meta, arrays = dump_state(r.params, "params.")
    rest = {f: getattr(r, f) for f in GMMResult._fields if f != "params"}
    return {"params": meta}, {**arrays, **rest}


def _gmm_result_from_state(meta: dict[str, Any], arrays: dict[str, Any]) -> GMMResult:
    params = restore_state(meta["params"], arrays, "params.")
    return GMMResult(params, **{f: arrays[f] for f in GMMResult._fields if f != "params"})


_register_namedtuple(KMeansResult)
_register_namedtuple(SoftKMeansResult)
register("GMMParams", GMMParams, _params_to_state, _params_from_state)
register("GMMResult", GMMResult, _gmm_result_to_state, _gmm_result_from_state)
