"""k-means: oracles (hand-computed, numpy, scikit-learn) and invariants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_blobs
from sklearn.cluster import KMeans

import jaxmix
from jaxmix.engine import bounds as _bounds
from jaxmix.engine import random as jr
from jaxmix.models import kmeans as _kmeans
from jaxmix.models import kmeans_steps as _steps

KEY = jax.random.key(0)
TOY = np.array([[0, 0], [0.5, 0], [0.5, 1], [1, 1]], dtype=np.float32)


def test_sklearn_hand_computed_case():
    r = jaxmix.kmeans(KEY, TOY, 2, init=np.array([[0, 0], [1, 1]]), weights=[3, 1, 1, 3])
    np.testing.assert_allclose(r.inertia, 0.375, rtol=1e-6)
    np.testing.assert_allclose(r.centers, [[0.125, 0], [0.875, 1]], atol=1e-7)
    np.testing.assert_array_equal(r.labels, [0, 0, 1, 1])
    assert int(r.n_iter) == 2 and bool(r.converged) and not bool(r.nonfinite)


def test_sklearn_relocation_case():
    # The second centre is empty at the first iteration and must be re-seeded.
    r = jaxmix.kmeans(KEY, TOY, 2, init=np.array([[0.5, 0.5], [3, 3]]))
    np.testing.assert_allclose(r.inertia, 0.25, rtol=1e-6)
    np.testing.assert_allclose(r.centers, [[0.25, 0], [0.75, 1]], atol=1e-7)
    np.testing.assert_array_equal(r.labels, [0, 0, 1, 1])
    assert int(r.n_iter) == 3


def numpy_lloyd_step(x, w, c):
    d = ((x[:, None, :] - c[None]) ** 2).sum(-1)
    lab = d.argmin(1)
    new = c.copy()
    for j in range(len(c)):
        m = lab == j
        if w[m].sum() > 0:
            new[j] = (w[m, None] * x[m]).sum(0) / w[m].sum()
    return new, (w * d.min(1)).sum()


@pytest.mark.parametrize("chunk_size", [None, 7])
def test_one_iteration_equals_numpy(chunk_size):
    x, _ = make_blobs(1, n=50, d=3, k=4, dtype=np.float64)
    w = np.random.default_rng(2).uniform(0.5, 2.0, size=50)
    c0 = x[:4].copy()
    expected, j0 = numpy_lloyd_step(x, w, c0)
    r = jaxmix.kmeans(KEY, x, 4, init=c0, weights=w, max_iter=1, chunk_size=chunk_size)
    np.testing.assert_allclose(r.centers, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r.history[0], j0, rtol=1e-5)
    assert int(r.n_iter) == 1


def test_agrees_with_sklearn_from_same_init():
    x, _ = make_blobs(3, n=2000, d=5, k=6, spread=1.5)
    c0 = x[np.random.default_rng(4).choice(len(x), 6, replace=False)]
    ref = KMeans(6, init=c0, n_init=1, tol=0.0, max_iter=300, algorithm="lloyd").fit(x)
    r = jaxmix.kmeans(KEY, x, 6, init=c0, tol=0.0)
    np.testing.assert_array_equal(r.labels, ref.labels_)
    np.testing.assert_allclose(r.inertia, ref.inertia_, rtol=1e-5)
    np.testing.assert_allclose(r.centers, ref.cluster_centers_, rtol=1e-4, atol=1e-4)
    assert int(r.n_iter) == ref.n_iter_


def test_sklearn_tol_meaning_same_iterations():
    x, _ = make_blobs(5, n=1000, d=3, k=5, spread=2.0)
    c0 = x[:5]
    for tol in (1e-2, 1e-4):
        ref = KMeans(5, init=c0, n_init=1, tol=tol, algorithm="lloyd").fit(x)
        r = jaxmix.kmeans(KEY, x, 5, init=c0, tol=tol)
        assert int(r.n_iter) == ref.n_iter_
        np.testing.assert_allclose(r.inertia, ref.inertia_, rtol=1e-5)


def test_history_is_lyapunov_and_padded(blobs):
    x, _ = blobs
    r = jaxmix.kmeans(KEY, x, 5, init="random", max_iter=50)
    h = np.asarray(r.history)
    n = int(r.n_iter)
    assert np.all(np.diff(h[:n]) <= 1e-5 * h[0])
    assert np.all(h[n:] == h[n - 1])
    assert float(r.inertia) <= h[n - 1] * (1 + 1e-6)


def test_restarts_equal_loop_of_single_fits(blobs):
    x, _ = blobs
    # restart r draws from the stream jaxmix.engine.random.split(KEY, n_init)[r] (raw uint32 key words)
    keys = jr.split(KEY, 5)
    singles = [jaxmix.kmeans(k, x, 4, init="random", max_iter=20) for k in keys]
    best = min(singles, key=lambda s: float(s.inertia))
    r = jaxmix.kmeans(KEY, x, 4, init="random", n_init=5, max_iter=20)
    np.testing.assert_allclose(r.inertia, best.inertia, rtol=1e-6)
    np.testing.assert_allclose(r.centers, best.centers, rtol=1e-6)
    np.testing.assert_array_equal(r.labels, best.labels)
    assert int(r.n_iter) == int(best.n_iter)


def test_vmap_over_datasets_equals_loop():
    xs = np.stack([make_blobs(s, n=120, d=2, k=3)[0] for s in range(4)])
    keys = jax.random.split(KEY, 4)
    batched = jax.vmap(lambda k, x: jaxmix.kmeans(k, x, 3, max_iter=30))(keys, xs)
    for b in range(4):
        single = jaxmix.kmeans(keys[b], xs[b], 3, max_iter=30)
        np.testing.assert_allclose(batched.centers[b], single.centers, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(batched.labels[b], single.labels)
        assert int(batched.n_iter[b]) == int(single.n_iter)


def test_jit_equals_no_jit(blobs):
    x, _ = blobs
    plain = jaxmix.kmeans(KEY, x, 3, n_init=2)
    jitted = jax.jit(lambda key, x: jaxmix.kmeans(key, x, 3, n_init=2))(KEY, x)
    np.testing.assert_allclose(jitted.centers, plain.centers, rtol=1e-6)
    np.testing.assert_array_equal(jitted.labels, plain.labels)
    np.testing.assert_allclose(jitted.inertia, plain.inertia, rtol=1e-6)


def test_float32_agrees_with_float64():
    x, _ = make_blobs(6, n=400, d=3, k=4, dtype=np.float64)
    c0 = x[:4]
    r32 = jaxmix.kmeans(KEY, x.astype(np.float32), 4, init=c0, tol=0.0)
    with jax.enable_x64(True):
        r64 = jaxmix.kmeans(KEY, x, 4, init=c0, tol=0.0)
        assert r64.centers.dtype == jnp.float64 and r64.history.dtype == jnp.float64
    assert r32.centers.dtype == jnp.float32
    np.testing.assert_array_equal(r32.labels, r64.labels)
    np.testing.assert_allclose(r32.centers, r64.centers, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r32.inertia, r64.inertia, rtol=1e-5)


def test_offset_data_keeps_precision_in_float32():
    x, _ = make_blobs(7, n=1000, d=4, k=3, spread=1.0)
    c0 = x[:3]
    centred = jaxmix.kmeans(KEY, x, 3, init=c0)
    far = jaxmix.kmeans(KEY, x + np.float32(1e4), 3, init=c0 + np.float32(1e4))
    np.testing.assert_allclose(far.inertia, centred.inertia, rtol=1e-3)
    np.testing.assert_array_equal(far.labels, centred.labels)
    np.testing.assert_allclose(np.asarray(far.centers) - 1e4, centred.centers, atol=2e-2)


def test_tol_change_does_not_recompile(blobs):
    x, _ = blobs
    jaxmix.kmeans(KEY, x, 3, tol=1e-4)
    before = _kmeans._kmeans._cache_size()
    for tol in (1e-3, 1e-2, 0.0):
        jaxmix.kmeans(KEY, x, 3, tol=tol)
    assert _kmeans._kmeans._cache_size() == before


def test_zero_weight_rows_change_nothing(blobs):
    x, _ = blobs
    pad = np.random.default_rng(8).normal(scale=100.0, size=(40, 2)).astype(np.float32)
    xp = np.concatenate([x, pad])
    w = np.concatenate([np.ones(len(x)), np.zeros(40)]).astype(np.float32)
    for init in ("k-means++", "random"):
        ref = jaxmix.kmeans(KEY, x, 3, init=init, n_init=3)
        padded = jaxmix.kmeans(KEY, xp, 3, init=init, n_init=3, weights=w)
        # Same key, but the seeding draws over more rows, so compare solutions.
        np.testing.assert_allclose(
            sorted(np.asarray(padded.centers)[:, 0]), sorted(np.asarray(ref.centers)[:, 0]), rtol=1e-4
        )
        np.testing.assert_allclose(padded.inertia, ref.inertia, rtol=1e-4)
    c0 = x[:3]
    a = jaxmix.kmeans(KEY, x, 3, init=c0)
    b = jaxmix.kmeans(KEY, xp, 3, init=c0, weights=w)
    np.testing.assert_allclose(b.centers, a.centers, rtol=1e-5)
    np.testing.assert_array_equal(b.labels[: len(x)], a.labels)
    np.testing.assert_allclose(b.history, a.history, rtol=1e-5)


def test_integer_weights_equal_repeated_rows():
    x, _ = make_blobs(9, n=60, d=2, k=3)
    reps = np.random.default_rng(10).integers(1, 4, size=60)
    c0 = x[:3]
    a = jaxmix.kmeans(KEY, x, 3, init=c0, weights=reps.astype(np.float32))
    b = jaxmix.kmeans(KEY, np.repeat(x, reps, axis=0), 3, init=c0)
    np.testing.assert_allclose(a.centers, b.centers, rtol=1e-5)
    np.testing.assert_allclose(a.inertia, b.inertia, rtol=1e-5)


def test_zero_weight_point_is_never_a_seed():
    x = np.array([[0.0, 0.0], [0.1, 0.0], [100.0, 100.0], [5.0, 5.0], [5.1, 5.0]], np.float32)
    w = np.array([1, 1, 0, 1, 1], np.float32)
    for init in ("k-means++", "random"):
        for s in range(10):
            r = jaxmix.kmeans(jax.random.key(s), x, 2, init=init, weights=w, max_iter=1)
            assert not np.any(np.all(np.isclose(r.centers, [100.0, 100.0]), axis=1))


@pytest.mark.parametrize("chunk_size", [1, 5, 64, 1000])
def test_chunk_size_does_not_change_the_fit(blobs, chunk_size):
    x, _ = blobs
    ref = jaxmix.kmeans(KEY, x, 4, n_init=2)
    r = jaxmix.kmeans(KEY, x, 4, n_init=2, chunk_size=chunk_size)
    np.testing.assert_allclose(r.centers, ref.centers, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(r.labels, ref.labels)
    np.testing.assert_allclose(r.inertia, ref.inertia, rtol=1e-5)


@pytest.mark.parametrize("algorithm", ["lloyd", "hamerly"])
def test_no_n_by_k_array_in_compiled_program(algorithm):
    n, k, chunk = 3000, 7, 128
    x = jnp.zeros((n, 2))
    hlo = _kmeans._kmeans.lower(
        KEY,
        x,
        jnp.ones(n),
        None,
        jnp.float32(1e-4),
        n_clusters=k,
        init="k-means++",
        n_init=1,
        max_iter=5,
        chunk_size=chunk,
        algorithm=algorithm,
    ).as_text()
    assert f"tensor<{chunk}x{k}x" in hlo  # the chunked block is there...
    assert f"tensor<{n}x{k}x" not in hlo  # ...and the full (n, k) matrix is not


def test_empty_clusters_never_nan():
    # 3 distinct points, 5 clusters: some clusters must stay empty or duplicate.
    x = np.repeat(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32), 4, axis=0)
    for s in range(5):
        r = jaxmix.kmeans(jax.random.key(s), x, 5, init="random")
        assert np.all(np.isfinite(r.centers)) and not bool(r.nonfinite)
        np.testing.assert_allclose(r.inertia, 0.0, atol=1e-6)


def test_many_empty_clusters_relocated():
    x, _ = make_blobs(11, n=200, d=2, k=6, spread=0.3)
    c0 = np.full((6, 2), 1e3, np.float32)
    c0[0] = 0.0  # every point goes to cluster 0 first: five clusters are empty
    r = jaxmix.kmeans(KEY, x, 6, init=c0)
    assert np.all(np.bincount(np.asarray(r.labels), minlength=6) > 0)
    assert np.all(np.abs(np.asarray(r.centers)) < 100)


def test_predict_and_transform(blobs):
    x, _ = blobs
    r = jaxmix.kmeans(KEY, x, 3)
    np.testing.assert_array_equal(jaxmix.kmeans_predict(r.centers, x), r.labels)
    np.testing.assert_array_equal(jaxmix.kmeans_predict(r.centers, x, chunk_size=17), r.labels)
    d = np.sqrt(((x[:, None] - np.asarray(r.centers)[None]) ** 2).sum(-1))
    np.testing.assert_allclose(jaxmix.transform(r.centers, x), d, rtol=1e-4, atol=1e-4)


def test_result_shapes_and_dtypes(blobs):
    x, _ = blobs
    r = jaxmix.kmeans(KEY, x, 3, max_iter=17)
    assert r.centers.shape == (3, 2) and r.centers.dtype == jnp.float32
    assert r.labels.shape == (300,) and r.labels.dtype == jnp.int32
    assert r.history.shape == (17,)
    assert r.inertia.shape == r.n_iter.shape == r.converged.shape == ()


def test_integer_input_is_cast_to_float():
    xi = np.array([[0, 0], [1, 0], [10, 10], [11, 10]])
    r = jaxmix.kmeans(KEY, xi, 2)
    assert r.centers.dtype == jnp.float32
    np.testing.assert_allclose(np.sort(np.asarray(r.centers)[:, 0]), [0.5, 10.5])


def test_input_is_not_mutated(blobs):
    x, _ = blobs
    x_copy, w = x.copy(), np.ones(len(x))
    init = x[:3].copy()
    jaxmix.kmeans(KEY, x, 3, init=init, weights=w)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(init, x_copy[:3])
    np.testing.assert_array_equal(w, 1.0)


def test_max_iter_reached_is_not_converged(blobs):
    x, _ = blobs
    r = jaxmix.kmeans(KEY, x, 8, init="random", max_iter=1, tol=0.0)
    assert int(r.n_iter) == 1 and not bool(r.converged)


def test_raw_uint32_key_accepted(blobs):
    x, _ = blobs
    a = jaxmix.kmeans(jax.random.PRNGKey(0), x, 3)
    assert a.centers.shape == (3, 2)


@pytest.mark.parametrize(("init", "n_init", "weighted"), [("random", 1, False), ("k-means++", 3, True)])
def test_hamerly_equals_lloyd(init, n_init, weighted):
    # Bounds only skip rows whose label is certain; every other row gets the
    # dense formula, so both algorithms take the same path to the same fit.
    # The statistics are updated incrementally, hence float (not bitwise)
    # agreement of the centres.
    x, _ = make_blobs(7, n=6000, d=6, k=10, spread=2.5)
    w = np.random.default_rng(1).uniform(0.0, 2.0, len(x)) if weighted else None
    kw = dict(init=init, n_init=n_init, weights=w, tol=0.0, chunk_size=1000)
    dense = jaxmix.kmeans(KEY, x, 10, algorithm="lloyd", **kw)
    bounded = jaxmix.kmeans(KEY, x, 10, algorithm="hamerly", **kw)
    assert int(dense.n_iter) > 3 and bool(dense.converged) and bool(bounded.converged)
    np.testing.assert_array_equal(bounded.labels, dense.labels)
    assert int(bounded.n_iter) == int(dense.n_iter)
    np.testing.assert_allclose(bounded.centers, dense.centers, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(bounded.inertia, dense.inertia, rtol=1e-5)
    np.testing.assert_allclose(bounded.history, dense.history, rtol=1e-4)


def test_hamerly_bounds_and_statistics():
    x, _ = make_blobs(8, n=4000, d=4, k=8, spread=1.0)
    x = jnp.asarray(x)
    w = jnp.ones(len(x))
    c = x[:8]
    shift = jnp.zeros(4)
    b, stats = _bounds.assign(x, w, shift, c, _bounds.unknown_bounds(len(x), jnp.float32), 500)
    dense = _steps.e_step(x, w, shift, c, 500)
    np.testing.assert_array_equal(b.labels, _steps.assign(x, shift, c, 500)[0])
    np.testing.assert_allclose(stats.counts, dense.counts)
    np.testing.assert_allclose(stats.sums, dense.sums, rtol=1e-5, atol=1e-3)
    # Bounds bracket the true distances.
    true = np.sqrt(((np.asarray(x)[:, None] - np.asarray(c)[None]) ** 2).sum(-1))
    own = true[np.arange(len(x)), np.asarray(b.labels)]
    other = np.where(np.arange(8)[None] == np.asarray(b.labels)[:, None], np.inf, true).min(1)
    assert np.all(np.asarray(b.upper) >= own * (1 - 1e-6)) and np.all(np.asarray(b.lower) <= other * (1 + 1e-6))
    # Centres that do not move: almost no row needs work, nothing changes.
    moved = _bounds.move(b, jnp.zeros(8))
    need = moved.upper > jnp.maximum(moved.lower, _bounds._half_separation(c)[moved.labels])
    assert float(jnp.mean(need)) < 0.5
    again, change = _bounds.assign(x, w, shift, c, moved, 500)
    np.testing.assert_array_equal(again.labels, b.labels)
    assert float(jnp.abs(change.counts).sum()) == 0.0


def test_tol_zero_converges_with_restarts():
    # A fixed point must be detected under vmap too (no ulp-level drift).
    x, _ = make_blobs(3, n=5000, d=5, k=12)
    for algorithm in ("lloyd", "hamerly"):
        r = jaxmix.kmeans(jax.random.key(1), x, 12, init="random", tol=0.0, n_init=3, algorithm=algorithm)
        assert bool(r.converged) and int(r.n_iter) < 300


def test_unknown_algorithm_rejected(blobs):
    x, _ = blobs
    with pytest.raises(ValueError, match="algorithm"):
        jaxmix.kmeans(KEY, x, 3, algorithm="elkan")
