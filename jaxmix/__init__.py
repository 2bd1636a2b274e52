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
    "kmeans_batch": ("jaxmix.capabilities.batch", "kmeans_batch"),
    "gmm_batch": ("jaxmix.capabilities.batch_mixtures", "gmm_batch"),
    "soft_kmeans_batch": ("jaxmix.capabilities.batch_mixtures", "soft_kmeans_batch"),
    "GMMResult": ("jaxmix.models.gmm", "GMMResult"),
    "gmm": ("jaxmix.models.gmm", "gmm"),
    "gmm_noise": ("jaxmix.models.gmm_noise", "gmm_noise"),
    "NoiseGMMResult": ("jaxmix.models.gmm_noise", "NoiseGMMResult"),
    "GMMParams": ("jaxmix.families.params", "GMMParams"),
    "GMMPrior": ("jaxmix.families.params", "GMMPrior"),
    "gmm_fixed_point": ("jaxmix.capabilities.implicit", "gmm_fixed_point"),
    "soft_kmeans_fixed_point": ("jaxmix.capabilities.implicit", "soft_kmeans_fixed_point"),
    "load": ("jaxmix.tools.files", "load"),
    "save": ("jaxmix.tools.files", "save"),
    "cache_programs": ("jaxmix.engine.programs", "cache_programs"),
    "default_cache_dir": ("jaxmix.engine.programs", "default_cache_dir"),
    "KMeansResult": ("jaxmix.models.kmeans", "KMeansResult"),
    "kmeans": ("jaxmix.models.kmeans", "kmeans"),
    "kmeans_predict": ("jaxmix.models.kmeans", "kmeans_predict"),
    "transform": ("jaxmix.models.kmeans", "transform"),
    "aic": ("jaxmix.models.mixture", "aic"),
    "bic": ("jaxmix.models.mixture", "bic"),
    "entropy": ("jaxmix.models.mixture", "entropy"),
    "icl": ("jaxmix.models.mixture", "icl"),
    "log_prob": ("jaxmix.models.mixture", "log_prob"),
    "n_parameters": ("jaxmix.models.mixture", "n_parameters"),
    "predict": ("jaxmix.models.mixture", "predict"),
    "predict_proba": ("jaxmix.models.mixture", "predict_proba"),
    "sample": ("jaxmix.models.mixture", "sample"),
    "score": ("jaxmix.models.mixture", "score"),
    "plot": ("jaxmix.tools.plot", "plot"),
    "SelectResult": ("jaxmix.capabilities.select_result", "SelectResult"),
    "SelectSummary": ("jaxmix.capabilities.select_result", "SelectSummary"),
    "BootstrapLRT": ("jaxmix.capabilities.bootstrap", "BootstrapLRT"),
    "BootstrapSE": ("jaxmix.capabilities.bootstrap", "BootstrapSE"),
    "bootstrap_lrt": ("jaxmix.capabilities.bootstrap", "bootstrap_lrt"),
    "bootstrap_se": ("jaxmix.capabilities.bootstrap", "bootstrap_se"),
    "select": ("jaxmix.capabilities.select", "select"),
    "rows_from_processes": ("jaxmix.engine.sharding", "rows_from_processes"),
    "shard_rows": ("jaxmix.engine.sharding", "shard_rows"),
    "SoftKMeansResult": ("jaxmix.models.soft_kmeans", "SoftKMeansResult"),
    "soft_kmeans": ("jaxmix.models.soft_kmeans", "soft_kmeans"),
    "soft_kmeans_predict_proba": ("jaxmix.models.soft_kmeans", "soft_kmeans_predict_proba"),
    "fit_gradient": ("jaxmix.capabilities.gradient", "fit_gradient"),
    "GradientFitResult": ("jaxmix.capabilities.gradient", "GradientFitResult"),
}


_SUBPACKAGES = ("engine", "families", "models", "capabilities", "tools")


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        module, attr = _LAZY[name]
        value = importlib.import_module(module)
        value = value if attr is None else getattr(value, attr)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES or (name.startswith("_") and not name.startswith("__")):
        # A subpackage (`jaxmix.engine`) or private module reached as an attribute before anything imported it.
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
    from jaxmix.capabilities.batch import kmeans_batch as kmeans_batch
    from jaxmix.capabilities.batch_mixtures import gmm_batch as gmm_batch
    from jaxmix.capabilities.batch_mixtures import soft_kmeans_batch as soft_kmeans_batch
    from jaxmix.capabilities.bootstrap import BootstrapLRT as BootstrapLRT
    from jaxmix.capabilities.bootstrap import BootstrapSE as BootstrapSE
    from jaxmix.capabilities.bootstrap import bootstrap_lrt as bootstrap_lrt
    from jaxmix.capabilities.bootstrap import bootstrap_se as bootstrap_se
    from jaxmix.capabilities.gradient import GradientFitResult as GradientFitResult
    from jaxmix.capabilities.gradient import fit_gradient as fit_gradient
    from jaxmix.capabilities.implicit import gmm_fixed_point as gmm_fixed_point
    from jaxmix.capabilities.implicit import soft_kmeans_fixed_point as soft_kmeans_fixed_point
    from jaxmix.capabilities.select import select as select
    from jaxmix.capabilities.select_result import SelectResult as SelectResult
    from jaxmix.capabilities.select_result import SelectSummary as SelectSummary
    from jaxmix.engine.programs import cache_programs as cache_programs
    from jaxmix.engine.programs import default_cache_dir as default_cache_dir
    from jaxmix.engine.sharding import rows_from_processes as rows_from_processes
    from jaxmix.engine.sharding import shard_rows as shard_rows
    from jaxmix.families.params import GMMParams as GMMParams
    from jaxmix.families.params import GMMPrior as GMMPrior
    from jaxmix.models.gmm import GMMResult as GMMResult
    from jaxmix.models.gmm import gmm as gmm
    from jaxmix.models.gmm_noise import NoiseGMMResult as NoiseGMMResult
    from jaxmix.models.gmm_noise import gmm_noise as gmm_noise
    from jaxmix.models.kmeans import KMeansResult as KMeansResult
    from jaxmix.models.kmeans import kmeans as kmeans
    from jaxmix.models.kmeans import kmeans_predict as kmeans_predict
    from jaxmix.models.kmeans import transform as transform
    from jaxmix.models.mixture import aic as aic
    from jaxmix.models.mixture import bic as bic
    from jaxmix.models.mixture import entropy as entropy
    from jaxmix.models.mixture import icl as icl
    from jaxmix.models.mixture import log_prob as log_prob
    from jaxmix.models.mixture import n_parameters as n_parameters
    from jaxmix.models.mixture import predict as predict
    from jaxmix.models.mixture import predict_proba as predict_proba
    from jaxmix.models.mixture import sample as sample
    from jaxmix.models.mixture import score as score
    from jaxmix.models.soft_kmeans import SoftKMeansResult as SoftKMeansResult
    from jaxmix.models.soft_kmeans import soft_kmeans as soft_kmeans
    from jaxmix.models.soft_kmeans import soft_kmeans_predict_proba as soft_kmeans_predict_proba
    from jaxmix.tools.files import load as load
    from jaxmix.tools.files import save as save
    from jaxmix.tools.plot import plot as plot

__all__ = [
    "BootstrapLRT",
    "BootstrapSE",
    "GMMParams",
    "GMMPrior",
    "GMMResult",
    "GradientFitResult",
    "KMeansResult",
    "NoiseGMMResult",
    "SelectResult",
    "SelectSummary",
    "SoftKMeansResult",
    "aic",
    "bic",
    "bootstrap_lrt",
    "bootstrap_se",
    "cache_programs",
    "datasets",
    "default_cache_dir",
    "distributed",
    "entropy",
    "fit_gradient",
    "gmm",
    "gmm_batch",
    "gmm_fixed_point",
    "gmm_noise",
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
