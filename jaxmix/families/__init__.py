"""Component families: what a mixture's components are, as small modules on one protocol.

A family is a set of pure functions on arrays (`_protocol.CovarianceModel`):
the shapes it stores, its free-parameter count, the log density's pieces
(log-determinant, Mahalanobis term), the sufficient statistics of weighted
responsibilities (second moments, scatter) and the M-step (ML, and MAP where
a conjugate prior is supported). The engine and the capabilities (`_gmm`,
`select`, streaming, batches, files, estimators) ask the registry for a
family by name and call these functions; they hold no per-family branches.

Families: scikit-learn's four Gaussian covariance types (`gaussian_full`,
`gaussian_tied`, `gaussian_diag`, `gaussian_spherical`) and mclust's
volume-shape-orientation models, one module each (`gaussian_eii`, ...,
`gaussian_evv`); mclust's VVV, EEE, VVI and VII are scikit-learn's full,
tied, diag and spherical under their mclust names, and "E" / "V" (d = 1)
are EII / VII. A new family is one module plus one line in `_MODELS` below
(and its name in `jaxmix/_covariance_names.py`, which the command line reads without JAX).
"""

from __future__ import annotations

import copy
from typing import Any

from jaxmix._covariance_names import COVARIANCE_TYPES, MCLUST_MODELS, SCIKIT_LEARN_TYPES, mclust_models
from jaxmix.families import (
    gaussian_eei,
    gaussian_eev,
    gaussian_eii,
    gaussian_eve,
    gaussian_evi,
    gaussian_evv,
    gaussian_vee,
    gaussian_vei,
    gaussian_vev,
    gaussian_vve,
)
from jaxmix.families._protocol import CovarianceModel
from jaxmix.families.gaussian_diag import DIAG
from jaxmix.families.gaussian_full import FULL
from jaxmix.families.gaussian_spherical import SPHERICAL
from jaxmix.families.gaussian_tied import TIED


def _renamed(model: CovarianceModel, name: str, univariate_only: bool = False) -> CovarianceModel:
    """The same family under another name (results carry the name they were asked by)."""
    alias = copy.copy(model)
    alias.name = name
    alias.univariate_only = univariate_only
    return alias


_MODELS = (
    FULL,
    TIED,
    DIAG,
    SPHERICAL,
    gaussian_eii.MODEL,
    _renamed(SPHERICAL, "VII"),
    gaussian_eei.MODEL,
    gaussian_vei.MODEL,
    gaussian_evi.MODEL,
    _renamed(DIAG, "VVI"),
    _renamed(TIED, "EEE"),
    gaussian_vee.MODEL,
    gaussian_eve.MODEL,
    gaussian_vve.MODEL,
    gaussian_eev.MODEL,
    gaussian_vev.MODEL,
    gaussian_evv.MODEL,
    _renamed(FULL, "VVV"),
    _renamed(gaussian_eii.MODEL, "E", univariate_only=True),
    _renamed(SPHERICAL, "V", univariate_only=True),
)
COVARIANCE_MODELS: dict[str, CovarianceModel] = {m.name: m for m in _MODELS}
assert tuple(COVARIANCE_MODELS) == COVARIANCE_TYPES, "names.py and the registry disagree"


def covariance_model(name: str) -> CovarianceModel:
    """The family called `name` (see `names.COVARIANCE_TYPES`); ValueError listing them otherwise."""
    model = COVARIANCE_MODELS.get(name) if isinstance(name, str) else None
    if model is None:
        raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {name!r}")
    return model


def check_covariance_type(name: Any, n_features: int | None = None, prior: bool = False) -> CovarianceModel:
    """The family called `name`, checked against the data's width and the use of a prior."""
    model = covariance_model(name)
    if n_features is not None and model.univariate_only and n_features != 1:
        raise ValueError(
            f"covariance_type {name!r} is mclust's name for one feature; x has {n_features} "
            f"(use {'EII' if name == 'E' else 'VII'})"
        )
    if prior and not model.supports_prior:
        with_prior = tuple(m.name for m in _MODELS if m.supports_prior)
        raise ValueError(f"covariance_type {name!r} has no conjugate-prior M-step; a prior works with {with_prior}")
    return model


__all__ = [
    "COVARIANCE_MODELS",
    "COVARIANCE_TYPES",
    "MCLUST_MODELS",
    "SCIKIT_LEARN_TYPES",
    "CovarianceModel",
    "check_covariance_type",
    "covariance_model",
    "mclust_models",
]
