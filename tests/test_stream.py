"""jaxmix.stream: sources, exact streamed fits (== in-memory fits), checkpoints and resume.

One data set (1000 x 2, batches of 256 rows padded to one shape) serves every
test, so each streamed model compiles its per-batch program once.
"""

import importlib.util
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import jaxmix
import jaxmix.stream as js

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("_stream_worker", os.path.join(HERE, "_stream_worker.py"))
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)

X = worker.data()  # (1000, 2) float32, three blobs about (100, 100)
K, BATCH = worker.K, worker.BATCH
INIT = X[[0, 1, 2]].copy()
KEY = jax.random.key(0)


def assert_same_tree(a, b):
    """Bit for bit (a resumed fit against an uninterrupted one)."""
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def concat(src):
    return np.concatenate([b.x for b in src])


# --- sources ------------------------------------------------------------------------------


def _sources(tmp_path):
    """Every kind of source over X, by name."""
    mm_path = tmp_path / "x.dat"
    mm = np.memmap(mm_path, dtype=np.float32, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    shards = tmp_path / "shards"
    shards.mkdir()
    for i, lo in enumerate(range(0, len(X), 400)):  # names sort as the row order: 0, 1, 2
        np.save(shards / f"part-{i}.npy", X[lo : lo + 400])
    out = {
        "array": X,
        "memmap": np.memmap(mm_path, dtype=np.float32, mode="r", shape=X.shape),
        "npy_dir": str(shards),
        "npy_list": sorted(str(p) for p in shards.iterdir()),
        "callable": worker.source(X),
    }
    h5py = _try_import("h5py")
    if h5py is not None:
        f = h5py.File(tmp_path / "x.h5", "w")
        out["h5py"] = f.create_dataset("x", data=X, chunks=(100, 2))
    zarr = _try_import("zarr")
    if zarr is not None:
        z = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=X.shape, chunks=(100, 2), dtype="f4")
        z[:] = X
        out["zarr"] = z
    return out


def _try_import(name):
    try:
        return __import__(name)
    except ImportError:
        return None


@pytest.mark.parametrize("kind", ["array", "memmap", "npy_dir", "npy_list", "callable", "h5py", "zarr"])
def test_every_source_kind_yields_the_rows_in_order(tmp_path, kind):
    sources = _sources(tmp_path)
    if kind not in sources:
        pytest.skip(f"{kind} is not installed")
    src = js.as_source(sources[kind], batch_rows=BATCH)
    assert src.n_features == 2 and src.dtype == np.float32
    for _ in range(2):  # every pass yields the same rows
        np.testing.assert_array_equal(concat(src), X)
    assert src.n_rows == len(X)  # a callable's is known after its first pass
    if kind in ("npy_dir", "npy_list"):
        assert src.n_batches == 5  # batches never span two shards: 256 + 144, 256 + 144, 200
    else:
        assert src.n_batches == 4


@pytest.mark.parametrize("kind", ["memmap", "npy_dir", "callable", "h5py", "zarr"])
def test_streamed_kmeans_on_every_source_kind(tmp_path, kind):
    sources = _sources(tmp_path)
    if kind not in sources:
        pytest.skip(f"{kind} is not installed")
    ref = js.kmeans(KEY, X, K, init=INIT, batch_rows=BATCH)
    r = js.kmeans(KEY, sources[kind], K, init=INIT, batch_rows=BATCH)
    np.testing.assert_allclose(r.centers, ref.centers, rtol=1e-5)
    assert int(r.n_iter) == int(ref.n_iter)


def test_default_batch_rows_is_about_64_mib():
    big = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=(10**8, 4), strides=(0, 0))
    src = js.as_source(big)
    assert src.batch_rows == 64 * 2**20 // 16 and src.n_batches == -(-(10**8) // src.batch_rows)
    assert js.as_source(X).batch_rows == len(X)  # never more rows than the data


def test_dtypes_follow_the_in_memory_rules():
    default = np.dtype(jax.numpy.result_type(float))  # float64 only with x64 on
    assert js.as_source(X.astype(np.float64)).dtype == default
    assert js.as_source(X.astype(np.float16)).dtype == np.float32
    assert js.as_source(np.arange(6).reshape(3, 2)).dtype == default


def test_weights_reach_the_batches_and_the_fit():
    w = np.ones(len(X), np.float32)
    w[::2] = 0.0
    src = js.as_source(X, batch_rows=BATCH, weights=w)
    np.testing.assert_array_equal(np.concatenate([b.weights for b in src]), w)
    r = js.kmeans(KEY, X, K, init=INIT, weights=w, batch_rows=BATCH)
    ref = js.kmeans(KEY, X[1::2], K, init=INIT, batch_rows=BATCH)
    np.testing.assert_allclose(r.centers, ref.centers, rtol=1e-5)


def test_the_input_is_never_written(tmp_path):
    x = X.copy()
    x.setflags(write=False)  # any write would raise
    js.gmm(KEY, x, K, covariance_type="diag", init=INIT, batch_rows=BATCH, max_iter=2)
    np.testing.assert_array_equal(x, X)


def _gen(batches):
    return lambda: iter(batches)


@pytest.mark.parametrize(
    ("obj", "kwargs", "error", "match"),
    [
        (X[:, 0], {}, ValueError, "must be 2-D"),
        (X[:0], {}, ValueError, "empty"),
        (X.astype(bool), {}, TypeError, "bool"),
        (X.astype(np.complex64), {}, TypeError, "complex"),
        (np.array([["a", "b"]]), {}, TypeError, "dtype"),
        (X, {"batch_rows": 0}, ValueError, "batch_rows must be >= 1"),
        (X, {"batch_rows": 2.5}, TypeError, "batch_rows must be an int"),
        (_gen([]), {}, ValueError, "empty"),
        (_gen([X[:2, 0]]), {}, ValueError, "batch 0 must be 2-D"),
        ({"x": X}, {}, TypeError, "cannot read batches from a dict"),
        (X, {"weights": np.ones(3)}, ValueError, "weights must have shape"),
    ],
)
def test_bad_sources_raise_clear_errors(obj, kwargs, error, match):
    with pytest.raises(error, match=match):
        js.as_source(obj, **kwargs)


def test_bad_batches_are_named_when_read(tmp_path):
    bad = X.copy()
    bad[600, 1] = np.nan
    with pytest.raises(ValueError, match=r"array, batch 2 \(rows 512:768\) contains 1 NaN"):
        concat(js.as_source(bad, batch_rows=BATCH))
    with pytest.raises(ValueError, match="batch 1 has 3 features, expected 2"):
        concat(js.as_source(_gen([X[:5], np.ones((5, 3))])))
    with pytest.raises(ValueError, match="batch 1 contains 1 NaN or infinite"):
        js.kmeans(KEY, _gen([X[:5], np.array([[np.inf, 0.0]])]), 2)
    np.save(tmp_path / "a.npy", X[:5])
    np.save(tmp_path / "b.npy", np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"b\.npy has 3 features"):
        js.as_source(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        js.as_source(str(tmp_path / "missing"))
    calls = [0]

    def flaky():  # called to peek at the first batch, then once per pass
        calls[0] += 1
        return [X[:5]] * (1 if calls[0] <= 2 else 2)

    src = js.as_source(flaky)
    with pytest.raises(ValueError, match="must yield the same data every pass"):
        js.kmeans(KEY, src, 2)


def test_bad_fit_arguments():
    with pytest.raises(TypeError, match="PRNG key"):
        js.kmeans(0, X, 2)
    with pytest.raises(ValueError, match="n_clusters=2000 must be <= n_samples=1000"):
        js.kmeans(KEY, X, 2000)
    with pytest.raises(ValueError, match="init has 2 rows"):
        js.kmeans(KEY, X, K, init=INIT[:2])
    with pytest.raises(ValueError, match="covariance_type"):
        js.gmm(KEY, X, K, covariance_type="banana")
    with pytest.raises(ValueError, match="init must be one of"):
        js.gmm(KEY, X, K, init="random")
    with pytest.raises(ValueError, match="beta must be > 0"):
        js.soft_kmeans(KEY, X, K, beta=0.0)
    with pytest.raises(ValueError, match="checkpoint_every needs a checkpoint"):
        js.kmeans(KEY, X, K, checkpoint_every=2)


# --- streamed == in-memory --------------------------------------------------------------


def test_kmeans_matches_in_memory():
    r = js.kmeans(KEY, X, K, init=INIT, batch_rows=BATCH)
    m = jaxmix.kmeans(KEY, X, K, init=INIT, algorithm="lloyd")
    assert int(r.n_iter) == int(m.n_iter) > 2 and bool(r.converged) == bool(m.converged)
    np.testing.assert_allclose(r.centers, m.centers, rtol=1e-6)
    np.testing.assert_allclose(r.history, m.history, rtol=1e-5)
    np.testing.assert_allclose(r.inertia, m.inertia, rtol=1e-5)
    assert r.labels.shape == (0,) and not bool(r.nonfinite)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_gmm_matches_in_memory(covariance_type):
    cov = np.ones((K, 2), np.float32) if covariance_type == "diag" else np.tile(np.eye(2, dtype=np.float32), (K, 1, 1))
    w = np.full(K, 1 / K, np.float32)
    init = jaxmix.GMMParams.from_covariances(w, INIT, cov, covariance_type)
    prec = 1 / cov if covariance_type == "diag" else np.linalg.inv(cov)
    r = js.gmm(KEY, X, K, covariance_type=covariance_type, init=init, batch_rows=BATCH)
    m = jaxmix.gmm(KEY, X, K, covariance_type=covariance_type, weights_init=w, means_init=INIT, precisions_init=prec)
    assert int(r.n_iter) == int(m.n_iter) > 2 and bool(r.converged) == bool(m.converged)
    for f in ("weights", "means", "covariances", "precisions_cholesky"):
        np.testing.assert_allclose(getattr(r.params, f), getattr(m.params, f), rtol=2e-4, atol=2e-5, err_msg=f)
    np.testing.assert_allclose(r.history, m.history, rtol=1e-5)
    np.testing.assert_allclose(r.log_likelihood, m.log_likelihood, rtol=1e-5)
    np.testing.assert_array_equal(r.collapsed, m.collapsed)


def test_gmm_default_init_matches_in_memory():
    # The source fits in the seeding sample: k-means++ and the k-means init are the in-memory ones.
    r = js.gmm(KEY, X, K, covariance_type="diag", batch_rows=BATCH)
    m = jaxmix.gmm(KEY, X, K, covariance_type="diag")
    assert int(r.n_iter) == int(m.n_iter)
    np.testing.assert_allclose(r.params.means, m.params.means, rtol=1e-5)


def test_soft_kmeans_matches_in_memory():
    r = js.soft_kmeans(KEY, X, K, beta=0.5, init=INIT, batch_rows=BATCH)
    m = jaxmix.soft_kmeans(KEY, X, K, beta=0.5, init=INIT)
    assert int(r.n_iter) == int(m.n_iter) > 2 and bool(r.converged) == bool(m.converged)
    np.testing.assert_allclose(r.centers, m.centers, rtol=1e-6)
    np.testing.assert_allclose(r.weights, m.weights, rtol=1e-5)
    np.testing.assert_allclose(r.history, m.history, rtol=1e-5)
    np.testing.assert_allclose(r.objective, m.objective, rtol=1e-5)


def test_predict_batch_by_batch(tmp_path):
    r = js.kmeans(KEY, X, K, init=INIT, batch_rows=BATCH)
    m = jaxmix.kmeans(KEY, X, K, init=INIT, algorithm="lloyd")
    batches = list(js.predict(r, X, batch_rows=BATCH))
    assert [len(b) for b in batches] == [256, 256, 256, 232]
    np.testing.assert_array_equal(np.concatenate(batches), m.labels)
    out = np.lib.format.open_memmap(tmp_path / "labels.npy", mode="w+", dtype=np.int32, shape=(len(X),))
    assert js.predict(r, X, out=out, batch_rows=BATCH) is out
    np.testing.assert_array_equal(out, m.labels)
    g = js.gmm(KEY, X, K, covariance_type="diag", init=INIT, batch_rows=BATCH, max_iter=3)
    np.testing.assert_array_equal(np.concatenate(list(js.predict(g, X, batch_rows=BATCH))), jaxmix.predict(g.params, X))


# --- checkpoints ------------------------------------------------------------------------


class Interrupted(Exception):
    pass


def interrupted_source(at_batch):
    """X in batches of 256 that raises at the `at_batch`-th batch read (as_source peeks at batch 1)."""
    count = [0]

    def batches():
        for lo in range(0, len(X), BATCH):
            count[0] += 1
            if count[0] == at_batch:
                raise Interrupted
            yield X[lo : lo + BATCH]

    return batches


FITS = {
    # k-means++ seeding: the moments pass carries a reservoir sample.
    "kmeans": lambda src, **kw: js.kmeans(KEY, src, K, **kw),
    "gmm": lambda src, **kw: js.gmm(KEY, src, K, covariance_type="diag", init=INIT, **kw),
    "soft_kmeans": lambda src, **kw: js.soft_kmeans(KEY, src, K, beta=0.5, init=INIT, **kw),
}


@pytest.mark.parametrize(("model", "at_batch"), [("kmeans", 5), ("kmeans", 12), ("gmm", 10), ("soft_kmeans", 13)])
def test_resume_after_an_interruption_is_bit_identical(tmp_path, model, at_batch):
    ckpt = tmp_path / "fit.ckpt"
    fit = FITS[model]
    full = fit(worker.source(X))
    with pytest.raises(Interrupted):
        fit(interrupted_source(at_batch), checkpoint=ckpt, checkpoint_every=2)
    assert ckpt.exists()
    resumed = fit(worker.source(X), checkpoint=ckpt, checkpoint_every=2)
    assert_same_tree(resumed, full)
    assert not ckpt.exists()  # removed once the fit completes


def test_checkpoint_of_another_fit_is_refused(tmp_path):
    ckpt = tmp_path / "fit.ckpt"
    r = js.kmeans(KEY, X, K, init=INIT, batch_rows=BATCH, checkpoint=ckpt, keep_checkpoint=True)
    assert ckpt.exists()
    with np.load(ckpt, allow_pickle=False) as z:
        assert int(z["st.km.n_iter"]) == int(r.n_iter)
    # A kept checkpoint of a finished fit returns its result without a pass.
    assert_same_tree(js.kmeans(KEY, X, K, init=INIT, batch_rows=BATCH, checkpoint=ckpt), r)
    js.kmeans(KEY, X, K, init=INIT, batch_rows=BATCH, checkpoint=ckpt, keep_checkpoint=True)
    with pytest.raises(ValueError, match=r"different fit.*tol"):
        js.kmeans(KEY, X, K, init=INIT, batch_rows=BATCH, tol=0.1, checkpoint=ckpt)
    with pytest.raises(ValueError, match=r"different fit.*n_rows"):
        js.kmeans(KEY, X[:900], K, init=INIT, batch_rows=BATCH, checkpoint=ckpt)
    with pytest.raises(ValueError, match=r"different fit.*first_batch"):
        js.kmeans(KEY, X + 1.0, K, init=INIT, batch_rows=BATCH, checkpoint=ckpt)
    with pytest.raises(ValueError, match=r"different fit.*model"):
        js.soft_kmeans(KEY, X, K, beta=1.0, init=INIT, batch_rows=BATCH, checkpoint=ckpt)
    (tmp_path / "junk").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable jaxmix stream checkpoint"):
        js.kmeans(KEY, X, K, init=INIT, checkpoint=tmp_path / "junk")


@pytest.mark.parametrize("kill_after", [1, 2, 3])
def test_resume_after_sigkill(tmp_path, kill_after):
    """SIGKILL after `kill_after` passes plus an offset into the next pass; resume is bit-identical."""
    ckpt = tmp_path / "fit.ckpt"
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "_stream_worker.py"), str(ckpt), "0.05"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180.0
        passes = 0
        while passes < kill_after:
            assert proc.poll() is None, f"the worker ended early: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "the worker wrote no checkpoint in time"
            time.sleep(0.05)
            if ckpt.exists():
                try:
                    with np.load(ckpt, allow_pickle=False) as z:
                        passes = int(z["st.passes"])
                except (OSError, ValueError, KeyError):
                    continue
        time.sleep(0.03 * kill_after)  # land inside a pass, not on a checkpoint boundary
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert ckpt.exists()
    resumed = worker.fit(ckpt)
    assert_same_tree(resumed, worker.fit(None))
    assert not ckpt.exists()


def test_progress_bar_shows_the_passes(capsys):
    pytest.importorskip("tqdm")
    js.kmeans(KEY, X, K, init=INIT, batch_rows=BATCH, max_iter=2, progress=True)
    err = capsys.readouterr().err
    assert "jaxmix stream kmeans pass 3" in err and "objective" in err
