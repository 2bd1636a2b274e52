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

from jaxmix.engine import arrays as A
from jaxmix.engine import buckets as B
from jaxmix.engine import collective as coll
from jaxmix.engine import progress as _progress
from jaxmix.engine import random as jr
from jaxmix.engine import sharding as S
from jaxmix.engine import validation as V
from jaxmix.engine.chunks import default_chunk_size, map_rows
from jaxmix.engine.distances import partial_sq_distances, sq_norms
from jaxmix.engine.loop import LoopInfo, map_in_turn, select_best, weighted_mean_and_variance
from jaxmix.engine.programs import fit_jit
from jaxmix.engine.seeding import initial_centers
from jaxmix.models.kmeans_steps import _final_assignment, _lloyd, assign

INIT_METHODS = ("k-means++", "random")
ALGORITHMS = ("auto", "lloyd", "hamerly")


def choose_algorithm(algorithm: str, n: int, k: int, max_iter: int = 300) -> str:
    """Resolve `algorithm="auto"`: bounds on CPU when they can pay, dense otherwise.

    The bounded algorithm saves distance GEMMs but adds gathers, scatters and
    a compaction per iteration; measured on XLA:CPU (bench/) it wins once
    there are enough rows and clusters. On GPU/TPU the dense GEMM is cheap
    and the gathers are not, so "auto" keeps the dense algorithm there.
    """
    if algorithm != "auto":
        return algorithm
    if jax.default_backend() != "cpu" or coll.sharded():
        return "lloyd"
    pays = HAMERLY_MIN_CLUSTERS <= k <= HAMERLY_MAX_CLUSTERS and n * k >= HAMERLY_MIN_SIZE
    return "hamerly" if pays and max_iter >= HAMERLY_MIN_ITER else "lloyd"


# Measured on the 2-core CPU (bench/): at n = 1e6, k = 100 (W1, 20
# iterations) the bounds cut the fit by 40%; at n = 1e5, k = 20 (W3) both
# algorithms ran equally fast and the bounds only added compile time; at
# k = 1000 (W6, 5 iterations) Hamerly's single lower bound decays too fast
# (it follows the largest centre movement) and the fit took 35% longer.
HAMERLY_MIN_CLUSTERS = 8
HAMERLY_MAX_CLUSTERS = 256
HAMERLY_MIN_SIZE = 2**22
HAMERLY_MIN_ITER = 10


class KMeansResult(NamedTuple):
    """A fitted k-means model and its diagnostics."""

    centers: jax.Array  # (n_clusters, n_features)
    labels: jax.Array  # (n_samples,) int32, nearest centre of each row
    inertia: jax.Array  # () sum_i w_i ||x_i - centers[labels_i]||^2
    n_iter: jax.Array  # () int32, Lloyd iterations run by the winning restart
    converged: jax.Array  # () bool, True only if a stopping criterion was met
    history: jax.Array  # (max_iter,) J per iteration; entries past n_iter repeat the last
    nonfinite: jax.Array  # () bool, True if NaN/inf reached the result


# Restarts of problems at least this large (n * k) run one after the other
# (each stops at its own convergence, and one restart already keeps the CPU
# busy); smaller ones run side by side under vmap on accelerators, which
# amortises per-operation overhead, and one after the other on a CPU.
# Measured on W3 (bench/): vmapped restarts of n = 100,000, k = 20 ran in
# lockstep to the slowest and their gathered GEMMs were 3x slower than one
# restart's. On wine (178 x 13, k = 3, n_init = 10, 2-core CPU) the vmapped
# restarts traced in 0.6-0.8 s and ran in 23 ms; one after the other (a scan,
# the seeds likewise) 0.25 s and 14-20 ms.
SEQUENTIAL_RESTARTS_MIN_SIZE = 2**16


@fit_jit(static_argnames=("n_clusters", "init", "n_init", "max_iter", "chunk_size", "algorithm", "progress"))
def _kmeans(
    key,
    x,
    weights,
    init_centers,
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
    algorithm,
    progress=False,
):
    """The k-means program. A bucketed fit (`buckets`) passes the traced `n_active` (clusters that
    exist, the first ones), `limit` (iteration bound <= max_iter) and `n_valid` (restarts that count)."""
    shift, mean_var = weighted_mean_and_variance(x, weights, chunk_size)
    tol_abs = tol * mean_var
    active = None if n_active is None else jnp.arange(n_clusters) < n_active
    lloyd = functools.partial(
        _lloyd,
        max_iter=max_iter,
        chunk_size=chunk_size,
        algorithm=algorithm,
        progress=progress,
        active=active,
        limit=limit,
    )

    def fit(c0):
        state, info = lloyd(c0, x, weights, shift, tol_abs)
        labels, dist = _final_assignment(x, weights, shift, state, chunk_size, active)
        return state[0], info, labels, dist

    def seed(kk, given):
        return initial_centers(kk, x, shift, weights, given, init, n_clusters, chunk_size, n_active)

    if n_init == 1:
        centers, info, labels, dist = fit(seed(key, init_centers))
    else:
        keys = jr.split(key, n_init)
        large = x.shape[0] * n_clusters >= SEQUENTIAL_RESTARTS_MIN_SIZE
        # (With a progress display small restarts stay vmapped: it then counts one loop's iterations.)
        if large or (jax.default_backend() == "cpu" and not progress):
            if large:  # one GEMM pass over the data scores every restart's k-means++ candidates
                c0s = jax.vmap(lambda kk: seed(kk, None))(keys)
            else:  # on a CPU, small restarts trace and run faster one after the other
                c0s = map_in_turn(lambda kk: seed(kk, None), keys)
            n, dt = x.shape[0], x.dtype
            info0 = LoopInfo(jnp.int32(0), jnp.bool_(False), jnp.zeros((max_iter,), dt))
            empty = (c0s[0], info0, jnp.zeros((n,), jnp.int32), jnp.zeros((n,), dt))
            centers, info, labels, dist = _best_of_sequential(fit, c0s, weights, empty, n_valid)
        else:
            outs = jax.vmap(fit)(jax.vmap(lambda kk: seed(kk, None))(keys))
            score = coll.allsum(jnp.sum(weights[None] * outs[3], axis=1))
            if n_valid is not None:  # padding restarts never win
                score = jnp.where(jnp.arange(n_init) < n_valid, score, jnp.inf)
            (centers, info, labels, dist), _ = select_best(outs, score)
    inertia = coll.allsum(jnp.sum(weights * dist))
    nonfinite = ~(jnp.all(jnp.isfinite(centers)) & jnp.isfinite(inertia))
    return KMeansResult(centers + shift, labels, inertia, info.n_iter, info.converged, info.history, nonfinite)


def _best_of_sequential(fit, c0s, weights, empty, n_valid=None):
    """Run `fit` on each start in turn, keeping the lowest finite inertia (first on ties).

    One `while_loop` over the starts (not a scan: JAX lowers a scan by
    tracing its body again), so the fit is compiled once. Starts from
    `n_valid` on (a bucketed fit's padding restarts) are not run.
    """

    def body(state):
        i, best, best_score = state
        out = fit(c0s[i])
        score = coll.allsum(jnp.sum(weights * out[3]))
        score = jnp.where(jnp.isfinite(score), score, jnp.inf)
        better = (score < best_score) | (i == 0)
        keep = jax.tree_util.tree_map(lambda a, b: jnp.where(better, a, b), out, best)
        return i + 1, keep, jnp.where(better, score, best_score)

    n = c0s.shape[0] if n_valid is None else jnp.minimum(n_valid, c0s.shape[0])
    state = (jnp.int32(0), empty, jnp.array(jnp.inf, weights.dtype))
    _, best, _ = lax.while_loop(lambda s: s[0] < n, body, state)
    return best


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
    algorithm: str = "auto",
    progress: bool = False,
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
        block near 8 MiB (at most 16384 rows). Memory never holds (n, k).
      algorithm: "lloyd" computes every distance in every iteration;
        "hamerly" keeps per-row distance bounds (Hamerly 2010) and recomputes
        only the rows whose nearest centre may have changed: the same fit,
        bit for bit, for a fraction of the distance GEMMs once the centres
        settle, at 12 bytes per row per restart. "auto" (default) picks
        "hamerly" on CPU when it was measured to pay (8 <= k <= 256,
        n * k >= 2**22, max_iter >= 10), "lloyd" otherwise.
      progress: print the iteration count and the inertia to stderr while
        the fit runs (a self-overwriting line on a terminal, a line every few
        seconds otherwise; nothing for fits done within about a second; with
        restarts, the largest count and the best inertia). The call then
        waits for the result. Static: `progress=False` compiles no callback.

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
    chunk = min(a.chunk_size or default_chunk_size(n, k, x.dtype.itemsize, n_init), n)
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if S.row_axes_of(x) is not None:  # rows split over devices: the dense iteration
        if algorithm == "hamerly":
            raise ValueError("a fit on row-sharded x runs the dense Lloyd iteration: use algorithm='lloyd' or 'auto'")
        algorithm = "lloyd"
    algorithm = choose_algorithm(algorithm, n, k, a.max_iter)
    tol_arr = A.scalar(tol, x.dtype)
    exact = algorithm != "lloyd" or A.is_traced(x) or S.row_axes_of(x) is not None
    p = None if exact else B.plan(n, k, d, n_init, a.max_iter, B.sweep_min_k(n, d, n_init))
    if p is None:
        static = dict(
            n_clusters=k,
            init=method,
            n_init=n_init,
            max_iter=a.max_iter,
            chunk_size=chunk,
            algorithm=algorithm,
            progress=bool(progress),
        )
        return S.call_fit(
            "kmeans",
            _kmeans,
            (key, x, a.weights, init_centers, tol_arr),
            static,
            row_args=(False, True, True, False, False),
            out_rows=S.row_fields(KMeansResult, "labels"),
            progress=progress,
            weights_given=weights is not None,
        )
    # A small fit: one program per size bucket (see _buckets).
    (xp, wp, given, *counts), static = B.centroid_inputs(p, x, a.weights, init_centers, method, a.chunk_size, progress)
    r = _progress.run(
        "kmeans",
        functools.partial(_kmeans.small(p.work), key, xp, wp, given, tol_arr, *counts, algorithm="lloyd", **static),
        progress,
    )
    return r._replace(
        centers=B.take_first(r.centers, k),
        labels=B.take_first(r.labels, n),
        history=B.take_first(r.history, a.max_iter),
    )


@fit_jit(static_argnames=("chunk_size",))
def _predict(centers, x, *, chunk_size):
    shift = jnp.mean(centers, axis=0)
    labels, _ = assign(x, shift, centers - shift, chunk_size, exact=False)
    return labels


@fit_jit(static_argnames=("chunk_size",))
def _transform(centers, x, *, chunk_size):
    shift = jnp.mean(centers, axis=0)
    c = centers - shift
    cc = sq_norms(c)

    def dist(xc):
        xc = xc - shift
        return jnp.sqrt(jnp.maximum(partial_sq_distances(xc, c, cc) + sq_norms(xc)[:, None], 0.0))

    return map_rows(dist, x, chunk_size)


def _check_predict_args(centers: Any, x: Any, chunk_size: int | None) -> tuple[jax.Array, jax.Array, int]:
    x = V.check_data(x, magnitude=False)
    c = V.check_centers(centers, None, x.shape[1], x.dtype, name="centers")
    V.check_magnitude(x, "x", c)
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
    xp, n = B.pad_rows_for_toolbox(x)
    program = _predict.small(_toolbox_work(c, x, xp))
    return B.take_first(program(c, xp, chunk_size=_padded_chunk(chunk, n, xp)), n)


def transform(centers: Any, x: Any, *, chunk_size: int | None = None) -> jax.Array:
    """Euclidean distance from each row of `x` to each centre (scikit-learn's `transform`).

    Returns an (n_samples, k) array, so it allocates (n, k) by design.

    Example:
      >>> import jax.numpy as jnp, jaxmix
      >>> jaxmix.transform(jnp.array([[0., 0.]]), jnp.array([[3., 4.]]))
      Array([[5.]], dtype=float32)
    """
    c, x, chunk = _check_predict_args(centers, x, chunk_size)
    xp, n = B.pad_rows_for_toolbox(x)
    program = _transform.small(_toolbox_work(c, x, xp))
    return B.take_first(program(c, xp, chunk_size=_padded_chunk(chunk, n, xp)), n)


def _toolbox_work(centers: Any, x: Any, xp: Any) -> int | None:
    """Multiply-adds of a small per-row pass (padded rows, `buckets`) for its compiler options; else None."""
    return xp.shape[0] * centers.shape[0] * x.shape[1] if B.toolbox_small(x) else None


def _padded_chunk(chunk: int, n: int, xp: Any) -> int:
    """The chunk for padded rows: all of them when the unpadded data were one chunk."""
    return xp.shape[0] if chunk >= n else chunk
