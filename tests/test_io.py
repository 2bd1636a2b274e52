"""Model files: exact round trips, atomic writes, clear errors, no pickle."""

import json
import os
import pickle
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_blobs

import jaxmix
from jaxmix.tools import files as _io

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def x():
    return make_blobs(0, n=200, d=2, k=3)[0]


def assert_identical(a, b):
    """Same type, same tree, every array with the same dtype, shape and bits."""
    assert type(a) is type(b)
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for u, v in zip(la, lb, strict=True):
        u, v = np.asarray(u), np.asarray(v)
        assert u.dtype == v.dtype and u.shape == v.shape
        assert u.tobytes() == v.tobytes()


def gmm_params(ctype, dtype=np.float32):
    rng = np.random.default_rng(1)
    k, d = 3, 2
    cov = {
        "full": np.stack([np.eye(d) * (j + 1) + 0.3 for j in range(k)]),
        "tied": np.eye(d) + 0.2,
        "diag": rng.uniform(0.5, 2.0, (k, d)),
        "spherical": rng.uniform(0.5, 2.0, (k,)),
    }[ctype]
    w = np.array([0.2, 0.3, 0.5])
    return jaxmix.GMMParams.from_covariances(
        jnp.asarray(w, dtype), jnp.asarray(rng.normal(size=(k, d)), dtype), jnp.asarray(cov, dtype), ctype
    )


FITS = {
    "kmeans": lambda x: jaxmix.kmeans(KEY, x, 3, n_init=2),
    "kmeans_batch": lambda x: jaxmix.kmeans_batch(KEY, np.stack([x[:100], x[100:]]), 3),
    "soft_kmeans": lambda x: jaxmix.soft_kmeans(KEY, x, 3, beta=0.5),
    "gmm": lambda x: jaxmix.gmm(KEY, x, 3, covariance_type="diag"),
}


@pytest.mark.parametrize("name", list(FITS))
def test_round_trip_of_results_is_exact(tmp_path, x, name):
    r = FITS[name](x)
    path = tmp_path / "model.npz"
    jaxmix.save(r, path)
    back = jaxmix.load(path)
    assert_identical(back, r)
    assert np.asarray(back.labels).dtype == np.int32
    # NumPy arrays, consistently (exact whatever JAX's x64 setting).
    assert all(isinstance(a, np.ndarray) for a in jax.tree_util.tree_leaves(back))


@pytest.mark.parametrize("ctype", ["full", "tied", "diag", "spherical"])
def test_round_trip_of_gmm_params(tmp_path, ctype):
    p = gmm_params(ctype)
    jaxmix.save(p, tmp_path / "p.npz")
    back = jaxmix.load(tmp_path / "p.npz")
    assert back.covariance_type == ctype
    assert_identical(back, p)
    # The loaded parameters work with the toolbox.
    pts = np.zeros((4, 2), np.float32)
    np.testing.assert_array_equal(jaxmix.log_prob(back, pts), jaxmix.log_prob(p, pts))


def test_float64_survives_a_load_without_x64(tmp_path, x):
    with jax.enable_x64(True):
        r = jaxmix.kmeans(KEY, x.astype(np.float64), 3)
        p = gmm_params("full", np.float64)
        assert r.centers.dtype == jnp.float64
        jaxmix.save(r, tmp_path / "k.npz")
        jaxmix.save(p, tmp_path / "p.npz")
    back, back_p = jaxmix.load(tmp_path / "k.npz"), jaxmix.load(tmp_path / "p.npz")
    assert back.centers.dtype == np.float64 and back.history.dtype == np.float64
    assert back.labels.dtype == np.int32
    assert_identical(back, r)
    assert_identical(back_p, p)


def test_header_is_documented_json_and_metadata_round_trips(tmp_path, x):
    r = FITS["gmm"](x)
    path = tmp_path / "g.npz"
    jaxmix.save(r, path, metadata={"columns": ["a", "b"], "mean": [1.5, -2.25], "note": None})
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(z["__jaxmix__"].tobytes().decode("utf-8"))
        assert z["__jaxmix__"].dtype == np.uint8
    assert header["format"] == "jaxmix-model" and header["format_version"] == 1
    assert header["jaxmix_version"] == jaxmix.__version__ and header["kind"] == "GMMResult"
    assert header["params"] == {"kind": "GMMParams", "covariance_type": "diag"}
    assert header["arrays"]["params.means"] == {"dtype": "<f4", "shape": [3, 2]}
    assert header["metadata"] == {"columns": ["a", "b"], "mean": [1.5, -2.25], "note": None}
    assert _io.read_header(path) == header


def test_no_pickle_anywhere(tmp_path, x, monkeypatch):
    r = FITS["kmeans"](x)
    path = tmp_path / "k.npz"
    jaxmix.save(r, path)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    assert names[0] == "__jaxmix__.npy" and all(n.endswith(".npy") for n in names)
    with np.load(path, allow_pickle=False) as z:
        assert all(z[k].dtype.kind in "biuf" for k in z.files)

    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    assert_identical(jaxmix.load(path), r)


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, x, monkeypatch):
    old = FITS["kmeans"](x)
    path = tmp_path / "model.npz"
    jaxmix.save(old, path)
    before = path.read_bytes()
    new = old._replace(inertia=old.inertia + 1)

    def crash_mid_write(f, arr):
        f.write(b"\x93NUMPY partial")
        raise OSError("disk full")

    from jaxmix.tools import file_format

    monkeypatch.setattr(file_format, "_write_array", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        jaxmix.save(new, path)
    monkeypatch.undo()

    def crash_on_replace(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(_io.os, "replace", crash_on_replace)
    with pytest.raises(OSError, match="power cut"):
        jaxmix.save(new, path)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]
    assert_identical(jaxmix.load(path), old)
    # And a successful save replaces it.
    jaxmix.save(new, path)
    assert float(jaxmix.load(path).inertia) == float(new.inertia)
    assert os.listdir(tmp_path) == ["model.npz"]


def test_truncated_files_are_reported(tmp_path, x):
    path = tmp_path / "model.npz"
    jaxmix.save(FITS["kmeans"](x), path)
    data = path.read_bytes()
    for cut in (5, 60, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=r"truncated or corrupt") as e:
            jaxmix.load(bad)
        assert str(bad) in str(e.value)


def test_foreign_files_are_reported(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.ones(3))
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n")
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.default_rng(0).bytes(500))
    npy = tmp_path / "x.npy"
    np.save(npy, np.ones(3))
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    cases = {plain: "without a __jaxmix__ member", csv: "not an .npz", noise: "not an .npz", npy: "not an .npz"}
    cases[empty] = "empty"
    for path, why in cases.items():
        with pytest.raises(ValueError, match=r"not a jaxmix model file|empty") as e:
            jaxmix.load(path)
        assert why in str(e.value) and str(path) in str(e.value)
    with pytest.raises(FileNotFoundError):
        jaxmix.load(tmp_path / "missing.npz")


def rewrite_header(src, dst, change):
    """Copy a model file, passing its header through `change`."""
    with np.load(src, allow_pickle=False) as z:
        members = {k: z[k] for k in z.files}
    header = change(json.loads(members["__jaxmix__"].tobytes()))
    members["__jaxmix__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(dst, **members)


def test_newer_format_unknown_kind_and_bad_headers(tmp_path, x):
    path = tmp_path / "model.npz"
    jaxmix.save(FITS["kmeans"](x), path)
    cases = [
        (lambda h: {**h, "format_version": 2}, r"format version 2 .* newer .* upgrade jaxmix"),
        (lambda h: {**h, "kind": "Nope"}, r"unknown model kind 'Nope'"),
        (lambda h: {**h, "kind": "nosuchpackage.Thing"}, r"unknown model kind"),
        (lambda h: {**h, "format": "other"}, r"not a jaxmix model file"),
        (lambda h: {**h, "arrays": {**h["arrays"], "centers": {"dtype": "<f8", "shape": [3, 2]}}}, r"corrupt"),
        (lambda h: {**h, "arrays": {**h["arrays"], "extra": {"dtype": "<f4", "shape": []}}}, r"'extra' is missing"),
    ]
    for i, (change, message) in enumerate(cases):
        bad = tmp_path / f"bad{i}.npz"
        rewrite_header(path, bad, change)
        with pytest.raises(ValueError, match=message) as e:
            jaxmix.load(bad)
        assert str(bad) in str(e.value)


class Point:
    def __init__(self, xy, label, inner):
        self.xy, self.label, self.inner = xy, label, inner


def test_registry_round_trips_a_new_class_with_a_nested_model(tmp_path):
    def to_state(p):
        meta, arrays = _io.dump_state(p.inner, "inner.")
        return {"label": p.label, "inner": meta}, {"xy": p.xy, **arrays}

    def from_state(meta, arrays):
        return Point(arrays["xy"], meta["label"], _io.restore_state(meta["inner"], arrays, "inner."))

    _io.register("test.Point", Point, to_state, from_state)
    p = Point(np.arange(4, dtype=np.int64).reshape(2, 2), "origin", gmm_params("tied"))
    jaxmix.save(p, tmp_path / "p.npz")
    back = jaxmix.load(tmp_path / "p.npz")
    assert back.label == "origin" and back.xy.dtype == np.int64
    np.testing.assert_array_equal(back.xy, p.xy)
    assert_identical(back.inner, p.inner)
    with pytest.raises(ValueError, match="already registered"):
        _io.register("test.Point", dict, to_state, from_state)


def test_save_rejects_what_it_cannot_store(tmp_path, x):
    with pytest.raises(TypeError, match="cannot save a dict"):
        jaxmix.save({"a": 1}, tmp_path / "d.npz")
    r = FITS["kmeans"](x)
    with pytest.raises(ValueError, match="JSON"):
        jaxmix.save(r, tmp_path / "m.npz", metadata={"bad": float("nan")})
    with pytest.raises(TypeError, match="only bool, integer and float"):
        jaxmix.save(r._replace(inertia=np.array(["text"])), tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


class _Payload:
    """Unpickling this would create a file: the proof that a pickle ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickled_payload_is_refused_and_never_run(tmp_path, x):
    path = tmp_path / "model.npz"
    jaxmix.save(FITS["kmeans"](x), path)
    marker = tmp_path / "pwned"
    evil = np.empty((1,), dtype=object)
    evil[0] = _Payload(str(marker))
    # Replace one array member by a pickled object array, keeping the header.
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    with open(tmp_path / "evil.npy", "wb") as f:
        np.lib.format.write_array(f, evil, allow_pickle=True)
    members["centers.npy"] = (tmp_path / "evil.npy").read_bytes()
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    for read in (jaxmix.load, _io.read_raw):
        with pytest.raises(ValueError, match=r"bad\.npz: (truncated or )?corrupt"):
            read(bad)
    assert not marker.exists()
    # The header alone (info) does not touch the arrays, and says what it is.
    assert _io.read_header(bad)["kind"] == "KMeansResult"
    assert not marker.exists()
