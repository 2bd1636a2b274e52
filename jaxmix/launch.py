"""A small launcher: N local processes joined by `jax.distributed` on 127.0.0.1.

    python -m jaxmix.launch -n 2 examples/distributed_fit.py

Each process gets `JAXMIX_COORDINATOR`, `JAXMIX_NUM_PROCESSES` and
`JAXMIX_PROCESS_ID`, which `jaxmix.distributed.initialize()` reads. For
trying a multi-machine program on one machine and for tests; on a cluster
use its own launcher.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Sequence

from jaxmix.distributed import ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(script: str, args: Sequence[str] = (), n_processes: int = 2, timeout: float | None = None) -> list[int]:
    """Run `n_processes` copies of `script` on this machine, joined on 127.0.0.1.

    Each copy gets `JAXMIX_COORDINATOR`, `JAXMIX_NUM_PROCESSES` and
    `JAXMIX_PROCESS_ID` in its environment (read by `initialize()`); its
    output goes to this process's stdout/stderr. Returns the exit codes;
    if one process fails, the others are stopped.
    """
    if n_processes < 1:
        raise ValueError(f"n_processes must be >= 1, got {n_processes}")
    address = f"127.0.0.1:{_free_port()}"
    procs = []
    for i in range(n_processes):
        env = dict(os.environ)
        env.update({ENV_COORDINATOR: address, ENV_NUM_PROCESSES: str(n_processes), ENV_PROCESS_ID: str(i)})
        procs.append(subprocess.Popen([sys.executable, script, *args], env=env))
    codes: list[int] = []
    try:
        for p in procs:
            codes.append(p.wait(timeout=timeout))
            if codes[-1] != 0:
                break
    except subprocess.TimeoutExpired:
        codes.append(-9)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [p.returncode for p in procs]


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m jaxmix.launch",
        description="Run a script as N local processes joined by jax.distributed (127.0.0.1).",
        epilog="example: python -m jaxmix.launch -n 2 examples/distributed_kmeans.py",
    )
    parser.add_argument("-n", "--processes", type=int, default=2, help="number of processes (default 2)")
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    a = parser.parse_args(argv)
    codes = launch(a.script, a.args, a.processes)
    return max((abs(c) for c in codes), default=0)


if __name__ == "__main__":
    sys.exit(main())
