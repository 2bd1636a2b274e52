"""What the command line writes: the summary table, CSV files and the plot.

Everything here works on NumPy arrays in the data's original units; the
fitting and the model files live in `cli.py` and `_io.py`.
"""

from __future__ import annotations

import os
from typing import IO, Any

import numpy as np

from jaxmix._io import atomic_write

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


def projection(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(mean, (d, 2) axes, axis labels) for the plot: the first two columns, or PCA for d > 2."""
    d = x.shape[1]
    if d <= 2:
        return np.zeros(d), np.eye(d), []
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    share = s**2 / max(float(np.sum(s**2)), np.finfo(float).tiny)
    return mean, vt[:2].T, [f"PC{i + 1} ({100 * share[i]:.0f}% of variance)" for i in range(2)]


def plot(
    path: str | os.PathLike[str],
    x: np.ndarray,
    labels: np.ndarray,
    centers: np.ndarray,
    names: list[str],
    title: str,
    resp: np.ndarray | None = None,
) -> bool:
    """Scatter of the data coloured by cluster, centres marked; False when matplotlib is missing.

    Two columns are drawn as they are; more are projected on their first
    two principal components (of the data as fitted, so standardised when
    the fit was); one column is drawn against the row number.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    k = centers.shape[0]
    if k <= 10:
        palette = np.array([plt.get_cmap("tab10")(j)[:3] for j in range(k)])
    else:
        palette = np.array([plt.get_cmap("hsv")(j / k)[:3] for j in range(k)])
    # Mixtures: colours mixed by responsibility (Bishop, PRML Fig. 9.8).
    colours = np.clip(resp @ palette, 0, 1) if resp is not None else palette[labels]
    fig, ax = plt.subplots(figsize=(6.5, 5), dpi=110)
    if x.shape[1] == 1:
        pts, cts = np.column_stack([np.arange(x.shape[0]), x[:, 0]]), None
        ax.set_xlabel("row")
        ax.set_ylabel(names[0])
        for j in range(k):
            ax.axhline(centers[j, 0], color=palette[j], lw=1.5)
    else:
        mean, axes, axis_names = projection(x)
        pts, cts = (x - mean) @ axes, (centers - mean) @ axes
        ax.set_xlabel(axis_names[0] if axis_names else names[0])
        ax.set_ylabel(axis_names[1] if axis_names else names[1])
    ax.scatter(pts[:, 0], pts[:, 1], c=colours, s=10, alpha=0.8, edgecolors="none")
    if cts is not None:
        ax.scatter(cts[:, 0], cts[:, 1], marker="X", s=140, c="black", edgecolors="white", label="centres")
        ax.legend(loc="best", fontsize=8)
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
