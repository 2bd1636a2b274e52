"""The names of the covariance models, without importing JAX.

The command line's `--help` reads them; `jaxmix.families` holds the models.

scikit-learn's four types keep their names; mclust's volume-shape-orientation
models (Sigma_k = lambda_k D_k A_k D_k^T, Celeux and Govaert 1995) are named
as mclust names them: the letters say whether volume, shape and orientation
are Equal, Variable or the Identity across components.
"""

from __future__ import annotations

SCIKIT_LEARN_TYPES = ("full", "tied", "diag", "spherical")
MCLUST_MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
UNIVARIATE_MODELS = ("E", "V")  # mclust's names for d = 1
COVARIANCE_TYPES = SCIKIT_LEARN_TYPES + MCLUST_MODELS + UNIVARIATE_MODELS


def mclust_models(d: int) -> tuple[str, ...]:
    """mclust's default model list for d features: E and V for d = 1, the fourteen otherwise."""
    return UNIVARIATE_MODELS if d == 1 else MCLUST_MODELS
