"""Checks at the public boundary, on the host, before anything is traced.

Inside a user's `jit`/`vmap` the arrays are tracers: shapes and dtypes are
still checked, values (NaN, negative weights) cannot be and are not.

Value checks run in NumPy on a host view of the data (free for NumPy input
and for JAX arrays on the CPU): an eager `jnp` operation compiles a small
XLA program for every new shape, and a dozen of them cost more than a small
fit. Arrays that live on an accelerator are checked there (`host` gives
None for them), so that large device data never travels to the host.
The array helpers are in `arrays.py`, the memory checks in `memory_checks.py`.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.engine.arrays import _xp, as_float_array, float_dtype, is_traced
from jaxmix.engine.memory_checks import check_restarts


def check_finite(a: Any, name: str) -> None:
    if is_traced(a):
        return
    xp, v = _xp(a)
    if not bool(xp.all(xp.isfinite(v))):
        n_bad = int(xp.sum(~xp.isfinite(v)))
        raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s)")


def check_magnitude(
    x: jax.Array | np.ndarray, name: str, reference: Any = None, *, rows: int | None = None, where: str | None = None
) -> None:
    """Refuse data whose squared distances would overflow or underflow its float dtype.

    Every fit works with squared distances (and sums of them over rows and
    features) about a shift near the data, so what matters is the spread:
    the largest range of one feature (over `x` and the optional `reference`
    points, e.g. the centres that new data is compared with). float32's
    limits are reached by a spread of about 1e17 (overflow) or 1e-17
    (underflow: squared distances of 1e-34 and below lose their digits).
    `rows` counts the rows summed over when `x` is only their range (the
    stream fits pass the per-feature minimum and maximum of all batches);
    `where` replaces the name in the message.
    """
    if is_traced(x) or (reference is not None and is_traced(reference)):
        return
    xp, x = _xp(x)
    lo, hi = xp.min(x, axis=0), xp.max(x, axis=0)
    if reference is not None:
        r = xp.asarray(reference, x.dtype).reshape(-1, x.shape[1])
        lo, hi = xp.minimum(lo, xp.min(r, axis=0)), xp.maximum(hi, xp.max(r, axis=0))
    with np.errstate(over="ignore"):
        span = float(xp.max(hi - lo))
    info = jnp.finfo(x.dtype)
    n, d = x.shape
    n = n if rows is None else rows
    too_big = float(np.sqrt(float(info.max) / (16.0 * max(n, 1) * d)))
    too_small = float(np.sqrt(float(info.tiny))) * 1e2
    if where is None:
        where = f"{name}" if reference is None else f"{name} and the model"
    if not np.isfinite(span) or span > too_big:
        raise ValueError(
            f"{where} span {span:.3g} in one feature: squared distances would overflow {x.dtype} "
            f"(largest {float(info.max):.3g}); divide the data by a common scale (clusters do not change) "
            "or use float64 (jax.enable_x64)"
        )
    if 0 < span < too_small:
        raise ValueError(
            f"{where} span only {span:.3g} in every feature: squared distances would underflow {x.dtype} "
            f"(smallest normal {float(info.tiny):.3g}); multiply the data by a common scale (clusters do not "
            "change) or use float64 (jax.enable_x64)"
        )


def check_beta(
    beta: Any,
    x: Any = None,
    *,
    span: float | None = None,
    rows: int | None = None,
    n_features: int = 1,
    dtype: Any = None,
) -> Any:
    """A finite beta > 0 whose products with the data's squared distances stay finite.

    Soft k-means computes `beta ||x - m||^2` for every row and cluster and
    sums them over rows; a beta of 1e38 overflows float32 there and the fit
    ended in NaN. Such a beta is hard k-means already (at beta * eps * span^2
    >> 100 every responsibility is 0 or 1 to the last digit), so it is
    refused with that advice rather than clamped. `span` (largest range of
    one feature), `rows`, `n_features` and `dtype` replace `x` for the
    stream fits.
    """
    check_scalar(beta, "beta", positive=True)
    if is_traced(beta) or (x is not None and is_traced(x)):
        return beta
    if x is not None:
        xp, v = _xp(x)
        span, rows = float(xp.max(xp.max(v, axis=0) - xp.min(v, axis=0))), v.shape[0]
        dtype, d = v.dtype, v.shape[1]
    else:
        dtype, d = dtype or float_dtype(), n_features
    info = np.finfo(np.dtype(dtype))
    bound = float(info.max) / (16.0 * max(rows or 1, 1) * d * max(float(span or 0.0) ** 2, float(info.tiny)))
    if float(np.asarray(beta)) > bound:
        raise ValueError(
            f"beta={float(np.asarray(beta)):.3g} is too large for this data: beta times its squared distances "
            f"(spread {span:.3g}) would overflow {np.dtype(dtype)}; use beta <= {bound:.3g}, or jaxmix.kmeans: "
            "so large a beta already gives hard assignments"
        )
    return beta


def check_data(x: Any, name: str = "x", *, magnitude: bool = True) -> jax.Array:
    """A finite (n_samples, n_features) float array with n_samples, n_features >= 1, of a workable spread.

    `magnitude=False` leaves the spread to the caller (predict paths check x together with the model).
    """
    x = as_float_array(x, name, ndim=2)
    n, d = x.shape
    if n < 1:
        raise ValueError(f"{name} is empty: it has 0 samples (shape {tuple(x.shape)})")
    if d < 1:
        raise ValueError(f"{name} has 0 features (shape {tuple(x.shape)})")
    check_finite(x, name)
    if magnitude:
        check_magnitude(x, name)
    return x


def check_weights(weights: Any, n_samples: int, dtype: Any, *, rescale: bool = False) -> Any:
    """Per-sample weights (n,), finite, >= 0, not all zero. None means all ones.

    `rescale=True` (the in-memory fits, which see all the weights at once)
    brings extreme weights into range by a power of two (`weight_scale`).
    """
    if weights is None:
        return np.ones((n_samples,), dtype)
    w = as_float_array(weights, "weights", ndim=1).astype(dtype)
    if w.shape[0] != n_samples:
        raise ValueError(f"weights has {w.shape[0]} entries but x has {n_samples} samples")
    if not is_traced(w):
        check_finite(w, "weights")
        xp, v = _xp(w)
        if bool(xp.any(v < 0)):
            raise ValueError(f"weights must be >= 0; found {int(xp.sum(v < 0))} negative value(s)")
        if not bool(xp.any(v > 0)):
            raise ValueError("weights are all zero: at least one sample needs a positive weight")
        with np.errstate(over="ignore"):
            largest, total = float(xp.max(v)), float(xp.sum(v))
        if not rescale:  # weights seen batch by batch: one batch cannot be rescaled alone
            if not np.isfinite(total):
                raise ValueError(
                    f"weights sum to more than {np.dtype(w.dtype)} holds (largest {largest:.3g}); divide them all "
                    "by a common factor (the clusters do not change)"
                )
            return w
        scale = weight_scale(largest, total, w.dtype)
        if scale != 1.0:
            half = float(2.0 ** int(np.log2(scale) / 2))  # two exact steps: 2**-126 alone is subnormal in float32
            w = w * xp.asarray(half, w.dtype) * xp.asarray(scale / half, w.dtype)
    return w


def weight_scale(largest: float, total: float, dtype: Any, stacklevel: int = 5) -> float:
    """A power of two that brings extreme sample weights into the dtype's safe range (1.0 for ordinary ones).

    Weights are scale-free for the fitted model: centres, labels, mixture
    parameters and the GMM's mean log-likelihood do not depend on a common
    factor. Their sums do: weights of 1e36 each overflow float32 sums
    (NaN centres), weights below ~1e-19 lose their products to underflow.
    A power of two is applied exactly, so a rescaled fit is the unscaled
    one; only the weighted totals (k-means inertia, soft k-means free
    energy) are those of the rescaled weights, which the RuntimeWarning says.
    """
    info = np.finfo(np.dtype(dtype))
    if total <= float(np.sqrt(info.max)) and largest >= float(np.sqrt(info.tiny)):
        return 1.0
    exponent = -int(np.ceil(np.log2(largest)))  # the largest weight becomes (0.5, 1]
    warnings.warn(
        f"sample weights up to {largest:.3g} (sum {total:.3g}) are outside {np.dtype(dtype)}'s safe range for sums; "
        f"they are multiplied by 2**{exponent} for the fit: the clusters do not change, the inertia or "
        "free energy is that of the rescaled weights",
        RuntimeWarning,
        stacklevel=stacklevel,
    )
    return float(2.0**exponent)


def refuse_reverse_mode(what: str, advice: str, *args: Any) -> None:
    """A clear TypeError when `jax.grad` (reverse mode) reaches a fit's `while_loop` through `args`.

    JAX's own error names `lax.while_loop`; this one names the differentiable way instead.
    Forward mode (`jax.jvp`) through the loop works and is left alone.
    """
    for leaf in jax.tree_util.tree_leaves(args):
        if isinstance(leaf, jax.core.Tracer) and type(leaf).__name__ == "LinearizeTracer":
            raise TypeError(
                f"{what} cannot be differentiated in reverse mode (jax.grad): its EM loop is a while_loop. {advice}"
            )


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"{name} is a static argument (it sets array shapes and loop bounds), so it cannot be traced: "
            f"pass a Python int (inside jax.jit, list it in static_argnames; under jax.vmap, close over it)"
        )
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_n_clusters(n_clusters: Any, n_samples: int, weights: jax.Array, name: str = "n_clusters") -> int:
    k = check_positive_int(n_clusters, name)
    if k > n_samples:
        raise ValueError(f"{name}={k} must be <= n_samples={n_samples}")
    if not is_traced(weights):
        xp, v = _xp(weights)
        n_pos = int(xp.sum(v > 0))
        if k > n_pos:
            raise ValueError(f"{name}={k} must be <= the number of samples with positive weight ({n_pos})")
    return k


def check_scalar(value: Any, name: str, *, positive: bool = False, nonnegative: bool = False) -> Any:
    """A finite real number (Python or 0-d array; traced values pass unchecked)."""
    if is_traced(value):
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number, got bool")
    try:
        v = float(np.asarray(value))
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}") from None
    if np.ndim(value) != 0:
        raise ValueError(f"{name} must be a scalar, got shape {np.shape(value)}")
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if positive and v <= 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    if nonnegative and v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return value


def check_chunk_size(chunk_size: Any) -> int | None:
    return None if chunk_size is None else check_positive_int(chunk_size, "chunk_size")


def check_centers(centers: Any, n_clusters: int | None, n_features: int, dtype: Any, name: str = "init") -> jax.Array:
    """A finite (n_clusters, n_features) array of centres."""
    c = as_float_array(centers, name, ndim=2).astype(dtype)
    if n_clusters is not None and c.shape[0] != n_clusters:
        raise ValueError(
            f"{name} has {c.shape[0]} rows but n_clusters={n_clusters}; expected shape ({n_clusters}, {n_features})"
        )
    if c.shape[1] != n_features:
        raise ValueError(
            f"{name} has {c.shape[1]} features but x has {n_features}; expected shape ({c.shape[0]}, {n_features})"
        )
    if c.shape[0] < 1:
        raise ValueError(f"{name} has no rows")
    check_finite(c, name)
    return c


def key_from_seed(seed: int) -> jax.Array:
    """`jax.random.key(seed)` for a seed in [0, 2**32), built on the host (no compiled seeding op).

    The default threefry key of a 32-bit seed is the pair (0, seed); other
    PRNG implementations go through `jax.random.key`.
    """
    if getattr(jax.config, "jax_default_prng_impl", None) == "threefry2x32" and 0 <= int(seed) < 2**32:
        data: Any = np.array([0, int(seed)], np.uint32)
        return jax.random.wrap_key_data(data)
    return jax.random.key(int(seed))


def check_key(key: Any) -> jax.Array:
    """A JAX PRNG key: typed (`jax.random.key`) or raw uint32 (`jax.random.PRNGKey`)."""
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        raise TypeError("key must be a JAX PRNG key, e.g. jax.random.key(0), not an int")
    try:
        dt = key.dtype
    except AttributeError:
        raise TypeError(f"key must be a JAX PRNG key, e.g. jax.random.key(0); got {type(key).__name__}") from None
    if jnp.issubdtype(dt, jax.dtypes.prng_key):
        if key.ndim != 0:
            raise ValueError(f"key must be a single key, got a batch of shape {key.shape}; use jax.vmap over keys")
        return key
    if dt != jnp.uint32 or key.shape != (2,):
        raise TypeError(
            f"key must be a JAX PRNG key, e.g. jax.random.key(0); got an array of dtype {dt} and shape {key.shape}"
        )
    return key


def check_init(
    init: Any, methods: tuple[str, ...], n_clusters: int, n_features: int, dtype: Any, n_init: int
) -> tuple[jax.Array | None, str, int]:
    """Resolve `init` to (explicit centres or None, method name, n_init).

    An explicit array makes restarts identical, so n_init drops to 1 with a
    RuntimeWarning (scikit-learn does the same).
    """
    if isinstance(init, str):
        if init not in methods:
            raise ValueError(f"init must be one of {methods} or a ({n_clusters}, {n_features}) array, got {init!r}")
        return None, init, n_init
    centers = check_centers(init, n_clusters, n_features, dtype)
    if n_init != 1:
        warnings.warn(
            f"init is an explicit array of centres, so n_init={n_init} would repeat one fit; using n_init=1",
            RuntimeWarning,
            stacklevel=3,
        )
    return centers, "array", 1


class FitArgs(NamedTuple):
    """The arguments every fit shares, checked."""

    x: jax.Array  # (n, d) float
    weights: jax.Array  # (n,)
    n_clusters: int
    n_init: int
    max_iter: int
    chunk_size: int | None  # None: the caller picks its default


def check_fit_args(
    key: Any,
    x: Any,
    n_clusters: Any,
    *,
    weights: Any,
    n_init: Any,
    max_iter: Any,
    tol: Any,
    chunk_size: Any,
    name: str = "n_clusters",
) -> FitArgs:
    """Check what kmeans, soft_kmeans and gmm have in common."""
    check_key(key)
    x = check_data(x)
    w = check_weights(weights, x.shape[0], x.dtype, rescale=True)
    k = check_n_clusters(n_clusters, x.shape[0], w, name=name)
    check_scalar(tol, "tol", nonnegative=True)
    n_init = check_positive_int(n_init, "n_init")
    check_restarts(n_init, x.shape[0], k, x.shape[1], x.dtype.itemsize)
    return FitArgs(
        x,
        w,
        k,
        n_init,
        check_positive_int(max_iter, "max_iter"),
        check_chunk_size(chunk_size),
    )


def check_batch_data(xs: Any, weights: Any) -> tuple[Any, Any]:
    """(B, n, d) data and (B, n) weights (default ones) for the batch fits, checked."""
    xs = as_float_array(xs, "xs", ndim=3)
    b, n, d = xs.shape
    if b < 1 or n < 1 or d < 1:
        raise ValueError(f"xs must have at least one problem, sample and feature; got shape {tuple(xs.shape)}")
    check_finite(xs, "xs")
    check_magnitude(xs.reshape(b * n, d), "xs")
    if weights is None:
        return xs, np.ones((b, n), xs.dtype)
    w = as_float_array(weights, "weights", ndim=2).astype(xs.dtype)
    if w.shape != (b, n):
        raise ValueError(f"weights must have shape {(b, n)} to match xs, got {tuple(w.shape)}")
    check_finite(w, "weights")
    if not is_traced(w):
        xp, v = _xp(w)
        if bool(xp.any(v < 0)):
            raise ValueError("weights must be >= 0")
    return xs, w
