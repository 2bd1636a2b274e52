"""What the scikit-learn estimators share: input checks, dtypes, keys, padding.

The estimators are a thin layer over the functional API. Their job is
scikit-learn's contract: `validate_data` for input checks and feature
names, float32 in -> float32 out and float64 in -> float64 out (float64
fits run inside `jax.enable_x64(True)`, a context that leaves the user's
global JAX configuration as it was), integers -> float64, and
`random_state` turned into a JAX key inside `fit`.

Small data sets are padded with rows of weight 0 up to a power of two
before they reach the compiled program. Rows of weight 0 change nothing in
any jaxmix fit (that is how padding works throughout the library), and
data sets of 20, 25 and 30 rows then share one compiled program instead of
compiling three: a scikit-learn pipeline or grid search calling `fit` on
many slightly different sizes compiles a handful of programs, not one per
call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
from sklearn.base import TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

import jaxmix
from jaxmix.engine.validation import key_from_seed

# Rows up to this many are padded to the next power of two (at least 16).
PAD_ROWS_UP_TO = 2**14
MIN_PADDED_ROWS = 16


def check_X(estimator: Any, X: Any, *, reset: bool, ensure_min_samples: int = 1) -> np.ndarray:
    """scikit-learn's checks; float32 stays float32, everything else becomes float64."""
    return validate_data(
        estimator,
        X,
        reset=reset,
        dtype=[np.float64, np.float32],
        ensure_min_samples=ensure_min_samples,
        order="C",
    )


def sample_weight_or_ones(sample_weight: Any, X: np.ndarray) -> np.ndarray:
    return _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)


def key_from(random_state: Any) -> jax.Array:
    """A JAX key drawn from scikit-learn's `random_state` (None, int or RandomState)."""
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    return key_from_seed(int(seed))


@contextlib.contextmanager
def precision(dtype: Any) -> Iterator[None]:
    """Run float64 data in float64 (inside `jax.enable_x64`), float32 as it is."""
    if np.dtype(dtype) == np.float64:
        with jax.enable_x64(True):
            yield
    else:
        yield


def padded(X: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
    """`(X, weights)` padded with zero-weight rows to a shared size; returns the true n too."""
    n = X.shape[0]
    w = np.ones(n, X.dtype) if weights is None else np.asarray(weights, X.dtype)
    if n > PAD_ROWS_UP_TO:
        return X, w, n
    m = max(MIN_PADDED_ROWS, 1 << (n - 1).bit_length())
    if m == n:
        return X, w, n
    # Padding rows repeat the first row: finite, inside the data's range, weight 0.
    Xp = np.concatenate([X, np.broadcast_to(X[:1], (m - n, X.shape[1]))])
    wp = np.concatenate([w, np.zeros(m - n, X.dtype)])
    return Xp, wp, n


def check_centers(init: Any, X: np.ndarray, k: int, what: str) -> np.ndarray:
    """Initial centres as a (k, n_features) array of X's dtype, or scikit-learn's ValueError."""
    arr = np.asarray(init, X.dtype)
    where = f"The shape of the initial centers {arr.shape}{' ' + what if what else ''} does not match"
    if arr.ndim != 2 or arr.shape[0] != k:
        raise ValueError(f"{where} the number of clusters {k}.")
    if arr.shape[1] != X.shape[1]:
        raise ValueError(f"{where} the number of features of the data {X.shape[1]}.")
    return arr


def to_numpy(a: Any, dtype: Any) -> np.ndarray:
    return np.asarray(a).astype(dtype, copy=False)


class CentroidMethods(TransformerMixin):
    """Methods shared by the centroid estimators (KMeans, MiniBatchKMeans, SoftKMeans): they need `cluster_centers_`.

    A `TransformerMixin` itself: scikit-learn's output wrapper (`set_output`,
    `set_config(transform_output=...)`) wraps only the `transform` and
    `fit_transform` a class defines in its own body, so the class that
    defines them must be the mixin's subclass.
    """

    cluster_centers_: np.ndarray
    labels_: np.ndarray

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _test_data(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return check_X(self, X, reset=False)

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> np.ndarray:
        """Fit and return `labels_`."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None) -> np.ndarray:
        """Fit, then distances of X to the centres."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def transform(self, X: Any) -> np.ndarray:
        """Euclidean distances of the rows of X to the centres, (n_samples, n_clusters)."""
        return self._distances(self._test_data(X))

    # The helpers below take X already checked by `_test_data`: calling the
    # public methods again with that ndarray would lose a DataFrame's
    # feature names (scikit-learn then warns "X does not have valid feature
    # names") and, for `transform`, go through the output wrapper.

    def _distances(self, X: np.ndarray) -> np.ndarray:
        Xp, _, n = padded(X, None)
        with precision(X.dtype):
            dist = jaxmix.transform(self.cluster_centers_.astype(X.dtype), Xp)
        return to_numpy(dist, X.dtype)[:n]

    def _nearest(self, X: np.ndarray, centers: np.ndarray | None = None) -> np.ndarray:
        """Index of the nearest centre (`cluster_centers_` unless given) for each row of X."""
        c = self.cluster_centers_ if centers is None else centers
        Xp, _, n = padded(X, None)
        with precision(X.dtype):
            labels = jaxmix.kmeans_predict(c.astype(X.dtype), Xp)
        return np.asarray(labels)[:n].astype(np.int32)

    def _labels_inertia(
        self, X: np.ndarray, w: np.ndarray, centers: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        """Nearest centres and `sum_i w_i ||x_i - nearest centre||^2` (in float64): O(n d) memory."""
        c = self.cluster_centers_ if centers is None else centers
        labels = self._nearest(X, c)
        diff = X.astype(np.float64, copy=False) - c.astype(np.float64)[labels]
        return labels, float(np.dot(w, np.einsum("ij,ij->i", diff, diff)))
