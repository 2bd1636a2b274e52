"""`jaxmix select`: choose k and the covariance model by BIC (as mclust does), print the table and the
winner's summary, write the best model, the labels, the responsibilities and the figures (the criterion
by k, the winner's classification).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

import jaxmix
from jaxmix.tools import cli_report as report
from jaxmix.tools.cli_common import _check_scales, _metadata, _prepared, _read
from jaxmix.tools.cli_fit import _dropped_note
from jaxmix.tools.tables import DataError


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
    mean, std, z_host, z = _prepared(args, table)
    kw: dict[str, Any] = {"n_init": args.n_init, "criterion": args.criterion, "progress": not args.quiet}
    if args.init is not None:
        kw["init"] = args.init
    if args.noise:
        kw["noise"] = True
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
    summary = result.summary()
    labels = np.asarray(best.labels)
    report.write_csv(written[2], ["label"], [labels])
    resp = np.asarray(jaxmix.predict_proba(best.params, z))
    written.append(os.path.join(out, "responsibilities.csv"))
    report.write_csv(written[-1], [f"p{j}" for j in range(resp.shape[1])], list(resp.T))
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
            names = [f"{c} (z-score)" for c in table.names] if args.standardize else table.names
            title = f"{summary.mclust_name}, k={result.best_k} on {os.path.basename(os.fspath(args.data))}"
            params = best.params
            if report.plot(
                os.path.join(out, "classification.png"),
                z_host,
                labels,
                np.asarray(params.means),
                names,
                title,
                resp,
                params,
                "means",
            ):
                written.append(os.path.join(out, "classification.png"))
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
        print()
        print(summary)
        print()
        print("wrote     " + ", ".join(written))
        if args.noise:
            print(
                "noise     model.npz, responsibilities.csv and the figure hold the Gaussian components only; "
                "labels.csv marks the rows most likely noise -1"
            )
        if note:
            print(note)
    return 0
