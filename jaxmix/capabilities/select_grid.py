"""The compiled programs of `select`: every (k, restart) fit of one covariance type (`_select_type`),
the small-grid path that runs it in a size bucket (`_select_small`), and the degeneracy test; see
`select.py`'s docstring for the masking, the queue of fits and the degenerate fits.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from jaxmix.engine import arrays as A
from jaxmix.engine import buckets as B
from jaxmix.engine import collective as coll
from jaxmix.engine import progress as _progress
from jaxmix.engine import random as jr
from jaxmix.engine.chunks import map_rows, scan_rows
from jaxmix.engine.loop import select_best, weighted_mean_and_variance
from jaxmix.engine.programs import fit_jit
from jaxmix.engine.queue import iterate_queue
from jaxmix.families.gaussian_dense import from_dense, projection_code
from jaxmix.families.params import GMMParams
from jaxmix.families.registry import covariance_model
from jaxmix.models import gmm as G
from jaxmix.models import gmm_em as EM
from jaxmix.models import gmm_starts as ST

DEGENERATE_EPS = 100.0


def select_slots(n_fits: int) -> int:
    """Fits of a grid run side by side (`engine.queue`): on a CPU a quarter of them, at least 16 (a step
    costs in proportion to its width there); on an accelerator all of them, where a wider step costs
    about the same and a narrow queue would take more steps."""
    if jax.default_backend() != "cpu":
        return n_fits
    return min(n_fits, max(16, n_fits // 4))


def _degenerate(params: GMMParams, active: jax.Array, var: jax.Array, reg_covar: jax.Array) -> jax.Array:
    """Some active component is (numerically) singular once `reg_covar` is taken off; see the module docstring."""
    dt = params.means.dtype
    thresh = DEGENERATE_EPS * jnp.finfo(dt).eps + 0.5 * reg_covar / jnp.mean(var)
    low = covariance_model(params.covariance_type).lowest_relative_variance(params.covariances, reg_covar, var)
    return jnp.any(active & (low <= thresh))  # a shared covariance gives one value: any active component


@fit_jit(static_argnames=("covariance_type", "k_max", "init", "n_init", "max_iter", "chunk_size"))
def _select_type(
    key,
    x,
    weights,
    ks,
    tol,
    reg_covar,
    limit=None,
    n_valid=None,
    starts=None,
    projection=None,
    *,
    covariance_type,
    k_max,
    init,
    n_init,
    max_iter,
    chunk_size,
):
    """Every (k in ks, restart) fit of one covariance type; the best restart per k.

    A bucketed grid (`buckets`) passes `limit` (the iteration bound, at most
    `max_iter`, the history's length) and `n_valid` (restarts that count), and
    `starts` (len(ks), n_init, k_max, d): the starting centres of every cell's
    restarts, from the `gmm_starts._starts` program that all covariance types share; for
    covariance_type "dense", the traced `projection` of the model it fits (`gaussian_dense`)."""
    ctype = covariance_type
    d = x.shape[1]
    shift, _ = weighted_mean_and_variance(x, weights, chunk_size)
    total = coll.allsum(jnp.sum(weights))

    def col_var(acc, chunk, valid):
        xc, wc = chunk
        return acc + jnp.where(valid, wc, 0.0) @ ((xc - shift) ** 2), None

    var, _ = scan_rows(col_var, jnp.zeros((d,), x.dtype), (x, weights), chunk_size)
    var = coll.allsum(var)
    var = jnp.maximum(var / total, jnp.finfo(x.dtype).tiny)  # per-feature variance of the data
    keys = jr.split(key, n_init) if n_init > 1 else jr.words(key)[None]

    n_ks = ks.shape[0]
    # The queue of fits, largest k first (they take the most iterations): fit j is
    # k = ks[::-1][j // n_init], restart j % n_init.
    job_k = jnp.repeat(ks[::-1], n_init)
    job_keys = jnp.tile(keys, (n_ks, 1))
    job_starts = None if starts is None else starts[::-1].reshape((n_ks * n_init, *starts.shape[2:]))

    def start_params(k, key, start):
        active = jnp.arange(k_max) < k
        return G.initial_params(
            key, x, weights, shift, ctype, k_max, init, chunk_size, reg_covar, None, active, start, projection
        )

    initial = jax.vmap(start_params, in_axes=(0, 0, None if starts is None else 0))(job_k, job_keys, job_starts)

    def step(params, prev, job):
        # `G._fit_single`'s iteration (no prior, no reseeding) for fit `job`.
        active = jnp.arange(k_max) < job_k[job]
        new, stats = G.em_update(x, weights, shift, params, reg_covar, None, active, projection, chunk_size)
        objective = stats.loglik / total
        return new, objective, jnp.abs(objective - prev) < tol

    params, info = iterate_queue(step, initial, select_slots(n_ks * n_init), max_iter, x.dtype, limit)

    def by_cell(a):  # (J, ...) in queue order -> (len(ks), n_init, ...) in the order of ks
        return a.reshape((n_ks, n_init, *a.shape[1:]))[::-1]

    params, info = jax.tree.map(by_cell, (params, info))

    def score_one(k, p):
        active = jnp.arange(k_max) < k
        _, ll = G._final(x, weights, shift, p, chunk_size)
        return ll, _degenerate(p, active, var, reg_covar)

    ll, degenerate = jax.vmap(jax.vmap(score_one, in_axes=(None, 0)))(ks, params)

    def per_k(params, info, ll, degenerate):
        score = jnp.where(degenerate, -jnp.inf, ll)
        if n_valid is not None:  # padding restarts never win
            score = jnp.where(jnp.arange(n_init) < n_valid, score, -jnp.inf)
        (params, info, ll, degenerate), _ = select_best((params, info, ll, degenerate), score, minimize=False)
        return params, info, ll, degenerate

    params, info, ll, degenerate = jax.vmap(per_k)(params, info, ll, degenerate)

    def final(p):
        def per_row(xc):
            lp = EM.weighted_log_prob(xc - shift, p)
            lse = logsumexp(lp, axis=1)
            return jnp.argmax(lp, axis=1).astype(jnp.int32), jnp.max(lp, axis=1) - lse

        labels, log_max_r = map_rows(per_row, x, chunk_size)
        return labels, coll.allsum(jnp.sum(jnp.where(weights > 0, weights * log_max_r, 0.0)))

    labels, hard = jax.vmap(final)(params)
    n_pos = coll.allsum(jnp.sum(weights > 0).astype(x.dtype))
    collapsed = jax.vmap(lambda p: ST._collapsed(p.weights * total, n_pos, total))(params)
    params = dataclasses.replace(params, means=params.means + shift[None, None])
    finite = jnp.stack([jnp.all(jnp.isfinite(a), axis=tuple(range(1, a.ndim))) for a in jax.tree.leaves(params)])
    nonfinite = ~(jnp.all(finite, axis=0) & jnp.isfinite(ll))
    return {
        "params": params,
        "labels": labels,
        "log_likelihood": ll,
        "n_iter": info.n_iter,
        "converged": info.converged,
        "history": info.history,
        "nonfinite": nonfinite,
        "collapsed": collapsed,
        "degenerate": degenerate,
        "hard": hard,
        "total_weight": total,
    }


_SELECT_OUTPUTS = (
    "params",
    "labels",
    "log_likelihood",
    "n_iter",
    "converged",
    "history",
    "nonfinite",
    "collapsed",
    "degenerate",
    "hard",
    "total_weight",
)


def _select_small(
    p: B.Plan,
    key: Any,
    xp: Any,
    wp: Any,
    starts: Any,
    ks: tuple[int, ...],
    tol: Any,
    reg_covar: Any,
    ctype: str,
    init: str,
    n_init: int,
    chunk_size: int | None,
    progress: bool,
) -> dict[str, Any]:
    """One covariance type of a small grid: rows padded to their bucket (`xp`, `wp`), `max_iter`
    traced, the restarts' starting centres given (`starts`, from `gmm_starts.small_starts`).

    k, the k values and the restarts keep their exact sizes: a grid already
    masks k, and padding restarts would add whole fits to the queue. A closed-form
    covariance model runs as full matrices (`gaussian_dense`): the types of a
    grid then share one program.
    """
    d = xp.shape[1]
    k_max = max(ks)
    asked = ctype
    code = projection_code(asked, p.rows, k_max, d)
    ctype = asked if code is None else "dense"
    chunk = chunk_size or G.gmm_chunk_size(p.rows, k_max, d, ctype, xp.dtype.itemsize, len(ks) * n_init)
    static = dict(
        covariance_type=ctype,
        k_max=k_max,
        init=init,
        n_init=n_init,
        max_iter=p.history,
        chunk_size=min(chunk, p.rows),
    )
    args = (key, xp, wp, np.asarray(ks, np.int32), A.scalar(tol, xp.dtype), A.scalar(reg_covar, xp.dtype))
    projection = None if code is None else np.int32(code)
    run = functools.partial(
        _select_type.small(G.gmm_work(p.work, ctype, d)),
        *args,
        np.int32(p.max_iter),
        None,
        starts,
        projection,
        **static,
    )
    out = jax.device_get(_progress.run(f"select {asked}", run, progress))
    if code is not None:
        out["params"] = jax.device_get(from_dense(out["params"], asked))
    out["labels"] = out["labels"][:, : p.n]
    out["history"] = out["history"][:, : p.max_iter]
    return out
