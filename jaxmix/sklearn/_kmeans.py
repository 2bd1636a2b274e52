"""`jaxmix.sklearn.KMeans`: scikit-learn's KMeans, fitted by jaxmix."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import jax
import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin
from sklearn.exceptions import ConvergenceWarning

import jaxmix
from jaxmix.sklearn import _base as B

ALGORITHMS = {"auto": "auto", "lloyd": "lloyd", "hamerly": "hamerly", "elkan": "hamerly"}


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def resolve_n_init(n_init: Any, init: Any, many: int) -> int:
    """scikit-learn's `n_init="auto"`: 1 for k-means++ or an array, `many` for "random" or a callable."""
    if n_init == "auto":
        if isinstance(init, str):
            return 1 if init == "k-means++" else many
        return many if callable(init) else 1
    return _check_int(n_init, "n_init", 1)


def _check_nonnegative(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    if not np.isfinite(float(value)) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


class KMeans(B.CentroidMethods, ClassNamePrefixFeaturesOutMixin, ClusterMixin, BaseEstimator):
    """K-means clustering with scikit-learn's interface, fitted by `jaxmix.kmeans`.

    A drop-in replacement for `sklearn.cluster.KMeans`: same parameters,
    attributes and methods, the same results from the same start (Lloyd's
    algorithm with the same stopping rule and the same relocation of empty
    clusters), computed by one compiled JAX program.

    Parameters:
      n_clusters: number of clusters.
      init: "k-means++", "random", an (n_clusters, n_features) array, or a
        callable `init(X, n_clusters, random_state) -> centres`.
      n_init: restarts, or "auto" (1 for "k-means++" and arrays, 10 otherwise).
      max_iter: most Lloyd iterations per restart.
      tol: relative tolerance on the centres' movement (scikit-learn's meaning).
      verbose: if > 0, show the fit's progress on stderr.
      random_state: None, an int or a `numpy.random.RandomState`; turned
        into a JAX key inside `fit`.
      copy_x: accepted for compatibility; jaxmix never modifies X.
      algorithm: "auto" (default), "lloyd", or "hamerly" (distance bounds;
        scikit-learn's "elkan" is accepted and means "hamerly"). All give
        the same clustering.

    Attributes:
      cluster_centers_, labels_, inertia_, n_iter_, n_features_in_,
      feature_names_in_ (when X has string column names), as scikit-learn.

    Example:
      >>> import numpy as np
      >>> from jaxmix.sklearn import KMeans
      >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=float)
      >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
      >>> sorted(km.cluster_centers_.tolist())
      [[1.0, 2.0], [10.0, 2.0]]
      >>> km.predict([[0, 0], [12, 3]]).tolist() == [km.labels_[0], km.labels_[3]]
      True
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        n_init: Any = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        verbose: int = 0,
        random_state: Any = None,
        copy_x: bool = True,
        algorithm: str = "auto",
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm

    def _n_init(self) -> int:
        return resolve_n_init(self.n_init, self.init, many=10)

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> KMeans:
        """Compute k-means clustering; returns self."""
        X = B.check_X(self, X, reset=True)
        w = B.sample_weight_or_ones(sample_weight, X)
        k = _check_int(self.n_clusters, "n_clusters", 1)
        max_iter = _check_int(self.max_iter, "max_iter", 1)
        tol = _check_nonnegative(self.tol, "tol")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}, got {self.algorithm!r}")
        if X.shape[0] < k:
            raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={k}.")
        n_init = self._n_init()
        init = self.init
        if not isinstance(init, str) and not callable(init):
            init = B.check_centers(init, X, k, "")
            if n_init != 1:
                warnings.warn(
                    f"Explicit initial center position passed: performing only one init in KMeans instead of "
                    f"n_init={n_init}.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                n_init = 1
        elif isinstance(init, str) and init not in ("k-means++", "random"):
            raise ValueError(f"init must be 'k-means++', 'random', an array or a callable, got {init!r}")
        key = B.key_from(self.random_state)
        Xp, wp, n = B.padded(X, w)
        kw: dict[str, Any] = dict(
            max_iter=max_iter, tol=tol, weights=wp, algorithm=ALGORITHMS[self.algorithm], progress=bool(self.verbose)
        )
        with B.precision(X.dtype):
            if callable(init):
                # A callable gives each restart its own centres (scikit-learn's
                # semantics), so restarts run one after the other here.
                rng = np.random.RandomState(int(jax.random.randint(key, (), 0, np.iinfo(np.int32).max)))
                fits = [
                    jaxmix.kmeans(
                        key,
                        Xp,
                        k,
                        init=B.check_centers(init(X, k, random_state=rng), X, k, "returned by the callable init"),
                        **kw,
                    )
                    for _ in range(n_init)
                ]
                r = min(fits, key=lambda f: float(f.inertia) if np.isfinite(float(f.inertia)) else np.inf)
            else:
                r = jaxmix.kmeans(key, Xp, k, init=init, n_init=n_init, **kw)
            r = jax.device_get(r)
        self.cluster_centers_ = B.to_numpy(r.centers, X.dtype)
        self.labels_ = np.asarray(r.labels)[:n].astype(np.int32)
        self.inertia_ = float(r.inertia)
        self.n_iter_ = int(r.n_iter)
        self._n_features_out = k
        distinct = len(np.unique(self.labels_))
        if distinct < k:
            warnings.warn(
                f"Number of distinct clusters ({distinct}) found smaller than n_clusters ({k}). Possibly due to "
                "duplicate points in X.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Index of the nearest centre for each row of X."""
        return self._nearest(self._test_data(X))

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Opposite of the k-means objective of X: -sum_i w_i ||x_i - nearest centre||^2."""
        X = self._test_data(X)
        return -self._labels_inertia(X, B.sample_weight_or_ones(sample_weight, X))[1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags
