#!/usr/bin/env python3
"""Re-execute the notebooks in place, so their committed outputs are fresh.

    python3 dev.py notebooks              # all notebooks/*.ipynb (installs the `notebooks` extra)
    python3 dev.py notebooks 03           # those whose name contains "03"

Each notebook runs top to bottom in a new kernel (the Python running this
script, via ipykernel); a failing cell stops it with the cell's traceback and
leaves the file untouched. A code cell tagged `figure:PATH` also writes its
first PNG output to PATH (relative to the repository root): that is how the
README's figures come from the notebooks. `JAXMIX_NOTEBOOK_SIZE=big` selects
the large version where a notebook has one.
"""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def execute(path: Path) -> nbformat.NotebookNode:
    """Run a notebook in a fresh kernel with its folder as the working directory; return it executed."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb


def figures(nb: nbformat.NotebookNode) -> dict[str, bytes]:
    """The PNGs of cells tagged `figure:PATH`, by PATH."""
    out = {}
    for cell in nb.cells:
        for tag in cell.get("metadata", {}).get("tags", []):
            if tag.startswith("figure:"):
                pngs = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
                if not pngs:
                    raise ValueError(f"cell tagged {tag!r} has no PNG output")
                out[tag.removeprefix("figure:")] = base64.b64decode(pngs[0])
    return out


def main(argv: list[str]) -> None:
    paths = sorted(HERE.glob("*.ipynb"))
    if argv:
        paths = [p for p in paths if any(a in p.name for a in argv)]
    for path in paths:
        t = time.perf_counter()
        nb = execute(path)
        nbformat.write(nb, path)
        for rel, png in figures(nb).items():
            (ROOT / rel).write_bytes(png)
            print(f"  wrote {rel}")
        print(f"{path.name}: {time.perf_counter() - t:.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
