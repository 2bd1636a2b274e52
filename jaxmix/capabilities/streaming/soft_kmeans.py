"""Exact soft k-means over a source read in batches: `jaxmix.stream.soft_kmeans`."""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.capabilities.streaming.iterations import _em_stage, _fold_pass, _history, _kmeans_chunk
from jaxmix.capabilities.streaming.passes import (
    _centers_init,
    _check_common,
    _check_init_sample,
    _fit_options,
    _moments_stage,
    _Run,
)
from jaxmix.capabilities.streaming.programs import _soft_add, _soft_update
from jaxmix.engine import validation as V
from jaxmix.models.soft_kmeans import SoftKMeansResult, SoftKMeansStats


def soft_kmeans(
    key: jax.Array,
    source: Any,
    n_clusters: int,
    *,
    beta: float,
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
) -> SoftKMeansResult:
    """Exact soft k-means over a source read in batches: one pass per iteration.

    As `jaxmix.soft_kmeans` (responsibilities `r_ik ∝ pi_k exp(-beta
    ||x_i - m_k||^2)`, cluster probabilities starting uniform, the same
    stopping rule), with the first pass, seeding and checkpoints of
    `jaxmix.stream.kmeans`. A last pass computes the free energy at the
    returned parameters.

    Args:
      key: a JAX PRNG key.
      source: anything `jaxmix.stream.as_source` accepts.
      n_clusters: k.
      beta: stiffness, > 0.
      init: "k-means++", "random" or a (k, n_features) array of centres.
      max_iter, tol, weights, batch_rows, init_sample, checkpoint,
        checkpoint_every, keep_checkpoint, progress: as in
        `jaxmix.stream.kmeans`.

    Returns:
      A `SoftKMeansResult`; `labels` is a zero-size int32 array (use
      `jaxmix.stream.predict`).

    Example:
      >>> import jax, numpy as np, jaxmix.stream as js
      >>> x = np.concatenate([np.zeros((50, 1)), np.full((50, 1), 10.0)]).astype(np.float32)
      >>> r = js.soft_kmeans(jax.random.key(0), x, 2, beta=1.0, batch_rows=40)
      >>> np.sort(np.asarray(r.centers)[:, 0]).round(3).tolist(), np.asarray(r.weights).round(3).tolist()
      ([0.0, 10.0], [0.5, 0.5])
    """
    src, k, max_iter = _check_common(key, source, n_clusters, max_iter, tol, batch_rows, weights)
    V.check_scalar(beta, "beta", positive=True)
    d, dt = src.n_features, src.dtype
    init_arr, method = _centers_init(init, ("k-means++", "random"), k, d, dt)
    m = _check_init_sample(init_sample, k)
    options = _fit_options(
        "soft_kmeans",
        key,
        k,
        init if init_arr is None else init_arr,
        beta=float(beta),
        max_iter=max_iter,
        tol=float(tol),
        init_sample=m,
    )
    run = _Run(src, options, checkpoint, checkpoint_every, keep_checkpoint, progress)
    c0 = _moments_stage(run, key, k, method, m)
    st = run.st
    if "span" in st:  # the data's spread is known after the first pass (absent from older checkpoints)
        V.check_beta(beta, span=float(st["span"]), rows=int(st["n_pos"]), n_features=d, dtype=dt)
    shift = jnp.asarray(st["shift"])
    if c0 is None:
        c0 = np.asarray(jnp.asarray(init_arr) - shift)
    beta_t = jnp.asarray(beta, dt)
    tol_abs = np.asarray(tol, dt) * st["mean_var"]

    def add(acc, x, w, prm):
        chunk = _kmeans_chunk(x.shape[0], k, dt)
        return _soft_add(acc, x, w, shift, prm["centers"], prm["pi"], beta_t, chunk_size=chunk)

    def update(stats, prm, prev):
        del prev
        new, new_pi, done = _soft_update(stats, prm["centers"], tol_abs)
        return {"centers": new, "pi": new_pi}, stats.objective, done

    def zero() -> SoftKMeansStats:
        return SoftKMeansStats(jnp.zeros((k,), dt), jnp.zeros((k, d), dt), jnp.zeros((), dt))

    params0 = {"centers": c0, "pi": np.full((k,), 1.0 / k, dt)}
    fitted = _em_stage(run, "soft.", "soft", params0, max_iter, zero, add, update)
    centers, pi = fitted["centers"], fitted["pi"]
    if "free_energy" not in st:
        final = {"centers": jnp.asarray(centers), "pi": jnp.asarray(pi)}
        stats = _fold_pass(run, "final", zero(), lambda acc, x, w: add(acc, x, w, final), st["soft.objective"])
        st["free_energy"] = np.asarray(stats.objective)
        run.save()
    run.finish()
    objective = st["free_energy"]
    out = centers + st["shift"]
    finite = np.all(np.isfinite(out)) and np.all(np.isfinite(pi)) and np.isfinite(objective)
    return SoftKMeansResult(
        jnp.asarray(out),
        jnp.asarray(pi),
        beta_t,
        jnp.zeros((0,), jnp.int32),
        jnp.asarray(objective),
        jnp.asarray(st["soft.n_iter"], jnp.int32),
        jnp.asarray(st["soft.converged"]),
        jnp.asarray(_history(run, "soft.")),
        jnp.asarray(not finite),
    )
