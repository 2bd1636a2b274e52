"""The command line and the bundled data."""

import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import BrokenStream, make_blobs

import jaxmix
from jaxmix import cli
from jaxmix.datasets import load_faithful


def test_faithful_is_bundled():
    x, names = load_faithful(return_names=True)
    assert x.shape == (272, 2) and names == ("eruptions", "waiting")
    np.testing.assert_allclose(x[0], [3.6, 79.0])
    np.testing.assert_allclose(x.mean(0), [3.4878, 70.8971], atol=1e-4)
    assert not x.flags.writeable


def test_demo_prints_summary_and_writes_png(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert cli.main(["demo", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Old Faithful" in text and text.count("converged=True") == 2
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    # The two clusters are the short and the long eruptions.
    rows = [line.split() for line in text.splitlines() if line.strip()[:1].isdigit()]
    sizes = [int(r[1]) for r in rows[:2]]
    assert sorted(sizes) == [98, 174]
    # Mixture weights of Old Faithful's two components (about 0.36 and 0.64).
    weights = [float(r[1]) for r in rows[2:4]]
    np.testing.assert_allclose(sorted(weights), [0.356, 0.644], atol=0.01)
    # One numbering (and so one colour in both panels) for the same cluster (issue 17 item 11).
    assert np.argmax(sizes) == np.argmax(weights)


def test_demo_rejects_bad_k(capsys):
    assert cli.main(["demo", "--k", "0", "--output", ""]) == 2
    assert "n_clusters" in capsys.readouterr().err


def test_console_script_entry_point_answers_help_without_importing_jax():
    # Issue 17 item 11: `jaxmix --help` took 1.9 s, importing JAX first.
    code = (
        "import runpy, sys\n"
        "sys.argv = ['jaxmix', '--help']\n"
        "try:\n    runpy.run_module('jaxmix.cli', run_name='__main__')\n"
        "except SystemExit as e:\n    print('exit', e.code)\n"
        "print('jax imported:', 'jax' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "demo" in proc.stdout and "exit 0" in proc.stdout, proc.stderr
    assert "jax imported: False" in proc.stdout


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"jaxmix {jaxmix.__version__}"


def test_unknown_command_fails():
    with pytest.raises(SystemExit):
        cli.main(["nope"])


# --- fit, predict, info -------------------------------------------------------
# All fits below use the same data shape, k and options, so that JAX compiles
# each program once for the whole module.

N, K = 300, 3


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same two numeric columns (a, b) in every format, plus a text column in the CSV."""
    d = tmp_path_factory.mktemp("data")
    x, _ = make_blobs(0, n=N, d=2, k=K)
    x = x.astype(np.float64) * np.array([1.0, 10.0]) + np.array([0.0, 100.0])  # b in other units
    with open(d / "header.csv", "w") as f:
        f.write("name,a,b\n")
        f.writelines(f"s{i},{float(u)!r},{float(v)!r}\n" for i, (u, v) in enumerate(x))
    with open(d / "plain.csv", "w") as f:
        f.writelines(f"{float(u)!r};{float(v)!r};{i}\n" for i, (u, v) in enumerate(x))
    np.save(d / "x.npy", x)
    np.savez(d / "x.npz", x=x, other=np.arange(3))
    return d, x


def fit(tmp_path, *args):
    out = tmp_path / "out"
    code = cli.main(["fit", *map(str, args), "-k", str(K), "-o", str(out), "--no-plot"])
    return code, out


def read_labels(path):
    lines = path.read_text().splitlines()
    assert lines[0] == "label"
    return np.array([int(v) for v in lines[1:]])


def test_fit_reads_every_format_to_the_same_labels(tmp_path, files, capsys):
    d, _ = files
    runs = {
        "header, by name": (d / "header.csv", "--columns", "a", "b"),
        "no header, by index": (d / "plain.csv", "--columns", "0", "1"),
        "npy": (d / "x.npy",),
        "npz, by key": (d / "x.npz", "--key", "x"),
    }
    labels = {}
    for what, args in runs.items():
        code, out = fit(tmp_path / what.replace(" ", "_").replace(",", ""), *args)
        assert code == 0, capsys.readouterr().err
        labels[what] = read_labels(out / "labels.csv")
        assert sorted(p.name for p in out.iterdir()) == ["labels.csv", "model.npz"]
    text = capsys.readouterr().out
    assert "kmeans, k=3" in text and "n=300 rows, d=2 columns (a, b)" in text and "(x0, x1)" in text
    first = labels.pop("header, by name")
    assert len(first) == N and len(set(first)) == K
    for other in labels.values():
        np.testing.assert_array_equal(other, first)


def test_standardize_round_trips_through_predict(tmp_path, files, capsys):
    d, x = files
    code, out = fit(tmp_path, d / "header.csv", "--columns", "b", "a", "--standardize")
    assert code == 0
    text = capsys.readouterr().out
    assert "standardised" in text and "(b, a)" in text
    model, header = jaxmix.tools.files.load_with_header(out / "model.npz")
    meta = header["metadata"]
    assert meta["columns"] == ["b", "a"] and meta["column_indices"] == [2, 1] and meta["model"] == "kmeans"
    np.testing.assert_allclose(meta["standardize"]["mean"], x[:, ::-1].mean(0))
    np.testing.assert_allclose(meta["standardize"]["std"], x[:, ::-1].std(0))
    # The fit ran on z-scores; the summary shows centres in the data's units.
    centres = np.asarray(model.centers) * meta["standardize"]["std"] + meta["standardize"]["mean"]
    rows = [line.split() for line in text.splitlines() if re.match(r"^\s+\d+\s+\d+\s", line)]
    np.testing.assert_allclose(np.array([[float(v) for v in r[2:]] for r in rows]), centres, rtol=1e-3, atol=1e-3)
    pred = tmp_path / "pred.csv"
    assert cli.main(["predict", str(out / "model.npz"), str(d / "header.csv"), "-o", str(pred)]) == 0
    np.testing.assert_array_equal(read_labels(pred), read_labels(out / "labels.csv"))
    # Data without names, in another layout: columns chosen by position.
    for data in ("plain.csv", "x.npy"):
        assert cli.main(["predict", str(out / "model.npz"), str(d / data), "--columns", "1", "0"]) == 0
        labels = np.array(capsys.readouterr().out.split()[1:], int)
        np.testing.assert_array_equal(labels, read_labels(out / "labels.csv"))


def test_gmm_writes_responsibilities_and_info_describes_the_model(tmp_path, files, capsys):
    d, _ = files
    code, out = fit(tmp_path, d / "x.npy", "--model", "gmm", "--covariance-type", "diag", "--quiet")
    assert code == 0 and capsys.readouterr().out == ""
    resp = np.loadtxt(out / "responsibilities.csv", delimiter=",", skiprows=1)
    assert (out / "responsibilities.csv").read_text().startswith("p0,p1,p2\n")
    assert resp.shape == (N, K)
    np.testing.assert_allclose(resp.sum(1), 1.0, atol=1e-5)
    labels = read_labels(out / "labels.csv")
    np.testing.assert_array_equal(resp.argmax(1), labels)

    assert cli.main(["predict", str(out / "model.npz"), str(d / "x.npy"), "--proba"]) == 0
    pred = np.loadtxt(capsys.readouterr().out.splitlines()[1:], delimiter=",")
    np.testing.assert_array_equal(pred[:, 0].astype(int), labels)
    np.testing.assert_allclose(pred[:, 1:], resp, atol=1e-6)

    assert cli.main(["info", str(out / "model.npz")]) == 0
    text = capsys.readouterr().out
    assert "GMMResult" in text and "covariance_type" in text and "diag" in text
    assert "standardised  no" in text and "converged" in text and "bic" in text


def test_fit_plot_and_summary(tmp_path, files, capsys):
    pytest.importorskip("matplotlib")
    d, _ = files
    out = tmp_path / "o"
    assert cli.main(["fit", str(d / "x.npy"), "-k", "3", "-o", str(out)]) == 0
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = capsys.readouterr().out
    assert "converged" in text and "inertia" in text and "plot.png" in text


def test_fit_reads_parquet(tmp_path, files):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    d, x = files
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"name": [f"s{i}" for i in range(N)], "a": x[:, 0], "b": x[:, 1]}), path)
    code, out = fit(tmp_path, path, "--columns", "a", "b")
    assert code == 0
    code, ref = fit(tmp_path / "ref", d / "x.npy")
    np.testing.assert_array_equal(read_labels(out / "labels.csv"), read_labels(ref / "labels.csv"))


def test_bad_input_exits_with_2_and_a_message(tmp_path, files, capsys):
    d, _ = files
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,4\n5,abc\n")
    gap = tmp_path / "gap.csv"
    gap.write_text("a,b\n1,2\n3,\n")
    nan = tmp_path / "nan.csv"
    nan.write_text("a,b\n1,2\nnan,3\n4,5\n6,nan\n")
    inf = tmp_path / "inf.npy"
    np.save(inf, np.array([[1.0, 2.0], [3.0, np.inf], [5.0, 6.0]]))
    few = tmp_path / "few.csv"
    few.write_text("a,b\n1,2\n3,4\n")
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"\x93NUMPY garbage")
    model = tmp_path / "m.npz"
    one = jaxmix.GMMParams.from_covariances(
        np.ones(1, np.float32), np.zeros((1, 2), np.float32), np.eye(2, dtype=np.float32)[None]
    )
    jaxmix.save(one, model)
    cases = [
        (["fit", bad, "-k", "2"], "non-numeric value 'abc' in column 'b' at line 4"),
        (["fit", gap, "-k", "2"], "missing value '' in column 'b' at line 3"),
        (["fit", d / "header.csv", "-k", "2"], "non-numeric value 's0' in column 'name' at line 2"),
        (["fit", d / "header.csv", "-k", "2", "--columns", "a", "nope"], "unknown column 'nope'"),
        (["fit", d / "plain.csv", "-k", "2", "--columns", "7"], "column index 7 is out of range"),
        (["fit", d / "x.npy", "-k", "0"], "n_clusters"),
        (["fit", d / "x.npy", "-k", "2", "--model", "soft-kmeans"], "needs --beta"),
        (["fit", d / "x.npz", "-k", "2"], "pick one with --key"),
        (
            ["fit", nan, "-k", "2"],
            "missing value (NaN) in column 'a' at line 3; 2 rows have NaN or inf values, also line 5",
        ),
        (["fit", inf, "-k", "2"], "non-finite value inf in column 'x1' at row 1"),
        (["fit", few, "-k", "3"], "n_clusters=3 must be <= n_samples=2"),
        (["fit", junk, "-k", "2"], "junk.npy"),
        (["fit", model, "-k", "2"], "is a jaxmix model file, not data"),
        (["fit", tmp_path / "missing.csv", "-k", "2"], "no such file"),
        (["info", bad], "not a jaxmix model file"),
        (["predict", model, d / "x.npy", "--proba", "-o", tmp_path / "p.csv"], None),
        (["predict", model, d / "header.csv"], "has 3 columns; the model takes 2 features"),
        (["predict", model, d / "header.csv", "--columns", "name", "a"], "non-numeric value 's0' in column 'name'"),
    ]
    for argv, message in cases:
        code = cli.main([str(a) for a in argv])
        err = capsys.readouterr().err
        if message is None:
            assert code == 0, err
            continue
        assert code == 2, argv
        assert err.startswith("jaxmix: error: ") and message in err and "Traceback" not in err, err


def test_predict_and_info_take_a_saved_scikit_learn_estimator(tmp_path, files, capsys):
    pytest.importorskip("sklearn")
    pd = pytest.importorskip("pandas")
    from jaxmix.sklearn import GaussianMixture

    d, x = files
    est = GaussianMixture(K, covariance_type="diag", random_state=0).fit(pd.DataFrame(x, columns=["a", "b"]))
    jaxmix.save(est, tmp_path / "est.npz")
    # header.csv has a text column first: the model's names pick a and b.
    assert cli.main(["predict", str(tmp_path / "est.npz"), str(d / "header.csv"), "--proba"]) == 0
    pred = np.loadtxt(capsys.readouterr().out.splitlines()[1:], delimiter=",")
    np.testing.assert_array_equal(pred[:, 0].astype(int), est.predict(pd.DataFrame(x, columns=["a", "b"])))
    np.testing.assert_allclose(pred[:, 1:].sum(1), 1.0, atol=1e-6)
    assert cli.main(["info", str(tmp_path / "est.npz")]) == 0
    text = capsys.readouterr().out
    assert "sklearn.GaussianMixture" in text and "params.covariance_type diag" in text


def test_the_installed_command_end_to_end(tmp_path, files):
    """Through a real process: the happy path and an error path (exit 2, one line, no traceback)."""
    d, _ = files
    run = [sys.executable, "-m", "jaxmix.cli"]
    out = tmp_path / "o"
    p = subprocess.run(
        [
            *run,
            "fit",
            str(d / "header.csv"),
            "-k",
            "3",
            "--columns",
            "a",
            "b",
            "--model",
            "gmm",
            "--standardize",
            "-o",
            str(out),
            "--no-plot",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    assert "converged" in p.stdout and (out / "model.npz").exists() and (out / "responsibilities.csv").exists()
    p = subprocess.run(
        [*run, "predict", str(out / "model.npz"), str(d / "header.csv")], capture_output=True, text=True, check=False
    )
    assert p.returncode == 0, p.stderr
    np.testing.assert_array_equal(np.array(p.stdout.split()[1:], int), read_labels(out / "labels.csv"))
    p = subprocess.run([*run, "info", str(d / "header.csv")], capture_output=True, text=True, check=False)
    assert p.returncode == 2 and p.stderr.startswith("jaxmix: error: ") and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = subprocess.run([*run, "select", "--help"], capture_output=True, text=True, check=False)
    assert p.returncode == 0 and "usage: jaxmix select" in p.stdout and "examples:" in p.stdout


@pytest.mark.parametrize("command", ["fit", "predict", "info", "select", "demo"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert (
        e.value.code == 0 and "usage: jaxmix " + command in out and "jaxmix " + command + " " in out.split("example")[1]
    )


def test_select_writes_the_table_the_best_model_and_the_plot(tmp_path, capsys):
    data = cli.__file__.replace("cli.py", "datasets/faithful.csv")
    out = tmp_path / "sel"
    argv = ["select", data, "--k", "1..3", "--covariance-types", "tied", "VEV", "--n-init", "2", "-o", str(out)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "tied (EEE)" in text and "     VEV" in text and "best: k = 3, tied" in text
    lines = (out / "select.csv").read_text().splitlines()
    assert lines[0].startswith("k,covariance_type,log_likelihood,bic") and len(lines) == 1 + 3 * 2
    assert (out / "bic.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "classification.png").read_bytes()[:4] == b"\x89PNG"
    assert "Clustering table:" in text and "ellipsoidal, equal volume, shape and orientation" in text
    resp = np.loadtxt(out / "responsibilities.csv", delimiter=",", skiprows=1)
    assert resp.shape == (272, 3)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(resp.argmax(axis=1), read_labels(out / "labels.csv"))
    model = jaxmix.load(out / "model.npz")
    assert model.params.covariance_type == "tied" and model.params.means.shape == (3, 2)
    assert cli.main(["predict", str(out / "model.npz"), data]) == 0
    labels = np.array(capsys.readouterr().out.split()[1:], int)
    np.testing.assert_array_equal(labels, read_labels(out / "labels.csv"))
    assert cli.main(["select", data, "--k", "3..1"]) == 2
    assert "--k must be a range" in capsys.readouterr().err


# --- reading data files (issue 17 items 11, 19, 20) -----------------------------


def _csv_variants(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3)) * np.array([1.0, 1e-3, 1e5])
    path = tmp_path / "t.csv"
    path.write_text(
        "name,a,b,c\n" + "".join(f"s{i},{u!r},{v!r},{w!r}\n" for i, (u, v, w) in enumerate(x.tolist())) + "\n"
    )
    return path, x


def test_csv_is_read_by_pyarrow_or_pandas_into_floats_the_same_as_the_exact_reader(tmp_path, monkeypatch):
    from jaxmix.tools import tables as _tables

    path, x = _csv_variants(tmp_path)
    exact = _tables._parse_csv
    monkeypatch.setattr(_tables, "_parse_csv", lambda *a, **k: pytest.fail("the exact reader ran"))
    tables = {"pyarrow": _tables.read_table(path, ["c", "a"])}
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # not installed: pandas reads
    monkeypatch.setitem(sys.modules, "pyarrow.csv", None)
    tables["pandas"] = _tables.read_table(path, ["c", "a"])
    monkeypatch.setitem(sys.modules, "pandas", None)  # neither: the exact reader, a few rows of text at a time
    monkeypatch.setattr(_tables, "_parse_csv", exact)
    monkeypatch.setattr(_tables, "CHUNK_ROWS", 7)
    tables["python"] = _tables.read_table(path, ["c", "a"])
    for t in tables.values():
        assert t.names == ["c", "a"] and t.indices == [3, 1] and t.x.dtype == np.float64
        np.testing.assert_array_equal(t.x, x[:, [2, 0]])


def test_decimal_comma_and_drop_missing(tmp_path, capsys):
    from jaxmix.tools.tables import read_table

    eu = tmp_path / "eu.csv"
    eu.write_text("a;b\n14,23;5,5\n-1,5;2\n3;1e3\n")
    # The old advice (pick the numeric columns with --columns) was wrong for a decimal comma.
    assert cli.main(["fit", str(eu), "-k", "2", "--no-plot", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "'14,23'" in err and "--decimal ," in err and "--columns" not in err
    np.testing.assert_array_equal(read_table(eu, decimal=",").x, [[14.23, 5.5], [-1.5, 2.0], [3.0, 1000.0]])

    gaps = tmp_path / "gaps.csv"
    gaps.write_text("a,b\n1,2\n3,\nNA,4\n5,6\n7,8\nnan,1\n9,9\n")
    t = read_table(gaps, drop_missing=True)
    np.testing.assert_array_equal(t.x, [[1, 2], [5, 6], [7, 8], [9, 9]])
    np.testing.assert_array_equal(t.dropped, [1, 2, 5])
    with pytest.raises(ValueError, match=r"missing value '' in column 'b' at line 3 .*--drop-missing"):
        read_table(gaps)
    out = tmp_path / "g"
    assert cli.main(["fit", str(gaps), "-k", "2", "--drop-missing", "--no-plot", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 rows with a missing value left out" in text and "data rows 1, 2, 5" in text
    assert len(read_labels(out / "labels.csv")) == 4


def test_select_gives_the_columns_hint_as_fit_does(tmp_path, files, capsys):
    d, _ = files
    assert cli.main(["select", str(d / "header.csv"), "--k", "2", "-o", str(tmp_path / "s")]) == 2
    assert "non-numeric value 's0'" in (err := capsys.readouterr().err) and "with --columns" in err


def test_encodings_fifos_and_huge_values_are_one_clean_error(tmp_path, capsys):
    import os
    import threading
    import warnings

    from jaxmix.tools.tables import read_table

    latin = tmp_path / "latin.csv"
    latin.write_bytes("caf\u00e9,b\n1,2\n3,4\n".encode("latin-1"))
    utf16 = tmp_path / "utf16.csv"
    utf16.write_text("caf\u00e9,b\n1,2\n3,4\n", encoding="utf-16")
    big = tmp_path / "big.csv"
    big.write_text("a,b\n1,2\n3,1e300\n5,6\n")
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)

    def writer():  # ends a reader that opened the FIFO (the old code), instead of blocking the test
        for _ in range(200):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                return
            except OSError:
                threading.Event().wait(0.05)

    threading.Thread(target=writer, daemon=True).start()
    t = read_table(utf16)  # UTF-16 with its byte-order mark is read
    assert t.names == ["caf\u00e9", "b"] and t.x.tolist() == [[1, 2], [3, 4]]
    cases = [
        (latin, "not UTF-8 text", "iconv -f latin1 -t utf-8"),
        (fifo, "is not a regular file", "write the data to a file first"),
        (big, "value 1e+300 in column 'b' (data row 1) is beyond float32's range", "JAX_ENABLE_X64=1"),
    ]
    for path, *messages in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # NumPy's overflow warning came before the error
            assert cli.main(["fit", str(path), "-k", "2", "--no-plot", "-o", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("jaxmix: error: ") and len(err.splitlines()) == 1, err
        assert all(m in err for m in messages), err


def test_unscaled_columns_are_warned_about_and_a_broken_stderr_fails_nothing(tmp_path, files, capsys, monkeypatch):
    _, x = files
    wide = tmp_path / "wide.npy"
    np.save(wide, x * np.array([1.0, 100.0]))  # b in units 1000x a's: PC1 holds ~100% of the variance
    assert cli.main(["fit", str(wide), "-k", str(K), "--no-plot", "-o", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert "column 'x1' holds 100.0% of the variance" in captured.err and "--standardize" in captured.err
    assert "iterations (the winning restart of 4)" in captured.out  # the progress line counts the longest
    assert cli.main(["fit", str(wide), "-k", str(K), "--no-plot", "-o", str(tmp_path / "s"), "--standardize"]) == 0
    assert "holds" not in capsys.readouterr().err
    # Issue 17 item 20: a full, closed or broken stderr (2>/dev/full) failed the whole fit.
    monkeypatch.setattr("sys.stderr", BrokenStream())
    assert cli.main(["fit", str(wide), "-k", str(K), "--no-plot", "-o", str(tmp_path / "b")]) == 0
    assert cli.main(["fit", str(wide), "-k", "0", "--no-plot", "-o", str(tmp_path / "b")]) == 2


def test_the_figure_is_drawn_by_jaxmix_plot_with_ellipses_and_means(tmp_path, files, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    from jaxmix.tools import plot as _plot

    d, _ = files
    calls = []
    for name in ("scatter", "ellipses"):
        real = getattr(_plot.Plot, name)

        def spy(self, *a, _real=real, _name=name, **k):
            calls.append((_name, k.get("centers_label")))
            return _real(self, *a, **k)

        monkeypatch.setattr(_plot.Plot, name, spy)
    from jaxmix.tools import plot_parts

    monkeypatch.setattr(plot_parts, "MAX_POINTS", 100)
    out = tmp_path / "o"
    argv = ["fit", str(d / "x.npy"), "-k", str(K), "--model", "gmm", "--covariance-type", "diag", "-o", str(out)]
    assert cli.main(argv) == 0
    assert calls == [("scatter", "means"), ("ellipses", None)]
    assert (out / "plot.png").read_bytes()[:4] == b"\x89PNG"
    assert f"plot.png draws a random sample of 100 of the {N} rows" in capsys.readouterr().out


def test_the_criterion_table_keeps_large_values_apart():
    # Issue 17 item 11: BIC values above 10^7 ran into the k column and into each other.
    bic = np.array([[12345678.125, 98765432.5], [-23456789.25, 1.5]])
    z = np.zeros((2, 2))
    s = jaxmix.SelectResult(
        (9, 10),
        ("full", "diag"),
        "bic",
        z,
        bic,
        z,
        z,
        z,
        np.ones((2, 2), bool),
        z,
        np.zeros((2, 2), bool),
        10,
        "full",
        {},
    )
    rows = s.table().splitlines()[2:4]
    for row, k, values in zip(rows, (9, 10), bic, strict=True):
        cells = row.replace("*", " ").split()
        assert cells == [str(k), *(f"{v:.3f}" for v in values)], row


@pytest.mark.parametrize(
    "meta",
    [{"standardize": {"a": 1}}, {"columns": ["a", "b"]}, {"standardize": {"mean": [0, 0], "std": [1, -1]}}],
    ids=["standardize-keys", "columns-without-positions", "negative-std"],
)
def test_malformed_command_line_metadata_is_one_clean_error(tmp_path, capsys, meta):
    # Issue 17 item 19: crafted metadata crashed `info` and `predict` with a KeyError traceback.
    x = np.asarray(load_faithful(), np.float32)[:40]
    model = tmp_path / "m.npz"
    jaxmix.save(jaxmix.kmeans(jaxmix_key(), x, 2), model, metadata=meta)
    data = tmp_path / "x.npy"
    np.save(data, x)
    assert cli.main(["info", str(model)]) == 2
    assert cli.main(["predict", str(model), str(data)]) == 2
    err = capsys.readouterr().err
    assert "malformed command-line metadata" in err and "Traceback" not in err


def jaxmix_key():
    import jax

    return jax.random.key(0)
