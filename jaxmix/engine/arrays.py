"""Arrays at the public boundary: host views without copies or compiles (`host`), tracer tests
(`is_traced`), scalars and float arrays of the working dtype, pandas and other array-likes in.

An eager `jnp` operation compiles a small XLA program for every new shape, so these helpers
work in NumPy on a host view wherever the data allow it (see `validation`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _tracing() -> bool:
    """True inside a `jit`/`grad`/`make_jaxpr` trace, where even concrete arrays give traced results."""
    try:
        from jax._src import core as _core

        return not _core.trace_state_clean()
    except (ImportError, AttributeError):  # a future JAX without it: probe
        return isinstance(jnp.zeros(()) + 0, jax.core.Tracer)


def is_traced(a: Any) -> bool:
    """True if `a`'s values cannot be inspected: a tracer, or any array while a trace is running."""
    return isinstance(a, jax.core.Tracer) or _tracing()


def host(a: Any) -> np.ndarray | None:
    """A NumPy view of a concrete array for value checks, or None for data on an accelerator.

    Free for NumPy arrays and for JAX arrays on the CPU (no copy); a traced
    value has no view.
    """
    if isinstance(a, np.ndarray):
        return a
    if isinstance(a, jax.core.Tracer):
        return None
    if isinstance(a, jax.Array):
        if a.is_fully_addressable and all(dev.platform == "cpu" for dev in a.devices()):
            return np.asarray(a)
        return None  # on an accelerator, or rows of other processes: checked where they are
    return np.asarray(a)


def _xp(a: Any) -> tuple[Any, Any]:
    """(module, array) to compute value checks with: NumPy on a host view, else jnp on the device."""
    h = host(a)
    return (np, h) if h is not None else (jnp, a)


def scalar(value: Any, dtype: Any) -> Any:
    """A 0-d array of `dtype` for a traced-in number: NumPy on the host (no compiled op), jnp when traced."""
    return jnp.asarray(value, dtype) if is_traced(value) else np.asarray(value, dtype)


def float_dtype() -> Any:
    """The default float dtype: float64 when `jax_enable_x64` is on, else float32."""
    return jnp.result_type(float)


def as_float_array(a: Any, name: str, ndim: int | None = None) -> jax.Array:
    """Convert to a JAX float array, rejecting types that have no meaning here.

    Bool, complex and object dtypes are rejected; integers become the
    default float dtype; float16/bfloat16 become float32.
    """
    if is_traced(a):
        arr = a
    else:
        if isinstance(a, (str, bytes)):
            raise TypeError(f"{name} must be an array of numbers, got {type(a).__name__}")
        try:
            arr = _from_pandas(a, name)
            if arr is None:
                arr = np.asarray(a) if not isinstance(a, jax.Array) else a
        except (TypeError, ValueError) as e:
            if "column" in str(e):  # _from_pandas names the column
                raise
            raise TypeError(f"{name} could not be converted to an array: {e}") from None
        except Exception as e:  # ragged lists and the like
            raise TypeError(f"{name} could not be converted to an array: {e}") from None
    dt = np.dtype(arr.dtype)
    if dt == np.bool_:
        raise TypeError(f"{name} has dtype bool; pass numbers (e.g. x.astype(float))")
    if jnp.issubdtype(dt, jnp.complexfloating):
        raise TypeError(f"{name} has complex dtype {dt}; jaxmix clusters real data")
    if jnp.issubdtype(dt, jnp.integer):
        target = float_dtype()
    elif not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"{name} has dtype {dt}; expected a real numeric array")
    elif dt.itemsize < 4:
        target = np.dtype(np.float32)
    else:
        target = np.dtype(float_dtype()) if dt == np.float64 else dt  # float32 unless x64 is on
    if isinstance(arr, np.ndarray):
        out: Any = cast_host(arr, target, name)
    else:
        out = arr if arr.dtype == target else jnp.asarray(arr, dtype=target)
    if ndim is not None and out.ndim != ndim:
        single = ndim == 2 and out.ndim == 1 and name == "x"
        shape_hint = " (use x.reshape(-1, 1) for a single feature)" if single else ""
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(out.shape)}{shape_hint}")
    return out


def cast_host(arr: np.ndarray, target: Any, name: str) -> np.ndarray:
    """`arr` as `target` (no copy when it already is); values that overflow the cast are named.

    float64 data beyond 3.4e38 becomes inf in float32 (x64 off), which was
    reported as "NaN or infinite" although the input is finite.
    """
    target = np.dtype(target)
    if arr.dtype == target:
        return arr
    with np.errstate(over="ignore"):
        out = arr.astype(target)
    if target.itemsize < arr.dtype.itemsize and not np.all(np.isfinite(out)):
        over = np.isfinite(arr) & ~np.isfinite(out)
        if over.any():
            raise ValueError(
                f"{name} has {int(over.sum())} value(s) (largest magnitude {float(np.max(np.abs(arr[over]))):.3g}) "
                f"beyond {target}'s range ({float(np.finfo(target).max):.3g}): they overflow the cast from "
                f"{arr.dtype} to {target}; enable float64 (jax.config.update('jax_enable_x64', True)) or divide "
                "the data by a common scale"
            )
    return out


def _from_pandas(a: Any, name: str) -> np.ndarray | None:
    """A pandas DataFrame/Series with nullable numeric columns (`Float32`, `Int64`) as NumPy; None otherwise.

    `np.asarray` makes such columns dtype object (even without missing
    values). They are converted when no value is missing; a missing value
    or a non-numeric extension column is refused naming the column.
    """
    if not type(a).__module__.startswith("pandas") or not hasattr(a, "dtypes"):
        return None
    frame = hasattr(a, "columns")
    dtypes = list(a.dtypes) if frame else [a.dtype]
    if all(isinstance(dt, np.dtype) for dt in dtypes):
        return None  # plain NumPy columns: np.asarray as before
    columns = list(a.columns) if frame else [a.name]
    numpy_dtypes = []
    for column, dt in zip(columns, dtypes, strict=True):
        ndt = getattr(dt, "numpy_dtype", dt)
        if not isinstance(ndt, np.dtype) or ndt.kind not in "fiub":
            raise TypeError(f"{name} column {column!r} has dtype {dt}; expected numbers (e.g. .astype(float))")
        numpy_dtypes.append(ndt)
    na = a.isna()
    missing = [c for c in columns if bool((na[c] if frame else na).any())]
    if missing:
        raise ValueError(
            f"{name} column(s) {missing} have missing values; drop or fill them first "
            "(e.g. x.dropna() or x.fillna(...), then x.to_numpy(float))"
        )
    return np.asarray(a.to_numpy(dtype=np.result_type(*numpy_dtypes)))
