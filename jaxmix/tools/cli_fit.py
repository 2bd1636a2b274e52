"""`jaxmix fit`: read a table, fit k-means, soft k-means or a Gaussian mixture, print a summary, write the
model file, the labels, the responsibilities and a plot.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import jaxmix
from jaxmix.tools import cli_report as report
from jaxmix.tools.cli_common import (
    _centres_and_weights,
    _check_model_options,
    _check_scales,
    _fit_model,
    _metadata,
    _prepared,
    _read,
    _responsibilities,
    _warn,
)
from jaxmix.tools.tables import Table


def _fit(args: argparse.Namespace) -> int:
    import jax

    from jaxmix.tools import files as _io
    from jaxmix.tools import plot_parts as _plot

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
