"""Requests refused before dispatch when their arrays would not fit in the device's memory.

XLA allocates asynchronously: an impossible request returned at once and the
process aborted (or swapped for minutes) when its result was read.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from jaxmix.families.registry import covariance_model


def device_memory() -> int | None:
    """Bytes the default device holds: an accelerator's `bytes_limit`, else the host's physical memory.

    None when neither is known (then nothing is refused on size).
    """
    try:
        stats = jax.devices()[0].memory_stats() or {}
        if stats.get("bytes_limit"):
            return int(stats["bytes_limit"])
    except Exception:  # a backend without memory_stats
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def check_memory(nbytes: float, what: str, fix: str, fraction: float = 0.5) -> None:
    """Refuse, before dispatch, a request whose arrays need more than `fraction` of the device's memory.

    XLA allocates asynchronously: an impossible request returned at once and
    the process aborted (or swapped for minutes) when the result was read.
    """
    limit = device_memory()
    if limit is not None and nbytes > fraction * limit:
        raise ValueError(
            f"{what} needs about {nbytes / 2**30:.3g} GiB, more than {fraction:.0%} of the device's "
            f"{limit / 2**30:.3g} GiB; {fix}"
        )


# Bytes per restart of an in-memory fit, per row and per (k + this) entries, as measured with
# ru_maxrss (kmeans, 200 rows, k = 2: 19.7 KB per restart; this estimate gives 20.9 KB).
_RESTART_ROW_WORDS = 24


def check_restarts(n_init: int, n: int, k: int, d: int, itemsize: int) -> None:
    """Restarts run side by side (vmap): refuse an n_init whose restarts would not fit in memory."""
    per_restart = itemsize * (n * (k + _RESTART_ROW_WORDS) + k * d * (d + 2))
    check_memory(
        float(n_init) * per_restart,
        f"n_init={n_init} restarts side by side ({n} rows, {k} clusters)",
        "use fewer restarts (n_init=10 is the usual choice), or loop over keys yourself and keep the best fit",
    )


def check_sample_size(n_samples: int, params: Any) -> None:
    """`jaxmix.sample`'s arrays fit in memory: the draws, the Gumbel noise that picks components, the noise."""
    k, d = params.means.shape[-2:]
    itemsize = np.dtype(params.means.dtype).itemsize
    model = covariance_model(params.covariance_type)
    per_row = itemsize * (k + 3 * d + (d * d if model.matrix and not model.shared else 0)) + 8
    check_memory(
        float(n_samples) * per_row,
        f"sample of n_samples={n_samples} ({d} features, {k} components)",
        "draw it in parts (one call per jax.random.split key)",
    )
