"""`jaxmix.sklearn.MiniBatchKMeans`: scikit-learn's MiniBatchKMeans, fitted by `jaxmix.capabilities.online`."""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin
from sklearn.utils import check_random_state

from jaxmix.capabilities import online as O
from jaxmix.capabilities.online.minibatch_kmeans import _minibatch_kmeans_array as minibatch_kmeans_array
from jaxmix.sklearn import _base as B
from jaxmix.sklearn._kmeans import _check_int, _check_nonnegative, resolve_n_init


def _state_to_host(state: O.MiniBatchKMeansState) -> O.MiniBatchKMeansState:
    """The state as NumPy arrays: picklable, independent of JAX's x64 mode."""
    host: Any = [np.asarray(a) for a in jax.device_get(state)]
    return O.MiniBatchKMeansState(*host)


def _state_from_host(state: O.MiniBatchKMeansState, dtype: Any) -> O.MiniBatchKMeansState:
    def cast(a: Any) -> jax.Array:
        return jnp.asarray(a, dtype) if np.issubdtype(np.asarray(a).dtype, np.floating) else jnp.asarray(a)

    return O.MiniBatchKMeansState(*(cast(a) for a in state))


class MiniBatchKMeans(B.CentroidMethods, ClassNamePrefixFeaturesOutMixin, ClusterMixin, BaseEstimator):
    """Mini-batch k-means (Sculley 2010) with scikit-learn's interface, on `jaxmix`'s mini-batch update.

    A drop-in replacement for `sklearn.cluster.MiniBatchKMeans`: the same
    parameters, attributes and methods, and the same update rule (per-centre
    counts, learning rate 1/count per unit of sample weight, random
    reassignment of centres with low counts, early stopping on the smoothed
    batch inertia or on the centres' movement). Differences:

    - `fit` makes `max_iter` passes over X, each visiting every row once in
      a new random order in batches of `batch_size` rows, with the sample
      weights applied in the update (scikit-learn draws `max_iter * n /
      batch_size` batches with replacement, with probabilities proportional
      to the weights); a pass runs as one compiled loop.
    - The seeds come from `init_size` distinct random rows; with `n_init > 1`
      the seeding with the lowest inertia on those rows wins (scikit-learn
      scores them on a second random subset).
    - `tol` is relative to the weighted mean variance of the features.
    - Random draws come from a JAX key made from `random_state`, so results
      differ from scikit-learn's for the same seed.

    `partial_fit(X)` seeds from its first X (one seeding), then updates with
    every X it is given, as scikit-learn's. The estimator also continues
    from a `fit`.

    Parameters:
      n_clusters, init ("k-means++", "random", an array or a callable
      `init(X, n_clusters, random_state)`), max_iter (passes), batch_size,
      verbose (> 0 shows a progress bar), compute_labels, random_state, tol,
      max_no_improvement (None disables), init_size, n_init ("auto": 3 for
      "random" and callables, else 1), reassignment_ratio: as in
      scikit-learn.

    Attributes:
      cluster_centers_, labels_, inertia_, n_iter_ (passes started),
      n_steps_ (batches), n_features_in_, feature_names_in_.

    Example:
      >>> import numpy as np
      >>> from jaxmix.sklearn import MiniBatchKMeans
      >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=float)
      >>> km = MiniBatchKMeans(n_clusters=2, batch_size=3, random_state=0).fit(X)
      >>> sorted(np.round(km.cluster_centers_).tolist())
      [[1.0, 2.0], [10.0, 2.0]]
      >>> km.predict([[0, 0], [12, 3]]).tolist() == [km.labels_[0], km.labels_[3]]
      True
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        max_iter: int = 100,
        batch_size: int = 1024,
        verbose: int = 0,
        compute_labels: bool = True,
        random_state: Any = None,
        tol: float = 0.0,
        max_no_improvement: int | None = 10,
        init_size: int | None = None,
        n_init: Any = "auto",
        reassignment_ratio: float = 0.01,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.compute_labels = compute_labels
        self.random_state = random_state
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio

    # ----------------------------------------------------------------- checks

    def _n_init(self) -> int:
        return resolve_n_init(self.n_init, self.init, many=3)

    def _check_params(self, X: np.ndarray) -> int:
        k = _check_int(self.n_clusters, "n_clusters", 1)
        if X.shape[0] < k:
            raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={k}.")
        _check_int(self.max_iter, "max_iter", 1)
        _check_int(self.batch_size, "batch_size", 1)
        _check_nonnegative(self.tol, "tol")
        _check_nonnegative(self.reassignment_ratio, "reassignment_ratio")
        if self.max_no_improvement is not None:
            _check_int(self.max_no_improvement, "max_no_improvement", 0)
        if self.init_size is not None:
            init_size = _check_int(self.init_size, "init_size", 1)
            if init_size < k:
                # scikit-learn's warning; `jaxmix.capabilities.online` then seeds from 3 k rows as it does.
                warnings.warn(
                    f"init_size={init_size} should be larger than n_clusters={k}. Setting it to "
                    "min(3*n_clusters, n_samples)",
                    RuntimeWarning,
                    stacklevel=3,
                )
        init = self.init
        if isinstance(init, str) and init not in ("k-means++", "random"):
            raise ValueError(f"init must be 'k-means++', 'random', an array or a callable, got {init!r}")
        return k

    def _init_arg(self, X: np.ndarray, w: np.ndarray, k: int, n_init: int) -> tuple[Any, int]:
        """`init` for the functional API: a string or an array (a callable is called here)."""
        init = self.init
        if isinstance(init, str):
            return init, n_init
        if callable(init):
            # Each call's centres are scored by their inertia on X, nearest
            # centres found by jaxmix (O(n d) memory, not an (n, k, d) block).
            rng = check_random_state(self.random_state)
            best, best_inertia = None, np.inf
            for _ in range(n_init):
                c = B.check_centers(init(X, k, random_state=rng), X, k, "returned by the callable init")
                inertia = self._labels_inertia(X, w, c)[1]
                if best is None or inertia < best_inertia:
                    best, best_inertia = c, inertia
            return best, 1
        arr = B.check_centers(init, X, k, "")
        if n_init != 1:
            warnings.warn(
                f"Explicit initial center position passed: performing only one init in MiniBatchKMeans instead of "
                f"n_init={n_init}.",
                RuntimeWarning,
                stacklevel=3,
            )
        return arr, 1

    # ------------------------------------------------------------------- fits

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> MiniBatchKMeans:
        """Compute the centres on X in mini-batches: `max_iter` shuffled passes (fewer on early stopping)."""
        X = B.check_X(self, X, reset=True)
        w = B.sample_weight_or_ones(sample_weight, X)
        k = self._check_params(X)
        init, n_init = self._init_arg(X, w, k, self._n_init())
        key = B.key_from(self.random_state)
        Xp, wp, n = B.padded(X, w)
        mni = O.NO_LIMIT if self.max_no_improvement is None else int(self.max_no_improvement)
        with B.precision(X.dtype):
            r = minibatch_kmeans_array(
                key,
                jnp.asarray(Xp),
                jnp.asarray(wp),
                n,
                k,
                init=init,
                n_init=n_init,
                batch_size=int(self.batch_size),
                n_passes=int(self.max_iter),
                max_steps=O.NO_LIMIT,
                reassignment_ratio=float(self.reassignment_ratio),
                tol=float(self.tol),
                max_no_improvement=mni,
                init_size=self.init_size,
                progress=bool(self.verbose),
                compute_labels=False,
            )
            state = _state_to_host(r.state)
            history = np.asarray(r.history, np.float64)
        self._state = state
        self.cluster_centers_ = B.to_numpy(state.centered + state.shift, X.dtype)
        self._n_features_out = k
        self.n_steps_ = int(r.n_steps)
        self.n_iter_ = int(r.n_passes)
        if self.compute_labels:
            self.labels_, self.inertia_ = self._labels_inertia(X, w)
        else:
            ewa = float(state.ewa_inertia)
            if not np.isfinite(ewa) or ewa < 0:  # not set yet (one update so far)
                ewa = float(history[-1]) if history.size else np.nan
            self.inertia_ = ewa * float(np.sum(w, dtype=np.float64))
        return self

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> MiniBatchKMeans:
        """Update the centres with one mini-batch X (the first call also seeds them from X)."""
        has_centers = hasattr(self, "cluster_centers_")
        X = B.check_X(self, X, reset=not has_centers)
        w = B.sample_weight_or_ones(sample_weight, X)
        _check_nonnegative(self.reassignment_ratio, "reassignment_ratio")
        Xp, wp, _ = B.padded(X, w)
        state = getattr(self, "_state", None)
        dtype = self.cluster_centers_.dtype if has_centers else X.dtype
        with B.precision(dtype):
            if not has_centers:
                k = self._check_params(X)
                init, _ = self._init_arg(X, w, k, 1)
                s = O.minibatch_kmeans_init(B.key_from(self.random_state), Xp, k, init=init, weights=wp)
            elif state is None:
                # A model loaded from a file keeps its centres, not its counts:
                # continue from the centres with fresh counts.
                c = jnp.asarray(self.cluster_centers_, dtype)
                s = O.minibatch_kmeans_init(B.key_from(self.random_state), c, c.shape[0], init=c)
            else:
                s = _state_from_host(state, dtype)
            s, _ = O.minibatch_kmeans_update(
                s, jnp.asarray(Xp, dtype), jnp.asarray(wp, dtype), reassignment_ratio=float(self.reassignment_ratio)
            )
            state = _state_to_host(s)
        self._state = state
        self.cluster_centers_ = B.to_numpy(state.centered + state.shift, dtype)
        self._n_features_out = self.cluster_centers_.shape[0]
        self.n_steps_ = getattr(self, "n_steps_", 0) + 1
        if self.compute_labels:
            self.labels_, self.inertia_ = self._labels_inertia(X, w)
        return self

    # ---------------------------------------------------------------- queries

    def predict(self, X: Any) -> np.ndarray:
        """Index of the nearest centre for each row of X."""
        return self._nearest(self._test_data(X))

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Opposite of the k-means objective of X: -sum_i w_i ||x_i - nearest centre||^2."""
        X = self._test_data(X)
        w = B.sample_weight_or_ones(sample_weight, X)
        return -self._labels_inertia(X, w)[1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags
