"""Many independent fits through a fixed number of slots: each fit runs to its own convergence.

`loop.iterate` under `vmap` runs every member until the slowest stops, so a
grid of fits whose iteration counts differ (a `select` grid: k = 1 stops
after 2 EM iterations, k = 8 may take 400) pays `members x max(n_iter)`
steps. `iterate_queue` keeps `slots` fits running side by side instead; a
slot whose fit has converged (or reached the bound) writes its result and
takes the next fit of the queue, so the grid costs about
`sum(n_iter) / slots` steps of `slots` members (plus the tail of the last
ones). Each fit's sequence of steps is exactly `iterate`'s: the same
parameters, objective history, iteration count and convergence flag.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxmix.engine.loop import LoopInfo


def iterate_queue(
    step: Callable[[Any, jax.Array, jax.Array], tuple[Any, jax.Array, jax.Array]],
    initial: Any,
    slots: int,
    max_iter: int,
    dtype: Any,
    limit: jax.Array | None = None,
) -> tuple[Any, LoopInfo]:
    """Run every fit of `initial` (a pytree with a leading axis of J fits) to convergence, `slots` at a time.

    Args:
      step: `step(params, prev_objective, job) -> (params, objective, converged)` for one fit
        (`job`: its index in `initial`, to look up per-fit constants); vmapped over the slots.
      initial: each fit's starting parameters, leading axis J.
      slots: fits run side by side (static, at most J).
      max_iter: the history's length (static); `limit` (traced, <= max_iter), when given, the bound.

    Returns:
      `(params, LoopInfo)` with a leading axis of J, as `vmap(iterate)` would give.
    """
    n_jobs = jax.tree_util.tree_leaves(initial)[0].shape[0]
    slots = max(1, min(slots, n_jobs))
    bound = max_iter if limit is None else jnp.minimum(jnp.asarray(limit, jnp.int32), max_iter)
    nan = jnp.full((slots,), jnp.nan, dtype)
    take = lambda tree, i: jax.tree_util.tree_map(lambda a: a[i], tree)  # noqa: E731

    first = jnp.arange(slots, dtype=jnp.int32)
    state = dict(
        job=first,
        live=jnp.ones((slots,), bool),
        params=take(initial, first),
        prev=nan,
        n_iter=jnp.zeros((slots,), jnp.int32),
        next=jnp.int32(slots),
        out=initial,  # overwritten fit by fit
        out_iter=jnp.zeros((n_jobs,), jnp.int32),
        out_conv=jnp.zeros((n_jobs,), bool),
        history=jnp.zeros((n_jobs, max_iter), dtype),
    )

    def body(s: dict[str, Any]) -> dict[str, Any]:
        job = jnp.minimum(s["job"], n_jobs - 1)
        params, objective, converged = jax.vmap(step)(s["params"], s["prev"], job)
        objective = objective.astype(dtype)
        write = jnp.where(s["live"], s["job"], n_jobs)  # dead slots write nowhere
        history = s["history"].at[write, jnp.minimum(s["n_iter"], max_iter - 1)].set(objective, mode="drop")
        n_iter = s["n_iter"] + 1
        done = s["live"] & (converged | (n_iter >= bound))
        where_done = jnp.where(done, s["job"], n_jobs)
        out = jax.tree_util.tree_map(lambda o, v: o.at[where_done].set(v, mode="drop"), s["out"], params)
        out_iter = s["out_iter"].at[where_done].set(n_iter, mode="drop")
        out_conv = s["out_conv"].at[where_done].set(converged, mode="drop")
        # Finished slots take the next fits of the queue, in slot order.
        new_job = s["next"] + jnp.cumsum(done.astype(jnp.int32)).astype(jnp.int32) - 1
        refill = done & (new_job < n_jobs)
        fresh = take(initial, jnp.minimum(new_job, n_jobs - 1))

        def pick(a: jax.Array, b: jax.Array) -> jax.Array:
            return jnp.where(refill.reshape((slots,) + (1,) * (a.ndim - 1)), a, b)

        return dict(
            job=jnp.where(refill, new_job, s["job"]),
            live=jnp.where(done, refill, s["live"]),
            params=jax.tree_util.tree_map(pick, fresh, params),
            prev=jnp.where(refill, jnp.nan, objective),
            n_iter=jnp.where(refill, 0, n_iter).astype(jnp.int32),
            next=s["next"] + jnp.sum(done.astype(jnp.int32)).astype(jnp.int32),
            out=out,
            out_iter=out_iter,
            out_conv=out_conv,
            history=history,
        )

    # A bound of 0 iterations leaves every fit at its start (as `iterate` does).
    s = lax.while_loop(lambda s: jnp.any(s["live"]) & (bound > 0), body, state)
    n_iter = s["out_iter"]
    last = jnp.take_along_axis(s["history"], jnp.maximum(n_iter - 1, 0)[:, None], axis=1)
    history = jnp.where(jnp.arange(max_iter)[None] < n_iter[:, None], s["history"], last)
    return s["out"], LoopInfo(n_iter, s["out_conv"], history)
