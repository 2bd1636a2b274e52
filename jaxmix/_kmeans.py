"""k-means by Lloyd's algorithm, as an EM loop on sufficient statistics.

E-step: each row goes to its nearest centre (one GEMM per chunk); the
statistics are the weighted counts `N_k`, sums `S_k` and the inertia
`J = sum_i w_i ||x_i - m_{k_i}||^2`. M-step: `m_k = S_k / N_k`. J is the
Lyapunov function of the lecture: it never increases from one iteration to
the next.

All work happens on centred coordinates `x - shift` (shift = the weighted
data mean) so that distances by GEMM keep their precision in float32 for
data far from the origin; centres are shifted back on output.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmix import _validation as V
from jaxmix._chunks import default_chunk_size, map_rows, scan_rows, top_rows
from jaxmix._distances import min_argmin, partial_sq_distances, sq_norms
from jaxmix._engine import iterate, select_best, weighted_mean_and_variance
from jaxmix._seeding import initial_centers

INIT_METHODS = ("k-means++", "random")


class KMeansResult(NamedTuple):
    """A fitted k-means model and its diagnostics."""

    centers: jax.Array  # (n_clusters, n_features)
    labels: jax.Array  # (n_samples,) int32, nearest centre of each row
    inertia: jax.Array  # () sum_i w_i ||x_i - centers[labels_i]||^2
    n_iter: jax.Array  # () int32, Lloyd iterations run by the winning restart
    converged: jax.Array  # () bool, True only if a stopping criterion was met
    history: jax.Array  # (max_iter,) J per iteration; entries past n_iter repeat the last
    nonfinite: jax.Array  # () bool, True if NaN/inf reached the result


class KMeansStats(NamedTuple):
    """Sufficient statistics of one E-step, summed over rows."""

    counts: jax.Array  # (k,) sum of weights assigned to each cluster
    sums: jax.Array  # (k, d) weighted sum of (x - shift) per cluster
    inertia: jax.Array  # () weighted sum of squared distances to the nearest centre


def _zero_stats(k: int, d: int, dtype: Any) -> KMeansStats:
    return KMeansStats(jnp.zeros((k,), dtype), jnp.zeros((k, d), dtype), jnp.zeros((), dtype))


def _nearest(
    xc: jax.Array, centers: jax.Array, centers_sq: jax.Array, exact: bool = False
) -> tuple[jax.Array, jax.Array]:
    """Nearest centre and squared distance to it for a chunk of centred rows.

    The GEMM expansion `||x||^2 - 2 x.m + ||m||^2` picks the centre and, in
    the loop, gives the distance. It loses about eps * ||x||^2 to
    cancellation, which is all of J for clusters much tighter than the
    data's spread; `exact=True` recomputes `||x - m||^2` directly (a gather
    of the centres, which on XLA:CPU doubles the cost of an E-step, so it is
    used for the reported inertia only).
    """
    m, lab = min_argmin(partial_sq_distances(xc, centers, centers_sq))
    if exact:
        return lab, sq_norms(xc - centers[lab])
    return lab, jnp.maximum(m + sq_norms(xc), 0.0)


def e_step(x: jax.Array, weights: jax.Array, shift: jax.Array, centers: jax.Array, chunk_size: int) -> KMeansStats:
    """Hard assignment and its statistics, accumulated chunk by chunk.

    Args:
      x: (n, d) data.
      weights: (n,) sample weights; 0 removes a row.
      shift: (d,) subtracted from every row before use.
      centers: (k, d) centres in shifted coordinates.
      chunk_size: rows per chunk (static).
    """
    k, d = centers.shape
    cc = sq_norms(centers)

    def fold(acc: KMeansStats, chunk, valid):
        xc, wc = chunk
        xc = xc - shift
        wc = jnp.where(valid, wc, 0.0)
        lab, dist = _nearest(xc, centers, cc)
        return KMeansStats(
            acc.counts + jax.ops.segment_sum(wc, lab, k),
            acc.sums + jax.ops.segment_sum(xc * wc[:, None], lab, k),
            acc.inertia + jnp.sum(wc * dist),
        ), None

    stats, _ = scan_rows(fold, _zero_stats(k, d, x.dtype), (x, weights), chunk_size)
    return stats


def m_step(stats: KMeansStats, centers: jax.Array) -> jax.Array:
    """Means of the clusters; a cluster with no weight keeps its centre."""
    safe = jnp.where(stats.counts > 0, stats.counts, 1.0)
    return jnp.where((stats.counts > 0)[:, None], stats.sums / safe[:, None], centers)


def _relocate_empty(
    x: jax.Array, weights: jax.Array, shift: jax.Array, centers: jax.Array, stats: KMeansStats, chunk_size: int
) -> KMeansStats:
    """Move the points farthest from their centres into empty clusters.

    scikit-learn's relocation: the r-th empty cluster receives the r-th
    farthest point (by distance to its own centre), which leaves its old
    cluster. Only rows of positive weight move. Runs a data pass only when a
    cluster is empty: the pass sits in a `while_loop` of at most one trip,
    which under `vmap` (unlike `lax.cond`, which becomes a select running
    both branches) is skipped when no member needs it.
    """
    k = centers.shape[0]
    empty = stats.counts <= 0
    cc = sq_norms(centers)

    def relocate(stats: KMeansStats) -> KMeansStats:
        def distance_to_own_centre(chunk, valid):
            xc, wc = chunk
            _, dist = _nearest(xc - shift, centers, cc, exact=True)
            return jnp.where(valid & (wc > 0), dist, -jnp.inf)

        far_d, far_i = top_rows(distance_to_own_centre, (x, weights), k, chunk_size)
        far_x = x[far_i] - shift
        far_w = weights[far_i]
        old, _ = _nearest(far_x, centers, cc)
        target = jnp.argsort(~empty, stable=True)  # empty clusters first, in index order
        move = (jnp.arange(k) < jnp.sum(empty)) & jnp.isfinite(far_d)
        mw = jnp.where(move, far_w, 0.0)
        wx = far_x * mw[:, None]
        counts = stats.counts - jax.ops.segment_sum(mw, old, k) + jax.ops.segment_sum(mw, target, k)
        sums = stats.sums - jax.ops.segment_sum(wx, old, k) + jax.ops.segment_sum(wx, target, k)
        return KMeansStats(counts, sums, stats.inertia)

    stats, _ = lax.while_loop(lambda s: s[1], lambda s: (relocate(s[0]), jnp.bool_(False)), (stats, jnp.any(empty)))
    return stats


def assign(
    x: jax.Array, shift: jax.Array, centers: jax.Array, chunk_size: int, exact: bool = True
) -> tuple[jax.Array, jax.Array]:
    """Labels (n,) and squared distances to the nearest centre (n,).

    `exact=False` when only the labels are used: it skips the gather that
    makes the distances exact.
    """
    cc = sq_norms(centers)
    return map_rows(lambda xc: _nearest(xc - shift, centers, cc, exact=exact), x, chunk_size)


def _fit_single(key, x, weights, shift, tol_abs, init_centers, *, n_clusters, init, max_iter, chunk_size):
    c0 = initial_centers(key, x, shift, weights, init_centers, init, n_clusters, chunk_size)

    def step(centers, prev_objective):
        del prev_objective
        stats = e_step(x, weights, shift, centers, chunk_size)
        stats = _relocate_empty(x, weights, shift, centers, stats, chunk_size)
        new = m_step(stats, centers)
        # Identical centres <=> no assignment changed; tol_abs = 0 tests just that.
        moved = jnp.sum((new - centers) ** 2)
        return new, stats.inertia, moved <= tol_abs

    return iterate(step, c0, max_iter, x.dtype)


@functools.partial(jax.jit, static_argnames=("n_clusters", "init", "n_init", "max_iter", "chunk_size"))
def _kmeans(key, x, weights, init_centers, tol, *, n_clusters, init, n_init, max_iter, chunk_size):
    shift, mean_var = weighted_mean_and_variance(x, weights, chunk_size)
    tol_abs = tol * mean_var
    fit = functools.partial(_fit_single, n_clusters=n_clusters, init=init, max_iter=max_iter, chunk_size=chunk_size)
    if n_init == 1:
        centers, info = fit(key, x, weights, shift, tol_abs, init_centers)
    else:
        keys = jax.random.split(key, n_init)
        all_centers, all_info = jax.vmap(fit, in_axes=(0, None, None, None, None, None))(
            keys, x, weights, shift, tol_abs, init_centers
        )
        final = jax.vmap(lambda c: e_step(x, weights, shift, c, chunk_size).inertia)(all_centers)
        (centers, info), _ = select_best((all_centers, all_info), final)
    labels, dist = assign(x, shift, centers, chunk_size)
    inertia = jnp.sum(weights * dist)
    nonfinite = ~(jnp.all(jnp.isfinite(centers)) & jnp.isfinite(inertia))
    return KMeansResult(centers + shift, labels, inertia, info.n_iter, info.converged, info.history, nonfinite)


def kmeans(
    key: jax.Array,
    x: Any,
    n_clusters: int,
    *,
    init: str | Any = "k-means++",
    n_init: int = 1,
    max_iter: int = 300,
    tol: float = 1e-4,
    weights: Any = None,
    chunk_size: int | None = None,
) -> KMeansResult:
    """Fit k-means by Lloyd's algorithm.

    Alternates assigning each sample to its nearest centre and moving each
    centre to the weighted mean of its samples. `n_init` restarts run as one
    `vmap`; the restart with the lowest finite inertia wins. The whole fit is
    one compiled program; it can be called inside `jax.jit` / `jax.vmap`.

    Args:
      key: a JAX PRNG key (`jax.random.key(0)`), used by the initialisation.
      x: (n_samples, n_features) data. Integers are cast to float.
      n_clusters: number of clusters k, 1 <= k <= n_samples.
      init: "k-means++" (greedy, `2 + ln k` local trials, weighted), "random"
        (k distinct samples, weighted), or a (k, n_features) array of centres.
      n_init: number of restarts run in parallel (1 with an explicit array).
      max_iter: most Lloyd iterations per restart. Under vmap every restart
        runs until the slowest stops, so this also bounds the batch.
      tol: stop when the squared centre shift summed over clusters is at most
        `tol` times the mean per-feature variance of the data (scikit-learn's
        meaning). Traced: changing it does not recompile. The fit also stops
        when no assignment changes.
      weights: (n_samples,) non-negative sample weights; rows of weight 0 change
        nothing (use them for padding). Default: all ones.
      chunk_size: rows per block of the (rows, k) distance matrix; default keeps a
        block near 64 MiB (at most 16384 rows). Memory never holds (n, k).

    Returns:
      A `KMeansResult` with `centers`, `labels`, `inertia`, `n_iter`,
      `converged`, `history` (the inertia J after each E-step, which never
      increases) and `nonfinite`.

    Example:
      >>> import jax, jaxmix
      >>> x = jaxmix.datasets.load_faithful()
      >>> r = jaxmix.kmeans(jax.random.key(0), x, 2, n_init=4)
      >>> r.centers.shape, bool(r.converged)
      ((2, 2), True)
    """
    a = V.check_fit_args(
        key, x, n_clusters, weights=weights, n_init=n_init, max_iter=max_iter, tol=tol, chunk_size=chunk_size
    )
    x, k = a.x, a.n_clusters
    n, d = x.shape
    init_centers, method, n_init = V.check_init(init, INIT_METHODS, k, d, x.dtype, a.n_init)
    chunk = a.chunk_size or default_chunk_size(n, k, x.dtype.itemsize, n_init)
    return _kmeans(
        key,
        x,
        a.weights,
        init_centers,
        jnp.asarray(tol, x.dtype),
        n_clusters=k,
        init=method,
        n_init=n_init,
        max_iter=a.max_iter,
        chunk_size=min(chunk, n),
    )


@functools.partial(jax.jit, static_argnames=("chunk_size",))
def _predict(centers, x, *, chunk_size):
    shift = jnp.mean(centers, axis=0)
    labels, _ = assign(x, shift, centers - shift, chunk_size, exact=False)
    return labels


@functools.partial(jax.jit, static_argnames=("chunk_size",))
def _transform(centers, x, *, chunk_size):
    shift = jnp.mean(centers, axis=0)
    c = centers - shift
    cc = sq_norms(c)

    def dist(xc):
        xc = xc - shift
        return jnp.sqrt(jnp.maximum(partial_sq_distances(xc, c, cc) + sq_norms(xc)[:, None], 0.0))

    return map_rows(dist, x, chunk_size)


def _check_predict_args(centers: Any, x: Any, chunk_size: int | None) -> tuple[jax.Array, jax.Array, int]:
    x = V.check_data(x)
    c = V.check_centers(centers, None, x.shape[1], x.dtype, name="centers")
    chunk = V.check_chunk_size(chunk_size) or default_chunk_size(x.shape[0], c.shape[0], x.dtype.itemsize)
    return c, x, min(chunk, x.shape[0])


def kmeans_predict(centers: Any, x: Any, *, chunk_size: int | None = None) -> jax.Array:
    """Index of the nearest centre for each row of `x`.

    Args:
      centers: (k, n_features) centres, e.g. `kmeans(...).centers`.
      x: (n_samples, n_features) new data.
      chunk_size: rows per block (default as in `kmeans`).

    Returns:
      (n_samples,) int32 labels.

    Example:
      >>> import jax, jax.numpy as jnp, jaxmix
      >>> jaxmix.kmeans_predict(jnp.array([[0., 0.], [10., 10.]]), jnp.array([[1., 1.], [9., 8.]]))
      Array([0, 1], dtype=int32)
    """
    c, x, chunk = _check_predict_args(centers, x, chunk_size)
    return _predict(c, x, chunk_size=chunk)


def transform(centers: Any, x: Any, *, chunk_size: int | None = None) -> jax.Array:
    """Euclidean distance from each row of `x` to each centre (scikit-learn's `transform`).

    Returns an (n_samples, k) array, so it allocates (n, k) by design.

    Example:
      >>> import jax.numpy as jnp, jaxmix
      >>> jaxmix.transform(jnp.array([[0., 0.]]), jnp.array([[3., 4.]]))
      Array([[5.]], dtype=float32)
    """
    c, x, chunk = _check_predict_args(centers, x, chunk_size)
    return _transform(c, x, chunk_size=chunk)
