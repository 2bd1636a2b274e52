"""Scaling workloads, each in its own process (device count and peak memory are per process).

    python3 dev.py bench --only W7 W8        # via bench/run.py
    .venv/bin/python bench/scale.py [--quick] [--only W7 W8]

W7: exact streaming Lloyd (`jaxmix.stream.kmeans`) over a float32 memmap
    of 4 GB (--quick: 256 MB) on disk: seconds per pass and the peak
    resident memory of the process, against the data's size; beside it the
    in-memory fit of the same rows (its peak includes the data).
W8: k-means on 4 simulated CPU devices (rows split by `jaxmix.shard_rows`)
    against the same fit on one device, same process, interleaved rounds:
    the ratio is the cost of the collectives (on CPU the 4 "devices" share
    the same 2 cores, so no speed-up is expected; on a multi-GPU node the
    same program splits the work).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = {"W7", "W8"}


def _anon_mib() -> float:
    """Anonymous resident memory (MiB): what the process allocated, without the memmap's file pages.

    A memmap's pages that were read count in RSS but belong to the page
    cache (the kernel drops them under pressure), so RSS would charge the
    streamed fit for the file it reads.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class _PeakAnon:
    """Sample `_anon_mib` every 20 ms in a thread; `.peak` after the block."""

    def __enter__(self):
        import threading

        self.peak = _anon_mib()
        self._stop = threading.Event()

        def loop():
            while not self._stop.wait(0.02):
                self.peak = max(self.peak, _anon_mib())

        self._t = threading.Thread(target=loop, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _anon_mib())


def _child_w8(quick: bool, rounds: int) -> dict:
    import jax
    import numpy as np

    import jaxmix

    n, d, k, iters = (200_000, 16, 32, 10) if quick else (1_000_000, 32, 64, 10)
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(n, d)) + rng.integers(0, 8, size=(n, 1))).astype(np.float32)
    c0 = x[rng.choice(n, k, replace=False)]
    key = jax.random.key(0)
    mesh = jax.make_mesh((4,), ("data",))
    xs, ws = jaxmix.shard_rows(x, mesh)
    x1 = jax.device_put(x, jax.devices()[0])

    def one():
        return jax.block_until_ready(jaxmix.kmeans(key, x1, k, init=c0, max_iter=iters, tol=0.0, algorithm="lloyd"))

    def four():
        return jax.block_until_ready(jaxmix.kmeans(key, xs, k, init=c0, max_iter=iters, tol=0.0, weights=ws))

    out = {}
    first = {}
    for name, fn in (("1 device", one), ("4 devices", four)):
        t = time.perf_counter()
        r = fn()
        first[name] = time.perf_counter() - t
        out[name] = {"objective": float(r.inertia), "n_iter": int(r.n_iter), "times": []}
    for _ in range(rounds):
        for name, fn in (("1 device", one), ("4 devices", four)):
            t = time.perf_counter()
            fn()
            out[name]["times"].append(time.perf_counter() - t)
    for name in out:
        med = statistics.median(out[name]["times"])
        out[name].update(median=med, compile=max(first[name] - med, 0.0))
    out["_shape"] = f"n={n:,}, d={d}, k={k}, {iters} iterations"
    return out


def _child_w7(quick: bool, mode: str, path: str) -> dict:
    import jax
    import numpy as np

    import jaxmix

    mm = np.load(path, mmap_mode="r")
    n, d = mm.shape
    k, passes = 16, 3
    c0 = np.asarray(mm[:: max(1, n // k)][:k])
    key = jax.random.key(0)
    base = _anon_mib()
    times = []
    with _PeakAnon() as mem:
        if mode == "in-memory":
            x = jax.device_put(np.array(mm))  # a real copy: np.asarray of a memmap would alias the file
        for _ in range(2):  # the first call compiles; the second is timed
            t = time.perf_counter()
            if mode == "stream":
                from jaxmix import stream

                r = stream.kmeans(key, mm, k, init=c0, max_iter=passes, tol=0.0, progress=False)
            else:
                r = jaxmix.kmeans(key, x, k, init=c0, max_iter=passes, tol=0.0, algorithm="lloyd")
            jax.block_until_ready(r.centers)
            times.append(time.perf_counter() - t)
    return {
        "seconds": times[1],
        "compile": max(times[0] - times[1], 0.0),
        "n_iter": int(r.n_iter),
        "objective": float(r.inertia),
        "peak_mib": mem.peak,
        "base_mib": base,
        "data_mib": mm.nbytes / 2**20,
        "shape": f"n={n:,}, d={d}, k={k}",
    }


def _spawn(args: list[str], env_extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"bench/scale.py {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _make_memmap(path: Path, gb: float) -> None:
    import numpy as np

    d = 16
    n = int(gb * 2**30 / (4 * d))
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=5.0, size=(16, d)).astype(np.float32)
    step = 1 << 20
    for i in range(0, n, step):
        m = min(step, n - i)
        mm[i : i + m] = centres[rng.integers(0, 16, m)] + rng.normal(size=(m, d)).astype(np.float32)
    mm.flush()
    del mm


def run(quick: bool, only: list[str] | None, rounds: int) -> str:
    lines = [
        "| workload | variant | median s | s / data pass or iter | ratio | compile s | peak MiB | data MiB | objective |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if not only or "W8" in only:
        print("running W8: k-means on 4 simulated CPU devices vs 1", file=sys.stderr, flush=True)
        r = _spawn(
            ["--child", "W8", *(["--quick"] if quick else []), "--rounds", str(rounds)],
            {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"},
        )
        shape = r.pop("_shape")
        base = r["1 device"]["median"]
        for name, v in r.items():
            lines.append(
                f"| W8 ({shape}) | {name} | {v['median']:.3f} | {v['median'] / v['n_iter']:.4f} | "
                f"{v['median'] / base:.3f} | {v['compile']:.2f} |  |  | {v['objective']:.6g} |"
            )
    if not only or "W7" in only:
        gb = 0.25 if quick else 4.0
        print(f"running W7: streaming k-means over a {gb:g} GB memmap", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "x.npy"
            _make_memmap(path, gb)
            rows = {m: _spawn(["--child", "W7", "--mode", m, "--path", str(path)]) for m in ("stream", "in-memory")}
        base = rows["stream"]["seconds"]
        for m, v in rows.items():
            # Data passes: the moments pass, one per iteration, and the final objective/labels pass.
            lines.append(
                f"| W7 ({v['shape']}, memmap) | {m} | {v['seconds']:.3f} | {v['seconds'] / (v['n_iter'] + 2):.3f} | "
                f"{v['seconds'] / base:.3f} | {v['compile']:.2f} | {v['peak_mib'] - v['base_mib']:.0f} | "
                f"{v['data_mib']:.0f} | {v['objective']:.6g} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    p.add_argument("--path", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child == "W8":
        print(json.dumps(_child_w8(a.quick, a.rounds)))
        return 0
    if a.child == "W7":
        print(json.dumps(_child_w7(a.quick, a.mode, a.path)))
        return 0
    print(run(a.quick, a.only, a.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
