"""Hardening (issue 9): hostile input, numerical extremes, determinism, faults, no global state.

The fuzz tests draw hostile inputs with hypothesis (10 examples per test in
CI; `JAXMIX_HYPOTHESIS_EXAMPLES=200` for a campaign) and require every call to
end in a finite result or a clear ValueError/TypeError, never NaN, never an
XLA or tracer message, never a changed input (cases: tests/_hostile.py).
`bench/fuzz.py` sweeps the
whole cross product of cases and entry points and prints the tally.
"""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _hostile import CASES, INTERNAL_MARKERS, classify, leaves_finite
from conftest import make_blobs
from hypothesis import given
from hypothesis import strategies as st

import jaxmix
from jaxmix.tools import files as _io

KEY = jax.random.key(0)
HERE = os.path.dirname(os.path.abspath(__file__))

# --- fuzz --------------------------------------------------------------------------------


def _call(fn, x):
    """Run fn(x): a finite result or a clear ValueError/TypeError, and x unchanged (tests/_hostile.py)."""
    status, detail = classify(fn, x)
    assert status != "FAILURE", detail


K_VALUES = st.sampled_from([1, 2, 3, 6, 7, 0, -1, 2.5, True, np.int64(2)])
cases = st.sampled_from(sorted(CASES))


def _fits(k):
    return {
        "kmeans": lambda x: jaxmix.kmeans(KEY, x, k),
        "kmeans random": lambda x: jaxmix.kmeans(KEY, x, k, init="random", n_init=2),
        "soft_kmeans": lambda x: jaxmix.soft_kmeans(KEY, x, k, beta=1.0),
        "gmm full": lambda x: jaxmix.gmm(KEY, x, k),
        "gmm diag prior": lambda x: jaxmix.gmm(KEY, x, k, covariance_type="diag", prior=True),
        "gmm spherical": lambda x: jaxmix.gmm(KEY, x, k, covariance_type="spherical", reinit_collapsed=True),
        "select": lambda x: jaxmix.select(KEY, x, [1, k] if isinstance(k, int) and k > 1 else k, "tied", n_init=2),
        "kmeans_batch": lambda x: jaxmix.kmeans_batch(KEY, np.stack([np.asarray(x)] * 2), k),
        "gmm_batch": lambda x: jaxmix.gmm_batch(KEY, np.stack([np.asarray(x)] * 2), k, covariance_type="diag"),
        "stream.kmeans": lambda x: jaxmix.stream.kmeans(KEY, x, k, progress=False),
        "stream.gmm": lambda x: jaxmix.stream.gmm(KEY, x, k, covariance_type="diag", progress=False),
        "stream.minibatch_kmeans": lambda x: jaxmix.stream.minibatch_kmeans(KEY, x, k, progress=False),
        "stream.online_gmm": lambda x: jaxmix.stream.online_gmm(KEY, x, k, progress=False),
    }


@given(case=cases, k=K_VALUES, entry=st.sampled_from(sorted(_fits(2))))
def test_fits_on_hostile_input(case, k, entry):
    _call(_fits(k)[entry], CASES[case]())


@pytest.fixture(scope="module")
def models():
    x = make_blobs(1, n=40, d=2, k=2)[0]
    return jaxmix.kmeans(KEY, x, 2), jaxmix.gmm(KEY, x, 2), jaxmix.soft_kmeans(KEY, x, 2, beta=1.0)


TOOLBOX = {
    "kmeans_predict": lambda m, x: jaxmix.kmeans_predict(m[0].centers, x),
    "transform": lambda m, x: jaxmix.transform(m[0].centers, x),
    "predict_proba": lambda m, x: jaxmix.predict_proba(m[1].params, x),
    "log_prob": lambda m, x: jaxmix.log_prob(m[1].params, x),
    "score": lambda m, x: jaxmix.score(m[1].params, x),
    "bic": lambda m, x: jaxmix.bic(m[1].params, x),
    "icl": lambda m, x: jaxmix.icl(m[1].params, x),
    "soft_kmeans_predict_proba": lambda m, x: jaxmix.soft_kmeans_predict_proba(m[2], x),
    "gmm_fixed_point": lambda m, x: jaxmix.gmm_fixed_point(m[1].params, x, tol=1e-4),
    "soft_kmeans_fixed_point": lambda m, x: jaxmix.soft_kmeans_fixed_point(m[2].centers, m[2].weights, x, 1.0),
    "fit_gradient": lambda m, x: jaxmix.fit_gradient(KEY, x, m[1].params, n_steps=3, batch_size=2),
    "stream.predict": lambda m, x: list(jaxmix.stream.predict(m[1], x)),
}


@given(case=cases, entry=st.sampled_from(sorted(TOOLBOX)))
def test_toolbox_on_hostile_input(models, case, entry):
    _call(lambda x: TOOLBOX[entry](models, x), CASES[case]())


def _estimators(k):
    from jaxmix import sklearn as jsk

    return {
        "KMeans": lambda: jsk.KMeans(k, n_init=1, random_state=0),
        "MiniBatchKMeans": lambda: jsk.MiniBatchKMeans(k, n_init=1, random_state=0),
        "GaussianMixture": lambda: jsk.GaussianMixture(k, random_state=0),
        "SoftKMeans": lambda: jsk.SoftKMeans(k, random_state=0),
    }


def _fitted_attributes(est):
    return {a: v for a, v in vars(est).items() if a.endswith("_") and not a.startswith("_")}


@given(case=cases, k=K_VALUES, entry=st.sampled_from(sorted(_estimators(2))))
def test_estimators_on_hostile_input(case, k, entry):
    pytest.importorskip("sklearn")
    _call(lambda x: _fitted_attributes(_estimators(k)[entry]().fit(x)), CASES[case]())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0])
def test_bad_values_in_weights_and_inits(bad):
    x = make_blobs(2, n=30)[0]
    w = np.ones(30)
    w[4] = bad
    calls = [
        lambda: jaxmix.kmeans(KEY, x, 2, weights=w),
        lambda: jaxmix.gmm(KEY, x, 2, weights=w),
        lambda: jaxmix.soft_kmeans(KEY, x, 2, beta=1.0, weights=w),
        lambda: jaxmix.kmeans(KEY, x, 2, init=np.array([[0.0, bad], [1.0, 1.0]])),
        lambda: jaxmix.gmm(KEY, x, 2, means_init=np.array([[0.0, bad], [1.0, 1.0]])),
        lambda: jaxmix.gmm(KEY, x, 2, weights_init=np.array([1.0 - bad, bad])),
    ]
    for i, call in enumerate(calls):
        if bad == -1.0 and i in (3, 4):
            continue  # a negative coordinate is a fine start
        with pytest.raises(ValueError):
            call()


# --- numerical guarantees ----------------------------------------------------------------

BASE = make_blobs(3, n=200, d=2, k=3, spread=0.8, dtype=np.float64)[0]


@pytest.mark.parametrize(("scale", "offset"), [(1.0, 1e6), (1e-6, 0.0), (1e6, 0.0)])
def test_float32_agrees_with_float64_under_offsets_and_scales(scale, offset):
    """The documented tolerances (README, Numerical guarantees)."""
    x32 = (BASE * scale + offset).astype(np.float32)
    x64 = x32.astype(np.float64)  # the same numbers: only the arithmetic differs
    init = x64[[0, 70, 140]]
    ulp = np.finfo(np.float32).eps * (abs(offset) + 10 * scale)  # float32 resolution of the outputs
    with jax.enable_x64(True):
        k64 = jaxmix.kmeans(KEY, x64, 3, init=init)
        g64 = jaxmix.gmm(KEY, x64, 3, means_init=init, reg_covar=1e-6 * scale**2, tol=1e-8)
        s64 = jaxmix.soft_kmeans(KEY, x64, 3, beta=0.5 / scale**2, init=init, tol=1e-8)
    k32 = jaxmix.kmeans(KEY, x32, 3, init=init.astype(np.float32))
    g32 = jaxmix.gmm(KEY, x32, 3, means_init=init.astype(np.float32), reg_covar=1e-6 * scale**2, tol=1e-8)
    s32 = jaxmix.soft_kmeans(KEY, x32, 3, beta=0.5 / scale**2, init=init.astype(np.float32), tol=1e-8)
    for r32, r64 in ((k32, k64), (s32, s64)):
        np.testing.assert_allclose(r32.centers, r64.centers, rtol=0, atol=1e-4 * scale + 4 * ulp)
    np.testing.assert_allclose(k32.inertia, k64.inertia, rtol=1e-4)
    assert np.mean(np.asarray(k32.labels) == np.asarray(k64.labels)) == 1.0
    p32, p64 = g32.params, g64.params
    np.testing.assert_allclose(p32.means, p64.means, rtol=0, atol=1e-3 * scale + 4 * ulp)
    np.testing.assert_allclose(p32.covariances, p64.covariances, rtol=1e-3, atol=1e-3 * scale**2)
    np.testing.assert_allclose(p32.weights, p64.weights, atol=1e-4)
    # mean log-likelihood moves by -d log(scale): compare in absolute terms
    assert abs(float(g32.log_likelihood) - float(g64.log_likelihood)) < 1e-3
    for r in (k32, g32, s32):
        assert leaves_finite(r)


def test_log_likelihood_is_finite_far_from_every_component():
    g = jaxmix.gmm(KEY, BASE.astype(np.float32), 3)
    sd = float(np.sqrt(np.max(np.asarray(g.params.covariances))))
    for dist in (1e2, 1e4, 1e6, 1e8):
        far = np.array([[dist * sd, -dist * sd]], np.float32) + BASE.mean(0).astype(np.float32)
        lp = jaxmix.log_prob(g.params, far)
        proba = jaxmix.predict_proba(g.params, far)
        assert bool(jnp.all(jnp.isfinite(lp))) and float(lp[0]) < 0, (dist, lp)
        assert bool(jnp.all(jnp.isfinite(proba))) and abs(float(proba.sum()) - 1) < 1e-5


def test_spreads_beyond_the_dtype_are_refused_and_work_in_float64():
    rng = np.random.default_rng(0)
    wide = np.c_[rng.normal(size=40) * 1e30, rng.normal(size=40) * 1e-30]
    with pytest.raises(ValueError, match="overflow float32"):
        jaxmix.kmeans(KEY, wide.astype(np.float32), 2)
    with pytest.raises(ValueError, match="underflow float32"):
        jaxmix.gmm(KEY, (rng.normal(size=(40, 2)) * 1e-25).astype(np.float32), 2)
    with pytest.raises(ValueError, match="x and the model span"):
        jaxmix.kmeans_predict(np.zeros((2, 2), np.float32), np.full((1, 2), 1e30, np.float32))
    with jax.enable_x64(True):
        r = jaxmix.kmeans(KEY, wide, 2)
        g = jaxmix.gmm(KEY, wide, 2, covariance_type="diag")
    assert leaves_finite(r) and leaves_finite(g)


# --- determinism -------------------------------------------------------------------------


def _bits(tree):
    return [np.asarray(a).tobytes() for a in jax.tree.leaves(tree)]


def test_the_same_key_gives_bit_identical_results():
    x = BASE.astype(np.float32)
    for fit in (
        lambda: jaxmix.kmeans(KEY, x, 3, n_init=3),
        lambda: jaxmix.gmm(KEY, x, 3, n_init=2),
        lambda: jaxmix.soft_kmeans(KEY, x, 3, beta=1.0),
    ):
        assert _bits(fit()) == _bits(fit())


def test_chunk_size_changes_only_the_summation_order():
    """Different row blocks sum in a different order: equal within float32 rounding (k-means: test_kmeans.py)."""
    x = BASE.astype(np.float32)
    ref = jaxmix.gmm(KEY, x, 3, covariance_type="diag")
    g = jaxmix.gmm(KEY, x, 3, covariance_type="diag", chunk_size=7)
    np.testing.assert_array_equal(g.labels, ref.labels)
    np.testing.assert_allclose(g.params.means, ref.params.means, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(g.log_likelihood, ref.log_likelihood, rtol=1e-5)


def test_estimators_with_the_same_random_state_are_identical():
    pytest.importorskip("sklearn")
    from jaxmix.sklearn import GaussianMixture, KMeans

    x = BASE.astype(np.float32)
    for make in (lambda: KMeans(3, random_state=7), lambda: GaussianMixture(3, random_state=7, n_init=2)):
        a, b = _fitted_attributes(make().fit(x)), _fitted_attributes(make().fit(x))
        assert a.keys() == b.keys()
        for name in a:
            assert np.asarray(a[name]).tobytes() == np.asarray(b[name]).tobytes(), name


# --- faults ------------------------------------------------------------------------------

SAVER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import jax.numpy as jnp
    import jaxmix
    path, n = sys.argv[1], int(sys.argv[2])
    def model(v):
        return jaxmix.KMeansResult(jnp.full((3, 2), v, jnp.float32), jnp.full((n,), v, jnp.int32),
            jnp.float32(v), jnp.int32(v), jnp.bool_(True), jnp.zeros(5, jnp.float32), jnp.bool_(False))
    a, b = model(1), model(2)
    jaxmix.save(a, path)
    print("ready", flush=True)
    i = 0
    while True:
        jaxmix.save(b if i % 2 else a, path)
        i += 1
    """
)


def test_a_save_killed_at_any_point_leaves_a_readable_file(tmp_path):
    """SIGKILL while a 40 MB model is being rewritten in a loop, at 4 random moments."""
    path = tmp_path / "model.npz"
    rng = np.random.default_rng(0)
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(path), str(10_000_000)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()[-2000:]
            time.sleep(float(rng.uniform(0.05, 0.8)))  # somewhere inside one of the saves
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            kills += proc.returncode == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        r = jaxmix.load(path)  # the previous complete file, never a torn one
        v = int(r.n_iter)
        assert v in (1, 2) and np.all(np.asarray(r.labels) == v) and np.all(np.asarray(r.centers) == v)
    assert kills == 4
    # A killed save can leave its temporary file (nothing runs after SIGKILL); it is
    # hidden, named after the target, and the target itself is always complete.
    assert all(p.name == "model.npz" or p.name.startswith(".model.npz.") for p in tmp_path.iterdir())


def test_corrupted_model_files_are_refused_or_read_back_exactly(tmp_path):
    x = make_blobs(4, n=60)[0]
    good = jaxmix.gmm(KEY, x, 2, covariance_type="full")
    path = tmp_path / "m.npz"
    jaxmix.save(good, path)
    raw = path.read_bytes()
    rng = np.random.default_rng(0)
    refused = exact = 0
    for trial in range(60):
        data = bytearray(raw)
        if trial % 3 == 0:
            data = data[: int(rng.integers(0, len(raw)))]  # truncated
        elif trial % 3 == 1:
            for i in rng.integers(0, len(raw), size=int(rng.integers(1, 8))):
                data[i] ^= int(rng.integers(1, 256))  # flipped bytes
        else:
            lo = int(rng.integers(0, len(raw) - 16))
            data[lo : lo + 16] = bytes(16)  # a zeroed block
        bad = tmp_path / f"bad{trial}.npz"
        bad.write_bytes(bytes(data))
        try:
            back = jaxmix.load(bad)
        except _io.ModelFileError as e:
            assert str(bad) in str(e)
            refused += 1
            continue
        assert _bits(back) == _bits(good), f"trial {trial}: a damaged file loaded as a different model"
        exact += 1
    assert refused >= 50 and refused + exact == 60


# --- no global state, no network, no stray files -----------------------------------------

PROBE = textwrap.dedent(
    """
    import json, os, socket, sys
    attempts = []
    def refuse(*a, **k):
        attempts.append(repr(a[:2]))
        raise OSError("network disabled by the test")
    socket.socket.connect = refuse
    socket.create_connection = refuse
    import numpy as np
    import jax
    def snapshot():
        names = sorted(n for n in jax.config.values if not n.startswith("jax_pjrt"))
        cfg = {n: repr(jax.config.values[n]) for n in names}
        return {"config": cfg, "np_err": np.geterr(), "env": dict(os.environ)}
    before = snapshot()
    import jaxmix, jaxmix.sklearn, jaxmix.stream
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    jaxmix.kmeans(jax.random.key(0), x, 2); jaxmix.gmm(jax.random.key(0), x, 2)
    jaxmix.stream.kmeans(jax.random.key(0), x, 2, progress=False)
    jaxmix.sklearn.GaussianMixture(2, random_state=0).fit(x.astype(np.float64))
    jaxmix.save(jaxmix.kmeans(jax.random.key(0), x, 2), sys.argv[1])
    jaxmix.load(sys.argv[1])
    after = snapshot()
    changed = sorted(k for k in before["config"] if before["config"][k] != after["config"].get(k))
    env = sorted(k for k in set(before["env"]) | set(after["env"]) if before["env"].get(k) != after["env"].get(k))
    print(json.dumps({"config": changed, "np_err": before["np_err"] != after["np_err"], "env": env,
                      "network": attempts}))
    """
)


def test_no_global_state_no_network_and_no_writes_outside_the_given_path(tmp_path):
    home, tmp, cwd, out = (tmp_path / n for n in ("home", "tmp", "cwd", "out"))
    for d in (home, tmp, cwd, out):
        d.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX", "XLA"))}
    env.update(HOME=str(home), TMPDIR=str(tmp), XDG_CACHE_HOME=str(home / ".cache"))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out / "model.npz")], cwd=cwd, env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert report == {"config": [], "np_err": False, "env": [], "network": []}
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["out/model.npz"]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([0.5, 0.5], [[0.0], [1.0]], [1.0, -2.0], "spherical"), "positive definite"),
        (([1.0], [[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]], "full"), "positive definite"),
        (([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]], "full"), "symmetric"),
        (([1.0], [[0.0, 0.0]], [1.0, 1.0], "tied"), "must have shape"),
        (([0.5, 0.5], [[0.0, 0.0]], [1.0], "spherical"), "weights"),
        (([1.0], [[0.0]], [1.0], "round"), "covariance_type"),
        ((["a"], [["b"]], ["c"], "spherical"), "dtype"),
    ],
)
def test_from_covariances_refuses_what_would_give_nan(args, match):
    with pytest.raises(ValueError if match != "dtype" else TypeError, match=match):
        jaxmix.GMMParams.from_covariances(*args)
    p = jaxmix.GMMParams.from_covariances([0.5, 0.5], [[0.0], [1.0]], [1.0, 2.0], "spherical")  # lists are fine
    assert leaves_finite(p) and p.precisions_cholesky.shape == (2,)


def test_fits_inside_jit_on_concrete_closed_over_arrays():
    """Found by this issue: value checks ran on concrete arrays inside a trace (TracerBoolConversionError)."""
    x = jnp.asarray(BASE, jnp.float32)
    params = jaxmix.gmm(KEY, x, 3).params
    out = jax.jit(
        lambda key: (
            jaxmix.kmeans(key, x, 3).inertia,
            jaxmix.gmm(key, x, 3, covariance_type="diag").log_likelihood,
            jaxmix.log_prob(params, x).sum(),
            jaxmix.kmeans_predict(params.means, x).sum(),
        )
    )(KEY)
    assert all(bool(jnp.isfinite(v)) for v in out)
    np.testing.assert_allclose(out[0], jaxmix.kmeans(KEY, x, 3).inertia, rtol=1e-5)


BAD_FILES = [
    b"",
    b"a,b\nx,y\n",
    b"1,2\nnan,3\n4,5\n",
    b"1,2\n3\n4,5\n",
    b"1e30,1\n-1e30,2\n3e30,3\n",
    b"PK\x03\x04" + bytes(40),
    b"\x93NUMPY" + bytes(20),
]


@given(
    content=st.one_of(st.sampled_from(BAD_FILES), st.binary(max_size=300)),
    command=st.sampled_from(["fit", "select", "info", "predict"]),
    suffix=st.sampled_from([".csv", ".npy", ".npz"]),
)
def test_command_line_on_hostile_files(tmp_path_factory, content, command, suffix):
    from jaxmix import cli

    folder = tmp_path_factory.mktemp("cli")
    path = folder / f"data{suffix}"
    path.write_bytes(content)
    argv = {
        "fit": ["fit", str(path), "-k", "2", "--no-plot", "--quiet", "-o", str(folder / "out")],
        "select": ["select", str(path), "--k", "1..2", "--no-plot", "--quiet", "-o", str(folder / "sel")],
        "info": ["info", str(path)],
        "predict": ["predict", str(path), str(path)],
    }[command]
    buf = io.StringIO()
    with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(argv)
    err = buf.getvalue()
    if code != 0:  # random bytes are almost never a valid table or model file
        assert code == 2 and err.startswith("jaxmix: error:"), err[-2000:]
        assert "Traceback" not in err and not any(m in err for m in INTERNAL_MARKERS)
