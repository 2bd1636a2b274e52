"""mclust's start (init="hc"): model-based hierarchical agglomeration, quantile classes, scale invariance,
and `SelectResult.summary()`."""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest

import jaxmix
from jaxmix.models import hierarchical as H


def _term(rows: np.ndarray, alpha: float) -> float:
    """Fraley's criterion of one cluster, written out from the formula (float64 NumPy)."""
    n, d = rows.shape
    w = (rows - rows.mean(axis=0)).T @ (rows - rows.mean(axis=0))
    trace_part = (np.trace(w) + alpha) / n
    if n <= d:
        return n * np.log(trace_part)
    det = np.linalg.det(w / n)
    return n * np.log(max(det, 0.0) + trace_part)


def _reference_merges(z: np.ndarray) -> list[list[frozenset[int]]]:
    """Brute force: every partition from n singletons down to one cluster, each merge the cheapest pair."""
    n, d = z.shape
    alpha = float(np.sum((z - z.mean(axis=0)) ** 2)) / (n * d)
    clusters = [frozenset([i]) for i in range(n)]
    out = [list(clusters)]
    while len(clusters) > 1:
        best = None
        for a, b in itertools.combinations(range(len(clusters)), 2):
            ca, cb = clusters[a], clusters[b]
            cost = _term(z[sorted(ca | cb)], alpha) - _term(z[sorted(ca)], alpha) - _term(z[sorted(cb)], alpha)
            if best is None or cost < best[0]:
                best = (cost, a, b)
        assert best is not None
        _, a, b = best
        merged = clusters[a] | clusters[b]
        clusters = [c for i, c in enumerate(clusters) if i not in (a, b)] + [merged]
        out.append(list(clusters))
    return out


def _partition(labels: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(labels == v).tolist()) for v in np.unique(labels[labels >= 0])}


@pytest.mark.parametrize("d", [2, 3])
def test_agglomeration_equals_a_brute_force_reference_of_fraleys_criterion(d):
    rng = np.random.default_rng(d)
    z = np.concatenate([rng.normal(c, 0.3, size=(6, d)) for c in (0.0, 3.0, 7.0)])
    ref = _reference_merges(z)
    groups, kept, removed = H.merges(z)
    for k in range(1, len(z) + 1):
        labels = H.cut(groups, kept, removed, k)
        assert _partition(labels) == set(ref[len(z) - k]), k


def test_hand_checked_agglomeration_of_a_small_example():
    # Scaled data z, d = 2, alpha = mean per-coordinate variance = (1.6875 + 0.2425) / 2 = 0.965.
    z = np.array([[0.0, 0.0], [0.1, 0.0], [3.0, 0.0], [3.0, 1.0]])
    alpha = (np.var(z[:, 0]) + np.var(z[:, 1])) / 2
    # Pairs (l = 2 <= d): cost = 2 log((|dz|^2 / 2 + alpha) / 2) - 2 log(alpha), increasing in the distance,
    # so the first merge is the closest pair {0, 1}; then {2, 3} (distance 1) costs
    # 2 log((0.5 + alpha) / 2) - 2 log(alpha) = -1.0 vs {0, 1} + 2 (three rows, det > 0) costing more:
    pair_23 = 2 * np.log((0.5 + alpha) / 2) - 2 * np.log(alpha)
    three = _term(z[[0, 1, 2]], alpha) - _term(z[[0, 1]], alpha) - np.log(alpha)
    assert pair_23 < three
    groups, kept, removed = H.merges(z)
    assert _partition(H.cut(groups, kept, removed, 3)) == {frozenset({0, 1}), frozenset({2}), frozenset({3})}
    assert _partition(H.cut(groups, kept, removed, 2)) == {frozenset({0, 1}), frozenset({2, 3})}
    assert _partition(H.cut(groups, kept, removed, 1)) == {frozenset(range(4))}
    # Identical rows start in one cluster (mclust's dupPartition) and never split.
    y = np.concatenate([z, z[:2]])
    g, kk, rr = H.merges(y)
    lab = H.cut(g, kk, rr, 4)
    assert lab[4] == lab[0] and lab[5] == lab[1] and len(np.unique(lab)) == 4


def test_quantile_classes_are_mclusts_qclass():
    # R: mclust:::qclass(1:10, 3) = 1 1 1 2 2 2 3 3 3 3
    np.testing.assert_array_equal(H.quantile_classes(np.arange(1.0, 11.0), 3), [0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    labels = H.hc_labels(np.arange(1.0, 11.0)[:, None], (1, 3))
    np.testing.assert_array_equal(labels[0], np.zeros(10))
    np.testing.assert_array_equal(labels[1], [0, 0, 0, 1, 1, 1, 2, 2, 2, 2])


def test_hc_partitions_do_not_depend_on_the_units_of_the_columns():
    x = np.asarray(jaxmix.datasets.load_faithful(), np.float64)
    scaled = x * np.array([1000.0, 1.0])
    a = H.hc_labels(x, (2, 3, 4))
    b = H.hc_labels(scaled, (2, 3, 4))
    for i in range(3):
        assert _partition(a[i]) == _partition(b[i])


def test_subsample_of_large_data_and_zero_weight_rows_take_no_part():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2))
    w = np.ones(50)
    w[:5] = 0.0
    labels = H.hc_labels(x, (3,), w, max_rows=30)
    assert np.all(labels[0, :5] == -1)
    assert np.sum(labels[0] >= 0) == 30 and set(np.unique(labels[0][labels[0] >= 0])) == {0, 1, 2}


def test_select_with_hc_picks_the_same_model_when_one_column_is_multiplied_by_1000():
    x = np.asarray(jaxmix.datasets.load_faithful())
    key = jax.random.key(0)
    kw = dict(n_components=range(1, 5), covariance_types=("tied", "full", "diag"), init="hc", n_init=2)
    a = jaxmix.select(key, x, **kw)
    b = jaxmix.select(key, x * np.array([1000.0, 1.0], np.float32), **kw)
    assert (a.best_k, a.best_covariance_type) == (b.best_k, b.best_covariance_type) == (3, "tied")
    # BIC shifts by 2 n log(1000) under the change of units; the fits are the same up to float32
    # round-off (which may end a long EM in a neighbouring optimum: within 1 BIC unit).
    np.testing.assert_allclose(b.bic - a.bic, 2 * 272 * np.log(1000.0), atol=1.0)
    assert np.median(np.abs(b.bic - a.bic - 2 * 272 * np.log(1000.0))) < 0.01


def test_gmm_with_hc_starts_from_the_partition_and_equals_the_select_cell():
    x = np.asarray(jaxmix.datasets.load_faithful())
    key = jax.random.key(1)
    g = jaxmix.gmm(key, x, 2, covariance_type="full", init="hc", max_iter=500, tol=1e-6)
    s = jaxmix.select(key, x, [2], ("full",), init="hc", n_init=1)
    np.testing.assert_allclose(float(g.log_likelihood), float(s.log_likelihood[0, 0]), rtol=1e-5)
    # One M-step from the hc partition, then EM: the start's partition is the fit's first responsibilities.
    g0 = jaxmix.gmm(key, x, 2, covariance_type="full", init="hc", max_iter=1)
    part = H.hc_labels(x, (2,))[0]
    means = np.stack([x[part == j].mean(axis=0) for j in range(2)])
    # After one EM iteration from the partition's M-step the means moved little from the partition's means.
    assert np.allclose(np.sort(np.asarray(g0.params.means)[:, 0]), np.sort(means[:, 0]), atol=0.2)


def test_hc_is_refused_inside_jit_with_a_clear_error():
    x = np.asarray(jaxmix.datasets.load_faithful())
    with pytest.raises(ValueError, match="init='hc'"):
        jax.jit(lambda v: jaxmix.gmm(jax.random.key(0), v, 2, init="hc").params.means)(x)


def test_summary_fields_equal_the_tables_numbers():
    x = np.asarray(jaxmix.datasets.load_faithful())
    s = jaxmix.select(jax.random.key(0), x, range(1, 4), ("tied", "spherical"), n_init=2)
    m = s.summary(parameters=True)
    i, j = s.n_components.index(s.best_k), s.covariance_types.index(s.best_covariance_type)
    assert (m.covariance_type, m.n_components) == (s.best_covariance_type, s.best_k)
    assert m.bic == pytest.approx(float(s.bic[i, j])) and m.icl == pytest.approx(float(s.icl[i, j]))
    assert m.df == int(s.n_parameters[i, j]) and m.n == 272
    assert m.log_likelihood == pytest.approx(float(s.log_likelihood[i, j]) * 272)
    assert m.mclust_name == "EEE" and m.description == "ellipsoidal, equal volume, shape and orientation"
    assert sum(m.cluster_sizes) == 272 and len(m.cluster_sizes) == s.best_k
    np.testing.assert_array_equal(m.cluster_sizes, np.bincount(np.asarray(s.best.labels), minlength=s.best_k))
    assert m.top[0] == (s.best_covariance_type, s.best_k, pytest.approx(float(s.bic[i, j])))
    assert [t[2] for t in m.top] == sorted(t[2] for t in m.top)
    text = str(m)
    assert "log-likelihood" in text and "Clustering table:" in text and "Mixing probabilities:" in text
    assert s.summary().parameters is None
