"""A weighted reservoir sample of rows (A-Res, Efraimidis and Spirakis 2006): what streaming fits seed from."""

from __future__ import annotations

import numpy as np

from jaxmix.capabilities.sources import Batch


def _reservoir_zero(d: int, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    return (
        np.zeros((), np.int64),  # rows seen
        np.zeros((0,), np.float64),  # scores log(u) / w, the largest m are kept
        np.zeros((0,), np.int64),  # row index in the source
        np.zeros((0, d), dtype),  # the rows
        np.zeros((0,), dtype),  # their weights
    )


def _reservoir_add(res: tuple[np.ndarray, ...], batch: Batch, index: int, seed: list[int], m: int) -> tuple:
    """Add one batch; the uniforms come from (seed, batch index), so a resumed pass draws the same."""
    seen, scores, ids, rows, weights = res
    x = batch.x
    b = x.shape[0]
    w = np.ones((b,), x.dtype) if batch.weights is None else batch.weights
    u = np.random.default_rng([*seed, index]).random(b)
    with np.errstate(divide="ignore"):
        s = np.where(w > 0, np.log(u) / np.where(w > 0, w, 1.0), -np.inf)
    new_ids = int(seen) + np.arange(b, dtype=np.int64)
    take = np.arange(b) if scores.shape[0] < m else np.flatnonzero(s > scores.min())
    scores = np.concatenate([scores, s[take]])
    ids = np.concatenate([ids, new_ids[take]])
    rows = np.concatenate([rows, x[take]])
    weights = np.concatenate([weights, w[take]])
    if scores.shape[0] > m:
        keep = np.sort(np.argpartition(-scores, m - 1)[:m])
        scores, ids, rows, weights = scores[keep], ids[keep], rows[keep], weights[keep]
    return np.asarray(int(seen) + b, np.int64), scores, ids, rows, weights


def _reservoir_sample(res: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The sample in source order. All rows seen fit: their own weights (the in-memory seeding's input)."""
    seen, _, ids, rows, weights = res
    order = np.argsort(ids, kind="stable")
    rows, weights = rows[order], weights[order]
    if int(seen) > rows.shape[0]:  # a weighted sample: its rows count once each
        weights = (weights > 0).astype(rows.dtype)
    return rows, weights
