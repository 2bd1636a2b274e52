"""Exact k-means (Lloyd) over a source read in batches: `jaxmix.stream.kmeans`."""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.capabilities.streaming.iterations import _fold_pass, _history, _kmeans_chunk, _lloyd_stage
from jaxmix.capabilities.streaming.passes import (
    _centers_init,
    _check_common,
    _check_init_sample,
    _fit_options,
    _moments_stage,
    _Run,
)
from jaxmix.capabilities.streaming.programs import _kmeans_final_add
from jaxmix.models.kmeans import KMeansResult


def kmeans(
    key: jax.Array,
    source: Any,
    n_clusters: int,
    *,
    init: str | Any = "k-means++",
    max_iter: int = 300,
    tol: float = 1e-4,
    weights: Any = None,
    batch_rows: int | None = None,
    init_sample: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoint: bool = False,
    progress: bool | None = None,
) -> KMeansResult:
    """Exact k-means (Lloyd) over a source read in batches: one pass per iteration.

    The first pass computes the weighted data mean (the shift all
    computations work about), the variance that scales `tol`, and a weighted
    reservoir sample of `init_sample` rows on which k-means++ (or "random")
    seeds the centres. Then each pass sums the core E-step's statistics over
    the batches and one M-step moves the centres; the stopping rule is the
    in-memory `jaxmix.kmeans` one. A last pass computes the inertia at the
    returned centres. From the same initial centres the fit follows the
    in-memory one (same n_iter and history, centres equal up to the order of
    floating-point sums), except for empty clusters: a cluster that loses
    all its rows keeps its centre here, where the in-memory fit moves it to
    the farthest row.

    When the source has at most `init_sample` rows the sample is the whole
    source with its weights, and the seeding is the in-memory one for the
    same key (up to rounding).

    Args:
      key: a JAX PRNG key (seeding and the reservoir sample).
      source: anything `jaxmix.stream.as_source` accepts (array, memmap,
        directory or list of `.npy` files, h5py/zarr array, callable).
      n_clusters: k.
      init: "k-means++", "random" or a (k, n_features) array of centres.
      max_iter: most Lloyd passes.
      tol: as in `jaxmix.kmeans` (relative to the mean per-feature variance).
      weights: (n,) sample weights for an array-like source.
      batch_rows: rows per batch (default about 64 MiB).
      init_sample: rows in the seeding sample (default max(10000, 20 k)).
      checkpoint: a file path: the fit's state is written there atomically
        after every pass, and a fit started with an existing checkpoint of
        the same data and options resumes from it, ending with the same
        result bit for bit. A checkpoint of another fit raises ValueError.
      checkpoint_every: also write the checkpoint every this many batches
        within a pass (the partial sums and the batch index).
      keep_checkpoint: keep the file after the fit completes (calling again
        then returns the result at once); by default it is removed.
      progress: a tqdm bar per pass (None: only when stderr is a terminal).

    Returns:
      A `KMeansResult`; its `labels` field is a zero-size int32 array (the
      labels of data that need not fit in memory; use
      `jaxmix.stream.predict` for them batch by batch).

    Example:
      >>> import jax, numpy as np, jaxmix.stream as js
      >>> x = np.concatenate([np.zeros((50, 2)), np.ones((50, 2))]).astype(np.float32)
      >>> r = js.kmeans(jax.random.key(0), x, 2, batch_rows=32)
      >>> np.sort(np.asarray(r.centers)[:, 0]).tolist(), r.labels.shape
      ([0.0, 1.0], (0,))
    """
    src, k, max_iter = _check_common(key, source, n_clusters, max_iter, tol, batch_rows, weights)
    d, dt = src.n_features, src.dtype
    init_arr, method = _centers_init(init, ("k-means++", "random"), k, d, dt)
    m = _check_init_sample(init_sample, k)
    options = _fit_options(
        "kmeans", key, k, init if init_arr is None else init_arr, max_iter=max_iter, tol=float(tol), init_sample=m
    )
    run = _Run(src, options, checkpoint, checkpoint_every, keep_checkpoint, progress)
    c0 = _moments_stage(run, key, k, method, m)
    st = run.st
    if c0 is None:
        c0 = np.asarray(jnp.asarray(init_arr) - jnp.asarray(st["shift"]))
    tol_abs = np.asarray(tol, dt) * st["mean_var"]
    centers = _lloyd_stage(run, "km.", c0, tol_abs, max_iter, k)
    if "inertia" not in st:
        shift, c = jnp.asarray(st["shift"]), jnp.asarray(centers)

        def add(acc, x, w):
            return _kmeans_final_add(acc, x, w, shift, c, chunk_size=_kmeans_chunk(x.shape[0], k, dt))

        st["inertia"] = np.asarray(_fold_pass(run, "final", jnp.zeros((), dt), add, st["km.objective"]))
        run.save()
    run.finish()
    inertia = st["inertia"]
    out = centers + st["shift"]
    return KMeansResult(
        jnp.asarray(out),
        jnp.zeros((0,), jnp.int32),
        jnp.asarray(inertia),
        jnp.asarray(st["km.n_iter"], jnp.int32),
        jnp.asarray(st["km.converged"]),
        jnp.asarray(_history(run, "km.")),
        jnp.asarray(not (np.all(np.isfinite(out)) and np.isfinite(inertia))),
    )


GMM_INITS = ("kmeans", "k-means++", "random_from_data")


_PARAM_FIELDS = ("weights", "means", "covariances", "precisions_cholesky")
