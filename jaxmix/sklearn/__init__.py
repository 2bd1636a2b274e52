"""scikit-learn estimators backed by jaxmix: swap the import, keep the code.

    from jaxmix.sklearn import KMeans, MiniBatchKMeans, GaussianMixture, SoftKMeans

Needs scikit-learn (`pip install 'jaxmix[sklearn]'`); the core library does not.
"""

try:
    import sklearn  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "jaxmix.sklearn needs scikit-learn: pip install 'jaxmix[sklearn]' (the core jaxmix API does not)"
    ) from e

from jaxmix.sklearn._gmm import GaussianMixture as GaussianMixture
from jaxmix.sklearn._kmeans import KMeans as KMeans
from jaxmix.sklearn._minibatch import MiniBatchKMeans as MiniBatchKMeans
from jaxmix.sklearn._persist import register as _register
from jaxmix.sklearn._soft_kmeans import SoftKMeans as SoftKMeans

# jaxmix.save / jaxmix.load handle the estimators (kinds "sklearn.<Name>").
_register("sklearn.KMeans", KMeans)
_register("sklearn.GaussianMixture", GaussianMixture)
_register("sklearn.SoftKMeans", SoftKMeans)
_register("sklearn.MiniBatchKMeans", MiniBatchKMeans)

__all__ = ["GaussianMixture", "KMeans", "MiniBatchKMeans", "SoftKMeans"]
