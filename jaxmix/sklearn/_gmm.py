"""`jaxmix.sklearn.GaussianMixture`: scikit-learn's GaussianMixture, fitted by `jaxmix.gmm`."""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

import jaxmix
from jaxmix.families.names import COVARIANCE_TYPES
from jaxmix.families.registry import covariance_model
from jaxmix.sklearn import _base as B
from jaxmix.sklearn._kmeans import _check_int, _check_nonnegative

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
ILL_DEFINED = (
    "Fitting the mixture model failed because some components have ill-defined empirical covariance "
    "(for instance caused by singleton or collapsed samples). Try to decrease the number of components, "
    "increase reg_covar, or scale the input data."
)


def _ill_defined(params: Any, X: np.ndarray) -> bool:
    """A covariance that is singular up to round-off (scikit-learn's Cholesky would fail).

    jaxmix's factorisation may succeed on a matrix that is singular but for
    round-off (e.g. a component on two points in 2-D with reg_covar=0);
    scikit-learn raises there, and so does this estimator: the smallest
    variance must exceed 10 eps times the data's mean variance.
    """
    cov = np.asarray(params.covariances, np.float64)
    if covariance_model(params.covariance_type).matrix:
        var = np.linalg.eigvalsh(cov)
    else:
        var = cov
    scale = max(float(np.mean(np.var(X.astype(np.float64), axis=0))), np.finfo(np.float64).tiny)
    return bool(np.min(var) <= 10 * np.finfo(X.dtype).eps * scale)


class GaussianMixture(DensityMixin, BaseEstimator):
    """A Gaussian mixture with scikit-learn's interface, fitted by `jaxmix.gmm`.

    A drop-in replacement for `sklearn.mixture.GaussianMixture`: same
    parameters, attributes and methods. Differences: the best restart is the
    one with the highest final log-likelihood (scikit-learn: the last lower
    bound), `max_iter` must be >= 1, and `verbose > 0` shows progress.

    Parameters:
      n_components, covariance_type ("full", "tied", "diag", "spherical"),
      tol, reg_covar, max_iter, n_init, init_params ("kmeans", "k-means++",
      "random", "random_from_data"), weights_init, means_init,
      precisions_init, random_state, warm_start, verbose, verbose_interval
      (accepted; progress is shown every iteration when verbose > 0): as in
      scikit-learn.

    Attributes:
      weights_, means_, covariances_, precisions_, precisions_cholesky_,
      converged_, n_iter_, lower_bound_, lower_bounds_, n_features_in_,
      feature_names_in_.

    Example:
      >>> import numpy as np
      >>> from jaxmix.sklearn import GaussianMixture
      >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=float)
      >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
      >>> np.round(sorted(gm.means_.tolist()), 6).tolist()
      [[1.0, 2.0], [10.0, 2.0]]
      >>> gm.predict([[0, 0], [12, 3]]).tolist() == [gm.predict(X)[0], gm.predict(X)[3]]
      True
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    def fit(self, X: Any, y: Any = None) -> GaussianMixture:
        """Estimate the parameters by EM; returns self."""
        self.fit_predict(X, y)
        return self

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then the most probable component of each row (always a final E-step)."""
        X = B.check_X(self, X, reset=True, ensure_min_samples=2)
        k = _check_int(self.n_components, "n_components", 1)
        if X.shape[0] < k:
            raise ValueError(f"Expected n_samples >= n_components but got n_components = {k}, n_samples = {X.shape[0]}")
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {self.covariance_type!r}")
        if self.init_params not in INIT_PARAMS:
            raise ValueError(f"init_params must be one of {INIT_PARAMS}, got {self.init_params!r}")
        max_iter = _check_int(self.max_iter, "max_iter", 1)
        n_init = _check_int(self.n_init, "n_init", 1)
        tol = _check_nonnegative(self.tol, "tol")
        reg = _check_nonnegative(self.reg_covar, "reg_covar")
        warm = bool(self.warm_start) and hasattr(self, "converged_")
        inits: tuple[Any, Any, Any] = (self.weights_init, self.means_init, self.precisions_init)
        if warm:
            inits = (getattr(self, "weights_"), getattr(self, "means_"), getattr(self, "precisions_"))  # noqa: B009
        key = B.key_from(self.random_state)
        Xp, wp, n = B.padded(X, None)
        with B.precision(X.dtype):
            # scikit-learn's warm start compares its first iteration's
            # log-likelihood with the previous fit's `lower_bound_` (a fresh
            # fit starts from -inf): within tol, it converges after that one
            # iteration. So a loop of warm-started `max_iter=1` fits stops.
            previous = float(getattr(self, "lower_bound_", -np.inf))
            warm_converged = warm and abs(self._mean_log_prob(X) - previous) < tol
            if warm_converged:
                max_iter = 1
            g = jaxmix.gmm(
                key,
                Xp,
                k,
                covariance_type=self.covariance_type,
                init=self.init_params,
                n_init=1 if warm else n_init,
                max_iter=max_iter,
                tol=tol,
                reg_covar=reg,
                weights=wp,
                weights_init=inits[0],
                means_init=inits[1],
                precisions_init=inits[2],
                progress=bool(self.verbose),
            )
            g = jax.device_get(g)
        if bool(g.nonfinite) or _ill_defined(g.params, X):
            raise ValueError(ILL_DEFINED)
        p = g.params
        self.weights_ = B.to_numpy(p.weights, X.dtype)
        self.means_ = B.to_numpy(p.means, X.dtype)
        self.covariances_ = B.to_numpy(p.covariances, X.dtype)
        self.precisions_cholesky_ = B.to_numpy(p.precisions_cholesky, X.dtype)
        self.precisions_ = B.to_numpy(p.precisions, X.dtype)
        self.converged_ = bool(g.converged) or warm_converged
        self.n_iter_ = int(g.n_iter)
        history = np.asarray(g.history, np.float64)[: self.n_iter_]
        self.lower_bounds_ = [float(v) for v in history]
        self.lower_bound_ = self.lower_bounds_[-1]
        if not self.converged_:
            warnings.warn(
                "Best performing initialization did not converge. Try different init parameters, or increase "
                "max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return np.asarray(g.labels)[:n].astype(np.int64)

    def _params(self, dtype: Any) -> jaxmix.GMMParams:
        return jaxmix.GMMParams(
            jnp.asarray(self.weights_, dtype),
            jnp.asarray(self.means_, dtype),
            jnp.asarray(self.covariances_, dtype),
            jnp.asarray(self.precisions_cholesky_, dtype),
            self.covariance_type,
        )

    def _mean_log_prob(self, X: np.ndarray) -> float:
        """Mean log-likelihood of the checked X under the current parameters (the fit's objective)."""
        Xp, _, n = B.padded(X, None)
        with B.precision(X.dtype):
            lp = np.asarray(jaxmix.log_prob(self._params(X.dtype), Xp))[:n]
        return float(np.mean(lp.astype(np.float64)))

    def _per_row(self, fn: Any, X: Any) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self)
        X = B.check_X(self, X, reset=False)
        Xp, _, n = B.padded(X, None)
        with B.precision(X.dtype):
            out = np.asarray(fn(self._params(X.dtype), Xp))
        return out[:n], X

    def score_samples(self, X: Any) -> np.ndarray:
        """Per-sample log-likelihood `log p(x)`."""
        out, X = self._per_row(jaxmix.log_prob, X)
        return out.astype(X.dtype)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean per-sample log-likelihood."""
        return float(np.mean(self.score_samples(X).astype(np.float64)))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of each row."""
        out, _ = self._per_row(jaxmix.predict, X)
        return out.astype(np.int64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Responsibilities (n_samples, n_components)."""
        out, X = self._per_row(jaxmix.predict_proba, X)
        return out.astype(X.dtype)

    def bic(self, X: Any) -> float:
        """Bayesian information criterion on X (lower is better)."""
        return -2.0 * self.score(X) * np.shape(X)[0] + self._n_parameters() * np.log(np.shape(X)[0])

    def aic(self, X: Any) -> float:
        """Akaike information criterion on X (lower is better)."""
        return -2.0 * self.score(X) * np.shape(X)[0] + 2 * self._n_parameters()

    def _n_parameters(self) -> int:
        # From the shapes alone: building the float64 parameters as JAX arrays
        # here, outside `B.precision`, would warn that they are truncated.
        check_is_fitted(self)
        k, d = self.means_.shape
        return covariance_model(self.covariance_type).n_parameters(k, d)

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """`n_samples` draws and their components, grouped by component (scikit-learn's order)."""
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(f"Invalid value for 'n_samples': {n_samples} . The sampling requires at least one sample.")
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_.astype(np.float64) / self.weights_.sum())
        y = np.repeat(np.arange(len(counts)), counts)
        key = B.key_from(rng)
        d = self.means_.shape[1]
        dtype = self.means_.dtype
        with B.precision(dtype):
            z = np.asarray(jax.random.normal(key, (n_samples, d), dtype=dtype))
        u = self.precisions_cholesky_.astype(np.float64)
        m = self.means_.astype(np.float64)[y]
        model = covariance_model(self.covariance_type)
        if model.matrix:  # x = mu + U^-T z, U the precision's Cholesky-type factor
            inv = np.linalg.inv(u)
            x = m + (z @ inv if model.shared else np.einsum("nji,nj->ni", inv[y], z))
        else:
            x = m + z / (u[y] if u.ndim == 2 else u[y][:, None])
        return x.astype(dtype), y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags
