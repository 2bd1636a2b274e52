"""The iteration driver every streaming fit shares: passes folding batches into statistics
(`_fold_pass`), one update per pass (`_em_stage`: k-means, soft k-means and every Gaussian family run on
it), the loop's state in the checkpoint, and Lloyd's stage (k-means and the GMM's "kmeans" start).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.capabilities.streaming.passes import _Run
from jaxmix.capabilities.streaming.programs import _kmeans_add, _kmeans_update, _to_device
from jaxmix.engine.chunks import default_chunk_size
from jaxmix.models.kmeans_steps import KMeansStats


def _loop_state(run: _Run, p: str, params: dict[str, np.ndarray], max_iter: int, dtype: np.dtype) -> None:
    if p + "n_iter" not in run.st:
        run.st.update({p + name: np.asarray(v) for name, v in params.items()})
        run.st[p + "n_iter"] = np.zeros((), np.int64)
        run.st[p + "converged"] = np.zeros((), bool)
        run.st[p + "history"] = np.zeros((max_iter,), dtype)
        run.st[p + "objective"] = np.full((), np.nan, dtype)


def _running(run: _Run, p: str, max_iter: int) -> bool:
    return int(run.st[p + "n_iter"]) < max_iter and not bool(run.st[p + "converged"])


def _record(run: _Run, p: str, objective: Any, done: Any, **params: Any) -> None:
    st = run.st
    i = int(st[p + "n_iter"])
    st[p + "history"] = st[p + "history"].copy()
    st[p + "history"][i] = np.asarray(objective)
    st[p + "objective"] = np.asarray(objective, st[p + "history"].dtype)
    st[p + "n_iter"] = np.asarray(i + 1, np.int64)
    st[p + "converged"] = np.asarray(bool(done))
    st.update({p + name: np.asarray(v) for name, v in params.items()})
    run.save()


def _history(run: _Run, p: str) -> np.ndarray:
    """The objective per iteration, entries past n_iter repeating the last (as the in-memory fits)."""
    h, n = run.st[p + "history"], int(run.st[p + "n_iter"])
    return np.where(np.arange(h.shape[0]) < n, h, h[max(n - 1, 0)])


def _kmeans_chunk(rows: int, k: int, dtype: np.dtype) -> int:
    return min(default_chunk_size(rows, k, dtype.itemsize), rows)


def _em_stage(
    run: _Run,
    p: str,
    pass_name: str,
    params0: dict[str, np.ndarray],
    max_iter: int,
    zero: Callable[[], Any],
    add: Callable[[Any, jax.Array, jax.Array, dict[str, jax.Array]], Any],
    update: Callable[[Any, dict[str, jax.Array], Any], tuple[dict[str, Any], Any, Any]],
) -> dict[str, np.ndarray]:
    """The one iteration driver of every streaming fit (k-means, soft k-means, any Gaussian family).

    Each pass folds every batch into statistics (`add(acc, x, w, params)`, from `zero()`), then
    `update(stats, params, previous objective)` gives the new parameters, the pass's objective and
    whether the fit has converged; the state (`run.st`, keys prefixed `p`) is checkpointed after each
    pass, so an interrupted fit resumes at the pass it was in. Returns the final parameters.
    """
    _loop_state(run, p, params0, max_iter, run.source.dtype)
    st = run.st
    names = tuple(params0)
    while _running(run, p, max_iter):
        params = {name: jnp.asarray(st[p + name]) for name in names}
        pass_id = f"{pass_name}{int(st[p + 'n_iter'])}"

        def fold(acc: Any, x: jax.Array, w: jax.Array, q: dict[str, jax.Array] = params) -> Any:
            return add(acc, x, w, q)

        stats = _fold_pass(run, pass_id, zero(), fold, st[p + "objective"])
        new, objective, done = update(stats, params, st[p + "objective"])
        _record(run, p, objective, done, **new)
    return {name: st[p + name] for name in names}


def _fold_pass(
    run: _Run, pass_id: str, zero: Any, add: Callable[[Any, jax.Array, jax.Array], Any], objective: Any = None
) -> Any:
    """One pass folding every batch (on the device, padded) into `zero` with `add(acc, x, w)`."""
    dt, cap = run.source.dtype, run.source.batch_rows

    def fold(acc, i, batch):
        del i
        x, w = _to_device(batch, cap, dt)
        return add(acc, x, w)

    return run.run_pass(pass_id, zero, fold, objective)


def _lloyd_stage(run: _Run, p: str, c0: np.ndarray, tol_abs: np.ndarray, max_iter: int, k: int) -> np.ndarray:
    """Lloyd passes until converged; the centres (shifted coordinates)."""
    d, dt = run.source.n_features, run.source.dtype
    shift = jnp.asarray(run.st["shift"])

    def add(acc, x, w, prm):
        return _kmeans_add(acc, x, w, shift, prm["centers"], chunk_size=_kmeans_chunk(x.shape[0], k, dt))

    def update(stats, prm, prev):
        del prev
        new, done = _kmeans_update(stats, prm["centers"], prm["prev_counts"], prm["prev_sums"], tol_abs)
        return {"centers": new, "prev_counts": stats.counts, "prev_sums": stats.sums}, stats.inertia, done

    def zero():
        return KMeansStats(jnp.zeros((k,), dt), jnp.zeros((k, d), dt), jnp.zeros((), dt))

    nan_prev = {"prev_counts": np.full((k,), np.nan, dt), "prev_sums": np.full((k, d), np.nan, dt)}
    return _em_stage(run, p, p + "lloyd", {"centers": c0, **nan_prev}, max_iter, zero, add, update)["centers"]
