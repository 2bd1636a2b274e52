"""The likelihood toolbox on fitted Gaussian mixture parameters.

All functions are jit- and vmap-able (module-level `jax.jit`, rows in
chunks) and check their inputs first when called with concrete arrays.
Information criteria follow scikit-learn's sign convention: lower is better.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from jaxmix.engine import arrays as A
from jaxmix.engine import buckets as B
from jaxmix.engine import memory_checks
from jaxmix.engine import parameter_checks as PC
from jaxmix.engine import validation as V
from jaxmix.engine.chunks import map_rows, scan_rows
from jaxmix.engine.distances import log_probabilities
from jaxmix.engine.programs import fit_jit
from jaxmix.families.params import GMMParams
from jaxmix.families.registry import covariance_model
from jaxmix.models.gmm import gmm_chunk_size, gmm_work
from jaxmix.models.gmm_em import weighted_log_prob


def _centred(params: GMMParams) -> tuple[GMMParams, jax.Array]:
    # Work about the mean of the means: the Mahalanobis expansions keep their
    # precision for data far from the origin.
    s = jnp.mean(params.means, axis=0)
    return dataclasses.replace(params, means=params.means - s), s


@fit_jit(static_argnames=("what", "chunk_size"))
def _per_row(params: GMMParams, x: jax.Array, *, what: str, chunk_size: int):
    """Per-row results, chunk by chunk; only "proba" builds an (n, k) array."""
    p, s = _centred(params)

    def rows(xc):
        lp = weighted_log_prob(xc - s, p)
        if what == "log_prob":
            return logsumexp(lp, axis=1)
        if what == "predict":
            return jnp.argmax(lp, axis=1).astype(jnp.int32)
        return jnp.exp(lp - logsumexp(lp, axis=1, keepdims=True))

    return map_rows(rows, x, chunk_size)


@fit_jit(static_argnames=("chunk_size",))
def _sums(params: GMMParams, x: jax.Array, w: jax.Array, *, chunk_size: int):
    """Total log-likelihood, soft entropy and hard-classification term (rows weighted by w), in one pass."""
    p, s = _centred(params)
    dt = x.dtype

    def fold(acc, chunk, valid):
        xc, wc = chunk
        lp = weighted_log_prob(xc - s, p)
        lse = logsumexp(lp, axis=1)
        log_r = lp - lse[:, None]
        r = jnp.exp(log_r)
        ent = -jnp.sum(jnp.where(r > 0, r * log_r, 0.0), axis=1)
        hard = jnp.max(log_r, axis=1)
        v = jnp.where(valid, wc, 0.0)
        return (acc[0] + jnp.sum(v * lse), acc[1] + jnp.sum(v * ent), acc[2] + jnp.sum(v * hard)), None

    zero = jnp.zeros((), dt)
    out, _ = scan_rows(fold, (zero, zero, zero), (x, w), chunk_size)
    return out


class _Prepared(NamedTuple):
    """Checked toolbox arguments, padded to their size bucket when small (see `buckets`)."""

    params: GMMParams  # k padded to a bucket with weight-0 components
    x: Any  # rows padded with copies of the first row
    w: Any  # (rows,) 1 for real rows, 0 for padding
    chunk: int
    n: int  # real rows
    k: int  # real components
    original: GMMParams  # the checked, unpadded parameters
    work: int | None  # multiply-adds of the pass when small (its compiler options, `programs`); else None


def _prepare(params: Any, x: Any, chunk_size: int | None) -> _Prepared:
    x = V.check_data(x, magnitude=False)
    params = PC.check_gmm_params(params, x.shape[1], x.dtype)
    V.check_magnitude(x, "x", params.means)
    n, (k, d) = x.shape[0], params.means.shape
    small = B.toolbox_small(x)
    xp, _ = B.pad_rows_for_toolbox(x)
    chunk = V.check_chunk_size(chunk_size) or gmm_chunk_size(n, k, d, params.covariance_type, x.dtype.itemsize)
    chunk = xp.shape[0] if chunk >= n else chunk  # padded rows stay one chunk when the data were
    if small:
        w: Any = np.concatenate([np.ones(n, x.dtype), np.zeros(xp.shape[0] - n, x.dtype)])
    else:
        w = jnp.ones((n,), x.dtype)
    padded = _pad_components(params) if small else params
    if small and xp.shape[0] * padded.means.shape[0] * d * d <= DENSE_TOOLBOX_WORK:
        padded = _as_full(padded)
    work = gmm_work(xp.shape[0] * padded.means.shape[0] * d, padded.covariance_type, d) if small else None
    return _Prepared(padded, xp, w, min(chunk, xp.shape[0]), n, k, params, work)


# A small toolbox pass (at most this many multiply-adds with full matrices) runs every covariance
# model as full matrices: one program then serves all of them (a BIC grid over four types compiles
# one scoring program, not four), and the pass costs microseconds more.
DENSE_TOOLBOX_WORK = 2**22


def _as_full(params: GMMParams) -> GMMParams:
    """The same mixture with (k, d, d) covariances and precision factors, on the host (or as is)."""
    if params.covariance_type == "full" or A.host(params.means) is None:
        return params
    model = covariance_model(params.covariance_type)
    k, d = params.means.shape
    return GMMParams(
        params.weights,
        params.means,
        model.dense(np.asarray(params.covariances), k, d),
        model.dense(np.asarray(params.precisions_cholesky), k, d),
        "full",
    )


def _pad_components(params: GMMParams) -> GMMParams:
    """Components padded to `pow2(k, 8)` with weight 0 (they never take a sample), on the host."""
    k = params.means.shape[0]
    kp = B.pow2(k, B.MIN_K)
    if kp == k or A.host(params.means) is None:
        return params
    ct = params.covariance_type
    means = np.asarray(params.means)
    d = means.shape[1]
    # Copies of the first mean keep the toolbox's centring (the mean of the means) near the data.
    pad_means: Any = np.concatenate([means, np.broadcast_to(means[:1], (kp - k, d))])
    model = covariance_model(ct)
    unit = model.add_to_diagonal(np.zeros(model.cov_shape(1, d)[1:]), 1.0)  # one component's, on the host

    def pad_cov(a: Any) -> Any:
        if model.shared:
            return a
        a = np.asarray(a)
        return np.concatenate([a, np.broadcast_to(unit.astype(a.dtype), (kp - k, *a.shape[1:]))])

    weights: Any = B.pad_first(params.weights, kp)
    return GMMParams(
        weights,
        pad_means,
        pad_cov(params.covariances),
        pad_cov(params.precisions_cholesky),
        ct,
    )


def _rows(params: Any, x: Any, what: str, chunk_size: int | None) -> jax.Array:
    """`_per_row` in the program of the size bucket, cut back to n rows (and k columns)."""
    p = _prepare(params, x, chunk_size)
    out = B.take_first(_per_row.small(p.work)(p.params, p.x, what=what, chunk_size=p.chunk), p.n)
    if what == "proba" and p.params.means.shape[0] != p.k:
        return jax.device_put(np.asarray(out)[:, : p.k])
    return out


def _totals(params: Any, x: Any, chunk_size: int | None) -> tuple[_Prepared, Any]:
    """(prepared arguments, (log-likelihood, entropy, hard term) summed over the real rows)."""
    p = _prepare(params, x, chunk_size)
    return p, _sums.small(p.work)(p.params, p.x, p.w, chunk_size=p.chunk)


def log_prob(params: GMMParams, x: Any, *, chunk_size: int | None = None) -> jax.Array:
    """Per-sample log density `log sum_k pi_k N(x; mu_k, Sigma_k)`, (n_samples,).

    Example:
      >>> import jax, jaxmix
      >>> x = jaxmix.datasets.load_faithful()
      >>> g = jaxmix.gmm(jax.random.key(0), x, 2)
      >>> jaxmix.log_prob(g.params, x[:3]).shape
      (3,)
    """
    return _rows(params, x, "log_prob", chunk_size)


def predict_proba(params: GMMParams, x: Any, *, chunk_size: int | None = None) -> jax.Array:
    """Responsibilities `p(component k | x_i)`, (n_samples, k); rows sum to 1."""
    return _rows(params, x, "proba", chunk_size)


def predict(params: GMMParams, x: Any, *, chunk_size: int | None = None) -> jax.Array:
    """Most responsible component of each sample, (n_samples,) int32."""
    return _rows(params, x, "predict", chunk_size)


def score(params: GMMParams, x: Any, *, chunk_size: int | None = None) -> jax.Array:
    """Mean log-likelihood per sample (scikit-learn's `score`)."""
    p, sums = _totals(params, x, chunk_size)
    return sums[0] / p.n


def n_parameters(params: GMMParams) -> int:
    """Number of free parameters (k - 1 weights, k d means, the covariances).

    Example:
      >>> import jax.numpy as jnp, jaxmix
      >>> p = jaxmix.GMMParams.from_covariances(jnp.ones(2) / 2, jnp.zeros((2, 5)), jnp.ones((2, 5)), "diag")
      >>> jaxmix.n_parameters(p)
      21
    """
    k, d = params.means.shape[-2:]
    return covariance_model(params.covariance_type).n_parameters(k, d)


def bic(params: GMMParams, x: Any, *, chunk_size: int | None = None) -> jax.Array:
    """Bayesian information criterion `-2 log L + p log n` (lower is better)."""
    p, sums = _totals(params, x, chunk_size)
    return -2.0 * sums[0] + n_parameters(p.original) * math.log(p.n)


def aic(params: GMMParams, x: Any, *, chunk_size: int | None = None) -> jax.Array:
    """Akaike information criterion `-2 log L + 2 p` (lower is better)."""
    p, sums = _totals(params, x, chunk_size)
    return -2.0 * sums[0] + 2.0 * n_parameters(p.original)


def entropy(params: GMMParams, x: Any, *, chunk_size: int | None = None) -> jax.Array:
    """Classification entropy `-sum_i sum_k r_ik log r_ik` (0 for a crisp partition)."""
    return _totals(params, x, chunk_size)[1][1]


def icl(params: GMMParams, x: Any, *, chunk_size: int | None = None) -> jax.Array:
    """Integrated complete-data likelihood criterion, as mclust's `icl`, lower is better.

    `bic - 2 sum_i log max_k r_ik`: BIC penalised by how uncertain the hard
    classification is (mclust's value is the negative of this).
    """
    p, (total, _, hard) = _totals(params, x, chunk_size)
    return -2.0 * total + n_parameters(p.original) * math.log(p.n) - 2.0 * hard


@functools.partial(jax.jit, static_argnames=("n_samples",))
def _sample(key, params: GMMParams, *, n_samples: int):
    d = params.means.shape[1]
    kc, kz = jax.random.split(key)
    labels = jax.random.categorical(kc, log_probabilities(params.weights), shape=(n_samples,))
    z = jax.random.normal(kz, (n_samples, d), dtype=params.means.dtype)
    noise = covariance_model(params.covariance_type).sample_noise(z, params.covariances, labels)
    return params.means[labels] + noise, labels.astype(jnp.int32)


def sample(key: jax.Array, params: GMMParams, n_samples: int) -> tuple[jax.Array, jax.Array]:
    """Draw `n_samples` points from the mixture.

    Returns:
      `(x, labels)`: (n_samples, d) samples and the component each came from.

    Example:
      >>> import jax, jax.numpy as jnp, jaxmix
      >>> p = jaxmix.GMMParams.from_covariances(jnp.array([.5, .5]), jnp.array([[0.], [10.]]), jnp.ones((2, 1, 1)))
      >>> xs, ys = jaxmix.sample(jax.random.key(0), p, 1000)
      >>> xs.shape, bool(abs(float(xs.mean()) - 5) < 1)
      ((1000, 1), True)
    """
    V.check_key(key)
    n_samples = V.check_positive_int(n_samples, "n_samples")
    params = PC.check_gmm_params(params, params.means.shape[-1], params.means.dtype)
    memory_checks.check_sample_size(n_samples, params)
    return _sample(key, params, n_samples=n_samples)
