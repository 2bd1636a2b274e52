"""The names of the covariance models and the module of each, without importing JAX.

The command line's `--help` reads them; `registry.py` imports a family's
module on first use. A new family is one module in `jaxmix/families/` (it
defines `MODEL`) plus one line in `MODULES` below.

scikit-learn's four types keep their names; mclust's volume-shape-orientation
models (Sigma_k = lambda_k D_k A_k D_k^T, Celeux and Govaert 1995) are named
as mclust names them: the letters say whether volume, shape and orientation
are Equal, Variable or the Identity across components. mclust's VII, VVI,
EEE and VVV are scikit-learn's spherical, diag, tied and full (the same
module, under the name they were asked by); "E" and "V" are mclust's names
of EII and VII for one feature.
"""

from __future__ import annotations

MODULES = {
    "full": "gaussian_full",
    "tied": "gaussian_tied",
    "diag": "gaussian_diag",
    "spherical": "gaussian_spherical",
    "EII": "gaussian_eii",
    "VII": "gaussian_spherical",
    "EEI": "gaussian_eei",
    "VEI": "gaussian_vei",
    "EVI": "gaussian_evi",
    "VVI": "gaussian_diag",
    "EEE": "gaussian_tied",
    "VEE": "gaussian_vee",
    "EVE": "gaussian_eve",
    "VVE": "gaussian_vve",
    "EEV": "gaussian_eev",
    "VEV": "gaussian_vev",
    "EVV": "gaussian_evv",
    "VVV": "gaussian_full",
    "E": "gaussian_eii",
    "V": "gaussian_spherical",
}
SCIKIT_LEARN_TYPES = ("full", "tied", "diag", "spherical")
MCLUST_MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
UNIVARIATE_MODELS = ("E", "V")  # mclust's names for d = 1
COVARIANCE_TYPES = tuple(MODULES)
# mclust's words for its models (`summary(Mclust)`), by mclust name.
DESCRIPTIONS = {
    "E": "univariate, equal variance",
    "V": "univariate, unequal variance",
    "EII": "spherical, equal volume",
    "VII": "spherical, varying volume",
    "EEI": "diagonal, equal volume and shape",
    "VEI": "diagonal, varying volume, equal shape",
    "EVI": "diagonal, equal volume, varying shape",
    "VVI": "diagonal, varying volume and shape",
    "EEE": "ellipsoidal, equal volume, shape and orientation",
    "VEE": "ellipsoidal, equal shape and orientation",
    "EVE": "ellipsoidal, equal volume and orientation",
    "VVE": "ellipsoidal, equal orientation",
    "EEV": "ellipsoidal, equal volume and equal shape",
    "VEV": "ellipsoidal, equal shape",
    "EVV": "ellipsoidal, equal volume",
    "VVV": "ellipsoidal, varying volume, shape and orientation",
}
# Families the engine uses inside programs, not offered as a covariance_type.
INTERNAL_MODULES = {"dense": "gaussian_dense"}


def mclust_models(d: int) -> tuple[str, ...]:
    """mclust's default model list for d features: E and V for d = 1, the fourteen otherwise."""
    return UNIVARIATE_MODELS if d == 1 else MCLUST_MODELS
