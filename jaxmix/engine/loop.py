"""The one iteration driver shared by every model, and restart selection.

A model supplies a `step(params, prev_objective) -> (params, objective,
converged)` that runs one E-step (statistics summed over chunks) and one
closed-form M-step. `iterate` wraps it in a `lax.while_loop` that records the
objective per iteration; `select_best` picks the winning restart after a
`vmap` over keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmix.engine import collective as coll
from jaxmix.engine.chunks import row_pass_chunk, scan_rows
from jaxmix.engine.progress import device_report


class LoopState(NamedTuple):
    params: Any
    objective: jax.Array  # () objective of the last E-step
    history: jax.Array  # (max_iter,) objective per iteration
    n_iter: jax.Array  # () int32 iterations done
    converged: jax.Array  # () bool, a stopping criterion was met


class LoopInfo(NamedTuple):
    """Diagnostics of a finished loop (blackjax-style state/info split)."""

    n_iter: jax.Array  # () int32
    converged: jax.Array  # () bool
    history: jax.Array  # (max_iter,) entries past n_iter repeat the last one


def iterate(
    step: Callable[[Any, jax.Array], tuple[Any, jax.Array, jax.Array]],
    params: Any,
    max_iter: int,
    dtype: Any,
    progress: bool = False,
    minimize: bool = True,
    limit: jax.Array | None = None,
) -> tuple[Any, LoopInfo]:
    """Run `step` until it reports convergence or `max_iter` steps are done.

    `max_iter` (static) is the length of the history; `limit` (traced, at
    most `max_iter`), when given, is the iteration bound, so that one
    program serves every `max_iter` up to its history length.

    Under `vmap` (restarts, batches of problems) the loop runs until the
    slowest member stops; finished members are frozen, so `max_iter` bounds
    the cost of the whole batch.

    `progress` (static) sends each iteration's count and objective to the
    host display (`progress`); `minimize` says which objective is best when
    a batch is reduced for it. Without `progress` the program holds no
    callback at all.
    """
    nan = jnp.array(jnp.nan, dtype)
    state = LoopState(
        params=params,
        objective=nan,
        history=jnp.zeros((max_iter,), dtype),
        n_iter=jnp.int32(0),
        converged=jnp.bool_(False),
    )

    bound = max_iter if limit is None else jnp.minimum(jnp.asarray(limit, jnp.int32), max_iter)

    def cond(s: LoopState) -> jax.Array:
        return (s.n_iter < bound) & ~s.converged

    def body(s: LoopState) -> LoopState:
        params, objective, converged = step(s.params, s.objective)
        history = s.history.at[s.n_iter].set(objective.astype(dtype))
        if progress:
            device_report(s.n_iter + 1, objective, minimize=minimize)
        return LoopState(params, objective.astype(dtype), history, s.n_iter + 1, converged)

    s = lax.while_loop(cond, body, state)
    last = s.history[jnp.maximum(s.n_iter - 1, 0)]
    history = jnp.where(jnp.arange(max_iter) < s.n_iter, s.history, last)
    return s.params, LoopInfo(s.n_iter, s.converged, history)


def map_in_turn(f: Callable[[Any], Any], xs: Any) -> Any:
    """`lax.map(f, xs)` as a plain `while_loop` writing into preallocated outputs.

    The same results; cheaper to lower than `lax.map`'s scan, which JAX
    lowers by tracing its body again (0.1-0.2 s per small fit program on a
    2-core CPU).
    """
    n = jax.tree_util.tree_leaves(xs)[0].shape[0]
    first = jax.eval_shape(f, jax.tree_util.tree_map(lambda a: a[0], xs))
    out0 = jax.tree_util.tree_map(lambda s: jnp.zeros((n, *s.shape), s.dtype), first)

    def body(state):
        i, out = state
        y = f(jax.tree_util.tree_map(lambda a: a[i], xs))
        return i + 1, jax.tree_util.tree_map(lambda o, v: o.at[i].set(v), out, y)

    _, out = lax.while_loop(lambda s: s[0] < n, body, (jnp.int32(0), out0))
    return out


def select_best(tree: Any, score: jax.Array, minimize: bool = True) -> tuple[Any, jax.Array]:
    """Pick one member of a batched pytree by its score.

    Non-finite scores never win unless every score is non-finite.

    Args:
      tree: pytree whose leaves have a leading restart axis.
      score: (n_restarts,) objective per restart.
      minimize: True to keep the lowest score, False the highest.

    Returns:
      `(member, index)`.
    """
    s = score if minimize else -score
    s = jnp.where(jnp.isfinite(s), s, jnp.inf)
    idx = jnp.argmin(s)
    return jax.tree_util.tree_map(lambda a: a[idx], tree), idx


def weighted_mean_and_variance(x: jax.Array, weights: jax.Array, chunk_size: int) -> tuple[jax.Array, jax.Array]:
    """Weighted column means (d,) and mean column variance () in two passes.

    The variance is accumulated about the mean, so it survives data far from
    the origin in float32. Used to centre the data (distances by GEMM lose
    everything to cancellation otherwise) and to scale the k-means `tol`.
    `chunk_size` is ignored: the passes hold (rows, d) blocks only and use
    `row_pass_chunk`.
    """
    del chunk_size
    n, d = x.shape
    chunk_size = row_pass_chunk(n, d, x.dtype.itemsize)
    zero = (jnp.zeros((), x.dtype), jnp.zeros((d,), x.dtype))

    def sums(carry, chunk, valid):
        xc, wc = chunk
        wc = jnp.where(valid, wc, 0.0)
        return (carry[0] + jnp.sum(wc), carry[1] + wc @ xc), None

    (total, s), _ = scan_rows(sums, zero, (x, weights), chunk_size)
    total, s = coll.allsum((total, s))
    total = jnp.maximum(total, jnp.finfo(x.dtype).tiny)
    mean = s / total

    def sq(carry, chunk, valid):
        xc, wc = chunk
        wc = jnp.where(valid, wc, 0.0)
        return carry + wc @ jnp.sum((xc - mean) ** 2, axis=1), None

    ss, _ = scan_rows(sq, jnp.zeros((), x.dtype), (x, weights), chunk_size)
    ss = coll.allsum(ss)
    return mean, ss / (total * d)
