"""Bad input is rejected at the boundary with a message naming the problem."""

import jax
import numpy as np
import pytest

import jaxmix

KEY = jax.random.key(0)
X = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)


def fits():
    yield "kmeans", lambda x, k=2, **kw: jaxmix.kmeans(KEY, x, k, **kw)
    yield "soft_kmeans", lambda x, k=2, **kw: jaxmix.soft_kmeans(KEY, x, k, beta=1.0, **kw)


FITS = dict(fits())


@pytest.fixture(params=list(FITS))
def fit(request):
    return FITS[request.param]


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]]), "NaN or infinite"),
        (np.array([[0.0, np.inf], [1.0, 1.0], [2.0, 2.0]]), "NaN or infinite"),
        (np.zeros((0, 2)), "empty"),
        (np.zeros((5, 0)), "0 features"),
        (np.arange(5.0), "must be 2-D.*reshape"),
        (np.zeros((2, 3, 4)), "must be 2-D"),
    ],
)
def test_bad_data(fit, x, match):
    with pytest.raises(ValueError, match=match):
        fit(x)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.ones((4, 2), bool), "bool"),
        (np.ones((4, 2), complex), "complex"),
        (np.array([["a", "b"], ["c", "d"]]), "dtype"),
        ("abc", "array of numbers"),
        ([[1, 2], [3]], "could not be converted"),
    ],
)
def test_bad_dtypes(fit, x, match):
    with pytest.raises(TypeError, match=match):
        fit(x)


@pytest.mark.parametrize(
    ("k", "exc", "match"),
    [(0, ValueError, ">= 1"), (21, ValueError, "n_samples=20"), (2.5, TypeError, "int"), (True, TypeError, "int")],
)
def test_bad_n_clusters(fit, k, exc, match):
    with pytest.raises(exc, match=match):
        fit(X, k)


def test_more_clusters_than_weighted_samples(fit):
    w = np.zeros(20)
    w[:3] = 1
    with pytest.raises(ValueError, match="positive weight"):
        fit(X, 4, weights=w)


@pytest.mark.parametrize(
    ("w", "match"),
    [
        (-np.ones(20), "negative"),
        (np.zeros(20), "all zero"),
        (np.ones(19), "19 entries"),
        (np.r_[np.ones(19), np.nan], "NaN"),
        (np.ones((20, 1)), "1-D"),
    ],
)
def test_bad_weights(fit, w, match):
    with pytest.raises(ValueError, match=match):
        fit(X, weights=w)


@pytest.mark.parametrize(
    ("init", "match"),
    [
        (np.zeros((3, 2)), "3 rows but n_clusters=2"),
        (np.zeros((2, 3)), "3 features but x has 2"),
        (np.array([[0.0, 0.0], [np.nan, 1.0]]), "NaN"),
        ("kmeans||", "init must be one of"),
    ],
)
def test_bad_init(fit, init, match):
    with pytest.raises(ValueError, match=match):
        fit(X, init=init)


def test_explicit_init_with_restarts_warns(fit):
    with pytest.warns(RuntimeWarning, match="n_init=1"):
        fit(X, init=X[:2], n_init=3)


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"n_init": 0}, ValueError, "n_init"),
        ({"max_iter": 0}, ValueError, "max_iter"),
        ({"max_iter": 2.0}, TypeError, "max_iter"),
        ({"tol": -1.0}, ValueError, "tol"),
        ({"tol": float("nan")}, ValueError, "tol"),
        ({"tol": "small"}, TypeError, "tol"),
        ({"chunk_size": 0}, ValueError, "chunk_size"),
    ],
)
def test_bad_options(fit, kw, exc, match):
    with pytest.raises(exc, match=match):
        fit(X, **kw)


@pytest.mark.parametrize("key", [0, None, np.zeros(3, np.uint32), jax.random.split(KEY, 2)])
def test_bad_key(key):
    with pytest.raises((TypeError, ValueError), match="key"):
        jaxmix.kmeans(key, X, 2)


def test_predict_mismatched_features():
    with pytest.raises(ValueError, match="features"):
        jaxmix.kmeans_predict(np.zeros((2, 3)), X)
    with pytest.raises(ValueError, match="NaN"):
        jaxmix.transform(np.zeros((2, 2)), np.full((3, 2), np.nan))


def test_predict_proba_mismatched_model():
    r = jaxmix.soft_kmeans(KEY, X, 2, beta=1.0)
    with pytest.raises(ValueError, match="weights has 3"):
        jaxmix.soft_kmeans_predict_proba(r._replace(weights=np.ones(3) / 3), X)


def test_lists_and_float16_are_accepted():
    r = jaxmix.kmeans(KEY, X.tolist(), 2)
    assert r.centers.dtype == np.float32
    r16 = jaxmix.kmeans(KEY, X.astype(np.float16), 2)
    assert r16.centers.dtype == np.float32


def test_read_only_input_is_accepted():
    x = X.copy()
    x.setflags(write=False)
    assert jaxmix.kmeans(KEY, x, 2).centers.shape == (2, 2)
