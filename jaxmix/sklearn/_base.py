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
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

import jaxmix
from jaxmix._validation import key_from_seed

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


def to_numpy(a: Any, dtype: Any) -> np.ndarray:
    return np.asarray(a).astype(dtype, copy=False)


class CentroidMethods:
    """Methods shared by the centroid estimators (KMeans, SoftKMeans): they need `cluster_centers_`."""

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
        X = self._test_data(X)
        Xp, _, n = padded(X, None)
        with precision(X.dtype):
            dist = jaxmix.transform(self.cluster_centers_.astype(X.dtype), Xp)
        return to_numpy(dist, X.dtype)[:n]
