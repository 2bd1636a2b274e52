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
from collections.abc import Sequence

# Only light modules at the top: `import jaxmix` imports nothing of JAX (its
# names load on first use), so `jaxmix --help` and `--version` answer at once.
# JAX and the fitting modules are imported by the commands that need them
# (the commands live in `jaxmix/tools/cli_*.py`).
import jaxmix
from jaxmix.families.names import COVARIANCE_TYPES, SCIKIT_LEARN_TYPES
from jaxmix.tools.cli_common import MODELS, _say
from jaxmix.tools.cli_demo import _demo
from jaxmix.tools.cli_fit import _fit
from jaxmix.tools.cli_predict import _info, _predict
from jaxmix.tools.cli_select import _select_cmd


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
        "(model.npz), select.csv (every cell), labels.csv, responsibilities.csv, a plot of the criterion "
        "and the winner's classification (classification.png) into OUTDIR, and print the winner's summary.",
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
    sel.add_argument(
        "--init",
        choices=("kmeans", "k-means++", "random_from_data", "hc"),
        help="starts (default: jaxmix.select's); hc: mclust's hierarchical agglomeration for the first restart",
    )
    sel.add_argument(
        "--noise",
        action="store_true",
        help="add mclust's uniform noise component to every fit (outlying rows get label -1)",
    )
    sel.add_argument("--max-iter", type=int, help="most EM iterations per fit (default 500)")
    sel.add_argument("--tol", type=float, help="convergence tolerance on the mean log-likelihood (default 1e-6)")
    sel.add_argument("--standardize", action="store_true", help="fit z-scored columns (stored in the model)")
    sel.add_argument("--columns", nargs="+", metavar="COL", help="columns to use, by name or 0-based index")
    sel.add_argument("--key", help="array to read from an .npz file holding several")
    _add_reading_options(sel)
    sel.add_argument("-o", "--output-dir", default="jaxmix-select", help="output folder (default ./jaxmix-select)")
    sel.add_argument("--no-plot", action="store_true", help="do not write the figures")
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


if __name__ == "__main__":
    sys.exit(main())
