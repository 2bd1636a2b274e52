"""jaxmix: k-means, soft k-means and Gaussian mixtures by EM in JAX.

Every fit is one compiled program: pure E/M steps on sufficient statistics,
a `lax.while_loop` driver, restarts by `vmap`, and chunked passes over the
rows so memory stays bounded. The same code runs on CPU, GPU and TPU, and
inside a user's own `jax.jit`, `jax.vmap` and float64 programs.
"""

from jaxmix import datasets as datasets
from jaxmix._kmeans import KMeansResult as KMeansResult
from jaxmix._kmeans import kmeans as kmeans
from jaxmix._kmeans import kmeans_predict as kmeans_predict
from jaxmix._kmeans import transform as transform
from jaxmix._soft_kmeans import SoftKMeansResult as SoftKMeansResult
from jaxmix._soft_kmeans import soft_kmeans as soft_kmeans
from jaxmix._soft_kmeans import soft_kmeans_predict_proba as soft_kmeans_predict_proba

__version__ = "0.1.0"

__all__ = [
    "KMeansResult",
    "SoftKMeansResult",
    "datasets",
    "kmeans",
    "kmeans_predict",
    "soft_kmeans",
    "soft_kmeans_predict_proba",
    "transform",
]
