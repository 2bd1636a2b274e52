"""The registry of component families: name -> family (`covariance_model`), checks of a name against the data.

Each name of `names.MODULES` is served by the `MODEL` of its module,
imported on first use; a model asked for by another name (mclust's VVV is
scikit-learn's full) is a renamed copy, so results carry the name they were
asked by.
"""

from __future__ import annotations

import copy
import functools
import importlib
from typing import Any

from jaxmix.families._protocol import CovarianceModel
from jaxmix.families.names import COVARIANCE_TYPES, INTERNAL_MODULES, MODULES, UNIVARIATE_MODELS


@functools.cache
def _load(name: str) -> CovarianceModel:
    model = importlib.import_module(f"jaxmix.families.{MODULES.get(name) or INTERNAL_MODULES[name]}").MODEL
    if model.name != name:
        model = copy.copy(model)
        model.name = name
        model.univariate_only = name in UNIVARIATE_MODELS
    return model


def covariance_model(name: str) -> CovarianceModel:
    """The family called `name` (see `names.COVARIANCE_TYPES`, and the engine's `INTERNAL_MODULES`);
    ValueError listing the public ones otherwise."""
    if not isinstance(name, str) or (name not in MODULES and name not in INTERNAL_MODULES):
        raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {name!r}")
    return _load(name)


COVARIANCE_MODELS: dict[str, CovarianceModel] = {name: covariance_model(name) for name in MODULES}


def check_covariance_type(name: Any, n_features: int | None = None, prior: bool = False) -> CovarianceModel:
    """The family called `name`, checked against the data's width and the use of a prior."""
    model = covariance_model(name)
    if n_features is not None and model.univariate_only and n_features != 1:
        raise ValueError(
            f"covariance_type {name!r} is mclust's name for one feature; x has {n_features} "
            f"(use {'EII' if name == 'E' else 'VII'})"
        )
    if prior and not model.supports_prior:
        with_prior = tuple(m.name for m in COVARIANCE_MODELS.values() if m.supports_prior)
        raise ValueError(f"covariance_type {name!r} has no conjugate-prior M-step; a prior works with {with_prior}")
    return model
