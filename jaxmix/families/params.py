"""Parameters and priors of a Gaussian mixture."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import numpy as np

from jaxmix.families.registry import covariance_model


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class GMMParams:
    """Fitted parameters, with scikit-learn's names and shapes.

    A pytree (works under jit/vmap); `covariance_type` is static metadata,
    because the shapes alone are ambiguous ("tied" (d, d) and "diag" (k, d)
    coincide when k == d). A NamedTuple cannot carry a static string, hence a
    registered frozen dataclass.

    Gradients: the densities read `precisions_cholesky` only, so `jax.grad`
    with respect to `covariances` is zero. To differentiate with respect to
    covariances, build the parameters inside the differentiated function with
    `GMMParams.from_covariances(weights, means, covariances, covariance_type)`,
    or use the unconstrained `jaxmix.gradient.to_raw` / `from_raw`.
    """

    weights: jax.Array  # (k,) mixing proportions, sum to 1
    means: jax.Array  # (k, d)
    covariances: jax.Array  # full (k,d,d) | tied (d,d) | diag (k,d) | spherical (k,)
    precisions_cholesky: jax.Array  # same shape as covariances
    covariance_type: str = dataclasses.field(default="full", metadata={"static": True})

    @property
    def n_components(self) -> int:
        return self.means.shape[-2]

    @property
    def n_features(self) -> int:
        return self.means.shape[-1]

    @property
    def precisions(self) -> jax.Array:
        """Precision matrices (inverse covariances), same shape as `covariances`."""
        u = self.precisions_cholesky
        if covariance_model(self.covariance_type).matrix:
            return u @ u.swapaxes(-1, -2)
        return u**2

    def first_components(self, k: int, take=lambda a, k: a[:k]) -> GMMParams:
        """The first `k` components (a covariance shared by all is kept whole); `take(a, k)` cuts an array."""
        shared = covariance_model(self.covariance_type).shared

        def cut(a):
            return a if shared else take(a, k)

        return GMMParams(
            take(self.weights, k),
            take(self.means, k),
            cut(self.covariances),
            cut(self.precisions_cholesky),
            self.covariance_type,
        )

    @classmethod
    def from_covariances(cls, weights, means, covariances, covariance_type: str = "full") -> GMMParams:
        """Build parameters from covariances (the Cholesky factors are computed).

        Arrays, lists or numbers are accepted. Outside `jit`, an unknown
        `covariance_type`, shapes that do not fit together (weights (k,),
        means (k, d), covariances as scikit-learn's for the type; leading
        batch axes allowed) or covariances that are not positive definite
        raise a ValueError instead of giving NaN Cholesky factors, and so do
        NaN or infinite weights or means and negative weights.
        """
        from jaxmix.engine import arrays as A
        from jaxmix.engine import parameter_checks as PC
        from jaxmix.engine import validation as V
        from jaxmix.families.names import COVARIANCE_TYPES

        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}")
        weights = A.as_float_array(weights, "weights")
        means = A.as_float_array(means, "means")
        covariances = A.as_float_array(covariances, "covariances")
        if means.ndim < 2 or weights.shape != means.shape[:-1]:
            raise ValueError(
                f"means must be (k, d) and weights (k,), got shapes {tuple(means.shape)} and {tuple(weights.shape)}"
            )
        expected = tuple(means.shape[:-2]) + covariance_model(covariance_type).cov_shape(
            means.shape[-2], means.shape[-1]
        )
        if tuple(covariances.shape) != expected:
            raise ValueError(
                f"covariances must have shape {expected} for covariance_type={covariance_type!r} and means of "
                f"shape {tuple(means.shape)}, got {tuple(covariances.shape)}"
            )
        V.check_finite(weights, "weights")
        V.check_finite(means, "means")
        if not A.is_traced(weights) and bool(np.any(np.asarray(weights) < 0)):
            raise ValueError("weights must be >= 0 (mixing proportions)")
        V.check_finite(covariances, "covariances")
        PC.check_spd(covariances, covariance_type, "covariances")
        u = covariance_model(covariance_type).precisions_cholesky(covariances)
        return cls(weights, means, covariances, u, covariance_type)

    @classmethod
    def from_precisions_cholesky(cls, weights, means, prec_chol, covariance_type: str = "full") -> GMMParams:
        return cls(
            weights,
            means,
            covariance_model(covariance_type).covariances_from_precisions_cholesky(prec_chol),
            prec_chol,
            covariance_type,
        )


class GMMPrior(NamedTuple):
    """Conjugate prior for MAP-EM (Fraley and Raftery 2007; mclust's `priorControl`).

    Dirichlet(`weight_concentration`) on the weights; on each component a
    normal-inverse-Wishart: `mu_k | Sigma_k ~ N(mean, Sigma_k / shrinkage)`,
    `Sigma_k ~ IW(dof, scale)` (for "diag" an inverse-gamma per feature, for
    "spherical" one per component, for "tied" one shared Sigma). Any field
    left None takes mclust's data-driven default: mean = the data mean,
    shrinkage = 0.01, dof = d + 2, scale = cov(data) / k^(2/d) (its mean
    diagonal for "diag"/"spherical"), weight_concentration = 1 (no prior on
    the weights, as in mclust).

    The M-step is the exact joint posterior mode, e.g. for "full"
    `Sigma_k = (scale + W_k + shrinkage n_k/(n_k + shrinkage) (xbar_k - mean)(...)^T) / (dof + n_k + d + 2)`.
    A component that loses all its points returns to the prior instead of
    collapsing.
    """

    weight_concentration: jax.Array | float | None = None  # () Dirichlet alpha >= 1
    mean: jax.Array | None = None  # (d,)
    shrinkage: jax.Array | float | None = None  # () kappa >= 0
    dof: jax.Array | float | None = None  # () nu > d - 1
    scale: jax.Array | float | None = None  # (d, d) for full/tied, () for diag/spherical
