"""One EM iteration of a Gaussian mixture on any covariance family: the sufficient statistics of a chunked
E-step (log densities, logsumexp responsibilities), and the M-step (maximum likelihood, or MAP under
the conjugate prior of `GMMPrior`), with the repair of covariances that round-off made indefinite.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxmix.engine import collective as coll
from jaxmix.engine.chunks import scan_rows
from jaxmix.engine.distances import log_probabilities, responsibilities
from jaxmix.families.params import GMMParams, GMMPrior
from jaxmix.families.registry import covariance_model


class GMMStats(NamedTuple):
    """Sufficient statistics of one E-step (about the shift)."""

    resp: jax.Array  # (k,) N_k
    sums: jax.Array  # (k, d) S_k
    second: jax.Array  # full (k,d,d) | tied (d,d) | diag/spherical (k,d)
    loglik: jax.Array  # () sum_i w_i log p(x_i)


def _zero_stats(ctype: str, k: int, d: int, dtype: Any) -> GMMStats:
    return GMMStats(
        jnp.zeros((k,), dtype),
        jnp.zeros((k, d), dtype),
        covariance_model(ctype).zero_second_moments(k, d, dtype),
        jnp.zeros((), dtype),
    )


def weighted_log_prob(xc: jax.Array, params: GMMParams) -> jax.Array:
    """log pi_k + log N(x; mu_k, Sigma_k), (c, d) -> (c, k); x and means in the same coordinates."""
    lg = covariance_model(params.covariance_type).log_gaussian(xc, params.means, params.precisions_cholesky)
    return lg + log_probabilities(params.weights)[None]


def accumulate(x, weights, shift, resp_fn, ctype: str, k: int, chunk_size: int, with_ids: bool = False) -> GMMStats:
    """Statistics of responsibilities `resp_fn(xc[, ids]) -> (r (c,k), log p (c,))`, summed over chunks."""
    d = x.shape[1]
    ids = jnp.arange(x.shape[0], dtype=jnp.int32) + coll.row_offset(x.shape[0])  # global row numbers
    rows = (x, weights, ids) if with_ids else (x, weights)

    def fold(acc: GMMStats, chunk, valid):
        xc, wc = chunk[0] - shift, jnp.where(valid, chunk[1], 0.0)
        r, lp = resp_fn(xc, chunk[2]) if with_ids else resp_fn(xc)
        r = r * wc[:, None]
        return GMMStats(
            acc.resp + jnp.sum(r, axis=0),
            acc.sums + (xc.T @ r).T,  # x^T @ r: the fast orientation on XLA:CPU
            acc.second + covariance_model(ctype).second_moments(xc, r, wc),
            acc.loglik + jnp.sum(jnp.where(wc > 0, wc * lp, 0.0)),
        ), None

    stats, _ = scan_rows(fold, _zero_stats(ctype, k, d, x.dtype), rows, chunk_size)
    stats = coll.allsum(stats)
    return stats


def e_step(x, weights, shift, params: GMMParams, chunk_size: int) -> GMMStats:
    """Soft responsibilities under `params` (means in shifted coordinates)."""

    def resp(xc):
        return responsibilities(weighted_log_prob(xc, params))

    return accumulate(x, weights, shift, resp, params.covariance_type, params.means.shape[0], chunk_size)


class _Prior(NamedTuple):
    """A GMMPrior with every default resolved (shifted coordinates)."""

    alpha: jax.Array
    mean: jax.Array
    kappa: jax.Array
    nu: jax.Array
    scale: jax.Array


def _resolve_prior(prior: GMMPrior, x, weights, shift, ctype: str, k: int, chunk_size: int) -> _Prior:
    d = x.shape[1]
    dt = x.dtype

    def or_default(v, default):
        return jnp.asarray(default if v is None else v, dt)

    scale = prior.scale
    if scale is None:
        # Weighted covariance of the data about the shift (= the data mean).
        def fold(acc, chunk, valid):
            xc, wc = chunk[0] - shift, jnp.where(valid, chunk[1], 0.0)
            return (acc[0] + (xc * wc[:, None]).T @ xc, acc[1] + jnp.sum(wc)), None

        (cov, total), _ = scan_rows(fold, (jnp.zeros((d, d), dt), jnp.zeros((), dt)), (x, weights), chunk_size)
        cov, total = coll.allsum((cov, total))
        cov = cov / total
        fac = (1.0 / k) ** (2.0 / d)
        scale = covariance_model(ctype).prior_scale(cov, fac, d)
    mean = jnp.zeros((d,), dt) if prior.mean is None else jnp.asarray(prior.mean, dt) - shift
    return _Prior(
        or_default(prior.weight_concentration, 1.0),
        mean,
        or_default(prior.shrinkage, 0.01),
        or_default(prior.dof, d + 2.0),
        jnp.asarray(scale, dt),
    )


def m_step(
    stats: GMMStats,
    ctype: str,
    reg_covar: jax.Array,
    prior: _Prior | None,
    active: jax.Array | None = None,
    previous: jax.Array | None = None,
    projection: jax.Array | None = None,
) -> GMMParams:
    """(MAP-)EM update; shifted coordinates in, shifted out.

    `active`: (k,) bool, the components that exist (a masked fit, no prior):
    the others get weight 0 (so they take no responsibility) and a unit
    covariance, and count nowhere. `previous`: the covariances before this
    step, where an iterative M-step starts (see `CovarianceModel.covariance`).
    `projection`: for the "dense" family, the traced code of the model it
    runs (`gaussian_dense.PROJECTIONS`).
    """
    k, d = stats.sums.shape
    dt = stats.sums.dtype
    n = stats.resp
    model = covariance_model(ctype)
    if active is not None and prior is not None:
        raise ValueError("a masked fit takes no prior")
    if prior is None:
        # scikit-learn's guard against empty components.
        nk = n + 10 * jnp.finfo(dt).eps
        if active is not None:
            nk = jnp.where(active, nk, 0.0)
            nk_safe = jnp.where(active, nk, 1.0)
        else:
            nk_safe = nk
        means = stats.sums / nk_safe[:, None]
        scatter = model.scatter(stats.second, n, means)
        if projection is not None:
            cov = model.project(scatter, nk, nk_safe, projection)  # type: ignore[attr-defined]
        else:
            cov = model.covariance(scatter, nk, nk_safe, previous)
        weights = nk / jnp.sum(nk)
    else:
        has = n > 0
        safe = jnp.where(has, n, 1.0)
        xbar = jnp.where(has[:, None], stats.sums / safe[:, None], prior.mean[None])
        means = (stats.sums + prior.kappa * prior.mean[None]) / (n + prior.kappa)[:, None]
        w_scatter = model.scatter(stats.second, n, xbar)
        cov = model.covariance_map(w_scatter, n, xbar - prior.mean[None], prior, d)
        a = prior.alpha - 1.0
        weights = jnp.maximum(n + a, 0.0) / jnp.maximum(jnp.sum(n) + k * a, jnp.finfo(dt).tiny)
    cov = model.add_to_diagonal(model.symmetrize(cov), reg_covar)
    if active is not None and not model.shared:
        unit = model.add_to_diagonal(jnp.zeros_like(cov), jnp.ones((), dt))
        cov = jnp.where(active.reshape((k,) + (1,) * (cov.ndim - 1)), cov, unit)
    cov, prec = _positive_definite(cov, ctype, reg_covar)
    return GMMParams(weights, means, cov, prec, ctype)


def _positive_definite(cov: jax.Array, ctype: str, reg_covar: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Covariances and their precision Cholesky factors, never NaN from round-off.

    The scatter `sum r x x^T - N m m^T` is exact in theory, but for a
    component that collapsed onto a few points it is a difference of
    nearly equal numbers, and in float32 the result can come out
    indefinite, by more than `reg_covar`. Such a covariance is replaced by
    its diagonal (variances floored at `reg_covar`, or the smallest normal
    number when `reg_covar` is 0), which is what the collapsed component's
    data still support; a negative variance (diag, spherical) is floored
    the same way. Healthy covariances are left untouched.
    """
    floor = jnp.maximum(reg_covar, jnp.finfo(cov.dtype).tiny)
    return covariance_model(ctype).positive_definite(cov, floor)
