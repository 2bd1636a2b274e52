"""`jaxmix demo`: k-means and a two-component Gaussian mixture on Old Faithful, Bishop's figure 9.8."""

from __future__ import annotations

import argparse
import time

import numpy as np

import jaxmix


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
