"""jaxmix.sklearn: the same answers as scikit-learn, its contract, and its tools."""

import warnings

import jax
import numpy as np
import pandas as pd
import pytest
import sklearn.cluster
import sklearn.mixture
from conftest import make_blobs
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from jaxmix.sklearn import GaussianMixture, KMeans, MiniBatchKMeans, SoftKMeans

X64, _ = make_blobs(1, n=300, d=3, k=4, spread=0.7, dtype=np.float64)


def test_kmeans_equals_sklearn_from_same_init():
    c0 = X64[[0, 50, 100, 150]]
    ref = sklearn.cluster.KMeans(4, init=c0, n_init=1, tol=0.0, algorithm="lloyd").fit(X64)
    ours = KMeans(4, init=c0, n_init=1, tol=0.0).fit(X64)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-10)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-10)
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.transform(X64), ref.transform(X64), rtol=1e-9)
    np.testing.assert_allclose(ours.score(X64), ref.score(X64), rtol=1e-10)
    np.testing.assert_array_equal(ours.predict(X64[:7]), ref.predict(X64[:7]))


@pytest.mark.parametrize("ct", ["full", "tied", "diag", "spherical"])
def test_gaussian_mixture_equals_sklearn_from_same_start(ct):
    ref = sklearn.mixture.GaussianMixture(4, covariance_type=ct, max_iter=20, tol=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref.fit(X64)
        start = dict(weights_init=ref.weights_, means_init=ref.means_, precisions_init=ref.precisions_)
        a = sklearn.mixture.GaussianMixture(4, covariance_type=ct, max_iter=10, tol=0.0, **start).fit(X64)
        b = GaussianMixture(4, covariance_type=ct, max_iter=10, tol=0.0, **start).fit(X64)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-6, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(b.lower_bound_, a.lower_bound_, rtol=1e-7)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-7)
    assert b.n_iter_ == a.n_iter_ == 10 and b.converged_ == a.converged_ is False
    np.testing.assert_allclose(b.score_samples(X64), a.score_samples(X64), rtol=1e-7)
    np.testing.assert_allclose(b.predict_proba(X64), a.predict_proba(X64), atol=1e-7)
    np.testing.assert_allclose(b.bic(X64), a.bic(X64), rtol=1e-7)
    np.testing.assert_allclose(b.aic(X64), a.aic(X64), rtol=1e-7)


@pytest.mark.parametrize("est", [KMeans(3, random_state=0), GaussianMixture(3, random_state=0), SoftKMeans(3)])
def test_dtypes_in_equal_dtypes_out_and_global_config_untouched(est):
    x32 = X64.astype(np.float32)
    x64_before = jax.config.jax_enable_x64
    for X, dt in ((x32, np.float32), (X64, np.float64), ((X64 * 10).astype(np.int64), np.float64)):
        m = clone(est).fit(X)
        attr = "means_" if isinstance(m, GaussianMixture) else "cluster_centers_"
        assert getattr(m, attr).dtype == dt
        out = m.predict_proba(X) if hasattr(m, "predict_proba") else m.transform(X)
        assert out.dtype == dt
        assert jax.config.jax_enable_x64 == x64_before


def test_float64_fit_is_more_precise_than_float32():
    # Data whose clusters are tight and far from the origin: float64 keeps the detail.
    x = X64 * 1e-3 + 1e3
    c0 = x[[0, 50, 100, 150]]
    ref = sklearn.cluster.KMeans(4, init=c0, n_init=1, tol=0.0).fit(x)
    ours = KMeans(4, init=c0, n_init=1, tol=0.0).fit(x)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-8)


def test_n_init_auto_and_explicit_array():
    assert KMeans(init="k-means++")._n_init() == 1
    assert KMeans(init="random")._n_init() == 10
    assert KMeans(init=lambda X, k, random_state: X[:k])._n_init() == 10
    with pytest.warns(RuntimeWarning, match="performing only one init"):
        KMeans(2, init=X64[:2], n_init=5).fit(X64)


def test_callable_init_gets_random_state_and_each_restart_calls_it():
    calls = []

    def init(X, k, random_state):
        calls.append(random_state)
        return X[random_state.choice(len(X), k, replace=False)]

    km = KMeans(4, init=init, n_init=3, random_state=0).fit(X64)
    assert len(calls) == 3 and all(isinstance(r, np.random.RandomState) for r in calls)
    assert km.cluster_centers_.shape == (4, 3)


def test_random_state_reproducible_and_clone():
    a = KMeans(4, init="random", n_init=3, random_state=7).fit(X64)
    b = clone(a).fit(X64)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    rs = np.random.RandomState(3)
    c = GaussianMixture(3, random_state=rs).fit(X64)
    assert np.isfinite(c.lower_bound_)


def test_convergence_warning_and_fit_predict_consistency_when_not_converged():
    gm = GaussianMixture(4, max_iter=2, tol=0.0, random_state=0)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        labels = gm.fit_predict(X64)
    np.testing.assert_array_equal(labels, gm.predict(X64))
    assert not gm.converged_ and gm.n_iter_ == 2 and len(gm.lower_bounds_) == 2


def test_ill_defined_covariance_is_sklearns_value_error():
    x = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0]]), 5, axis=0)
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            GaussianMixture(2, reg_covar=0.0, init_params="random_from_data", random_state=0).fit(x)


def test_warm_start_continues_from_the_previous_fit():
    gm = GaussianMixture(4, max_iter=3, tol=0.0, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X64)
        first = gm.lower_bound_
        gm.fit(X64)
    assert gm.lower_bounds_[0] >= first - 1e-9  # picks up where it stopped


def test_inits_are_validated_and_never_mutated():
    w0 = np.full(3, 1 / 3)
    m0 = X64[:3].copy()
    keep = (w0.copy(), m0.copy())
    GaussianMixture(3, weights_init=w0, means_init=m0, random_state=0).fit(X64)
    np.testing.assert_array_equal(w0, keep[0])
    np.testing.assert_array_equal(m0, keep[1])
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixture(3, weights_init=[0.5, 0.5, 0.5]).fit(X64)


def test_sample_groups_by_component_with_the_right_moments():
    gm = GaussianMixture(2, covariance_type="full", random_state=0).fit(X64[:150])
    x, y = gm.sample(20000)
    assert x.shape == (20000, 3) and np.all(np.diff(y) >= 0)
    for j in range(2):
        np.testing.assert_allclose(x[y == j].mean(0), gm.means_[j], atol=0.1)
        np.testing.assert_allclose(np.cov(x[y == j].T), gm.covariances_[j], atol=0.15)
    np.testing.assert_allclose(np.bincount(y) / 20000, gm.weights_, atol=0.02)


def test_pandas_feature_names():
    df = pd.DataFrame(X64, columns=["a", "b", "c"])
    km = KMeans(3, random_state=0).fit(df)
    assert list(km.feature_names_in_) == ["a", "b", "c"]
    assert list(km.get_feature_names_out()) == ["kmeans0", "kmeans1", "kmeans2"]
    with pytest.warns(UserWarning, match="feature names"):
        km.predict(X64)


def test_pipeline_and_grid_search():
    pipe = make_pipeline(StandardScaler(), KMeans(random_state=0))
    search = GridSearchCV(pipe, {"kmeans__n_clusters": [2, 4]}, cv=2).fit(X64)
    assert search.best_params_ == {"kmeans__n_clusters": 4}  # -inertia prefers more clusters
    gs = GridSearchCV(GaussianMixture(random_state=0), {"n_components": [1, 4]}, cv=3).fit(X64)
    assert gs.best_params_["n_components"] == 4


def test_soft_kmeans_large_beta_is_kmeans():
    c0 = X64[[0, 50, 100, 150]]
    km = KMeans(4, init=c0, tol=0.0).fit(X64)
    sk = SoftKMeans(4, beta=1e3, init=c0, tol=0.0).fit(X64)
    np.testing.assert_allclose(sk.cluster_centers_, km.cluster_centers_, rtol=1e-6)
    np.testing.assert_array_equal(sk.labels_, km.labels_)
    p = sk.predict_proba(X64)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-12)
    assert sk.score(X64) <= 0


@pytest.mark.parametrize(
    "make",
    [
        lambda: KMeans(4, n_init=2, random_state=0),
        lambda: GaussianMixture(3, covariance_type="diag", means_init=X64[[0, 100, 200]], random_state=1),
        lambda: SoftKMeans(3, beta=0.5, random_state=np.random.RandomState(0)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_estimators_round_trip_through_model_files(tmp_path, make, dtype):
    import jaxmix

    X = pd.DataFrame(X64.astype(dtype), columns=["a", "b", "c"])
    est = make().fit(X)
    jaxmix.save(est, tmp_path / "est.npz")
    back = jaxmix.load(tmp_path / "est.npz")
    assert type(back) is type(est)
    params = est.get_params()
    if isinstance(params["random_state"], np.random.RandomState):
        params["random_state"] = None  # a generator's state is not part of a fitted model
    for k, v in params.items():
        np.testing.assert_array_equal(back.get_params()[k], v)
    fitted = sorted(k for k in vars(est) if k.endswith("_") and not k.startswith("_"))
    assert fitted == sorted(k for k in vars(back) if k.endswith("_") and not k.startswith("_"))
    for k in fitted:
        a, b = getattr(est, k), getattr(back, k)
        assert type(a) is type(b), k
        np.testing.assert_array_equal(b, a)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype, k
    assert list(back.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    if hasattr(est, "score_samples"):
        np.testing.assert_array_equal(back.score_samples(X), est.score_samples(X))


def test_estimator_with_a_callable_init_is_refused_by_save(tmp_path):
    import jaxmix

    est = KMeans(2, init=lambda X, k, random_state: X[:k], n_init=1).fit(X64)
    with pytest.raises(TypeError, match="callable"):
        jaxmix.save(est, tmp_path / "est.npz")
    assert not (tmp_path / "est.npz").exists()


def test_verbose_shows_progress(monkeypatch, capfd):
    from jaxmix.engine import progress as _progress

    monkeypatch.setattr(_progress, "THRESHOLD_S", 0.0)
    monkeypatch.setattr(_progress, "INTERVAL_S", 0.0)
    monkeypatch.setattr(_progress, "_is_tty", lambda: False)
    GaussianMixture(2, covariance_type="diag", random_state=0, verbose=1).fit(X64)
    assert "jaxmix gmm: iteration 1 objective" in capfd.readouterr().err
    GaussianMixture(2, covariance_type="diag", random_state=0).fit(X64)
    assert capfd.readouterr().err == ""


# ---------------------------------------------------------------------------
# Issue 17: what scikit-learn's own test files found (bench/sklearn_suite.py).

CENTROID_ESTIMATORS = [
    lambda: KMeans(4, random_state=0),
    lambda: MiniBatchKMeans(4, batch_size=64, max_iter=3, random_state=0),
    lambda: SoftKMeans(4, beta=0.5, random_state=0),
]


@pytest.mark.parametrize("make", CENTROID_ESTIMATORS)
def test_set_output_pandas_wraps_transform_and_fit_transform(make):
    # Issue 17 item 1: transform lived on a base class the output wrapper never wrapped.
    df = pd.DataFrame(X64, columns=["a", "b", "c"])
    est = make().set_output(transform="pandas")
    out = est.fit_transform(df)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(est.get_feature_names_out())
    assert isinstance(est.transform(df), pd.DataFrame)
    with sklearn.config_context(transform_output="pandas"):
        assert isinstance(make().fit(X64).transform(X64), pd.DataFrame)
    assert isinstance(make().fit(X64).transform(X64), np.ndarray)  # the default is untouched


@pytest.mark.parametrize("make", CENTROID_ESTIMATORS)
def test_score_of_a_dataframe_does_not_warn_about_feature_names(make):
    # Issue 17 item 4: score checked X, then called predict/transform again on the bare array.
    df = pd.DataFrame(X64, columns=["a", "b", "c"])
    est = make().fit(df)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(est.score(df))


def test_warm_started_one_step_fits_converge():
    # Issue 17 item 2 (scikit-learn's test_convergence_detected_with_warm_start): the first
    # iteration of a warm fit is compared with the previous fit's lower bound.
    gm = GaussianMixture(4, warm_start=True, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = 0
        while fits < 100 and not getattr(gm, "converged_", False):
            gm.fit(X64)
            fits += 1
    assert gm.converged_ and gm.n_iter_ == 1 and fits < 100
    # Converged at once: no warning, and the next fit converges too.
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        gm.fit(X64)
    assert gm.converged_ and gm.n_iter_ == 1


def test_float64_bounded_kmeans_and_bic_do_not_warn():
    # Issue 17 items 3 and 5: a JAX FutureWarning (int64 labels scattered into int32 under
    # x64) from the bounded algorithm's relocation of empty clusters, and "requested dtype
    # float64 ... truncated" from bic()/aic() building float64 JAX arrays outside x64.
    x = np.concatenate([X64, np.full((40, 3), 50.0)])  # a far group: an empty cluster to relocate
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KMeans(6, algorithm="elkan", init=x[:6], random_state=0).fit(x)
        gm = GaussianMixture(2, random_state=0).fit(X64)
        ref = sklearn.mixture.GaussianMixture(2).fit(X64)
        assert gm._n_parameters() == ref._n_parameters()
        assert np.isfinite(gm.bic(X64)) and np.isfinite(gm.aic(X64))


def test_minibatch_callable_init_uses_o_n_d_memory_and_checks_its_shape():
    # Issue 17 item 6: each callable's centres were scored through an (n, k, d) float64 block.
    import tracemalloc

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 16))
    est = MiniBatchKMeans(32, init=lambda X, k, random_state: X[:k], n_init=1, batch_size=256, max_iter=1)
    w = np.ones(len(x))
    est._init_arg(x, w, 32, 1)  # compiles first: the compiler's own allocations are not the point
    tracemalloc.start()
    c, _ = est._init_arg(x, w, 32, 1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_array_equal(c, x[:32])
    assert peak < 4 * x.nbytes  # the block alone is 2000 * 32 * 16 * 8 bytes = 16 x.nbytes
    # The best of n_init calls is the one with the lowest inertia on X.
    starts = iter([X64[[0, 0, 0, 0]], X64[[0, 50, 100, 150]], X64[[1, 1, 1, 2]]])
    est = MiniBatchKMeans(4, init=lambda X, k, random_state: next(starts), n_init=3)
    c, n_init = est._init_arg(X64, np.ones(len(X64)), 4, 3)
    np.testing.assert_array_equal(c, X64[[0, 50, 100, 150]])
    assert n_init == 1
    with pytest.raises(ValueError, match=r"initial centers \(4, 2\) returned by the callable init"):
        MiniBatchKMeans(4, init=lambda X, k, random_state: X[:k, :2]).fit(X64)
    with pytest.raises(ValueError, match=r"initial centers \(4, 2\) returned by the callable init"):
        KMeans(4, init=lambda X, k, random_state: X[:k, :2]).fit(X64)
    with pytest.raises(ValueError, match=r"initial centers \(4, 2\) does not match the number of features"):
        KMeans(4, init=X64[:4, :2]).fit(X64)


def test_warnings_scikit_learn_gives_for_few_distinct_points_and_small_init_size():
    # Issue 17 item 7.
    x = np.repeat(X64[:3], 10, axis=0)  # 3 distinct points
    with pytest.warns(
        ConvergenceWarning, match=r"Number of distinct clusters \(3\) found smaller than n_clusters \(4\)"
    ):
        KMeans(4, random_state=0).fit(x)
    with pytest.warns(RuntimeWarning, match="init_size=2 should be larger than n_clusters=4"):
        MiniBatchKMeans(4, init_size=2, batch_size=64, max_iter=1, random_state=0).fit(X64)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_seeds_do_not_depend_on_the_datas_float_precision(init):
    # Issue 17 item 8: the same random_state seeds float32 and float64 copies alike.
    x32 = X64.astype(np.float32)
    for seed in range(4):
        a = KMeans(8, init=init, n_init=1, max_iter=1, random_state=seed).fit(x32)
        b = KMeans(8, init=init, n_init=1, max_iter=1, random_state=seed).fit(X64)
        np.testing.assert_array_equal(a.labels_, b.labels_)
        np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-5, atol=1e-5)
