"""`select(..., noise=True)`: every cell of the grid refitted with mclust's uniform noise component.

Each (k, covariance type) cell's best ordinary fit starts a fit with a noise
component (`models/gmm_noise.py`) with pi_0 = `NOISE_START` (mclust asks the user
for the first noise rows; here the cell's own fit and a noise share start EM, which
then moves the outlying rows to the noise). The cells of a type run in one compiled
program (vmapped, masked to each k as the grid is). The criteria count two more
parameters (the noise proportion and the hypervolume, as mclust), and the log-likelihood is the whole model's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.capabilities.select_grid import _degenerate
from jaxmix.engine import arrays as A
from jaxmix.engine.loop import weighted_mean_and_variance
from jaxmix.engine.programs import fit_jit
from jaxmix.families.params import GMMParams
from jaxmix.models import gmm as G
from jaxmix.models.gmm_noise import log_hypervolume as log_hypervolume
from jaxmix.models.gmm_noise import noise_final, noise_fit

NOISE_START = 0.1


@fit_jit(static_argnames=("ctype", "max_iter", "chunk_size"))
def _noise_cells(x, weights, cells, ks, log_v, tol, reg_covar, var, *, ctype, max_iter, chunk_size):
    shift, _ = weighted_mean_and_variance(x, weights, chunk_size)
    k_max = cells.means.shape[1]
    static = dict(ctype=ctype, max_iter=max_iter, chunk_size=chunk_size)

    def one(k, p):
        active = jnp.arange(k_max) < k
        start = GMMParams.from_covariances(p.weights, p.means - shift, p.covariances, ctype)
        lp0 = jnp.log(jnp.asarray(NOISE_START, x.dtype))
        (fit, lp0), info = noise_fit(x, weights, shift, start, lp0, log_v, tol, reg_covar, active, **static)
        labels, ll, hard = noise_final(x, weights, shift, fit, lp0, log_v, chunk_size)
        degenerate = _degenerate(fit, active, var, reg_covar)
        out = dataclasses.replace(fit, means=fit.means + shift)
        return out, jnp.exp(lp0), labels, ll, hard, degenerate, info

    return jax.vmap(one)(ks, cells)


def add_noise(fits: dict[str, Any], x: Any, w: Any, ks: tuple[int, ...], log_v: float, **options: Any) -> None:
    """Refit every cell of `fits[type]` (select's outputs) with a noise component, in place."""
    n, d = x.shape
    dt = x.dtype
    total = jnp.sum(w)
    mean = (w @ x) / total
    var = jnp.maximum((w @ (x - mean) ** 2) / total, jnp.finfo(dt).tiny)
    for ctype, f in fits.items():
        k_max = f["params"].means.shape[1]
        chunk = min(G.gmm_chunk_size(n, k_max, d, ctype, dt.itemsize, len(ks)), n)
        out = _noise_cells(
            x,
            w,
            f["params"],
            np.asarray(ks, np.int32),
            A.scalar(log_v, dt),
            A.scalar(options["tol"], dt),
            A.scalar(options["reg_covar"], dt),
            var,
            ctype=ctype,
            max_iter=options["max_iter"],
            chunk_size=chunk,
        )
        params, pi0, labels, ll, hard, degenerate, info = jax.device_get(out)
        finite = np.stack([np.all(np.isfinite(a), axis=tuple(range(1, a.ndim))) for a in jax.tree.leaves(params)])
        f.update(
            params=params,
            labels=labels,
            log_likelihood=ll,
            hard=hard,
            degenerate=degenerate,
            n_iter=info.n_iter,
            converged=info.converged,
            history=info.history,
            nonfinite=~(np.all(finite, axis=0) & np.isfinite(ll)),
            noise_weight=pi0,
            log_hypervolume=np.full(len(ks), log_v),
        )
