"""What `select` returns: the grid of fits (`SelectResult`), its table, and the criteria computed from the
fits' log-likelihoods and parameter counts (`tabulate`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import numpy as np

from jaxmix.families.names import DESCRIPTIONS
from jaxmix.families.params import GMMParams
from jaxmix.families.registry import covariance_model
from jaxmix.models import gmm as G


def type_label(covariance_type: str) -> str:
    """ "full (VVV)" for scikit-learn's names, the mclust name alone for mclust's."""
    mclust = covariance_model(covariance_type).mclust_name
    return covariance_type if mclust == covariance_type else f"{covariance_type} ({mclust})"


def mclust_name(covariance_type: str, d: int) -> str:
    """mclust's name of a model on d features (EII and VII are E and V for one feature)."""
    name = covariance_model(covariance_type).mclust_name
    return {"EII": "E", "VII": "V"}.get(name, name) if d == 1 else name


@dataclasses.dataclass(frozen=True)
class SelectSummary:
    """The winner of a `select` grid in words and numbers, as mclust's `summary(Mclust)`; `str()` prints it.

    `log_likelihood` is the total (not the mean per unit weight of `SelectResult.log_likelihood`),
    `n` the total sample weight (the number of rows without weights), `df` the free parameters,
    `bic` and `icl` on `SelectResult`'s sign (lower is better; mclust prints the negatives),
    `top` the best three cells by the grid's criterion as (covariance_type, k, score).
    """

    covariance_type: str
    mclust_name: str
    description: str
    n_components: int
    log_likelihood: float
    n: float
    df: int
    bic: float
    icl: float
    criterion: str
    top: tuple[tuple[str, int, float], ...]
    cluster_sizes: tuple[int, ...]
    parameters: GMMParams | None
    noise_weight: float | None = None  # with a noise component: its proportion pi_0

    def __str__(self) -> str:
        n = int(self.n) if float(self.n).is_integer() else self.n
        lines = [
            "Gaussian finite mixture model fitted by EM (jaxmix.select)",
            "",
            f"{type_label(self.covariance_type)}: {self.description}, with {self.n_components} "
            f"component{'s' if self.n_components != 1 else ''}",
            "",
            f"{'log-likelihood':>16}{'n':>10}{'df':>6}{'BIC':>14}{'ICL':>14}",
            f"{self.log_likelihood:>16.3f}{n:>10}{self.df:>6}{self.bic:>14.3f}{self.icl:>14.3f}",
            "",
            f"Top {len(self.top)} by {self.criterion.upper()} (lower is better): "
            + ", ".join(f"{t} k={k} ({v:.3f})" for t, k, v in self.top),
            "",
            "Clustering table:" + (" (0: noise)" if self.noise_weight is not None else ""),
            " ".join(f"{i:>7}" for i in range(0 if self.noise_weight is not None else 1, self.n_components + 1)),
            " ".join(f"{c:>7}" for c in self.cluster_sizes),
        ]
        if self.noise_weight is not None:
            lines.insert(7, f"noise proportion {self.noise_weight:.4f} (a uniform component over the data's region)")
        if self.parameters is not None:
            p = self.parameters
            with np.printoptions(precision=4, suppress=True):
                lines += [
                    "",
                    "Mixing probabilities:",
                    str(np.asarray(p.weights)),
                    "",
                    "Means (one row per component):",
                    str(np.asarray(p.means)),
                    "",
                    f"Covariances ({p.covariance_type}):",
                    str(np.asarray(p.covariances)),
                ]
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class SelectResult:
    """The grid of fits from `select`: one row per k, one column per covariance type.

    Arrays are NumPy, shape (len(n_components), len(covariance_types)).
    Criteria follow scikit-learn's sign: lower is better (mclust prints
    the negative of BIC and ICL). `log_likelihood` is the mean per unit of
    sample weight, as in `GMMResult`; the criteria use the total.
    """

    n_components: tuple[int, ...]
    covariance_types: tuple[str, ...]
    criterion: str
    log_likelihood: np.ndarray
    bic: np.ndarray
    aic: np.ndarray
    icl: np.ndarray
    n_parameters: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    degenerate: np.ndarray
    best_k: int
    best_covariance_type: str
    _fits: dict[str, Any] = dataclasses.field(repr=False, compare=False)
    noise_weight: np.ndarray | None = None  # with select(noise=True): the noise proportion pi_0 per cell

    @property
    def scores(self) -> np.ndarray:
        """The chosen criterion's table."""
        return np.asarray(getattr(self, self.criterion))

    @property
    def best(self) -> G.GMMResult:
        """The winning fit, as `jaxmix.gmm` returns it."""
        return self.fit(self.best_k, self.best_covariance_type)

    def fit(self, n_components: int, covariance_type: str) -> G.GMMResult:
        """The best restart for one cell of the grid, with exactly `n_components` components."""
        if covariance_type not in self.covariance_types:
            raise ValueError(f"covariance_type {covariance_type!r} is not in this grid {self.covariance_types}")
        if n_components not in self.n_components:
            raise ValueError(f"n_components={n_components} is not in this grid {self.n_components}")
        i = self.n_components.index(n_components)
        f = self._fits[covariance_type]
        k = n_components
        params = jax.tree.map(lambda a: a[i], f["params"]).first_components(k)
        return G.GMMResult(
            params,
            f["labels"][i],
            f["log_likelihood"][i],
            f["n_iter"][i],
            f["converged"][i],
            f["history"][i],
            f["nonfinite"][i],
            f["collapsed"][i][:k],
        )

    def summary(self, parameters: bool = False) -> SelectSummary:
        """The winner in words and numbers, as mclust's `summary(Mclust)` (print it).

        Example:
          >>> import jax, jaxmix
          >>> s = jaxmix.select(jax.random.key(0), jaxmix.datasets.load_faithful(), range(1, 4), ("tied",), n_init=2)
          >>> m = s.summary()
          >>> m.mclust_name, m.n_components, m.df, int(m.n), sum(m.cluster_sizes)
          ('EEE', 3, 11, 272, 272)
        """
        i = self.n_components.index(self.best_k)
        j = self.covariance_types.index(self.best_covariance_type)
        best = self.best
        f = self._fits[self.best_covariance_type]
        d = int(np.asarray(best.params.means).shape[1])
        total = float(f["total_weight"])
        name = mclust_name(self.best_covariance_type, d)
        scores = np.where(np.isfinite(self.scores), self.scores, np.inf)
        order = np.argsort(scores, axis=None, kind="stable")[:3]
        top = tuple(
            (self.covariance_types[c], self.n_components[r], float(scores[r, c]))
            for r, c in (divmod(int(o), len(self.covariance_types)) for o in order)
            if np.isfinite(scores[r, c])
        )
        labels = np.asarray(best.labels)
        sizes = np.bincount(labels[labels >= 0], minlength=self.best_k)[: self.best_k]
        noise = None if self.noise_weight is None else float(self.noise_weight[i, j])
        if noise is not None:  # mclust's table: the noise rows first, as class 0
            sizes = np.concatenate([[int(np.sum(labels < 0))], sizes])
        return SelectSummary(
            covariance_type=self.best_covariance_type,
            mclust_name=name,
            description=DESCRIPTIONS.get(name, ""),
            n_components=self.best_k,
            log_likelihood=float(self.log_likelihood[i, j]) * total,
            n=total,
            df=int(self.n_parameters[i, j]),
            bic=float(self.bic[i, j]),
            icl=float(self.icl[i, j]),
            criterion=self.criterion,
            top=top,
            cluster_sizes=tuple(int(c) for c in sizes),
            parameters=best.params if parameters else None,
            noise_weight=noise,
        )

    def table(self) -> str:
        """The grid as text: the criterion per k and covariance type, the winner starred."""
        names = [type_label(t) for t in self.covariance_types]
        scores = self.scores
        texts = [
            ["degenerate" if self.degenerate[i, j] else f"{scores[i, j]:.3f}" for j in range(len(names))]
            for i in range(len(self.n_components))
        ]
        # Wide enough for every cell (a space, the value, its two marks): large values never run together.
        width = max(12, *(len(n) + 2 for n in names), *(len(v) + 3 for row in texts for v in row))
        lines = [
            f"{self.criterion.upper()} (lower is better; mclust prints the negative) by k and covariance type",
            "   k" + "".join(f"{n:>{width}}" for n in names),
        ]
        for i, k in enumerate(self.n_components):
            cells = []
            for j, t in enumerate(self.covariance_types):
                star = "*" if (k, t) == (self.best_k, self.best_covariance_type) else " "
                mark = "!" if not self.converged[i, j] else " "
                cells.append(f"{texts[i][j] + star + mark:>{width}}")
            lines.append(f"{k:>4}" + "".join(cells))
        lines.append(
            f"best: k = {self.best_k}, {type_label(self.best_covariance_type)}, "
            f"{self.criterion.upper()} {float(scores[self.n_components.index(self.best_k)][self.covariance_types.index(self.best_covariance_type)]):.3f}"
            "   (* best, ! not converged within max_iter)"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def rows(self) -> list[dict[str, Any]]:
        """One dict per cell: k, covariance_type, log_likelihood, bic, aic, icl, n_parameters, converged, n_iter, degenerate."""
        out = []
        for i, k in enumerate(self.n_components):
            for j, t in enumerate(self.covariance_types):
                out.append(
                    {
                        "k": k,
                        "covariance_type": t,
                        "log_likelihood": float(self.log_likelihood[i, j]),
                        "bic": float(self.bic[i, j]),
                        "aic": float(self.aic[i, j]),
                        "icl": float(self.icl[i, j]),
                        "n_parameters": int(self.n_parameters[i, j]),
                        "converged": bool(self.converged[i, j]),
                        "n_iter": int(self.n_iter[i, j]),
                        "degenerate": bool(self.degenerate[i, j]),
                    }
                )
        return out


def tabulate(
    ks: tuple[int, ...], types: tuple[str, ...], criterion: str, d: int, fits: dict[str, Any], noise: bool = False
) -> SelectResult:
    shape = (len(ks), len(types))
    ll, bic, aic, icl = (np.full(shape, np.nan) for _ in range(4))
    n_params = np.zeros(shape, np.int64)
    converged = np.zeros(shape, bool)
    n_iter = np.zeros(shape, np.int64)
    degenerate = np.zeros(shape, bool)
    for j, t in enumerate(types):
        f = fits[t]
        total = float(f["total_weight"])
        for i, k in enumerate(ks):
            p = covariance_model(t).n_parameters(k, d) + 2 * int(noise)  # mclust: pi_0 and the hypervolume
            n_params[i, j] = p
            mean_ll = float(f["log_likelihood"][i])
            ll[i, j] = mean_ll
            converged[i, j] = bool(f["converged"][i])
            n_iter[i, j] = int(f["n_iter"][i])
            bad = bool(f["degenerate"][i]) or bool(f["nonfinite"][i]) or not math.isfinite(mean_ll)
            degenerate[i, j] = bad
            if bad:
                bic[i, j] = aic[i, j] = icl[i, j] = np.inf
                continue
            dev = -2.0 * mean_ll * total
            bic[i, j] = dev + p * math.log(total)
            aic[i, j] = dev + 2.0 * p
            icl[i, j] = bic[i, j] - 2.0 * float(f["hard"][i])
    scores = {"bic": bic, "aic": aic, "icl": icl}[criterion]
    if not np.isfinite(scores).any():
        raise ValueError(
            "every fit of the grid is degenerate (a component collapsed onto repeated values); "
            "increase reg_covar or n_init, or standardise the data"
        )
    flat = int(np.argmin(np.where(np.isfinite(scores), scores, np.inf)))
    bi, bj = flat // len(types), flat % len(types)
    return SelectResult(
        ks,
        types,
        criterion,
        ll,
        bic,
        aic,
        icl,
        n_params,
        converged,
        n_iter,
        degenerate,
        ks[bi],
        types[bj],
        fits,
        np.stack([np.asarray(fits[t]["noise_weight"], np.float64) for t in types], axis=1) if noise else None,
    )
