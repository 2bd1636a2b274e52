"""`jaxmix predict` and `jaxmix info`: apply a model file to new data with its preprocessing; describe a model file."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

import jaxmix
from jaxmix.tools import cli_report as report
from jaxmix.tools.cli_common import _responsibilities
from jaxmix.tools.tables import DataError, read_table, select


def _model_columns(meta: dict[str, Any], d: int, where: str, columns: list[str] | None):
    """How `predict` picks the model's columns from new data.

    `columns` when given (as in fit); else by name when both the model and
    the data have names; else the positions the model was fitted on, when
    the data have that many columns (the training file's layout); else all
    columns when there are exactly as many as the model has features.
    """

    def choose(names: list[str], named: bool) -> list[int]:
        if columns is not None:
            idx = select(names, named, columns, where)
            if len(idx) != d:
                raise DataError(f"--columns selects {len(idx)} columns; the model takes {d} features")
            return idx
        wanted = meta.get("columns")
        if meta.get("named_columns") and named and wanted:
            missing = [c for c in wanted if c not in names]
            if missing:
                raise DataError(
                    f"{where}: no column {missing[0]!r}, which the model was fitted on (columns: {', '.join(names)})"
                )
            return [names.index(c) for c in wanted]
        indices = meta.get("column_indices")
        if indices is not None and len(indices) == d and max(indices) < len(names):
            return list(indices)
        if len(names) == d:
            return list(range(d))
        fitted = "" if indices is None else f" (fitted on the columns at positions {', '.join(map(str, indices))})"
        raise DataError(
            f"{where} has {len(names)} columns; the model takes {d} features{fitted}: choose them with --columns"
        )

    return choose


def _cli_metadata(header: dict[str, Any], path: Any) -> dict[str, Any]:
    """The command line's metadata of a model file, checked: `columns`/`column_indices` and
    `standardize` ({"mean": [...], "std": [...]}) as `fit` writes them, or a clear error."""
    meta = header.get("metadata") or {}

    def bad(why: str) -> DataError:
        return DataError(f"{path}: malformed command-line metadata ({why}); refit the model or remove the metadata")

    if "columns" in meta:
        cols, idx = meta.get("columns"), meta.get("column_indices")
        if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
            raise bad("'columns' must be a list of names")
        if not isinstance(idx, list) or len(idx) != len(cols) or not all(isinstance(i, int) and i >= 0 for i in idx):
            raise bad("'column_indices' must list one non-negative position per column")
    std = meta.get("standardize")
    if std:
        if not isinstance(std, dict) or "mean" not in std or "std" not in std:
            raise bad("'standardize' must hold 'mean' and 'std'")
        try:
            mean, scale = np.asarray(std["mean"], float), np.asarray(std["std"], float)
        except (TypeError, ValueError):
            raise bad("'standardize' mean and std must be numbers") from None
        if mean.ndim != 1 or mean.shape != scale.shape or not (np.isfinite(mean).all() and (scale > 0).all()):
            raise bad("'standardize' needs finite means and positive stds of one length")
    return meta


def _n_features(model: Any) -> int:
    params = getattr(model, "params", model)
    centres = params.means if hasattr(params, "means") else model.centers
    if np.ndim(centres) != 2:
        raise DataError("the model file holds a batch of models (from kmeans_batch); predict takes one model")
    return int(np.shape(centres)[1])


def _predict(args: argparse.Namespace) -> int:
    from jaxmix.engine.arrays import float_dtype
    from jaxmix.tools import files as _io

    model, header = _io.load_with_header(args.model)
    if str(header["kind"]).startswith("sklearn.") and hasattr(model, "predict"):
        return _predict_estimator(args, model, header)
    if not isinstance(model, (jaxmix.KMeansResult, jaxmix.SoftKMeansResult, jaxmix.GMMResult, jaxmix.GMMParams)):
        raise DataError(f"{args.model} holds a {header['kind']}, which `jaxmix predict` cannot apply")
    d = _n_features(model)
    meta = _cli_metadata(header, args.model)
    choose = _model_columns(meta, d, os.fspath(args.data), args.columns)
    x = read_table(args.data, key=args.key, choose=choose, decimal=args.decimal).x
    std_meta = meta.get("standardize")
    if std_meta:
        x = (x - np.asarray(std_meta["mean"])) / np.asarray(std_meta["std"])
    z = x.astype(float_dtype())
    resp = _responsibilities(model, z)
    if isinstance(model, jaxmix.KMeansResult):
        if args.proba:
            raise DataError("--proba needs a mixture (gmm or soft-kmeans model); k-means assigns hard labels")
        labels = np.asarray(jaxmix.kmeans_predict(model.centers, z))
    elif isinstance(model, jaxmix.SoftKMeansResult):
        assert resp is not None
        labels = np.argmax(resp, axis=1).astype(np.int32)
    else:
        params = model.params if isinstance(model, jaxmix.GMMResult) else model
        labels = np.asarray(jaxmix.predict(params, z))
    return _write_predictions(args, labels, resp if args.proba else None)


def _write_predictions(args: argparse.Namespace, labels: Any, resp: np.ndarray | None) -> int:
    """`label` (and `p0, p1, ...` when `resp` is given) as CSV to `-o` or stdout."""
    header_row, cols = ["label"], [np.asarray(labels)]
    if resp is not None:
        header_row += [f"p{j}" for j in range(resp.shape[1])]
        cols += list(resp.T)
    report.write_csv(sys.stdout if args.output == "-" else args.output, header_row, cols)
    return 0


def _predict_estimator(args: argparse.Namespace, est: Any, header: dict[str, Any]) -> int:
    """`predict` for a fitted jaxmix.sklearn estimator saved with `jaxmix.save`."""
    if not hasattr(est, "n_features_in_"):
        raise DataError(f"{args.model} holds an unfitted {header['kind']}")
    names = getattr(est, "feature_names_in_", None)
    meta = header.get("metadata") or {}
    if names is not None and "columns" not in meta:
        meta = {**meta, "columns": [str(c) for c in names], "named_columns": True}
    d = int(est.n_features_in_)
    choose = _model_columns(meta, d, os.fspath(args.data), args.columns)
    x = read_table(args.data, key=args.key, choose=choose, decimal=args.decimal).x
    if names is not None:  # the estimator checks feature names: hand it a frame with them, else an array
        try:
            import pandas as pd

            x = pd.DataFrame(x, columns=list(names))
        except ImportError:
            pass
    if args.proba and not hasattr(est, "predict_proba"):
        raise DataError("--proba needs a mixture (gmm or soft-kmeans model); k-means assigns hard labels")
    return _write_predictions(args, est.predict(x), np.asarray(est.predict_proba(x)) if args.proba else None)


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        if isinstance(v, dict):
            out.extend(_flatten(v, f"{prefix}{k}."))
        elif not (prefix and k == "kind"):  # a nested object's kind is implied by its parent's
            out.append((prefix + k, v))
    return out


def _estimator_values(entries: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
    """An estimator's stored parameters as plain values (see jaxmix/sklearn/_persist.py)."""
    out: dict[str, Any] = {}
    for k, e in entries.items():
        if not isinstance(e, dict):
            out[k] = e
        elif "json" in e:
            out[k] = e["json"]
        elif prefix + k in arrays:
            a = arrays[prefix + k]
            out[k] = a.item() if a.ndim == 0 else f"array {a.dtype} {a.shape}"
    return out


def _info(args: argparse.Namespace) -> int:
    from jaxmix.tools import files as _io

    header, arrays = _io.read_raw(args.model)
    kind = header["kind"]
    meta = _cli_metadata(header, args.model)
    print(f"file          {args.model}")
    print(
        f"kind          {kind} (format {header['format']} version {header['format_version']}, "
        f"written by jaxmix {header.get('jaxmix_version', '?')})"
    )
    own = {k: v for k, v in header.items() if k not in _io.RESERVED}
    if kind.startswith("sklearn.") and isinstance(own.get("params"), dict):
        own = {"params": _estimator_values(own["params"], arrays, "param.")}
    for k, v in _flatten(own):
        print(f"{k:<13} {v}")
    if meta.get("model"):
        print(f"model         {meta['model']}, fitted on {meta.get('data', '?')}: {meta.get('n_samples', '?')} rows")
    if "columns" in meta:
        print(f"columns       {', '.join(meta['columns'])} (positions {', '.join(map(str, meta['column_indices']))})")
    std = meta.get("standardize")
    if "standardize" in meta:
        if std:
            print("standardised  yes: x -> (x - mean) / std before the model")
            print("  mean        " + ", ".join(f"{v:.6g}" for v in std["mean"]))
            print("  std         " + ", ".join(f"{v:.6g}" for v in std["std"]))
        else:
            print("standardised  no")
    print("arrays")
    for name, spec in header["arrays"].items():
        print(f"  {name:<24} {np.dtype(spec['dtype'])} {tuple(spec['shape'])}")
    small = {
        k: v
        for k, v in arrays.items()
        if np.size(v) <= 16 and np.ndim(v) <= 1 and k not in ("labels", "history") and not k.startswith("param.")
    }
    if small or meta.get("bic") is not None:
        print("diagnostics")
        for k, v in small.items():
            print(f"  {k:<24} {report.describe_array(v)}")
        if meta.get("bic") is not None:
            print(f"  {'bic':<24} {meta['bic']:.6g}")
    return 0
