"""Component families: what a mixture's components are, as small modules on one protocol.

A family is a set of pure functions on arrays (`_protocol.CovarianceModel`):
the shapes it stores, its free-parameter count, the log density's pieces
(log-determinant, Mahalanobis term), the sufficient statistics of weighted
responsibilities (second moments, scatter) and the M-step (ML, and MAP where
a conjugate prior is supported). The engine and the capabilities (`gmm`,
`select`, streaming, batches, files, estimators) ask the registry
(`registry.covariance_model(name)`) for a family and call these functions;
they hold no per-family branches.

Families: scikit-learn's four Gaussian covariance types (`gaussian_full`,
`gaussian_tied`, `gaussian_diag`, `gaussian_spherical`) and mclust's
volume-shape-orientation models, one module each (`gaussian_eii`, ...,
`gaussian_evv`; shared pieces of their M-steps in `_decomposition.py`);
mclust's VVV, EEE, VVI and VII are scikit-learn's full, tied, diag and
spherical under their mclust names, and "E" / "V" (d = 1) are EII / VII.

This file imports no JAX (the command line's `--help` reads `names`); the
registry's names load on first use. A new family is one module here (defining
`MODEL`) plus one line in `names.MODULES`.
"""

from __future__ import annotations

from typing import Any

from jaxmix.families.names import (
    COVARIANCE_TYPES,
    MCLUST_MODELS,
    SCIKIT_LEARN_TYPES,
    UNIVARIATE_MODELS,
    mclust_models,
)

_REGISTRY = ("COVARIANCE_MODELS", "CovarianceModel", "check_covariance_type", "covariance_model")


def __getattr__(name: str) -> Any:
    if name in _REGISTRY:
        from jaxmix.families import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'jaxmix.families' has no attribute {name!r}")


__all__ = ["COVARIANCE_TYPES", "MCLUST_MODELS", "SCIKIT_LEARN_TYPES", "UNIVARIATE_MODELS", "mclust_models", *_REGISTRY]
