"""mclust's start: model-based hierarchical agglomeration (Fraley 1998) on SVD-scaled data.

mclust starts every EM fit from one deterministic partition: `hc(modelName =
"VVV", use = "SVD")` merges clusters two at a time, always the pair whose merge
lowers the classification likelihood of an unconstrained (VVV) Gaussian model
least, starting from one cluster per distinct row, and `hclass` reads the
partition into k clusters off the merge sequence. Because the data are first
standardised and whitened by their singular values, the partition does not
depend on the units of the columns.

The criterion of a cluster of l rows with scatter matrix W (Fraley's regularised
form, mclust's `vvvtij` with beta = 1) is

    term(l, W) = l * log(det(W / l) + (tr(W) + alpha) / l)    (det taken as 0 when l <= d)

with alpha the mean per-coordinate variance of the scaled data; the cost of
merging clusters a and b is term(a + b) - term(a) - term(b). The merges run in
one compiled program (`_agglomerate`): every pair's cost is kept in an (m, m)
matrix and each row's minimum in a vector, so a merge costs one row of new
costs (m determinants of d x d) and a rescan of the few rows whose minimum
pointed at the merged clusters.

For one feature mclust starts from quantile classes (`qclass`); so does this
module. With more than `HC_MAX_ROWS` rows the agglomeration runs on a random
subsample of that many rows (mclust's `subset` option, 2000), and the rows left
out take no part in the first M-step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmix.engine import buckets as B
from jaxmix.engine.arrays import float_dtype
from jaxmix.engine.programs import fit_jit

HC_MAX_ROWS = 2000
# d x d determinants are computed by an unrolled Cholesky up to this many features (batched
# elementwise arithmetic, fast for the small d of mixture data); larger d uses `slogdet`.
UNROLLED_MAX_FEATURES = 12


def svd_scaled(x: np.ndarray) -> np.ndarray:
    """mclust's `use = "SVD"`: columns centred and scaled to unit variance, rotated onto the right
    singular vectors and divided by the square roots of the singular values (float64, on the host)."""
    x = np.asarray(x, np.float64)
    z = x - x.mean(axis=0)
    sd = z.std(axis=0, ddof=1) if x.shape[0] > 1 else np.ones(x.shape[1])
    z = z[:, sd > 0] / sd[sd > 0]  # constant columns carry nothing (mclust's dropCols)
    if z.shape[1] == 0:
        return np.zeros((x.shape[0], 1))
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    keep = s > s[0] * np.finfo(np.float64).eps * max(z.shape)
    return (z @ vt[keep].T) / np.sqrt(s[keep])


def _logdet(w: jax.Array) -> jax.Array:
    """log det of symmetric positive semi-definite (..., d, d) matrices; -inf where singular."""
    d = w.shape[-1]
    if d > UNROLLED_MAX_FEATURES:
        sign, logdet = jnp.linalg.slogdet(w)
        return jnp.where(sign > 0, logdet, -jnp.inf)
    tiny = jnp.finfo(w.dtype).eps * 16 * jnp.maximum(jnp.trace(w, axis1=-2, axis2=-1), jnp.finfo(w.dtype).tiny)
    chol: list[list[Any]] = [[None] * d for _ in range(d)]
    total = jnp.zeros(w.shape[:-2], w.dtype)
    singular = jnp.zeros(w.shape[:-2], bool)
    for j in range(d):
        s = w[..., j, j] - sum((chol[j][m] ** 2 for m in range(j)), jnp.zeros_like(total))
        bad = s <= tiny
        singular = singular | bad
        pivot = jnp.sqrt(jnp.where(bad, 1.0, s))
        total = total + jnp.log(pivot)
        chol[j][j] = pivot
        for i in range(j + 1, d):
            t = w[..., i, j] - sum((chol[i][m] * chol[j][m] for m in range(j)), jnp.zeros_like(total))
            chol[i][j] = t / pivot
    return jnp.where(singular, -jnp.inf, 2.0 * total)


def _term(count: jax.Array, scatter: jax.Array, alpha: jax.Array) -> jax.Array:
    """Fraley's criterion of clusters with `count` rows and scatter matrices `scatter` (see above)."""
    d = scatter.shape[-1]
    tr = jnp.trace(scatter, axis1=-2, axis2=-1)
    safe = jnp.maximum(count, 1.0)
    det_part = jnp.where(count > d, _logdet(scatter / safe[..., None, None]), -jnp.inf)
    return count * jnp.logaddexp(det_part, jnp.log((tr + alpha) / safe))


def _merged(na, ma, wa, nb, mb, wb):
    """Count, mean and scatter of the union of two clusters."""
    n = na + nb
    delta = ma - mb
    f = (na * nb / jnp.maximum(n, 1.0))[..., None, None]
    mean = (na[..., None] * ma + nb[..., None] * mb) / jnp.maximum(n, 1.0)[..., None]
    return n, mean, wa + wb + f * delta[..., :, None] * delta[..., None, :]


@fit_jit()
def _agglomerate(counts, means, scatters, alpha, n_groups):
    """Merge the `n_groups` live clusters (the first rows; the rest is padding) down to one.

    Returns (kept, removed) (m - 1,) int32: merge s joined cluster `removed[s]` into `kept[s]`
    (entries past n_groups - 1 are -1).
    """
    m = counts.shape[0]
    idx = jnp.arange(m)
    live0 = idx < n_groups
    inf = jnp.asarray(jnp.inf, means.dtype)
    terms0 = _term(counts, scatters, alpha)

    def costs_to(a, counts, means, scatters, terms, live):
        n, _, w = _merged(counts[a], means[a], scatters[a], counts, means, scatters)
        c = _term(n, w, alpha) - terms[a] - terms
        return jnp.where(live & (idx != a), c, inf)

    # The initial clusters hold identical rows (scatter 0), so a pair's merged scatter has rank one
    # (determinant 0 for d >= 2): its cost needs only the pair's squared distance.
    sq = jnp.sum(means * means, axis=1)
    dist = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * means @ means.T, 0.0)
    n_pair = counts[:, None] + counts[None, :]
    f = counts[:, None] * counts[None, :] / jnp.maximum(n_pair, 1.0)
    pair_terms = n_pair * jnp.log((f * dist + alpha) / jnp.maximum(n_pair, 1.0))
    if means.shape[1] == 1:  # one feature: a two-row cluster has a determinant
        pair_terms = _term(n_pair, (f * dist)[..., None, None], alpha)
    cost0 = pair_terms - terms0[:, None] - terms0[None, :]
    cost0 = jnp.where(live0[:, None] & live0[None, :] & (idx[:, None] != idx[None, :]), cost0, inf)
    state0 = (
        counts,
        means,
        scatters,
        terms0,
        live0,
        cost0,
        jnp.min(cost0, axis=1),
        jnp.argmin(cost0, axis=1).astype(jnp.int32),
        jnp.full((m - 1,), -1, jnp.int32),
        jnp.full((m - 1,), -1, jnp.int32),
    )

    def merge(s, state):
        counts, means, scatters, terms, live, cost, rowmin, rowarg, kept, removed = state
        i = jnp.argmin(rowmin).astype(jnp.int32)
        j = rowarg[i]
        a, b = jnp.minimum(i, j), jnp.maximum(i, j)
        n, mean, w = _merged(counts[a], means[a], scatters[a], counts[b], means[b], scatters[b])
        merged_term = cost[a, b] + terms[a] + terms[b]  # the pair's cost was term(a + b) - term(a) - term(b)
        counts = counts.at[a].set(n).at[b].set(0.0)
        means = means.at[a].set(mean)
        scatters = scatters.at[a].set(w)
        terms = terms.at[a].set(merged_term)
        live = live.at[b].set(False)
        new = costs_to(a, counts, means, scatters, terms, live)
        cost = cost.at[a].set(new).at[:, a].set(new).at[b].set(inf).at[:, b].set(inf)
        # Rows whose minimum pointed at a or b are rescanned; the others may only improve through a.
        stale = live & ((rowarg == a) | (rowarg == b))
        better = new < rowmin
        rowmin = jnp.where(better, new, rowmin)
        rowarg = jnp.where(better, a, rowarg)
        rowmin = rowmin.at[a].set(jnp.min(new)).at[b].set(inf)
        rowarg = rowarg.at[a].set(jnp.argmin(new).astype(jnp.int32))
        stale = stale.at[a].set(False)

        def rescan(carry):
            rowmin, rowarg, stale = carry
            r = jnp.argmax(stale)
            return (
                rowmin.at[r].set(jnp.min(cost[r])),
                rowarg.at[r].set(jnp.argmin(cost[r]).astype(jnp.int32)),
                stale.at[r].set(False),
            )

        rowmin, rowarg, _ = lax.while_loop(lambda c: jnp.any(c[2]), rescan, (rowmin, rowarg, stale))
        return (counts, means, scatters, terms, live, cost, rowmin, rowarg, kept.at[s].set(a), removed.at[s].set(b))

    out = lax.fori_loop(0, n_groups - 1, merge, state0)
    return out[8], out[9]


def merges(z: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The agglomeration of the rows of scaled data `z` (n, p): (groups, kept, removed).

    `groups` (n,) maps each row to its initial cluster (identical rows share one, as mclust's
    `dupPartition`); merge s joins initial-cluster index `removed[s]` into `kept[s]`. Rows of
    weight 0 are left out (group -1); other weights count as repeated rows.
    """
    z = np.asarray(z, np.float64)
    n, p = z.shape
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    use = w > 0
    groups = np.full(n, -1, np.int64)
    uniq, inverse = np.unique(z[use], axis=0, return_inverse=True)
    groups[use] = inverse.reshape(-1)
    g = uniq.shape[0]
    counts = np.bincount(groups[use], weights=w[use], minlength=g)
    alpha = max(float(np.sum(w[use][:, None] * (z[use] - np.average(z[use], axis=0, weights=w[use])) ** 2)), 0.0)
    alpha = max(alpha / (np.sum(w[use]) * p), np.finfo(np.float64).eps)
    if g == 1:
        return groups, np.zeros((0,), np.int32), np.zeros((0,), np.int32)
    m = B.pow2(g, 64)
    dt = float_dtype()  # float64 under jax_enable_x64, else float32
    pc = np.zeros(m)
    pc[:g] = counts
    pm = np.zeros((m, p))
    pm[:g] = uniq
    # Compiled for compile speed (`programs.compiler_options`): at most 512 clusters of 2 features
    # count as a tiny program (faithful: compile 0.5 s, run 0.5 s; the default options 2.0 s + 0.03 s).
    work = m * m * p * p
    kept, removed = _agglomerate.small(work)(  # NumPy arguments: no conversion programs compile
        pc.astype(dt),
        pm.astype(dt),
        np.zeros((m, p, p), dt),
        np.asarray(alpha, dt),
        np.int32(g),
    )
    return groups, np.asarray(kept)[: g - 1], np.asarray(removed)[: g - 1]


def cut(groups: np.ndarray, kept: np.ndarray, removed: np.ndarray, k: int) -> np.ndarray:
    """mclust's `hclass`: the rows' labels 0..k-1 when the agglomeration has k clusters left
    (-1 stays -1); clusters are numbered in the order of their first row."""
    g = len(kept) + 1
    k = min(k, g)
    parent = np.arange(g)
    for a, b in zip(kept[: g - k], removed[: g - k], strict=True):
        parent[parent == b] = a
    root = np.where(groups >= 0, parent[np.maximum(groups, 0)], -1)
    _, first = np.unique(root[root >= 0], return_index=True)
    order = np.argsort(first)
    labels = np.full(groups.shape, -1, np.int32)
    live_roots = np.unique(root[root >= 0])[order]
    for new, r in enumerate(live_roots):
        labels[root == r] = new
    return labels


def quantile_classes(x: np.ndarray, k: int) -> np.ndarray:
    """mclust's `qclass` for one feature: k classes between quantiles (labels 0..k-1)."""
    x = np.asarray(x, np.float64).reshape(-1)
    eps = (np.std(x, ddof=1) if x.size > 1 else 0.0) * np.sqrt(np.finfo(np.float64).eps)
    q = np.array([np.nan])
    m = k
    while len(q) < k + 1:
        m += 1
        q = np.unique(np.quantile(x, np.linspace(0.0, 1.0, m)))
    if len(q) > k + 1:  # drop the narrowest gaps, as R's q[-order(dq)[1:nr]]
        drop = np.argsort(np.diff(q), kind="stable")[: len(q) - k - 1]
        q = np.delete(q, drop)
    q[0], q[-1] = x.min() - eps, x.max() + eps
    return np.clip(np.searchsorted(q, x, side="right") - 1, 0, k - 1).astype(np.int32)


def hc_labels(
    x: np.ndarray, ks: tuple[int, ...], weights: np.ndarray | None = None, seed: int = 0, max_rows: int = HC_MAX_ROWS
) -> np.ndarray:
    """mclust's starting partitions: (len(ks), n) int32 labels, -1 for rows that take no part
    (weight 0, or outside the subsample of `max_rows` rows drawn with `seed` when n is larger)."""
    x = np.asarray(x, np.float64)
    n, d = x.shape
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    rows = np.flatnonzero(w > 0)
    if rows.size > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
    out = np.full((len(ks), n), -1, np.int32)
    if d == 1:
        for i, k in enumerate(ks):
            out[i, rows] = quantile_classes(x[rows, 0], k)
        return out
    groups, kept, removed = merges(svd_scaled(x[rows]), w[rows])
    for i, k in enumerate(ks):
        out[i, rows] = cut(groups, kept, removed, k)
    return out
