"""The five notebooks run top to bottom, and their committed outputs are current.

Each notebook checks its own story with `assert`s (J never rises, EM's
log-likelihood never falls, BIC finds the true k, the implicit gradient
equals a finite difference, ...), so executing it is the test. Execution
uses a fresh kernel per notebook (ipykernel on this Python), as
`python3 dev.py notebooks` does when it refreshes the committed outputs.
"""

import importlib.util
import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

_spec = importlib.util.spec_from_file_location("notebook_execute", ROOT / "notebooks" / "execute.py")
assert _spec is not None and _spec.loader is not None
execute = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _n_images(nb):
    return sum("image/png" in o.get("data", {}) for c in _code_cells(nb) for o in c.outputs)


def _errors(nb):
    return [o for c in _code_cells(nb) for o in c.outputs if o.output_type == "error"]


def test_the_five_notebooks_exist():
    assert [p.name[:3] for p in NOTEBOOKS] == ["01-", "02-", "03-", "04-", "05-"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_with_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    counts = [c.execution_count for c in _code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), "run the notebook top to bottom (python3 dev.py notebooks)"
    assert not _errors(nb)
    assert _n_images(nb) >= 2
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= len(counts) // 2, "a notebook needs prose, not only code"


def test_readme_figures_come_from_the_notebooks():
    readme = (ROOT / "README.md").read_text()
    tagged = {}
    for path in NOTEBOOKS:
        tagged.update(execute.figures(nbformat.read(path, as_version=4)))
    assert len(tagged) >= 2
    for rel, png in tagged.items():
        assert (ROOT / rel).read_bytes() == png, f"{rel} differs from its notebook's output"
        assert f"({rel})" in readme, f"README does not show {rel}"
    for path in NOTEBOOKS:
        assert f"(notebooks/{path.name})" in readme, f"README does not link {path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, monkeypatch):
    monkeypatch.delenv("JAXMIX_NOTEBOOK_SIZE", raising=False)  # the small version
    # JAXMIX_COMPILE=fast (set by conftest.py) reaches the kernels too: the same programs, compiled
    # for compile speed (~15% off a notebook's run here). `python3 dev.py notebooks`, which writes
    # the committed outputs, runs them with the defaults, as users do.
    # One thread per kernel: the kernel shares 2 cores with the pytest workers, and
    # oversubscribed thread pools made a notebook ~1.8x slower (measured on notebook 4).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        monkeypatch.setenv("XLA_FLAGS", f"{flags} --xla_cpu_multi_thread_eigen=false".strip())
    nb = execute.execute(path)  # raises CellExecutionError (with the cell and traceback) if a cell fails
    assert not _errors(nb)
    assert _n_images(nb) == _n_images(nbformat.read(path, as_version=4))
