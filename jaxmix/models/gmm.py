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

from jaxmix.engine import buckets as B
from jaxmix.engine import collective as coll
from jaxmix.engine import progress as _progress
from jaxmix.engine import sharding as S
from jaxmix.engine import validation as V
from jaxmix.engine.chunks import MIN_CHUNK_ROWS, default_chunk_size, map_rows, scan_rows, top_rows
from jaxmix.engine.distances import log_probabilities, responsibilities
from jaxmix.engine.loop import iterate, select_best, weighted_mean_and_variance
from jaxmix.engine.programs import fit_jit
from jaxmix.engine.seeding import kmeans_plusplus, random_points
from jaxmix.families.params import GMMParams, GMMPrior
from jaxmix.families.registry import check_covariance_type, covariance_model
from jaxmix.models.kmeans import _fit_single as _kmeans_fit
from jaxmix.models.kmeans import assign as _kmeans_assign
from jaxmix.models.kmeans import choose_algorithm as _kmeans_algorithm

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")
KMEANS_INIT_MAX_ITER = 100
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
) -> GMMParams:
    """(MAP-)EM update; shifted coordinates in, shifted out.

    `active`: (k,) bool, the components that exist (a masked fit, no prior):
    the others get weight 0 (so they take no responsibility) and a unit
    covariance, and count nowhere. `previous`: the covariances before this
    step, where an iterative M-step starts (see `CovarianceModel.covariance`).
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
        cov = model.covariance(model.scatter(stats.second, n, means), nk, nk_safe, previous)
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


def _nearest_one_hot(centers, active=None):
    def resp(xc):
        # Data are already shifted; assign() takes a shift, give it zero.
        zero = jnp.zeros((xc.shape[1],), xc.dtype)
        labels, _ = _kmeans_assign(xc, zero, centers, xc.shape[0], exact=False, active=active)
        return jax.nn.one_hot(labels, centers.shape[0], dtype=xc.dtype), jnp.zeros((xc.shape[0],), xc.dtype)

    return resp


def _initial_stats(key, x, weights, shift, ctype, k, method, chunk_size, active=None, start=None):
    """Statistics of the initial responsibilities (scikit-learn's init_params).

    `active`: (k,) bool mask of a masked fit: the statistics equal those of
    a fit with `sum(active)` components (same key), zero for the others.
    `start`: the (k, d) starting centres (data coordinates) of a method other
    than "random", computed beforehand by the `_starts` program.
    """
    if method == "random" and active is not None:
        raise ValueError("init='random' cannot be masked (its draws depend on k); use 'kmeans' or 'k-means++'")
    if method == "random":

        def resp(xc, ids):
            u = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i), (k,), dtype=xc.dtype))(ids)
            return u / jnp.sum(u, axis=1, keepdims=True), jnp.zeros((xc.shape[0],), xc.dtype)

        return accumulate(x, weights, shift, resp, ctype, k, chunk_size, with_ids=True)
    if start is None:
        centers = start_centers(key, x, weights, shift, k, method, chunk_size, active)
    else:
        centers = start - shift
    return accumulate(x, weights, shift, _nearest_one_hot(centers, active), ctype, k, chunk_size)


def start_centers(key, x, weights, shift, k, method, chunk_size, active=None):
    """The (k, d) starting centres (about the shift) of "kmeans", "k-means++" or "random_from_data"."""
    if method == "kmeans":
        (centers, _, _), _ = _kmeans_fit(
            key,
            x,
            weights,
            shift,
            jnp.zeros((), x.dtype),  # with tol 0 k-means stops when no label changes
            None,
            n_clusters=k,
            init="k-means++",
            max_iter=KMEANS_INIT_MAX_ITER,
            chunk_size=chunk_size,
            algorithm="lloyd" if active is not None else _kmeans_algorithm("auto", x.shape[0], k, KMEANS_INIT_MAX_ITER),
            active=active,
        )
    elif method == "k-means++":
        n_active = None if active is None else jnp.sum(active.astype(jnp.int32))
        centers = kmeans_plusplus(key, x, shift, weights, k, chunk_size, n_active)
    else:  # random_from_data (Gumbel top-k, sorted: the first k are the same for any k)
        centers = random_points(key, x, shift, weights, k)
    return centers


@fit_jit(static_argnames=("k", "init", "n_init", "chunk_size"))
def _starts(key, x, weights, n_active, *, k, init, n_init, chunk_size):
    """The starting centres of a small fit or grid, as their own program: (m, n_init, k, d).

    For each count of active components in `n_active` (m,) and each restart
    key (`key` split in `n_init`, as the fitting programs split it), the
    centres of `init` in the data's coordinates. The covariance type plays no
    part, so one compiled program (and one run) serves every covariance type
    of a grid or a sweep, and the mixture programs compile without a k-means
    inside: about half of a small GMM program's trace, lowering and compile
    (bench/cold.py).
    """
    shift, _ = weighted_mean_and_variance(x, weights, chunk_size)
    keys = jax.random.split(key, n_init) if n_init > 1 else key[None]

    def per_count(n_act):
        active = jnp.arange(k) < n_act
        return jax.vmap(lambda kk: start_centers(kk, x, weights, shift, k, init, chunk_size, active))(keys)

    return jax.vmap(per_count)(n_active) + shift


def small_starts(key, xp, wp, counts, k, init, n_init):
    """`_starts` for a bucketed fit on padded data (`counts`: the k values), or None for init="random"."""
    if init == "random":
        return None
    chunk = min(default_chunk_size(xp.shape[0], k, xp.dtype.itemsize, n_init * len(counts)), xp.shape[0])
    work = xp.shape[0] * k * xp.shape[1] * n_init * len(counts)
    program = _starts.small(work)
    out = program(key, xp, wp, np.asarray(counts, np.int32), k=k, init=init, n_init=n_init, chunk_size=chunk)
    return jax.device_get(out)  # on the host: taking a count's slice compiles nothing


def _collapsed(n: jax.Array, n_eff: jax.Array, total: jax.Array) -> jax.Array:
    """Less than one average sample's worth of responsibility."""
    return n * n_eff / total < 1.0


def _reseed_collapsed(x, weights, shift, params: GMMParams, new: GMMParams, stats: GMMStats, chunk_size):
    """Move collapsed components onto the worst-explained samples (inside jit).

    A component holding less than one sample's worth of responsibility gets
    its mean set to one of the samples with the lowest log-likelihood under
    the parameters of this E-step, the average covariance of the live
    components (the shared one for "tied") and a weight of 1/k before
    renormalising, so that the next E-step gives it a real share. Runs a data pass only when some component collapsed: the pass
    sits in a `while_loop` of at most one trip, which under `vmap` is skipped
    when no member needs it.
    """
    k = params.means.shape[0]
    ctype = params.covariance_type
    total = coll.allsum(jnp.sum(weights))
    n_pos = coll.allsum(jnp.sum(weights > 0).astype(x.dtype))
    collapsed = _collapsed(stats.resp, n_pos, total)

    def reseed(p: GMMParams) -> GMMParams:
        def badness(chunk, valid):
            xc, wc = chunk
            lse = logsumexp(weighted_log_prob(xc - shift, params), axis=1)
            return jnp.where(valid & (wc > 0), -lse, -jnp.inf)

        _, worst = top_rows(badness, (x, weights), k, chunk_size)
        rank = jnp.cumsum(collapsed) - 1  # the r-th collapsed component takes the r-th worst row
        seeds = coll.take_rows(x, worst[jnp.clip(rank, 0, k - 1)]) - shift
        means = jnp.where(collapsed[:, None], seeds, p.means)
        w = jnp.where(collapsed, 1.0 / k, p.weights)
        w = w / jnp.sum(w)
        live = jnp.where(collapsed, 0.0, p.weights)
        live = live / jnp.maximum(jnp.sum(live), jnp.finfo(x.dtype).tiny)
        if covariance_model(ctype).shared:
            cov = p.covariances
        else:
            expand = (slice(None),) + (None,) * (p.covariances.ndim - 1)
            typical = jnp.sum(live[expand] * p.covariances, axis=0)
            cov = jnp.where(collapsed[expand], typical[None], p.covariances)
        return GMMParams.from_covariances(w, means, cov, ctype)

    new, _ = lax.while_loop(lambda s: s[1], lambda s: (reseed(s[0]), jnp.bool_(False)), (new, jnp.any(collapsed)))
    return new, jnp.any(collapsed)


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
):
    if active is not None and (reinit or any(o is not None for o in overrides)):
        raise ValueError("a masked fit takes no reinit_collapsed and no initial parameters")
    w0, m0, p0 = overrides
    if w0 is not None and m0 is not None and p0 is not None:
        # Everything given: no initial responsibilities to compute (p0 holds
        # the covariances of the validated precisions_init).
        params = GMMParams.from_covariances(w0, m0 - shift, p0, ctype)
    else:
        stats0 = _initial_stats(key, x, weights, shift, ctype, k, init, chunk_size, active, start)
        params = m_step(stats0, ctype, reg_covar, prior, active)
        if w0 is not None:
            params = dataclasses.replace(params, weights=w0)
        if m0 is not None:
            params = dataclasses.replace(params, means=m0 - shift)
        if p0 is not None:
            params = GMMParams.from_covariances(params.weights, params.means, p0, ctype)
    total = coll.allsum(jnp.sum(weights))

    def step(params, prev):
        stats = e_step(x, weights, shift, params, chunk_size)
        new = m_step(stats, ctype, reg_covar, prior, active, params.covariances)
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
    and `starts` (n_init, k, d), each restart's starting centres from the `_starts` program."""
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
        params, info, _ = best_of(jax.random.split(key, n_init), valid, starts)
    else:
        # Many restarts: vmapped groups run one after the other (lax.map), so
        # memory follows the group, not n_init; the winner is the same.
        n_groups = -(-n_init // restart_group)
        padded = n_groups * restart_group
        keys = jax.random.split(key, n_init)
        keys = jnp.concatenate([keys, keys[: padded - n_init]]) if padded > n_init else keys
        valid = jnp.arange(padded) < (n_init if n_valid is None else n_valid)
        grouped = None
        if starts is not None:
            starts = jnp.concatenate([starts, starts[: padded - n_init]]) if padded > n_init else starts
            grouped = starts.reshape((n_groups, restart_group, *starts.shape[1:]))
        params, info, ll = lax.map(
            lambda g: best_of(*g),
            (keys.reshape((n_groups, restart_group)), valid.reshape((n_groups, restart_group)), grouped),
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
    """A small fit in the program of its size bucket (see `buckets`), trimmed back to its sizes."""
    key, x, w, tol, reg_covar, prior, overrides = args
    ctype = static["covariance_type"]
    d = x.shape[1]
    group = restart_group_size(p.rows, p.k_program, d, ctype, x.dtype.itemsize, p.n_init_program)
    xp, wp = B.pad_rows(x, w, p.rows)
    static = dict(
        static,
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
        **static,
    )
    r = _progress.run("gmm", fit, progress)
    k = p.k
    return r._replace(
        params=r.params.first_components(k, B.take_first),
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
    covariance_type: Any, init: Any, reg_covar: Any, n_features: int | None = None, prior: bool = False
) -> None:
    """The options every GMM entry point (gmm, gmm_batch) checks the same way."""
    check_covariance_type(covariance_type, n_features, prior)
    if not isinstance(init, str) or init not in INIT_METHODS:
        raise ValueError(
            f"init must be one of {INIT_METHODS}, got {init!r} (give arrays as weights_init, means_init, precisions_init)"
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
        "random" (uniform random responsibilities). An M-step turns them into
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
    check_options(covariance_type, init, reg_covar, d, prior not in (None, False))
    overrides = (
        None if weights_init is None else V.check_mixture_weights(weights_init, k, x.dtype),
        None if means_init is None else V.check_centers(means_init, k, d, x.dtype, name="means_init"),
        None if precisions_init is None else V.check_precisions(precisions_init, covariance_type, k, d, x.dtype),
    )
    if prior is True:
        prior = GMMPrior()
    elif prior is False:
        prior = None
    if prior is not None:
        prior = V.check_prior(prior, covariance_type, d, x.dtype, x=x)
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
    args = (key, x, w, V.scalar(tol, x.dtype), V.scalar(reg_covar, x.dtype), prior, overrides)
    maskable = prior is None and not reinit_collapsed and init != "random" and all(o is None for o in overrides)
    exact = not maskable or V.is_traced(x) or S.row_axes_of(x) is not None
    p = None if exact else B.plan(n, k, d, n_init, max_iter)
    if p is not None:
        return _bucketed(p, args, static, a.chunk_size, progress)
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
