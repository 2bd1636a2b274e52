"""Fits on rows split over devices (4 simulated CPU devices) and over processes (jax.distributed).

The 4-device cases run in one subprocess (`_sharded_worker.py`): the device
count is fixed when JAX starts, and the rest of the suite runs on one.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxmix

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# Session scope: with --dist loadgroup the module's tests may not run back to back,
# and a module fixture then ran the 4-device worker twice (~57 s each).
@pytest.fixture(scope="session")
def four_devices():
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run(
        [sys.executable, str(HERE / "_sharded_worker.py")], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_worker_saw_four_devices_and_padding(four_devices):
    assert four_devices["devices"] == 4
    assert four_devices["padded_rows"] == 600  # 598 rows padded to a multiple of 4
    assert four_devices["pad_weight"] == 0.0
    assert four_devices["x_spec"] == "P('data',)"


@pytest.mark.parametrize("case", ["kmeans_explicit", "kmeans_restarts", "kmeans_auto", "kmeans_2d_mesh"])
def test_sharded_kmeans_equals_one_device(four_devices, case):
    r = four_devices[case]
    one, many = r["one"], r["many"]
    assert many[1] == one[1]  # same iterations
    np.testing.assert_allclose(many[0], one[0], rtol=1e-5)
    np.testing.assert_allclose(many[2], one[2], atol=1e-4)
    assert r["labels_equal"] == 1.0
    assert r["labels_spec"] == "P('data',)"  # labels stay split like x


@pytest.mark.parametrize("case", ["gmm_full", "gmm_diag_random", "gmm_vev"])
def test_sharded_gmm_equals_one_device(four_devices, case):
    one, many = four_devices[case]["one"], four_devices[case]["many"]
    assert many[1] == one[1]
    np.testing.assert_allclose(many[0], one[0], rtol=1e-5)
    np.testing.assert_allclose(many[2], one[2], atol=1e-4)
    np.testing.assert_allclose(many[3], one[3], atol=1e-4)


def test_sharded_soft_kmeans_equals_one_device(four_devices):
    one, many = four_devices["soft_kmeans"]["one"], four_devices["soft_kmeans"]["many"]
    assert many[1] == one[1]
    np.testing.assert_allclose(many[0], one[0], rtol=1e-5)
    np.testing.assert_allclose(many[2], one[2], atol=1e-4)


def test_sharded_select_equals_one_device(four_devices):
    one, many = four_devices["select"]["one"], four_devices["select"]["many"]
    np.testing.assert_allclose(many[0], one[0], rtol=1e-5)
    assert many[1:] == one[1:]


def test_toolbox_on_sharded_rows(four_devices):
    t = four_devices["toolbox"]
    assert t["predict_equal"] == 1.0
    assert t["log_prob_diff"] < 1e-4
    assert t["log_prob_spec"] == "P('data',)"


def test_user_sharded_array_without_weights(four_devices):
    r = four_devices["kmeans_even_no_weights"]
    np.testing.assert_allclose(r["many"][0], r["one"][0], rtol=1e-5)


def test_sharded_errors_are_clear(four_devices):
    e = four_devices["errors"]
    assert e["feature_axis"].startswith("ValueError") and "feature axis" in e["feature_axis"]
    assert e["hamerly"].startswith("ValueError") and "lloyd" in e["hamerly"]
    assert e["bad_weights"].startswith("ValueError") and ">= 0" in e["bad_weights"]


def test_shard_rows_one_device_mesh_pads_nothing_and_checks():
    x = np.arange(12.0, dtype=np.float32).reshape(6, 2)
    before = x.copy()
    mesh = jax.make_mesh((1,), ("data",))
    xs, ws = jaxmix.shard_rows(x, mesh, weights=np.ones(6))
    assert xs.shape == (6, 2) and ws.shape == (6,)
    np.testing.assert_array_equal(x, before)  # input not mutated
    with pytest.raises(TypeError, match="mesh"):
        jaxmix.shard_rows(x, "data")
    with pytest.raises(ValueError, match="not an axis"):
        jaxmix.shard_rows(x, mesh, "rows")
    with pytest.raises(ValueError, match="NaN"):
        jaxmix.shard_rows(np.array([[np.nan, 0.0]]), mesh)


def test_two_processes_get_the_single_process_model(tmp_path):
    """`python -m jaxmix.launch -n 2` on 127.0.0.1 (gloo): both processes fit on their halves."""
    out = tmp_path / "model.npz"
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "jaxmix.launch", "-n", "2", str(ROOT / "examples" / "distributed_fit.py"), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    # Both processes write to the same pipe: their lines may interleave, so match them anywhere.
    found = re.findall(
        r"process (\d)/2: (\d+) local rows; kmeans inertia ([-\d.]+); gmm [^;]*?(-?[\d.]+\d)", proc.stdout
    )
    assert sorted(f[0] for f in found) == ["0", "1"], proc.stdout
    assert found[0][2:] == found[1][2:]  # both processes report the same model
    got = np.load(out)
    x = jaxmix.datasets.load_faithful()
    key = jax.random.key(0)
    km = jaxmix.kmeans(key, x, 2, n_init=3)
    gm = jaxmix.gmm(key, x, 2)
    np.testing.assert_allclose(float(got["inertia"]), float(km.inertia), rtol=1e-5)
    order = np.argsort(np.asarray(km.centers)[:, 0])
    np.testing.assert_allclose(
        got["centers"][np.argsort(got["centers"][:, 0])], np.asarray(km.centers)[order], atol=1e-3
    )
    np.testing.assert_allclose(float(got["log_likelihood"]), float(gm.log_likelihood), rtol=1e-5)
    np.testing.assert_allclose(got["means"], np.asarray(gm.params.means), atol=1e-3)


def test_one_device_mesh_runs_the_readme_block():
    """A mesh of one device (a laptop, one GPU) is the first case a user meets (issue 17, item 9):
    every fit on `shard_rows` output equals the plain fit (the README's multi-device block)."""
    x = np.random.default_rng(3).normal(size=(60, 2)).astype(np.float32)
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))  # one device, however many there are
    xs, ws = jaxmix.shard_rows(x, mesh)
    key = jax.random.key(0)
    km, km_plain = jaxmix.kmeans(key, xs, 3, weights=ws, n_init=2), jaxmix.kmeans(key, x, 3, n_init=2)
    np.testing.assert_allclose(km.inertia, km_plain.inertia, rtol=1e-5)
    assert float(jaxmix.kmeans(key, xs, 3).inertia) > 0  # without weights too
    g, g_plain = jaxmix.gmm(key, xs, 2, weights=ws), jaxmix.gmm(key, x, 2)
    np.testing.assert_allclose(g.log_likelihood, g_plain.log_likelihood, rtol=1e-5)
    s = jaxmix.select(key, xs, [1, 2], covariance_types=("diag",), weights=ws)
    assert s.best_k in (1, 2) and np.isfinite(s.bic).all()
