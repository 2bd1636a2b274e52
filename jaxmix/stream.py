"""Exact k-means, soft k-means and Gaussian mixtures over data read in batches.

For data larger than memory: a source (an array or memmap, a directory of
`.npy` shards, an h5py or zarr array, or a callable yielding batches) is
read batch by batch, once per iteration; each pass sums the model's
sufficient statistics over the batches and one M-step follows, so the fit
is the in-memory EM, not an approximation. Fits can write a checkpoint and
resume from it after a crash with the same result.

Example:
  >>> import jax, numpy as np, jaxmix.stream as js
  >>> x = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
  >>> r = js.kmeans(jax.random.key(0), x, 3, batch_rows=100)
  >>> r.centers.shape, sum(b.shape[0] for b in js.predict(r, x, batch_rows=100))
  ((3, 2), 300)
"""

from jaxmix._sources import Batch as Batch
from jaxmix._sources import Source as Source
from jaxmix._sources import as_source as as_source
from jaxmix._stream import gmm as gmm
from jaxmix._stream import kmeans as kmeans
from jaxmix._stream import predict as predict
from jaxmix._stream import soft_kmeans as soft_kmeans

__all__ = ["Batch", "Source", "as_source", "gmm", "kmeans", "predict", "soft_kmeans"]
