"""mclust's uniform noise component: `jaxmix.gmm_noise` and `select(..., noise=True)`."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import stats

import jaxmix
from jaxmix.models.gmm_noise import hypervolume


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0, 1, (150, 2)), rng.normal(6, 1, (150, 2)), rng.uniform(-10, 16, (30, 2))])
    return x.astype(np.float32)


def test_hypervolume_is_mclusts_hypvol():
    x = _data().astype(np.float64)
    box = np.prod(np.ptp(x, axis=0))
    c = x - x.mean(axis=0)
    pcs = c @ np.linalg.svd(c, full_matrices=False)[2].T
    assert hypervolume(x) == pytest.approx(min(box, np.prod(np.ptp(pcs, axis=0))))
    # R: mclust::hypvol of this data (written out and read back) = 593.3672
    assert hypervolume(x) == pytest.approx(593.3672, rel=1e-5)
    with pytest.raises(ValueError, match="no volume"):
        hypervolume(np.ones((10, 2)))


def test_noise_component_finds_the_scattered_rows_and_its_likelihood_is_the_mixtures():
    x = _data()
    r = jaxmix.gmm_noise(jax.random.key(0), x, 2, covariance_type="spherical")
    labels = np.asarray(r.labels)
    assert 0.07 < float(r.noise_weight) < 0.12  # 30 of 330 rows are uniform noise
    assert np.sum(labels[300:] == -1) >= 24 and np.sum(labels[:300] == -1) <= 5
    # The log-likelihood is that of pi_0 / V + sum_k pi_k N_k, from the returned parameters.
    p = r.params
    w = (1 - float(r.noise_weight)) * np.asarray(p.weights, np.float64)
    dens = float(r.noise_weight) / hypervolume(x) + sum(
        w[j] * stats.multivariate_normal(np.asarray(p.means[j], np.float64), float(p.covariances[j])).pdf(x)
        for j in range(2)
    )
    assert float(r.log_likelihood) == pytest.approx(np.mean(np.log(dens)), rel=1e-5)
    n_params = 2 * 2 + 2 + 1 + 2  # means, variances, weights, and mclust's two for the noise
    assert float(r.bic) == pytest.approx(-2 * np.sum(np.log(dens)) + n_params * np.log(330), rel=1e-5)
    # Same R run (Mclust(x, G = 2, "VII", initialization = list(noise = these rows))): loglik -1326.034
    assert float(r.log_likelihood) * 330 == pytest.approx(-1326.034, abs=0.05)
    # The likelihood never falls along the EM iterations.
    h = np.asarray(r.history)[: int(r.n_iter)]
    assert np.all(np.diff(h) >= -1e-5)


def test_noise_init_and_errors():
    x = _data()
    mask = np.zeros(330, bool)
    mask[300:] = True
    r = jaxmix.gmm_noise(jax.random.key(0), x, 2, covariance_type="full", noise_init=mask)
    assert np.sum(np.asarray(r.labels)[300:] == -1) >= 24
    with pytest.raises(ValueError, match="noise_init must be"):
        jaxmix.gmm_noise(jax.random.key(0), x, 2, noise_init=np.zeros(5, bool))
    with pytest.raises(ValueError, match="hypervolume must be"):
        jaxmix.gmm_noise(jax.random.key(0), x, 2, hypervolume=-1.0)


def test_select_with_noise_picks_the_generating_clusters_not_an_extra_one_for_the_outliers():
    x = _data()
    key = jax.random.key(0)
    plain = jaxmix.select(key, x, range(1, 5), ("spherical",), n_init=2)
    noisy = jaxmix.select(key, x, range(1, 5), ("spherical",), n_init=2, noise=True)
    assert plain.best_k == 3  # without a noise component the outliers take a component
    assert noisy.best_k == 2 and noisy.noise_weight is not None
    assert 0.07 < noisy.noise_weight[1, 0] < 0.12
    assert int(noisy.n_parameters[1, 0]) == int(plain.n_parameters[1, 0]) + 2
    m = noisy.summary()
    assert m.noise_weight == pytest.approx(noisy.noise_weight[1, 0])
    assert sum(m.cluster_sizes) == 330 and m.cluster_sizes[0] == int(np.sum(np.asarray(noisy.best.labels) < 0))
    assert "noise proportion" in str(m)
