"""How sure is a mixture fit: the parametric bootstrap likelihood-ratio test for k against k + 1
components (mclust's `mclustBootstrapLRT`) and bootstrap standard errors of fitted parameters
(mclust's `MclustBootstrap`), each run as one compiled program over the replicates (a queue of fits, `engine/queue.py`).

The test. For k = 1, 2, ... the observed statistic is LRTS = 2 (log L_{k+1} - log L_k) of the
fits of the data. Under the null (k components) its distribution is not chi-squared (the
k-component model sits on the boundary of the (k+1)-component one), so it is simulated: each
replicate draws n rows from the fitted k-component mixture and refits both models to them by
EM started from the data's fitted parameters (as mclust does), giving one LRTS under the null.
The p-value is (1 + #{replicate LRTS >= observed}) / (replicates + 1). As mclust, the
sequence stops at the first k whose p-value exceeds `level` unless `max_components` is given.

Standard errors. Each replicate resamples the rows with replacement (the nonparametric
bootstrap; its rows enter as integer weights, so the replicates share one data array) and
refits by EM from the fitted parameters; the standard errors are the replicates' standard
deviations of the mixing weights, means and covariances.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.capabilities.select import select
from jaxmix.engine import arrays as A
from jaxmix.engine import progress as _progress
from jaxmix.engine import validation as V
from jaxmix.engine.loop import weighted_mean_and_variance
from jaxmix.engine.programs import fit_jit
from jaxmix.engine.queue import iterate_queue
from jaxmix.families.params import GMMParams
from jaxmix.models import gmm as G
from jaxmix.models.mixture import _sample


@dataclasses.dataclass(frozen=True)
class BootstrapLRT:
    """The sequential bootstrap LRT (`bootstrap_lrt`): test i is k = `n_components[i]` against k + 1.

    `observed` (G,) the data's LRTS, `replicates` (n_boot, G) the simulated ones under the null
    (NaN where a replicate's fit was not finite; such replicates are left out of the p-value),
    `p_values` (G,), `seconds` the time of the replicates' fits. `str()` prints mclust's table.
    """

    covariance_type: str
    n_components: tuple[int, ...]
    observed: np.ndarray
    replicates: np.ndarray
    p_values: np.ndarray
    n_boot: int
    seconds: float

    def __str__(self) -> str:
        lines = [
            "Bootstrap sequential LRT for the number of mixture components",
            f"model = {self.covariance_type}, replicates = {self.n_boot}",
            f"{'':>10}{'LRTS':>12}{'bootstrap p-value':>20}",
        ]
        for k, obs, p in zip(self.n_components, self.observed, self.p_values, strict=True):
            lines.append(f"{f'{k} vs {k + 1}':>10}{obs:>12.3f}{p:>20.4g}")
        return "\n".join(lines)


# Replicates refitted side by side on a CPU. Faithful, 999 replicates of the tied k = 4 model
# (33 EM iterations each on average, 160 at most): 16 slots 2.9 s, 64 slots 3.8 s, 249 slots 8.6 s
# (a step costs in proportion to its width there, and the slowest replicate's tail runs at full width).
# On an accelerator all replicates run side by side.
CPU_SLOTS = 16


@fit_jit(static_argnames=("max_iter", "chunk_size", "slots"))
def _refit_all(xs, ws, params, tol, reg_covar, *, max_iter, chunk_size, slots):
    """EM from `params` on each of the B data sets `xs` (B, n, d) with weights `ws` (B, n), the
    replicates through a queue of `slots` (`engine/queue.py`: each to its own convergence, not all
    to the slowest). Returns (mean log-likelihood (B,), parameters (B, ...), converged (B,))."""
    shifts = jax.vmap(lambda x, w: weighted_mean_and_variance(x, w, chunk_size)[0])(xs, ws)
    initial = jax.vmap(lambda sh: dataclasses.replace(params, means=params.means - sh))(shifts)
    totals = jnp.sum(ws, axis=1)

    def step(p, prev, job):
        new, stats = G.em_update(xs[job], ws[job], shifts[job], p, reg_covar, None, None, None, chunk_size)
        objective = stats.loglik / totals[job]
        return new, objective, jnp.abs(objective - prev) < tol

    fitted, info = iterate_queue(step, initial, slots, max_iter, xs.dtype)
    ll = jax.vmap(lambda x, w, sh, p: G._final(x, w, sh, p, chunk_size)[1])(xs, ws, shifts, fitted)
    fitted = jax.vmap(lambda p, sh: dataclasses.replace(p, means=p.means + sh))(fitted, shifts)
    return ll, fitted, info.converged


def _refit(xs, params: GMMParams, weights, max_iter, tol, reg_covar):
    """`_refit_all` with its sizes: (mean log-likelihood (B,), parameters, finite (B,)) on the host."""
    b, n, d = xs.shape
    k = params.n_components
    ws = jnp.ones((b, n), xs.dtype) if weights is None else weights
    chunk = min(G.gmm_chunk_size(n, k, d, params.covariance_type, xs.dtype.itemsize, b), n)
    slots = b if jax.default_backend() != "cpu" else min(b, CPU_SLOTS)
    ll, fitted, _ = _refit_all(
        xs,
        ws,
        params,
        A.scalar(tol, xs.dtype),
        A.scalar(reg_covar, xs.dtype),
        max_iter=max_iter,
        chunk_size=chunk,
        slots=slots,
    )
    ll = np.asarray(ll, np.float64)
    leaves = [np.asarray(a) for a in jax.tree.leaves(fitted)]
    finite = np.isfinite(ll) & np.all([np.all(np.isfinite(a.reshape(b, -1)), axis=1) for a in leaves], axis=0)
    return ll, fitted, finite


def bootstrap_lrt(
    key: jax.Array,
    x: Any,
    covariance_type: str = "full",
    *,
    max_components: int | None = None,
    n_boot: int = 999,
    level: float = 0.05,
    init: str = "hc",
    n_init: int = 10,
    max_iter: int = 500,
    tol: float = 1e-5,
    reg_covar: float = 1e-6,
    progress: bool = False,
) -> BootstrapLRT:
    """Parametric bootstrap LRT for k against k + 1 components (mclust's `mclustBootstrapLRT`).

    The data are fitted for k = 1 .. `max_components` + 1 by `jaxmix.select` (with
    `init`, `n_init`, `max_iter`, `tol`, `reg_covar`); for each k the `n_boot` replicates
    are drawn from the k-component fit and both models refitted to each by EM from the
    data's fits, all replicates in one program per model (a queue of fits, each to its own convergence). Without
    `max_components` the tests run k = 1, 2, ... up to 8 vs 9 and stop at the first
    p-value above `level`.

    Args:
      key: a JAX PRNG key.
      x: (n_samples, n_features) data.
      covariance_type: the model tested (any of `jaxmix.select`'s).
      max_components: test every k = 1 .. max_components against k + 1.
      n_boot: replicates per test (mclust's default 999).
      level: the sequence stops at the first p-value above it (without max_components).

    Returns:
      A `BootstrapLRT`; print it for mclust's table.

    Example:
      >>> import jax, jaxmix
      >>> t = jaxmix.bootstrap_lrt(jax.random.key(0), jaxmix.datasets.load_faithful(), "tied",
      ...                          max_components=2, n_boot=19, n_init=2)
      >>> t.n_components, float(t.p_values[0]) == 0.05   # 1 vs 2: no replicate reaches the data's LRTS
      ((1, 2), True)
    """
    V.check_key(key)
    x = V.check_data(x)
    n = x.shape[0]
    n_boot = V.check_positive_int(n_boot, "n_boot")
    V.check_scalar(level, "level", nonnegative=True)
    if max_components is not None:
        max_components = V.check_positive_int(max_components, "max_components")
    top = 8 if max_components is None else max_components
    if top + 1 > n:
        raise ValueError(f"max_components={top} needs at least {top + 1} rows, got {n}")
    k_fit, k_boot = jax.random.split(key)
    grid = select(
        k_fit,
        x,
        range(1, top + 2),
        (covariance_type,),
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        reg_covar=reg_covar,
    )
    total = n  # select's mean log-likelihood is per row here (no weights)
    ll = grid.log_likelihood[:, 0] * total
    tested, observed, p_values, columns = [], [], [], []
    seconds = 0.0
    for k in range(1, top + 1):
        p0 = grid.fit(k, covariance_type).params
        p1 = grid.fit(k + 1, covariance_type).params
        obs = 2.0 * (ll[k] - ll[k - 1])
        keys = jax.random.split(jax.random.fold_in(k_boot, k), n_boot)
        t0 = time.perf_counter()
        if progress:
            _progress.note(f"jaxmix bootstrap_lrt: {k} vs {k + 1}, {n_boot} replicates")
        xs = jax.vmap(lambda kb, p=p0: _sample(kb, p, n_samples=n)[0])(keys)
        ll0, _, ok0 = _refit(xs, p0, None, max_iter, tol, reg_covar)
        ll1, _, ok1 = _refit(xs, p1, None, max_iter, tol, reg_covar)
        boot = 2.0 * total * (ll1 - ll0)
        seconds += time.perf_counter() - t0
        finite = np.isfinite(boot) & ok0 & ok1
        boot = np.where(finite, boot, np.nan)
        p = (1.0 + np.sum(boot[finite] >= obs)) / (np.sum(finite) + 1.0)
        tested.append(k)
        observed.append(obs)
        p_values.append(p)
        columns.append(boot)
        if max_components is None and p > level:
            break
    return BootstrapLRT(
        covariance_type,
        tuple(tested),
        np.asarray(observed),
        np.stack(columns, axis=1),
        np.asarray(p_values),
        n_boot,
        seconds,
    )


@dataclasses.dataclass(frozen=True)
class BootstrapSE:
    """Bootstrap standard errors of a fit's parameters (`bootstrap_se`): arrays shaped like the
    fit's `weights`, `means` and `covariances`, and the replicates' parameters (leading axis n_boot)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    replicates: GMMParams
    n_boot: int


def bootstrap_se(
    key: jax.Array,
    fit: Any,
    x: Any,
    *,
    n_boot: int = 999,
    max_iter: int = 500,
    tol: float = 1e-5,
    reg_covar: float = 1e-6,
) -> BootstrapSE:
    """Bootstrap standard errors of a Gaussian mixture's parameters (mclust's `MclustBootstrap`, type "bs").

    Each of `n_boot` replicates resamples the rows of `x` with replacement and refits by EM
    from `fit`'s parameters (so the components keep their order), all replicates in one
    compiled program.

    Args:
      key: a JAX PRNG key.
      fit: a `GMMResult` or `GMMParams` fitted to `x`.
      x: (n_samples, n_features) the data it was fitted to.

    Example:
      >>> import jax, jaxmix
      >>> x = jaxmix.datasets.load_faithful()
      >>> g = jaxmix.gmm(jax.random.key(0), x, 2, covariance_type="diag")
      >>> se = jaxmix.bootstrap_se(jax.random.key(1), g, x, n_boot=50)
      >>> se.means.shape, bool((se.means > 0).all())
      ((2, 2), True)
    """
    V.check_key(key)
    x = V.check_data(x)
    params = fit.params if hasattr(fit, "params") else fit
    if not isinstance(params, GMMParams):
        raise TypeError(f"fit must be a GMMResult or GMMParams, got {type(fit).__name__}")
    if params.means.shape[1] != x.shape[1]:
        raise ValueError(f"fit has {params.means.shape[1]} features, x has {x.shape[1]}")
    n_boot = V.check_positive_int(n_boot, "n_boot")
    n = x.shape[0]
    rows = jax.random.randint(key, (n_boot, n), 0, n)
    counts = jax.vmap(lambda r: jnp.zeros((n,), x.dtype).at[r].add(1.0))(rows)
    xs = jnp.broadcast_to(x, (n_boot, *x.shape))
    _, rep, ok = _refit(xs, params, counts, max_iter, tol, reg_covar)

    def sd(a: Any) -> np.ndarray:
        return np.std(np.asarray(a, np.float64)[ok], axis=0, ddof=1)

    return BootstrapSE(sd(rep.weights), sd(rep.means), sd(rep.covariances), rep, int(ok.sum()))
