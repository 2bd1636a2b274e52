"""Many independent k-means problems in one compiled program.

`vmap` over a `while_loop` runs every member until the slowest one stops:
with 1,000 small problems whose fits take 3 to 45 iterations, lockstep does
about four times the necessary work. `kmeans_batch` instead pushes the
problems (and their restarts) through a queue: a fixed number of slots is
stepped together, and a slot whose problem has converged is refilled with
the next problem at once. The total work is the sum of the problems'
iterations plus a short tail, the slots' working set stays in cache, and
everything remains one `jit`-compiled program of fixed shapes.

Data are laid out (problem, feature, row), so that for the small feature
counts typical of such batches every distance is a vectorised elementwise
expression over rows; for larger feature counts distances come from a
batched GEMM. Distances are exact (`sum_j (x_j - m_j)^2`) for up to
`DIRECT_MAX_FEATURES` features.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxmix.engine import arrays as A
from jaxmix.engine import random as jr
from jaxmix.engine import validation as V
from jaxmix.engine.loop import weighted_mean_and_variance
from jaxmix.engine.programs import fit_jit
from jaxmix.engine.seeding import initial_centers
from jaxmix.models.kmeans import INIT_METHODS, KMeansResult

DIRECT_MAX_FEATURES = 8
# Slots are sized so that their data and distance blocks stay near this many
# bytes (cache-resident); measured on W2 (bench/): 250 slots of 500 x 2 ran
# 1.6 us per problem-iteration, 1,000 slots 2.1 us.
SLOT_BYTES = 2**20
UNROLL_MAX_CLUSTERS = 16


def _distances(xt: jax.Array, centers: jax.Array) -> jax.Array:
    """Squared distances (s, k, n) from (s, d, n) rows and (s, k, d) centres."""
    d = xt.shape[1]
    if d <= DIRECT_MAX_FEATURES:
        out = (xt[:, None, 0, :] - centers[:, :, 0, None]) ** 2
        for j in range(1, d):
            out = out + (xt[:, None, j, :] - centers[:, :, j, None]) ** 2
        return out
    xx = jnp.sum(xt * xt, axis=1)
    cc = jnp.sum(centers * centers, axis=2)
    return jnp.maximum(xx[:, None, :] - 2.0 * jnp.einsum("skd,sdn->skn", centers, xt) + cc[:, :, None], 0.0)


def _nearest(xt: jax.Array, centers: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(labels (s, n) int32, squared distance (s, n)); ties go to the lowest index."""
    k = centers.shape[1]
    dist = _distances(xt, centers)
    if k <= UNROLL_MAX_CLUSTERS:
        # A running minimum over the clusters: elementwise over rows, no
        # reduction across the cluster axis (measured 2x faster for k = 5).
        best, lab = dist[:, 0], jnp.zeros((dist.shape[0], dist.shape[2]), jnp.int32)
        for j in range(1, k):
            better = dist[:, j] < best
            best = jnp.where(better, dist[:, j], best)
            lab = jnp.where(better, j, lab)
        return lab, best
    best = jnp.min(dist, axis=1)
    idx = lax.broadcasted_iota(jnp.int32, dist.shape, 1)
    return jnp.min(jnp.where(dist == best[:, None], idx, k), axis=1), best


def _stats(xt, w, lab, k):
    """Per-slot cluster weights (s, k) and weighted sums (s, k, d)."""
    oh = jnp.where(lab[:, None, :] == jnp.arange(k, dtype=jnp.int32)[None, :, None], w[:, None, :], 0.0)
    return jnp.sum(oh, axis=2), jnp.einsum("sdn,skn->skd", xt, oh)


def _relocate(xt, w, lab, dist, counts, sums):
    """scikit-learn's relocation of empty clusters, per slot (see `kmeans._relocation`)."""
    k = counts.shape[1]
    n = xt.shape[2]
    empty = counts <= 0

    def one(xt1, w1, lab1, dist1, counts1, sums1, empty1):
        scores = jnp.where(w1 > 0, dist1, -jnp.inf)[::-1]
        far_d, rev = lax.top_k(scores, min(k, n))
        far_i = n - 1 - rev
        if k > n:
            far_d = jnp.concatenate([far_d, jnp.full((k - n,), -jnp.inf, far_d.dtype)])
            far_i = jnp.concatenate([far_i, jnp.zeros((k - n,), far_i.dtype)])
        target = jnp.argsort(~empty1, stable=True)
        move = (jnp.arange(k) < jnp.sum(empty1)) & jnp.isfinite(far_d)
        mw = jnp.where(move, w1[far_i], 0.0)
        old = lab1[far_i]
        wx = xt1[:, far_i].T * mw[:, None]
        seg = functools.partial(jax.ops.segment_sum, num_segments=k)
        return (
            counts1 - seg(mw, old) + seg(mw, target),
            sums1 - seg(wx, old) + seg(wx, target),
        )

    def body(state):
        counts, sums, _ = state
        c2, s2 = jax.vmap(one)(xt, w, lab, dist, counts, sums, empty)
        has = jnp.any(empty, axis=1)
        return jnp.where(has[:, None], c2, counts), jnp.where(has[:, None, None], s2, sums), jnp.bool_(False)

    counts, sums, _ = lax.while_loop(lambda st: st[2], body, (counts, sums, jnp.any(empty)))
    return counts, sums


@fit_jit(static_argnames=("n_clusters", "init", "n_init", "max_iter", "slots"))
def _kmeans_batch(key, xs, weights, init_centers, tol, *, n_clusters, init, n_init, max_iter, slots):
    b, n, d = xs.shape
    k, dt = n_clusters, xs.dtype
    q = b * n_init  # queue entries: problem e // n_init, restart e % n_init
    shift, mean_var = jax.vmap(lambda x, w: weighted_mean_and_variance(x, w, n))(xs, weights)
    tol_abs = tol * mean_var
    keys = jax.random.split(key, b)
    if init_centers is not None:
        c0 = init_centers - shift[:, None, :]
    else:
        # The same keys as `kmeans(keys[i], xs[i], ..., n_init=n_init)`.
        entry_keys = keys[:, None] if n_init == 1 else jax.vmap(lambda kk: jr.split(kk, n_init))(keys)
        seed = jax.vmap(  # over restarts, then problems
            jax.vmap(lambda kk, x, s, w: initial_centers(kk, x, s, w, None, init, k, n), in_axes=(0, None, None, None))
        )
        c0 = seed(entry_keys, xs, shift, weights).reshape(q, k, d)
    xt = jnp.swapaxes(xs - shift[:, None, :], 1, 2)  # (b, d, n): one centred, transposed copy
    s = min(slots, q)
    nan_stats = (jnp.full((s, k), jnp.nan, dt), jnp.full((s, k, d), jnp.nan, dt))

    def body(st):
        ids, centers, prev, it, nxt, out = st
        active = ids < q
        prob = jnp.minimum(ids, q - 1) // n_init
        x_s, w_s = xt[prob], jnp.where(active[:, None], weights[prob], 0.0)
        lab, dist = _nearest(x_s, centers)
        counts, sums = _stats(x_s, w_s, lab, k)
        inertia = jnp.sum(w_s * dist, axis=1)
        counts, sums = _relocate(x_s, w_s, lab, dist, counts, sums)
        safe = jnp.where(counts > 0, counts, 1.0)
        new = jnp.where((counts > 0)[..., None], sums / safe[..., None], centers)
        same = jnp.all(counts == prev[0], axis=1) & jnp.all(sums == prev[1], axis=(1, 2))
        moved = jnp.sum((new - centers) ** 2, axis=(1, 2))
        conv = (moved <= tol_abs[prob]) | same
        it1 = it + 1
        done = active & (conv | (it1 >= max_iter))
        drop = jnp.where(active, ids, q)
        fin = jnp.where(done, ids, q)
        out = (
            out[0].at[fin].set(new, mode="drop"),
            out[1].at[fin].set(it1, mode="drop"),
            out[2].at[fin].set(conv, mode="drop"),
            out[3].at[drop, jnp.minimum(it, max_iter - 1)].set(inertia, mode="drop"),
        )
        # Refill finished slots with the next entries of the queue.
        rank = jnp.cumsum(done.astype(jnp.int32)) - 1
        refill = jnp.minimum(nxt + rank, q)
        ids = jnp.where(done, refill, ids)
        fresh = c0[jnp.minimum(ids, q - 1)]
        centers = jnp.where(done[:, None, None], fresh, new)
        prev = (
            jnp.where(done[:, None], jnp.nan, counts),
            jnp.where(done[:, None, None], jnp.nan, sums),
        )
        it = jnp.where(done, 0, it1)
        return ids, centers, prev, it, nxt + jnp.sum(done.astype(jnp.int32)), out

    out0 = (
        jnp.zeros((q, k, d), dt),
        jnp.zeros((q,), jnp.int32),
        jnp.zeros((q,), bool),
        jnp.zeros((q, max_iter), dt),
    )
    ids0 = jnp.arange(s, dtype=jnp.int32)
    state = (ids0, c0[:s], nan_stats, jnp.zeros((s,), jnp.int32), jnp.int32(s), out0)
    *_, (centers, n_iter, converged, hist) = lax.while_loop(lambda st: jnp.any(st[0] < q), body, state)

    # Final labels and exact inertia of every entry, `s` entries at a time.
    def final(e):
        prob = e // n_init
        lab, dist = _nearest(xt[prob], centers[e])
        return lab, jnp.sum(weights[prob] * dist, axis=1)

    pad = -(-q // s) * s
    groups = jnp.minimum(jnp.arange(pad, dtype=jnp.int32), q - 1).reshape(-1, s)
    labels, inertia = lax.map(final, groups)
    labels, inertia = labels.reshape(pad, n)[:q], inertia.reshape(pad)[:q]

    # Best restart of each problem: lowest finite inertia, first on ties.
    score = jnp.where(jnp.isfinite(inertia), inertia, jnp.inf).reshape(b, n_init)
    best = jnp.arange(b) * n_init + jnp.argmin(score, axis=1)
    last = hist[jnp.arange(q), jnp.maximum(n_iter - 1, 0)]
    hist = jnp.where(jnp.arange(max_iter)[None] < n_iter[:, None], hist, last[:, None])
    centers, inertia = centers[best] + shift[:, None, :], inertia[best]
    nonfinite = ~(jnp.all(jnp.isfinite(centers), axis=(1, 2)) & jnp.isfinite(inertia))
    return KMeansResult(centers, labels[best], inertia, n_iter[best], converged[best], hist[best], nonfinite)


def default_slots(n_problems: int, n_samples: int, n_features: int, n_clusters: int, itemsize: int) -> int:
    per_problem = n_samples * (n_features + n_clusters + 2) * itemsize
    return int(max(1, min(n_problems, SLOT_BYTES // max(1, per_problem))))


def kmeans_batch(
    key: jax.Array,
    xs: Any,
    n_clusters: int,
    *,
    init: str | Any = "k-means++",
    n_init: int = 1,
    max_iter: int = 300,
    tol: float = 1e-4,
    weights: Any = None,
    slots: int | None = None,
) -> KMeansResult:
    """Fit k-means to each of B independent data sets `xs[i]`, in one compiled program.

    Problem `i` gets exactly what `kmeans(keys[i], xs[i], n_clusters, ...)`
    gives with `keys = jax.random.split(key, B)` (up to float rounding: the
    batch computes distances directly rather than by a GEMM), but the batch
    runs as a queue: a fixed number of `slots` is stepped together and a
    slot is refilled as soon as its problem converges, so no problem waits
    for the slowest one. Ragged data sets: pad them to a common n and give
    the padding rows weight 0.

    Args:
      key: a JAX PRNG key; problem i (and its restarts) uses `split(key, B)[i]`.
      xs: (B, n_samples, n_features) data.
      n_clusters: clusters per problem; each problem needs at least that many
        rows of positive weight.
      init: "k-means++", "random", or a (B, n_clusters, n_features) array.
      n_init: restarts per problem (queued like problems); the lowest inertia wins.
      max_iter: most Lloyd iterations per restart.
      tol: as in `kmeans` (relative to each problem's mean feature variance).
      weights: (B, n_samples) non-negative weights; 0 marks padding.
      slots: problems stepped together (default: as many as keep the working
        set near 1 MiB, at most B * n_init).

    Returns:
      A `KMeansResult` whose fields have a leading axis of length B.

    Example:
      >>> import jax, jax.numpy as jnp, jaxmix
      >>> xs = jax.random.normal(jax.random.key(1), (100, 50, 2)) + jnp.array([0.0, 5.0])[:, None].repeat(25, 0)[None]
      >>> r = jaxmix.kmeans_batch(jax.random.key(0), xs, 2)
      >>> r.centers.shape, r.labels.shape, bool(r.converged.all())
      ((100, 2, 2), (100, 50), True)
    """
    V.check_key(key)
    xs, w = V.check_batch_data(xs, weights)
    b, n, d = xs.shape
    k = V.check_positive_int(n_clusters, "n_clusters")
    if not A.is_traced(w):
        fewest = int(jnp.min(jnp.sum(w > 0, axis=1)))
        if k > fewest:
            raise ValueError(
                f"n_clusters={k} must be <= the number of samples with positive weight in every problem (fewest: {fewest})"
            )
    elif k > n:
        raise ValueError(f"n_clusters={k} must be <= n_samples={n}")
    n_init = V.check_positive_int(n_init, "n_init")
    max_iter = V.check_positive_int(max_iter, "max_iter")
    V.check_scalar(tol, "tol", nonnegative=True)
    if isinstance(init, str):
        if init not in INIT_METHODS:
            raise ValueError(f"init must be one of {INIT_METHODS} or a ({b}, {k}, {d}) array, got {init!r}")
        init_centers, method = None, init
    else:
        init_centers = A.as_float_array(init, "init", ndim=3).astype(xs.dtype)
        if init_centers.shape != (b, k, d):
            raise ValueError(f"init must have shape {(b, k, d)}, got {tuple(init_centers.shape)}")
        V.check_finite(init_centers, "init")
        method, n_init = "array", 1
    s = default_slots(b * n_init, n, d, k, xs.dtype.itemsize) if slots is None else V.check_positive_int(slots, "slots")
    return _kmeans_batch(
        key,
        xs,
        w,
        init_centers,
        jnp.asarray(tol, xs.dtype),
        n_clusters=k,
        init=method,
        n_init=n_init,
        max_iter=max_iter,
        slots=min(s, b * n_init),
    )
