"""The figures of a fitted Gaussian mixture that mclust users expect (`plot.Mclust`'s "classification",
"uncertainty" and "density", and its scatterplot matrix), behind `jaxmix.plot.classification`,
`.uncertainty`, `.density` and `.pairs`. Axis names come from a DataFrame's columns (or `names=`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxmix.tools.plot_parts import (
    MAX_POINTS,
    _as_params,
    _axes,
    _component_covariances,
    _data,
    _finish,
    _palette,
    _projection,
    _pyplot,
    cluster_legend,
    draw_ellipses,
    note_sample,
    sample_rows,
)

MAX_PAIRS_FEATURES = 10  # a scatterplot matrix of more columns is unreadable; pick columns first


def column_names(x: Any, d: int, names: Sequence[str] | None = None) -> list[str]:
    """Axis names: `names` if given, else a DataFrame's columns, else "feature 0", "feature 1", ..."""
    if names is not None:
        out = [str(v) for v in names]
        if len(out) != d:
            raise ValueError(f"names has {len(out)} entries for {d} features")
        return out
    cols = getattr(x, "columns", None)
    if cols is not None and len(cols) == d:
        return [str(c) for c in cols]
    return [f"feature {j}" for j in range(d)]


def _responsibilities(params: Any, xa: np.ndarray) -> np.ndarray:
    from jaxmix.models.mixture import predict_proba

    return np.asarray(predict_proba(params, xa.astype(np.asarray(params.means).dtype)), np.float64)


def _view(xa: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(mean, axes (d, 2), labels): the two columns with their names, or the first two principal components."""
    mean, axes, labels = _projection(xa, pca=xa.shape[1] > 2)
    return mean, axes, (names if xa.shape[1] == 2 else labels)


def _points(
    ax: Any, xa: np.ndarray, cols: list[str], colours: np.ndarray, sizes: Any, y1d: Any, ylabel1d: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows (a seeded sample past MAX_POINTS, said in the corner) in their colours and sizes: one
    feature against `y1d` (returns None), else the two columns or principal components (returns the
    view's (mean, axes) for what is drawn on top)."""
    n = xa.shape[0]
    rows = np.arange(n)[sample_rows(n, MAX_POINTS)]
    size = np.broadcast_to(np.asarray(sizes, np.float64), (n,))[rows]
    view = None
    if y1d is None:
        mean, axes, labs = _view(xa, cols)
        pts = (xa[rows] - mean) @ axes
        view = (mean, axes)
    else:
        pts = np.stack([xa[rows, 0], np.asarray(y1d)[rows]], axis=1)
        labs = [cols[0], ylabel1d]
    ax.scatter(pts[:, 0], pts[:, 1], c=colours[rows], s=size, alpha=0.85, edgecolors="none")
    ax.set_xlabel(labs[0])
    ax.set_ylabel(labs[1])
    if len(rows) < n:
        note_sample(ax, len(rows), n)
    return view


def classification(
    model: Any,
    x: Any,
    *,
    names: Sequence[str] | None = None,
    ax: Any = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """Each row in its most responsible component's colour, the means and 1-sigma ellipses (mclust's
    "classification"); one feature: the values by component; more than two: the first two principal
    components. Returns the axes.

    Example:
      >>> import jax, jaxmix, matplotlib, pandas as pd
      >>> matplotlib.use("Agg")
      >>> df = pd.DataFrame(jaxmix.datasets.load_faithful(), columns=["eruptions", "waiting"])
      >>> g = jaxmix.gmm(jax.random.key(0), df.to_numpy(), 2)
      >>> jaxmix.plot.classification(g, df).get_xlabel()
      'eruptions'
    """
    params = _as_params(model, "classification")
    xa = _data(x, 1)
    n, d = xa.shape
    cols = column_names(x, d, names)
    labels = np.argmax(_responsibilities(params, xa), axis=1)
    k = params.means.shape[0]
    palette = _palette(k)
    ax = _axes(ax)
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, n) if d == 1 else None
    view = _points(ax, xa, cols, palette[labels], 10.0, None if jitter is None else labels + jitter, "component")
    if view is None:
        ax.set_yticks(range(k))
    else:
        mean, axes = view
        m2 = (np.asarray(params.means, np.float64) - mean) @ axes
        ax.scatter(m2[:, 0], m2[:, 1], marker="X", s=120, c="black", edgecolors="white", label="means")
        draw_ellipses(ax, params, mean, axes)
        handles = cluster_legend(k, "component") + ax.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="best", fontsize=8)
    ax.set_title(f"classification ({params.covariance_type}, k = {k})", fontsize=10)
    return _finish(ax, path)


def uncertainty(
    model: Any,
    x: Any,
    *,
    names: Sequence[str] | None = None,
    ax: Any = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """The classification's uncertainty, 1 - max responsibility, as mclust draws it: rows in their
    component's colour, larger and darker the more uncertain (below the 75th percentile of uncertainty
    small, to the 95th medium, above large and black). Returns the axes.

    Example:
      >>> import jax, jaxmix, matplotlib
      >>> matplotlib.use("Agg")
      >>> x = jaxmix.datasets.load_faithful()
      >>> ax = jaxmix.plot.uncertainty(jaxmix.gmm(jax.random.key(0), x, 2), x)
      >>> ax.get_title().startswith("uncertainty")
      True
    """
    params = _as_params(model, "uncertainty")
    xa = _data(x, 1)
    d = xa.shape[1]
    cols = column_names(x, d, names)
    resp = _responsibilities(params, xa)
    u = 1.0 - resp.max(axis=1)
    labels = np.argmax(resp, axis=1)
    palette = _palette(params.means.shape[0])
    q75, q95 = np.quantile(u, [0.75, 0.95])
    size = np.where(u > q95, 40.0, np.where(u > q75, 18.0, 4.0))
    colour = np.where((u > q95)[:, None], 0.0, palette[labels])
    ax = _axes(ax)
    _points(ax, xa, cols, colour, size, u if d == 1 else None, "uncertainty (1 - max responsibility)")
    ax.set_title(f"uncertainty: max {u.max():.3f}, mean {u.mean():.3f}", fontsize=10)
    return _finish(ax, path)


def density(
    model: Any,
    x: Any,
    *,
    names: Sequence[str] | None = None,
    resolution: int = 100,
    levels: int = 12,
    ax: Any = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """The fitted density: over a histogram of the data for one feature (the mixture and each weighted
    component), as contours of the log density over the data for two. Returns the axes.

    Example:
      >>> import jax, jaxmix, matplotlib
      >>> matplotlib.use("Agg")
      >>> x = jaxmix.datasets.load_faithful()[:, :1]
      >>> ax = jaxmix.plot.density(jaxmix.gmm(jax.random.key(0), x, 2), x)
      >>> ax.get_ylabel()
      'density'
    """
    from jaxmix.models.mixture import log_prob

    params = _as_params(model, "density")
    xa = _data(x, 1)
    n, d = xa.shape
    if d > 2:
        raise ValueError(f"density draws one or two features, got {d}; draw pairs (jaxmix.plot.pairs) instead")
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or not 10 <= resolution <= 1000:
        raise ValueError(f"resolution must be an int in 10..1000, got {resolution!r}")
    cols = column_names(x, d, names)
    dt = np.asarray(params.means).dtype
    lo, hi = xa.min(axis=0), xa.max(axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-12)
    ax = _axes(ax)
    if d == 1:
        grid = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
        ax.hist(xa[:, 0], bins="auto", density=True, color="0.85", edgecolor="0.6")
        dens = np.exp(np.asarray(log_prob(params, grid[:, None].astype(dt)), np.float64))
        ax.plot(grid, dens, color="black", lw=1.8, label="mixture")
        means, covs = _component_covariances(params)
        w = np.asarray(params.weights, np.float64)
        for j, c in enumerate(_palette(len(w))):
            sd = np.sqrt(covs[j, 0, 0])
            comp = w[j] * np.exp(-0.5 * ((grid - means[j, 0]) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
            ax.plot(grid, comp, color=c, lw=1.0, ls="--")
        ax.set_xlabel(cols[0])
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    else:
        gx = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
        gy = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
        mx, my = np.meshgrid(gx, gy)
        pts = np.stack([mx.ravel(), my.ravel()], axis=1).astype(dt)
        lp = np.asarray(log_prob(params, pts), np.float64).reshape(mx.shape)
        top = float(lp.max())
        ax.contour(mx, my, lp, levels=np.linspace(top - 12.0, top, levels), cmap="viridis", linewidths=1.0)
        rows = sample_rows(n, MAX_POINTS)
        ax.scatter(xa[rows, 0], xa[rows, 1], s=4, c="0.4", edgecolors="none")
        ax.set_xlabel(cols[0])
        ax.set_ylabel(cols[1])
    ax.set_title(f"density ({params.covariance_type}, k = {params.means.shape[0]})", fontsize=10)
    return _finish(ax, path)


def pairs(
    model: Any,
    x: Any,
    *,
    names: Sequence[str] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """The scatterplot matrix of the classification (mclust's for d > 2): each pair of columns with
    the rows in their component's colour and each component's marginal 1-sigma ellipse; the diagonal
    holds each column's histogram by component. Returns the (d, d) array of axes.

    Example:
      >>> import jax, jaxmix, matplotlib, numpy as np
      >>> matplotlib.use("Agg")
      >>> x = np.random.default_rng(0).normal(size=(90, 3)).astype(np.float32)
      >>> jaxmix.plot.pairs(jaxmix.gmm(jax.random.key(0), x, 2), x).shape
      (3, 3)
    """
    params = _as_params(model, "pairs")
    xa = _data(x, 2)
    n, d = xa.shape
    if d > MAX_PAIRS_FEATURES:
        raise ValueError(f"pairs draws at most {MAX_PAIRS_FEATURES} columns, got {d}: select columns first")
    cols = column_names(x, d, names)
    labels = np.argmax(_responsibilities(params, xa), axis=1)
    k = params.means.shape[0]
    palette = _palette(k)
    plt = _pyplot()
    size = min(2.2 * d, 16.0)
    fig, axs = plt.subplots(d, d, figsize=(size, size), dpi=100, squeeze=False)
    rows = sample_rows(n, MAX_POINTS)
    for i in range(d):
        for j in range(d):
            ax = axs[i, j]
            if i == j:
                bins = np.histogram_bin_edges(xa[:, i], bins="auto")
                for c in range(k):
                    ax.hist(xa[labels == c, i], bins=bins, color=palette[c], alpha=0.6)
                ax.set_yticks([])
            else:
                ax.scatter(xa[rows, j], xa[rows, i], c=palette[labels[rows]], s=4, edgecolors="none")
                sel = np.zeros((d, 2))
                sel[j, 0] = 1.0
                sel[i, 1] = 1.0
                draw_ellipses(ax, params, np.zeros(d), sel)
            if i == d - 1:
                ax.set_xlabel(cols[j], fontsize=8)
            if j == 0:
                ax.set_ylabel(cols[i], fontsize=8)
            ax.tick_params(labelsize=6)
    fig.suptitle(f"classification ({params.covariance_type}, k = {k})", fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return axs
