"""Component families: what a mixture's components are, as small modules on one protocol.

A family is a set of pure functions on arrays (`_protocol.CovarianceModel`):
the shapes it stores, its free-parameter count, the log density's pieces
(log-determinant, Mahalanobis term), the sufficient statistics of weighted
responsibilities (second moments, scatter) and the closed-form M-step (ML
and MAP). The engine and the capabilities (`_gmm`, `select`, streaming,
batches, files, estimators) ask the registry for a family by name and call
these functions; they hold no per-family branches of their own for what a
family provides.

Families today: scikit-learn's four Gaussian covariance types, one module
each (`gaussian_full`, `gaussian_tied`, `gaussian_diag`,
`gaussian_spherical`). mclust's volume-shape-orientation models (issue 18)
join as further modules on the same protocol.
"""

from __future__ import annotations

from jaxmix.families._protocol import CovarianceModel
from jaxmix.families.gaussian_diag import DIAG
from jaxmix.families.gaussian_full import FULL
from jaxmix.families.gaussian_spherical import SPHERICAL
from jaxmix.families.gaussian_tied import TIED

COVARIANCE_MODELS: dict[str, CovarianceModel] = {m.name: m for m in (FULL, TIED, DIAG, SPHERICAL)}


def covariance_model(name: str) -> CovarianceModel:
    """The family called `name` ("full", "tied", "diag", "spherical"); ValueError listing them otherwise."""
    model = COVARIANCE_MODELS.get(name) if isinstance(name, str) else None
    if model is None:
        raise ValueError(f"covariance_type must be one of {tuple(COVARIANCE_MODELS)}, got {name!r}")
    return model


__all__ = ["COVARIANCE_MODELS", "CovarianceModel", "covariance_model"]
