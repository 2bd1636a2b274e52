"""The `jaxmix` command line.

    jaxmix demo [--k 2] [--seed 0] [--output jaxmix-demo.png] [--raw]

`demo` fits k-means and a two-component full-covariance Gaussian mixture
to the bundled Old Faithful data, prints a summary and writes the figure
after Bishop (PRML, Fig. 9.8): hard k-means labels beside the mixture's
responsibilities with 1- and 2-sigma ellipses (needs the `plot` extra).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np


def _ellipse(ax, mean, cov, n_sigma, **kw):
    from matplotlib.patches import Ellipse

    vals, vecs = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
    width, height = 2 * n_sigma * np.sqrt(vals[::-1])
    ax.add_patch(Ellipse(mean, width, height, angle=angle, fill=False, **kw))


def _demo(args: argparse.Namespace) -> int:
    import jax

    import jaxmix

    x, names = jaxmix.datasets.load_faithful(return_names=True)
    # As in Bishop's figures: fit standardised columns, since the raw units
    # (minutes of eruption vs minutes of waiting) differ ~20x in spread.
    mean, std = x.mean(axis=0), x.std(axis=0)
    z = x if args.raw else (x - mean) / std
    unit = "" if args.raw else " (standardised units)"
    key_k, key_g = jax.random.split(jax.random.key(args.seed))

    t0 = time.perf_counter()
    r = jax.block_until_ready(jaxmix.kmeans(key_k, z, args.k, n_init=args.n_init))
    t_k = time.perf_counter() - t0
    t0 = time.perf_counter()
    g = jax.block_until_ready(jaxmix.gmm(key_g, z, args.k, covariance_type="full", n_init=args.n_init))
    t_g = time.perf_counter() - t0

    scale = np.ones(2) if args.raw else std
    shift = np.zeros(2) if args.raw else mean
    centers = np.asarray(r.centers) * scale + shift
    labels = np.asarray(r.labels)
    g_means = np.asarray(g.params.means) * scale + shift
    g_covs = np.asarray(g.params.covariances) * np.outer(scale, scale)
    resp = np.asarray(jaxmix.predict_proba(g.params, z))

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
        palette = np.array([plt.get_cmap("tab10")(j)[:3] for j in range(max(args.k, 2))])
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.5), dpi=120, sharex=True, sharey=True)
        a1.scatter(x[:, 0], x[:, 1], c=palette[labels % len(palette)], s=14, alpha=0.85, edgecolors="none")
        a1.scatter(centers[:, 0], centers[:, 1], marker="X", s=160, c="black", edgecolors="white", label="centres")
        a1.set_title(f"k-means (k={args.k}): hard assignments, J={float(r.inertia):.2f}")
        # Colour mixed by responsibility, as in Bishop's Figure 9.8.
        a2.scatter(x[:, 0], x[:, 1], c=np.clip(resp @ palette[: args.k], 0, 1), s=14, alpha=0.85, edgecolors="none")
        for j in range(args.k):
            for n_sigma, style in ((1, "-"), (2, "--")):
                _ellipse(a2, g_means[j], g_covs[j], n_sigma, color="black", lw=1.2, ls=style)
        a2.scatter(g_means[:, 0], g_means[:, 1], marker="X", s=160, c="black", edgecolors="white", label="means")
        a2.plot([], [], "k-", lw=1.2, label="1 sigma")
        a2.plot([], [], "k--", lw=1.2, label="2 sigma")
        a2.set_title(f"GMM by EM: responsibilities, log-lik/n={float(g.log_likelihood):.3f}")
        for ax in (a1, a2):
            ax.set_xlabel(f"{names[0]} (min)")
            ax.legend(loc="upper left", fontsize=8)
        a1.set_ylabel(f"{names[1]} (min)")
        fig.tight_layout()
        fig.savefig(args.output)
        plt.close(fig)
        print(f"figure    {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxmix", description="Clustering by EM in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="fit k-means and a Gaussian mixture to the bundled Old Faithful data and plot them"
    )
    demo.add_argument("--k", type=int, default=2, help="number of clusters (default 2)")
    demo.add_argument("--n-init", type=int, default=4, help="restarts, run in parallel (default 4)")
    demo.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    demo.add_argument("--output", default="jaxmix-demo.png", help="PNG path, '' for none (default jaxmix-demo.png)")
    demo.add_argument("--raw", action="store_true", help="cluster raw minutes instead of standardised columns")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, TypeError) as e:
        print(f"jaxmix: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
