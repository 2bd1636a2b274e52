"""A Gaussian mixture with a uniform noise component (mclust's noise; Banfield and Raftery 1993).

Data with scattered outliers pull Gaussian components wide. mclust adds a
component of constant density 1 / V over the data's region, V its hypervolume
(`hypervolume`: the smaller of the bounding box of the columns and the bounding
box in principal-component coordinates, as mclust's `hypvol`), so that

    p(x) = pi_0 / V + sum_k pi_k N(x; mu_k, Sigma_k),     pi_0 + sum_k pi_k = 1.

EM is the usual one with one more responsibility column, log(pi_0) - log V for
every row: the Gaussian components' statistics are those of their own
responsibilities, and pi_0 is the noise column's share. BIC counts two more parameters
(the noise proportion and the hypervolume), as mclust's `nMclustParams`.

As mclust, the fit needs a first guess of the noise rows (`noise_init`, a boolean
mask); without one, the rows of lowest density under an ordinary fit (the
`NOISE_INIT_SHARE` least likely) start as noise. The Gaussian part starts from an
ordinary `jaxmix.gmm` fit of the other rows.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from jaxmix.engine import validation as V
from jaxmix.engine.chunks import map_rows
from jaxmix.engine.loop import iterate, weighted_mean_and_variance
from jaxmix.engine.programs import fit_jit
from jaxmix.families.params import GMMParams
from jaxmix.families.registry import covariance_model
from jaxmix.models import gmm as G
from jaxmix.models.gmm_em import accumulate, m_step, weighted_log_prob

NOISE_INIT_SHARE = 0.1
# mclust's nMclustParams(..., noise = TRUE) counts two more parameters: pi_0 and the hypervolume.
NOISE_PARAMETERS = 2


class NoiseGMMResult(NamedTuple):
    """A mixture with a noise component: `params` holds the Gaussian components with weights relative to
    each other (summing to 1, so every `jaxmix` toolbox function takes them), `noise_weight` is pi_0
    (the Gaussian components' absolute weights are `(1 - noise_weight) * params.weights`), `labels` the
    most responsible component per row (-1: the noise), `log_likelihood` the mean per unit weight of the
    whole model, `bic` its BIC (lower is better; two parameters more than the Gaussian part, as mclust)."""

    params: GMMParams
    noise_weight: jax.Array
    log_hypervolume: jax.Array
    labels: jax.Array
    log_likelihood: jax.Array
    bic: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    history: jax.Array


def hypervolume(x: Any) -> float:
    """mclust's `hypvol`: the smaller of the volume of the columns' bounding box and that of the bounding
    box in the principal-component coordinates (float64, on the host)."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"hypervolume needs (n >= 2, d) data, got shape {x.shape}")
    box = float(np.prod(np.ptp(x, axis=0)))
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    pc = float(np.prod(np.ptp(centred @ vt.T, axis=0)))
    vol = min(box, pc) if pc > 0 else box
    if not vol > 0 or not math.isfinite(vol):
        raise ValueError("the data span no volume (a constant column?): give hypervolume= explicitly")
    return vol


def log_hypervolume(x: Any, given: float | None = None) -> float:
    """log V: of `given` (checked positive and finite), else of the data's `hypervolume`."""
    vol = hypervolume(x) if given is None else float(given)
    if not (vol > 0 and math.isfinite(vol)):
        raise ValueError(f"hypervolume must be a positive finite number, got {given!r}")
    return math.log(vol)


def _resp(params: GMMParams, log_pi0: jax.Array, log_v: jax.Array):
    log_gauss = jnp.log1p(-jnp.exp(log_pi0))  # log(1 - pi_0)

    def resp(xc):
        lp = weighted_log_prob(xc, params) + log_gauss  # (c, k): log(pi_k N_k), absolute weights
        lse = jnp.logaddexp(logsumexp(lp, axis=1), log_pi0 - log_v)
        return jnp.exp(lp - lse[:, None]), lse

    return resp


def noise_fit(x, weights, shift, start, log_pi0, log_v, tol, reg_covar, active, *, ctype, max_iter, chunk_size):
    """EM with the noise column from `start` (means about `shift`) and log pi_0 = `log_pi0`; `active`
    (k,) masks components of a masked fit (or None). Returns ((params, log pi_0), LoopInfo)."""
    k = start.means.shape[0]
    total = jnp.sum(weights)
    tiny = jnp.finfo(x.dtype).tiny

    def step(state, prev):
        p, lp0 = state
        stats = accumulate(x, weights, shift, _resp(p, lp0, log_v), ctype, k, chunk_size)
        new = m_step(stats, ctype, reg_covar, None, active, p.covariances)
        pi0 = jnp.clip((total - jnp.sum(stats.resp)) / total, tiny, 1.0 - 1e-6)
        objective = stats.loglik / total
        return (new, jnp.log(pi0)), objective, jnp.abs(objective - prev) < tol

    return iterate(step, (start, log_pi0), max_iter, x.dtype, minimize=False)


def noise_final(x, weights, shift, params, log_pi0, log_v, chunk_size):
    """(labels (n,) with -1 for the noise, mean log-likelihood, sum of w log max responsibility (ICL's))."""

    def per_row(xc):
        lp = weighted_log_prob(xc - shift, params) + jnp.log1p(-jnp.exp(log_pi0))
        noise = log_pi0 - log_v
        lse = jnp.logaddexp(logsumexp(lp, axis=1), noise)
        best = jnp.max(lp, axis=1)
        labels = jnp.where(best >= noise, jnp.argmax(lp, axis=1), -1).astype(jnp.int32)
        return labels, lse, jnp.maximum(best, noise) - lse

    labels, lse, log_max_r = map_rows(per_row, x, chunk_size)
    total = jnp.sum(weights)
    ll = jnp.sum(jnp.where(weights > 0, weights * lse, 0.0)) / total
    return labels, ll, jnp.sum(jnp.where(weights > 0, weights * log_max_r, 0.0))


@fit_jit(static_argnames=("ctype", "max_iter", "chunk_size"))
def _noise_em(x, weights, params, log_pi0, log_v, tol, reg_covar, *, ctype, max_iter, chunk_size):
    shift, _ = weighted_mean_and_variance(x, weights, chunk_size)
    start = GMMParams.from_covariances(params.weights, params.means - shift, params.covariances, ctype)
    static = dict(ctype=ctype, max_iter=max_iter, chunk_size=chunk_size)
    (p, lp0), info = noise_fit(x, weights, shift, start, log_pi0, log_v, tol, reg_covar, None, **static)
    labels, ll, _ = noise_final(x, weights, shift, p, lp0, log_v, chunk_size)
    out = GMMParams.from_covariances(p.weights, p.means + shift, p.covariances, ctype)
    return out, jnp.exp(lp0), labels, ll, info


def gmm_noise(
    key: jax.Array,
    x: Any,
    n_components: int,
    *,
    covariance_type: str = "full",
    noise_init: Any = None,
    hypervolume: float | None = None,
    init: str = "kmeans",
    n_init: int = 1,
    max_iter: int = 100,
    tol: float = 1e-5,
    reg_covar: float = 1e-6,
) -> NoiseGMMResult:
    """Fit a Gaussian mixture with a uniform noise component (mclust's `Mclust(..., initialization =
    list(noise = ...))`).

    Args:
      key: a JAX PRNG key (the start of the Gaussian part).
      x: (n_samples, n_features) data.
      n_components: Gaussian components (the noise is one more).
      covariance_type: any of `jaxmix.gmm`'s.
      noise_init: (n_samples,) bool, the rows first taken as noise (default: the 10% of rows of
        lowest density under an ordinary fit).
      hypervolume: V, the volume the noise is uniform over (default: mclust's `hypvol` of x).
      init, n_init: the ordinary fit that starts the Gaussian part (`jaxmix.gmm`).
      max_iter, tol, reg_covar: as in `jaxmix.gmm` (tol on the mean log-likelihood).

    Example:
      >>> import jax, jaxmix, numpy as np
      >>> rng = np.random.default_rng(0)
      >>> x = np.concatenate([rng.normal(0, 1, (150, 2)), rng.normal(6, 1, (150, 2)),
      ...                     rng.uniform(-10, 16, (30, 2))]).astype(np.float32)
      >>> r = jaxmix.gmm_noise(jax.random.key(0), x, 2)
      >>> 0.07 < float(r.noise_weight) < 0.12, int((np.asarray(r.labels)[300:] == -1).sum()) >= 20
      (True, True)
    """
    V.check_key(key)
    x = V.check_data(x)
    n, d = x.shape
    G.check_options(covariance_type, init, reg_covar, d, False, G.FIT_INIT_METHODS)
    max_iter = V.check_positive_int(max_iter, "max_iter")
    V.check_scalar(tol, "tol", nonnegative=True)
    log_v = log_hypervolume(np.asarray(x), hypervolume)
    if noise_init is None:
        first = G.gmm(key, x, n_components, covariance_type=covariance_type, init=init, n_init=n_init)
        from jaxmix.models.mixture import log_prob

        dens = np.asarray(log_prob(first.params, x))
        mask = dens <= np.quantile(dens, NOISE_INIT_SHARE)
    else:
        mask = np.asarray(noise_init)
        if mask.shape != (n,) or mask.dtype != np.bool_:
            raise ValueError(f"noise_init must be a ({n},) bool array, got {mask.dtype} {mask.shape}")
        if n - int(mask.sum()) < n_components:
            raise ValueError("noise_init leaves fewer rows than n_components for the Gaussian components")
    w_clean = jnp.asarray(~mask, x.dtype)
    start = G.gmm(
        key, x, n_components, covariance_type=covariance_type, init=init, n_init=n_init, weights=w_clean
    ).params
    pi0 = min(max(float(mask.mean()), 1e-3), 0.5)
    chunk = min(G.gmm_chunk_size(n, n_components, d, covariance_type, x.dtype.itemsize), n)
    params, noise_w, labels, ll, info = _noise_em(
        x,
        jnp.ones((n,), x.dtype),
        start,
        jnp.asarray(math.log(pi0), x.dtype),
        jnp.asarray(log_v, x.dtype),
        jnp.asarray(tol, x.dtype),
        jnp.asarray(reg_covar, x.dtype),
        ctype=covariance_type,
        max_iter=max_iter,
        chunk_size=chunk,
    )
    n_params = covariance_model(covariance_type).n_parameters(n_components, d) + NOISE_PARAMETERS
    bic = -2.0 * ll * n + n_params * math.log(n)
    return NoiseGMMResult(
        params,
        noise_w,
        jnp.asarray(log_v, x.dtype),
        labels,
        ll,
        jnp.asarray(bic, x.dtype),
        info.n_iter,
        info.converged,
        info.history,
    )
