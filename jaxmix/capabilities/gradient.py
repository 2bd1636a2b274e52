"""Gaussian mixtures fitted by gradient descent (optax), for training jointly with other models.

EM is the right tool for a mixture on its own. Inside a larger model (a
mixture on the embeddings of a neural network, a mixture prior in a VAE)
the mixture's parameters must be ordinary trainable leaves and its
negative log-likelihood an ordinary differentiable loss. This module gives
exactly that:

- `MixtureRaw`: an unconstrained parametrisation: mixing logits (softmax),
  means, and the precision Cholesky factors with a log-diagonal (so the
  factors stay triangular with a positive diagonal, hence every precision
  positive definite, whatever the optimiser does);
- `to_raw(params)` / `from_raw(raw)`: the two directions (`GMMParams` has
  scikit-learn's shapes);
- `nll(raw, x, weights=None)`: mean negative log-likelihood, differentiable
  in `raw` and in `x`;
- `fit_gradient(...)`: mini-batch optax (Adam by default) on `nll`, one
  compiled `lax.scan`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.scipy.special import logsumexp

from jaxmix.engine import parameter_checks as PC
from jaxmix.engine import validation as V
from jaxmix.families.params import GMMParams
from jaxmix.families.registry import covariance_model


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MixtureRaw:
    """Unconstrained mixture parameters: a pytree of trainable leaves.

    `covariance_type` is static metadata (not a leaf), as in `GMMParams`.
    """

    logits: jax.Array  # (k,) mixing weights = softmax(logits)
    means: jax.Array  # (k, d)
    chol: (
        jax.Array
    )  # precision Cholesky factors, diagonal as log: full (k,d,d) | tied (d,d) | diag (k,d) | spherical (k,)
    covariance_type: str = dataclasses.field(default="full", metadata={"static": True})


class GradientFitResult(NamedTuple):
    params: GMMParams  # the fitted mixture, scikit-learn's shapes
    raw: MixtureRaw  # the same, unconstrained (to keep training)
    loss: jax.Array  # (n_steps,) mini-batch negative log-likelihood per step
    log_likelihood: jax.Array  # () mean log-likelihood of all the data at the end


def to_raw(params: GMMParams) -> MixtureRaw:
    """The unconstrained parametrisation of `params` (inverse of `from_raw`)."""
    u = params.precisions_cholesky
    if covariance_model(params.covariance_type).matrix:
        d = u.shape[-1]
        diag = jnp.diagonal(u, axis1=-2, axis2=-1)
        chol = jnp.where(jnp.eye(d, dtype=bool), jnp.log(diag)[..., None, :] * jnp.eye(d, dtype=u.dtype), u)
    else:
        chol = jnp.log(u)
    logits = jnp.log(jnp.maximum(params.weights, jnp.finfo(params.weights.dtype).tiny))
    return MixtureRaw(logits - jnp.max(logits), params.means, chol, params.covariance_type)


def _precisions_cholesky(raw: MixtureRaw, ctype: str) -> jax.Array:
    if covariance_model(ctype).matrix:
        d = raw.chol.shape[-1]
        eye = jnp.eye(d, dtype=bool)
        upper = jnp.triu(raw.chol, k=1)
        return jnp.where(eye, jnp.exp(raw.chol) * jnp.eye(d, dtype=raw.chol.dtype), upper)
    return jnp.exp(raw.chol)


def from_raw(raw: MixtureRaw) -> GMMParams:
    """`GMMParams` (scikit-learn's shapes) from unconstrained parameters."""
    ctype = raw.covariance_type
    u = _precisions_cholesky(raw, ctype)
    return GMMParams.from_precisions_cholesky(jax.nn.softmax(raw.logits), raw.means, u, ctype)


def nll(raw: MixtureRaw, x: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Mean negative log-likelihood of rows `x` (optionally weighted) under `raw`.

    Differentiable in `raw` and `x`; use it as (part of) a training loss.

    Example:
      >>> import jax, jax.numpy as jnp, jaxmix
      >>> raw = jaxmix.gradient.to_raw(jaxmix.GMMParams.from_covariances(
      ...     jnp.ones(2) / 2, jnp.array([[0.0, 0.0], [3.0, 3.0]]), jnp.ones((2, 2)), "diag"))
      >>> g = jax.grad(jaxmix.gradient.nll)(raw, jnp.array([[0.1, 0.0], [2.9, 3.2]]))
      >>> g.means.shape
      (2, 2)
    """
    ctype = raw.covariance_type
    u = _precisions_cholesky(raw, ctype)
    lp = covariance_model(ctype).log_gaussian(x, raw.means, u) + jax.nn.log_softmax(raw.logits)[None]
    ll = logsumexp(lp, axis=1)
    if weights is None:
        return -jnp.mean(ll)
    return -jnp.sum(weights * ll) / jnp.sum(weights)


@functools.partial(jax.jit, static_argnames=("optimizer", "n_steps", "batch_size"))
def _fit(key, x, weights, raw0, *, optimizer, n_steps, batch_size):
    n = x.shape[0]
    # Work about the data mean: the Mahalanobis terms keep their precision.
    shift = jnp.sum(weights[:, None] * x, axis=0) / jnp.sum(weights)
    raw0 = dataclasses.replace(raw0, means=raw0.means - shift)
    state0 = optimizer.init(raw0)

    def step(carry, key_t):
        raw, state = carry
        idx = jax.random.randint(key_t, (batch_size,), 0, n)
        loss, grads = jax.value_and_grad(nll)(raw, x[idx] - shift, weights[idx])
        updates, state = optimizer.update(grads, state, raw)
        return (optax.apply_updates(raw, updates), state), loss

    (raw, _), losses = lax.scan(step, (raw0, state0), jax.random.split(key, n_steps))
    ll = -nll(raw, x - shift, weights)
    return dataclasses.replace(raw, means=raw.means + shift), losses, ll


def fit_gradient(
    key: jax.Array,
    x: Any,
    init: GMMParams,
    *,
    n_steps: int = 2000,
    batch_size: int = 256,
    learning_rate: float = 1e-2,
    optimizer: optax.GradientTransformation | None = None,
    weights: Any = None,
) -> GradientFitResult:
    """Fit a Gaussian mixture by mini-batch gradient descent on its negative log-likelihood.

    Args:
      key: a JAX PRNG key (mini-batch sampling).
      x: (n_samples, n_features) data.
      init: starting parameters, e.g. `jaxmix.gmm(key, x, k, max_iter=1).params`
        or `GMMParams.from_covariances(...)`; its covariance type is kept.
      n_steps: optimiser steps (static).
      batch_size: rows per step, drawn uniformly with replacement (static).
      learning_rate: Adam's learning rate when `optimizer` is None.
      optimizer: any optax `GradientTransformation` (hashable: build it once
        and reuse it, or the fit recompiles).
      weights: (n_samples,) non-negative sample weights.

    Returns:
      A `GradientFitResult`: `params`, `raw`, `loss` per step, `log_likelihood`.

    Example:
      >>> import jax, jaxmix
      >>> x = jaxmix.datasets.load_faithful()
      >>> start = jaxmix.gmm(jax.random.key(0), x, 2, max_iter=1).params
      >>> r = jaxmix.fit_gradient(jax.random.key(1), x, start, n_steps=200, learning_rate=0.05)
      >>> r.params.means.shape, r.loss.shape
      ((2, 2), (200,))
    """
    V.check_key(key)
    x = V.check_data(x)
    w = V.check_weights(weights, x.shape[0], x.dtype)
    init = PC.check_gmm_params(init, x.shape[1], x.dtype, name="init")
    n_steps = V.check_positive_int(n_steps, "n_steps")
    batch_size = V.check_positive_int(batch_size, "batch_size")
    V.check_scalar(learning_rate, "learning_rate", positive=True)
    opt = optimizer if optimizer is not None else _adam(float(learning_rate))
    raw, losses, ll = _fit(key, x, w, to_raw(init), optimizer=opt, n_steps=n_steps, batch_size=batch_size)
    return GradientFitResult(from_raw(raw), raw, losses, ll)


@functools.lru_cache(maxsize=32)
def _adam(learning_rate: float) -> optax.GradientTransformation:
    # One object per rate: optax transformations are static arguments, and a
    # fresh one per call would recompile the fit.
    return optax.adam(learning_rate)
