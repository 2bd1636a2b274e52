"""Model selection: every (k, covariance type, restart) Gaussian mixture in one program per type.

The lecture ends on what k-means cannot do: set k, choose the shape of the
clusters, or escape its random start. A probabilistic model can: fit every
candidate and keep the one with the best information criterion (BIC by
default, as mclust does). On an accelerator the whole grid is one compiled
program per covariance type: the fits for different k share one shape, the
largest k, with the components beyond each k masked out (zero weight,
excluded from the statistics, the log-likelihood and the parameter count),
and the (k, restart) fits run through a queue of slots, each to its own
convergence (`engine/queue.py`). On small data the
closed-form types (full, tied, diag, spherical, EII, EEI) share one program
(`families/gaussian_dense.py`).

A masked fit equals the fit with that many components from the same key
(`jaxmix.gmm(key, x, k, n_init=n_init)`): the seeding draws are
per-centre (see `seeding.kmeans_plusplus`), the inactive components take
no responsibility and never count.

Degenerate fits. A component that sits on a few repeated values (Old
Faithful's `waiting` is recorded in whole minutes) can shrink its variance
to `reg_covar` and buy an unbounded likelihood. mclust reports such fits
as missing (a singular covariance); here a restart is degenerate when some
active component's covariance, minus `reg_covar`, is along some direction
no larger than rounding error (`100 eps`) or half of `reg_covar`,
relative to the data's variance. Degenerate restarts never win; a cell
whose every restart is degenerate is reported with `degenerate=True` and
infinite criteria.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.capabilities.select_grid import _SELECT_OUTPUTS, _select_small, _select_type
from jaxmix.capabilities.select_grid import _degenerate as _degenerate
from jaxmix.capabilities.select_grid import select_slots as select_slots
from jaxmix.capabilities.select_result import SelectResult, tabulate
from jaxmix.engine import arrays as A
from jaxmix.engine import buckets as B
from jaxmix.engine import progress as _progress
from jaxmix.engine import sharding as S
from jaxmix.engine import validation as V
from jaxmix.families.names import COVARIANCE_TYPES, mclust_models
from jaxmix.families.registry import check_covariance_type
from jaxmix.models import gmm as G
from jaxmix.models import gmm_starts as ST
from jaxmix.models.gmm_starts import check_hc_input

CRITERIA = ("bic", "aic", "icl")
SELECT_INIT_METHODS = ("kmeans", "k-means++", "random_from_data", "hc")


def _as_components(n_components: Any, n: int) -> tuple[int, ...]:
    if isinstance(n_components, int | np.integer) and not isinstance(n_components, bool):
        n_components = [n_components]
    if not isinstance(n_components, Iterable) or isinstance(n_components, str):
        raise TypeError(f"n_components must be an int or a sequence of ints (e.g. range(1, 10)), got {n_components!r}")
    ks = list(n_components)
    if not ks:
        raise ValueError("n_components is empty")
    for k in ks:
        if not isinstance(k, int | np.integer) or isinstance(k, bool):
            raise TypeError(f"n_components must hold ints, got {k!r}")
        if k < 1:
            raise ValueError(f"n_components must be >= 1, got {k}")
        if k > n:
            raise ValueError(f"n_components={k} must be <= n_samples={n}")
    if len(set(ks)) != len(ks):
        raise ValueError(f"n_components has repeated values: {ks}")
    return tuple(int(k) for k in ks)


def _as_types(covariance_types: Any, d: int) -> tuple[str, ...]:
    if isinstance(covariance_types, str):
        covariance_types = mclust_models(d) if covariance_types == "mclust" else (covariance_types,)
    types = tuple(covariance_types)
    if not types:
        raise ValueError("covariance_types is empty")
    for t in types:
        if t not in COVARIANCE_TYPES:
            raise ValueError(f'covariance_types must be "mclust" or among {COVARIANCE_TYPES}, got {t!r}')
        check_covariance_type(t, d)
    if len(set(types)) != len(types):
        raise ValueError(f"covariance_types has repeated values: {types}")
    return types


def select(
    key: jax.Array,
    x: Any,
    n_components: int | Sequence[int] = range(1, 10),
    covariance_types: str | Sequence[str] = ("full", "tied", "diag", "spherical"),
    *,
    n_init: int = 10,
    criterion: str = "bic",
    init: str | None = None,
    max_iter: int = 500,
    tol: float = 1e-6,
    reg_covar: float = 1e-6,
    weights: Any = None,
    chunk_size: int | None = None,
    progress: bool = False,
    noise: bool = False,
    hypervolume: float | None = None,
) -> SelectResult:
    """Fit a Gaussian mixture for every k and covariance type, and pick the best by an information criterion.

    One compiled program per covariance type runs every (k, restart) fit
    at once: the fits share the largest k's shape, the components beyond
    each k are masked out, and the (k, restart) fits run through a queue of
    slots (`engine/queue.py`: on a CPU a quarter of the fits side by side, at
    least 16; on an accelerator all of them), each to its own convergence, so
    on a CPU the grid costs about the sum of its fits' iterations, not every
    fit times the slowest. For each k the restart
    with the highest log-likelihood (excluding degenerate ones, see below) is
    kept; the winner of the grid has the lowest criterion.

    Args:
      key: a JAX PRNG key. Restart r of every k draws from the same stream as
        restart r of `jaxmix.gmm` (`jaxmix.engine.random.split`), so each cell equals
        `jaxmix.gmm(key, x, k, covariance_type=..., n_init=n_init)` with the
        same `init`, `max_iter`, `tol` and `reg_covar`.
      x: (n_samples, n_features) data.
      n_components: the k values (ints >= 1, distinct).
      covariance_types: some of "full" (mclust's VVV), "tied" (EEE),
        "diag" (VVI), "spherical" (VII) and mclust's models by name
        ("EII", ..., "VEV", ...; "E", "V" for one feature), or "mclust"
        for mclust's default list (the fourteen, or E and V when d = 1).
      n_init: restarts per (k, covariance type).
      criterion: "bic" (default, as mclust), "aic" or "icl"; lower is better.
      init: None (default): "hc", or "kmeans" for row-sharded or traced x
        (the agglomeration runs on the host). "hc": mclust's start (model-based hierarchical
        agglomeration on SVD-scaled data, one deterministic partition per k)
        for restart 0, k-means on standardised columns for the others, so no
        start depends on the units of the columns (bench/select_starts.py:
        on eight public data sets it matched or beat mclust's BIC in more
        cells than k-means on the raw columns); or "kmeans", "k-means++",
        "random_from_data" on the raw columns ("random" draws depend on k,
        so it cannot be masked). See `jaxmix.gmm`.
      max_iter, tol, reg_covar, weights, chunk_size: as in `jaxmix.gmm`
        (tighter defaults: criteria compare converged fits).
      progress: a status line on stderr for long fits.
      noise: refit every cell with mclust's uniform noise component
        (`jaxmix.gmm_noise`; `capabilities/select_noise.py`) over `hypervolume`
        (default: mclust's `hypvol` of x); the criteria count the noise
        proportion, `SelectResult.noise_weight` holds it per cell, and a
        cell's labels are -1 for rows most likely noise.

    Returns:
      A `SelectResult`: the tables (`bic`, `aic`, `icl`, `log_likelihood`,
      `converged`, `n_iter`, `degenerate`, `n_parameters`), `best_k`,
      `best_covariance_type`, `best` (a `GMMResult`), `fit(k, type)`, and a
      printable `table()`. `jaxmix.plot(result)` draws the criterion by k.

    Example:
      >>> import jax, jaxmix
      >>> x = jaxmix.datasets.load_faithful()
      >>> s = jaxmix.select(jax.random.key(0), x, range(1, 5), ("tied",), n_init=3)
      >>> s.best_k, s.best_covariance_type, s.bic.shape
      (3, 'tied', (4, 1))
    """
    V.check_key(key)
    x = V.check_data(x)
    n, d = x.shape
    w = V.check_weights(weights, n, x.dtype)
    ks = _as_components(n_components, n)
    V.check_n_clusters(max(ks), n, w, name="n_components")
    types = _as_types(covariance_types, d)
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    if init is None:
        init = "kmeans" if A.is_traced(x) or S.row_axes_of(x) is not None else "hc"
    if not isinstance(init, str) or init not in SELECT_INIT_METHODS:
        raise ValueError(f"init must be one of {SELECT_INIT_METHODS} for select, got {init!r}")
    if init == "hc":
        check_hc_input(x)
    n_init = V.check_positive_int(n_init, "n_init")
    max_iter = V.check_positive_int(max_iter, "max_iter")
    V.check_scalar(tol, "tol", nonnegative=True)
    V.check_scalar(reg_covar, "reg_covar", nonnegative=True)
    chunk_size = V.check_chunk_size(chunk_size)
    k_max = max(ks)
    fits: dict[str, Any] = {}
    sharded = S.row_axes_of(x)
    if sharded is not None:  # split the weights like x once, not once per covariance type
        w = S.place_weights(w if weights is not None else None, x, *sharded)
    start = time.monotonic()
    plan = None if sharded is not None or A.is_traced(x) else B.plan(n, k_max, d, len(ks) * n_init, max_iter)
    hc = None  # init="hc"'s starting labels on the exact path, computed once for every type
    if plan is not None:  # padded once; the starting centres once for every covariance type
        xp, wp = B.pad_rows(x, w, plan.rows)
        starts = ST.small_starts(key, xp, wp, ks, k_max, init, n_init)
    for j, ctype in enumerate(types):
        if progress:
            _progress.note(
                f"jaxmix select: {ctype} ({j + 1}/{len(types)}), {len(ks)} values of k x {n_init} restarts "
                f"({time.monotonic() - start:.1f} s)"
            )
        if plan is not None:
            fits[ctype] = _select_small(
                plan, key, xp, wp, starts, ks, tol, reg_covar, ctype, init, n_init, chunk_size, progress
            )
            continue
        chunk = chunk_size or G.gmm_chunk_size(n, k_max, d, ctype, x.dtype.itemsize, len(ks) * n_init)
        static = dict(
            covariance_type=ctype, k_max=k_max, init=init, n_init=n_init, max_iter=max_iter, chunk_size=min(chunk, n)
        )
        args: tuple[Any, ...] = (key, x, w, jnp.asarray(ks, jnp.int32), A.scalar(tol, x.dtype))
        args = (*args, A.scalar(reg_covar, x.dtype))
        if init == "hc":  # x is on one device (checked above): the program with its starting labels
            if hc is None:
                hc = jnp.asarray(ST.hc_starts(key, x, w, ks, k_max, n_init))
            args = (*args, None, None, hc, None)
        out = S.call_fit(
            f"select {ctype}",
            _select_type,
            args,
            static,
            row_args=(False, True, True, False, False, False),
            out_rows=S.RowDict(tuple((name, 1 if name == "labels" else False) for name in _SELECT_OUTPUTS)),
            progress=progress,
            weights_given=True,
        )
        # Labels of row-sharded data stay on the devices (split like x); the rest comes to the host.
        fits[ctype] = {
            name: v if sharded is not None and name == "labels" else jax.device_get(v) for name, v in out.items()
        }
    if noise:
        from jaxmix.capabilities import select_noise

        if sharded is not None or A.is_traced(x):
            raise ValueError("noise=True needs x as an array on one device, not traced")
        log_v = select_noise.log_hypervolume(x, hypervolume)
        select_noise.add_noise(fits, x, w, ks, log_v, tol=tol, reg_covar=reg_covar, max_iter=max_iter)
    result = tabulate(ks, types, criterion, d, fits, noise=noise)
    if progress:
        _progress.note(
            f"jaxmix select: done in {time.monotonic() - start:.1f} s; best k = {result.best_k}, "
            f"{result.best_covariance_type} ({criterion.upper()} {float(result.scores.min()):.6g})"
        )
    return result
