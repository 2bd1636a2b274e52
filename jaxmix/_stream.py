"""Exact k-means, soft k-means and GMM fits over a source read in batches.

One pass over the source is one E-step: a module-level jitted function
adds each batch's statistics (the core `e_step` of the model, on the batch)
to running sums kept on the device; after the pass the core `m_step` runs
once. The first pass gathers the weighted data mean (the global shift every
fit works about, as the in-memory fits do), the per-feature variance (which
scales k-means' `tol`) and, when seeding needs one, a weighted reservoir
sample of rows. Given the same start the iterates are those of the
in-memory fit, up to the order of floating-point sums.

Batches are padded with weight-0 rows to a few fixed sizes (the source's
`batch_rows`, or powers of two) so that a ragged last batch does not
compile a new program.

Checkpoints hold the fit's whole state (parameters, objective history,
iteration counters, the shift) and, when `checkpoint_every` is given, the
running sums of the pass in progress with the index of the next batch.
They are NumPy `.npz` files written atomically and read with
`allow_pickle=False`. Running the fit again with the same checkpoint
resumes it: the same batches are summed in the same order, so the result is
bit for bit the uninterrupted one. The checkpoint's fingerprint (model,
options, key, init, source shape and dtype, and the source's content:
its row and batch counts and digests of batches spread over it) must
match, or the fit refuses it with a ValueError naming the file; so does a
damaged checkpoint. A row-sliceable source is bound by reading up to
SAMPLED_BATCHES of its batches by index; a callable source, whose size is
only known after a pass, by a digest of every batch of its first pass,
checked by reading it again (on the host, without fitting) on resume.

What differs from the in-memory fits:
- `labels` in the results is a zero-size int32 array (the labels of data
  that need not fit in memory); `predict` gives them batch by batch.
- A k-means cluster that loses all its rows keeps its centre (the in-memory
  fit moves it to the farthest row, which would cost another pass).
- Seeding ("k-means++", "random", "random_from_data") runs on a weighted
  reservoir sample of `init_sample` rows; when the source has no more rows
  than that, the sample is the whole source and the seeds are those of the
  in-memory fit with the same key.
- One restart only (no `n_init`); no GMM prior, `reinit_collapsed` or
  `init="random"`; the objective at the returned parameters costs one
  last pass, as it does in memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from jaxmix import _validation as V
from jaxmix._bar import bar
from jaxmix._chunks import default_chunk_size, map_rows
from jaxmix._distances import log_probabilities, sq_norms
from jaxmix._gmm import KMEANS_INIT_MAX_ITER, GMMResult, GMMStats, _collapsed, _nearest_one_hot, gmm_chunk_size
from jaxmix._gmm import accumulate as _gmm_accumulate
from jaxmix._gmm import e_step as _gmm_e_step
from jaxmix._gmm import m_step as _gmm_m_step
from jaxmix._gmm import weighted_log_prob as _gmm_weighted_log_prob
from jaxmix._gmm_params import GMMParams
from jaxmix._io import atomic_write, open_regular
from jaxmix._jit import fit_jit
from jaxmix._kmeans import KMeansResult, KMeansStats
from jaxmix._kmeans import assign as _kmeans_assign
from jaxmix._kmeans import e_step as _kmeans_e_step
from jaxmix._kmeans import m_step as _kmeans_m_step
from jaxmix._mixture import _per_row as _gmm_per_row
from jaxmix._seeding import kmeans_plusplus, random_points
from jaxmix._soft_kmeans import SoftKMeansResult, SoftKMeansStats, _logits
from jaxmix._soft_kmeans import e_step as _soft_e_step
from jaxmix._soft_kmeans import m_step as _soft_m_step
from jaxmix._sources import Batch, Source, as_source
from jaxmix.families import check_covariance_type, covariance_model

CHECKPOINT_FORMAT = "jaxmix-stream-checkpoint"
CHECKPOINT_VERSION = 2  # 2: bound to the source by sampled batch digests, with a manifest of members
SAMPLED_BATCHES = 8  # batches of a sliceable source digested to bind a checkpoint to its data
MIN_PAD_ROWS = 8
INIT_SAMPLE_MIN = 10_000


# --- per-batch programs (one per model, compiled once per padded batch shape) -------------


class _Moments(NamedTuple):
    total: jax.Array  # () sum of weights
    sums: jax.Array  # (d,) sum_i w_i x_i
    n_pos: jax.Array  # () rows of positive weight
    mean: jax.Array  # (d,) running mean (Chan et al.'s merge), for the variance only
    m2: jax.Array  # () sum_i w_i ||x_i - mean||^2 about the running mean


def _zero_moments(d: int, dtype: Any) -> _Moments:
    z = jnp.zeros((), dtype)
    return _Moments(z, jnp.zeros((d,), dtype), z, jnp.zeros((d,), dtype), z)


@fit_jit()
def _moments_add(acc: _Moments, x: jax.Array, w: jax.Array) -> _Moments:
    """Merge one batch into the running moments; the variance is merged about batch means (no cancellation)."""
    wb = jnp.sum(w)
    sb = w @ x
    mb = sb / jnp.maximum(wb, jnp.finfo(x.dtype).tiny)
    m2b = w @ jnp.sum((x - mb) ** 2, axis=1)
    total = acc.total + wb
    frac = jnp.where(total > 0, wb / jnp.maximum(total, jnp.finfo(x.dtype).tiny), 0.0)
    delta = mb - acc.mean
    mean = acc.mean + delta * frac
    m2 = acc.m2 + m2b + jnp.sum(delta**2) * acc.total * frac
    return _Moments(total, acc.sums + sb, acc.n_pos + jnp.sum(w > 0).astype(x.dtype), mean, m2)


def _add(a: Any, b: Any) -> Any:
    return jax.tree_util.tree_map(jnp.add, a, b)


@fit_jit(static_argnames=("chunk_size",))
def _kmeans_add(acc, x, w, shift, centers, *, chunk_size):
    return _add(acc, _kmeans_e_step(x, w, shift, centers, chunk_size))


@fit_jit()
def _kmeans_update(stats, centers, prev_counts, prev_sums, tol_abs):
    # The in-memory rule (_kmeans._lloyd): the centres moved by at most
    # tol_abs, or the statistics equal the previous pass's.
    new = _kmeans_m_step(stats, centers)
    same = jnp.all(stats.counts == prev_counts) & jnp.all(stats.sums == prev_sums)
    return new, (jnp.sum((new - centers) ** 2) <= tol_abs) | same


@fit_jit(static_argnames=("chunk_size",))
def _kmeans_final_add(acc, x, w, shift, centers, *, chunk_size):
    labels, _ = _kmeans_assign(x, shift, centers, chunk_size, exact=False)
    return acc + jnp.sum(w * sq_norms(x - shift - centers[labels]))


@fit_jit(static_argnames=("chunk_size",))
def _soft_add(acc, x, w, shift, centers, pi, beta, *, chunk_size):
    return _add(acc, _soft_e_step(x, w, shift, centers, pi, beta, chunk_size))


@fit_jit()
def _soft_update(stats, centers, tol_abs):
    new, pi = _soft_m_step(stats, centers)
    return new, pi, jnp.sum((new - centers) ** 2) <= tol_abs


@fit_jit(static_argnames=("chunk_size",))
def _gmm_add(acc, x, w, shift, params, *, chunk_size):
    return _add(acc, _gmm_e_step(x, w, shift, params, chunk_size))


@fit_jit(static_argnames=("ctype", "chunk_size"))
def _gmm_onehot_add(acc, x, w, shift, centers, *, ctype, chunk_size):
    k = centers.shape[0]
    return _add(acc, _gmm_accumulate(x, w, shift, _nearest_one_hot(centers), ctype, k, chunk_size))


@fit_jit(static_argnames=("ctype",))
def _gmm_m(stats, reg_covar, *, ctype):
    return _gmm_m_step(stats, ctype, reg_covar, None)


@fit_jit(static_argnames=("ctype",))
def _gmm_update(stats, reg_covar, total, prev, tol, *, ctype):
    new = _gmm_m_step(stats, ctype, reg_covar, None)
    objective = stats.loglik / total
    return new, objective, jnp.abs(objective - prev) < tol


@fit_jit(static_argnames=("chunk_size",))
def _gmm_final_add(acc, x, w, shift, params, *, chunk_size):
    lse = map_rows(lambda xc: logsumexp(_gmm_weighted_log_prob(xc - shift, params), axis=1), x, chunk_size)
    return acc + jnp.sum(jnp.where(w > 0, w * lse, 0.0))


@fit_jit(static_argnames=("n_clusters", "chunk_size", "method"))
def _seed(key, x, shift, w, *, n_clusters, chunk_size, method):
    if method == "k-means++":
        return kmeans_plusplus(key, x, shift, w, n_clusters, chunk_size)
    return random_points(key, x, shift, w, n_clusters)


@fit_jit(static_argnames=("ctype",))
def _params_from_init(weights, means, covariances, shift, *, ctype):
    # As the in-memory gmm with weights_init, means_init and precisions_init all given.
    return GMMParams.from_covariances(weights, means - shift, covariances, ctype)


# --- batches on the device --------------------------------------------------------------


def _bucket(b: int, cap: int | None) -> int:
    """Rows a batch of `b` rows is padded to: `cap` (the source's batch_rows) or a power of two."""
    if cap is not None and b >= cap:
        return b
    p = max(MIN_PAD_ROWS, 1 << max(0, b - 1).bit_length())
    return p if cap is None else min(p, cap)


def _to_device(batch: Batch, cap: int | None, dtype: np.dtype) -> tuple[jax.Array, jax.Array]:
    """The batch and its weights on the device, padded with weight-0 rows (never written into `batch`)."""
    x = batch.x
    b = x.shape[0]
    w = np.ones((b,), dtype) if batch.weights is None else batch.weights
    rows = _bucket(b, cap)
    if rows > b:
        x = np.concatenate([x, np.zeros((rows - b, x.shape[1]), dtype)])
        w = np.concatenate([w, np.zeros((rows - b,), dtype)])
    return jnp.asarray(x), jnp.asarray(w)


# --- weighted reservoir sample (A-Res, Efraimidis and Spirakis 2006) --------------------


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


# --- the driver: passes, state, checkpoints ---------------------------------------------


def _key_data(key: Any) -> list[int]:
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return [int(v) for v in np.asarray(data).ravel()]


def _digest(a: Any) -> str:
    a = np.ascontiguousarray(np.asarray(a))
    h = hashlib.sha256(str((a.dtype.str, a.shape)).encode())
    h.update(a.reshape(-1).view(np.uint8))  # the buffer itself: no copy of a batch
    return h.hexdigest()[:16]


def _batch_at(source: Source, i: int) -> Batch:
    it = source.batches(i)
    try:
        return next(it)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def _batch_digest(batch: Batch) -> str:
    return _digest(batch.x) + ("" if batch.weights is None else _digest(batch.weights))


def _source_digest(source: Source) -> dict[str, Any] | None:
    """What binds a checkpoint to a source of known size, beyond its first batch (None for a callable).

    Rows and batches counted, and digests of SAMPLED_BATCHES batches spread
    evenly from the first to the last, read by index: another data set of
    the same shape and the same first batch differs here (unless it differs
    only between the sampled batches). A callable source's size is only
    known after a pass: the first pass records a digest of all its batches
    instead (`_Run.chain`).
    """
    n = source.n_batches
    if n is None:
        return None
    picks = sorted({round(j * (n - 1) / (SAMPLED_BATCHES - 1)) for j in range(SAMPLED_BATCHES)})
    batches = {str(i): _batch_digest(_batch_at(source, i)) for i in picks}
    return {"n_rows": source.n_rows, "n_batches": n, "batches": batches}


def _chain(previous: str, batch: Batch) -> str:
    """A running digest of a callable source's batches, kept in the checkpoint as a string."""
    return hashlib.sha256((previous + _batch_digest(batch)).encode()).hexdigest()[:16]


def _data_difference(saved: Any, now: dict[str, Any]) -> str:
    """Which part of the source differs from the checkpoint's, in words."""
    if not isinstance(saved, dict) or not isinstance(now, dict):
        return "another source"
    for key in ("n_rows", "n_batches"):
        if saved.get(key) != now[key]:
            return f"{key} {saved.get(key)!r} in the checkpoint, {now[key]!r} now"
    if isinstance(now["batches"], dict) and isinstance(saved.get("batches"), dict):
        diff = [i for i in now["batches"] if saved["batches"].get(i) != now["batches"][i]]
        return f"the content of batch{'es' if len(diff) > 1 else ''} {', '.join(diff)} differs"
    return "the content of the batches differs"


# What damage to a checkpoint (truncation, flipped bits) raises while it is read.
_DAMAGED = (
    ValueError,
    OSError,
    KeyError,
    EOFError,
    IndexError,
    TypeError,
    AttributeError,
    RuntimeError,
    NotImplementedError,
    MemoryError,
    OverflowError,
    RecursionError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
)


def _unreadable(path: str, why: str) -> ValueError:
    return ValueError(
        f"{path}: not a readable jaxmix stream checkpoint (damaged or truncated: {why}); remove it to start afresh"
    )


class _Run:
    """Runs passes over a source and keeps the fit's state (`st`) in a checkpoint file."""

    def __init__(
        self,
        source: Source,
        options: dict[str, Any],
        checkpoint: Any,
        checkpoint_every: Any,
        keep_checkpoint: bool,
        progress: bool | None,
    ):
        self.source = source
        self.model = options["model"]
        self.progress = progress
        self.every = None if checkpoint_every is None else V.check_positive_int(checkpoint_every, "checkpoint_every")
        if self.every is not None and checkpoint is None:
            raise ValueError("checkpoint_every needs a checkpoint path")
        self.path = None if checkpoint is None else os.fspath(checkpoint)
        self.keep = bool(keep_checkpoint)
        fingerprint = {
            **options,
            "first_batch": None if self.path is None else _batch_digest(_batch_at(source, 0)),
            "source": None if self.path is None else _source_digest(source),
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "n_features": source.n_features,
            "dtype": source.dtype.str,
            "batch_rows": source.batch_rows,
            "n_rows": source.n_rows,
        }
        self.fingerprint = json.dumps(fingerprint, sort_keys=True)
        self.st: dict[str, np.ndarray] = {"passes": np.zeros((), np.int64)}
        # A callable source's size is unknown before a pass: its first pass records a running
        # digest of every batch (st["chain"]), checked when a checkpoint is resumed.
        self.chained = self.path is not None and source.n_batches is None
        self.partial: tuple[str, int, list[np.ndarray]] | None = None
        if self.path is not None and os.path.exists(self.path):
            self._load(fingerprint)
            if "chain" in self.st:
                self._check_chain()

    def _check_chain(self) -> None:
        """Read a callable source again (on the host, no fit) as far as the checkpoint's digest of it reaches."""
        st, path = self.st, self.path
        assert path is not None
        try:
            batches, complete = int(st["chain_batches"]), int(st["passes"]) > 0
            rows = int(st["chain_rows"]) if complete else None
        except (KeyError, TypeError, ValueError) as e:
            raise _unreadable(path, f"{type(e).__name__}: {e}") from None
        count, chain = 0, ""
        it = self.source.batches(0)
        try:
            while complete or count < batches:  # after a complete first pass: read to the end, counting rows
                batch = next(it, None)
                if batch is None:
                    break
                count += 1
                if count <= batches:
                    chain = _chain(chain, batch)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
        if count != batches or chain != str(st["chain"]) or (complete and self.source.n_rows != rows):
            raise ValueError(
                f"{path} is the checkpoint of a different fit on other data (the source's batches "
                f"differ from the checkpoint's digest of them); pass the same data and options to resume it, "
                "or remove the file to start afresh"
            )

    def _load(self, fingerprint: dict[str, Any]) -> None:
        path = self.path
        assert path is not None
        try:
            with open_regular(path, "checkpoint") as f, np.load(f, allow_pickle=False) as z:
                saved = json.loads(z["fingerprint"].tobytes().decode("utf-8"))
                if not isinstance(saved, dict) or saved.get("format") != CHECKPOINT_FORMAT:
                    raise ValueError(f"{path}: not a jaxmix stream checkpoint")
                if saved.get("format_version") != CHECKPOINT_VERSION:
                    raise ValueError(
                        f"{path}: a stream checkpoint of format version {saved.get('format_version')!r}; this "
                        f"jaxmix resumes version {CHECKPOINT_VERSION} only: remove the file to start afresh"
                    )
                # Every member is listed in a manifest: a damaged name in the zip directory
                # would otherwise drop a piece of the state without an error.
                manifest = json.loads(z["manifest"].tobytes().decode("utf-8"))
                if sorted(z.files) != sorted([*manifest, "manifest"]):
                    raise _unreadable(path, "its members differ from its manifest")
                arrays = {f: z[f] for f in z.files}
                if not all(
                    isinstance(a, np.ndarray) for a in arrays.values()
                ):  # numpy gives a non-.npy member as bytes
                    raise _unreadable(path, "a member is not an .npy array")
        except _DAMAGED as e:
            if str(e).startswith(path):  # ours, above, or open_regular's: names the file already
                raise ValueError(str(e)) from None
            raise _unreadable(path, f"{type(e).__name__}: {e}") from None
        if saved != json.loads(self.fingerprint):
            diff = sorted(k for k in set(saved) | set(fingerprint) if saved.get(k) != fingerprint.get(k))
            shown = ", ".join(
                f"{k}: {_data_difference(saved.get(k), fingerprint[k])}"
                if k == "source"
                else f"{k}: checkpoint {saved.get(k)!r}, now {fingerprint.get(k)!r}"
                for k in diff
            )
            # Other batch sizes change the batches' digests too: only the same batching says "other data".
            on_other = {"source", "first_batch", "n_rows"} & set(diff) and "batch_rows" not in diff
            other_data = " on other data" if on_other else ""
            raise ValueError(
                f"{path} is the checkpoint of a different fit{other_data} ({shown}); "
                "pass the same data and options to resume it, or remove the file to start afresh"
            )
        try:
            self.st = {k[3:]: v for k, v in arrays.items() if k.startswith("st.")}
            if "partial.id" in arrays:
                leaves = [arrays[f"partial.leaf.{i}"] for i in range(int(arrays["partial.n_leaves"]))]
                pid = arrays["partial.id"].tobytes().decode("utf-8")
                self.partial = (pid, int(arrays["partial.batch"]), leaves)
        except _DAMAGED as e:
            raise _unreadable(path, f"{type(e).__name__}: {e}") from None

    def save(self, partial: tuple[str, int, Any] | None = None) -> None:
        if self.path is None:
            return
        arrays: dict[str, np.ndarray] = {"fingerprint": np.frombuffer(self.fingerprint.encode("utf-8"), np.uint8)}
        arrays.update({f"st.{k}": np.asarray(v) for k, v in self.st.items()})
        if partial is not None:
            pid, batch, acc = partial
            leaves = jax.tree_util.tree_leaves(acc)
            arrays["partial.id"] = np.frombuffer(pid.encode("utf-8"), np.uint8)
            arrays["partial.batch"] = np.asarray(batch, np.int64)
            arrays["partial.n_leaves"] = np.asarray(len(leaves), np.int64)
            arrays.update({f"partial.leaf.{i}": np.asarray(a) for i, a in enumerate(leaves)})
        arrays["manifest"] = np.frombuffer(json.dumps(sorted(arrays)).encode("utf-8"), np.uint8)
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, **arrays)
        with atomic_write(self.path) as f:
            f.write(buf.getvalue())

    def finish(self) -> None:
        """The fit is complete: record it (kept checkpoint) or remove the file."""
        if self.path is None:
            return
        if self.keep:
            self.save()
        elif os.path.exists(self.path):
            os.remove(self.path)

    def run_pass(self, pass_id: str, acc: Any, fold: Callable[[Any, int, Batch], Any], objective: Any = None) -> Any:
        """Fold every batch into `acc`; resumes a pass interrupted after a mid-pass checkpoint."""
        start = 0
        if self.partial is not None:
            pid, start, leaves = self.partial
            if pid != pass_id:
                raise ValueError(f"{self.path}: corrupt checkpoint (pass {pid!r} in progress, expected {pass_id!r})")
            treedef = jax.tree_util.tree_structure(acc)
            like = jax.tree_util.tree_leaves(acc)
            acc = jax.tree_util.tree_unflatten(
                treedef,
                [
                    np.asarray(v) if isinstance(a, np.ndarray) else jnp.asarray(v)
                    for a, v in zip(like, leaves, strict=True)
                ],
            )
            self.partial = None
        n_pass = int(self.st["passes"]) + 1
        total = self.source.n_batches
        pbar = bar(total, f"jaxmix stream {self.model} pass {n_pass}", self.progress)
        try:
            postfix = {"step": pass_id}
            if objective is not None:
                postfix["objective"] = f"{float(objective):.6g}"
            pbar.set_postfix(postfix)
            if start:
                pbar.update(start)
            i = start
            recording = self.chained and n_pass == 1
            for i, batch in enumerate(self.source.batches(start), start):
                if recording:
                    self.st["chain"] = np.asarray(_chain(str(self.st.get("chain", "")), batch))
                    self.st["chain_batches"] = np.asarray(i + 1, np.int64)
                acc = fold(acc, i, batch)
                pbar.update(1)
                if self.every is not None and (i + 1) % self.every == 0 and i + 1 != total:
                    self.save((pass_id, i + 1, acc))
        finally:
            pbar.close()
        if self.chained and n_pass == 1:
            self.st["chain_rows"] = np.asarray(self.source.n_rows, np.int64)
        self.st["passes"] = np.asarray(n_pass, np.int64)
        return acc


def _moments_stage(run: _Run, key: Any, k: int, method: str | None, m: int) -> np.ndarray | None:
    """The first pass: shift, variance, total weight and (for seeding by `method`) the initial centres.

    Returns the initial centres in shifted coordinates, or None when `method` is None.
    """
    st = run.st
    if "shift" in st:
        return st.get("c0")
    src = run.source
    d, dt, cap = src.n_features, src.dtype, src.batch_rows
    seed = _key_data(key)

    def fold(acc, i, batch):
        mom, res, lo, hi = acc
        x, w = _to_device(batch, cap, dt)
        mom = _moments_add(mom, x, w)
        if res is not None:
            res = _reservoir_add(res, batch, i, seed, m)
        if batch.x.shape[0]:  # the range of every feature over the source, on the host
            lo, hi = np.minimum(lo, batch.x.min(axis=0)), np.maximum(hi, batch.x.max(axis=0))
        return mom, res, lo, hi

    acc0 = (
        _zero_moments(d, dt),
        None if method is None else _reservoir_zero(d, dt),
        np.full((d,), np.inf, dt),
        np.full((d,), -np.inf, dt),
    )
    mom, res, lo, hi = run.run_pass("moments", acc0, fold)
    total = np.asarray(mom.total)
    if not np.isfinite(total):
        raise ValueError(
            f"{src.name}: the weights sum to more than {dt} holds; divide them by a common factor "
            "(the clusters do not change)"
        )
    if not total > 0:
        raise ValueError(f"{src.name}: the weights are all zero: at least one row needs a positive weight")
    # Each batch was checked alone; rows far apart in different batches are checked here, as the
    # in-memory fit checks the whole array.
    V.check_magnitude(np.stack([lo, hi]), src.name, rows=max(int(np.asarray(mom.n_pos)), 1))
    st["span"] = np.asarray(np.max(hi - lo), np.float64)
    shift = np.asarray(mom.sums / jnp.maximum(mom.total, jnp.finfo(dt).tiny))
    st["shift"] = shift
    st["mean_var"] = np.asarray(mom.m2 / (mom.total * d))
    st["total"] = total
    st["n_pos"] = np.asarray(mom.n_pos)
    if method is not None:
        sx, sw = _reservoir_sample(res)
        n_pos = int(np.sum(sw > 0))
        if k > n_pos:
            raise ValueError(f"n_clusters={k} must be <= the number of rows with positive weight ({n_pos})")
        ms = sx.shape[0]
        chunk = min(default_chunk_size(ms, k, dt.itemsize), ms)
        st["c0"] = np.asarray(_seed(key, sx, shift, sw, n_clusters=k, chunk_size=chunk, method=method))
    run.save()
    return st.get("c0")


def _loop_state(run: _Run, p: str, params: dict[str, np.ndarray], max_iter: int, dtype: np.dtype) -> None:
    if p + "n_iter" not in run.st:
        run.st.update({p + name: np.asarray(v) for name, v in params.items()})
        run.st[p + "n_iter"] = np.zeros((), np.int64)
        run.st[p + "converged"] = np.zeros((), bool)
        run.st[p + "history"] = np.zeros((max_iter,), dtype)
        run.st[p + "objective"] = np.full((), np.nan, dtype)


def _running(run: _Run, p: str, max_iter: int) -> bool:
    return int(run.st[p + "n_iter"]) < max_iter and not bool(run.st[p + "converged"])


def _record(run: _Run, p: str, objective: Any, done: Any, **params: Any) -> None:
    st = run.st
    i = int(st[p + "n_iter"])
    st[p + "history"] = st[p + "history"].copy()
    st[p + "history"][i] = np.asarray(objective)
    st[p + "objective"] = np.asarray(objective, st[p + "history"].dtype)
    st[p + "n_iter"] = np.asarray(i + 1, np.int64)
    st[p + "converged"] = np.asarray(bool(done))
    st.update({p + name: np.asarray(v) for name, v in params.items()})
    run.save()


def _history(run: _Run, p: str) -> np.ndarray:
    """The objective per iteration, entries past n_iter repeating the last (as the in-memory fits)."""
    h, n = run.st[p + "history"], int(run.st[p + "n_iter"])
    return np.where(np.arange(h.shape[0]) < n, h, h[max(n - 1, 0)])


def _kmeans_chunk(rows: int, k: int, dtype: np.dtype) -> int:
    return min(default_chunk_size(rows, k, dtype.itemsize), rows)


def _lloyd_stage(run: _Run, p: str, c0: np.ndarray, tol_abs: np.ndarray, max_iter: int, k: int) -> np.ndarray:
    """Lloyd passes until converged; the centres (shifted coordinates)."""
    src = run.source
    d, dt, cap = src.n_features, src.dtype, src.batch_rows
    nan_prev = {"prev_counts": np.full((k,), np.nan, dt), "prev_sums": np.full((k, d), np.nan, dt)}
    _loop_state(run, p, {"centers": c0, **nan_prev}, max_iter, dt)
    st = run.st
    shift = jnp.asarray(st["shift"])
    while _running(run, p, max_iter):
        centers = jnp.asarray(st[p + "centers"])

        def fold(acc, i, batch, centers=centers):
            del i
            x, w = _to_device(batch, cap, dt)
            return _kmeans_add(acc, x, w, shift, centers, chunk_size=_kmeans_chunk(x.shape[0], k, dt))

        zero = KMeansStats(jnp.zeros((k,), dt), jnp.zeros((k, d), dt), jnp.zeros((), dt))
        stats = run.run_pass(f"{p}lloyd{int(st[p + 'n_iter'])}", zero, fold, st[p + "objective"])
        new, done = _kmeans_update(stats, centers, st[p + "prev_counts"], st[p + "prev_sums"], tol_abs)
        _record(run, p, stats.inertia, done, centers=new, prev_counts=stats.counts, prev_sums=stats.sums)
    return st[p + "centers"]


def _fit_options(model: str, key: Any, k: int, init: Any, **options: Any) -> dict[str, Any]:
    init_id = init if isinstance(init, str) else _digest(init)
    return {"model": model, "key": _key_data(key), "n_clusters": k, "init": init_id, **options}


def _check_common(key: Any, source: Any, n_clusters: Any, max_iter: Any, tol: Any, batch_rows: Any, weights: Any):
    V.check_key(key)
    src = as_source(source, batch_rows=batch_rows, weights=weights)
    if weights is not None and not isinstance(source, Source):
        w = np.asarray(weights)  # (n,): small beside the rows; checked batch by batch as it is read
        if w.size and np.issubdtype(w.dtype, np.number) and np.all(np.isfinite(w)) and np.all(w >= 0) and w.max() > 0:
            with np.errstate(over="ignore"):
                scale = V.weight_scale(float(w.max()), float(w.sum()), src.dtype)
            if scale != 1.0:  # a power of two: exact, the fit is the unscaled one
                src = as_source(source, batch_rows=batch_rows, weights=w.astype(np.float64) * scale)
    k = V.check_positive_int(n_clusters, "n_clusters")
    if src.n_rows is not None and k > src.n_rows:
        raise ValueError(f"n_clusters={k} must be <= n_samples={src.n_rows}")
    V.check_scalar(tol, "tol", nonnegative=True)
    return src, k, V.check_positive_int(max_iter, "max_iter")


def _check_init_sample(init_sample: Any, k: int) -> int:
    if init_sample is None:
        return max(INIT_SAMPLE_MIN, 20 * k)
    m = V.check_positive_int(init_sample, "init_sample")
    if m < k:
        raise ValueError(f"init_sample={m} must be >= n_clusters={k}")
    return m


def _centers_init(init: Any, methods: tuple[str, ...], k: int, d: int, dtype: np.dtype) -> tuple[Any, str | None]:
    """(explicit centres as NumPy or None, seeding method or None)."""
    if isinstance(init, str):
        if init not in methods:
            raise ValueError(f"init must be one of {methods} or a ({k}, {d}) array, got {init!r}")
        return None, init
    return np.asarray(V.check_centers(init, k, d, dtype)), None


def kmeans(
    key: jax.Array,
    source: Any,
    n_clusters: int,
    *,
    init: str | Any = "k-means++",
    max_iter: int = 300,
    tol: float = 1e-4,
    weights: Any = None,
    batch_rows: int | None = None,
    init_sample: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoint: bool = False,
    progress: bool | None = None,
) -> KMeansResult:
    """Exact k-means (Lloyd) over a source read in batches: one pass per iteration.

    The first pass computes the weighted data mean (the shift all
    computations work about), the variance that scales `tol`, and a weighted
    reservoir sample of `init_sample` rows on which k-means++ (or "random")
    seeds the centres. Then each pass sums the core E-step's statistics over
    the batches and one M-step moves the centres; the stopping rule is the
    in-memory `jaxmix.kmeans` one. A last pass computes the inertia at the
    returned centres. From the same initial centres the fit follows the
    in-memory one (same n_iter and history, centres equal up to the order of
    floating-point sums), except for empty clusters: a cluster that loses
    all its rows keeps its centre here, where the in-memory fit moves it to
    the farthest row.

    When the source has at most `init_sample` rows the sample is the whole
    source with its weights, and the seeding is the in-memory one for the
    same key (up to rounding).

    Args:
      key: a JAX PRNG key (seeding and the reservoir sample).
      source: anything `jaxmix.stream.as_source` accepts (array, memmap,
        directory or list of `.npy` files, h5py/zarr array, callable).
      n_clusters: k.
      init: "k-means++", "random" or a (k, n_features) array of centres.
      max_iter: most Lloyd passes.
      tol: as in `jaxmix.kmeans` (relative to the mean per-feature variance).
      weights: (n,) sample weights for an array-like source.
      batch_rows: rows per batch (default about 64 MiB).
      init_sample: rows in the seeding sample (default max(10000, 20 k)).
      checkpoint: a file path: the fit's state is written there atomically
        after every pass, and a fit started with an existing checkpoint of
        the same data and options resumes from it, ending with the same
        result bit for bit. A checkpoint of another fit raises ValueError.
      checkpoint_every: also write the checkpoint every this many batches
        within a pass (the partial sums and the batch index).
      keep_checkpoint: keep the file after the fit completes (calling again
        then returns the result at once); by default it is removed.
      progress: a tqdm bar per pass (None: only when stderr is a terminal).

    Returns:
      A `KMeansResult`; its `labels` field is a zero-size int32 array (the
      labels of data that need not fit in memory; use
      `jaxmix.stream.predict` for them batch by batch).

    Example:
      >>> import jax, numpy as np, jaxmix.stream as js
      >>> x = np.concatenate([np.zeros((50, 2)), np.ones((50, 2))]).astype(np.float32)
      >>> r = js.kmeans(jax.random.key(0), x, 2, batch_rows=32)
      >>> np.sort(np.asarray(r.centers)[:, 0]).tolist(), r.labels.shape
      ([0.0, 1.0], (0,))
    """
    src, k, max_iter = _check_common(key, source, n_clusters, max_iter, tol, batch_rows, weights)
    d, dt = src.n_features, src.dtype
    init_arr, method = _centers_init(init, ("k-means++", "random"), k, d, dt)
    m = _check_init_sample(init_sample, k)
    options = _fit_options(
        "kmeans", key, k, init if init_arr is None else init_arr, max_iter=max_iter, tol=float(tol), init_sample=m
    )
    run = _Run(src, options, checkpoint, checkpoint_every, keep_checkpoint, progress)
    c0 = _moments_stage(run, key, k, method, m)
    st = run.st
    if c0 is None:
        c0 = np.asarray(jnp.asarray(init_arr) - jnp.asarray(st["shift"]))
    tol_abs = np.asarray(tol, dt) * st["mean_var"]
    centers = _lloyd_stage(run, "km.", c0, tol_abs, max_iter, k)
    if "inertia" not in st:
        shift, c = jnp.asarray(st["shift"]), jnp.asarray(centers)

        def fold(acc, i, batch):
            del i
            x, w = _to_device(batch, src.batch_rows, dt)
            return _kmeans_final_add(acc, x, w, shift, c, chunk_size=_kmeans_chunk(x.shape[0], k, dt))

        st["inertia"] = np.asarray(run.run_pass("final", jnp.zeros((), dt), fold, st["km.objective"]))
        run.save()
    run.finish()
    inertia = st["inertia"]
    out = centers + st["shift"]
    return KMeansResult(
        jnp.asarray(out),
        jnp.zeros((0,), jnp.int32),
        jnp.asarray(inertia),
        jnp.asarray(st["km.n_iter"], jnp.int32),
        jnp.asarray(st["km.converged"]),
        jnp.asarray(_history(run, "km.")),
        jnp.asarray(not (np.all(np.isfinite(out)) and np.isfinite(inertia))),
    )


GMM_INITS = ("kmeans", "k-means++", "random_from_data")
_PARAM_FIELDS = ("weights", "means", "covariances", "precisions_cholesky")


def _params_state(params: GMMParams) -> dict[str, np.ndarray]:
    return {f: np.asarray(getattr(params, f)) for f in _PARAM_FIELDS}


def _params_from_state(st: dict[str, np.ndarray], p: str, ctype: str) -> GMMParams:
    w, m, c, u = (jnp.asarray(st[p + f]) for f in _PARAM_FIELDS)
    return GMMParams(w, m, c, u, covariance_type=ctype)


def gmm(
    key: jax.Array,
    source: Any,
    n_components: int,
    *,
    covariance_type: str = "full",
    init: str | GMMParams | Any = "kmeans",
    max_iter: int = 100,
    tol: float = 1e-3,
    reg_covar: float = 1e-6,
    weights: Any = None,
    batch_rows: int | None = None,
    init_sample: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoint: bool = False,
    progress: bool | None = None,
) -> GMMResult:
    """Exact EM for a Gaussian mixture over a source read in batches: one pass per iteration.

    The first pass computes the weighted data mean (the shift) and, for
    seeding, a weighted reservoir sample of `init_sample` rows. Then each
    pass sums the core E-step's statistics over the batches and one M-step
    updates the parameters; the fit stops when the mean log-likelihood
    changes by less than `tol`, as `jaxmix.gmm` does. A last pass computes
    the mean log-likelihood at the returned parameters. From the same
    initial parameters the iterates are those of the in-memory fit, up to
    the order of floating-point sums.

    Initialisation (`init`):
      - "kmeans" (default): streamed k-means (k-means++ on the sample, tol 0,
        at most 100 passes, as the in-memory "kmeans" init), then one pass
        assigning each row to its nearest centre and one M-step from those
        hard responsibilities. Empty k-means clusters keep their centres.
      - "k-means++", "random_from_data": seeds drawn from the sample, then the
        hard-assignment pass and M-step.
      - a (k, n_features) array of means: the hard-assignment pass and M-step
        from those means.
      - a `GMMParams` (e.g. `jaxmix.gmm(...).params`): used as they are (the
        in-memory `gmm` with `weights_init`, `means_init` and
        `precisions_init` all given); its covariance type must be
        `covariance_type`.

    Args:
      key: a JAX PRNG key (seeding and the reservoir sample).
      source: anything `jaxmix.stream.as_source` accepts.
      n_components: k.
      covariance_type: "full", "tied", "diag" or "spherical".
      init: see above.
      max_iter: most EM passes.
      tol: stop when the mean log-likelihood changes by less than this.
      reg_covar: added to the diagonal of every covariance, >= 0.
      weights: (n,) sample weights for an array-like source.
      batch_rows: rows per batch (default about 64 MiB).
      init_sample: rows in the seeding sample (default max(10000, 20 k)).
      checkpoint, checkpoint_every, keep_checkpoint, progress: as in
        `jaxmix.stream.kmeans`.

    Returns:
      A `GMMResult`; `labels` is a zero-size int32 array (use
      `jaxmix.stream.predict`).

    Example:
      >>> import jax, numpy as np, jaxmix.stream as js
      >>> x = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
      >>> g = js.gmm(jax.random.key(0), x, 1, batch_rows=64)
      >>> np.allclose(g.params.means, x.mean(0), atol=1e-5), g.params.covariances.shape
      (True, (1, 2, 2))
    """
    src, k, max_iter = _check_common(key, source, n_components, max_iter, tol, batch_rows, weights)
    d, dt, cap = src.n_features, src.dtype, src.batch_rows
    check_covariance_type(covariance_type, d)
    V.check_scalar(reg_covar, "reg_covar", nonnegative=True)
    ctype = covariance_type
    given: GMMParams | None = None
    means0: np.ndarray | None = None
    method: str | None = None
    if isinstance(init, GMMParams):
        given = V.check_gmm_params(init, d, dt, name="init")
        if given.covariance_type != ctype or given.means.shape[0] != k:
            raise ValueError(
                f"init holds {given.means.shape[0]} {given.covariance_type!r} components; "
                f"the fit asks for n_components={k}, covariance_type={ctype!r}"
            )
        init_id: Any = np.concatenate([np.asarray(getattr(given, f), np.float64).ravel() for f in _PARAM_FIELDS])
    elif isinstance(init, str):
        if init not in GMM_INITS:
            raise ValueError(
                f"init must be one of {GMM_INITS}, a ({k}, {d}) array of means or a GMMParams, got {init!r}"
            )
        method, init_id = init, init
    else:
        means0 = np.asarray(V.check_centers(init, k, d, dt, name="init"))
        init_id = means0
    m = _check_init_sample(init_sample, k)
    options = _fit_options(
        "gmm", key, k, init_id, covariance_type=ctype, max_iter=max_iter, tol=float(tol), reg_covar=float(reg_covar)
    )
    options["init_sample"] = m
    run = _Run(src, options, checkpoint, checkpoint_every, keep_checkpoint, progress)
    seeds = _moments_stage(run, key, k, "k-means++" if method == "kmeans" else method, m)
    st = run.st
    shift = jnp.asarray(st["shift"])
    reg = jnp.asarray(reg_covar, dt)
    chunk = _gmm_chunker(k, d, ctype, dt)
    if "em.n_iter" not in st:
        if given is not None:
            params = _params_from_init(given.weights, given.means, given.covariances, shift, ctype=ctype)
        else:
            if method == "kmeans":
                assert seeds is not None
                centers = _lloyd_stage(run, "init.", seeds, np.zeros((), dt), KMEANS_INIT_MAX_ITER, k)
            elif seeds is not None:
                centers = seeds
            else:
                assert means0 is not None
                centers = np.asarray(jnp.asarray(means0) - shift)
            c = jnp.asarray(centers)

            def hard(acc, i, batch):
                del i
                x, w = _to_device(batch, cap, dt)
                return _gmm_onehot_add(acc, x, w, shift, c, ctype=ctype, chunk_size=chunk(x.shape[0]))

            stats0 = run.run_pass("hard", _zero_gmm_stats(ctype, k, d, dt), hard)
            params = _gmm_m(stats0, reg, ctype=ctype)
        _loop_state(run, "em.", _params_state(params), max_iter, dt)
        run.save()
    total = jnp.asarray(st["total"])
    tol_t = jnp.asarray(tol, dt)
    while _running(run, "em.", max_iter):
        params = _params_from_state(st, "em.", ctype)

        def fold(acc, i, batch, params=params):
            del i
            x, w = _to_device(batch, cap, dt)
            return _gmm_add(acc, x, w, shift, params, chunk_size=chunk(x.shape[0]))

        stats = run.run_pass(f"em{int(st['em.n_iter'])}", _zero_gmm_stats(ctype, k, d, dt), fold, st["em.objective"])
        new, objective, done = _gmm_update(stats, reg, total, st["em.objective"], tol_t, ctype=ctype)
        _record(run, "em.", objective, done, **_params_state(new))
    params = _params_from_state(st, "em.", ctype)
    if "loglik" not in st:

        def final(acc, i, batch):
            del i
            x, w = _to_device(batch, cap, dt)
            return _gmm_final_add(acc, x, w, shift, params, chunk_size=chunk(x.shape[0]))

        st["loglik"] = np.asarray(run.run_pass("final", jnp.zeros((), dt), final, st["em.objective"]) / total)
        run.save()
    run.finish()
    ll = st["loglik"]
    out = dataclasses.replace(params, means=params.means + shift)
    finite = all(bool(jnp.all(jnp.isfinite(getattr(out, f)))) for f in _PARAM_FIELDS) and bool(np.isfinite(ll))
    return GMMResult(
        out,
        jnp.zeros((0,), jnp.int32),
        jnp.asarray(ll),
        jnp.asarray(st["em.n_iter"], jnp.int32),
        jnp.asarray(st["em.converged"]),
        jnp.asarray(_history(run, "em.")),
        jnp.asarray(not finite),
        _collapsed(out.weights * total, jnp.asarray(st["n_pos"]), total),
    )


def _zero_gmm_stats(ctype: str, k: int, d: int, dtype: Any) -> GMMStats:
    z = jnp.zeros((), dtype)
    return GMMStats(
        jnp.zeros((k,), dtype), jnp.zeros((k, d), dtype), covariance_model(ctype).zero_second_moments(k, d, dtype), z
    )


def _gmm_chunker(k: int, d: int, ctype: str, dtype: np.dtype) -> Callable[[int], int]:
    """Rows per E-step chunk for a padded batch of `rows` rows (the in-memory gmm's rule)."""
    return lambda rows: min(gmm_chunk_size(rows, k, d, ctype, dtype.itemsize), rows)


def soft_kmeans(
    key: jax.Array,
    source: Any,
    n_clusters: int,
    *,
    beta: float,
    init: str | Any = "k-means++",
    max_iter: int = 300,
    tol: float = 1e-4,
    weights: Any = None,
    batch_rows: int | None = None,
    init_sample: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoint: bool = False,
    progress: bool | None = None,
) -> SoftKMeansResult:
    """Exact soft k-means over a source read in batches: one pass per iteration.

    As `jaxmix.soft_kmeans` (responsibilities `r_ik ∝ pi_k exp(-beta
    ||x_i - m_k||^2)`, cluster probabilities starting uniform, the same
    stopping rule), with the first pass, seeding and checkpoints of
    `jaxmix.stream.kmeans`. A last pass computes the free energy at the
    returned parameters.

    Args:
      key: a JAX PRNG key.
      source: anything `jaxmix.stream.as_source` accepts.
      n_clusters: k.
      beta: stiffness, > 0.
      init: "k-means++", "random" or a (k, n_features) array of centres.
      max_iter, tol, weights, batch_rows, init_sample, checkpoint,
        checkpoint_every, keep_checkpoint, progress: as in
        `jaxmix.stream.kmeans`.

    Returns:
      A `SoftKMeansResult`; `labels` is a zero-size int32 array (use
      `jaxmix.stream.predict`).

    Example:
      >>> import jax, numpy as np, jaxmix.stream as js
      >>> x = np.concatenate([np.zeros((50, 1)), np.full((50, 1), 10.0)]).astype(np.float32)
      >>> r = js.soft_kmeans(jax.random.key(0), x, 2, beta=1.0, batch_rows=40)
      >>> np.sort(np.asarray(r.centers)[:, 0]).round(3).tolist(), np.asarray(r.weights).round(3).tolist()
      ([0.0, 10.0], [0.5, 0.5])
    """
    src, k, max_iter = _check_common(key, source, n_clusters, max_iter, tol, batch_rows, weights)
    V.check_scalar(beta, "beta", positive=True)
    d, dt, cap = src.n_features, src.dtype, src.batch_rows
    init_arr, method = _centers_init(init, ("k-means++", "random"), k, d, dt)
    m = _check_init_sample(init_sample, k)
    options = _fit_options(
        "soft_kmeans",
        key,
        k,
        init if init_arr is None else init_arr,
        beta=float(beta),
        max_iter=max_iter,
        tol=float(tol),
        init_sample=m,
    )
    run = _Run(src, options, checkpoint, checkpoint_every, keep_checkpoint, progress)
    c0 = _moments_stage(run, key, k, method, m)
    st = run.st
    if "span" in st:  # the data's spread is known after the first pass (absent from older checkpoints)
        V.check_beta(beta, span=float(st["span"]), rows=int(st["n_pos"]), n_features=d, dtype=dt)
    shift = jnp.asarray(st["shift"])
    if c0 is None:
        c0 = np.asarray(jnp.asarray(init_arr) - shift)
    beta_t = jnp.asarray(beta, dt)
    tol_abs = np.asarray(tol, dt) * st["mean_var"]
    _loop_state(run, "soft.", {"centers": c0, "pi": np.full((k,), 1.0 / k, dt)}, max_iter, dt)

    def pass_of(centers: jax.Array, pi: jax.Array) -> Callable[[Any, int, Batch], Any]:
        def fold(acc, i, batch):
            del i
            x, w = _to_device(batch, cap, dt)
            return _soft_add(acc, x, w, shift, centers, pi, beta_t, chunk_size=_kmeans_chunk(x.shape[0], k, dt))

        return fold

    def zero() -> SoftKMeansStats:
        return SoftKMeansStats(jnp.zeros((k,), dt), jnp.zeros((k, d), dt), jnp.zeros((), dt))

    while _running(run, "soft.", max_iter):
        c, p = jnp.asarray(st["soft.centers"]), jnp.asarray(st["soft.pi"])
        stats = run.run_pass(f"soft{int(st['soft.n_iter'])}", zero(), pass_of(c, p), st["soft.objective"])
        new, new_pi, done = _soft_update(stats, c, tol_abs)
        _record(run, "soft.", stats.objective, done, centers=new, pi=new_pi)
    centers, pi = st["soft.centers"], st["soft.pi"]
    if "free_energy" not in st:
        stats = run.run_pass("final", zero(), pass_of(jnp.asarray(centers), jnp.asarray(pi)), st["soft.objective"])
        st["free_energy"] = np.asarray(stats.objective)
        run.save()
    run.finish()
    objective = st["free_energy"]
    out = centers + st["shift"]
    finite = np.all(np.isfinite(out)) and np.all(np.isfinite(pi)) and np.isfinite(objective)
    return SoftKMeansResult(
        jnp.asarray(out),
        jnp.asarray(pi),
        beta_t,
        jnp.zeros((0,), jnp.int32),
        jnp.asarray(objective),
        jnp.asarray(st["soft.n_iter"], jnp.int32),
        jnp.asarray(st["soft.converged"]),
        jnp.asarray(_history(run, "soft.")),
        jnp.asarray(not finite),
    )


# --- labels, batch by batch -------------------------------------------------------------


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
        params = V.check_gmm_params(model, d, dtype, name="model")
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
