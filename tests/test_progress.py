"""progress=True: a status line on stderr for long fits, nothing otherwise, same results."""

import re

import jax
import numpy as np
import pytest
from conftest import BrokenStream, make_blobs

import jaxmix
from jaxmix.engine import progress as _progress


def _err(capfd):
    """stderr without the compile notices (a compile over a second says so; tests/test_programs.py)."""
    return "".join(line for line in capfd.readouterr().err.splitlines(True) if not line.startswith("jaxmix: compiling"))


KEY = jax.random.key(0)
FITS = {
    "kmeans": (lambda x, **kw: jaxmix.kmeans(KEY, x, 3, n_init=3, **kw)),
    "soft_kmeans": (lambda x, **kw: jaxmix.soft_kmeans(KEY, x, 3, beta=0.5, **kw)),
    "gmm": (lambda x, **kw: jaxmix.gmm(KEY, x, 3, n_init=2, covariance_type="diag", **kw)),
}


@pytest.fixture(scope="module")
def x():
    return make_blobs(3, n=200, d=2, k=3)[0]


@pytest.fixture
def always(monkeypatch):
    """Report every iteration of every fit (no threshold, no interval), as on a pipe."""
    monkeypatch.setattr(_progress, "THRESHOLD_S", 0.0)
    monkeypatch.setattr(_progress, "INTERVAL_S", 0.0)
    monkeypatch.setattr(_progress, "_is_tty", lambda: False)


def iterations(text):
    return [int(n) for n in re.findall(r"iteration (\d+) objective", text)]


@pytest.mark.parametrize("name", list(FITS))
def test_progress_reports_each_iteration_once_and_changes_nothing(x, name, always, capfd):
    fit = FITS[name]
    quiet = fit(x)
    assert _err(capfd) == ""
    loud = fit(x, progress=True)
    err = _err(capfd)
    # The same fit: integers equal, floats to float32 round-off (the program with the display's
    # callbacks is compiled on its own, and XLA may fuse its sums differently: the mixture's
    # log-likelihood differed by 2e-6 relative with identical parameters).
    for a, b in zip(jax.tree_util.tree_leaves(loud), jax.tree_util.tree_leaves(quiet), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(a, b)
    assert err.startswith(f"jaxmix {name}: iteration 1 objective ")
    assert "(cpu, " in err or "(" in err.splitlines()[0]
    # Restarts are reduced on the device: one report per iteration, the
    # largest count, whatever n_init is.
    seen = iterations(err)
    assert seen == list(range(1, len(seen) + 1)) and seen[-1] >= int(loud.n_iter)
    first = float(re.search(r"objective (\S+)", err).group(1))
    if name == "kmeans":  # the best restart's inertia after the first E-step
        assert first <= float(loud.history[0]) * (1 + 1e-5)  # printed to 6 significant digits


def test_fast_fits_print_nothing(x, monkeypatch, capfd):
    monkeypatch.setattr(_progress, "THRESHOLD_S", 1e9)
    r = FITS["kmeans"](x, progress=True)
    assert int(r.n_iter) >= 1
    assert _err(capfd) == ""


def test_terminal_line_overwrites_itself(x, always, monkeypatch, capfd):
    monkeypatch.setattr(_progress, "_is_tty", lambda: True)
    monkeypatch.setattr(_progress, "REFRESH_S", 0.0)
    FITS["kmeans"](x, progress=True)
    err = _err(capfd)
    assert err.count("\r") == len(iterations(err)) and err.endswith("\n") and err.count("\n") == 1
    assert "done" in err.splitlines()[-1]


def test_no_callback_compiled_without_progress(x):
    def lowered(progress):
        f = jax.jit(lambda x: jaxmix.kmeans(KEY, x, 3, progress=progress).inertia)
        return f.lower(x).as_text()

    assert "callback" not in lowered(False)
    assert "callback" in lowered(True)


def test_progress_inside_a_users_jit(x, always, capfd):
    f = jax.jit(lambda x: jaxmix.kmeans(KEY, x, 3, n_init=3, progress=True).inertia)
    inertia = f(x)
    err = _err(capfd)
    # The call outside jit runs in its size bucket (padded rows): the same fit up to float32 round-off.
    np.testing.assert_allclose(inertia, FITS["kmeans"](x).inertia, rtol=1e-6)
    assert err.startswith("jaxmix: iteration 1 objective ")
    seen = iterations(err)
    assert seen == list(range(1, len(seen) + 1))


def test_a_display_that_cannot_be_written_never_fails_the_fit(x, always, monkeypatch):
    # Issue 17 item 20: `jaxmix fit ... 2>/dev/full` exited 1 and wrote nothing.
    quiet = FITS["kmeans"](x)
    monkeypatch.setattr("sys.stderr", BrokenStream())
    loud = FITS["kmeans"](x, progress=True)
    _progress.note("a step")
    jax.tree_util.tree_map(np.testing.assert_array_equal, loud, quiet)


def test_a_streaming_bar_that_cannot_be_written_goes_silent(monkeypatch):
    pytest.importorskip("tqdm")
    from jaxmix.engine import progress_bar as _bar

    monkeypatch.setattr("sys.stderr", BrokenStream())
    with _bar.bar(10, "jaxmix stream kmeans pass 1", True) as pbar:
        for _ in range(3):
            pbar.update()
            pbar.set_postfix(inertia=1.0)
