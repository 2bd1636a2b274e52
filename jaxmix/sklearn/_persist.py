"""Model files for the estimators: `jaxmix.save(estimator, path)` / `jaxmix.load(path)`.

An estimator is stored as its constructor parameters (`get_params`) and its
fitted state (the public attributes ending in `_`, plus `_n_features_out`),
in the open format of `jaxmix.tools.files` (no pickle). Numbers are stored as 0-d
arrays, so every value, NaN and infinities included, round-trips bit for
bit; strings, None and booleans go to the JSON header; `feature_names_in_`
is a JSON list of strings. Array-valued parameters (`init`, `means_init`,
...) are arrays. A parameter that cannot be written without pickle, a
callable `init`, raises `TypeError`; a `numpy.random.RandomState` as
`random_state` is stored as None (a generator's state is not part of a
fitted model).

The kinds are "sklearn.KMeans", "sklearn.GaussianMixture" and
"sklearn.SoftKMeans"; `jaxmix.load` imports this package by itself when it
meets them.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from jaxmix.tools import files as _io

_SCALAR = "scalar"  # meta tag: a Python int/float/bool stored as a 0-d array
_LIST = "list"  # a list of numbers stored as a 1-d array
_ARRAY = "array"
_NAMES = "names"  # an array of strings (feature_names_in_), stored as a JSON list


def _encode(name: str, value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The JSON entry for one value; numeric content goes into `arrays` under `name`."""
    if value is None or isinstance(value, str):
        return {"json": value}
    if isinstance(value, bool | np.bool_):
        return {"json": bool(value)}
    if isinstance(value, numbers.Integral | numbers.Real) and not isinstance(value, np.ndarray):
        arrays[name] = np.asarray(value)
        return {"type": _SCALAR, "python": "int" if isinstance(value, numbers.Integral) else "float"}
    if isinstance(value, np.ndarray) and value.dtype.kind in "OUS":
        if not all(isinstance(v, str) for v in value.ravel()):
            raise TypeError(f"cannot save {name!r}: an array of {value.dtype} that is not all strings")
        return {"type": _NAMES, "json": [str(v) for v in value.ravel()]}
    if isinstance(value, list | tuple) and all(isinstance(v, numbers.Real) for v in value):
        arrays[name] = np.asarray(value, np.float64)
        return {"type": _LIST}
    if hasattr(value, "__array__") and not callable(value):
        arrays[name] = np.asarray(value)
        return {"type": _ARRAY}
    raise TypeError(f"cannot save {name!r} of type {type(value).__name__} in a jaxmix model file")


def _decode(name: str, entry: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    kind = entry.get("type")
    if kind is None:
        return entry["json"]
    if kind == _SCALAR:
        a = arrays[name]
        return int(a) if entry["python"] == "int" else float(a)
    if kind == _LIST:
        return [float(v) for v in arrays[name]]
    if kind == _NAMES:
        return np.asarray(entry["json"], dtype=object)
    if kind == _ARRAY:
        return arrays[name]
    raise ValueError(f"unknown entry type {kind!r} for {name!r}")


def _fitted_names(est: Any) -> list[str]:
    names = [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]
    if hasattr(est, "_n_features_out"):
        names.append("_n_features_out")
    return sorted(names)


def _to_state(est: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    arrays: dict[str, np.ndarray] = {}
    params: dict[str, Any] = {}
    for k, v in est.get_params(deep=False).items():
        if callable(v) and not isinstance(v, np.ndarray):
            raise TypeError(
                f"cannot save a {type(est).__name__} whose {k} is a callable ({v!r}): a model file holds no code; "
                f"set {k} to a string or an array"
            )
        if k == "random_state" and isinstance(v, np.random.RandomState | np.random.Generator):
            v = None
        params[k] = _encode("param." + k, v, arrays)
    fitted = {k: _encode("fitted." + k, getattr(est, k), arrays) for k in _fitted_names(est)}
    return {"params": params, "fitted": fitted}, arrays


def _from_state(cls: type, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    params = {k: _decode("param." + k, e, arrays) for k, e in meta["params"].items()}
    unknown = set(params) - set(cls().get_params(deep=False))
    if unknown:
        raise ValueError(f"parameters {sorted(unknown)} are not parameters of {cls.__name__}")
    est = cls(**params)
    for k, e in meta["fitted"].items():
        setattr(est, k, _decode("fitted." + k, e, arrays))
    if hasattr(est, "precisions_cholesky_"):  # a fitted mixture: refuse parameters that would give NaN, as load does
        from jaxmix.families.params import GMMParams

        fitted = (est.weights_, est.means_, est.covariances_, est.precisions_cholesky_)
        _io.check_loaded_params(GMMParams(*fitted, covariance_type=est.covariance_type))
    return est


def register(kind: str, cls: type) -> None:
    """Make `jaxmix.save`/`jaxmix.load` handle estimator class `cls` under `kind`."""
    _io.register(kind, cls, _to_state, lambda meta, arrays: _from_state(cls, meta, arrays))
