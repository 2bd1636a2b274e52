"""Where mixture fits start: initial responsibilities from k-means, k-means++, random points or random
responsibilities (scikit-learn's `init_params`), or mclust's hierarchical agglomeration ("hc", with
further restarts from k-means on standardised columns: `hc_starts`); the starting centres as a program of
their own shared by every covariance type (`small_starts`), and the reseeding of collapsed components.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import logsumexp

from jaxmix.engine import arrays as A
from jaxmix.engine import collective as coll
from jaxmix.engine import random as jr
from jaxmix.engine import sharding as S
from jaxmix.engine.chunks import default_chunk_size, top_rows
from jaxmix.engine.loop import map_in_turn, weighted_mean_and_variance
from jaxmix.engine.programs import fit_jit
from jaxmix.engine.seeding import kmeans_plusplus, random_points
from jaxmix.families.params import GMMParams
from jaxmix.families.registry import covariance_model
from jaxmix.models.gmm_em import GMMStats, accumulate, weighted_log_prob
from jaxmix.models.hierarchical import HC_MAX_ROWS, hc_labels
from jaxmix.models.kmeans import choose_algorithm as _kmeans_algorithm
from jaxmix.models.kmeans_steps import _fit_single as _kmeans_fit
from jaxmix.models.kmeans_steps import assign as _kmeans_assign

KMEANS_INIT_MAX_ITER = 100


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
    than "random", computed beforehand by the `_starts` program; for "hc", the
    (rows,) starting labels (`hc_starts`; -1: the row takes no part).
    """
    if method == "hc":
        if start is None:
            raise ValueError("init='hc' needs its starting labels (gmm_starts.hc_starts)")

        def hard(xc, ids):
            r = jax.nn.one_hot(start[ids], k, dtype=xc.dtype)  # label -1: a row of zeros
            return (r if active is None else r * active), jnp.zeros((xc.shape[0],), xc.dtype)

        return accumulate(x, weights, shift, hard, ctype, k, chunk_size, with_ids=True)
    if method == "random" and active is not None:
        raise ValueError("init='random' cannot be masked (its draws depend on k); use 'kmeans' or 'k-means++'")
    if method == "random":

        def resp(xc, ids):
            u = jr.uniform(jr.fold_in(key, ids), (k,), xc.dtype)  # (c, k); row i from its own stream
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
    keys = jr.split(key, n_init) if n_init > 1 else jr.words(key)[None]

    # The restarts of one fit on a CPU run one after the other (`map_in_turn`): a vmapped k-means traces
    # ~3x longer and runs no faster on small data (see `kmeans.SEQUENTIAL_RESTARTS_MIN_SIZE`).
    # A grid's many (k, restart) starts stay vmapped: one after the other they ran ~1 s longer
    # (select on Old Faithful, 90 starts).
    one_after_another = jax.default_backend() == "cpu" and n_active.shape[0] == 1

    def per_count(n_act):
        active = jnp.arange(k) < n_act
        if n_init == 1:  # no vmap of one: less to trace (a fit with one restart)
            return start_centers(keys[0], x, weights, shift, k, init, chunk_size, active)[None]
        start = lambda kk: start_centers(kk, x, weights, shift, k, init, chunk_size, active)  # noqa: E731
        return map_in_turn(start, keys) if one_after_another else jax.vmap(start)(keys)

    if n_active.shape[0] == 1:
        return per_count(n_active[0])[None] + shift
    return jax.vmap(per_count)(n_active) + shift


def small_starts(key, xp, wp, counts, k, init, n_init):
    """`_starts` for a bucketed fit on padded data (`counts`: the k values), or None for init="random";
    for init="hc" the starting labels of `hc_starts`."""
    if init == "random":
        return None
    if init == "hc":
        return hc_starts(key, xp, wp, counts, k, n_init)
    chunk = min(default_chunk_size(xp.shape[0], k, xp.dtype.itemsize, n_init * len(counts)), xp.shape[0])
    work = xp.shape[0] * k * xp.shape[1] * n_init * len(counts)
    program = _starts.small(work)
    out = program(key, xp, wp, np.asarray(counts, np.int32), k=k, init=init, n_init=n_init, chunk_size=chunk)
    return jax.device_get(out)  # on the host: taking a count's slice compiles nothing


def check_hc_input(x) -> None:
    """init="hc" agglomerates on the host: x must be an array on one device, not traced."""
    if A.is_traced(x) or S.row_axes_of(x) is not None:
        raise ValueError("init='hc' runs its agglomeration on the host: give x as an array on one device, not traced")


def hc_starts(key, x, weights, counts, k, n_init) -> np.ndarray:
    """Starting labels of init="hc": (len(counts), n_init, rows) int32.

    Restart 0 of each count starts from mclust's partition (`hierarchical.hc_labels`: model-based
    agglomeration on SVD-scaled data, on a subsample of at most 2000 rows); restarts 1.. start from
    k-means (k-means++ seeds, `_starts` with the same keys as init="kmeans") run on standardised
    columns, each row labelled by its nearest centre in those units. No start depends on the units of
    the columns, and the restarts do not share the agglomeration's bias.
    """
    x = np.asarray(x)
    w = np.ones(x.shape[0], x.dtype) if weights is None else np.asarray(weights)
    # The subsample's seed comes from the key (only needed, and only computed, for large data).
    large = int(np.count_nonzero(w > 0)) > HC_MAX_ROWS
    seed = int(np.asarray(jr.words(key), np.uint64).sum()) if large else 0
    labels = np.empty((len(counts), n_init, x.shape[0]), np.int32)
    labels[:, 0] = hc_labels(x, tuple(int(c) for c in counts), w, seed)
    if n_init == 1:
        return labels
    total = max(float(w.sum()), np.finfo(np.float64).tiny)
    mean = (w @ x.astype(np.float64)) / total
    sd = np.sqrt((w @ (x - mean) ** 2) / total)
    xs = ((x - mean) / np.where(sd > 0, sd, 1.0)).astype(x.dtype)
    centres = np.asarray(small_starts(key, xs, w, counts, k, "kmeans", n_init))  # (m, n_init, k, d), scaled
    xx = np.sum(xs * xs, axis=1)[:, None]
    for i, c in enumerate(counts):
        for r in range(1, n_init):
            cc = centres[i, r, : int(c)]
            dist = xx - 2.0 * xs @ cc.T + np.sum(cc * cc, axis=1)[None]
            labels[i, r] = np.argmin(dist, axis=1)
    return labels


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
