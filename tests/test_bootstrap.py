"""The parametric bootstrap LRT for k vs k + 1 (mclust's mclustBootstrapLRT) and bootstrap standard errors."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import stats

import jaxmix


def test_lrt_statistics_and_p_values_follow_their_definitions():
    x = np.asarray(jaxmix.datasets.load_faithful())
    t = jaxmix.bootstrap_lrt(jax.random.key(0), x, "tied", max_components=2, n_boot=39, n_init=2)
    assert t.n_components == (1, 2) and t.replicates.shape == (39, 2)
    s = jaxmix.select(jax.random.split(jax.random.key(0))[0], x, range(1, 4), ("tied",), init="hc", n_init=2, tol=1e-5)
    ll = s.log_likelihood[:, 0] * 272
    np.testing.assert_allclose(t.observed, 2 * np.diff(ll)[:2], rtol=1e-6)
    for j in range(2):
        rep = t.replicates[:, j]
        ok = np.isfinite(rep)
        assert t.p_values[j] == pytest.approx((1 + np.sum(rep[ok] >= t.observed[j])) / (ok.sum() + 1))
    # Old Faithful has two clusters beyond doubt: no replicate of the one-component null comes near.
    assert t.p_values[0] == pytest.approx(1 / 40) and np.nanmax(t.replicates[:, 0]) < t.observed[0] / 5
    assert "1 vs 2" in str(t) and "bootstrap p-value" in str(t)


def test_lrt_p_values_are_uniform_under_the_null():
    # Data from one Gaussian: the p-values of "1 vs 2" are (discretely) uniform.
    rng = np.random.default_rng(0)
    p = []
    for i in range(40):
        x = rng.normal(size=(40, 1)).astype(np.float32)
        t = jaxmix.bootstrap_lrt(jax.random.key(i), x, "V", max_components=1, n_boot=19, n_init=1)
        p.append(float(t.p_values[0]))
    assert stats.kstest(p, "uniform").pvalue > 0.001
    assert 0.25 < np.mean(p) < 0.75


def test_lrt_sequence_stops_at_the_first_p_value_above_level():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, (60, 2)), rng.normal(8, 1, (60, 2))]).astype(np.float32)
    t = jaxmix.bootstrap_lrt(jax.random.key(2), x, "spherical", n_boot=19, n_init=1, level=0.05)
    assert t.p_values[0] == pytest.approx(1 / 20)  # 1 vs 2: two clusters
    assert t.p_values[-1] > 0.05 and np.all(t.p_values[:-1] <= 0.05)


def test_bootstrap_standard_errors_of_one_gaussian_match_the_textbook_formula():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 2)).astype(np.float32) * np.array([1.0, 3.0], np.float32)
    g = jaxmix.gmm(jax.random.key(0), x, 1, covariance_type="diag")
    se = jaxmix.bootstrap_se(jax.random.key(1), g, x, n_boot=200)
    assert se.n_boot == 200 and se.means.shape == (1, 2) and se.covariances.shape == (1, 2)
    np.testing.assert_allclose(se.means[0], x.std(axis=0) / np.sqrt(400), rtol=0.25)
    # Var of a sample variance: 2 sigma^4 / n for Gaussian data.
    np.testing.assert_allclose(se.covariances[0], np.sqrt(2 / 400) * x.var(axis=0), rtol=0.25)
    assert se.weights[0] < 1e-6


def test_bootstrap_inputs_are_checked():
    x = np.asarray(jaxmix.datasets.load_faithful())
    with pytest.raises(ValueError, match="n_boot"):
        jaxmix.bootstrap_lrt(jax.random.key(0), x, "tied", n_boot=0)
    with pytest.raises(TypeError, match="GMMResult or GMMParams"):
        jaxmix.bootstrap_se(jax.random.key(0), "not a fit", x)
    g = jaxmix.gmm(jax.random.key(0), x, 2)
    with pytest.raises(ValueError, match="features"):
        jaxmix.bootstrap_se(jax.random.key(0), g, x[:, :1])
