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

Reading (`file_format.py`) is bounded and checked before anything is inflated: only regular
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
import json
import os
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from jaxmix.engine.disk import atomic_write
from jaxmix.engine.parameter_checks import positive_definite
from jaxmix.families.names import COVARIANCE_TYPES
from jaxmix.families.params import GMMParams
from jaxmix.families.registry import covariance_model
from jaxmix.models.gmm import GMMResult
from jaxmix.models.kmeans import KMeansResult
from jaxmix.models.soft_kmeans import SoftKMeansResult
from jaxmix.tools.file_format import (
    _NAME,
    _ZIP_DATE,
    FORMAT,
    FORMAT_VERSION,
    HEADER,
    MAX_DEPTH,
    _bad,
    _depth,
    _npy_bytes,
    _read,
    _version,
)
from jaxmix.tools.file_format import RESERVED as RESERVED
from jaxmix.tools.file_format import ModelFileError as ModelFileError
from jaxmix.tools.file_format import read_header as read_header
from jaxmix.tools.file_format import read_raw as read_raw


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
