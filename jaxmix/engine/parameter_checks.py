"""Checks of mixture parameters given at the public boundary: mixing weights, means, precisions,
covariances (positive definite), a `GMMPrior` and whole `GMMParams`, in NumPy on the host where the
values are concrete, so that bad parameters raise a ValueError instead of giving NaN.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.engine.arrays import _xp, as_float_array, is_traced
from jaxmix.engine.validation import check_finite, check_magnitude, check_scalar
from jaxmix.families.registry import covariance_model


def check_mixture_weights(w: Any, k: int, dtype: Any, name: str = "weights_init") -> jax.Array:
    """(k,) finite, >= 0, summing to 1 (within 1e-6 relative, as scikit-learn)."""
    w = as_float_array(w, name, ndim=1).astype(dtype)
    if w.shape[0] != k:
        raise ValueError(f"{name} has {w.shape[0]} entries but n_components={k}")
    if not is_traced(w):
        check_finite(w, name)
        xp, v = _xp(w)
        if bool(xp.any(v < 0)):
            raise ValueError(f"{name} must be >= 0")
        total = float(xp.sum(v))
        if abs(total - 1.0) > max(1e-6, 10 * float(jnp.finfo(dtype).eps)):
            raise ValueError(f"{name} must sum to 1, got sum {total:.8g}")
    return w


def check_precisions(
    p: Any, covariance_type: str, k: int, d: int, dtype: Any, name: str = "precisions_init"
) -> jax.Array:
    """Validate precisions in scikit-learn's shape for the type; return the covariances."""
    expected = covariance_model(covariance_type).cov_shape(k, d)
    p = as_float_array(p, name, ndim=len(expected)).astype(dtype)
    if tuple(p.shape) != expected:
        raise ValueError(
            f"{name} for covariance_type={covariance_type!r} must have shape {expected}, got {tuple(p.shape)}"
        )
    check_finite(p, name)
    check_spd(p, covariance_type, name)
    xp, v = _xp(p)
    return xp.linalg.inv(v) if covariance_model(covariance_type).matrix else 1.0 / v


def check_spd(a: jax.Array, covariance_type: str, name: str) -> None:
    """Covariances or precisions in scikit-learn's layout (any leading axes): symmetric positive definite."""
    if is_traced(a):
        return
    xp, a = _xp(a)
    if covariance_model(covariance_type).matrix:
        if not bool(xp.allclose(a, xp.swapaxes(a, -1, -2), rtol=1e-5, atol=1e-8)):
            raise ValueError(f"{name} must be symmetric")
        if not positive_definite(a):
            raise ValueError(f"{name} must be positive definite")
    elif bool(xp.any(a <= 0)):
        raise ValueError(f"{name} must be positive (positive definite: every variance > 0)")


def positive_definite(a: Any) -> bool:
    """Every (..., d, d) matrix in `a` has a finite Cholesky factor (computed in the data's dtype)."""
    xp, v = _xp(a)
    if xp is np:
        try:
            return bool(np.all(np.isfinite(np.linalg.cholesky(v))))
        except np.linalg.LinAlgError:
            return False
    return bool(jnp.all(jnp.isfinite(jnp.linalg.cholesky(v))))


def check_prior(prior: Any, covariance_type: str, d: int, dtype: Any, x: Any = None) -> Any:
    """A GMMPrior whose given fields have valid values and shapes.

    With the data `x`, a prior mean so far from it that the M-step's
    `(xbar - mean)(xbar - mean)^T` would overflow is refused (it gave NaN).
    """
    from jaxmix.families.params import GMMPrior

    if not isinstance(prior, GMMPrior):
        raise TypeError(f"prior must be None, True or a jaxmix.GMMPrior, got {type(prior).__name__}")
    fields: dict[str, Any] = {}
    for name in ("weight_concentration", "shrinkage", "dof"):
        v = getattr(prior, name)
        if v is not None:
            check_scalar(v, f"prior.{name}", nonnegative=True)
            fields[name] = np.asarray(v, dtype) if not is_traced(v) else jnp.asarray(v, dtype)
    if (
        prior.weight_concentration is not None
        and not is_traced(prior.weight_concentration)
        and float(prior.weight_concentration) < 1
    ):
        raise ValueError("prior.weight_concentration must be >= 1 (a MAP estimate needs alpha >= 1)")
    if prior.dof is not None and not is_traced(prior.dof) and float(prior.dof) <= d - 1:
        raise ValueError(f"prior.dof must be > n_features - 1 = {d - 1}, got {float(prior.dof)}")
    if prior.mean is not None:
        m = as_float_array(prior.mean, "prior.mean", ndim=1).astype(dtype)
        if m.shape[0] != d:
            raise ValueError(f"prior.mean has {m.shape[0]} entries but x has {d} features")
        check_finite(m, "prior.mean")
        if x is not None:
            try:
                check_magnitude(x, "x", m)
            except ValueError:
                raise ValueError(
                    "prior.mean is too far from the data: squared distances between them would overflow "
                    f"{np.dtype(dtype)}; give a prior mean near the data (or leave it None for the data mean)"
                ) from None
        fields["mean"] = m
    if prior.scale is not None:
        s: Any
        if covariance_model(covariance_type).matrix:
            s = as_float_array(prior.scale, "prior.scale", ndim=2).astype(dtype)
            if s.shape != (d, d):
                raise ValueError(f"prior.scale must be a ({d}, {d}) matrix for covariance_type={covariance_type!r}")
            check_finite(s, "prior.scale")
            if not is_traced(s) and not positive_definite(s):
                raise ValueError("prior.scale must be positive definite")
        else:
            check_scalar(prior.scale, "prior.scale", positive=True)
            s = np.asarray(prior.scale, dtype) if not is_traced(prior.scale) else jnp.asarray(prior.scale, dtype)
        fields["scale"] = s
    return prior._replace(**fields)


def check_gmm_params(params: Any, n_features: int, dtype: Any, name: str = "params") -> Any:
    """A consistent GMMParams for data with `n_features` columns, cast to `dtype`."""
    from jaxmix.families.names import COVARIANCE_TYPES
    from jaxmix.families.params import GMMParams

    if not isinstance(params, GMMParams):
        raise TypeError(f"{name} must be a jaxmix.GMMParams (e.g. jaxmix.gmm(...).params), got {type(params).__name__}")
    ct = params.covariance_type
    if ct not in COVARIANCE_TYPES:
        raise ValueError(f"{name}.covariance_type must be one of {COVARIANCE_TYPES}, got {ct!r}")
    means = as_float_array(params.means, f"{name}.means", ndim=2).astype(dtype)
    k, d = means.shape
    if d != n_features:
        raise ValueError(f"{name} has {d} features but x has {n_features}")
    w = check_mixture_weights(params.weights, k, dtype, name=f"{name}.weights")
    expected = covariance_model(ct).cov_shape(k, d)
    arrays = {}
    for field in ("covariances", "precisions_cholesky"):
        a = as_float_array(getattr(params, field), f"{name}.{field}").astype(dtype)
        if tuple(a.shape) != expected:
            raise ValueError(
                f"{name}.{field} must have shape {expected} for covariance_type={ct!r}, got {tuple(a.shape)}"
            )
        check_finite(a, f"{name}.{field}")
        arrays[field] = a
    check_finite(means, f"{name}.means")
    _check_params_positive(arrays["covariances"], arrays["precisions_cholesky"], ct, name)
    return GMMParams(w, means, arrays["covariances"], arrays["precisions_cholesky"], ct)


def _check_params_positive(cov: Any, prec_chol: Any, covariance_type: str, name: str) -> None:
    """Variances > 0 and Cholesky factors with a positive diagonal: log_prob takes their logarithm.

    Hand-built parameters with a zero or negative variance gave NaN from
    `log_prob`, `predict_proba` and `score`. For "full"/"tied" the diagonal
    of the covariances and of the factors is checked (the factors are what
    the density uses); a full positive-definiteness test is left to
    `GMMParams.from_covariances`, where the factors are computed.
    """
    if is_traced(cov) or is_traced(prec_chol):
        return
    xp, c = _xp(cov)
    _, u = _xp(prec_chol)
    if covariance_model(covariance_type).matrix:
        c, u = xp.diagonal(c, axis1=-2, axis2=-1), xp.diagonal(u, axis1=-2, axis2=-1)
    if bool(xp.any(c <= 0)):
        raise ValueError(
            f"{name}.covariances must have every variance > 0 (found {int(xp.sum(c <= 0))} zero or negative); "
            "build parameters with jaxmix.GMMParams.from_covariances"
        )
    if bool(xp.any(u <= 0)):
        raise ValueError(
            f"{name}.precisions_cholesky must have a positive diagonal (found {int(xp.sum(u <= 0))} zero or "
            "negative entries); build parameters with jaxmix.GMMParams.from_covariances"
        )
