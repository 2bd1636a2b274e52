"""Compiled programs: buckets share them, a bound releases them, a disk cache keeps them."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix
from jaxmix.engine import buckets as _buckets
from jaxmix.engine import program_files as _program_files
from jaxmix.engine import programs as _jit

KEY = jax.random.key(0)
_compiles: list[str] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, secs, **kw: (
        _compiles.append(kw.get("fun_name", "?")) if event == "/jax/core/compile/backend_compile_duration" else None
    )
)


def _wine_like(n=178, d=13, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[: n // 3] += 3.0
    return x


def _exact(monkeypatch):
    """Run the next fits at their exact sizes (no bucket)."""
    monkeypatch.setattr(_buckets, "SMALL_WORK", 0)


def test_round_rows_and_plan():
    assert [_buckets.round_rows(n) for n in (1, 8, 9, 178, 192, 193, 1000)] == [1, 8, 10, 192, 192, 224, 1024]
    p = _buckets.plan(178, 3, 13, 10, 300)
    assert (p.rows, p.k_program, p.n_init_program, p.history) == (192, 8, 16, 1024)
    assert _buckets.plan(10**6, 100, 128, 1, 300) is None  # large fits run at their own sizes
    assert _buckets.plan(10, 9, 2, 1, 10).k_program == 10  # k near n: rounded to at most the rows


def test_k_sweep_compiles_one_program_per_bucket():
    x = _wine_like(150, 7)
    jaxmix.kmeans(KEY, x, 2, n_init=3).inertia.block_until_ready()  # the k <= 16 program (small data)
    before = len(_compiles)
    for k in (2, 3, 5, 8, 9, 12, 16):
        for n_init, max_iter in ((3, 300), (4, 50)):
            jaxmix.kmeans(KEY, x, k, n_init=n_init, max_iter=max_iter).inertia.block_until_ready()
    assert len(_compiles) == before, _compiles[before:]  # not even an eager validation op
    jaxmix.kmeans(KEY, x, 17, n_init=3).inertia.block_until_ready()
    jaxmix.kmeans(KEY, x, 32, n_init=3).inertia.block_until_ready()
    assert len(_compiles) == before + 1  # k = 17..32: one more program


def test_k_buckets_start_at_16_only_on_the_smallest_data():
    # wine with 10 restarts: 192 rows x 16 clusters x 13 x 16 restarts = 0.64M multiply-adds per iteration
    assert _buckets.sweep_min_k(178, 13, 10) == 16
    p = _buckets.plan(178, 3, 13, 10, 300, _buckets.sweep_min_k(178, 13, 10))
    assert (p.rows, p.k_program, p.n_init_program) == (192, 16, 16) and p.work <= _jit.TINY_WORK
    assert _buckets.sweep_min_k(5000, 13, 10) == _buckets.MIN_K  # larger data: masked clusters would cost real time
    assert _buckets.plan(5000, 3, 13, 10, 300, _buckets.MIN_K).k_program == 8


def test_gmm_grid_shares_programs():
    x = _wine_like(120, 4)
    start = len(_compiles)
    jaxmix.gmm(KEY, x, 2, covariance_type="diag", n_init=3).log_likelihood.block_until_ready()
    # the k-means start is a program of its own, shared by every covariance type
    assert sorted(_compiles[start:]) == ["jit(_gmm)", "jit(_starts)"], _compiles[start:]
    before = len(_compiles)
    for k in range(1, 7):
        for n_init in (3, 4):  # restarts round up to a power of two
            g = jaxmix.gmm(KEY, x, k, covariance_type="diag", n_init=n_init, max_iter=20 + k)
            assert g.params.means.shape == (k, 4) and g.history.shape == (20 + k,)
    assert len(_compiles) == before, _compiles[before:]
    for covariance_type in ("full", "tied", "spherical", "EII", "EEI"):
        # closed-form models of small data run as full matrices: the same program as diag
        g = jaxmix.gmm(KEY, x, 3, covariance_type=covariance_type, n_init=3)
        assert g.params.covariance_type == covariance_type
    assert _compiles[before:] == [], _compiles[before:]
    jaxmix.gmm(KEY, x, 3, covariance_type="VEI", n_init=3).log_likelihood.block_until_ready()
    assert _compiles[before:] == ["jit(_gmm)"], _compiles[before:]  # an iterative M-step: a program of its own


def test_select_grid_of_closed_form_types_compiles_one_fitting_program():
    x = _wine_like(90, 2, seed=5)
    before = len(_compiles)
    s = jaxmix.select(KEY, x, range(1, 4), ("full", "tied", "diag", "spherical", "EEI"), n_init=2, max_iter=30)
    # The default start: mclust's agglomeration (one program) and k-means restarts on z-scores.
    assert sorted(_compiles[before:]) == ["jit(_agglomerate)", "jit(_select_type)", "jit(_starts)"], _compiles[before:]
    before = len(_compiles)
    jaxmix.select(KEY, x, range(1, 4), ("full", "tied", "diag", "spherical", "EEI"), n_init=2, init="kmeans")
    assert sorted(_compiles[before:]) == ["jit(_select_type)"], _compiles[before:]  # _starts: the same program
    assert s.fit(2, "diag").params.covariances.shape == (2, 2)
    assert s.fit(2, "tied").params.covariances.shape == (2, 2) and s.fit(3, "EEI").params.covariances.shape == (3, 2)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "EII", "EEI"])
def test_dense_fit_equals_the_models_own_program(monkeypatch, covariance_type):
    """A small fit run as full matrices with a traced projection (`gaussian_dense`) gives the model's
    own program's fit: same labels, iterations, shapes, and parameters to float32 round-off."""
    from jaxmix.families import gaussian_dense

    x = _wine_like(150, 3, seed=2)
    dense = jaxmix.gmm(KEY, x, 3, covariance_type=covariance_type, n_init=2, max_iter=60)
    monkeypatch.setattr(gaussian_dense, "DENSE_FIT_WORK", 0)
    own = jaxmix.gmm(KEY, x, 3, covariance_type=covariance_type, n_init=2, max_iter=60)
    assert dense.params.covariances.shape == own.params.covariances.shape
    assert int(dense.n_iter) == int(own.n_iter)
    np.testing.assert_array_equal(np.asarray(dense.labels), np.asarray(own.labels))
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        a, b = np.asarray(getattr(dense.params, name)), np.asarray(getattr(own.params, name))
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(float(dense.log_likelihood), float(own.log_likelihood), rtol=1e-5)


def test_toolbox_scores_every_covariance_model_in_one_program(monkeypatch):
    from jaxmix.models import mixture

    x = _wine_like(100, 3, seed=4)
    fits = {ct: jaxmix.gmm(KEY, x, 3, covariance_type=ct, max_iter=10) for ct in ("full", "tied", "diag", "EEI")}
    jaxmix.bic(fits["full"].params, x).block_until_ready()
    before = len(_compiles)
    got = {
        ct: (float(jaxmix.bic(f.params, x)), np.asarray(jaxmix.predict_proba(f.params, x))) for ct, f in fits.items()
    }
    # bic reuses the full model's program for all four; predict_proba compiles one program for all four
    assert _compiles[before:] == ["jit(_per_row)"], _compiles[before:]
    monkeypatch.setattr(mixture, "DENSE_TOOLBOX_WORK", 0)  # each model's own formula
    for ct, f in fits.items():
        np.testing.assert_allclose(got[ct][0], float(jaxmix.bic(f.params, x)), rtol=1e-5)
        np.testing.assert_allclose(got[ct][1], jaxmix.predict_proba(f.params, x), atol=1e-5)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_masked_kmeans_equals_exact_k(init, monkeypatch):
    x = _wine_like()
    for k, n_init in ((3, 1), (5, 3)):
        a = jaxmix.kmeans(KEY, x, k, init=init, n_init=n_init, max_iter=40)
        with monkeypatch.context() as m:
            _exact(m)
            b = jaxmix.kmeans(KEY, x, k, init=init, n_init=n_init, max_iter=40)
        assert a.centers.shape == b.centers.shape == (k, 13)
        np.testing.assert_array_equal(a.centers, b.centers)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_allclose(a.inertia, b.inertia, rtol=1e-6)
        np.testing.assert_allclose(a.history, b.history, rtol=1e-6)
        assert int(a.n_iter) == int(b.n_iter) and a.history.shape == (40,)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_masked_gmm_equals_exact_k(covariance_type, monkeypatch):
    x = _wine_like(150, 4)
    a = jaxmix.gmm(KEY, x, 3, covariance_type=covariance_type, n_init=3)
    with monkeypatch.context() as m:
        _exact(m)
        b = jaxmix.gmm(KEY, x, 3, covariance_type=covariance_type, n_init=3)
    for u, v in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        assert u.shape == v.shape
        np.testing.assert_allclose(u, v, rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.log_likelihood, b.log_likelihood, rtol=1e-5)
    assert int(a.n_iter) == int(b.n_iter) and a.collapsed.shape == (3,)


def test_padded_rows_equal_unpadded():
    x = _wine_like(178, 5)
    xp = np.concatenate([x, np.full((40, 5), 7.0, np.float32)])
    w = np.concatenate([np.ones(178, np.float32), np.zeros(40, np.float32)])
    a = jaxmix.kmeans(KEY, x, 4, n_init=2)
    b = jaxmix.kmeans(KEY, xp, 4, n_init=2, weights=w)
    np.testing.assert_allclose(a.centers, b.centers, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(a.labels, b.labels[:178])
    # (a mixture's zero-weight rows: tests/test_gmm.py::test_zero_weight_rows_change_nothing; its
    # k-means start seeds as above)


def test_input_is_not_mutated_and_bucketed_results_keep_dtype():
    x = _wine_like(50, 3)
    copy = x.copy()
    r = jaxmix.kmeans(KEY, x, 3)
    np.testing.assert_array_equal(x, copy)
    assert r.centers.dtype == np.float32 and r.labels.shape == (50,)


def test_program_bound_releases_least_recently_used(monkeypatch):
    @_jit.fit_jit(static_argnames=("c",))
    def add(x, *, c):
        return x + c

    _jit.set_max_programs(3)
    try:
        for c in range(10):
            np.testing.assert_allclose(add(np.zeros(2, np.float32), c=c), [c, c])
        assert add._cache_size() <= 3
        assert _jit.programs_alive() <= 3
    finally:
        _jit.set_max_programs(None)


def test_program_bound_keeps_a_long_process_alive(tmp_path):
    # A process compiling 400 distinct programs keeps only the bound alive: its
    # memory mappings stop growing (each XLA:CPU program holds several).
    code = textwrap.dedent(
        """
        import numpy as np
        from jaxmix.engine import programs as _jit
        def maps():
            return sum(1 for _ in open('/proc/self/maps'))
        @_jit.fit_jit(static_argnames=("c",))
        def f(x, *, c):
            return (x * c).sum() + c
        x = np.ones(4, np.float32)
        for c in range(20):
            f(x, c=c)
        early = maps()
        for c in range(20, 400):
            f(x, c=c)
        print(early, maps(), _jit.programs_alive())
        """
    )
    env = dict(os.environ, JAXMIX_MAX_PROGRAMS="16")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    early, late, alive = map(int, out.stdout.split())
    assert alive <= 16
    assert late - early < 200  # unbounded, 380 more programs would add thousands of mappings


_CACHE_SCRIPT = """
import json, sys, warnings
import jax, numpy as np
events, traces = [], []
jax.monitoring.register_event_listener(lambda e, **kw: events.append(e))
jax.monitoring.register_event_duration_secs_listener(
    lambda e, s, **kw: traces.append(kw.get("fun_name")) if e == "/jax/core/compile/jaxpr_trace_duration" else None)
import jaxmix
x = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
with warnings.catch_warnings():
    warnings.simplefilter("error")
    r = jaxmix.kmeans(jax.random.key(0), x, 3, n_init=2)
print(json.dumps({"hits": events.count("/jax/compilation_cache/cache_hits"),
                  "misses": events.count("/jax/compilation_cache/cache_misses"),
                  "traced": traces.count("_kmeans"), "inertia": float(r.inertia), "x64": jax.config.jax_enable_x64,
                  "dir": jax.config.jax_compilation_cache_dir}))
"""


def _run_cached(folder: Path) -> dict:
    import json

    env = dict(os.environ, JAXMIX_CACHE_DIR=str(folder))
    out = subprocess.run([sys.executable, "-c", _CACHE_SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_disk_cache_serves_a_second_process_and_survives_damage(tmp_path):
    first = _run_cached(tmp_path)
    assert first["hits"] == 0 and first["misses"] >= 1
    assert first["dir"] is None  # the user's JAX configuration is left alone
    entries = [p for p in tmp_path.rglob("*") if p.is_file() and p.name.endswith("-cache")]
    assert entries
    assert first["traced"] == 1
    exported = list(tmp_path.rglob("*" + _program_files.SUFFIX))
    assert len(exported) == 1
    second = _run_cached(tmp_path)
    assert second["hits"] >= 1 and second["misses"] == 0
    assert second["traced"] == 0  # read as an exported program: neither traced nor lowered again
    assert second["inertia"] == first["inertia"]
    for p in entries + exported:  # damaged entries: truncated, or bytes of another kind
        p.write_bytes(b"not an executable" if p.stat().st_size % 2 else p.read_bytes()[:100])
    third = _run_cached(tmp_path)
    assert third["inertia"] == first["inertia"] and third["traced"] == 1


@_jit.fit_jit(static_argnames=("power",))
def _powers(x, scale, *, power):
    return {"sum": jnp.sum(x**power) * scale, "rows": x[:2]}


@_jit.fit_jit()
def _reports(x):
    jax.debug.callback(lambda v: None, jnp.sum(x))  # a host callback: not exportable
    return jnp.sum(x)


def test_exported_programs_are_read_back_rewritten_when_damaged_and_keyed(tmp_path, monkeypatch):
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    dynamic = {"x": x, "scale": np.float32(2.0)}
    options = _jit.compiler_options(None)  # what a plain call of the program compiles with
    plain = _powers(x, np.float32(2.0), power=2)
    monkeypatch.setattr(_jit, "_cache_dir_set", False)
    monkeypatch.setenv(_jit.ENV_CACHE_DIR, str(tmp_path))
    kept = _powers(x, np.float32(2.0), power=2)  # through the exported program, written to disk
    assert float(kept["sum"]) == float(plain["sum"]) == 2 * float(np.sum(x**2))
    np.testing.assert_array_equal(kept["rows"], x[:2])
    files = list((tmp_path / "exported").glob("*" + _program_files.SUFFIX))
    assert len(files) == 1
    assert _reports(x) == np.sum(x)  # not exportable: compiled as before, nothing written
    assert len(list((tmp_path / "exported").glob("*" + _program_files.SUFFIX))) == 1

    def no_export(*a, **k):
        raise AssertionError("exported again")

    with monkeypatch.context() as m:  # read back, not exported again
        m.setattr(jax.export, "export", no_export)
        exp = _program_files.exported(_powers._fun, {"power": 2}, dynamic, options, tmp_path)
    assert exp is not None and float(exp.call(**dynamic)["sum"]) == float(plain["sum"])
    files[0].write_bytes(b"damaged")
    exp = _program_files.exported(_powers._fun, {"power": 2}, dynamic, options, tmp_path)
    assert float(exp.call(**dynamic)["sum"]) == float(plain["sum"])
    assert files[0].stat().st_size > 100  # rewritten whole
    key = _program_files.program_key(_powers._fun, {"power": 2}, dynamic, options)
    assert key == files[0].name.removesuffix(_program_files.SUFFIX)
    assert _program_files.program_key(_powers._fun, {"power": 3}, dynamic, None) != key
    assert _program_files.program_key(_powers._fun, {"power": 2}, {**dynamic, "x": x[:2]}, None) != key
    assert _program_files.program_key(_powers._fun, {"power": 2}, dynamic, {"xla_backend_optimization_level": 0}) != key
    monkeypatch.setattr(_program_files, "_source_digest", lambda: "an edited jaxmix")
    assert _program_files.program_key(_powers._fun, {"power": 2}, dynamic, None) != key
    assert _program_files.program_key(_powers._fun, {"power": object()}, dynamic, None) is None


def test_cache_programs_switch(tmp_path, monkeypatch):
    monkeypatch.setattr(_jit, "_cache_dir_set", False)
    monkeypatch.setenv(_jit.ENV_CACHE_DIR, str(tmp_path))
    assert _jit.program_cache_dir() == tmp_path
    monkeypatch.setenv(_jit.ENV_CACHE_DIR, "0")
    assert _jit.program_cache_dir() is None
    try:
        assert jaxmix.cache_programs(tmp_path / "c") == tmp_path / "c"
        assert _jit.program_cache_dir() == tmp_path / "c"
        assert jaxmix.cache_programs(False) is None and _jit.program_cache_dir() is None
        with pytest.raises(TypeError, match="folder"):
            jaxmix.cache_programs(3)  # type: ignore[arg-type]
    finally:
        monkeypatch.setattr(_jit, "_cache_dir", None)
        monkeypatch.setattr(_jit, "_cache_dir_set", False)


def test_fit_inside_user_jit_keeps_exact_sizes():
    x = _wine_like(40, 2)
    f = jax.jit(lambda x: jaxmix.kmeans(KEY, x, 3, n_init=2).centers)
    assert f(x).shape == (3, 2)
    g = jax.jit(lambda x: jaxmix.gmm(KEY, x, 2, covariance_type="diag").params.means)
    assert g(x).shape == (2, 2)


def test_compile_notice_on_the_progress_display(capfd, monkeypatch):
    monkeypatch.setattr(_jit, "NOTICE_S", 0.0)
    x = _wine_like(33, 11)  # a size no other test compiles
    jaxmix.kmeans(KEY, x, 3, progress=True)
    assert "compiling kmeans for n_clusters=16" in capfd.readouterr().err


def test_masked_soft_kmeans_equals_exact_k(monkeypatch):
    x = _wine_like(150, 4)
    a = jaxmix.soft_kmeans(KEY, x, 3, beta=0.5, n_init=3)
    with monkeypatch.context() as m:
        _exact(m)
        b = jaxmix.soft_kmeans(KEY, x, 3, beta=0.5, n_init=3)
    assert a.centers.shape == b.centers.shape == (3, 4) and a.weights.shape == (3,)
    np.testing.assert_allclose(a.centers, b.centers, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.weights, b.weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert int(a.n_iter) == int(b.n_iter)


def test_toolbox_pads_rows_and_components():
    x = _wine_like(70, 3)
    g = jaxmix.gmm(KEY, x, 3, covariance_type="full")
    lp = jaxmix.log_prob(g.params, x)
    proba = jaxmix.predict_proba(g.params, x[:9])
    assert lp.shape == (70,) and proba.shape == (9, 3)
    np.testing.assert_allclose(np.asarray(proba).sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(jaxmix.score(g.params, x), float(np.mean(lp)), rtol=1e-5)
    from sklearn.mixture import GaussianMixture

    sk = GaussianMixture(3, covariance_type="full").fit(x)  # any fitted model: compare at its parameters
    p = jaxmix.GMMParams.from_covariances(sk.weights_, sk.means_, sk.covariances_, "full")
    np.testing.assert_allclose(jaxmix.bic(p, x), sk.bic(x.astype(np.float64)), rtol=1e-4)
    np.testing.assert_allclose(jaxmix.log_prob(p, x), sk.score_samples(x.astype(np.float64)), rtol=1e-4, atol=1e-4)
    jaxmix.log_prob(g.params, x[:57]).block_until_ready()
    before = len(_compiles)
    for n in (58, 61, 63, 64):  # one row bucket (57..64), one component bucket: no new program
        jaxmix.log_prob(g.params, x[:n]).block_until_ready()
    assert len(_compiles) == before


def test_compiler_options_by_size_and_an_unknown_option_is_dropped(monkeypatch):
    """Small fits compile for compile speed (tiny: LLVM level 0; both without fusion emitters),
    large ones with the defaults; JAXMIX_COMPILE=fast moves large ones to the small options; an
    option a jaxlib does not know is dropped and the program compiled without it."""
    from jaxmix.engine import programs as _jit

    monkeypatch.delenv("JAXMIX_COMPILE", raising=False)
    assert _jit.compiler_options(None) == _jit.CPU_COMPILER_OPTIONS
    assert _jit.compiler_options(_jit.TINY_WORK) == _jit.CPU_TINY_COMPILER_OPTIONS
    assert _jit.compiler_options(_jit.TINY_WORK + 1) == _jit.CPU_SMALL_COMPILER_OPTIONS
    monkeypatch.setenv("JAXMIX_COMPILE", "fast")
    assert _jit.compiler_options(None) == _jit.CPU_SMALL_COMPILER_OPTIONS
    # A mixture's work counts each (row, component) pair's exp/logsumexp, not only its d multiply-adds:
    # select's grid on 300 x 2 (512 rows, k <= 5, 10 restarts x 5 values of k) is not tiny (it ran ~5x
    # slower per iteration at level 0), while the same pairs' k-means distance pass is.
    from jaxmix.models.gmm import gmm_work

    distance_work = 512 * 5 * 2 * 50
    assert distance_work <= _jit.TINY_WORK < gmm_work(distance_work, "spherical", 2)
    assert gmm_work(13 * 1000, "full", 13) > gmm_work(13 * 1000, "tied", 13) > gmm_work(13 * 1000, "diag", 13)

    monkeypatch.setattr(_jit, "CPU_TINY_COMPILER_OPTIONS", {**_jit.CPU_TINY_COMPILER_OPTIONS, "xla_no_such_flag": 1})
    monkeypatch.setattr(_jit, "_unsupported_options", set())

    @_jit.fit_jit(static_argnames=("c",))
    def f(x, *, c):
        return x * c

    np.testing.assert_array_equal(f.small(1)(np.ones(3, np.float32), c=2.0), 2.0)
    assert _jit._unsupported_options == {"xla_no_such_flag"}
    assert "xla_no_such_flag" not in _jit.compiler_options(1)
