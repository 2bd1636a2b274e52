"""The `jaxmix` command line.

    jaxmix fit DATA -k K [--model kmeans|gmm|soft-kmeans] [options] [-o OUTDIR]
    jaxmix predict MODEL DATA [-o labels.csv] [--proba]
    jaxmix info MODEL
    jaxmix select DATA [--k 1..9] [--covariance-types full tied diag spherical | mclust | EII VEV ...] [--criterion bic] [-o OUTDIR]
    jaxmix demo [--k 2] [--seed 0] [--output jaxmix-demo.png] [--raw]

`fit` reads a numeric table (CSV with or without a header, .npy, .npz,
Parquet with pyarrow), fits a model with `progress=True`, prints a summary
and writes `model.npz` (a jaxmix model file holding the fitted result and
the preprocessing: columns, standardisation), `labels.csv`,
`responsibilities.csv` (mixtures) and `plot.png` into OUTDIR. `predict`
applies a model file to new data with the same preprocessing; `info`
describes a model file.

`demo` fits k-means and a two-component full-covariance Gaussian mixture
to the bundled Old Faithful data, prints a summary and writes the figure
after Bishop (PRML, Fig. 9.8): hard k-means labels beside the mixture's
responsibilities with 1- and 2-sigma ellipses (needs the `plot` extra).

Errors (a bad file, a bad k, an unknown column, a non-numeric cell) print
`jaxmix: error: ...` on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

# Only light modules at the top: `import jaxmix` imports nothing of JAX (its
# names load on first use), so `jaxmix --help` and `--version` answer at once.
# JAX and the fitting modules are imported by the commands that need them.
import jaxmix
from jaxmix.families.names import COVARIANCE_TYPES, SCIKIT_LEARN_TYPES
from jaxmix.tools import cli_report as report
from jaxmix.tools.tables import DataError, Table, read_table, select

MODELS = ("kmeans", "gmm", "soft-kmeans")
DOMINANT_SHARE = 0.99  # a column with this share of the total variance gets a --standardize warning


def _matched(centres: np.ndarray, means: np.ndarray) -> np.ndarray:
    """`perm` with k-means cluster j drawn as mixture component perm[j] (nearest centres, one to one)."""
    from scipy.optimize import linear_sum_assignment

    cost = ((centres[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(rows), np.int64)
    perm[rows] = cols
    return perm


def _demo(args: argparse.Namespace) -> int:
    import jax

    from jaxmix.engine.validation import key_from_seed

    x, names = jaxmix.datasets.load_faithful(return_names=True)
    # As in Bishop's figures: fit standardised columns, since the raw units
    # (minutes of eruption vs minutes of waiting) differ ~20x in spread.
    mean, std = x.mean(axis=0), x.std(axis=0)
    z = x if args.raw else (x - mean) / std
    unit = "" if args.raw else " (standardised units)"
    key_k, key_g = jax.random.split(key_from_seed(args.seed))

    t0 = time.perf_counter()
    r = jax.block_until_ready(jaxmix.kmeans(key_k, z, args.k, n_init=args.n_init))
    t_k = time.perf_counter() - t0
    t0 = time.perf_counter()
    g = jax.block_until_ready(jaxmix.gmm(key_g, z, args.k, covariance_type="full", n_init=args.n_init))
    t_g = time.perf_counter() - t0

    scale = np.ones(2) if args.raw else std
    shift = np.zeros(2) if args.raw else mean
    g_means = np.asarray(g.params.means, np.float64) * scale + shift
    g_covs = np.asarray(g.params.covariances, np.float64) * np.outer(scale, scale)
    # The same cluster gets the same number and colour in both tables and panels:
    # k-means clusters are renumbered after the mixture component nearest to each.
    perm = _matched(np.asarray(r.centers, np.float64), np.asarray(g.params.means, np.float64))
    centers = np.empty((args.k, 2))
    centers[perm] = np.asarray(r.centers, np.float64) * scale + shift
    labels = perm[np.asarray(r.labels)]

    print(
        f"jaxmix {jaxmix.__version__} on {jax.default_backend()}: Old Faithful, {x.shape[0]} eruptions x {x.shape[1]}"
        f" features ({', '.join(names)}){'' if args.raw else ', standardised'}"
    )
    print(
        f"k-means   k={args.k}, n_init={args.n_init}: {int(r.n_iter)} iterations, converged={bool(r.converged)}, "
        f"inertia {float(r.inertia):.4f}{unit}, {t_k:.2f} s with compilation"
    )
    print(f"  {'cluster':>8} {'size':>6} " + " ".join(f"{n:>10}" for n in names))
    for j in range(args.k):
        print(f"  {j:>8} {int(np.sum(labels == j)):>6} " + " ".join(f"{v:>10.3f}" for v in centers[j]))
    print(
        f"GMM       k={args.k}, full covariances, n_init={args.n_init}: {int(g.n_iter)} iterations, "
        f"converged={bool(g.converged)}, mean log-likelihood {float(g.log_likelihood):.4f}{unit}, "
        f"BIC {float(jaxmix.bic(g.params, z)):.2f}, {t_g:.2f} s with compilation"
    )
    print(
        f"  {'comp.':>8} {'weight':>6} "
        + " ".join(f"{n:>10}" for n in names)
        + "   sd "
        + " ".join(f"{n:>10}" for n in names)
    )
    for j in range(args.k):
        sd = np.sqrt(np.diag(g_covs[j]))
        print(
            f"  {j:>8} {float(g.params.weights[j]):>6.3f} "
            + " ".join(f"{v:>10.3f}" for v in g_means[j])
            + "      "
            + " ".join(f"{v:>10.3f}" for v in sd)
        )

    if args.output:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("(no figure: install the plot extra, e.g. pip install 'jaxmix[plot]')")
            return 0
        # Drawn in minutes: the mixture moved to the data's units (an affine map
        # leaves its responsibilities as they are).
        raw = jaxmix.GMMParams.from_covariances(np.asarray(g.params.weights, np.float64), g_means, g_covs)
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.5), dpi=120, sharex=True, sharey=True)
        jaxmix.plot.scatter(x, labels, centers=centers, ax=a1)
        a1.set_title(f"k-means (k={args.k}): hard assignments, J={float(r.inertia):.2f}")
        # Colour mixed by responsibility and 1- and 2-sigma ellipses, as in Bishop's Figure 9.8.
        jaxmix.plot(raw, x=x, ax=a2)
        a2.set_title(f"GMM by EM: responsibilities, log-lik/n={float(g.log_likelihood):.3f}")
        for ax in (a1, a2):
            ax.set_xlabel(f"{names[0]} (min)")
        a1.set_ylabel(f"{names[1]} (min)")
        a2.set_ylabel("")
        fig.tight_layout()
        fig.savefig(args.output)
        plt.close(fig)
        print(f"figure    {args.output}")
    return 0


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
    from jaxmix.engine.validation import float_dtype

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


def _fit(args: argparse.Namespace) -> int:
    import jax

    from jaxmix.tools import files as _io
    from jaxmix.tools import plot as _plot

    _check_model_options(args)
    table = _read(args)
    _check_scales(args, table)
    mean, std, z_host, z = _prepared(args, table)
    t0 = time.perf_counter()
    result = jax.block_until_ready(_fit_model(args, z))
    seconds = time.perf_counter() - t0
    if bool(np.any(result.nonfinite)):
        _warn("NaN or inf reached the fitted model (try --standardize)")

    fitted, weights = _centres_and_weights(result)  # in the units fitted (z-scores with --standardize)
    centres = fitted * std + mean if std is not None and mean is not None else fitted
    labels = np.asarray(result.labels)
    resp = _responsibilities(result, z)
    bic = float(jaxmix.bic(result.params, z)) if args.model == "gmm" else None

    os.makedirs(args.output_dir, exist_ok=True)
    out = args.output_dir
    metadata = _metadata(args, table, mean, std, model=args.model, bic=bic)
    if len(table.dropped):
        metadata["dropped_rows"] = len(table.dropped)
    written = [os.path.join(out, "model.npz"), os.path.join(out, "labels.csv")]
    _io.save(result, written[0], metadata=metadata)
    report.write_csv(written[1], ["label"], [labels])
    if resp is not None:
        written.append(os.path.join(out, "responsibilities.csv"))
        report.write_csv(written[-1], [f"p{j}" for j in range(resp.shape[1])], list(resp.T))
    notes = []
    if not args.no_plot:
        # Drawn in the units fitted, so that a mixture's ellipses are its own.
        title = f"{args.model} (k={args.k}) on {os.path.basename(os.fspath(args.data))}"
        names = [f"{c} (z-score)" for c in table.names] if args.standardize else table.names
        params = result.params if args.model == "gmm" else None
        what = "means" if args.model == "gmm" else "centres"
        if report.plot(os.path.join(out, "plot.png"), z_host, labels, fitted, names, title, resp, params, what):
            written.append(os.path.join(out, "plot.png"))
            n = z_host.shape[0]
            if n > _plot.MAX_POINTS:
                notes.append(f"plot.png draws a random sample of {_plot.MAX_POINTS:,} of the {n:,} rows")
        else:
            notes.append("no plot.png: matplotlib is not installed (pip install 'jaxmix[plot]')")
    if not args.quiet:
        _print_summary(args, table, result, seconds, centres, weights, labels, bic)
        print("wrote     " + ", ".join(written))
        for line in notes:
            print(line)
    return 0


def _dropped_note(table: Table) -> str:
    """The summary's word on rows left out by --drop-missing."""
    dropped = table.dropped
    if not len(dropped):
        return ""
    shown = ", ".join(str(int(i)) for i in dropped[:5]) + (", ..." if len(dropped) > 5 else "")
    return (
        f"\n          {len(dropped)} rows with a missing value left out (--drop-missing; data rows {shown}, "
        "0-based): labels.csv has one line per row kept"
    )


def _print_summary(args, table: Table, result, seconds, centres, weights, labels, bic) -> None:
    import jax

    n, d = table.x.shape
    model = args.model + (f", {args.covariance_type or 'full'} covariances" if args.model == "gmm" else "")
    model += f", beta {args.beta:g}" if args.model == "soft-kmeans" else ""
    cols = ", ".join(table.names[: report.MAX_TABLE_COLUMNS]) + (", ..." if d > report.MAX_TABLE_COLUMNS else "")
    print(f"jaxmix {jaxmix.__version__} on {jax.default_backend()}: {model}, k={args.k}, n_init={args.n_init}")
    print(
        f"data      {args.data}: n={n} rows, d={d} columns ({cols}){', standardised' if args.standardize else ''}"
        + _dropped_note(table)
    )
    converged = "converged" if bool(result.converged) else "NOT converged (raise --max-iter or --tol)"
    # The progress line counts the longest-running restart; this is the winner's count.
    which = f" (the winning restart of {args.n_init})" if args.n_init > 1 else ""
    print(f"fit       {int(result.n_iter)} iterations{which}, {converged}, {seconds:.2f} s with compilation")
    unit = " (standardised units)" if args.standardize else ""
    if args.model == "kmeans":
        print(f"inertia   {float(result.inertia):.6g}{unit}")
    elif args.model == "soft-kmeans":
        print(f"free energy {float(result.objective):.6g}{unit}")
    else:
        print(f"mean log-likelihood {float(result.log_likelihood):.6g}, BIC {bic:.6g}{unit}")
        if bool(np.any(result.collapsed)):
            print(f"collapsed components: {np.flatnonzero(np.asarray(result.collapsed)).tolist()}")
    sizes = np.bincount(labels, minlength=centres.shape[0])
    what = "mean" if args.model == "gmm" else "centre"
    for line in report.cluster_table(table.names, sizes, centres, weights, what):
        print(line)


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
    from jaxmix.engine.validation import float_dtype
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


def _k_values(text: str) -> list[int]:
    """`--k`: "1..9" (inclusive), "2,3,5", or "4"."""
    try:
        if ".." in text:
            lo, hi = (int(v) for v in text.split("..", 1))
            if hi < lo:
                raise ValueError
            return list(range(lo, hi + 1))
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise DataError(f"--k must be a range like 1..9, a list like 2,3,5 or one number, got {text!r}") from None


def _select_cmd(args: argparse.Namespace) -> int:
    import jax

    from jaxmix.engine.validation import key_from_seed
    from jaxmix.tools import files as _io

    ks = _k_values(args.k)
    table = _read(args)
    n, d = table.x.shape
    _check_scales(args, table)
    mean, std, _, z = _prepared(args, table)
    kw: dict[str, Any] = {"n_init": args.n_init, "criterion": args.criterion, "progress": not args.quiet}
    if args.max_iter is not None:
        kw["max_iter"] = args.max_iter
    if args.tol is not None:
        kw["tol"] = args.tol
    t0 = time.perf_counter()
    types = "mclust" if args.covariance_types == ["mclust"] else tuple(args.covariance_types)
    result = jaxmix.select(key_from_seed(args.seed), z, ks, types, **kw)
    seconds = time.perf_counter() - t0
    best = result.best
    os.makedirs(args.output_dir, exist_ok=True)
    out = args.output_dir
    best_bic = float(result.bic[ks.index(result.best_k), result.covariance_types.index(result.best_covariance_type)])
    metadata = _metadata(args, table, mean, std, model="gmm", bic=best_bic, selected_by=args.criterion)
    if len(table.dropped):
        metadata["dropped_rows"] = len(table.dropped)
    written = [os.path.join(out, "model.npz"), os.path.join(out, "select.csv"), os.path.join(out, "labels.csv")]
    _io.save(best, written[0], metadata=metadata)
    rows = result.rows()
    keys = list(rows[0])
    # The criteria with full precision (they are compared across rows), as text.
    report.write_csv(
        written[1], keys, [np.array([repr(r[c]) if isinstance(r[c], float) else r[c] for r in rows]) for c in keys]
    )
    report.write_csv(written[2], ["label"], [np.asarray(best.labels)])
    note = None
    if not args.no_plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            ax = jaxmix.plot(result)
            ax.figure.savefig(os.path.join(out, f"{args.criterion}.png"))
            plt.close(ax.figure)
            written.append(os.path.join(out, f"{args.criterion}.png"))
        except ImportError:
            note = f"no {args.criterion}.png: matplotlib is not installed (pip install 'jaxmix[plot]')"
    if not args.quiet:
        print(
            f"jaxmix {jaxmix.__version__} on {jax.default_backend()}: select over k = {ks[0]}..{ks[-1]}, "
            f"{len(result.covariance_types)} covariance types, n_init={args.n_init}, {seconds:.2f} s with compilation"
        )
        print(
            f"data      {args.data}: n={n} rows, d={d} columns{', standardised' if args.standardize else ''}"
            + _dropped_note(table)
        )
        print(result.table())
        print("wrote     " + ", ".join(written))
        if note:
            print(note)
    return 0


def _add_reading_options(p: argparse.ArgumentParser, drop_missing: bool = True) -> None:
    p.add_argument(
        "--decimal",
        choices=(".", ","),
        default=".",
        help="decimal mark of a CSV (default '.'; ',' for European files, whose columns are then "
        "separated by ';', tab or '|')",
    )
    if drop_missing:
        p.add_argument(
            "--drop-missing",
            action="store_true",
            help="leave out rows with a missing value (empty, NA, NaN, null) instead of stopping; "
            "labels.csv then has one line per row kept",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxmix", description="Clustering by EM in JAX.")
    parser.add_argument("--version", action="version", version=f"jaxmix {jaxmix.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser(
        "fit",
        help="fit k-means, soft k-means or a Gaussian mixture to a data file",
        description="Fit a model to the numeric columns of DATA (CSV, .npy, .npz, Parquet) and write "
        "model.npz, labels.csv, responsibilities.csv (mixtures) and plot.png into OUTDIR.",
        epilog="examples:\n  jaxmix fit faithful.csv -k 2\n"
        "  jaxmix fit faithful.csv -k 2 --model gmm --covariance-type full --standardize -o faithful-gmm\n"
        "  jaxmix fit table.csv -k 5 --columns height weight --model soft-kmeans --beta 0.5\n"
        "  jaxmix fit embeddings.npz --key train -k 100 --n-init 10 --no-plot",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("data", help="CSV (header detected), .npy, .npz or .parquet file: one row per sample")
    fit.add_argument("-k", "--k", type=int, required=True, help="number of clusters / components")
    fit.add_argument("--model", choices=MODELS, default="kmeans", help="model to fit (default kmeans)")
    fit.add_argument("--covariance-type", choices=COVARIANCE_TYPES, help="gmm only (default full)")
    fit.add_argument("--beta", type=float, help="soft-kmeans stiffness (required for soft-kmeans)")
    fit.add_argument("--n-init", type=int, default=4, help="restarts, run in parallel; the best wins (default 4)")
    fit.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    fit.add_argument("--max-iter", type=int, help="most iterations per restart (default: the model's)")
    fit.add_argument("--tol", type=float, help="convergence tolerance (default: the model's)")
    fit.add_argument(
        "--standardize", action="store_true", help="fit z-scored columns (stored in the model; results in data units)"
    )
    fit.add_argument("--columns", nargs="+", metavar="COL", help="columns to use, by name or 0-based index")
    fit.add_argument("--key", help="array to read from an .npz file holding several")
    _add_reading_options(fit)
    fit.add_argument("-o", "--output-dir", default="jaxmix-out", help="output folder (default ./jaxmix-out)")
    fit.add_argument("--no-plot", action="store_true", help="do not write plot.png")
    fit.add_argument("--quiet", action="store_true", help="print nothing but errors (no progress, no summary)")
    fit.set_defaults(func=_fit)

    predict = sub.add_parser(
        "predict",
        help="label new data with a model file",
        description="Apply MODEL (from `jaxmix fit` or jaxmix.save) to DATA with the model's columns and "
        "standardisation; write one label per row as CSV.",
        epilog="examples:\n  jaxmix predict faithful-gmm/model.npz new.csv\n"
        "  jaxmix predict faithful-gmm/model.npz new.csv --proba -o labels.csv\n"
        "  jaxmix predict model.npz new.npy --columns 1 0",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("model", help="model file (model.npz)")
    predict.add_argument("data", help="data file, as for fit")
    predict.add_argument("-o", "--output", default="-", help="CSV file to write, '-' for stdout (default)")
    predict.add_argument("--proba", action="store_true", help="also write responsibilities (gmm, soft-kmeans)")
    predict.add_argument(
        "--columns",
        nargs="+",
        metavar="COL",
        help="the model's columns in DATA, by name or 0-based index (default: the model's names, or its "
        "positions in the training file, or all columns when there are as many as the model's features)",
    )
    predict.add_argument("--key", help="array to read from an .npz file holding several")
    _add_reading_options(predict, drop_missing=False)
    predict.set_defaults(func=_predict)

    sel = sub.add_parser(
        "select",
        help="choose k and the covariance model of a Gaussian mixture by BIC (or AIC, ICL)",
        description="Fit a Gaussian mixture for every k and covariance type (one compiled program per type), "
        "print the criterion table (as mclust's BIC table, lower is better), and write the best model "
        "(model.npz), select.csv (every cell), labels.csv and a plot of the criterion into OUTDIR.",
        epilog="examples:\n  jaxmix select faithful.csv --k 1..9\n"
        "  jaxmix select data.csv --k 2,4,8 --covariance-types full diag --criterion icl --standardize\n"
        "  jaxmix select data.csv --covariance-types mclust",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sel.add_argument("data", help="CSV (header detected), .npy, .npz or .parquet file: one row per sample")
    sel.add_argument("--k", default="1..9", help="k values: a range 1..9 (default), a list 2,3,5 or one number")
    sel.add_argument(
        "--covariance-types",
        nargs="+",
        choices=(*COVARIANCE_TYPES, "mclust"),
        default=list(SCIKIT_LEARN_TYPES),
        metavar="TYPE",
        help="covariance models to compare: scikit-learn's full tied diag spherical (the default), "
        "mclust's EII VII EEI VEI EVI VVI EEE VEE EVE VVE EEV VEV EVV VVV (E V for one column), "
        "or mclust (all of mclust's)",
    )
    sel.add_argument("--criterion", choices=("bic", "aic", "icl"), default="bic", help="default bic")
    sel.add_argument("--n-init", type=int, default=10, help="restarts per cell (default 10)")
    sel.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    sel.add_argument("--max-iter", type=int, help="most EM iterations per fit (default 500)")
    sel.add_argument("--tol", type=float, help="convergence tolerance on the mean log-likelihood (default 1e-6)")
    sel.add_argument("--standardize", action="store_true", help="fit z-scored columns (stored in the model)")
    sel.add_argument("--columns", nargs="+", metavar="COL", help="columns to use, by name or 0-based index")
    sel.add_argument("--key", help="array to read from an .npz file holding several")
    _add_reading_options(sel)
    sel.add_argument("-o", "--output-dir", default="jaxmix-select", help="output folder (default ./jaxmix-select)")
    sel.add_argument("--no-plot", action="store_true", help="do not write the criterion plot")
    sel.add_argument("--quiet", action="store_true", help="print nothing but errors")
    sel.set_defaults(func=_select_cmd)

    info = sub.add_parser(
        "info",
        help="describe a model file",
        description="Describe a jaxmix model file: kind, versions, columns, standardisation, arrays, diagnostics.",
        epilog="example:\n  jaxmix info faithful-gmm/model.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("model", help="model file (model.npz)")
    info.set_defaults(func=_info)

    demo = sub.add_parser(
        "demo",
        help="fit k-means and a Gaussian mixture to the bundled Old Faithful data and plot them",
        description="Fit k-means and a full-covariance Gaussian mixture to the bundled Old Faithful data "
        "(standardised columns) and draw them side by side.",
        epilog="examples:\n  jaxmix demo\n  jaxmix demo --k 3 --output faithful-k3.png\n  jaxmix demo --raw",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--k", type=int, default=2, help="number of clusters (default 2)")
    demo.add_argument("--n-init", type=int, default=4, help="restarts, run in parallel (default 4)")
    demo.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    demo.add_argument("--output", default="jaxmix-demo.png", help="PNG path, '' for none (default jaxmix-demo.png)")
    demo.add_argument("--raw", action="store_true", help="cluster raw minutes instead of standardised columns")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line. It keeps its compiled programs on disk unless JAXMIX_CACHE_DIR says otherwise
    (unset: `jaxmix.default_cache_dir()`; "0": off; a folder: that folder), for this call only."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from jaxmix.engine import programs as _jit

    with _jit.programs_on_disk(os.environ.get(_jit.ENV_CACHE_DIR) is None):
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # The reader of our stdout went away (`jaxmix predict ... | head`): not an error of ours.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except FileNotFoundError as e:
        _say(f"jaxmix: error: no such file: {e.filename}")
    except (ValueError, TypeError, OSError) as e:
        _say(f"jaxmix: error: {e}")
    except KeyboardInterrupt:
        _say("jaxmix: interrupted")
        return 130
    return 2


def _say(message: str) -> None:
    # The exit status tells an error even when stderr cannot be written.
    with contextlib.suppress(Exception):
        print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
