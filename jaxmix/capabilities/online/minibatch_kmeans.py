"""The mini-batch k-means driver (`jaxmix.stream.minibatch_kmeans`): over an in-memory array
(shuffled every pass, passes as compiled programs) or over any iterable or source of batches.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxmix.capabilities.online.minibatch_kmeans_steps import (
    KMEANS_INIT_METHODS,
    MiniBatchKMeansResult,
    MiniBatchKMeansState,
    _labels_inertia,
    _mbk_pass,
    _mbk_start,
    _mbk_stopped,
    minibatch_kmeans_init,
    minibatch_kmeans_update,
)
from jaxmix.capabilities.online.passes import (
    NO_LIMIT,
    _batch_items,
    _check_batch,
    _check_driver_args,
    _check_iterable,
    _check_ratio,
    _init_rows,
    _is_array,
    _mean_variance,
)
from jaxmix.engine import progress_bar as _bar
from jaxmix.engine import validation as V
from jaxmix.engine.chunks import default_chunk_size


def minibatch_kmeans(
    key: jax.Array,
    batches: Any,
    n_clusters: int,
    *,
    init: str | Any = "k-means++",
    n_init: int = 1,
    batch_size: int = 1024,
    n_passes: int = 1,
    max_steps: int | None = None,
    weights: Any = None,
    reassignment_ratio: float = 0.01,
    tol: float = 0.0,
    max_no_improvement: int | None = None,
    init_size: int | None = None,
    progress: bool | None = None,
) -> MiniBatchKMeansResult:
    """Fit k-means by mini-batch updates (Sculley 2010; scikit-learn's `MiniBatchKMeans` rule).

    Each centre keeps a count of the weight it has absorbed and moves
    towards the mean of its new rows with learning rate
    `w_k / (W_k + w_k)` (1/count per unit of weight); see
    `minibatch_kmeans_update`.

    Two kinds of source:

    - an in-memory (n, d) array: each pass visits the rows in a new random
      order (from `key`) in batches of `batch_size` rows, as one compiled
      loop per pass; the seeds come from `init_size` random rows (default
      `3 * batch_size`, at least `3 * n_clusters`); the result has the labels and
      the inertia of all rows.
    - any iterable of (b, d) arrays or `(x, weights)` pairs (a list, a
      reader of files, ...): the seeds come from the first batch; every
      batch, the first included, then updates the state, one jitted call
      per batch (batches of one shape compile once). `n_passes > 1` needs a
      re-iterable source. `labels` and `inertia` are None: a stream is not
      read again.

    Args:
      key: a JAX PRNG key (seeding, shuffling, reassignment).
      batches: an (n, d) array or an iterable of batches.
      n_clusters: number of centres k.
      init: "k-means++", "random" or a (k, d) array.
      n_init: seedings tried on the initial rows (best inertia there wins).
      batch_size: rows per batch (array input only).
      n_passes: passes over the data.
      max_steps: stop after this many updates (default: no limit).
      weights: (n,) sample weights (array input; for an iterable give
        `(x, weights)` pairs).
      reassignment_ratio: see `minibatch_kmeans_update`; 0 turns it off.
      tol: stop when the squared movement of all centres in one update is
        at most `tol` times the mean per-feature variance (of the data for
        an array, of the first batch otherwise); 0 (default) disables it.
      max_no_improvement: stop after this many consecutive updates without
        a new lowest EWA of the batch inertia (scikit-learn's heuristic,
        smoothing `2 b / (n + 1)` for an array, `2 / (batches + 1)` for a
        sized iterable, 0.05 otherwise); None (default) disables it.
      init_size: rows used for seeding (array input only).
      progress: a tqdm bar over batches on stderr (None: only when stderr is
        a terminal).

    Returns:
      A `MiniBatchKMeansResult`.

    Example:
      >>> import jax, jaxmix
      >>> from jaxmix.capabilities.online import minibatch_kmeans
      >>> x = jaxmix.datasets.load_faithful()
      >>> r = minibatch_kmeans(jax.random.key(0), x, 2, batch_size=64, n_passes=3)
      >>> r.centers.shape, r.n_steps, r.labels.shape
      ((2, 2), 15, (272,))
    """
    V.check_key(key)
    b, n_passes, max_steps = _check_driver_args(batch_size, n_passes, max_steps)
    _check_ratio(reassignment_ratio, "reassignment_ratio")
    V.check_scalar(tol, "tol", nonnegative=True)
    mni = NO_LIMIT if max_no_improvement is None else V.check_positive_int(max_no_improvement, "max_no_improvement", 0)
    if _is_array(batches):
        x = V.check_data(batches)
        w = V.check_weights(weights, x.shape[0], x.dtype, rescale=True)  # all weights at once: one common factor
        return _minibatch_kmeans_array(
            key,
            x,
            w,
            x.shape[0],
            n_clusters,
            init=init,
            n_init=n_init,
            batch_size=b,
            n_passes=n_passes,
            max_steps=max_steps,
            reassignment_ratio=reassignment_ratio,
            tol=tol,
            max_no_improvement=mni,
            init_size=init_size,
            progress=progress,
        )
    if weights is not None:
        raise ValueError("weights go with array input; for an iterable, yield (x, weights) pairs")
    _check_iterable(batches, n_passes)
    return _minibatch_kmeans_stream(
        key,
        batches,
        n_clusters,
        init=init,
        n_init=n_init,
        n_passes=n_passes,
        max_steps=max_steps,
        reassignment_ratio=reassignment_ratio,
        tol=tol,
        max_no_improvement=mni,
        progress=progress,
    )


def _minibatch_kmeans_array(
    key,
    x,
    w,
    n_valid: int,
    n_clusters,
    *,
    init,
    n_init,
    batch_size: int,
    n_passes: int,
    max_steps: int,
    reassignment_ratio,
    tol,
    max_no_improvement: int,
    init_size,
    progress,
    compute_labels: bool = True,
) -> MiniBatchKMeansResult:
    """The array driver; the first `n_valid` rows are the data (the rest: weight-0 padding)."""
    n = x.shape[0]
    k = V.check_n_clusters(n_clusters, n_valid, w)
    m_true, m = _init_rows(w, n_valid, k, batch_size, init_size)
    dt = x.dtype
    init_centers, method, n_init = V.check_init(init, KMEANS_INIT_METHODS, k, x.shape[1], dt, n_init)
    n_init = V.check_positive_int(n_init, "n_init")
    state = _mbk_start(
        key,
        x,
        w,
        jnp.int32(m_true),
        init_centers,
        m=m,
        n_clusters=k,
        method=method,
        n_init=n_init,
        chunk_size=default_chunk_size(m, k, dt.itemsize, n_init),
    )
    b = min(batch_size, n_valid)
    chunk = default_chunk_size(b, k, dt.itemsize)
    tol_abs = jnp.asarray(tol, dt) * _mean_variance(x, w, chunk_size=n) if tol else jnp.zeros((), dt)
    alpha = jnp.asarray(min(1.0, 2.0 * b / (n_valid + 1)), dt)
    per_pass = -(-n_valid // b)
    total = min(per_pass * n_passes, max_steps)
    hist: list[jax.Array] = []
    done, passes, stopped = 0, 0, False
    with _bar.bar(total, "jaxmix minibatch_kmeans", progress) as pbar:
        for p in range(n_passes):
            if done >= max_steps:
                break
            passes += 1
            state, i, stop, h = _mbk_pass(
                state,
                x,
                w,
                jnp.int32(n_valid),
                jnp.int32(p),
                jnp.int32(max_steps - done),
                jnp.asarray(reassignment_ratio, dt),
                alpha,
                tol_abs,
                jnp.int32(max_no_improvement),
                batch_size=b,
                chunk_size=chunk,
            )
            i_host = int(i)
            done += i_host
            hist.append(h[:i_host])
            pbar.update(i_host)
            if float(state.ewa_inertia) >= 0:
                pbar.set_postfix(inertia=f"{float(state.ewa_inertia):.4g}")
            if bool(stop):
                stopped = True
                break
    labels = inertia = None
    if compute_labels:
        labels, inertia = _labels_inertia(x, w, state.shift, state.centered, chunk_size=default_chunk_size(n, k))
    history = jnp.concatenate(hist) if hist else jnp.zeros((0,), dt)
    return MiniBatchKMeansResult(state.centers, labels, inertia, done, passes, stopped, history, state)


def _stream_alpha(batches: Any) -> float:
    try:
        return min(1.0, 2.0 / (len(batches) + 1))
    except TypeError:
        return 0.05


def _minibatch_kmeans_stream(
    key,
    batches,
    n_clusters,
    *,
    init,
    n_init,
    n_passes,
    max_steps,
    reassignment_ratio,
    tol,
    max_no_improvement,
    progress,
) -> MiniBatchKMeansResult:
    alpha = _stream_alpha(batches)
    early = bool(tol) or max_no_improvement < NO_LIMIT
    state: MiniBatchKMeansState | None = None
    tol_abs = 0.0
    hist: list[jax.Array] = []
    done, passes, stopped = 0, 0, False
    try:
        total = len(batches) * n_passes
    except TypeError:
        total = None
    with _bar.bar(total, "jaxmix minibatch_kmeans", progress) as pbar:
        for p in range(n_passes):
            if done >= max_steps or stopped:
                break
            passes += 1
            for j, (xb, wb) in enumerate(_batch_items(batches)):
                name = f"batch {j} of pass {p}"
                if state is None:
                    x0 = _check_batch(xb, None, None, name=name)
                    state = minibatch_kmeans_init(key, x0, n_clusters, init=init, n_init=n_init, weights=wb)
                    if tol:
                        w0 = V.check_weights(wb, x0.shape[0], x0.dtype)
                        tol_abs = float(tol) * float(_mean_variance(x0, w0, chunk_size=x0.shape[0]))
                x = _check_batch(xb, state.shift.shape[0], state.centered.dtype, name=name)
                w = V.check_weights(wb, x.shape[0], x.dtype)
                state, inertia = minibatch_kmeans_update(
                    state, x, w, reassignment_ratio=reassignment_ratio, smoothing=alpha
                )
                hist.append(inertia / jnp.sum(w))
                done += 1
                pbar.update(1)
                if early and bool(_mbk_stopped(state, tol_abs, max_no_improvement)):
                    stopped = True
                    break
                if done >= max_steps:
                    break
    if state is None:
        raise ValueError("batches is empty: no batch to fit")
    history = jnp.stack(hist) if hist else jnp.zeros((0,), state.centered.dtype)
    return MiniBatchKMeansResult(state.centers, None, None, done, passes, stopped, history, state)
