"""Fits over data read in batches: exact EM / Lloyd, and single-pass mini-batch k-means and online EM.

For data larger than memory: a source (an array or memmap, a directory of
`.npy` shards, an h5py or zarr array, or a callable yielding batches) is
read batch by batch, once per iteration; each pass sums the model's
sufficient statistics over the batches and one M-step follows, so the fit
is the in-memory EM, not an approximation (`kmeans`, `soft_kmeans`, `gmm`).
Fits can write a checkpoint and resume from it after a crash with the same
result.

For streams read once (or a few times): `minibatch_kmeans` (Sculley 2010,
scikit-learn's update rule) and `online_gmm` (stepwise EM, Cappé and
Moulines 2009), with their pure, jitted `*_init` / `*_update` steps. They
take an in-memory array (shuffled every pass), any iterable of batches, or
any source `as_source` accepts (read in order: shuffle the rows of your
files beforehand, mini-batch updates assume batches are random samples).

Example:
  >>> import jax, numpy as np, jaxmix.stream as js
  >>> x = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
  >>> r = js.kmeans(jax.random.key(0), x, 3, batch_rows=100)
  >>> r.centers.shape, sum(b.shape[0] for b in js.predict(r, x, batch_rows=100))
  ((3, 2), 300)
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import numpy as np

from jaxmix.capabilities import online as _online
from jaxmix.capabilities.online import MiniBatchKMeansResult as MiniBatchKMeansResult
from jaxmix.capabilities.online import MiniBatchKMeansState as MiniBatchKMeansState
from jaxmix.capabilities.online import OnlineGMMResult as OnlineGMMResult
from jaxmix.capabilities.online import OnlineGMMState as OnlineGMMState
from jaxmix.capabilities.online import minibatch_kmeans_init as minibatch_kmeans_init
from jaxmix.capabilities.online import minibatch_kmeans_update as minibatch_kmeans_update
from jaxmix.capabilities.online import online_gmm_init as online_gmm_init
from jaxmix.capabilities.online import online_gmm_update as online_gmm_update
from jaxmix.capabilities.sources import Batch as Batch
from jaxmix.capabilities.sources import Source as Source
from jaxmix.capabilities.sources import as_source as as_source
from jaxmix.capabilities.streaming import gmm as gmm
from jaxmix.capabilities.streaming import kmeans as kmeans
from jaxmix.capabilities.streaming import predict as predict
from jaxmix.capabilities.streaming import soft_kmeans as soft_kmeans


def _for_online(source: Any, batch_size: Any) -> Any:
    """Files, memmaps, HDF5/zarr arrays and callables become a `Source` read in order; the rest passes."""
    if isinstance(source, Source):
        return source
    on_disk = isinstance(source, (str, os.PathLike, np.memmap)) or callable(source)
    foreign = (
        not isinstance(source, (np.ndarray, jax.Array, list, tuple))
        and hasattr(source, "shape")
        and hasattr(source, "dtype")
    )
    if on_disk or foreign:
        rows = batch_size if isinstance(batch_size, int) and not isinstance(batch_size, bool) else None
        return as_source(source, batch_rows=rows)
    return source


@functools.wraps(_online.minibatch_kmeans)
def minibatch_kmeans(key: jax.Array, batches: Any, n_clusters: int, **kwargs: Any) -> MiniBatchKMeansResult:
    return _online.minibatch_kmeans(key, _for_online(batches, kwargs.get("batch_size", 1024)), n_clusters, **kwargs)


@functools.wraps(_online.online_gmm)
def online_gmm(key: jax.Array, batches: Any, n_components: int, **kwargs: Any) -> OnlineGMMResult:
    return _online.online_gmm(key, _for_online(batches, kwargs.get("batch_size", 1024)), n_components, **kwargs)


__all__ = [
    "Batch",
    "MiniBatchKMeansResult",
    "MiniBatchKMeansState",
    "OnlineGMMResult",
    "OnlineGMMState",
    "Source",
    "as_source",
    "gmm",
    "kmeans",
    "minibatch_kmeans",
    "minibatch_kmeans_init",
    "minibatch_kmeans_update",
    "online_gmm",
    "online_gmm_init",
    "online_gmm_update",
    "predict",
    "soft_kmeans",
]
