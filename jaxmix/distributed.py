"""Fits across several processes (machines) with `jax.distributed`.

Each process holds its own rows. After `jax.distributed.initialize` every
process sees all devices of all processes; a mesh over them and
`jaxmix.rows_from_processes(local_rows, mesh)` make one global array, and
any fitting function called with it (by every process, with the same
arguments) runs one program whose sums over rows are all-reduced across
processes: every process gets the same model.

    import jax, jaxmix
    jaxmix.distributed.initialize()                     # reads JAXMIX_* (see launch) or JAX's own env
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    x, w = jaxmix.rows_from_processes(my_rows, mesh)
    r = jaxmix.kmeans(jax.random.key(0), x, 8, weights=w)

`python -m jaxmix.launch -n 2 script.py args...` starts `n` local
processes of `script.py` joined on 127.0.0.1 (for trying things out and for
tests); on a cluster, use the cluster's launcher (SLURM, Kubernetes, TPU
pods: `jax.distributed.initialize()` finds its settings there by itself).
"""

from __future__ import annotations

import os

import jax

ENV_COORDINATOR = "JAXMIX_COORDINATOR"
ENV_PROCESS_ID = "JAXMIX_PROCESS_ID"
ENV_NUM_PROCESSES = "JAXMIX_NUM_PROCESSES"


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    cpu_collectives: str | None = "gloo",
) -> None:
    """Join the processes of a distributed fit (`jax.distributed.initialize`).

    Arguments left None are read from the environment variables set by
    `python -m jaxmix.launch` (`JAXMIX_COORDINATOR`,
    `JAXMIX_NUM_PROCESSES`, `JAXMIX_PROCESS_ID`) when present, otherwise
    left to JAX, which detects SLURM, Open MPI, Kubernetes and TPU pods.

    `cpu_collectives`: on CPU, JAX needs a collectives implementation for
    cross-process sums; "gloo" (default) is set through
    `jax.config.update("jax_cpu_collectives_implementation", ...)` before
    joining. This call is the only place where jaxmix touches JAX's
    configuration, and only because you asked for it. None leaves it alone.
    Must run before any other JAX call in the process.
    """
    env = os.environ
    if coordinator_address is None and ENV_COORDINATOR in env:
        coordinator_address = env[ENV_COORDINATOR]
    if num_processes is None and ENV_NUM_PROCESSES in env:
        num_processes = int(env[ENV_NUM_PROCESSES])
    if process_id is None and ENV_PROCESS_ID in env:
        process_id = int(env[ENV_PROCESS_ID])
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )
