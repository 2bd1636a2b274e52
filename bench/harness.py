"""Measuring machinery for bench/run.py: timing, memory, tables, chart, docs/performance.md.

Kept apart from the workloads so that each workload reads as "what runs",
and this file as "how it is measured".
"""

from __future__ import annotations

import os
import platform
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxmix

Row = dict[str, Any]

# Relative disagreement of final objectives above which a row is flagged.
OBJECTIVE_RTOL = {"same-start": 1e-4, "own-start": 1e-2}


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 2 ms (Linux)."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.peak = 0
        self.base = 0
        self._stop = threading.Event()

    def _rss(self) -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * self.page
        except OSError:  # not Linux: no sampling
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss() - self.base)
            time.sleep(0.002)

    def __enter__(self) -> PeakRSS:
        self.base = self._rss()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join()
        self.peak = max(self.peak, self._rss() - self.base)


class Pending:
    """A measurement to run: `run_interleaved` times all of a workload's candidates together."""

    def __init__(self, workload: str, library: str, fn: Callable[[], Any], n_iter, objective, **options: Any):
        self.workload, self.library, self.fn = workload, library, fn
        self.n_iter, self.objective, self.options = n_iter, objective, options
        self.post: list[Callable[[Row], None]] = []
        self.times: list[float] = []


def measure(
    workload: str,
    library: str,
    fn: Callable[[], Any],
    n_iter: Callable[[Any], int],
    objective: Callable[[Any], float],
    *,
    compiled: bool = False,
    program: tuple[Callable[..., Any], tuple[Any, ...]] | None = None,
    data_bytes: int | None = None,
    **extra: Any,
) -> Pending:
    """Describe a timing of `fn`; its iteration count and final objective are read afterwards (untimed).

    `program=(f, args)`: a jittable function and its arguments doing the same
    work; its compiled memory analysis replaces the RSS sample (XLA reuses
    freed buffers, so RSS after a warm-up says little): peak = temporaries +
    outputs, and, with `data_bytes`, (arguments + temporaries + outputs) / data.
    """
    return Pending(
        workload, library, fn, n_iter, objective, compiled=compiled, program=program, data_bytes=data_bytes, extra=extra
    )


def run_interleaved(items: list[Any], repeats: int) -> list[Row]:
    """Warm every candidate up once, then time them in `repeats` interleaved rounds.

    Interleaving matters on a shared machine: its speed drifts by up to 2x
    over minutes (other tenants), and timing one library after the other
    would hand that drift to the ratio. Each row gives the median, min and
    max of its timed calls, the warm-up time (`first_s`: for jaxmix it
    includes tracing and compiling), and the peak resident memory added by
    the warm-up call. Memory is sampled during the warm-up only: later calls
    reuse freed memory, and a sampling thread would steal CPU from the timed
    calls (on a 2-core machine it slowed multi-threaded peers by up to 40%).
    Already finished rows (skipped peers) pass through.
    """
    pending = [p for p in items if isinstance(p, Pending)]
    for p in pending:
        with PeakRSS() as mem:
            t = time.perf_counter()
            p.out = p.fn()
            p.first = time.perf_counter() - t
        p.peak = mem.peak
    for _ in range(repeats):
        for p in pending:
            t = time.perf_counter()
            p.out = p.fn()
            p.times.append(time.perf_counter() - t)
    return [_row(p) if isinstance(p, Pending) else p for p in items]


def _row(p: Pending) -> Row:
    o = p.options
    extra = dict(o["extra"])
    stats: dict[str, Any] = {
        "median_s": float(np.median(p.times)),
        "min_s": float(np.min(p.times)),
        "max_s": float(np.max(p.times)),
        "first_s": p.first,
        "peak_mib": p.peak / 2**20,
    }
    if o["program"] is not None:
        f, args = o["program"]
        mem = jax.jit(f).lower(*args).compile().memory_analysis()
        added = mem.temp_size_in_bytes + mem.output_size_in_bytes
        stats["peak_mib"] = added / 2**20
        stats["memory_source"] = "xla"
        if o["data_bytes"]:
            extra["memory_over_data"] = (mem.argument_size_in_bytes + added) / o["data_bytes"]
    iters = int(p.n_iter(p.out))
    row: Row = {"workload": p.workload, "library": p.library, **stats, "n_iter": iters}
    row["per_iter_s"] = stats["median_s"] / max(iters, 1)
    row["objective"] = float(p.objective(p.out))
    if o["compiled"]:
        row["compile_s"] = max(0.0, stats["first_s"] - stats["median_s"])
    row.update(extra)
    for hook in p.post:
        hook(row)
    p.out = None
    return row


def peer(workload: str, library: str, body: Callable[[], Any]) -> Any:
    """Set up a peer's measurement; a missing optional package is a skipped row."""
    try:
        return body()
    except ImportError as e:
        return {"workload": workload, "library": library, "skipped": f"not installed ({e.name})"}


def blobs(seed: int, n: int, d: int, k: int) -> np.ndarray:
    """float32 Gaussian blobs around k centres drawn with a fixed seed."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d)).astype(np.float32)
    x = centres[rng.integers(0, k, size=n)]
    x += rng.normal(size=(n, d)).astype(np.float32)
    return x


def inertia(x: jax.Array, centers: Any) -> float:
    """Exact k-means objective of centres on x (jaxmix's own reduction, untimed)."""
    c = jnp.asarray(centers, x.dtype)
    labels = jaxmix.kmeans_predict(c, x)
    return float(jnp.sum((x - c[labels]) ** 2))


def gemm_seconds(n: int, d: int, k: int, repeats: int) -> float:
    """The machine's limit for one Lloyd iteration: the float32 distance GEMM.

    `min(x @ c.T)` over the clusters, on random data of the workload's shape:
    the reduction keeps XLA from writing the (n, k) product, so this is the
    GEMM alone (2 n k d flops).
    """
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(n, d)).astype(np.float32))
    c = jnp.asarray(rng.normal(size=(k, d)).astype(np.float32))
    f = jax.jit(lambda x, c: jnp.min(x @ c.T, axis=1))
    jax.block_until_ready(f(x, c))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(f(x, c))
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def device_name() -> str:
    dev = jax.devices()[0]
    if dev.platform != "cpu":
        return f"{dev.platform}-{dev.device_kind}".replace(" ", "_")
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            found = re.search(r"model name\s*:\s*(.+)", f.read())
            model = found.group(1) if found else model
    except OSError:
        pass
    return f"cpu-{os.cpu_count()}core-{model}".replace(" ", "_")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "jax": jax.__version__, "jaxmix": jaxmix.__version__}
    for dist in ("scikit-learn", "faiss-cpu", "gmmx", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "missing"
    return out


def flag_objectives(rows: list[Row]) -> None:
    """Mark peers whose final objective differs from jaxmix's beyond the stated tolerance."""
    for w in dict.fromkeys(r["workload"] for r in rows):
        group = [r for r in rows if r["workload"] == w and "skipped" not in r]
        ours = next((r for r in group if r["library"] == "jaxmix"), None)
        if ours is None:
            continue
        for r in group:
            tol = OBJECTIVE_RTOL[r.get("start", "same-start")]
            gap = abs(r["objective"] - ours["objective"]) / max(abs(ours["objective"]), 1e-30)
            r["objective_rtol"] = tol
            r["objective_flag"] = bool(gap > tol)


def table(rows: list[Row]) -> str:
    lines = [
        "| workload | library | median s | min s | max s | s / iter | jaxmix / peer | compile s | peak MiB | objective | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in dict.fromkeys(r["workload"] for r in rows):
        group = [r for r in rows if r["workload"] == w]
        ours = next((r for r in group if r["library"] == "jaxmix" and "skipped" not in r), None)
        for r in group:
            if "skipped" in r:
                lines.append(f"| {w} | {r['library']} | skipped: {r['skipped']} | | | | | | | | |")
                continue
            ratio = "" if ours is None or r is ours else f"{ours['median_s'] / r['median_s']:.3f}"
            comp = f"{r['compile_s']:.2f}" if "compile_s" in r else ""
            notes = []
            if r.get("objective_flag"):
                notes.append(f"**objective differs > {r['objective_rtol']:g}**")
            if "roofline_fraction" in r:
                notes.append(f"{100 * r['roofline_fraction']:.0f}% of GEMM roofline")
            if "memory_over_data" in r:
                notes.append(f"peak (data + XLA buffers) = {r['memory_over_data']:.2f}x data")
            if r.get("note"):
                notes.append(r["note"])
            mib = f"{r['peak_mib']:.0f}{' (xla)' if r.get('memory_source') == 'xla' else ''}"
            lines.append(
                f"| {w} | {r['library']} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['max_s']:.3f} | "
                f"{r['per_iter_s']:.4f} | {ratio} | {comp} | {mib} | {r['objective']:.6g} | "
                f"{'; '.join(notes)} |"
            )
    return "\n".join(lines)


def chart(rows: list[Row], path: Path, title: str) -> bool:
    """Bar chart of jaxmix / peer time ratios (log scale); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels, ratios = [], []
    for w in dict.fromkeys(r["workload"] for r in rows):
        group = [r for r in rows if r["workload"] == w and "skipped" not in r]
        ours = next((r for r in group if r["library"] == "jaxmix"), None)
        for r in group:
            if ours is not None and r is not ours and not r.get("variant"):
                labels.append(f"{w}\nvs {r['library']}")
                ratios.append(ours["median_s"] / r["median_s"])
    if not ratios:
        return False
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(ratios)), 3.6), dpi=110)
    colours = ["tab:green" if v < 1 else "tab:red" for v in ratios]
    ax.bar(range(len(ratios)), ratios, color=colours)
    ax.axhline(1.0, color="black", lw=1)
    ax.set_yscale("log")
    ax.set_xticks(range(len(ratios)), labels, fontsize=7)
    ax.set_ylabel("time jaxmix / peer (lower is better)")
    ax.set_title(title, fontsize=9)
    for i, v in enumerate(ratios):
        ax.text(i, v, f"{v:.2f}", ha="center", va="bottom" if v >= 1 else "top", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


PAGE_START = "<!-- bench:start (written by bench/run.py; do not edit by hand) -->"
PAGE_END = "<!-- bench:end -->"


def update_page(page: Path, header: str, md: str, chart_path: Path | None) -> bool:
    """Replace the block between the markers of `page` (docs/performance.md) with the new tables.

    `chart_path` is linked relative to the page's folder."""
    text = page.read_text()
    if PAGE_START not in text or PAGE_END not in text:
        return False
    body = f"{header}\n\n{md}\n"
    if chart_path:
        body += f"\n![jaxmix / peer time ratios]({Path(os.path.relpath(chart_path, page.parent)).as_posix()})\n"
    start = text.index(PAGE_START) + len(PAGE_START)
    end = text.index(PAGE_END)
    page.write_text(text[:start] + "\n" + body + text[end:])
    return True
