"""The command line and the bundled data."""

import subprocess
import sys

import numpy as np
import pytest

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
    sizes = sorted(int(r[1]) for r in rows[:2])
    assert sizes == [98, 174]
    # Mixture weights of Old Faithful's two components (about 0.36 and 0.64).
    weights = sorted(float(r[1]) for r in rows[2:4])
    np.testing.assert_allclose(weights, [0.356, 0.644], atol=0.01)


def test_demo_rejects_bad_k(capsys):
    assert cli.main(["demo", "--k", "0", "--output", ""]) == 2
    assert "n_clusters" in capsys.readouterr().err


def test_console_script_entry_point():
    proc = subprocess.run([sys.executable, "-m", "jaxmix.cli", "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "demo" in proc.stdout


def test_unknown_command_fails():
    with pytest.raises(SystemExit):
        cli.main(["nope"])
