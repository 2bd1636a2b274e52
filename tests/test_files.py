"""Hostile files (issue 17, items 14, 16, 18, 19): model files, `.npy` shards, stream checkpoints, FIFOs.

Every hostile file here is tiny: sizes that would take gigabytes are declared,
or made of a few MB of zeros that compress to kilobytes.
"""

import contextlib
import io
import json
import os
import stat
import threading
import zipfile

import jax
import numpy as np
import pytest
from conftest import make_blobs

import jaxmix
import jaxmix.stream as js
from jaxmix.engine.disk import check_regular_file
from jaxmix.tools import files as _io

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def x():
    return make_blobs(0, n=64, d=2, k=2)[0]


@pytest.fixture(scope="module")
def models(x):
    return {"kmeans": jaxmix.kmeans(KEY, x, 2), "gmm": jaxmix.gmm(KEY, x, 2, covariance_type="diag")}


def npy(a):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


def rewrite(src, dst, header=None, members=None):
    """Copy the model file `src` to `dst` with the header edited by `header(h)` and members replaced."""
    with zipfile.ZipFile(src) as z:
        data = {n: z.read(n) for n in z.namelist()}
    h = json.loads(np.load(io.BytesIO(data["__jaxmix__.npy"])).tobytes())
    text = header(h) if header else json.dumps(h)
    data["__jaxmix__.npy"] = npy(np.frombuffer(text.encode() if isinstance(text, str) else text, np.uint8))
    data.update(members or {})
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in data.items():
            z.writestr(n, b)
    return dst


@pytest.fixture
def saved(tmp_path, models):
    paths = {}
    for name, m in models.items():
        paths[name] = tmp_path / f"{name}.npz"
        jaxmix.save(m, paths[name])
    return paths


@pytest.fixture
def inflated(monkeypatch):
    """Counts the bytes inflated from zip members while a model file is read."""
    count = [0]
    read = zipfile.ZipExtFile.read

    def counting(self, n=-1):
        out = read(self, n)
        count[0] += len(out)
        return out

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting)
    return count


# --- item 14: sizes checked before inflating, dtypes, parameters, modes, depth ---------------


def test_a_header_that_inflates_past_the_cap_is_refused_unread(saved, tmp_path, inflated):
    """2 GB in the issue; 17 MiB of blanks here (17 kB compressed), past the 16 MiB cap."""

    def pad(h):
        h["metadata"] = {"pad": " " * (17 * 2**20)}
        return json.dumps(h)

    bad = rewrite(saved["kmeans"], tmp_path / "big-header.npz", header=pad)
    assert bad.stat().st_size < 200_000
    inflated[0] = 0
    with pytest.raises(_io.ModelFileError, match=r"big-header\.npz: .*the header inflates to \d+ bytes"):
        jaxmix.load(bad)
    with pytest.raises(_io.ModelFileError, match="inflates"):
        _io.read_header(bad)
    assert inflated[0] == 0


def test_an_array_larger_than_the_header_says_is_refused_before_inflating(saved, tmp_path, inflated):
    """4 GB in the issue; 16 MB of zeros here (16 kB compressed) where the header says (2, 2)."""
    big = npy(np.zeros((2_000_000, 2), np.float32))
    bad = rewrite(saved["kmeans"], tmp_path / "big-array.npz", members={"centers.npy": big})
    inflated[0] = 0
    with pytest.raises(_io.ModelFileError, match=r"big-array\.npz: .*'centers' inflates to \d+ bytes"):
        jaxmix.load(bad)
    assert inflated[0] < 2**20  # the header only, never the 16 MB
    # A member whose own .npy header disagrees is refused from that header, before its data.
    bad = rewrite(saved["kmeans"], tmp_path / "other-shape.npz", members={"centers.npy": npy(np.zeros((1, 4), "<f4"))})
    with pytest.raises(_io.ModelFileError, match=r"'centers' is <f4 \[1, 4\], the header says <f4 \[2, 2\]"):
        jaxmix.load(bad)


@pytest.mark.parametrize("dtype", ["<U5", "|V8", "<M8[s]", "|S4", "<c8"])
def test_arrays_of_a_dtype_jaxmix_never_saves_are_refused_at_load(saved, tmp_path, dtype):
    def retype(h):
        h["arrays"]["centers"]["dtype"] = np.dtype(dtype).str
        return json.dumps(h)

    member = npy(np.zeros((2, 2), dtype))
    bad = rewrite(saved["kmeans"], tmp_path / "dtype.npz", header=retype, members={"centers.npy": member})
    with pytest.raises(_io.ModelFileError, match=r"dtype\.npz: corrupt model header: array 'centers' has dtype"):
        jaxmix.load(bad)


@pytest.mark.parametrize(
    ("field", "change", "match"),
    [
        ("precisions_cholesky", lambda a: -a, "precisions_cholesky must have a positive diagonal"),
        ("covariances", lambda a: -a, "covariances must be positive definite"),
        ("weights", lambda a: a[::-1] * np.array([-1.0, 3.0], a.dtype), "weights must be >= 0"),
        ("means", lambda a: a * np.nan, "means holds NaN"),
    ],
)
def test_parameters_that_give_nan_are_refused_at_load(saved, tmp_path, x, models, field, change, match):
    """Consistent checksums, damaged values: today they load and predict_proba/score give NaN."""
    a = np.asarray(getattr(models["gmm"].params, field))
    bad = rewrite(saved["gmm"], tmp_path / "nan.npz", members={f"params.{field}.npy": npy(change(a))})
    with pytest.raises(_io.ModelFileError, match=rf"nan\.npz: corrupt GMMResult model file: {match}"):
        jaxmix.load(bad)


def test_a_scikit_learn_mixture_with_parameters_that_give_nan_is_refused_at_load(tmp_path, models):
    from jaxmix.sklearn import GaussianMixture

    est = GaussianMixture(2, covariance_type="diag")  # fitted by hand from a fit: no second compile
    p = models["gmm"].params
    est.weights_, est.means_, est.covariances_, est.precisions_cholesky_ = (
        np.asarray(a) for a in (p.weights, p.means, p.covariances, p.precisions_cholesky)
    )
    path = tmp_path / "est.npz"
    jaxmix.save(est, path)
    assert np.array_equal(jaxmix.load(path).precisions_cholesky_, est.precisions_cholesky_)
    bad = rewrite(
        path, tmp_path / "nan-est.npz", members={"fitted.precisions_cholesky_.npy": npy(-est.precisions_cholesky_)}
    )
    with pytest.raises(_io.ModelFileError, match=r"nan-est\.npz: .*precisions_cholesky must have a positive diagonal"):
        jaxmix.load(bad)


def test_a_rewrite_keeps_the_file_mode(saved, models):
    path = saved["kmeans"]
    os.chmod(path, 0o600)
    jaxmix.save(models["kmeans"], path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_deep_metadata_is_refused_with_a_clear_error(saved, tmp_path, models):
    deep: object = 1
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested more than"):
        jaxmix.save(models["kmeans"], tmp_path / "deep.npz", metadata={"deep": deep})
    assert not (tmp_path / "deep.npz").exists()
    for depth in (40, 5000):

        def nest(h, depth=depth):
            text = json.dumps(h)
            return text[:-1] + ', "metadata": {"deep": ' + "[" * depth + "]" * depth + "}}"

        bad = rewrite(saved["kmeans"], tmp_path / f"deep{depth}.npz", header=nest)
        with pytest.raises(_io.ModelFileError, match=rf"deep{depth}\.npz: corrupt model header: JSON nested more"):
            jaxmix.load(bad)


@pytest.mark.parametrize("metadata", [[1, 2], "a string", 3])
def test_metadata_that_is_not_a_dict_is_refused(saved, tmp_path, metadata):
    def meta(h):
        h["metadata"] = metadata
        return json.dumps(h)

    bad = rewrite(saved["kmeans"], tmp_path / "meta.npz", header=meta)
    for read in (jaxmix.load, _io.read_header, _io.read_raw):
        with pytest.raises(_io.ModelFileError, match=r"meta\.npz: corrupt model header: metadata is a"):
            read(bad)
    from jaxmix import cli

    for argv in (["info", str(bad)], ["predict", str(bad), str(bad)]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(argv) == 2
        assert err.getvalue().startswith("jaxmix: error:") and "Traceback" not in err.getvalue()


# --- item 19: FIFOs and other non-regular files ---------------------------------------------


def _returns(fn, fifo):
    """fn() in a thread: it must end (by an error) without a writer on `fifo`; else release it and fail."""
    out = {}

    def call():
        try:
            fn()
        except Exception as e:
            out["error"] = e

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(30)
    if t.is_alive():
        with open(fifo, "wb"):  # a writer ends the blocked read
            pass
        t.join(30)
        pytest.fail("blocked reading a FIFO")
    return out.get("error")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_not_read(tmp_path):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    for fn in (lambda: jaxmix.load(fifo), lambda: _io.read_header(fifo)):
        e = _returns(fn, fifo)
        assert isinstance(e, _io.ModelFileError) and "FIFO" in str(e) and str(fifo) in str(e), e
    shards = tmp_path / "shards"
    shards.mkdir()
    os.mkfifo(shards / "a.npy")
    for src in (fifo, shards):
        e = _returns(lambda src=src: js.kmeans(KEY, src, 2, progress=False), fifo)
        assert isinstance(e, ValueError) and "FIFO (named pipe), not a regular file" in str(e), e
    e = _returns(lambda: js.kmeans(KEY, np.zeros((8, 2)), 2, checkpoint=fifo, progress=False), fifo)
    assert isinstance(e, ValueError) and "FIFO" in str(e) and str(fifo) in str(e), e
    # The helper the command line uses for its data files.
    with pytest.raises(ValueError, match=r"a FIFO \(named pipe\), not a regular file; give the data file"):
        check_regular_file(fifo, "data file")
    with pytest.raises(ValueError, match="a directory, not a regular file"):
        check_regular_file(tmp_path)


# --- item 16 (last sentence): .npy shards -----------------------------------------------------


def test_broken_npy_shards_are_reported_for_what_they_are(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((100, 2), np.float32))
    cut = tmp_path / "cut.npy"
    cut.write_bytes(good.read_bytes()[:500])
    with pytest.raises(ValueError, match=r"cut\.npy: truncated: its header describes float32 \(100, 2\)"):
        js.as_source(cut)
    text = tmp_path / "text.npy"
    text.write_text("1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"text\.npy: not a \.npy file"):
        js.as_source(text)
    np.savez(tmp_path / "z.npz", a=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"z\.npz: not a \.npy file"):
        js.as_source(tmp_path / "z.npz")
    np.save(tmp_path / "obj.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(TypeError, match=r"obj\.npy: holds Python objects .* without pickle"):
        js.as_source(tmp_path / "obj.npy")
    assert js.as_source(good).n_rows == 100


# --- item 18: stream checkpoints bound to their data, damaged ones refused ------------------


def same(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(
        np.asarray(u).tobytes() == np.asarray(v).tobytes() for u, v in zip(la, lb, strict=False)
    )


def _other(x):
    """Data of the same shape and the same first batch (16 rows), different after it."""
    y = x.copy()
    y[16:] = y[16:][::-1] * 2.0
    return y


def _callable(a):
    def batches():
        for lo in range(0, len(a), 16):
            yield a[lo : lo + 16]

    return batches


STREAM_FITS = {
    "kmeans": lambda src, **kw: js.kmeans(KEY, src, 2, progress=False, **kw),
    "gmm": lambda src, **kw: js.gmm(KEY, src, 2, covariance_type="diag", max_iter=5, progress=False, **kw),
}


@pytest.mark.parametrize("model", list(STREAM_FITS))
def test_a_checkpoint_of_other_data_with_the_same_first_batch_is_refused(tmp_path, x, model):
    fit = STREAM_FITS[model]
    ckpt = tmp_path / "a.ckpt"
    a = fit(x, batch_rows=16, checkpoint=ckpt, keep_checkpoint=True)
    with pytest.raises(ValueError, match=r"a\.ckpt is the checkpoint of a different fit on other data .*batch"):
        fit(_other(x), batch_rows=16, checkpoint=ckpt)
    # The same data resumes (a finished fit: its result, without a pass).
    assert same(fit(x, batch_rows=16, checkpoint=ckpt, keep_checkpoint=True), a)
    # A callable source: bound by a digest of every batch of its first pass.
    ckpt = tmp_path / "c.ckpt"
    fit(_callable(x), checkpoint=ckpt, keep_checkpoint=True)
    with pytest.raises(ValueError, match=r"c\.ckpt is the checkpoint of a different fit on other data"):
        fit(_callable(_other(x)), checkpoint=ckpt)
    with pytest.raises(ValueError, match=r"c\.ckpt is the checkpoint of a different fit on other data"):
        fit(_callable(np.concatenate([x, x[:16]])), checkpoint=ckpt)
    fit(_callable(x), checkpoint=ckpt)


def test_damaged_checkpoints_are_refused_naming_the_file_or_resume_exactly(tmp_path, x):
    ckpt = tmp_path / "fit.ckpt"
    full = js.kmeans(KEY, x, 2, batch_rows=16, checkpoint=ckpt, keep_checkpoint=True, progress=False)
    raw = ckpt.read_bytes()
    rng = np.random.default_rng(0)
    refused = 0
    for trial in range(45):
        data = bytearray(raw)
        if trial % 3 == 0:
            data = data[: int(rng.integers(0, len(raw)))]
        elif trial % 3 == 1:
            for i in rng.integers(0, len(raw), size=int(rng.integers(1, 8))):
                data[i] ^= int(rng.integers(1, 256))
        else:
            lo = int(rng.integers(0, len(raw) - 16))
            data[lo : lo + 16] = bytes(16)
        bad = tmp_path / f"bad{trial}.ckpt"
        bad.write_bytes(bytes(data))
        try:
            r = js.kmeans(KEY, x, 2, batch_rows=16, checkpoint=bad, keep_checkpoint=True, progress=False)
        except ValueError as e:
            assert str(e).startswith(str(bad)), e
            refused += 1
            continue
        assert same(r, full), f"trial {trial}: a damaged checkpoint resumed as a different fit"
    assert refused >= 35
    # A valid zip whose member is not an .npy (numpy hands such a member back as bytes).
    with zipfile.ZipFile(ckpt) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["st.km.history.npy"] = b"not an array"
    with zipfile.ZipFile(tmp_path / "bytes.ckpt", "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    with pytest.raises(ValueError, match=r"bytes\.ckpt: not a readable jaxmix stream checkpoint .*not an \.npy"):
        js.kmeans(KEY, x, 2, batch_rows=16, checkpoint=tmp_path / "bytes.ckpt", progress=False)
