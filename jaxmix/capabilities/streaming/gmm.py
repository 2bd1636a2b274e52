"""Exact EM for Gaussian mixtures (any covariance family) over a source read in batches: `jaxmix.stream.gmm`."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.capabilities.streaming.iterations import _em_stage, _fold_pass, _history, _lloyd_stage, _loop_state
from jaxmix.capabilities.streaming.kmeans import _PARAM_FIELDS, GMM_INITS
from jaxmix.capabilities.streaming.passes import _check_common, _check_init_sample, _fit_options, _moments_stage, _Run
from jaxmix.capabilities.streaming.programs import (
    _gmm_add,
    _gmm_final_add,
    _gmm_m,
    _gmm_onehot_add,
    _gmm_update,
    _params_from_init,
)
from jaxmix.engine import parameter_checks as PC
from jaxmix.engine import validation as V
from jaxmix.families.params import GMMParams
from jaxmix.families.registry import check_covariance_type, covariance_model
from jaxmix.models.gmm import GMMResult, gmm_chunk_size
from jaxmix.models.gmm_em import GMMStats
from jaxmix.models.gmm_starts import KMEANS_INIT_MAX_ITER, _collapsed


def _params_state(params: GMMParams) -> dict[str, np.ndarray]:
    return {f: np.asarray(getattr(params, f)) for f in _PARAM_FIELDS}


def _params_of(fields: dict[str, Any], ctype: str) -> GMMParams:
    w, m, c, u = (jnp.asarray(fields[f]) for f in _PARAM_FIELDS)
    return GMMParams(w, m, c, u, covariance_type=ctype)


def gmm(
    key: jax.Array,
    source: Any,
    n_components: int,
    *,
    covariance_type: str = "full",
    init: str | GMMParams | Any = "kmeans",
    max_iter: int = 100,
    tol: float = 1e-3,
    reg_covar: float = 1e-6,
    weights: Any = None,
    batch_rows: int | None = None,
    init_sample: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoint: bool = False,
    progress: bool | None = None,
) -> GMMResult:
    """Exact EM for a Gaussian mixture over a source read in batches: one pass per iteration.

    The first pass computes the weighted data mean (the shift) and, for
    seeding, a weighted reservoir sample of `init_sample` rows. Then each
    pass sums the core E-step's statistics over the batches and one M-step
    updates the parameters; the fit stops when the mean log-likelihood
    changes by less than `tol`, as `jaxmix.gmm` does. A last pass computes
    the mean log-likelihood at the returned parameters. From the same
    initial parameters the iterates are those of the in-memory fit, up to
    the order of floating-point sums.

    Initialisation (`init`):
      - "kmeans" (default): streamed k-means (k-means++ on the sample, tol 0,
        at most 100 passes, as the in-memory "kmeans" init), then one pass
        assigning each row to its nearest centre and one M-step from those
        hard responsibilities. Empty k-means clusters keep their centres.
      - "k-means++", "random_from_data": seeds drawn from the sample, then the
        hard-assignment pass and M-step.
      - a (k, n_features) array of means: the hard-assignment pass and M-step
        from those means.
      - a `GMMParams` (e.g. `jaxmix.gmm(...).params`): used as they are (the
        in-memory `gmm` with `weights_init`, `means_init` and
        `precisions_init` all given); its covariance type must be
        `covariance_type`.

    Args:
      key: a JAX PRNG key (seeding and the reservoir sample).
      source: anything `jaxmix.stream.as_source` accepts.
      n_components: k.
      covariance_type: "full", "tied", "diag" or "spherical".
      init: see above.
      max_iter: most EM passes.
      tol: stop when the mean log-likelihood changes by less than this.
      reg_covar: added to the diagonal of every covariance, >= 0.
      weights: (n,) sample weights for an array-like source.
      batch_rows: rows per batch (default about 64 MiB).
      init_sample: rows in the seeding sample (default max(10000, 20 k)).
      checkpoint, checkpoint_every, keep_checkpoint, progress: as in
        `jaxmix.stream.kmeans`.

    Returns:
      A `GMMResult`; `labels` is a zero-size int32 array (use
      `jaxmix.stream.predict`).

    Example:
      >>> import jax, numpy as np, jaxmix.stream as js
      >>> x = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
      >>> g = js.gmm(jax.random.key(0), x, 1, batch_rows=64)
      >>> np.allclose(g.params.means, x.mean(0), atol=1e-5), g.params.covariances.shape
      (True, (1, 2, 2))
    """
    src, k, max_iter = _check_common(key, source, n_components, max_iter, tol, batch_rows, weights)
    d, dt = src.n_features, src.dtype
    check_covariance_type(covariance_type, d)
    V.check_scalar(reg_covar, "reg_covar", nonnegative=True)
    ctype = covariance_type
    given: GMMParams | None = None
    means0: np.ndarray | None = None
    method: str | None = None
    if isinstance(init, GMMParams):
        given = PC.check_gmm_params(init, d, dt, name="init")
        if given.covariance_type != ctype or given.means.shape[0] != k:
            raise ValueError(
                f"init holds {given.means.shape[0]} {given.covariance_type!r} components; "
                f"the fit asks for n_components={k}, covariance_type={ctype!r}"
            )
        init_id: Any = np.concatenate([np.asarray(getattr(given, f), np.float64).ravel() for f in _PARAM_FIELDS])
    elif isinstance(init, str):
        if init not in GMM_INITS:
            raise ValueError(
                f"init must be one of {GMM_INITS}, a ({k}, {d}) array of means or a GMMParams, got {init!r}"
            )
        method, init_id = init, init
    else:
        means0 = np.asarray(V.check_centers(init, k, d, dt, name="init"))
        init_id = means0
    m = _check_init_sample(init_sample, k)
    options = _fit_options(
        "gmm", key, k, init_id, covariance_type=ctype, max_iter=max_iter, tol=float(tol), reg_covar=float(reg_covar)
    )
    options["init_sample"] = m
    run = _Run(src, options, checkpoint, checkpoint_every, keep_checkpoint, progress)
    seeds = _moments_stage(run, key, k, "k-means++" if method == "kmeans" else method, m)
    st = run.st
    shift = jnp.asarray(st["shift"])
    reg = jnp.asarray(reg_covar, dt)
    chunk = _gmm_chunker(k, d, ctype, dt)
    if "em.n_iter" not in st:
        if given is not None:
            params = _params_from_init(given.weights, given.means, given.covariances, shift, ctype=ctype)
        else:
            if method == "kmeans":
                assert seeds is not None
                centers = _lloyd_stage(run, "init.", seeds, np.zeros((), dt), KMEANS_INIT_MAX_ITER, k)
            elif seeds is not None:
                centers = seeds
            else:
                assert means0 is not None
                centers = np.asarray(jnp.asarray(means0) - shift)
            c = jnp.asarray(centers)

            def hard(acc, x, w):
                return _gmm_onehot_add(acc, x, w, shift, c, ctype=ctype, chunk_size=chunk(x.shape[0]))

            stats0 = _fold_pass(run, "hard", _zero_gmm_stats(ctype, k, d, dt), hard)
            params = _gmm_m(stats0, reg, ctype=ctype)
        _loop_state(run, "em.", _params_state(params), max_iter, dt)
        run.save()
    total = jnp.asarray(st["total"])
    tol_t = jnp.asarray(tol, dt)

    def add(acc, x, w, prm):
        return _gmm_add(acc, x, w, shift, _params_of(prm, ctype), chunk_size=chunk(x.shape[0]))

    def update(stats, prm, prev):
        del prm
        new, objective, done = _gmm_update(stats, reg, total, prev, tol_t, ctype=ctype)
        return _params_state(new), objective, done

    start = {f: st["em." + f] for f in _PARAM_FIELDS}
    fitted = _em_stage(run, "em.", "em", start, max_iter, lambda: _zero_gmm_stats(ctype, k, d, dt), add, update)
    params = _params_of({f: jnp.asarray(v) for f, v in fitted.items()}, ctype)
    if "loglik" not in st:

        def final(acc, x, w):
            return _gmm_final_add(acc, x, w, shift, params, chunk_size=chunk(x.shape[0]))

        st["loglik"] = np.asarray(_fold_pass(run, "final", jnp.zeros((), dt), final, st["em.objective"]) / total)
        run.save()
    run.finish()
    ll = st["loglik"]
    out = dataclasses.replace(params, means=params.means + shift)
    finite = all(bool(jnp.all(jnp.isfinite(getattr(out, f)))) for f in _PARAM_FIELDS) and bool(np.isfinite(ll))
    return GMMResult(
        out,
        jnp.zeros((0,), jnp.int32),
        jnp.asarray(ll),
        jnp.asarray(st["em.n_iter"], jnp.int32),
        jnp.asarray(st["em.converged"]),
        jnp.asarray(_history(run, "em.")),
        jnp.asarray(not finite),
        _collapsed(out.weights * total, jnp.asarray(st["n_pos"]), total),
    )


def _zero_gmm_stats(ctype: str, k: int, d: int, dtype: Any) -> GMMStats:
    z = jnp.zeros((), dtype)
    return GMMStats(
        jnp.zeros((k,), dtype), jnp.zeros((k, d), dtype), covariance_model(ctype).zero_second_moments(k, d, dtype), z
    )


def _gmm_chunker(k: int, d: int, ctype: str, dtype: np.dtype) -> Callable[[int], int]:
    """Rows per E-step chunk for a padded batch of `rows` rows (the in-memory gmm's rule)."""
    return lambda rows: min(gmm_chunk_size(rows, k, d, ctype, dtype.itemsize), rows)
