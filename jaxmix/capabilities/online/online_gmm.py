"""Online (stepwise) EM for Gaussian mixtures (Cappe and Moulines 2009): state, pure jitted steps
(`online_gmm_init`, `online_gmm_update`) and the driver `jaxmix.stream.online_gmm`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxmix.capabilities.online.passes import (
    _batch_items,
    _check_batch,
    _check_driver_args,
    _check_iterable,
    _init_rows,
    _is_array,
    _pass_loop,
    _sample_rows,
    _seed_of,
    _weighted_mean,
)
from jaxmix.engine import arrays as A
from jaxmix.engine import progress_bar as _bar
from jaxmix.engine import validation as V
from jaxmix.engine.programs import fit_jit
from jaxmix.families.params import GMMParams
from jaxmix.families.registry import check_covariance_type
from jaxmix.models import gmm as G
from jaxmix.models import gmm_em as EM
from jaxmix.models import gmm_starts as ST

GMM_INIT_METHODS = G.INIT_METHODS


class OnlineGMMState(NamedTuple):
    """State of an online EM fit (a pytree).

    `centered_params` has its means minus `shift`; `state.params` gives the
    mixture in data coordinates (a `jaxmix.GMMParams`).
    """

    centered_params: GMMParams  # current parameters, means about `shift`
    stats: EM.GMMStats  # running statistics per unit weight about `shift` (resp sums to 1; loglik: running mean)
    shift: jax.Array  # (d,) weighted mean of the first batch
    n_steps: jax.Array  # () int32, updates done
    kappa: jax.Array  # () step-size exponent in (0.5, 1]
    t0: jax.Array  # () step-size offset >= 0
    reg_covar: jax.Array  # () added to the covariances' diagonal
    burn_in: jax.Array  # () int32, updates before the first M-step
    seed: jax.Array  # () uint32, seed of the shuffles of an in-memory fit

    @property
    def params(self) -> GMMParams:
        """The mixture in data coordinates."""
        p = self.centered_params
        return dataclasses.replace(p, means=p.means + self.shift)


class OnlineGMMResult(NamedTuple):
    """The outcome of `online_gmm`."""

    params: GMMParams  # weights, means, covariances, precisions_cholesky (data coordinates)
    n_steps: int  # updates (batches) done
    n_passes: int  # passes over the data
    history: jax.Array  # (n_steps,) mean log-likelihood per unit weight of each batch, before its update
    state: OnlineGMMState  # to continue with `online_gmm_update`


def _scaled(stats: EM.GMMStats, factor) -> EM.GMMStats:
    return EM.GMMStats(*(a * factor for a in stats))


def _gmm_seed(key, x, w, kappa, t0, reg_covar, burn_in, *, ctype, k, method, chunk_size):
    shift = _weighted_mean(x, w)
    s0 = _scaled(ST._initial_stats(key, x, w, shift, ctype, k, method, chunk_size), 1.0 / jnp.sum(w))
    params = EM.m_step(s0, ctype, reg_covar, None)
    return OnlineGMMState(params, s0, shift, jnp.int32(0), kappa, t0, reg_covar, burn_in, _seed_of(key))


_gmm_init = fit_jit(static_argnames=("ctype", "k", "method", "chunk_size"))(_gmm_seed)


@fit_jit(static_argnames=("m", "ctype", "k", "method", "chunk_size"))
def _gmm_start(key, x, w, m_true, kappa, t0, reg_covar, burn_in, *, m, ctype, k, method, chunk_size):
    """`_gmm_init` on `m_true` random rows of an in-memory data set (one program)."""
    xi, wi = _sample_rows(key, x, w, m_true, m)
    return _gmm_seed(key, xi, wi, kappa, t0, reg_covar, burn_in, ctype=ctype, k=k, method=method, chunk_size=chunk_size)


def _gmm_step(state: OnlineGMMState, x, w, chunk_size: int):
    """One stepwise-EM update (pure): `(state, mean log-likelihood of the batch per unit weight)`."""
    p = state.centered_params
    dt = p.means.dtype
    total = jnp.sum(w)
    inv = 1.0 / jnp.maximum(total, jnp.finfo(dt).tiny)
    sb = _scaled(EM.e_step(x, w, state.shift, p, chunk_size), inv)
    t = (state.n_steps + 1).astype(dt)
    rho = jnp.where(total > 0, (t + state.t0) ** (-state.kappa), 0.0)
    stats = EM.GMMStats(*((1.0 - rho) * a + rho * b for a, b in zip(state.stats, sb, strict=True)))
    new = EM.m_step(stats, p.covariance_type, state.reg_covar, None, previous=p.covariances)
    m_step_now = state.n_steps + 1 > state.burn_in
    new = jax.tree_util.tree_map(lambda a, b: jnp.where(m_step_now, a, b), new, p)
    return state._replace(centered_params=new, stats=stats, n_steps=state.n_steps + 1), sb.loglik


@fit_jit(static_argnames=("chunk_size",))
def _gmm_update(state, x, w, *, chunk_size):
    return _gmm_step(state, x, w, chunk_size)


@fit_jit(static_argnames=("batch_size", "chunk_size"))
def _gmm_pass(state, x, w, n_valid, pass_index, steps_left, *, batch_size, chunk_size):
    def step(s, xb, wb):
        return _gmm_step(s, xb, wb, chunk_size)

    return _pass_loop(
        step, lambda s: jnp.bool_(False), state, x, w, n_valid, state.seed, pass_index, steps_left, batch_size
    )


def _check_gmm_options(covariance_type: Any, init: Any, kappa: Any, t0: Any, reg_covar: Any, burn_in: Any) -> int:
    """Check the options of an online GMM fit; returns `burn_in`."""
    check_covariance_type(covariance_type)
    if not isinstance(init, str) or init not in GMM_INIT_METHODS:
        raise ValueError(f"init must be one of {GMM_INIT_METHODS}, got {init!r}")
    V.check_scalar(kappa, "kappa")
    V.check_scalar(t0, "t0", nonnegative=True)
    if not A.is_traced(kappa) and not 0.5 < float(kappa) <= 1.0:
        raise ValueError(f"kappa must be in (0.5, 1] (Robbins-Monro: sum rho = inf, sum rho^2 < inf), got {kappa}")
    V.check_scalar(reg_covar, "reg_covar", nonnegative=True)
    return V.check_positive_int(burn_in, "burn_in", 0)


def online_gmm_init(
    key: jax.Array,
    first_batch: Any,
    n_components: int,
    *,
    covariance_type: str = "full",
    init: str = "kmeans",
    weights: Any = None,
    kappa: float = 0.6,
    t0: float = 2.0,
    reg_covar: float = 1e-6,
    burn_in: int = 0,
) -> OnlineGMMState:
    """Start an online EM fit (Cappé and Moulines 2009) from the first batch.

    Initial responsibilities come from `init` on `first_batch` as in
    `jaxmix.gmm` ("kmeans", "k-means++", "random_from_data", "random"); their
    statistics per unit weight are the starting running statistics, and an
    M-step gives the starting parameters.

    Args:
      key: a JAX PRNG key.
      first_batch: (b, d) rows, b >= n_components.
      n_components: number of components k.
      covariance_type: "full", "tied", "diag" or "spherical".
      init: how the initial responsibilities are made.
      weights: (b,) non-negative sample weights (default ones).
      kappa: step-size exponent in (0.5, 1]: `rho_t = (t + t0)^(-kappa)`.
      t0: step-size offset >= 0 (larger: the first batches count less).
      reg_covar: >= 0, added to the diagonal of every covariance.
      burn_in: updates that only accumulate statistics before the first M-step.

    Returns:
      An `OnlineGMMState` for `online_gmm_update`.

    Example:
      >>> import jax, jaxmix
      >>> from jaxmix.capabilities.online import online_gmm_init
      >>> x = jaxmix.datasets.load_faithful()
      >>> s = online_gmm_init(jax.random.key(0), x[:100], 2)
      >>> s.params.covariances.shape
      (2, 2, 2)
    """
    V.check_key(key)
    x = _check_batch(first_batch, None, None, name="first_batch")
    b, d = x.shape
    k = V.check_positive_int(n_components, "n_components")
    if k > b:
        raise ValueError(f"n_components={k} must be <= the number of rows of the first batch ({b})")
    w = V.check_weights(weights, b, x.dtype)
    V.check_n_clusters(k, b, w, name="n_components")
    burn = _check_gmm_options(covariance_type, init, kappa, t0, reg_covar, burn_in)
    dt = x.dtype
    chunk = min(G.gmm_chunk_size(b, k, d, covariance_type, dt.itemsize), b)
    return _gmm_init(
        key,
        x,
        w,
        jnp.asarray(kappa, dt),
        jnp.asarray(t0, dt),
        jnp.asarray(reg_covar, dt),
        jnp.int32(burn),
        ctype=covariance_type,
        k=k,
        method=init,
        chunk_size=chunk,
    )


def online_gmm_update(state: OnlineGMMState, batch: Any, weights: Any = None) -> tuple[OnlineGMMState, jax.Array]:
    """One stepwise-EM update (Cappé and Moulines 2009).

    E-step on the batch under the current parameters (the core GMM E-step,
    about the state's shift); the batch statistics per unit weight `s_b`
    are blended into the running ones, `s <- (1 - rho_t) s + rho_t s_b` with
    `rho_t = (t + t0)^(-kappa)` for the t-th update (t = 1, 2, ...); then the
    closed-form M-step (with `reg_covar`) gives the new parameters, unless
    `t <= burn_in`. Pure and jit-compiled (one compile per batch shape).

    Args:
      state: from `online_gmm_init` or a previous update.
      batch: (b, d) rows.
      weights: (b,) non-negative sample weights (default ones).

    Returns:
      `(state, batch_mean_log_likelihood)`: the batch's mean log-likelihood
      per unit weight under the parameters *before* the update.

    Example:
      >>> import jax, jaxmix
      >>> from jaxmix.capabilities.online import online_gmm_init, online_gmm_update
      >>> x = jaxmix.datasets.load_faithful()
      >>> s = online_gmm_init(jax.random.key(0), x[:100], 2)
      >>> s, ll = online_gmm_update(s, x[100:200])
      >>> int(s.n_steps), bool(ll < 0)
      (1, True)
    """
    d = state.shift.shape[0]
    p = state.centered_params
    x = _check_batch(batch, d, p.means.dtype)
    w = V.check_weights(weights, x.shape[0], x.dtype)
    k = p.means.shape[0]
    chunk = min(G.gmm_chunk_size(x.shape[0], k, d, p.covariance_type, x.dtype.itemsize), x.shape[0])
    return _gmm_update(state, x, w, chunk_size=chunk)


def online_gmm(
    key: jax.Array,
    batches: Any,
    n_components: int,
    *,
    covariance_type: str = "full",
    init: str = "kmeans",
    kappa: float = 0.6,
    t0: float = 2.0,
    reg_covar: float = 1e-6,
    burn_in: int = 0,
    n_passes: int = 1,
    max_steps: int | None = None,
    batch_size: int = 1024,
    weights: Any = None,
    init_size: int | None = None,
    progress: bool | None = None,
) -> OnlineGMMResult:
    """Fit a Gaussian mixture by online (stepwise) EM, one batch at a time.

    Cappé and Moulines (2009): running sufficient statistics per unit
    weight, `s <- (1 - rho_t) s + rho_t s_batch` with
    `rho_t = (t + t0)^(-kappa)`, `kappa` in (0.5, 1], then an M-step after
    every batch (past `burn_in`); see `online_gmm_update`. The result's
    `params` is a `jaxmix.GMMParams`: `jaxmix.predict`, `log_prob`, `bic`,
    ... work on it.

    Sources as in `minibatch_kmeans`: an in-memory (n, d) array is shuffled
    by `key` every pass and read in batches of `batch_size` rows (one
    compiled loop per pass), seeded from `init_size` random rows (default
    `3 * batch_size`); any other iterable of (b, d) arrays or `(x, weights)`
    pairs is read as it comes, seeded from its first batch, which is then
    also the first update.

    Args:
      key: a JAX PRNG key.
      batches: an (n, d) array or an iterable of batches.
      n_components: number of components k.
      covariance_type: "full", "tied", "diag" or "spherical".
      init: initial responsibilities as in `jaxmix.gmm`.
      kappa, t0: the step-size schedule (kappa in (0.5, 1], t0 >= 0).
      reg_covar: >= 0, added to every covariance's diagonal.
      burn_in: updates before the first M-step.
      n_passes: passes over the data (a re-iterable source for > 1).
      max_steps: stop after this many updates (default: no limit).
      batch_size: rows per batch (array input).
      weights: (n,) sample weights (array input).
      init_size: rows used for the initialisation (array input).
      progress: a tqdm bar over batches (None: only when stderr is a terminal).

    Returns:
      An `OnlineGMMResult`: `params`, `n_steps`, `n_passes`, `history` (each
      batch's mean log-likelihood before its update), `state`.

    Example:
      >>> import jax, jaxmix
      >>> from jaxmix.capabilities.online import online_gmm
      >>> x = jaxmix.datasets.load_faithful()
      >>> g = online_gmm(jax.random.key(0), x, 2, batch_size=64, n_passes=2)
      >>> jaxmix.predict(g.params, x).shape, g.n_steps
      ((272,), 10)
    """
    V.check_key(key)
    b, n_passes, max_steps = _check_driver_args(batch_size, n_passes, max_steps)
    opts = dict(covariance_type=covariance_type, init=init, kappa=kappa, t0=t0, reg_covar=reg_covar, burn_in=burn_in)
    hist: list[jax.Array] = []
    done, passes = 0, 0
    if _is_array(batches):
        x = V.check_data(batches)
        w = V.check_weights(weights, x.shape[0], x.dtype, rescale=True)  # all weights at once: one common factor
        n, d = x.shape
        k = V.check_n_clusters(n_components, n, w, name="n_components")
        burn = _check_gmm_options(covariance_type, init, kappa, t0, reg_covar, burn_in)
        m_true, m = _init_rows(w, n, k, b, init_size)
        dt = x.dtype
        state = _gmm_start(
            key,
            x,
            w,
            jnp.int32(m_true),
            jnp.asarray(kappa, dt),
            jnp.asarray(t0, dt),
            jnp.asarray(reg_covar, dt),
            jnp.int32(burn),
            m=m,
            ctype=covariance_type,
            k=k,
            method=init,
            chunk_size=min(G.gmm_chunk_size(m, k, d, covariance_type, dt.itemsize), m),
        )
        b = min(b, n)
        chunk = min(G.gmm_chunk_size(b, k, d, covariance_type, x.dtype.itemsize), b)
        per_pass = -(-n // b)
        with _bar.bar(min(per_pass * n_passes, max_steps), "jaxmix online_gmm", progress) as pbar:
            for p in range(n_passes):
                if done >= max_steps:
                    break
                passes += 1
                state, i, _, h = _gmm_pass(
                    state,
                    x,
                    w,
                    jnp.int32(n),
                    jnp.int32(p),
                    jnp.int32(max_steps - done),
                    batch_size=b,
                    chunk_size=chunk,
                )
                i_host = int(i)
                done += i_host
                hist.append(h[:i_host])
                pbar.update(i_host)
                pbar.set_postfix(loglik=f"{float(h[i_host - 1]):.4g}")
    else:
        if weights is not None:
            raise ValueError("weights go with array input; for an iterable, yield (x, weights) pairs")
        _check_iterable(batches, n_passes)
        st: OnlineGMMState | None = None
        try:
            total = len(batches) * n_passes
        except TypeError:
            total = None
        with _bar.bar(total, "jaxmix online_gmm", progress) as pbar:
            for p in range(n_passes):
                if done >= max_steps:
                    break
                passes += 1
                for j, (xb, wb) in enumerate(_batch_items(batches)):
                    name = f"batch {j} of pass {p}"
                    if st is None:
                        x0 = _check_batch(xb, None, None, name=name)
                        st = online_gmm_init(key, x0, n_components, weights=wb, **opts)  # type: ignore[arg-type]
                    x = _check_batch(xb, st.shift.shape[0], st.centered_params.means.dtype, name=name)
                    st, ll = online_gmm_update(st, x, wb)
                    hist.append(ll)
                    done += 1
                    pbar.update(1)
                    if done >= max_steps:
                        break
        if st is None:
            raise ValueError("batches is empty: no batch to fit")
        state = st
    history = jnp.concatenate([jnp.atleast_1d(h) for h in hist]) if hist else jnp.zeros((0,))
    return OnlineGMMResult(state.params, done, passes, history, state)
