"""Labels of a fitted model, batch by batch over a source: `jaxmix.stream.predict`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.capabilities.sources import Source, as_source
from jaxmix.capabilities.streaming.iterations import _kmeans_chunk
from jaxmix.capabilities.streaming.programs import _to_device
from jaxmix.engine import parameter_checks as PC
from jaxmix.engine import validation as V
from jaxmix.engine.chunks import map_rows
from jaxmix.engine.distances import log_probabilities, sq_norms
from jaxmix.engine.programs import fit_jit
from jaxmix.families.params import GMMParams
from jaxmix.models.gmm import GMMResult, gmm_chunk_size
from jaxmix.models.kmeans import KMeansResult
from jaxmix.models.kmeans_steps import assign as _kmeans_assign
from jaxmix.models.mixture import _per_row as _gmm_per_row
from jaxmix.models.soft_kmeans import SoftKMeansResult, _logits


@fit_jit(static_argnames=("chunk_size",))
def _kmeans_labels(centers, x, *, chunk_size):
    shift = jnp.mean(centers, axis=0)
    return _kmeans_assign(x, shift, centers - shift, chunk_size, exact=False)[0]


@fit_jit(static_argnames=("chunk_size",))
def _soft_labels(centers, pi, beta, x, *, chunk_size):
    shift = jnp.mean(centers, axis=0)
    c = centers - shift
    cc, log_pi = sq_norms(c), log_probabilities(pi)
    return map_rows(
        lambda xc: jnp.argmax(_logits(xc - shift, c, cc, log_pi, beta), axis=1).astype(jnp.int32), x, chunk_size
    )


def _labeller(model: Any, d: int, dtype: np.dtype) -> tuple[Callable[[jax.Array], jax.Array], int]:
    """The labelling function of a model, and its number of clusters."""
    if isinstance(model, GMMResult):
        model = model.params
    if isinstance(model, GMMParams):
        params = PC.check_gmm_params(model, d, dtype, name="model")
        k, ctype = params.means.shape[0], params.covariance_type
        return lambda x: _gmm_per_row(
            params,
            x,
            what="predict",
            chunk_size=min(gmm_chunk_size(x.shape[0], k, d, ctype, dtype.itemsize), x.shape[0]),
        ), k
    if isinstance(model, SoftKMeansResult):
        c = V.check_centers(model.centers, None, d, dtype, name="model.centers")
        pi = jnp.asarray(np.asarray(model.weights), dtype)
        beta = jnp.asarray(np.asarray(model.beta), dtype)
        k = c.shape[0]
        return lambda x: _soft_labels(c, pi, beta, x, chunk_size=_kmeans_chunk(x.shape[0], k, dtype)), k
    centers = model.centers if isinstance(model, KMeansResult) else model
    try:
        c = V.check_centers(centers, None, d, dtype, name="model")
    except (TypeError, ValueError) as e:
        raise TypeError(
            "model must be a KMeansResult, SoftKMeansResult, GMMResult, GMMParams or a (k, n_features) array of "
            f"centres ({e})"
        ) from None
    return lambda x: _kmeans_labels(c, x, chunk_size=_kmeans_chunk(x.shape[0], c.shape[0], dtype)), c.shape[0]


def _label_batches(label: Callable[[jax.Array], jax.Array], src: Source) -> Iterator[np.ndarray]:
    for batch in src:
        x, _ = _to_device(batch, src.batch_rows, src.dtype)
        yield np.asarray(label(x))[: batch.x.shape[0]]


def _check_out(out: Any, k: int) -> None:
    """`out` has an integer dtype that holds the labels 0..k-1 (NumPy casts 300 into int8 as 44, silently)."""
    dt = getattr(out, "dtype", None)
    if dt is None:
        raise TypeError(f"out must be a writable int array (e.g. np.zeros(n, np.int32)), got {type(out).__name__}")
    dt = np.dtype(dt)
    if dt.kind not in "iu":
        raise TypeError(f"out must have an integer dtype, got {dt}")
    if np.iinfo(dt).max < k - 1:
        raise ValueError(
            f"out has dtype {dt}, whose largest value {np.iinfo(dt).max} cannot hold labels up to {k - 1} "
            "(k - 1); use np.int32"
        )


def predict(model: Any, source: Any, *, out: Any = None, batch_rows: int | None = None) -> Iterator[np.ndarray] | Any:
    """Labels of every row of a source, batch by batch.

    Args:
      model: a `KMeansResult` or (k, n_features) array of centres (nearest
        centre), a `SoftKMeansResult` (most responsible cluster), a
        `GMMResult` or `GMMParams` (most probable component); streamed and
        in-memory results alike.
      source: anything `jaxmix.stream.as_source` accepts.
      out: optional writable int array (n,), e.g. an `np.memmap` or
        `np.lib.format.open_memmap(path, "w+", np.int32, (n,))`: the labels
        are written into it and it is returned. Its dtype must hold every
        label 0..k-1 (an int8 `out` for k = 300 raises a ValueError instead
        of wrapping labels around).
      batch_rows: rows per batch for array-like sources.

    Returns:
      Without `out`, an iterator of (b,) int32 NumPy arrays, one per batch,
      in source order; with `out`, `out` filled.

    Example:
      >>> import numpy as np, jaxmix.stream as js
      >>> x = np.array([[0.0], [0.2], [9.0], [10.0], [0.1]], np.float32)
      >>> [b.tolist() for b in js.predict(np.array([[0.0], [10.0]]), x, batch_rows=2)]
      [[0, 0], [1, 1], [0]]
      >>> js.predict(np.array([[0.0], [10.0]]), x, out=np.zeros(5, np.int32)).tolist()
      [0, 0, 1, 1, 0]
    """
    src = as_source(source, batch_rows=batch_rows)
    label, k = _labeller(model, src.n_features, src.dtype)
    if out is None:
        return _label_batches(label, src)
    _check_out(out, k)
    if src.n_rows is not None and tuple(np.shape(out)) != (src.n_rows,):
        raise ValueError(f"out must have shape ({src.n_rows},), got {tuple(np.shape(out))}")
    start = 0
    for labels in _label_batches(label, src):
        stop = start + labels.shape[0]
        if stop > np.shape(out)[0]:
            raise ValueError(f"out has {np.shape(out)[0]} rows but the source has more")
        out[start:stop] = labels
        start = stop
    if start != np.shape(out)[0]:
        raise ValueError(f"out has {np.shape(out)[0]} rows but the source has {start}")
    return out
