"""jaxmix: k-means, soft k-means and Gaussian mixtures by EM in JAX.

Every fit is one compiled program: pure E/M steps on sufficient statistics,
a `lax.while_loop` driver, restarts by `vmap`, and chunked passes over the
rows so memory stays bounded. The same code runs on CPU, GPU and TPU, and
inside a user's own `jax.jit`, `jax.vmap` and float64 programs.
"""

from typing import TYPE_CHECKING, Any

from jaxmix import datasets as datasets
from jaxmix import distributed as distributed
from jaxmix._batch import kmeans_batch as kmeans_batch
from jaxmix._batch_mixtures import gmm_batch as gmm_batch
from jaxmix._batch_mixtures import soft_kmeans_batch as soft_kmeans_batch
from jaxmix._gmm import GMMResult as GMMResult
from jaxmix._gmm import gmm as gmm
from jaxmix._gmm_params import GMMParams as GMMParams
from jaxmix._gmm_params import GMMPrior as GMMPrior
from jaxmix._implicit import gmm_fixed_point as gmm_fixed_point
from jaxmix._implicit import soft_kmeans_fixed_point as soft_kmeans_fixed_point
from jaxmix._io import load as load
from jaxmix._io import save as save
from jaxmix._jit import cache_programs as cache_programs
from jaxmix._jit import default_cache_dir as default_cache_dir
from jaxmix._kmeans import KMeansResult as KMeansResult
from jaxmix._kmeans import kmeans as kmeans
from jaxmix._kmeans import kmeans_predict as kmeans_predict
from jaxmix._kmeans import transform as transform
from jaxmix._mixture import aic as aic
from jaxmix._mixture import bic as bic
from jaxmix._mixture import entropy as entropy
from jaxmix._mixture import icl as icl
from jaxmix._mixture import log_prob as log_prob
from jaxmix._mixture import n_parameters as n_parameters
from jaxmix._mixture import predict as predict
from jaxmix._mixture import predict_proba as predict_proba
from jaxmix._mixture import sample as sample
from jaxmix._mixture import score as score
from jaxmix._plot import plot as plot
from jaxmix._select import SelectResult as SelectResult
from jaxmix._select import select as select
from jaxmix._sharding import rows_from_processes as rows_from_processes
from jaxmix._sharding import shard_rows as shard_rows
from jaxmix._soft_kmeans import SoftKMeansResult as SoftKMeansResult
from jaxmix._soft_kmeans import soft_kmeans as soft_kmeans
from jaxmix._soft_kmeans import soft_kmeans_predict_proba as soft_kmeans_predict_proba

__version__ = "0.1.0"

# Imported on first use: optax (fits by gradient) and the streaming machinery
# cost a few tenths of a second of every process that does not need them.
_LAZY = {
    "gradient": ("jaxmix.gradient", None),
    "stream": ("jaxmix.stream", None),
    "fit_gradient": ("jaxmix._gradient", "fit_gradient"),
    "GradientFitResult": ("jaxmix._gradient", "GradientFitResult"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = importlib.import_module(module)
        value = value if attr is None else getattr(value, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jaxmix' has no attribute {name!r}")


if TYPE_CHECKING:
    from jaxmix import gradient as gradient
    from jaxmix import stream as stream
    from jaxmix._gradient import GradientFitResult as GradientFitResult
    from jaxmix._gradient import fit_gradient as fit_gradient

__all__ = [
    "GMMParams",
    "GMMPrior",
    "GMMResult",
    "GradientFitResult",
    "KMeansResult",
    "SelectResult",
    "SoftKMeansResult",
    "aic",
    "bic",
    "cache_programs",
    "datasets",
    "default_cache_dir",
    "distributed",
    "entropy",
    "fit_gradient",
    "gmm",
    "gmm_batch",
    "gmm_fixed_point",
    "gradient",
    "icl",
    "kmeans",
    "kmeans_batch",
    "kmeans_predict",
    "load",
    "log_prob",
    "n_parameters",
    "plot",
    "predict",
    "predict_proba",
    "rows_from_processes",
    "sample",
    "save",
    "score",
    "select",
    "shard_rows",
    "soft_kmeans",
    "soft_kmeans_batch",
    "soft_kmeans_fixed_point",
    "soft_kmeans_predict_proba",
    "stream",
    "transform",
]
