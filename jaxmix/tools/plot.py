"""`jaxmix.plot`: figures for results (needs matplotlib: `pip install 'jaxmix[plot]'`).

`jaxmix.plot` is a callable object: `jaxmix.plot(result)` draws what suits
the result, and its methods draw one figure each (`scatter`, `pca`,
`ellipses`, `regions`, `history`, `selection`, and for a fitted mixture
mclust's `classification`, `uncertainty`, `density` and `pairs`, in
`plot_mixture.py`). Every one takes `ax=` (a
matplotlib Axes; default a new figure) and returns the Axes it drew on.
Data with more than two features is drawn on its first two principal
components (numpy SVD of the centred data).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxmix.capabilities.select_result import SelectResult, type_label
from jaxmix.families.params import GMMParams
from jaxmix.models.gmm import GMMResult
from jaxmix.models.kmeans import KMeansResult
from jaxmix.models.soft_kmeans import SoftKMeansResult
from jaxmix.tools import plot_mixture
from jaxmix.tools.plot_parts import (
    MAX_POINTS,
    _array,
    _as_params,
    _axes,
    _centers,
    _data,
    _finish,
    _labels,
    _palette,
    _proba,
    _projection,
    cluster_legend,
    draw_ellipses,
    note_sample,
    sample_rows,
)

_MARKERS = {"full": "o", "tied": "s", "diag": "^", "spherical": "D"}
_MORE_MARKERS = "vP*Xhp<>d8H+x1"
_FITS = (KMeansResult, SoftKMeansResult, GMMResult)
_OBJECTIVE = {
    KMeansResult: "inertia J (falls)",
    SoftKMeansResult: "free energy F (falls)",
    GMMResult: "mean log-likelihood (rises)",
}


class Plot:
    """Figures for jaxmix results; `jaxmix.plot` is the one instance.

    `jaxmix.plot(result)` draws a `SelectResult`'s criterion curve;
    `jaxmix.plot(result, x=data)` draws a fitted k-means, soft k-means or
    Gaussian mixture over its data. The methods draw one figure each:
    `scatter`, `pca`, `ellipses`, `regions`, `history`, `selection`.
    Every call takes `ax=` (default: a new figure) and returns the Axes.
    """

    def __call__(
        self, result: Any, ax: Any = None, *, x: Any = None, path: str | os.PathLike[str] | None = None
    ) -> Any:
        """Draw a result with matplotlib; returns the axes.

        For a `SelectResult` (from `jaxmix.select`): the criterion against k,
        one line per covariance type, drawn as mclust draws its BIC plot (mclust
        plots -BIC, higher is better; here the axis is scikit-learn's BIC, lower
        is better), degenerate fits left out, the winner circled.

        For a `KMeansResult`, `SoftKMeansResult`, `GMMResult` or `GMMParams`
        with the data `x`: the data coloured by cluster (mixed by
        responsibilities for soft k-means and mixtures), centres marked, and
        for a mixture its 1- and 2-sigma ellipses.

        Args:
          result: a `SelectResult`, or a fit together with `x`.
          ax: a matplotlib Axes to draw on (default: a new figure).
          x: the data, (n_samples, n_features), for a fit.
          path: also save the figure there (PNG, or any format matplotlib infers
            from the name).

        Raises:
          ImportError: matplotlib is not installed.
          TypeError: `result` is not a result jaxmix can draw, or a fit came without `x`.

        Example:
          >>> import jax, jaxmix, matplotlib
          >>> matplotlib.use("Agg")
          >>> s = jaxmix.select(jax.random.key(0), jaxmix.datasets.load_faithful(), range(1, 4), "tied", n_init=2)
          >>> ax = jaxmix.plot(s)
          >>> ax.get_ylabel()
          'BIC (lower is better)'
        """
        if isinstance(result, SelectResult):
            if x is not None:
                raise ValueError("a SelectResult is drawn without x")
            return self.selection(result, ax, path=path)
        if not isinstance(result, (*_FITS, GMMParams)):
            raise TypeError(
                "jaxmix.plot draws a SelectResult (from jaxmix.select), or a KMeansResult, SoftKMeansResult, "
                f"GMMResult or GMMParams with x=data; got {type(result).__name__}"
            )
        if x is None:
            raise TypeError(
                f"jaxmix.plot(result) draws a SelectResult (from jaxmix.select); a {type(result).__name__} "
                "needs its data: jaxmix.plot(result, x=data)"
            )
        xa = _data(x)
        if isinstance(result, KMeansResult):
            ax = self.scatter(xa, np.asarray(result.labels), centers=result.centers, ax=ax)
        elif isinstance(result, SoftKMeansResult):
            from jaxmix.models.soft_kmeans import soft_kmeans_predict_proba

            p = np.asarray(soft_kmeans_predict_proba(result, xa))
            ax = self.scatter(xa, proba=p, centers=result.centers, ax=ax)
        else:
            from jaxmix.models.mixture import predict_proba

            params = _as_params(result, "jaxmix.plot")
            p = np.asarray(predict_proba(params, xa))
            ax = self.scatter(xa, proba=p, centers=params.means, ax=ax, centers_label="means")
            self.ellipses(params, x=xa if xa.shape[1] > 2 else None, ax=ax)
        if xa.shape[1] == 2:  # axis names from a DataFrame's columns
            ax.set_xlabel(plot_mixture.column_names(x, 2)[0])
            ax.set_ylabel(plot_mixture.column_names(x, 2)[1])
        return _finish(ax, path)

    def scatter(
        self,
        x: Any,
        labels: Any = None,
        *,
        proba: Any = None,
        centers: Any = None,
        ax: Any = None,
        pca: bool = False,
        centers_label: str = "centres",
        max_points: int | None = MAX_POINTS,
    ) -> Any:
        """Scatter of the data coloured by cluster; returns the axes.

        Hard `labels` give each point its cluster's colour; `proba`
        (responsibilities, (n, k)) mixes the clusters' colours by each row,
        so uncertain points get blended colours (Bishop, PRML Fig. 9.8).
        The legend names each colour by its label number (up to 10
        clusters). `centers` are marked with crosses. Data with more than two
        features (or `pca=True`) is drawn on its first two principal
        components. More than `max_points` rows are drawn as a random sample
        of that many (a fixed seed), which the axes say in their corner.

        Args:
          x: data, (n_samples, n_features), n_features >= 2.
          labels: (n_samples,) ints, optional.
          proba: (n_samples, k) responsibilities, optional; not with `labels`.
          centers: (k, n_features), optional.
          ax: a matplotlib Axes (default: a new figure).
          pca: project onto the first two principal components even when d == 2.
          centers_label: the legend's name for `centers` ("means" for a mixture).
          max_points: most points drawn (None: all).

        Example:
          >>> import jax, jaxmix, matplotlib
          >>> matplotlib.use("Agg")
          >>> x = jaxmix.datasets.load_faithful()
          >>> r = jaxmix.kmeans(jax.random.key(0), x, 2)
          >>> ax = jaxmix.plot.scatter(x, r.labels, centers=r.centers)
          >>> len(ax.collections)
          2
        """
        xa = _data(x)
        n, d = xa.shape
        if labels is not None and proba is not None:
            raise ValueError("pass labels or proba, not both")
        c = _centers(centers, d) if centers is not None else None
        if proba is not None:
            p = _proba(proba, n)
            k = p.shape[1]
            if c is not None and c.shape[0] != k:
                raise ValueError(f"proba has {k} columns but there are {c.shape[0]} centers")
            colours = np.clip(p @ _palette(k), 0.0, 1.0)
        elif labels is not None:
            lab = _labels(labels, n)
            k = max(int(lab.max()) + 1, c.shape[0] if c is not None else 0)
            colours = _palette(k)[lab]
        else:
            colours = np.tile(np.array([[0.3, 0.3, 0.3]]), (n, 1))
        ax = _axes(ax)
        mean, axes, names = _projection(xa, pca)
        rows = sample_rows(n, max_points)
        pts = (xa[rows] - mean) @ axes
        ax.scatter(pts[:, 0], pts[:, 1], c=colours[rows], s=10, alpha=0.8, edgecolors="none")
        if len(pts) < n:
            note_sample(ax, len(pts), n)
        if c is not None:
            cts = (c - mean) @ axes
            ax.scatter(cts[:, 0], cts[:, 1], marker="X", s=140, c="black", edgecolors="white", label=centers_label)
        handles = ax.get_legend_handles_labels()[0]
        if proba is not None or labels is not None:
            handles = cluster_legend(k, "component" if proba is not None else "cluster") + handles
        if handles:
            ax.legend(handles=handles, loc="best", fontsize=8)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        return _finish(ax)

    def pca(self, x: Any, labels: Any = None, *, proba: Any = None, centers: Any = None, ax: Any = None) -> Any:
        """`scatter` on the first two principal components (numpy SVD of the centred data); returns the axes.

        Example:
          >>> import jaxmix, matplotlib, numpy as np
          >>> matplotlib.use("Agg")
          >>> x = np.random.default_rng(0).normal(size=(100, 5))
          >>> jaxmix.plot.pca(x).get_xlabel().startswith("PC1")
          True
        """
        return self.scatter(x, labels, proba=proba, centers=centers, ax=ax, pca=True)

    def ellipses(
        self, params: Any, *, sigmas: Sequence[float] = (1, 2), x: Any = None, ax: Any = None, color: Any = None
    ) -> Any:
        """Covariance ellipses of a Gaussian mixture, one per component and sigma level; returns the axes.

        Works for all four covariance types (full, tied, diag, spherical).
        Two features are drawn as they are. With more features, the
        ellipses are exact projections of each Gaussian: onto the first
        two principal components of `x` when the data is given (the axes
        `scatter` uses), else onto the first two features (the marginal).

        Args:
          params: `GMMParams` or `GMMResult`.
          sigmas: Mahalanobis radii to draw (solid for the first, dashed after).
          x: the data, for the PCA projection when d > 2 (optional).
          ax: a matplotlib Axes (default: a new figure).
          color: one colour for all ellipses (default: each component's colour).

        Example:
          >>> import jax, jaxmix, matplotlib
          >>> matplotlib.use("Agg")
          >>> g = jaxmix.gmm(jax.random.key(0), jaxmix.datasets.load_faithful(), 2, covariance_type="diag")
          >>> ax = jaxmix.plot.ellipses(g, sigmas=(1, 2, 3))
          >>> len(ax.patches)
          6
        """
        p = _as_params(params, "ellipses")
        d = int(np.asarray(p.means).shape[1])
        if d < 2:
            raise ValueError(f"ellipses need at least 2 features, got {d}")
        sig = _array(sigmas, "sigmas").reshape(-1)
        if sig.size == 0 or not np.all(np.isfinite(sig)) or np.any(sig <= 0):
            raise ValueError(f"sigmas must be positive numbers, got {sigmas!r}")
        if x is not None:
            xa = _data(x)
            if xa.shape[1] != d:
                raise ValueError(f"x has {xa.shape[1]} features but the mixture has {d}")
            mean, axes, names = _projection(xa, pca=d > 2)
        else:
            mean, axes, names = np.zeros(d), np.eye(d)[:, :2], ["feature 0", "feature 1"]
        ax = _axes(ax)
        m2, c2 = draw_ellipses(ax, p, mean, axes, sig, color)
        if not ax.get_xlabel():
            ax.set_xlabel(names[0])
            ax.set_ylabel(names[1])
        ax.autoscale_view()
        if x is None and not ax.collections:
            # Nothing else drawn: make the limits cover the ellipses.
            r = float(sig.max()) * np.sqrt(np.max(np.linalg.eigvalsh(c2), axis=1))
            ax.set_xlim(float(np.min(m2[:, 0] - r)), float(np.max(m2[:, 0] + r)))
            ax.set_ylim(float(np.min(m2[:, 1] - r)), float(np.max(m2[:, 1] + r)))
        ax.set_title(f"{p.covariance_type} covariances, sigma = {', '.join(f'{s:g}' for s in sig)}", fontsize=10)
        return _finish(ax)

    def regions(self, model: Any, x: Any, *, resolution: int = 200, ax: Any = None) -> Any:
        """Decision regions on a grid over the range of 2-D data `x`, with the data on top; returns the axes.

        `model`: a centres array (k, 2) or `KMeansResult` (nearest centre),
        a `SoftKMeansResult` (most responsible cluster), or a `GMMParams` /
        `GMMResult` (`jaxmix.predict`). Only two-feature models can be drawn.

        Example:
          >>> import jax, jaxmix, matplotlib
          >>> matplotlib.use("Agg")
          >>> x = jaxmix.datasets.load_faithful()
          >>> r = jaxmix.kmeans(jax.random.key(0), x, 2)
          >>> ax = jaxmix.plot.regions(r, x, resolution=50)
          >>> len(ax.collections)
          2
        """
        if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
            raise TypeError(f"resolution must be an int, got {type(resolution).__name__}")
        if not 2 <= resolution <= 4000:
            raise ValueError(f"resolution must be in [2, 4000], got {resolution}")
        xa = _data(x)
        if xa.shape[1] != 2:
            raise ValueError(f"regions need 2-D data (two features), got {xa.shape[1]}")
        lo, hi = xa.min(axis=0), xa.max(axis=0)
        pad = 0.05 * np.maximum(hi - lo, 1e-12)
        gx = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
        gy = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
        xx, yy = np.meshgrid(gx, gy)
        grid = np.column_stack([xx.ravel(), yy.ravel()])
        if isinstance(model, SoftKMeansResult):
            from jaxmix.models.soft_kmeans import soft_kmeans_predict_proba

            k = int(model.centers.shape[0])
            _centers(model.centers, 2)

            def predict(z: np.ndarray) -> np.ndarray:
                return np.asarray(soft_kmeans_predict_proba(model, z)).argmax(axis=1)

        elif isinstance(model, (GMMParams, GMMResult)):
            from jaxmix.models.mixture import predict as gmm_predict

            params = _as_params(model, "regions")
            k = params.n_components
            if params.n_features != 2:
                raise ValueError(f"regions need a 2-feature model, got {params.n_features} features")

            def predict(z: np.ndarray) -> np.ndarray:
                return np.asarray(gmm_predict(params, z))

        else:
            if isinstance(model, KMeansResult):
                model = model.centers
            elif isinstance(model, (str, bytes)) or (not hasattr(model, "__array__") and not isinstance(model, list)):
                raise TypeError(
                    "regions take a centres array, KMeansResult, SoftKMeansResult, GMMParams or GMMResult, "
                    f"got {type(model).__name__}"
                )
            c = _centers(model, 2)
            k = c.shape[0]

            def predict(z: np.ndarray) -> np.ndarray:
                return np.argmin(((z[:, None, :] - c[None]) ** 2).sum(-1), axis=1)

        from matplotlib.colors import ListedColormap

        palette = _palette(max(k, 1))
        lab = predict(grid).reshape(xx.shape)
        ax = _axes(ax)
        ax.pcolormesh(xx, yy, lab, cmap=ListedColormap(palette), vmin=-0.5, vmax=k - 0.5, alpha=0.3, shading="auto")
        ax.scatter(xa[:, 0], xa[:, 1], c=palette[predict(xa)], s=8, edgecolors="black", linewidths=0.2)
        ax.set_xlim(gx[0], gx[-1])
        ax.set_ylim(gy[0], gy[-1])
        ax.set_xlabel("feature 0")
        ax.set_ylabel("feature 1")
        return _finish(ax)

    def history(self, results: Any, *, ax: Any = None) -> Any:
        """Objective per iteration of one fit or several (restarts overlaid); returns the axes.

        k-means: inertia (falls); soft k-means: free energy (falls); GMM:
        mean log-likelihood (rises). Each curve is the result's `history`
        up to its `n_iter`; all results must be of one kind. A batched
        result (from `jax.vmap` over keys, or `kmeans_batch`: `history` of
        shape (B, max_iter)) draws one curve per member.

        Example:
          >>> import jax, jaxmix, matplotlib
          >>> matplotlib.use("Agg")
          >>> x = jaxmix.datasets.load_faithful()
          >>> rs = [jaxmix.kmeans(jax.random.key(s), x, 2) for s in range(2)]
          >>> ax = jaxmix.plot.history(rs)
          >>> len(ax.get_lines())
          2
        """
        rs = [results] if isinstance(results, _FITS) or not isinstance(results, (list, tuple)) else list(results)
        if not rs:
            raise ValueError("history needs at least one result")
        for r in rs:
            if not isinstance(r, _FITS):
                raise TypeError(
                    f"history takes KMeansResult, SoftKMeansResult or GMMResult (or a list), got {type(r).__name__}"
                )
        kinds = {type(r) for r in rs}
        if len(kinds) > 1:
            raise ValueError(f"history overlays results of one kind, got {sorted(t.__name__ for t in kinds)}")
        curves: list[np.ndarray] = []
        for r in rs:
            h = np.asarray(r.history, dtype=np.float64)
            n_iter = np.asarray(r.n_iter)
            if h.ndim == 1 and n_iter.ndim == 0:
                h, n_iter = h[None], n_iter[None]
            if h.ndim != 2 or n_iter.shape != h.shape[:1]:
                raise ValueError(
                    f"history draws fits with history of shape (max_iter,) or a batch (B, max_iter), got {h.shape}"
                )
            curves.extend(hb[: max(1, min(int(nb), h.shape[1]))] for hb, nb in zip(h, n_iter, strict=True))
        ax = _axes(ax, (6.5, 4.5))
        for i, y in enumerate(curves):
            label = f"fit {i} ({len(y)} iterations)" if len(curves) > 1 else f"{len(y)} iterations"
            ax.plot(np.arange(1, len(y) + 1), y, marker="o", ms=3, lw=1.3, label=label)
        ax.set_xlabel("iteration")
        ax.set_ylabel(_OBJECTIVE[type(rs[0])])
        ax.legend(fontsize=8)
        return _finish(ax)

    def selection(self, result: Any, ax: Any = None, *, path: str | os.PathLike[str] | None = None) -> Any:
        """The mclust-style criterion plot of a `SelectResult`; returns the axes.

        Example:
          >>> import jax, jaxmix, matplotlib
          >>> matplotlib.use("Agg")
          >>> s = jaxmix.select(jax.random.key(0), jaxmix.datasets.load_faithful(), range(1, 4), "tied", n_init=2)
          >>> len(jaxmix.plot.selection(s).get_lines())
          2
        """
        if not isinstance(result, SelectResult):
            raise TypeError(f"jaxmix.plot draws a SelectResult (from jaxmix.select), got {type(result).__name__}")
        ax = _axes(ax, (6.5, 4.5))
        ks = np.asarray(result.n_components)
        scores = result.scores
        for j, t in enumerate(result.covariance_types):
            y = np.where(result.degenerate[:, j], np.nan, scores[:, j])
            marker = _MARKERS.get(t, _MORE_MARKERS[j % len(_MORE_MARKERS)])
            ax.plot(ks, y, marker=marker, label=type_label(t), lw=1.5, ms=5)
        i = result.n_components.index(result.best_k)
        j = result.covariance_types.index(result.best_covariance_type)
        ax.plot([result.best_k], [scores[i, j]], "o", ms=14, mfc="none", mec="black", mew=1.5, label="best")
        ax.set_xlabel("number of components k")
        ax.set_ylabel(f"{result.criterion.upper()} (lower is better)")
        ax.set_xticks(ks)
        ax.legend(fontsize=8)
        ax.set_title(f"best: k = {result.best_k}, {result.best_covariance_type}", fontsize=10)
        return _finish(ax, path)

    # A fitted mixture as mclust draws it (plot_mixture.py).
    classification = staticmethod(plot_mixture.classification)
    uncertainty = staticmethod(plot_mixture.uncertainty)
    density = staticmethod(plot_mixture.density)
    pairs = staticmethod(plot_mixture.pairs)


plot = Plot()
