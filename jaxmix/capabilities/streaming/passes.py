"""The runs of streaming fits: a run's passes over the source, its state and checkpoints (`_Run`), the
first pass (moments, reservoir sample), and the checks every streaming fit shares.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.capabilities.sources import Batch, Source, as_source
from jaxmix.capabilities.streaming.checkpoints import (
    _DAMAGED,
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    INIT_SAMPLE_MIN,
    _batch_at,
    _batch_digest,
    _chain,
    _data_difference,
    _digest,
    _key_data,
    _source_digest,
    _unreadable,
)
from jaxmix.capabilities.streaming.programs import (
    _moments_add,
    _seed,
    _to_device,
    _zero_moments,
)
from jaxmix.capabilities.streaming.reservoir import _reservoir_add, _reservoir_sample, _reservoir_zero
from jaxmix.engine import validation as V
from jaxmix.engine.chunks import default_chunk_size
from jaxmix.engine.disk import atomic_write, open_regular
from jaxmix.engine.progress_bar import bar


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
