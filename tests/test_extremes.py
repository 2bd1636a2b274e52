"""Finite but extreme numbers and oversized requests (issue 17, items 15, 16, 17, 20).

Each case ended in NaN, a silent wrong answer, a misleading message or an
allocation the machine cannot hold; each must now give the right fit or a
ValueError/TypeError naming the argument, before anything is dispatched.
"""

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix
import jaxmix.stream as js
from jaxmix.families.registry import covariance_model

KEY = jax.random.key(0)
RNG = np.random.default_rng(0)
X = np.concatenate([RNG.normal(size=(10, 2)), RNG.normal(size=(10, 2)) + 6]).astype(np.float32)
BATCH = 8


def _fits():
    yield "kmeans", lambda **kw: jaxmix.kmeans(KEY, X, 2, **kw), "centers"
    yield "soft_kmeans", lambda **kw: jaxmix.soft_kmeans(KEY, X, 2, beta=1.0, **kw), "centers"
    yield "gmm", lambda **kw: jaxmix.gmm(KEY, X, 2, covariance_type="diag", **kw), "params"
    yield "stream.kmeans", lambda **kw: js.kmeans(KEY, X, 2, batch_rows=BATCH, **kw), "centers"
    yield "stream.gmm", lambda **kw: js.gmm(KEY, X, 2, covariance_type="diag", batch_rows=BATCH, **kw), "params"
    yield "stream.minibatch_kmeans", lambda **kw: js.minibatch_kmeans(KEY, X, 2, batch_size=BATCH, **kw), "centers"
    yield "stream.online_gmm", lambda **kw: js.online_gmm(KEY, X, 2, batch_size=BATCH, **kw), "params"


FITS = {name: (fit, field) for name, fit, field in _fits()}


def _model(result, field):
    if field == "params":
        return np.concatenate([np.ravel(result.params.means), np.ravel(result.params.covariances)])
    return np.asarray(result.centers)


# --- item 15: extreme but finite numbers --------------------------------------------------


@pytest.mark.parametrize("name", list(FITS))
def test_huge_weights_are_rescaled_to_the_unscaled_fit(name):
    # 20 x 3e37 overflows a float32 sum: the centres were NaN. Weights are scale-free, so the fit must
    # be the one with ordinary weights.
    fit, field = FITS[name]
    with pytest.warns(RuntimeWarning, match=r"multiplied by 2\*\*"):
        big = fit(weights=np.full(X.shape[0], 3e37, np.float32))
    ref = fit(weights=np.ones(X.shape[0], np.float32))
    assert not bool(getattr(big, "nonfinite", False)) and np.all(np.isfinite(_model(big, field)))
    np.testing.assert_allclose(_model(big, field), _model(ref, field), rtol=1e-5, atol=1e-5)


def test_ordinary_weights_are_not_rescaled():
    w = RNG.uniform(0.5, 3.0, size=X.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        r = jaxmix.kmeans(KEY, X, 2, weights=w)
    ref = jaxmix.kmeans(KEY, X, 2, weights=w.astype(np.float32))
    assert float(r.inertia) == float(ref.inertia)


def test_stream_weights_from_batches_that_overflow_are_refused():
    def batches():
        for lo in range(0, X.shape[0], BATCH):
            yield X[lo : lo + BATCH], np.full(min(BATCH, X.shape[0] - lo), 3e37, np.float32)

    with pytest.raises(ValueError, match="weights sum to more than float32"):
        js.kmeans(KEY, batches, 2)


def test_online_batches_whose_weights_overflow_are_refused():
    # Batches given one by one cannot share a rescaling factor: a batch whose weights sum to inf is refused.
    pairs = [(X[:BATCH], np.full(BATCH, 1e38, np.float32))]
    with pytest.raises(ValueError, match=r"weights sum to more than float32 holds.*common factor"):
        js.minibatch_kmeans(KEY, pairs, 2)


@pytest.mark.parametrize("stream", [False, True])
def test_huge_beta_is_refused_naming_beta(stream):
    fit = js.soft_kmeans if stream else jaxmix.soft_kmeans
    kw = {"batch_rows": BATCH} if stream else {}
    with pytest.raises(ValueError, match=r"beta=1e\+38 is too large.*jaxmix.kmeans"):
        fit(KEY, X, 2, beta=1e38, **kw)


def test_prior_mean_far_from_the_data_is_refused():
    with pytest.raises(ValueError, match=r"prior.mean is too far from the data"):
        jaxmix.gmm(KEY, X, 2, covariance_type="diag", prior=jaxmix.GMMPrior(mean=np.array([1e30, 0.0])))


def test_stream_spread_split_across_batches_is_refused_as_in_memory():
    # Each batch is narrow (checked alone it passes); together they span 2e19, as the in-memory fit refuses.
    x = np.concatenate([RNG.normal(size=(8, 2)) - 1e19, RNG.normal(size=(8, 2)) + 1e19]).astype(np.float32)
    with pytest.raises(ValueError, match="span 2e\\+19 in one feature: squared distances would overflow") as mem:
        jaxmix.kmeans(KEY, x, 2)
    for fit in (js.kmeans, js.gmm):
        with pytest.raises(ValueError, match="span 2e\\+19 in one feature: squared distances would overflow") as e:
            fit(KEY, x, 2, batch_rows=BATCH)
        assert str(e.value).split(" span ")[1] == str(mem.value).split(" span ")[1]


@pytest.fixture(scope="module")
def diag_params():
    return jaxmix.GMMParams.from_covariances(
        np.array([0.5, 0.5]), np.array([[0.0, 0.0], [6.0, 6.0]]), np.ones((2, 2)), "diag"
    )


@pytest.mark.parametrize("fn", [jaxmix.log_prob, jaxmix.predict_proba, jaxmix.score])
@pytest.mark.parametrize("variance", [-1.0, 0.0])
def test_hand_built_params_with_bad_variances_are_refused(diag_params, fn, variance):
    cov = np.ones((2, 2), np.float32)
    cov[1, 0] = variance
    bad = dataclasses.replace(diag_params, covariances=cov, precisions_cholesky=np.where(cov > 0, cov, variance))
    with pytest.raises(ValueError, match=r"params.covariances must have every variance > 0"):
        fn(bad, X)


def test_n_parameters_of_an_unknown_type_lists_the_choices(diag_params):
    with pytest.raises(ValueError, match=r"covariance_type must be one of .*'full'.*got 'bogus'"):
        covariance_model("bogus").n_parameters(2, 2)
    with pytest.raises(ValueError, match="must be one of"):
        jaxmix.n_parameters(dataclasses.replace(diag_params, covariance_type="bogus"))


@pytest.mark.parametrize(("weights", "match"), [([np.nan, 0.5], "weights contains 1 NaN"), ([1.5, -0.5], ">= 0")])
def test_from_covariances_refuses_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        jaxmix.GMMParams.from_covariances(np.array(weights), np.zeros((2, 2)), np.ones((2, 2)), "diag")


# --- item 16: the edges of float32 --------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_subnormal_data_is_refused(stream):
    x = X.astype(np.float64) * 1e-39  # float32 subnormals after the cast
    with pytest.raises(ValueError, match="would underflow float32"):
        (js.kmeans(KEY, x, 2, batch_rows=BATCH) if stream else jaxmix.kmeans(KEY, x, 2))


@pytest.mark.skipif(jax.config.jax_enable_x64, reason="the cast to float32 happens with x64 off")
def test_float64_beyond_float32_names_the_cast():
    x = X.astype(np.float64)
    x[0, 0] = 1e39
    for fit in (jaxmix.kmeans, js.kmeans):
        with pytest.raises(ValueError, match=r"1 value\(s\) \(largest magnitude 1e\+39\) beyond float32.*x64"):
            fit(KEY, x, 2)


def test_bfloat16_is_accepted_by_the_stream_fits_as_in_memory():
    xb = jnp.asarray(X, jnp.bfloat16)
    mem = jaxmix.kmeans(KEY, xb, 2, init=X[[0, 10]])
    r = js.kmeans(KEY, np.asarray(xb), 2, init=X[[0, 10]], batch_rows=BATCH)
    assert r.centers.dtype == jnp.float32
    np.testing.assert_allclose(r.centers, mem.centers, rtol=1e-6, atol=1e-6)


def test_pandas_nullable_float_columns():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": pd.array(X[:, 0], dtype="Float32"), "b": X[:, 1]})
    r = jaxmix.kmeans(KEY, frame, 2, init=X[[0, 10]])
    np.testing.assert_array_equal(r.centers, jaxmix.kmeans(KEY, X, 2, init=X[[0, 10]]).centers)
    frame.loc[3, "a"] = pd.NA
    with pytest.raises(ValueError, match=r"x column\(s\) \['a'\] have missing values.*to_numpy\(float\)"):
        jaxmix.kmeans(KEY, frame, 2)
    text = pd.DataFrame({"a": pd.array(["u"] * 20, dtype="string"), "b": X[:, 1]})
    with pytest.raises(TypeError, match="x column 'a' has dtype string"):
        jaxmix.kmeans(KEY, text, 2)


# --- items 17 and 20: requests the machine cannot hold ------------------------------------


def test_sample_beyond_memory_is_refused_before_dispatch(diag_params):
    with pytest.raises(ValueError, match=r"n_samples=1000000000000 .* GiB.*draw it in parts"):
        jaxmix.sample(KEY, diag_params, 10**12)
    assert jaxmix.sample(KEY, diag_params, 5)[0].shape == (5, 2)


@pytest.mark.parametrize("fit", [jaxmix.kmeans, jaxmix.gmm])
def test_n_init_beyond_memory_is_refused(fit):
    with pytest.raises(ValueError, match=r"n_init=1000000000 restarts side by side .* GiB"):
        fit(KEY, X, 2, n_init=10**9)


def test_relocation_memory_is_linear_in_k():
    # The k farthest rows' own clusters came from a (k, k) distance block (k = 10,000: 1.1 GiB reserved in
    # every Lloyd iteration, empty cluster or not). Measured on the compiled program, nothing allocated.
    from jaxmix.models import kmeans_steps as K

    n, k, d = 4000, 2000, 2

    def spec(*shape):
        return jax.ShapeDtypeStruct(shape, jnp.float32)

    stats = K.KMeansStats(spec(k), spec(k, d), spec())
    fn = jax.jit(lambda x, w, s, c, st, dist: K._relocate_empty(x, w, s, c, st, 64, dist))
    temp = fn.lower(spec(n, d), spec(n), spec(d), spec(k, d), stats, spec(n)).compile().memory_analysis()
    if temp is None:
        pytest.skip("this backend gives no memory analysis")
    assert temp.temp_size_in_bytes < k * k * 4 / 8


def test_stream_predict_refuses_an_out_too_narrow_for_the_labels():
    centers = np.arange(200, dtype=np.float32).reshape(-1, 1)
    with pytest.raises(ValueError, match=r"out has dtype int8.*labels up to 199"):
        js.predict(centers, centers, out=np.zeros(200, np.int8))
    with pytest.raises(TypeError, match="integer dtype"):
        js.predict(centers, centers, out=np.zeros(200, np.float32))
    out = js.predict(centers, centers, out=np.zeros(200, np.uint8))
    np.testing.assert_array_equal(out, np.arange(200))
