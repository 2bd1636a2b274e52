"""Mini-batch k-means and online EM (jaxmix.capabilities.online), and MiniBatchKMeans's own behaviour.

Compile time dominates: the tests share a few data shapes (BLOBS: 2048 x 2,
batches of 256; GMM_X: 2048 x 2, batches of 256; tiny cases of 20 x 3).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.cluster import MiniBatchKMeans as SkMiniBatchKMeans
from sklearn.cluster._kmeans import _mini_batch_step

import jaxmix
from jaxmix.capabilities.online import (
    minibatch_kmeans,
    minibatch_kmeans_init,
    minibatch_kmeans_update,
    online_gmm,
    online_gmm_init,
    online_gmm_update,
)
from jaxmix.sklearn import MiniBatchKMeans

TRUE_CENTRES = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]], np.float32)


def _blobs(offset=0.0):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=2048)
    x = TRUE_CENTRES[labels] + 0.5 * rng.normal(size=(2048, 2))
    return (x + offset).astype(np.float32)


def _gmm_data():
    rng = np.random.default_rng(1)
    z = rng.uniform(size=2048) < 0.3
    a = rng.normal(size=(2048, 2)) * [0.7, 0.5] + [-3.0, 0.0]
    b = rng.normal(size=(2048, 2)) @ np.array([[1.0, 0.4], [0.0, 0.8]]) + [3.0, 1.0]
    return np.where(z[:, None], a, b).astype(np.float32)


def _match(found, true):
    """Distance from each true centre to the nearest found centre."""
    d = np.linalg.norm(np.asarray(found)[None] - np.asarray(true)[:, None], axis=-1)
    return d.min(axis=1)


BLOBS = _blobs()
GMM_X = _gmm_data()


# --------------------------------------------------------------- mini-batch k-means


def test_minibatch_kmeans_finds_blobs_and_matches_full_kmeans():
    x = BLOBS.copy()
    r = minibatch_kmeans(jax.random.key(0), x, 3, batch_size=256, n_passes=3)
    np.testing.assert_array_equal(x, BLOBS)  # input untouched
    assert r.n_steps == 24 and r.n_passes == 3 and not r.converged
    assert r.history.shape == (24,) and bool(jnp.all(jnp.isfinite(r.history)))
    assert _match(r.centers, TRUE_CENTRES).max() < 0.1
    full = jaxmix.kmeans(jax.random.key(0), x, 3)
    assert float(r.inertia) <= 1.03 * float(full.inertia)
    assert r.labels.shape == (2048,)
    # Counts: every row's weight went to some centre, once per pass (no reassignment after the start).
    assert float(jnp.sum(r.state.counts)) == pytest.approx(3 * 2048, rel=0.02)


def test_minibatch_kmeans_far_from_origin_float32():
    """Statistics about the first batch's mean: an offset of 1e4 changes nothing but the offset."""
    near = minibatch_kmeans(jax.random.key(0), BLOBS, 3, batch_size=256, n_passes=3)
    far = minibatch_kmeans(jax.random.key(0), _blobs(1e4), 3, batch_size=256, n_passes=3)
    assert _match(np.asarray(far.centers) - 1e4, near.centers).max() < 0.02
    assert float(far.inertia) == pytest.approx(float(near.inertia), rel=0.02)


def test_minibatch_kmeans_early_stopping():
    r = minibatch_kmeans(jax.random.key(0), BLOBS, 3, batch_size=256, n_passes=20, max_no_improvement=3)
    assert r.converged and r.n_steps < 20 * 8
    r = minibatch_kmeans(jax.random.key(0), BLOBS, 3, batch_size=256, n_passes=3, max_steps=5)
    assert r.n_steps == 5 and r.n_passes == 1


def test_update_rule_matches_scikit_learn():
    """Same start, same batches, no reassignment: scikit-learn's centres, counts and batch inertia."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 3)) + 5.0
    w = rng.uniform(0.5, 2.0, size=60)
    init = x[[0, 1, 2, 30]].copy()
    with jax.enable_x64(True):
        s = minibatch_kmeans_init(jax.random.key(0), x[:20], 4, init=init)
        centers, counts = init.copy(), np.zeros(4)
        for i in range(3):
            xb, wb = x[20 * i : 20 * i + 20], w[20 * i : 20 * i + 20]
            new = np.empty_like(centers)
            sk_inertia = _mini_batch_step(xb, wb, centers, new, counts, np.random.RandomState(0), False, 0.0)
            centers = new
            s, inertia = minibatch_kmeans_update(s, xb, wb, reassignment_ratio=0.0)
            np.testing.assert_allclose(np.asarray(s.centers), centers, atol=1e-5)
            np.testing.assert_allclose(np.asarray(s.counts), counts, rtol=1e-12)
            assert float(inertia) == pytest.approx(float(sk_inertia), rel=1e-6)
    # The estimator's partial_fit, same start, float32.
    sk = SkMiniBatchKMeans(4, init=init, n_init=1, reassignment_ratio=0.0)
    ours = MiniBatchKMeans(4, init=init, n_init=1, reassignment_ratio=0.0)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    for i in range(3):
        sl = slice(20 * i, 20 * i + 20)
        sk.partial_fit(x32[sl], sample_weight=w32[sl])
        ours.partial_fit(x32[sl], sample_weight=w32[sl])
    np.testing.assert_allclose(ours.cluster_centers_, sk.cluster_centers_, atol=1e-5)
    assert ours.n_steps_ == sk.n_steps_ == 3
    np.testing.assert_array_equal(ours.labels_, sk.labels_)
    assert ours.inertia_ == pytest.approx(sk.inertia_, rel=1e-5)


def test_reassignment_moves_a_dead_centre_onto_a_batch_row():
    """scikit-learn's rule: a centre with count < ratio * max jumps to a random row; its count becomes the min."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 3)).astype(np.float32)
    init = np.concatenate([x[:3], np.full((1, 3), 100.0, np.float32)])
    s = minibatch_kmeans_init(jax.random.key(0), x, 4, init=init)
    s1, _ = minibatch_kmeans_update(s, x, reassignment_ratio=0.01)
    c = np.asarray(s1.centers)
    assert np.min(np.abs(x - c[3]).sum(axis=1)) < 1e-5  # centre 3 now sits on a row of the batch
    counts = np.asarray(s1.counts)
    assert counts[3] == counts[:3].min() and counts[:3].sum() == 20
    s0, _ = minibatch_kmeans_update(s, x, reassignment_ratio=0.0)
    np.testing.assert_array_equal(np.asarray(s0.centers)[3], init[3])


def test_stream_equals_init_then_updates_and_partial_fit():
    """The documented sense: seeds from the first batch, then every batch (the first included) updates."""
    xs = [BLOBS[i : i + 256] for i in range(0, 1024, 256)]
    key = jax.random.key(5)
    r = minibatch_kmeans(key, xs, 3, reassignment_ratio=0.0, n_passes=2)
    s = minibatch_kmeans_init(key, xs[0], 3)
    for _ in range(2):
        for xb in xs:
            s, _ = minibatch_kmeans_update(s, xb, reassignment_ratio=0.0, smoothing=2 / 5)
    np.testing.assert_allclose(np.asarray(r.centers), np.asarray(s.centers), rtol=1e-6, atol=1e-6)
    assert r.labels is None and r.inertia is None and r.n_steps == 8 and r.n_passes == 2
    # A generator (read once) and (x, weights) pairs.
    g = minibatch_kmeans(key, ((xb, np.ones(256, np.float32)) for xb in xs), 3, reassignment_ratio=0.0)
    s = minibatch_kmeans_init(key, xs[0], 3)
    for xb in xs:
        s, _ = minibatch_kmeans_update(s, xb, reassignment_ratio=0.0)
    np.testing.assert_allclose(np.asarray(g.centers), np.asarray(s.centers), rtol=1e-6, atol=1e-6)
    # The estimator: partial_fit seeds from its first X with its random_state's key (weight-0 padding aside).
    est = MiniBatchKMeans(3, random_state=0, reassignment_ratio=0.0)
    for xb in xs:
        est.partial_fit(xb)
    from jaxmix.sklearn._base import key_from

    s = minibatch_kmeans_init(key_from(0), xs[0], 3)
    for xb in xs:
        s, _ = minibatch_kmeans_update(s, xb, reassignment_ratio=0.0)
    np.testing.assert_allclose(est.cluster_centers_, np.asarray(s.centers), rtol=1e-6, atol=1e-6)
    assert est.n_steps_ == 4


def test_update_is_jittable():
    xs = jnp.stack([BLOBS[i : i + 256] for i in range(0, 1024, 256)])
    s0 = minibatch_kmeans_init(jax.random.key(1), xs[0], 3)

    @jax.jit
    def run(s):
        return jax.lax.scan(lambda s, xb: minibatch_kmeans_update(s, xb), s, xs)

    s_scan, inertias = run(s0)
    s = s0
    for xb in xs:
        s, _ = minibatch_kmeans_update(s, xb)
    np.testing.assert_allclose(np.asarray(s_scan.centers), np.asarray(s.centers), rtol=1e-5, atol=1e-5)
    assert inertias.shape == (4,)


def test_estimator_fit_then_partial_fit():
    est = MiniBatchKMeans(3, batch_size=256, max_iter=3, random_state=0).fit(BLOBS)
    assert _match(est.cluster_centers_, TRUE_CENTRES).max() < 0.1
    assert est.n_iter_ <= 3 and est.n_steps_ <= 24 and est.labels_.dtype == np.int32
    assert est.inertia_ == pytest.approx(-est.score(BLOBS))
    before = est.cluster_centers_.copy()
    est.partial_fit(BLOBS[:256])
    assert est.n_steps_ >= 2 and np.abs(est.cluster_centers_ - before).max() < 0.1
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(np.ones((5, 3), np.float32))


# --------------------------------------------------------------- online EM


def test_online_gmm_recovers_full_em_and_likelihood_increases():
    x = GMM_X.copy()
    g = online_gmm(jax.random.key(0), x, 2, batch_size=256, n_passes=3)
    np.testing.assert_array_equal(x, GMM_X)
    full = jaxmix.gmm(jax.random.key(0), x, 2)
    order_o = np.argsort(np.asarray(g.params.means)[:, 0])
    order_f = np.argsort(np.asarray(full.params.means)[:, 0])
    np.testing.assert_allclose(
        np.asarray(g.params.weights)[order_o], np.asarray(full.params.weights)[order_f], atol=0.03
    )
    np.testing.assert_allclose(np.asarray(g.params.means)[order_o], np.asarray(full.params.means)[order_f], atol=0.1)
    np.testing.assert_allclose(
        np.asarray(g.params.covariances)[order_o], np.asarray(full.params.covariances)[order_f], atol=0.15
    )
    ll = float(jnp.mean(jaxmix.log_prob(g.params, x)))
    assert ll == pytest.approx(float(full.log_likelihood), abs=0.02)
    assert g.history.shape == (24,) and g.n_steps == 24
    # From a poor start the batch log-likelihood increases on average. The start is poor by
    # construction: the first batch (which seeds the means) holds rows of the larger component only,
    # so both random rows lie in it; then 24 shuffled batches of all rows follow.
    first = x[x[:, 0] > 0.5][:256]
    rng = np.random.default_rng(0)
    batches = [first] + [x[rng.permutation(len(x))][i : i + 256] for _ in range(3) for i in range(0, len(x), 256)]
    h = np.asarray(online_gmm(jax.random.key(0), batches, 2, init="random_from_data").history)
    assert h.shape == (25,) and h[-8:].mean() > h[1:4].mean() + 1.0  # measured: -5.9 -> -3.2
    assert jaxmix.bic(g.params, x) > 0 and jaxmix.predict(g.params, x).shape == (2048,)


def test_online_gmm_far_from_origin():
    near = online_gmm(jax.random.key(0), GMM_X, 2, batch_size=256, n_passes=3)
    far = online_gmm(jax.random.key(0), GMM_X + np.float32(1e4), 2, batch_size=256, n_passes=3)
    np.testing.assert_allclose(
        np.sort(np.asarray(far.params.means)[:, 0]) - 1e4, np.sort(near.params.means[:, 0]), atol=0.05
    )
    np.testing.assert_allclose(
        np.sort(np.asarray(far.params.covariances).ravel()),
        np.sort(np.asarray(near.params.covariances).ravel()),
        atol=0.05,
    )


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_online_gmm_stream_equals_init_then_updates(covariance_type):
    xs = [GMM_X[i : i + 256] for i in range(0, 768, 256)]
    key = jax.random.key(2)
    g = online_gmm(key, xs, 2, covariance_type=covariance_type, kappa=0.8, t0=1.0)
    s = online_gmm_init(key, xs[0], 2, covariance_type=covariance_type, kappa=0.8, t0=1.0)
    lls = []
    for xb in xs:
        s, ll = online_gmm_update(s, xb)
        lls.append(float(ll))
    p, q = g.params, s.params
    assert p.covariance_type == covariance_type and p.covariances.shape == q.covariances.shape
    for a, b in [(p.weights, q.weights), (p.means, q.means), (p.covariances, q.covariances)]:
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(g.history), lls, rtol=1e-6)
    assert bool(jnp.all(jnp.isfinite(jaxmix.log_prob(p, GMM_X[:256]))))


def test_online_gmm_step_size_schedule():
    """rho_t = (t + t0)^-kappa: with kappa = 1, t0 = 0 the statistics are the plain average of all batches."""
    xs = [GMM_X[i : i + 256] for i in range(0, 768, 256)]
    s = online_gmm_init(jax.random.key(2), xs[0], 2, kappa=1.0, t0=0.0, burn_in=3)
    for xb in xs:
        s, _ = online_gmm_update(s, xb)
    # burn_in = 3: parameters never left the start, so all three E-steps used them; the running
    # statistics are the mean of the three batches' statistics under those parameters.
    s0 = online_gmm_init(jax.random.key(2), xs[0], 2)
    np.testing.assert_allclose(np.asarray(s.centered_params.means), np.asarray(s0.centered_params.means))
    from jaxmix.models.gmm import e_step

    p0 = s0.centered_params
    batch = [e_step(jnp.asarray(xb), jnp.ones(256), s0.shift, p0, 256) for xb in xs]
    mean_sums = sum(np.asarray(b.sums) for b in batch) / 768
    np.testing.assert_allclose(np.asarray(s.stats.sums), mean_sums, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------- errors


def test_errors():
    key = jax.random.key(0)
    x = BLOBS[:256]
    with pytest.raises(ValueError, match="2-D"):
        minibatch_kmeans_init(key, x[:, 0], 3)
    with pytest.raises(ValueError, match="first batch"):
        minibatch_kmeans_init(key, x[:2], 3)
    with pytest.raises(ValueError, match="first batch"):
        online_gmm_init(key, x[:1], 2)
    with pytest.raises(ValueError, match="NaN"):
        minibatch_kmeans(key, np.where(np.arange(256)[:, None] == 3, np.nan, x), 3)
    with pytest.raises(ValueError, match="empty"):
        minibatch_kmeans(key, [x, x[:0]], 3)
    with pytest.raises(ValueError, match="empty"):
        minibatch_kmeans(key, [], 3)
    with pytest.raises(ValueError, match="features"):
        minibatch_kmeans(key, [x, np.ones((256, 3), np.float32)], 3)
    with pytest.raises(ValueError, match="features"):
        online_gmm(key, [GMM_X[:256], np.ones((256, 3), np.float32)], 2)
    with pytest.raises(ValueError, match="NaN"):
        online_gmm(key, [GMM_X[:256], np.full((256, 2), np.inf, np.float32)], 2)
    with pytest.raises(ValueError, match="re-iterable"):
        minibatch_kmeans(key, iter([x]), 3, n_passes=2)
    with pytest.raises(ValueError, match="pairs"):
        minibatch_kmeans(key, [x], 3, weights=np.ones(256))
    with pytest.raises(TypeError, match="iterable"):
        minibatch_kmeans(key, 3.0, 3)
    with pytest.raises(TypeError, match="key"):
        minibatch_kmeans(0, x, 3)
    for kappa in (0.5, 1.5, 0.0):
        with pytest.raises(ValueError, match="kappa"):
            online_gmm(key, GMM_X, 2, kappa=kappa)
    with pytest.raises(ValueError, match="t0"):
        online_gmm(key, GMM_X, 2, t0=-1.0)
    with pytest.raises(ValueError, match="covariance_type"):
        online_gmm(key, GMM_X, 2, covariance_type="banana")
    with pytest.raises(ValueError, match="reassignment_ratio"):
        minibatch_kmeans(key, x, 3, reassignment_ratio=-1.0)
    with pytest.raises(ValueError, match="batch_size"):
        minibatch_kmeans(key, x, 3, batch_size=0)
    with pytest.raises(ValueError, match="weights"):
        minibatch_kmeans(key, x, 3, weights=-np.ones(256))
    s = minibatch_kmeans_init(key, x, 3)
    with pytest.raises(ValueError, match="features"):
        minibatch_kmeans_update(s, np.ones((10, 5), np.float32))
    with pytest.raises(ValueError, match="smoothing"):
        minibatch_kmeans_update(s, x, smoothing=2.0)
    with pytest.raises(ValueError, match="n_clusters"):
        MiniBatchKMeans(n_clusters=5).partial_fit(x[:3])


def test_progress_bar(capsys):
    pytest.importorskip("tqdm")
    minibatch_kmeans(jax.random.key(0), BLOBS, 3, batch_size=256, n_passes=1, progress=True)
    online_gmm(jax.random.key(0), [GMM_X[:256]], 2, progress=True)
    assert "jaxmix" in capsys.readouterr().err


def test_stream_namespace_reads_memmaps_and_callables_in_order(tmp_path):
    """`jaxmix.stream.minibatch_kmeans` / `online_gmm` take any source `as_source` accepts."""
    import jaxmix.stream as js

    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(size=(256, 2)) + c for c in ((0, 0), (6, 6))]).astype(np.float32)
    x = x[rng.permutation(len(x))]
    path = tmp_path / "x.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")
    r = js.minibatch_kmeans(jax.random.key(0), mm, 2, batch_size=128, n_passes=2)
    centres = np.sort(np.asarray(r.centers)[:, 0])
    np.testing.assert_allclose(centres, [0.0, 6.0], atol=0.3)
    g = js.online_gmm(jax.random.key(0), lambda: (x[i : i + 128] for i in range(0, len(x), 128)), 2, batch_size=128)
    np.testing.assert_allclose(np.sort(np.asarray(g.params.weights)), [0.5, 0.5], atol=0.05)
    assert np.all(np.isfinite(np.asarray(g.params.means)))


def test_minibatch_estimator_save_load_round_trip(tmp_path):
    from jaxmix.sklearn import MiniBatchKMeans

    x = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    est = MiniBatchKMeans(n_clusters=3, batch_size=64, random_state=0).fit(x)
    jaxmix.save(est, tmp_path / "mbk.npz")
    back = jaxmix.load(tmp_path / "mbk.npz")
    np.testing.assert_array_equal(back.predict(x), est.predict(x))
    np.testing.assert_allclose(back.cluster_centers_, est.cluster_centers_)
