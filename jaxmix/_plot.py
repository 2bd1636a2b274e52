"""`jaxmix.plot`: figures for results (needs matplotlib: `pip install 'jaxmix[plot]'`)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jaxmix._select import MCLUST_NAMES, SelectResult

_MARKERS = {"full": "o", "tied": "s", "diag": "^", "spherical": "D"}


def plot(result: Any, ax: Any = None, *, path: str | os.PathLike[str] | None = None) -> Any:
    """Draw a result with matplotlib; returns the axes.

    For a `SelectResult` (from `jaxmix.select`): the criterion against k,
    one line per covariance type, drawn as mclust draws its BIC plot (mclust
    plots -BIC, higher is better; here the axis is scikit-learn's BIC, lower
    is better), degenerate fits left out, the winner circled.

    Args:
      result: a `SelectResult`.
      ax: a matplotlib Axes to draw on (default: a new figure).
      path: also save the figure there (PNG, or any format matplotlib infers
        from the name).

    Raises:
      ImportError: matplotlib is not installed.
      TypeError: `result` is not a result jaxmix can draw.

    Example:
      >>> import jax, jaxmix, matplotlib
      >>> matplotlib.use("Agg")
      >>> s = jaxmix.select(jax.random.key(0), jaxmix.datasets.load_faithful(), range(1, 4), "tied", n_init=2)
      >>> ax = jaxmix.plot(s)
      >>> ax.get_ylabel()
      'BIC (lower is better)'
    """
    if not isinstance(result, SelectResult):
        raise TypeError(f"jaxmix.plot draws a SelectResult (from jaxmix.select), got {type(result).__name__}")
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("jaxmix.plot needs matplotlib: pip install 'jaxmix[plot]'") from e
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.5), dpi=110)
    ks = np.asarray(result.n_components)
    scores = result.scores
    for j, t in enumerate(result.covariance_types):
        y = np.where(result.degenerate[:, j], np.nan, scores[:, j])
        ax.plot(ks, y, marker=_MARKERS[t], label=f"{t} ({MCLUST_NAMES[t]})", lw=1.5, ms=5)
    i = result.n_components.index(result.best_k)
    j = result.covariance_types.index(result.best_covariance_type)
    ax.plot([result.best_k], [scores[i, j]], "o", ms=14, mfc="none", mec="black", mew=1.5, label="best")
    ax.set_xlabel("number of components k")
    ax.set_ylabel(f"{result.criterion.upper()} (lower is better)")
    ax.set_xticks(ks)
    ax.legend(fontsize=8)
    ax.set_title(f"best: k = {result.best_k}, {result.best_covariance_type}", fontsize=10)
    ax.figure.tight_layout()
    if path is not None:
        ax.figure.savefig(path)
    return ax
