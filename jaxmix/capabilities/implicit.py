"""Gradients of converged EM fits by implicit differentiation of the fixed point.

A converged EM fit is a fixed point `theta* = T(theta*, x, h)` of one EM
iteration `T` (E-step then M-step) for data `x` and hyperparameters `h`
(`reg_covar`, `beta`). By the implicit function theorem,
`d theta*/d(x, h) = (I - dT/dtheta)^-1 dT/d(x, h)`, so a reverse-mode
gradient needs one linear solve `u = v + (dT/dtheta)^T u` (GMRES on
vector-Jacobian products of a single EM iteration) and one more VJP of `T`:
no unrolling of the loop, memory independent of the number of iterations.
The solve is well posed at an isolated local maximum of the likelihood,
where the EM map's Jacobian has spectral radius below 1.

`gmm_fixed_point` and `soft_kmeans_fixed_point` run EM from given
parameters to convergence (in a `while_loop`) and carry this custom VJP.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.flatten_util import ravel_pytree
from jax.scipy.sparse.linalg import gmres

from jaxmix.engine import parameter_checks as PC
from jaxmix.engine import validation as V
from jaxmix.families.params import GMMParams
from jaxmix.families.registry import covariance_model
from jaxmix.models import gmm_em as EM
from jaxmix.models import soft_kmeans as S


def _iterate(T: Callable[..., Any], theta0: Any, args: tuple, max_iter: int, tol: float) -> Any:
    """Apply `T(theta, *args)` until the largest change is at most `tol` (or `max_iter` times)."""

    def cond(state):
        i, _, change = state
        return (i < max_iter) & (change > tol)

    def body(state):
        i, theta, _ = state
        new = T(theta, *args)
        diffs = [jnp.max(jnp.abs(a - b)) for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(theta), strict=True)]
        change = jnp.max(jnp.stack(diffs))
        return i + 1, new, change

    dt = jax.tree.leaves(theta0)[0].dtype
    _, theta, _ = lax.while_loop(cond, body, (jnp.int32(0), theta0, jnp.array(jnp.inf, dt)))
    return theta


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 3, 4))
def fixed_point(T: Callable[..., Any], theta0: Any, args: tuple, max_iter: int, tol: float) -> Any:
    """The fixed point of `theta -> T(theta, *args)` reached from `theta0`, differentiable in `args`.

    The gradient with respect to `theta0` is zero (the fixed point does not
    depend on where the iteration started, locally).
    """
    return _iterate(T, theta0, args, max_iter, tol)


def _fwd(T, theta0, args, max_iter, tol):
    theta = _iterate(T, theta0, args, max_iter, tol)
    return theta, (theta, args, theta0)


def _bwd(T, max_iter, tol, res, v):
    theta, args, theta0 = res
    _, vjp_theta = jax.vjp(lambda th: T(th, *args), theta)
    flat_v, unravel = ravel_pytree(v)

    def matvec(u):
        (jt_u,) = vjp_theta(unravel(u))
        return u - ravel_pytree(jt_u)[0]

    u, _ = gmres(matvec, flat_v, x0=flat_v, tol=1e-10, atol=0.0, restart=50, maxiter=20)
    _, vjp_args = jax.vjp(lambda *a: T(theta, *a), *args)
    grads = vjp_args(unravel(u))
    return jax.tree.map(jnp.zeros_like, theta0), tuple(grads)


fixed_point.defvjp(_fwd, _bwd)


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _solve(T: Callable[..., Any], theta0: Any, args: tuple, max_iter: int, tol: float) -> Any:
    """`fixed_point` as one compiled program (called eagerly, the loop would dispatch op by op)."""
    return fixed_point(T, theta0, args, max_iter, tol)


def _gmm_step(params: GMMParams, x: jax.Array, weights: jax.Array, reg_covar: jax.Array) -> GMMParams:
    stats = EM.e_step(x, weights, jnp.zeros((x.shape[1],), x.dtype), params, x.shape[0])
    return EM.m_step(stats, params.covariance_type, reg_covar, None)


def gmm_fixed_point(
    params: GMMParams,
    x: Any,
    *,
    reg_covar: Any = 1e-6,
    weights: Any = None,
    max_iter: int = 1000,
    tol: float = 1e-10,
) -> GMMParams:
    """Run EM from `params` to its fixed point; differentiable in `x`, `reg_covar` and `weights`.

    Gradients come from the implicit function theorem at the fixed point
    (see the module docstring), not from unrolling the iterations. Start
    from a fitted model (`jaxmix.gmm(...).params`) so that few iterations
    remain; use float64 (`jax.enable_x64`) for tight tolerances.

    Args:
      params: starting parameters (e.g. a fit's `params`).
      x: (n_samples, n_features) data.
      reg_covar: added to every covariance's diagonal.
      weights: (n_samples,) sample weights (default all ones).
      max_iter: most EM iterations.
      tol: stop when no parameter changes by more than this.

    Returns:
      The converged `GMMParams`.

    Example:
      >>> import jax, jax.numpy as jnp, jaxmix
      >>> x = jnp.asarray(jaxmix.datasets.load_faithful())
      >>> p = jaxmix.gmm(jax.random.key(0), x, 2).params
      >>> g = jax.grad(lambda x: jaxmix.gmm_fixed_point(p, x, tol=1e-5).means[0, 0])(x)
      >>> g.shape
      (272, 2)
    """
    x = V.check_data(x)
    params = PC.check_gmm_params(params, x.shape[1], x.dtype)
    if covariance_model(params.covariance_type).iterative:
        raise ValueError(
            f"covariance_type {params.covariance_type!r} has an iterative M-step (a while_loop), which JAX cannot "
            "differentiate in reverse mode; gmm_fixed_point works with the closed-form models"
        )
    w = jnp.ones((x.shape[0],), x.dtype) if weights is None else V.check_weights(weights, x.shape[0], x.dtype)
    theta0 = jax.tree.map(lambda a: jnp.asarray(a, x.dtype), params)
    reg = jnp.asarray(reg_covar, x.dtype)
    return _solve(_gmm_step, theta0, (x, w.astype(x.dtype), reg), int(max_iter), float(tol))


def _soft_kmeans_step(theta, x, weights, beta):
    centers, pi = theta
    stats = S.e_step(x, weights, jnp.zeros((x.shape[1],), x.dtype), centers, pi, beta, x.shape[0])
    return S.m_step(stats, centers)


def soft_kmeans_fixed_point(
    centers: Any,
    cluster_weights: Any,
    x: Any,
    beta: Any,
    *,
    weights: Any = None,
    max_iter: int = 1000,
    tol: float = 1e-10,
) -> tuple[jax.Array, jax.Array]:
    """Soft k-means iterations from `(centers, cluster_weights)` to the fixed point.

    Differentiable in `x`, `beta` and `weights` by implicit differentiation.

    Returns:
      `(centers, cluster_weights)` at the fixed point.

    Example:
      >>> import jax, jax.numpy as jnp, jaxmix
      >>> x = jnp.asarray(jaxmix.datasets.load_faithful())
      >>> s = jaxmix.soft_kmeans(jax.random.key(0), x, 2, beta=0.05)
      >>> f = lambda b: jaxmix.soft_kmeans_fixed_point(s.centers, s.weights, x, b, tol=1e-5)[0].sum()
      >>> jax.grad(f)(0.05).shape
      ()
    """
    x = V.check_data(x)
    w = jnp.ones((x.shape[0],), x.dtype) if weights is None else V.check_weights(weights, x.shape[0], x.dtype)
    centers = V.check_centers(centers, None, x.shape[1], x.dtype, name="centers")
    cluster_weights = PC.check_mixture_weights(cluster_weights, centers.shape[0], x.dtype, name="cluster_weights")
    theta0 = (centers, cluster_weights)
    args = (x, w.astype(x.dtype), jnp.asarray(beta, x.dtype))
    return _solve(_soft_kmeans_step, theta0, args, int(max_iter), float(tol))
