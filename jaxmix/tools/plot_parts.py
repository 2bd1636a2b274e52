"""The pieces `jaxmix.plot`'s figures share: matplotlib on demand, axes, palettes and legends, the
checks that turn results and arrays into NumPy for drawing, the PCA view of wide data, the sample
drawn from large data, and each component's covariance as a (d, d) matrix for its ellipse.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jaxmix.families.params import GMMParams
from jaxmix.families.registry import covariance_model
from jaxmix.models.gmm import GMMResult

MAX_POINTS = 50_000  # a scatter draws a random sample of larger data (a million points take seconds and blur)
MAX_LEGEND = 10  # clusters named in the legend (more get the hsv palette and no legend)


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("jaxmix.plot needs matplotlib: pip install 'jaxmix[plot]'") from e
    return plt


def _axes(ax: Any, figsize: tuple[float, float] = (6.5, 5.0)) -> Any:
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, dpi=110)
    elif not hasattr(ax, "scatter"):
        raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
    return ax


def _palette(k: int) -> np.ndarray:
    plt = _pyplot()
    if k <= 10:
        return np.array([plt.get_cmap("tab10")(j)[:3] for j in range(k)])
    return np.array([plt.get_cmap("hsv")(j / k)[:3] for j in range(k)])


def _array(a: Any, what: str) -> np.ndarray:
    if isinstance(a, (str, bytes)) or a is None:
        raise TypeError(f"{what} must be a numeric array, got {type(a).__name__}")
    try:
        out = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what} must be a numeric array, got {type(a).__name__}") from e
    return out


def _data(x: Any, min_features: int = 2) -> np.ndarray:
    x = _array(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (n_samples, n_features), got shape {x.shape}")
    if x.shape[0] < 1:
        raise ValueError("x has no rows")
    if x.shape[1] < min_features:
        raise ValueError(f"x needs at least {min_features} features to draw, got {x.shape[1]}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or inf")
    return x


def _projection(x: np.ndarray, pca: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(mean, (d, 2) axes, axis labels): the two features as they are, or the first two principal components."""
    d = x.shape[1]
    if d == 2 and not pca:
        return np.zeros(2), np.eye(2), ["feature 0", "feature 1"]
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    share = s**2 / max(float(np.sum(s**2)), np.finfo(float).tiny)
    return mean, vt[:2].T, [f"PC{i + 1} ({100 * share[i]:.0f}% of variance)" for i in range(2)]


def _labels(labels: Any, n: int) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n:
        raise ValueError(f"labels must have shape ({n},) to match x, got {lab.shape}")
    if lab.dtype.kind not in "iu" and not (lab.dtype.kind == "f" and np.all(lab == np.round(lab))):
        raise TypeError(f"labels must be integers, got dtype {lab.dtype}")
    lab = lab.astype(np.int64)
    if lab.size and lab.min() < 0:
        raise ValueError("labels must be >= 0")
    return lab


def _proba(proba: Any, n: int) -> np.ndarray:
    p = _array(proba, "proba")
    if p.ndim != 2 or p.shape[0] != n or p.shape[1] < 1:
        raise ValueError(f"proba must have shape ({n}, k) to match x, got {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("proba must be finite and non-negative (responsibilities)")
    return p


def _centers(centers: Any, d: int) -> np.ndarray:
    c = _array(centers, "centers")
    if c.ndim != 2 or c.shape[1] != d:
        raise ValueError(f"centers must have shape (k, {d}) to match x, got {c.shape}")
    return c


def sample_rows(n: int, max_points: int | None) -> np.ndarray | slice:
    """The rows a scatter draws: all, or a sorted random sample of `max_points` (seeded, so figures repeat)."""
    if max_points is None or n <= max_points:
        return slice(None)
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 1:
        raise ValueError(f"max_points must be a positive int or None, got {max_points!r}")
    return np.sort(np.random.default_rng(0).choice(n, int(max_points), replace=False))


def note_sample(ax: Any, shown: int, n: int) -> None:
    ax.text(
        0.99,
        0.01,
        f"{shown:,} of {n:,} points drawn (random sample)",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=7,
        color="0.3",
    )


def cluster_legend(k: int, what: str) -> list[Any]:
    """Legend handles from colour to label number ("cluster 0", ...), as in labels.csv; none past MAX_LEGEND."""
    from matplotlib.lines import Line2D

    if k > MAX_LEGEND:
        return []
    palette = _palette(k)
    return [Line2D([], [], ls="", marker="o", ms=6, color=palette[j], label=f"{what} {j}") for j in range(k)]


def _component_covariances(params: GMMParams) -> tuple[np.ndarray, np.ndarray]:
    """(means (k, d), covariances (k, d, d)) for any covariance type."""
    means = np.asarray(params.means, dtype=np.float64)
    cov = np.asarray(params.covariances, dtype=np.float64)
    k, d = means.shape
    t = params.covariance_type
    full = covariance_model(t).dense(cov, k, d)
    if full.shape != (k, d, d):
        raise ValueError(f"covariances of shape {cov.shape} do not fit covariance_type {t!r} with means {means.shape}")
    return means, full


def _as_params(model: Any, what: str) -> GMMParams:
    if isinstance(model, GMMResult):
        return model.params
    if isinstance(model, GMMParams):
        return model
    raise TypeError(f"{what} takes a GMMParams or GMMResult, got {type(model).__name__}")


def _finish(ax: Any, path: str | os.PathLike[str] | None = None) -> Any:
    ax.figure.tight_layout()
    if path is not None:
        ax.figure.savefig(path)
    return ax


def draw_ellipses(
    ax: Any, params: GMMParams, mean: np.ndarray, axes: np.ndarray, sigmas: Any = (1.0,), color: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each component's Mahalanobis-radius ellipses projected onto `axes` (d, 2) about `mean`: exact
    projections of the Gaussians (solid for the first radius, dashed after). Returns the projected
    means (k, 2) and covariances (k, 2, 2)."""
    from matplotlib.patches import Ellipse

    means, covs = _component_covariances(params)
    m2 = (means - mean) @ axes
    c2 = np.einsum("di,kde,ej->kij", axes, covs, axes)
    palette = _palette(means.shape[0])
    for j in range(means.shape[0]):
        vals, vecs = np.linalg.eigh(c2[j])
        vals = np.maximum(vals, 0.0)
        angle = float(np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1])))
        for i, s in enumerate(sigmas):
            ax.add_patch(
                Ellipse(
                    (float(m2[j, 0]), float(m2[j, 1])),
                    float(2 * s * np.sqrt(vals[1])),
                    float(2 * s * np.sqrt(vals[0])),
                    angle=angle,
                    fill=False,
                    lw=1.3,
                    ls="-" if i == 0 else "--",
                    color=palette[j] if color is None else color,
                )
            )
    return m2, c2
