"""Soft k-means (the lecture's version with cluster probabilities).

E-step: responsibilities `r_ik = pi_k exp(-beta ||x_i - m_k||^2) / Z_i`,
computed with logsumexp; statistics `R_k = sum_i w_i r_ik` and
`S_k = sum_i w_i r_ik x_i`. M-step: `m_k = S_k / R_k`, `pi_k = R_k / sum R`.

This is EM for a Gaussian mixture whose covariances are fixed to
`(2 beta)^-1 I`, so the free energy

    F = -(1/beta) sum_i w_i log sum_k pi_k exp(-beta ||x_i - m_k||^2)

never increases; as beta -> inf the responsibilities become one-hot and F
becomes the k-means inertia J.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from jaxmix.engine import arrays as A
from jaxmix.engine import buckets as B
from jaxmix.engine import collective as coll
from jaxmix.engine import progress as _progress
from jaxmix.engine import random as jr
from jaxmix.engine import sharding as S
from jaxmix.engine import validation as V
from jaxmix.engine.chunks import default_chunk_size, map_rows, scan_rows
from jaxmix.engine.distances import log_probabilities, partial_sq_distances, responsibilities, sq_norms
from jaxmix.engine.loop import iterate, select_best, weighted_mean_and_variance
from jaxmix.engine.programs import fit_jit
from jaxmix.engine.seeding import initial_centers

INIT_METHODS = ("k-means++", "random")


class SoftKMeansResult(NamedTuple):
    """A fitted soft k-means model and its diagnostics."""

    centers: jax.Array  # (n_clusters, n_features)
    weights: jax.Array  # (n_clusters,) cluster probabilities pi_k, sum to 1
    beta: jax.Array  # () stiffness used in the fit
    labels: jax.Array  # (n_samples,) int32, most responsible cluster
    objective: jax.Array  # () free energy F at the result (in units of inertia)
    n_iter: jax.Array  # () int32
    converged: jax.Array  # () bool, True only if the tolerance was met
    history: jax.Array  # (max_iter,) F after each E-step; never increases
    nonfinite: jax.Array  # () bool, True if NaN/inf reached the result


class SoftKMeansStats(NamedTuple):
    """Sufficient statistics of one soft E-step."""

    resp: jax.Array  # (k,) R_k = sum_i w_i r_ik
    sums: jax.Array  # (k, d) sum_i w_i r_ik (x_i - shift)
    objective: jax.Array  # () F = -(1/beta) sum_i w_i logsumexp_k(...)


def _logits(xc: jax.Array, centers: jax.Array, centers_sq: jax.Array, log_pi: jax.Array, beta: jax.Array) -> jax.Array:
    d = jnp.maximum(partial_sq_distances(xc, centers, centers_sq) + sq_norms(xc)[:, None], 0.0)
    return log_pi[None, :] - beta * d


def e_step(
    x: jax.Array,
    weights: jax.Array,
    shift: jax.Array,
    centers: jax.Array,
    pi: jax.Array,
    beta: jax.Array,
    chunk_size: int,
) -> SoftKMeansStats:
    """Soft responsibilities and their statistics, chunk by chunk."""
    k, d = centers.shape
    cc = sq_norms(centers)
    log_pi = log_probabilities(pi)

    def fold(acc: SoftKMeansStats, chunk, valid):
        xc, wc = chunk
        xc = xc - shift
        wc = jnp.where(valid, wc, 0.0)
        logits = _logits(xc, centers, cc, log_pi, beta)
        r, lse = responsibilities(logits)
        r = r * wc[:, None]
        return SoftKMeansStats(
            acc.resp + jnp.sum(r, axis=0),
            acc.sums + (xc.T @ r).T,
            acc.objective - jnp.sum(wc * lse) / beta,
        ), None

    zero = SoftKMeansStats(jnp.zeros((k,), x.dtype), jnp.zeros((k, d), x.dtype), jnp.zeros((), x.dtype))
    stats, _ = scan_rows(fold, zero, (x, weights), chunk_size)
    return coll.allsum(stats)


def m_step(stats: SoftKMeansStats, centers: jax.Array) -> tuple[jax.Array, jax.Array]:
    """New centres and cluster probabilities; an empty cluster keeps its centre."""
    has = stats.resp > 0
    safe = jnp.where(has, stats.resp, 1.0)
    new = jnp.where(has[:, None], stats.sums / safe[:, None], centers)
    return new, stats.resp / jnp.sum(stats.resp)


def _fit_single(
    key,
    x,
    weights,
    shift,
    tol_abs,
    beta,
    init_centers,
    *,
    n_clusters,
    init,
    max_iter,
    chunk_size,
    progress=False,
    n_active=None,
    limit=None,
):
    """One restart. A masked fit (`n_active` clusters of `n_clusters`) gives the others
    probability 0: no responsibility, no movement, the same fit as with `n_active` clusters."""
    c0 = initial_centers(key, x, shift, weights, init_centers, init, n_clusters, chunk_size, n_active)
    if n_active is None:
        pi0 = jnp.full((n_clusters,), 1.0 / n_clusters, x.dtype)
    else:
        pi0 = jnp.where(jnp.arange(n_clusters) < n_active, 1.0 / n_active.astype(x.dtype), 0.0).astype(x.dtype)

    def step(params, prev_objective):
        del prev_objective
        centers, pi = params
        stats = e_step(x, weights, shift, centers, pi, beta, chunk_size)
        new, new_pi = m_step(stats, centers)
        moved = jnp.sum((new - centers) ** 2)
        return (new, new_pi), stats.objective, moved <= tol_abs

    return iterate(step, (c0, pi0), max_iter, x.dtype, progress=progress, limit=limit)


@fit_jit(static_argnames=("n_clusters", "init", "n_init", "max_iter", "chunk_size", "progress"))
def _soft_kmeans(
    key,
    x,
    weights,
    init_centers,
    beta,
    tol,
    n_active=None,
    limit=None,
    n_valid=None,
    *,
    n_clusters,
    init,
    n_init,
    max_iter,
    chunk_size,
    progress=False,
):
    """The soft k-means program; a bucketed fit passes `n_active`, `limit`, `n_valid` as in `kmeans`."""
    shift, mean_var = weighted_mean_and_variance(x, weights, chunk_size)
    tol_abs = tol * mean_var
    fit = functools.partial(
        _fit_single,
        n_clusters=n_clusters,
        init=init,
        max_iter=max_iter,
        chunk_size=chunk_size,
        progress=progress,
        n_active=n_active,
        limit=limit,
    )
    if n_init == 1:
        (centers, pi), info = fit(key, x, weights, shift, tol_abs, beta, init_centers)
    else:
        keys = jr.split(key, n_init)
        params, infos = jax.vmap(fit, in_axes=(0,) + (None,) * 6)(keys, x, weights, shift, tol_abs, beta, init_centers)
        final = jax.vmap(lambda c, p: e_step(x, weights, shift, c, p, beta, chunk_size).objective)(*params)
        if n_valid is not None:  # padding restarts never win
            final = jnp.where(jnp.arange(n_init) < n_valid, final, jnp.inf)
        ((centers, pi), info), _ = select_best((params, infos), final)
    objective = e_step(x, weights, shift, centers, pi, beta, chunk_size).objective
    cc = sq_norms(centers)
    log_pi = log_probabilities(pi)
    labels = map_rows(
        lambda xc: jnp.argmax(_logits(xc - shift, centers, cc, log_pi, beta), axis=1).astype(jnp.int32), x, chunk_size
    )
    nonfinite = ~(jnp.all(jnp.isfinite(centers)) & jnp.all(jnp.isfinite(pi)) & jnp.isfinite(objective))
    return SoftKMeansResult(
        centers + shift, pi, beta, labels, objective, info.n_iter, info.converged, info.history, nonfinite
    )


def soft_kmeans(
    key: jax.Array,
    x: Any,
    n_clusters: int,
    *,
    beta: float,
    init: str | Any = "k-means++",
    n_init: int = 1,
    max_iter: int = 300,
    tol: float = 1e-4,
    weights: Any = None,
    chunk_size: int | None = None,
    progress: bool = False,
) -> SoftKMeansResult:
    """Fit soft k-means: responsibilities `r_ik ∝ pi_k exp(-beta ||x_i - m_k||^2)`.

    The lecture's soft k-means with cluster probabilities, i.e. EM for a
    Gaussian mixture with covariances fixed to `(2 beta)^-1 I`. Small beta
    blurs every point over all clusters; as beta grows the fit becomes
    k-means (same centres from the same start).

    Args:
      key: a JAX PRNG key, used by the initialisation.
      x: (n_samples, n_features) data.
      n_clusters: number of clusters k.
      beta: stiffness, > 0, in units of 1 / (squared distance). Traced:
        sweeping it does not recompile.
      init: "k-means++", "random" or a (k, n_features) array of centres.
        Cluster probabilities start uniform.
      n_init: restarts run as one vmap; the lowest final free energy wins.
      max_iter: most EM iterations per restart.
      tol: stop when the squared centre shift summed over clusters is at most
        `tol` times the mean per-feature variance of the data (traced).
      weights: (n_samples,) non-negative sample weights; 0 removes a row.
      chunk_size: rows per block of the (rows, k) responsibility matrix.
      progress: print the iteration count and the free energy to stderr
        while the fit runs (as in `kmeans`; nothing for fits done within
        about a second). Static: `progress=False` compiles no callback.

    Returns:
      A `SoftKMeansResult`; `history` is the free energy F per iteration
      (non-increasing).

    Example:
      >>> import jax, jaxmix
      >>> x = jaxmix.datasets.load_faithful()
      >>> r = jaxmix.soft_kmeans(jax.random.key(0), x, 2, beta=0.05)
      >>> r.weights.shape, bool(r.history[1] <= r.history[0])
      ((2,), True)
    """
    V.refuse_reverse_mode(
        "jaxmix.soft_kmeans",
        "Differentiate the converged fit with jaxmix.soft_kmeans_fixed_point(centers, weights, x, beta) "
        "(implicit differentiation of the fixed point), or soft_kmeans_predict_proba at fixed centres.",
        x,
        weights,
        beta,
    )
    a = V.check_fit_args(
        key, x, n_clusters, weights=weights, n_init=n_init, max_iter=max_iter, tol=tol, chunk_size=chunk_size
    )
    V.check_beta(beta, a.x)
    x, k = a.x, a.n_clusters
    n, d = x.shape
    init_centers, method, n_init = V.check_init(init, INIT_METHODS, k, d, x.dtype, a.n_init)
    chunk = a.chunk_size or default_chunk_size(n, k, x.dtype.itemsize, n_init)
    beta_arr, tol_arr = A.scalar(beta, x.dtype), A.scalar(tol, x.dtype)
    p = (
        None
        if A.is_traced(x) or S.row_axes_of(x) is not None
        else B.plan(n, k, d, n_init, a.max_iter, B.sweep_min_k(n, d, n_init))
    )
    if p is not None:  # a small fit: the program of its size bucket (see _buckets)
        (xp, wp, given, *counts), static = B.centroid_inputs(
            p, x, a.weights, init_centers, method, a.chunk_size, progress
        )
        args = (key, xp, wp, given, beta_arr, tol_arr, *counts)
        r = _progress.run("soft_kmeans", functools.partial(_soft_kmeans.small(p.work), *args, **static), progress)
        return r._replace(
            centers=B.take_first(r.centers, k),
            weights=B.take_first(r.weights, k),
            labels=B.take_first(r.labels, n),
            history=B.take_first(r.history, a.max_iter),
        )
    static = dict(
        n_clusters=k,
        init=method,
        n_init=n_init,
        max_iter=a.max_iter,
        chunk_size=min(chunk, n),
        progress=bool(progress),
    )
    return S.call_fit(
        "soft_kmeans",
        _soft_kmeans,
        (key, x, a.weights, init_centers, beta_arr, tol_arr),
        static,
        row_args=(False, True, True, False, False, False),
        out_rows=S.row_fields(SoftKMeansResult, "labels"),
        progress=progress,
        weights_given=weights is not None,
    )


@functools.partial(jax.jit, static_argnames=("chunk_size",))
def _predict_proba(centers, pi, beta, x, *, chunk_size):
    shift = jnp.mean(centers, axis=0)
    c = centers - shift
    cc = sq_norms(c)
    log_pi = log_probabilities(pi)

    def proba(xc):
        logits = _logits(xc - shift, c, cc, log_pi, beta)
        return jnp.exp(logits - logsumexp(logits, axis=1, keepdims=True))

    return map_rows(proba, x, chunk_size)


def soft_kmeans_predict_proba(model: SoftKMeansResult, x: Any, *, chunk_size: int | None = None) -> jax.Array:
    """Responsibilities (n_samples, k) of a fitted soft k-means for data `x`.

    Args:
      model: a `SoftKMeansResult` (anything with `centers`, `weights`, `beta`).
      x: (n_samples, n_features) data.

    Example:
      >>> import jax, jaxmix
      >>> x = jaxmix.datasets.load_faithful()
      >>> r = jaxmix.soft_kmeans(jax.random.key(0), x, 2, beta=0.05)
      >>> p = jaxmix.soft_kmeans_predict_proba(r, x)
      >>> p.shape, bool(abs(p.sum(axis=1) - 1).max() < 1e-5)
      ((272, 2), True)
    """
    x = V.check_data(x)
    c = V.check_centers(model.centers, None, x.shape[1], x.dtype, name="model.centers")
    pi = A.as_float_array(model.weights, "model.weights", ndim=1).astype(x.dtype)
    if pi.shape[0] != c.shape[0]:
        raise ValueError(f"model.weights has {pi.shape[0]} entries but model.centers has {c.shape[0]} rows")
    V.check_scalar(model.beta, "model.beta", positive=True)
    chunk = V.check_chunk_size(chunk_size) or default_chunk_size(x.shape[0], c.shape[0], x.dtype.itemsize)
    return _predict_proba(c, pi, jnp.asarray(model.beta, x.dtype), x, chunk_size=min(chunk, x.shape[0]))
