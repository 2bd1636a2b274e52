"""What the command line writes: the summary table, CSV files and the plot.

Everything here works on NumPy arrays in the data's original units; the
fitting and the model files live in `cli.py` and `files.py`.
"""

from __future__ import annotations

import os
from typing import IO, Any

import numpy as np

MAX_TABLE_COLUMNS = 8  # wider data: the summary shows the first ones


def write_csv(path: str | os.PathLike[str] | IO[str], header: list[str], columns: list[np.ndarray]) -> None:
    """One row per sample: integers as integers, floats with 7 significant digits (float32's precision).

    A path is written atomically; a text stream (stdout) directly.
    """
    cols = [np.asarray(c).tolist() for c in columns]
    fmt = ",".join(
        {"b": "%d", "i": "%d", "u": "%d", "U": "%s", "O": "%s"}.get(np.asarray(c).dtype.kind, "%.7g") for c in columns
    )
    lines = [",".join(header)]
    lines.extend(fmt % r for r in zip(*cols, strict=True))
    text = "\n".join(lines) + "\n"
    if isinstance(path, (str, os.PathLike)):
        from jaxmix.engine.disk import atomic_write

        with atomic_write(path) as f:
            f.write(text.encode("utf-8"))
    else:
        path.write(text)


def _fmt(v: float) -> str:
    return f"{v:>10.4f}" if v == 0 or 1e-3 <= abs(v) < 1e5 else f"{v:>10.3e}"


def cluster_table(
    names: list[str], sizes: np.ndarray, centers: np.ndarray, weights: np.ndarray | None, what: str
) -> list[str]:
    """Lines of the per-cluster table: index, size, weight (mixtures) and the centre/mean."""
    shown = names[:MAX_TABLE_COLUMNS]
    more = len(names) > MAX_TABLE_COLUMNS
    head = f"  {'cluster':>7} {'size':>7}" + (f" {'weight':>7}" if weights is not None else "")
    head += "  " + " ".join(f"{n[:10]:>10}" for n in shown) + (" ..." if more else "")
    out = [f"  {what} of each cluster, in the data's units:", head]
    for j in range(centers.shape[0]):
        line = f"  {j:>7} {int(sizes[j]):>7}" + (f" {float(weights[j]):>7.4f}" if weights is not None else "")
        line += "  " + " ".join(_fmt(float(v)) for v in centers[j, : len(shown)]) + (" ..." if more else "")
        out.append(line)
    return out


def plot(
    path: str | os.PathLike[str],
    x: np.ndarray,
    labels: np.ndarray,
    centers: np.ndarray,
    names: list[str],
    title: str,
    resp: np.ndarray | None = None,
    params: Any = None,
    centers_label: str = "centres",
) -> bool:
    """The figure of a fit, drawn by `jaxmix.plot`; False when matplotlib is missing.

    Points coloured by cluster (mixed by responsibility for mixtures), a
    legend from colour to the label numbers of labels.csv, the centres (or
    means) marked and a mixture's 1- and 2-sigma ellipses (`params`). Two
    columns are drawn as they are, more on their first two principal
    components, one against the row number; beyond `jaxmix.plot`'s
    MAX_POINTS rows a random sample is drawn, as the figure says.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    from jaxmix.engine.disk import atomic_write
    from jaxmix.tools import plot as _plot
    from jaxmix.tools import plot_parts as _parts

    fig, ax = plt.subplots(figsize=(6.5, 5), dpi=110)
    n, d = x.shape
    if d >= 2:
        if resp is not None:
            _plot.plot.scatter(x, proba=resp, centers=centers, ax=ax, centers_label=centers_label)
        else:
            _plot.plot.scatter(x, labels, centers=centers, ax=ax, centers_label=centers_label)
        if params is not None:
            _plot.plot.ellipses(params, x=x if d > 2 else None, ax=ax)
        if d == 2:
            ax.set_xlabel(names[0])
            ax.set_ylabel(names[1])
    else:  # jaxmix.plot draws two features or more: one column against the row number
        k = centers.shape[0]
        palette = _parts._palette(k)
        colours = np.clip(resp @ palette, 0, 1) if resp is not None else palette[labels]
        rows = np.arange(n)[_parts.sample_rows(n, _parts.MAX_POINTS)]
        ax.scatter(rows, x[rows, 0], c=colours[rows], s=10, alpha=0.8, edgecolors="none")
        if len(rows) < n:
            _parts.note_sample(ax, len(rows), n)
        for j in range(k):
            ax.axhline(centers[j, 0], color=palette[j], lw=1.5)
        handles = _parts.cluster_legend(k, "component" if resp is not None else "cluster")
        if handles:
            ax.legend(handles=handles, loc="best", fontsize=8)
        ax.set_xlabel("row")
        ax.set_ylabel(names[0])
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png")
    plt.close(fig)
    return True


def describe_array(a: Any) -> str:
    """A short text for one saved array: its value when small, else dtype and shape."""
    a = np.asarray(a)
    if a.size == 1:
        v = a.reshape(())[()]
        return str(bool(v)) if a.dtype.kind == "b" else (f"{v:.6g}" if a.dtype.kind == "f" else str(v))
    if a.size <= 16 and a.ndim == 1:
        if a.dtype.kind == "b":
            return "[" + ", ".join(str(bool(v)) for v in a) + "]"
        return "[" + ", ".join(f"{v:.6g}" if a.dtype.kind == "f" else str(v) for v in a) + "]"
    return f"{a.dtype} {tuple(a.shape)}"
