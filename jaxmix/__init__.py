"""jaxmix: k-means, soft k-means and Gaussian mixtures by EM in JAX.

Every fit is one compiled program: pure E/M steps on sufficient statistics,
a `lax.while_loop` driver, restarts by `vmap`, and chunked passes over the
rows so memory stays bounded. The same code runs on CPU, GPU and TPU, and
inside a user's own `jax.jit`, `jax.vmap` and float64 programs.
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Everything is imported on first use (PEP 562): `import jaxmix` costs no JAX
# import, so the command line answers `jaxmix --help` and `--version` at once,
# and a process pays for optax, the streaming machinery or plotting only when
# it uses them.
_LAZY: dict[str, tuple[str, str | None]] = {
    "datasets": ("jaxmix.datasets", None),
    "distributed": ("jaxmix.distributed", None),
    "gradient": ("jaxmix.gradient", None),
    "stream": ("jaxmix.stream", None),
    "kmeans_batch": ("jaxmix._batch", "kmeans_batch"),
    "gmm_batch": ("jaxmix._batch_mixtures", "gmm_batch"),
    "soft_kmeans_batch": ("jaxmix._batch_mixtures", "soft_kmeans_batch"),
    "GMMResult": ("jaxmix._gmm", "GMMResult"),
    "gmm": ("jaxmix._gmm", "gmm"),
    "GMMParams": ("jaxmix._gmm_params", "GMMParams"),
    "GMMPrior": ("jaxmix._gmm_params", "GMMPrior"),
    "gmm_fixed_point": ("jaxmix._implicit", "gmm_fixed_point"),
    "soft_kmeans_fixed_point": ("jaxmix._implicit", "soft_kmeans_fixed_point"),
    "load": ("jaxmix._io", "load"),
    "save": ("jaxmix._io", "save"),
    "cache_programs": ("jaxmix._jit", "cache_programs"),
    "default_cache_dir": ("jaxmix._jit", "default_cache_dir"),
    "KMeansResult": ("jaxmix._kmeans", "KMeansResult"),
    "kmeans": ("jaxmix._kmeans", "kmeans"),
    "kmeans_predict": ("jaxmix._kmeans", "kmeans_predict"),
    "transform": ("jaxmix._kmeans", "transform"),
    "aic": ("jaxmix._mixture", "aic"),
    "bic": ("jaxmix._mixture", "bic"),
    "entropy": ("jaxmix._mixture", "entropy"),
    "icl": ("jaxmix._mixture", "icl"),
    "log_prob": ("jaxmix._mixture", "log_prob"),
    "n_parameters": ("jaxmix._mixture", "n_parameters"),
    "predict": ("jaxmix._mixture", "predict"),
    "predict_proba": ("jaxmix._mixture", "predict_proba"),
    "sample": ("jaxmix._mixture", "sample"),
    "score": ("jaxmix._mixture", "score"),
    "plot": ("jaxmix._plot", "plot"),
    "SelectResult": ("jaxmix._select", "SelectResult"),
    "select": ("jaxmix._select", "select"),
    "rows_from_processes": ("jaxmix._sharding", "rows_from_processes"),
    "shard_rows": ("jaxmix._sharding", "shard_rows"),
    "SoftKMeansResult": ("jaxmix._soft_kmeans", "SoftKMeansResult"),
    "soft_kmeans": ("jaxmix._soft_kmeans", "soft_kmeans"),
    "soft_kmeans_predict_proba": ("jaxmix._soft_kmeans", "soft_kmeans_predict_proba"),
    "fit_gradient": ("jaxmix._gradient", "fit_gradient"),
    "GradientFitResult": ("jaxmix._gradient", "GradientFitResult"),
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        module, attr = _LAZY[name]
        value = importlib.import_module(module)
        value = value if attr is None else getattr(value, attr)
        globals()[name] = value
        return value
    if name.startswith("_") and not name.startswith("__"):
        # A private module (`jaxmix._io`) reached as an attribute before anything imported it.
        try:
            return importlib.import_module(f"jaxmix.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"jaxmix.{name}":
                raise
    raise AttributeError(f"module 'jaxmix' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:
    from jaxmix import datasets as datasets
    from jaxmix import distributed as distributed
    from jaxmix import gradient as gradient
    from jaxmix import stream as stream
    from jaxmix._batch import kmeans_batch as kmeans_batch
    from jaxmix._batch_mixtures import gmm_batch as gmm_batch
    from jaxmix._batch_mixtures import soft_kmeans_batch as soft_kmeans_batch
    from jaxmix._gmm import GMMResult as GMMResult
    from jaxmix._gmm import gmm as gmm
    from jaxmix._gmm_params import GMMParams as GMMParams
    from jaxmix._gmm_params import GMMPrior as GMMPrior
    from jaxmix._gradient import GradientFitResult as GradientFitResult
    from jaxmix._gradient import fit_gradient as fit_gradient
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
