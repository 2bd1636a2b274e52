"""Gaussian mixtures fitted by EM (or MAP-EM) on sufficient statistics.

E-step: `log r_ik = log pi_k + log N(x_i; mu_k, Sigma_k) - logsumexp_k(...)`,
per chunk of rows; statistics `N_k = sum_i w_i r_ik`, `S_k = sum_i w_i r_ik x_i`
and second moments, all about a shift (the weighted data mean) so float32
survives data far from the origin. M-step in closed form, `reg_covar` added
to the diagonal. The objective is the mean log-likelihood per unit weight;
it never decreases (without a prior).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import logsumexp

from jaxmix.engine import arrays as A
from jaxmix.engine import buckets as B
from jaxmix.engine import collective as coll
from jaxmix.engine import parameter_checks as PC
from jaxmix.engine import progress as _progress
from jaxmix.engine import random as jr
from jaxmix.engine import sharding as S
from jaxmix.engine import validation as V
from jaxmix.engine.chunks import MIN_CHUNK_ROWS, default_chunk_size, map_rows
from jaxmix.engine.loop import iterate, select_best, weighted_mean_and_variance
from jaxmix.engine.programs import fit_jit
from jaxmix.families.gaussian_dense import from_dense, projection_code
from jaxmix.families.params import GMMParams, GMMPrior
from jaxmix.families.registry import check_covariance_type, covariance_model
from jaxmix.models.gmm_em import _resolve_prior, e_step, m_step, weighted_log_prob
from jaxmix.models.gmm_starts import (
    _collapsed,
    _initial_stats,
    _reseed_collapsed,
    check_hc_input,
    hc_starts,
    small_starts,
)

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")
# The fits of one data set also start from mclust's agglomeration (`gmm_starts.hc_starts`).
FIT_INIT_METHODS = (*INIT_METHODS, "hc")


GMM_BLOCK_BYTES = 4 * 2**20


class GMMResult(NamedTuple):
    """A fitted Gaussian mixture and its diagnostics."""

    params: GMMParams  # weights, means, covariances, precisions_cholesky
    labels: jax.Array  # (n_samples,) int32, most responsible component
    log_likelihood: jax.Array  # () mean log-likelihood per unit sample weight, at `params`
    n_iter: jax.Array  # () int32 EM iterations of the winning restart
    converged: jax.Array  # () bool, True only if the change fell below tol
    history: jax.Array  # (max_iter,) mean log-likelihood after each E-step; past n_iter repeats the last
    nonfinite: jax.Array  # () bool, True if NaN/inf reached the result
    collapsed: jax.Array  # (k,) bool, component holds less than one sample's worth of weight


def em_update(x, weights, shift, params, reg_covar, prior, active, projection, chunk_size):
    """One EM iteration from `params`: the E-step's statistics and the M-step's new parameters,
    `(new, stats)`; `stats.loglik` is the log-likelihood at `params`. Shared by `_fit_single` and
    `select`'s queue of fits."""
    stats = e_step(x, weights, shift, params, chunk_size)
    new = m_step(stats, params.covariance_type, reg_covar, prior, active, params.covariances, projection)
    return new, stats


def initial_params(key, x, weights, shift, ctype, k, init, chunk_size, reg_covar, prior, active, start, projection):
    """The parameters a fit starts from: an M-step on the initial responsibilities of `init`."""
    stats0 = _initial_stats(key, x, weights, shift, ctype, k, init, chunk_size, active, start)
    return m_step(stats0, ctype, reg_covar, prior, active, projection=projection)


def _fit_single(
    key,
    x,
    weights,
    shift,
    tol,
    reg_covar,
    prior,
    overrides,
    *,
    ctype,
    k,
    init,
    max_iter,
    chunk_size,
    reinit,
    progress=False,
    active=None,
    limit=None,
    start=None,
    projection=None,
):
    if active is not None and (reinit or any(o is not None for o in overrides)):
        raise ValueError("a masked fit takes no reinit_collapsed and no initial parameters")
    w0, m0, p0 = overrides
    if w0 is not None and m0 is not None and p0 is not None:
        # Everything given: no initial responsibilities to compute (p0 holds
        # the covariances of the validated precisions_init).
        params = GMMParams.from_covariances(w0, m0 - shift, p0, ctype)
    else:
        params = initial_params(
            key, x, weights, shift, ctype, k, init, chunk_size, reg_covar, prior, active, start, projection
        )
        if w0 is not None:
            params = dataclasses.replace(params, weights=w0)
        if m0 is not None:
            params = dataclasses.replace(params, means=m0 - shift)
        if p0 is not None:
            params = GMMParams.from_covariances(params.weights, params.means, p0, ctype)
    total = coll.allsum(jnp.sum(weights))

    def step(params, prev):
        new, stats = em_update(x, weights, shift, params, reg_covar, prior, active, projection, chunk_size)
        reseeded = jnp.bool_(False)
        if reinit:
            new, reseeded = _reseed_collapsed(x, weights, shift, params, new, stats, chunk_size)
        objective = stats.loglik / total
        return new, objective, (jnp.abs(objective - prev) < tol) & ~reseeded

    return iterate(step, params, max_iter, x.dtype, progress=progress, minimize=False, limit=limit)


def _final(x, weights, shift, params: GMMParams, chunk_size: int):
    """Labels and mean log-likelihood at the final parameters."""

    def per_row(xc):
        lp = weighted_log_prob(xc - shift, params)
        return jnp.argmax(lp, axis=1).astype(jnp.int32), logsumexp(lp, axis=1)

    labels, lse = map_rows(per_row, x, chunk_size)
    return labels, coll.allsum(jnp.sum(jnp.where(weights > 0, weights * lse, 0.0))) / coll.allsum(jnp.sum(weights))


@fit_jit(
    static_argnames=(
        "covariance_type",
        "n_components",
        "init",
        "n_init",
        "max_iter",
        "chunk_size",
        "reinit_collapsed",
        "progress",
        "restart_group",
    )
)
def _gmm(
    key,
    x,
    weights,
    tol,
    reg_covar,
    prior,
    overrides,
    n_active=None,
    limit=None,
    n_valid=None,
    starts=None,
    projection=None,
    *,
    covariance_type,
    n_components,
    init,
    n_init,
    max_iter,
    chunk_size,
    reinit_collapsed,
    progress=False,
    restart_group=None,
):
    """The GMM program; a bucketed fit passes `n_active`, `limit` and `n_valid` as in `kmeans`,
    `starts` (n_init, k, d), each restart's starting centres from the `_starts` program, and
    for covariance_type "dense" the traced `projection` of the model it fits (`gaussian_dense`)."""
    ctype, k = covariance_type, n_components
    shift, _ = weighted_mean_and_variance(x, weights, chunk_size)
    resolved = None if prior is None else _resolve_prior(prior, x, weights, shift, ctype, k, chunk_size)
    fit = functools.partial(
        _fit_single,
        ctype=ctype,
        k=k,
        init=init,
        max_iter=max_iter,
        chunk_size=chunk_size,
        reinit=reinit_collapsed,
        progress=progress,
        active=None if n_active is None else jnp.arange(k) < n_active,
        limit=limit,
        projection=projection,
    )

    def best_of(keys, valid, starts):
        """The best of a vmapped group of restarts (`valid` masks padding keys)."""
        all_params, all_info = jax.vmap(
            lambda kk, st: fit(kk, x, weights, shift, tol, reg_covar, resolved, overrides, start=st)
        )(keys, starts)
        final_ll = jax.vmap(lambda p: _final(x, weights, shift, p, chunk_size)[1])(all_params)
        final_ll = jnp.where(valid, final_ll, -jnp.inf)
        (params, info), idx = select_best((all_params, all_info), final_ll, minimize=False)
        return params, info, final_ll[idx]

    if n_init == 1:
        start = None if starts is None else starts[0]
        params, info = fit(key, x, weights, shift, tol, reg_covar, resolved, overrides, start=start)
    elif restart_group is None or restart_group >= n_init:
        valid = jnp.ones((n_init,), bool) if n_valid is None else jnp.arange(n_init) < n_valid
        params, info, _ = best_of(jr.split(key, n_init), valid, starts)
    else:
        # Many restarts: vmapped groups run one after the other (lax.map), so
        # memory follows the group, not n_init; the winner is the same.
        n_groups = -(-n_init // restart_group)
        padded = n_groups * restart_group
        keys = jr.split(key, n_init)
        keys = jnp.concatenate([keys, keys[: padded - n_init]]) if padded > n_init else keys
        valid = jnp.arange(padded) < (n_init if n_valid is None else n_valid)
        grouped = None
        if starts is not None:
            starts = jnp.concatenate([starts, starts[: padded - n_init]]) if padded > n_init else starts
            grouped = starts.reshape((n_groups, restart_group, *starts.shape[1:]))
        params, info, ll = lax.map(
            lambda g: best_of(*g),
            (
                keys.reshape((n_groups, restart_group, *keys.shape[1:])),
                valid.reshape((n_groups, restart_group)),
                grouped,
            ),
        )
        (params, info), _ = select_best((params, info), ll, minimize=False)
    labels, ll = _final(x, weights, shift, params, chunk_size)
    n_pos = coll.allsum(jnp.sum(weights > 0).astype(x.dtype))
    total = coll.allsum(jnp.sum(weights))
    collapsed = _collapsed(params.weights * total, n_pos, total)
    out = dataclasses.replace(params, means=params.means + shift)
    leaves = jax.tree_util.tree_leaves(out)
    nonfinite = ~(jnp.all(jnp.array([jnp.all(jnp.isfinite(a)) for a in leaves])) & jnp.isfinite(ll))
    return GMMResult(out, labels, ll, info.n_iter, info.converged, info.history, nonfinite, collapsed)


def _bucketed(p: B.Plan, args: tuple[Any, ...], static: dict[str, Any], chunk: int | None, progress: bool) -> GMMResult:
    """A small fit in the program of its size bucket (see `buckets`), trimmed back to its sizes.

    A closed-form covariance model on small data runs as full matrices
    (`gaussian_dense`): one program then serves every such model."""
    key, x, w, tol, reg_covar, prior, overrides = args
    asked = static["covariance_type"]
    d = x.shape[1]
    code = projection_code(asked, p.rows, p.k_program, d)
    ctype = asked if code is None else "dense"
    group = restart_group_size(p.rows, p.k_program, d, ctype, x.dtype.itemsize, p.n_init_program)
    xp, wp = B.pad_rows(x, w, p.rows)
    static = dict(
        static,
        covariance_type=ctype,
        n_components=p.k_program,
        n_init=p.n_init_program,
        max_iter=p.history,
        chunk_size=min(chunk or gmm_chunk_size(p.rows, p.k_program, d, ctype, x.dtype.itemsize, group), p.rows),
        restart_group=None if group >= p.n_init_program else group,
    )
    counts = (np.int32(p.k), np.int32(p.max_iter), np.int32(p.n_init))
    starts = small_starts(key, xp, wp, [p.k], p.k_program, static["init"], p.n_init_program)
    fit = functools.partial(
        _gmm.small(gmm_work(p.work, ctype, d)),
        key,
        xp,
        wp,
        tol,
        reg_covar,
        prior,
        overrides,
        *counts,
        None if starts is None else starts[0],
        None if code is None else np.int32(code),
        **static,
    )
    r = _progress.run("gmm", fit, progress)
    k = p.k
    params = r.params.first_components(k, B.take_first)
    return r._replace(
        params=params if code is None else from_dense(params, asked),
        labels=B.take_first(r.labels, p.n),
        history=B.take_first(r.history, p.max_iter),
        collapsed=B.take_first(r.collapsed, k),
    )


GMM_PAIR_COST = 16  # work units of an exp + logsumexp share per (row, component), vs 1 per multiply-add


def gmm_work(distance_work: int, covariance_type: str, d: int) -> int:
    """Work units per E-step from k-means' `n k d` (`buckets.Plan.work`): full covariances
    whiten every row per component (`n k d^2`), a tied one once per row (`n (k + d) d`), and
    every (row, component) pair pays an exp and its share of a logsumexp (`GMM_PAIR_COST`).

    Without that per-pair term a low-dimensional grid (d = 2, `select` with 50 restarts per
    type) counted as tiny, compiled at LLVM level 0, and ran ~5x slower per iteration
    (2.4 s vs 0.4 s for `select` on 300 x 2, spherical; measured on a 2-core CPU).
    """
    pairs = distance_work // max(d, 1)
    return pairs * (covariance_model(covariance_type).pair_work(d) + GMM_PAIR_COST)


def restart_group_size(n: int, k: int, d: int, covariance_type: str, itemsize: int, n_init: int) -> int:
    """Restarts vmapped together: as many as keep the E-step's blocks near `GMM_BLOCK_BYTES`.

    The blocks shrink with the number of vmapped restarts down to
    `MIN_CHUNK_ROWS` rows each; past that, more restarts would grow memory
    with `n_init`, so they run in groups, one group after the other.
    """
    rows = min(n, MIN_CHUNK_ROWS)
    return max(1, min(n_init, GMM_BLOCK_BYTES // max(1, rows * _block_width(covariance_type, k, d) * itemsize)))


def _block_width(covariance_type: str, k: int, d: int) -> int:
    """Values per row in the widest block of an E-step: k*d (full), d*d (second moments), k."""
    return covariance_model(covariance_type).block_width(k, d)


def gmm_chunk_size(n: int, k: int, d: int, covariance_type: str, itemsize: int, n_batch: int = 1) -> int:
    """Rows per chunk: the widest per-row block is k*d (full E-step) or d*d (full second moments).

    Blocks are kept near 4 MiB: on XLA:CPU an E-step with blocks of 4k-8k
    rows ran ~15% faster than with 16k (W4: 200,000 x 16, k = 16).
    """
    width = _block_width(covariance_type, k, d)
    rows = GMM_BLOCK_BYTES // max(1, width * itemsize * n_batch)
    return min(default_chunk_size(n, width, itemsize, n_batch), max(MIN_CHUNK_ROWS, rows))


def check_options(
    covariance_type: Any,
    init: Any,
    reg_covar: Any,
    n_features: int | None = None,
    prior: bool = False,
    inits: tuple[str, ...] = INIT_METHODS,
) -> None:
    """The options every GMM entry point (gmm, gmm_batch) checks the same way."""
    check_covariance_type(covariance_type, n_features, prior)
    if not isinstance(init, str) or init not in inits:
        raise ValueError(
            f"init must be one of {inits}, got {init!r} (give arrays as weights_init, means_init, precisions_init)"
        )
    V.check_scalar(reg_covar, "reg_covar", nonnegative=True)


def gmm(
    key: jax.Array,
    x: Any,
    n_components: int,
    *,
    covariance_type: str = "full",
    init: str = "kmeans",
    n_init: int = 1,
    max_iter: int = 100,
    tol: float = 1e-3,
    reg_covar: float = 1e-6,
    weights: Any = None,
    prior: GMMPrior | bool | None = None,
    weights_init: Any = None,
    means_init: Any = None,
    precisions_init: Any = None,
    reinit_collapsed: bool = False,
    chunk_size: int | None = None,
    progress: bool = False,
) -> GMMResult:
    """Fit a Gaussian mixture by EM (MAP-EM with `prior`).

    Args:
      key: a JAX PRNG key, used by the initialisation.
      x: (n_samples, n_features) data.
      n_components: number of components k.
      covariance_type: "full", "tied", "diag" or "spherical" (scikit-learn's shapes).
      init: how initial responsibilities are made, as scikit-learn's `init_params`:
        "kmeans" (jaxmix's k-means from k-means++, hard labels), "k-means++" and
        "random_from_data" (seeds, then each sample to its nearest seed),
        "random" (uniform random responsibilities), or "hc": mclust's start, the
        partition of model-based hierarchical agglomeration on SVD-scaled data
        (Fraley 1998; on 2000 sampled rows when n is larger) for the first
        restart, k-means on standardised columns for the others (no start then
        depends on the units of the columns). An M-step turns them into
        parameters; `weights_init`, `means_init`, `precisions_init` then override.
      n_init: restarts run as one vmap; the best finite final log-likelihood wins.
        Hundreds are fine: past what keeps the row blocks near 4 MiB they
        run in vmapped groups one after the other, so memory stays bounded.
        Under vmap every restart of a group runs until the group's slowest
        stops, at most `max_iter` iterations.
      max_iter: most EM iterations per restart.
      tol: stop when the mean log-likelihood changes by less than this (traced).
      reg_covar: added to the diagonal of every covariance (traced), >= 0.
      weights: (n_samples,) non-negative sample weights; 0 removes a row.
      prior: None for maximum likelihood; True or a `GMMPrior` for MAP-EM with
        a conjugate prior (defaults as in mclust's `priorControl`).
      weights_init: (k,) initial mixing weights, positive, summing to 1.
      means_init: (k, d) initial means.
      precisions_init: initial precision matrices in the covariance type's shape
        (scikit-learn's `precisions_init`), positive definite.
      reinit_collapsed: re-seed, inside the compiled loop, any component that
        holds less than one sample's worth of weight, from the worst-explained
        samples (the log-likelihood may then drop at that iteration). Whether
        or not, collapsed components never produce NaN and are reported in
        `collapsed`.
      chunk_size: rows per block; default keeps blocks near 4 MiB.
      progress: print the EM iteration count and the mean log-likelihood to
        stderr while the fit runs (as in `kmeans`; nothing for fits done
        within about a second; with restarts, the largest count and the best
        log-likelihood). Static: `progress=False` compiles no callback.

    Returns:
      A `GMMResult`: `params` (a `GMMParams`), `labels`, `log_likelihood`,
      `n_iter`, `converged`, `history`, `nonfinite`, `collapsed`.

    Example:
      >>> import jax, jaxmix
      >>> x = jaxmix.datasets.load_faithful()
      >>> g = jaxmix.gmm(jax.random.key(0), x, 2, n_init=3)
      >>> g.params.covariances.shape, bool(g.converged)
      ((2, 2, 2), True)
    """
    V.refuse_reverse_mode(
        "jaxmix.gmm",
        "Differentiate the converged fit with jaxmix.gmm_fixed_point(jax.lax.stop_gradient(fit.params), x) "
        "(implicit differentiation of the fixed point), or the toolbox (score, log_prob) at fixed parameters.",
        x,
        weights,
        reg_covar,
    )
    a = V.check_fit_args(
        key,
        x,
        n_components,
        weights=weights,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        chunk_size=chunk_size,
        name="n_components",
    )
    x, w, k, n_init, max_iter = a.x, a.weights, a.n_clusters, a.n_init, a.max_iter
    n, d = x.shape
    check_options(covariance_type, init, reg_covar, d, prior not in (None, False), FIT_INIT_METHODS)
    if init == "hc":
        check_hc_input(x)
    overrides = (
        None if weights_init is None else PC.check_mixture_weights(weights_init, k, x.dtype),
        None if means_init is None else V.check_centers(means_init, k, d, x.dtype, name="means_init"),
        None if precisions_init is None else PC.check_precisions(precisions_init, covariance_type, k, d, x.dtype),
    )
    if prior is True:
        prior = GMMPrior()
    elif prior is False:
        prior = None
    if prior is not None:
        prior = PC.check_prior(prior, covariance_type, d, x.dtype, x=x)
    group = restart_group_size(n, k, d, covariance_type, x.dtype.itemsize, n_init)
    chunk = a.chunk_size or gmm_chunk_size(n, k, d, covariance_type, x.dtype.itemsize, group)
    static = dict(
        covariance_type=covariance_type,
        n_components=k,
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        chunk_size=min(chunk, n),
        reinit_collapsed=bool(reinit_collapsed),
        progress=bool(progress),
        restart_group=None if group >= n_init else group,
    )
    args: tuple[Any, ...] = (key, x, w, A.scalar(tol, x.dtype), A.scalar(reg_covar, x.dtype), prior, overrides)
    maskable = prior is None and not reinit_collapsed and init != "random" and all(o is None for o in overrides)
    exact = not maskable or A.is_traced(x) or S.row_axes_of(x) is not None
    p = None if exact else B.plan(n, k, d, n_init, max_iter)
    if p is not None:
        return _bucketed(p, args, static, a.chunk_size, progress)
    if init == "hc":  # x is on one device (checked above): the program with its starting labels
        labels = hc_starts(key, x, w, [k], k, n_init)[0]
        args = (*args, None, None, None, jnp.asarray(labels), None)
    return S.call_fit(
        "gmm",
        _gmm,
        args,
        static,
        row_args=(False, True, True, False, False, False, False),
        out_rows=S.row_fields(GMMResult, "labels"),
        progress=progress,
        weights_given=weights is not None,
    )
