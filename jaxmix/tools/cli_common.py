"""What the command line's commands share: reading and preparing the data table (columns,
standardisation, scale warnings), fitting the chosen model, the model file's metadata, messages on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any

import numpy as np

import jaxmix
from jaxmix.tools.tables import DataError, Table, read_table

MODELS = ("kmeans", "gmm", "soft-kmeans")


DOMINANT_SHARE = 0.99  # a column with this share of the total variance gets a --standardize warning


def _check_model_options(args: argparse.Namespace) -> None:
    if args.covariance_type is not None and args.model != "gmm":
        raise DataError("--covariance-type applies to --model gmm only")
    if args.beta is not None and args.model != "soft-kmeans":
        raise DataError("--beta applies to --model soft-kmeans only")
    if args.model == "soft-kmeans" and args.beta is None:
        raise DataError("--model soft-kmeans needs --beta (stiffness, in 1 / squared distance of the fitted data)")


def _standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    # A constant column stays as it is (centred): dividing by 0 would make NaN.
    return mean, np.where(std > 0, std, 1.0)


def _warn(message: str) -> None:
    """A warning on stderr; one that cannot be written (stderr full or closed) does not fail the command."""
    with contextlib.suppress(Exception):
        print(f"jaxmix: warning: {message}", file=sys.stderr, flush=True)


def _read(args: argparse.Namespace) -> Table:
    """The data file of `fit` and `select`, with the same advice when a column is not numeric."""
    try:
        return read_table(args.data, args.columns, args.key, decimal=args.decimal, drop_missing=args.drop_missing)
    except DataError as e:
        if args.columns is None and "non-numeric" in str(e) and "--decimal" not in str(e):
            raise DataError(f"{e} (pick the numeric columns with --columns)") from None
        raise


def _prepared(args: argparse.Namespace, table: Table) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray, Any]:
    """`(mean, std, z_host, z)`: the standardisation (None without --standardize), the data to fit
    (float64) and the same in JAX's float type.

    Values beyond that type's range are refused here, naming the column
    (a cast would turn them into inf, with NumPy's overflow warning).
    """
    from jaxmix.engine.arrays import float_dtype

    x = table.x
    mean = std = None
    z = x
    if args.standardize:
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = _standardisation(x)
            z = (x - mean) / std
        bad = ~(np.isfinite(mean) & np.isfinite(std))
        if bad.any():
            j = int(np.argmax(bad))
            raise DataError(
                f"{args.data}: column {table.names[j]!r} is too large to standardise (values up to "
                f"{np.max(np.abs(x[:, j])):.3g}; its variance overflows float64): rescale it first"
            )
    dtype = np.dtype(float_dtype())
    limit = float(np.finfo(dtype).max)
    big = np.abs(z) > limit
    if big.any():
        i, j = (int(v) for v in np.argwhere(big)[0])
        raise DataError(
            f"{args.data}: value {x[i, j]:.6g} in column {table.names[j]!r} (data row {i}) is beyond {dtype}'s "
            f"range (+-{limit:.3g}), the type JAX computes in; rescale the column (e.g. --standardize, or divide "
            "it by a power of ten), or run in float64 with JAX_ENABLE_X64=1"
        )
    return mean, std, z, z.astype(dtype)


def _check_scales(args: argparse.Namespace, table: Table) -> None:
    """Warn when one column holds nearly all the variance: distances then see that column alone."""
    x = table.x
    if args.standardize or x.shape[1] < 2:
        return
    with np.errstate(over="ignore", invalid="ignore"):
        var = x.var(axis=0)
        total = float(var.sum())
    if not (np.isfinite(total) and total > 0):
        return
    j = int(np.argmax(var))
    share = float(var[j]) / total
    if share >= DOMINANT_SHARE:
        _warn(
            f"column {table.names[j]!r} holds {100 * share:.1f}% of the variance, so the clusters follow it "
            "alone; if the columns are in different units, fit z-scores with --standardize"
        )


def _metadata(
    args: argparse.Namespace, table: Table, mean: np.ndarray | None, std: np.ndarray | None, **extra: Any
) -> dict[str, Any]:
    """What a model file written by the command line records (docs/model-format.md)."""
    n, d = table.x.shape
    return {
        "columns": table.names,
        "column_indices": table.indices,
        "named_columns": table.named,
        "standardize": None if mean is None or std is None else {"mean": mean.tolist(), "std": std.tolist()},
        "data": os.path.basename(os.fspath(args.data)),
        "n_samples": n,
        "n_features": d,
        "seed": args.seed,
        "n_init": args.n_init,
        **extra,
    }


def _fit_model(args: argparse.Namespace, z: Any) -> Any:
    from jaxmix.engine import buckets as _buckets
    from jaxmix.engine import progress as _progress

    n, d = np.shape(z)
    # A small fit runs in milliseconds: no iteration display, so its program has no
    # host callback and the on-disk cache can keep it; a slow compile is still shown.
    small = _buckets.plan(n, args.k, d, args.n_init, args.max_iter or 300) is not None
    if small and not args.quiet:
        with _progress.session(args.model):
            return _fit_model_with(args, z, progress=False)
    return _fit_model_with(args, z, progress=not args.quiet)


def _fit_model_with(args: argparse.Namespace, z: Any, progress: bool) -> Any:
    from jaxmix.engine.validation import key_from_seed

    key = key_from_seed(args.seed)
    kw: dict[str, Any] = {"n_init": args.n_init, "progress": progress}
    if args.max_iter is not None:
        kw["max_iter"] = args.max_iter
    if args.tol is not None:
        kw["tol"] = args.tol
    if args.model == "kmeans":
        return jaxmix.kmeans(key, z, args.k, **kw)
    if args.model == "soft-kmeans":
        return jaxmix.soft_kmeans(key, z, args.k, beta=args.beta, **kw)
    return jaxmix.gmm(key, z, args.k, covariance_type=args.covariance_type or "full", **kw)


def _centres_and_weights(result: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Centres (k, d) in fitted units and mixing weights (None for k-means) of a fitted result."""
    params = getattr(result, "params", result)
    if hasattr(params, "means"):
        return np.asarray(params.means, np.float64), np.asarray(params.weights, np.float64)
    weights = getattr(result, "weights", None)
    return np.asarray(result.centers, np.float64), None if weights is None else np.asarray(weights, np.float64)


def _responsibilities(result: Any, z: Any) -> np.ndarray | None:
    if isinstance(result, jaxmix.GMMResult):
        return np.asarray(jaxmix.predict_proba(result.params, z))
    if isinstance(result, jaxmix.GMMParams):
        return np.asarray(jaxmix.predict_proba(result, z))
    if isinstance(result, jaxmix.SoftKMeansResult):
        return np.asarray(jaxmix.soft_kmeans_predict_proba(result, z))
    return None


def _say(message: str) -> None:
    # The exit status tells an error even when stderr cannot be written.
    with contextlib.suppress(Exception):
        print(message, file=sys.stderr, flush=True)
