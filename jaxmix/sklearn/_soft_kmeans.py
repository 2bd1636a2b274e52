"""`jaxmix.sklearn.SoftKMeans`: the lecture's soft k-means as a scikit-learn estimator."""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin
from sklearn.exceptions import ConvergenceWarning

import jaxmix
from jaxmix.sklearn import _base as B
from jaxmix.sklearn._kmeans import _check_int, _check_nonnegative


class SoftKMeans(B.CentroidMethods, ClassNamePrefixFeaturesOutMixin, ClusterMixin, BaseEstimator):
    """Soft k-means (responsibilities `r_ik ∝ pi_k exp(-beta ||x_i - m_k||^2)`), fitted by `jaxmix.soft_kmeans`.

    scikit-learn has no soft k-means; this estimator follows KMeans's
    interface and adds `predict_proba`. Large `beta` gives k-means; it is
    EM for a mixture with covariances fixed to `(2 beta)^-1 I`.

    Parameters:
      n_clusters: number of clusters.
      beta: stiffness (> 0), in units of 1 / squared distance.
      init: "k-means++", "random" or an (n_clusters, n_features) array.
      n_init: restarts (lowest free energy wins).
      max_iter, tol: as `KMeans`.
      verbose: if > 0, show the fit's progress on stderr.
      random_state: None, an int or a `numpy.random.RandomState`.

    Attributes:
      cluster_centers_, weights_ (cluster probabilities), labels_ (most
      responsible cluster), objective_ (free energy F, never increases),
      n_iter_, converged_, n_features_in_, feature_names_in_.

    Example:
      >>> import numpy as np
      >>> from jaxmix.sklearn import SoftKMeans
      >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=float)
      >>> sk = SoftKMeans(n_clusters=2, beta=1.0, random_state=0).fit(X)
      >>> np.round(sorted(sk.cluster_centers_.tolist()), 3).tolist()
      [[1.0, 2.0], [10.0, 2.0]]
      >>> sk.predict_proba(X).shape
      (6, 2)
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        beta: float = 1.0,
        init: Any = "k-means++",
        n_init: int = 1,
        max_iter: int = 300,
        tol: float = 1e-4,
        verbose: int = 0,
        random_state: Any = None,
    ):
        self.n_clusters = n_clusters
        self.beta = beta
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> SoftKMeans:
        """Fit soft k-means; returns self."""
        X = B.check_X(self, X, reset=True)
        w = B.sample_weight_or_ones(sample_weight, X)
        k = _check_int(self.n_clusters, "n_clusters", 1)
        if X.shape[0] < k:
            raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={k}.")
        beta = _check_nonnegative(self.beta, "beta")
        if beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        init = self.init if isinstance(self.init, str) else np.asarray(self.init, X.dtype)
        n_init = _check_int(self.n_init, "n_init", 1)
        if not isinstance(init, str):
            n_init = 1
        Xp, wp, n = B.padded(X, w)
        with B.precision(X.dtype):
            r = jaxmix.soft_kmeans(
                B.key_from(self.random_state),
                Xp,
                k,
                beta=beta,
                init=init,
                n_init=n_init,
                max_iter=_check_int(self.max_iter, "max_iter", 1),
                tol=_check_nonnegative(self.tol, "tol"),
                weights=wp,
                progress=bool(self.verbose),
            )
            r = jax.device_get(r)
        if bool(r.nonfinite):
            raise ValueError("soft k-means produced non-finite values; try a smaller beta or scale the input data")
        self.cluster_centers_ = B.to_numpy(r.centers, X.dtype)
        self.weights_ = B.to_numpy(r.weights, X.dtype)
        self.beta_ = float(r.beta)
        self.labels_ = np.asarray(r.labels)[:n].astype(np.int32)
        self.objective_ = float(r.objective)
        self.n_iter_ = int(r.n_iter)
        self.converged_ = bool(r.converged)
        self._n_features_out = k
        if not self.converged_:
            warnings.warn(
                f"SoftKMeans did not converge in max_iter={self.max_iter} iterations; increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Responsibilities of each cluster for each row, (n_samples, n_clusters)."""
        X = self._test_data(X)
        Xp, _, n = B.padded(X, None)
        with B.precision(X.dtype):
            model = SimpleNamespace(
                centers=jnp.asarray(self.cluster_centers_, X.dtype),
                weights=jnp.asarray(self.weights_, X.dtype),
                beta=jnp.asarray(self.beta_, X.dtype),
            )
            r = jaxmix.soft_kmeans_predict_proba(cast(Any, model), Xp)
        return B.to_numpy(r, X.dtype)[:n]

    def predict(self, X: Any) -> np.ndarray:
        """Most responsible cluster of each row."""
        return np.argmax(self.predict_proba(X), axis=1).astype(np.int32)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Opposite of the free energy of X: `(1/beta) sum_i w_i log sum_k pi_k exp(-beta ||x_i - m_k||^2)`."""
        X = self._test_data(X)
        w = B.sample_weight_or_ones(sample_weight, X).astype(np.float64)
        d2 = self._distances(X).astype(np.float64) ** 2
        with np.errstate(divide="ignore"):
            logits = np.log(self.weights_.astype(np.float64))[None] - self.beta_ * d2
        m = np.max(logits, axis=1, keepdims=True)
        lse = (m + np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True)))[:, 0]
        return float(np.sum(w * lse) / self.beta_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags
