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

Reading is bounded and checked before anything is inflated: only regular
files are opened (a FIFO would block); the header member may inflate to at
most HEADER_MAX_BYTES and nest at most MAX_DEPTH levels; each array
member's declared size and .npy header must agree with the dtype (bool,
integer or float) and shape the header gives it; `metadata` is a JSON
object; GMM parameters are checked as `GMMParams.from_covariances` checks
them. Anything else raises `ModelFileError` naming the file.

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

import importlib
import io
import json
import math
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

import jax
import numpy as np

from jaxmix.engine.disk import atomic_write, open_regular
from jaxmix.engine.parameter_checks import positive_definite
from jaxmix.families.names import COVARIANCE_TYPES
from jaxmix.families.params import GMMParams
from jaxmix.families.registry import covariance_model
from jaxmix.models.gmm import GMMResult
from jaxmix.models.kmeans import KMeansResult
from jaxmix.models.soft_kmeans import SoftKMeansResult

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
    with `jaxmix.tools.files.register`. The write is atomic: an existing file at
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
    if _depth(header) > MAX_DEPTH:  # `load` refuses such a header; say so now
        raise ValueError(f"model metadata is nested more than {MAX_DEPTH - 1} levels deep; flatten it")
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
    p = GMMParams(
        arrays["weights"], arrays["means"], arrays["covariances"], arrays["precisions_cholesky"], covariance_type=ctype
    )
    check_loaded_params(p)
    return p


def check_loaded_params(p: Any) -> None:
    """What every fitted GMMParams satisfies, checked in NumPy in the file's own dtype (float64 stays float64).

    A file whose checksums agree can still hold parameters that give NaN
    from `predict_proba`/`score` (a negative precision factor, a negative
    weight): refused at load, as `GMMParams.from_covariances` refuses them.
    """
    w, m, cov, u = (np.asarray(a) for a in (p.weights, p.means, p.covariances, p.precisions_cholesky))
    named = {"weights": w, "means": m, "covariances": cov, "precisions_cholesky": u}
    for name, a in named.items():
        if a.dtype.kind != "f":
            raise ValueError(f"{name} has dtype {a.dtype}, not a float dtype")
    if m.ndim != 2 or w.shape != m.shape[:1]:
        raise ValueError(f"means must be (k, d) and weights (k,), got shapes {m.shape} and {w.shape}")
    expected = covariance_model(p.covariance_type).cov_shape(*m.shape)
    if cov.shape != expected or u.shape != expected:
        raise ValueError(
            f"covariances and precisions_cholesky must have shape {expected} for covariance_type="
            f"{p.covariance_type!r}, got {cov.shape} and {u.shape}"
        )
    for name, a in named.items():
        if not np.isfinite(a).all():
            raise ValueError(f"{name} holds NaN or infinite values")
    total = float(np.sum(w, dtype=np.float64))
    if (w < 0).any() or abs(total - 1.0) > 1e-4:
        raise ValueError(f"weights must be >= 0 and sum to 1 (sum {total:.8g})")
    full = covariance_model(p.covariance_type).matrix
    if not ((np.diagonal(u, axis1=-2, axis2=-1) if full else u) > 0).all():
        raise ValueError("precisions_cholesky must have a positive diagonal (positive definite precisions)")
    if not (positive_definite(cov) if full else bool((cov > 0).all())):
        raise ValueError("covariances must be positive definite")


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
