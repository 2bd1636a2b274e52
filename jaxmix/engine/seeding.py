"""Initial centres: greedy k-means++ and distinct random data points.

Both work on centred coordinates (`x - shift`) and honour per-sample
weights: a point of weight 0 (padding) is never chosen while enough points
of positive weight exist.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxmix.engine import collective as coll
from jaxmix.engine import random as jr
from jaxmix.engine.chunks import map_rows, row_pass_chunk, scan_rows


def random_points(key: jax.Array, x: jax.Array, shift: jax.Array, weights: jax.Array, n_clusters: int) -> jax.Array:
    """`n_clusters` distinct rows drawn without replacement, weighted by `weights`.

    Gumbel-top-k over log-weights: one pass over n, no permutation of all
    rows (as `jax.random.choice(..., replace=False)` would do).
    """
    n = weights.shape[0]
    g = jr.gumbel(key, (coll.global_rows(n),), x.dtype)
    if coll.sharded():  # this shard's slice of the same draws as on one device
        g = lax.dynamic_slice_in_dim(g, coll.row_offset(n), n)
    logw = jnp.where(weights > 0, jnp.log(jnp.maximum(weights, jnp.finfo(x.dtype).tiny)), -jnp.inf)
    _, idx = coll.top_k(logw + g, n_clusters)  # continuous scores: no ties among positive weights
    return coll.take_rows(x, idx) - shift


def kmeans_plusplus(
    key: jax.Array,
    x: jax.Array,
    shift: jax.Array,
    weights: jax.Array,
    n_clusters: int,
    chunk_size: int,
    n_active: jax.Array | None = None,
) -> jax.Array:
    """Greedy k-means++ (Arthur and Vassilvitskii 2007; scikit-learn's variant).

    Each new centre is the best of `2 + floor(ln k)` candidates drawn with
    probability proportional to `weight * D(x)^2`, best meaning the lowest
    resulting potential `sum_i w_i min_j ||x_i - c_j||^2`.

    The candidates' potentials use one GEMM per chunk against all
    candidates (`||x||^2 - 2 x.c + ||c||^2`, with `||x||^2` computed once);
    `D(x)^2` itself is updated with exact distances, so a point equal to a
    centre keeps probability 0. Under `vmap` over restarts the GEMM covers
    every restart's candidates in one pass over the data.

    The uniform draw of centre j, candidate t is the stream's draw number
    64 j + t (`random.uniform_at`): the first k centres are the same whatever
    `n_clusters` is, which makes a masked fit (`n_active`) equal to a fit
    with `n_active` clusters.

    Args:
      n_active: a traced count k <= n_clusters: only the first k centres are
        seeded, with k's number of candidates (the rest stay 0); None for all.

    Returns:
      (n_clusters, d) centres in centred coordinates.
    """
    n, d = x.shape
    n_trials = 2 + int(math.log(n_clusters))
    # Blocks here are (rows, d) and (rows, n_trials): larger chunks than the
    # E-step's (rows, k) ones.
    chunk_size = max(chunk_size, row_pass_chunk(n, max(d, n_trials), x.dtype.itemsize))
    # All uniform draws at once: no PRNG in the loop body (less to compile).
    # Draw (j, t) at counter 64 j + t (n_trials < 64 for any k): independent of n_clusters.
    counters = 64 * jnp.arange(n_clusters, dtype=jnp.uint32)[:, None] + jnp.arange(n_trials, dtype=jnp.uint32)[None]
    u = jr.uniform_at(key, counters, x.dtype)  # (k, T)
    if n_active is None:
        upper: Any = n_clusters
        trial_ok = jnp.ones((n_trials,), bool)
    else:
        upper = jnp.asarray(n_active, jnp.int32)
        used = 2 + jnp.floor(jnp.log(jnp.maximum(upper, 1).astype(jnp.float32))).astype(jnp.int32)
        trial_ok = jnp.arange(n_trials) < used
    first = coll.draw_rows(x, u[0, 0], weights) - shift

    def dist_to(c):
        return map_rows(lambda xc: jnp.sum((xc - shift - c) ** 2, axis=1), x, chunk_size)

    xx = map_rows(lambda xc: jnp.sum((xc - shift) ** 2, axis=1), x, chunk_size)
    closest = dist_to(first)
    centers = jnp.zeros((n_clusters, d), x.dtype).at[0].set(first)

    def add_center(j, state):
        centers, closest = state
        p = weights * closest
        # All mass on existing centres (duplicated points): fall back to the
        # weights so that a zero-weight row is still never drawn.
        p = jnp.where(coll.allsum(jnp.sum(p)) > 0, p, weights)
        cand = coll.draw_rows(x, u[j], p) - shift  # (T, d)
        cc = jnp.sum(cand * cand, axis=1)

        def potentials(acc, chunk, valid):
            xc, wc, dc, xxc = chunk
            wc = jnp.where(valid, wc, 0.0)
            dt = jnp.maximum(xxc[:, None] - 2.0 * ((xc - shift) @ cand.T) + cc[None], 0.0)  # (c, T)
            return acc + wc @ jnp.minimum(dc[:, None], dt), None

        pots, _ = scan_rows(potentials, jnp.zeros((n_trials,), x.dtype), (x, weights, closest, xx), chunk_size)
        pots = coll.allsum(pots)
        best = cand[jnp.argmin(jnp.where(trial_ok, pots, jnp.inf))]
        closest = jnp.minimum(closest, dist_to(best))
        return centers.at[j].set(best), closest

    centers, _ = lax.fori_loop(1, upper, add_center, (centers, closest))
    return centers


def initial_centers(
    key: jax.Array,
    x: jax.Array,
    shift: jax.Array,
    weights: jax.Array,
    init_centers: jax.Array | None,
    method: str,
    n_clusters: int,
    chunk_size: int,
    n_active: jax.Array | None = None,
) -> jax.Array:
    """Starting centres (centred coordinates) for the k-means family.

    Args:
      method: "k-means++", "random", or "array" (then `init_centers` is used).
      n_active: only the first `n_active` centres matter (a masked fit).
    """
    if init_centers is not None:
        return init_centers - shift
    if method == "k-means++":
        return kmeans_plusplus(key, x, shift, weights, n_clusters, chunk_size, n_active)
    # Gumbel top-k is sorted: its first k rows are the top-k for any n_clusters >= k.
    return random_points(key, x, shift, weights, n_clusters)
