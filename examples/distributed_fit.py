"""Fit k-means and a Gaussian mixture over rows split between processes.

    python -m jaxmix.launch -n 2 examples/distributed_fit.py [out.npz]

Each process reads its own half of the Old Faithful rows (in a real job:
its own files), the processes join with `jaxmix.distributed.initialize()`,
and every process gets the same model. Process 0 writes the centres, means
and objectives to `out.npz` when a path is given.
"""

import sys

import jaxmix

jaxmix.distributed.initialize()

import jax  # noqa: E402
import numpy as np  # noqa: E402

rank, size = jax.process_index(), jax.process_count()
x = np.asarray(jaxmix.datasets.load_faithful())
mine = np.array_split(x, size)[rank]  # this process's rows (uneven splits are fine)

mesh = jax.make_mesh((jax.device_count(),), ("data",))
xs, ws = jaxmix.rows_from_processes(mine, mesh)
key = jax.random.key(0)
km = jaxmix.kmeans(key, xs, 2, weights=ws, n_init=3)
gm = jaxmix.gmm(key, xs, 2, weights=ws)
line = (
    f"process {rank}/{size}: {mine.shape[0]} local rows; kmeans inertia {float(km.inertia):.6f}; "
    f"gmm mean log-likelihood {float(gm.log_likelihood):.6f}\n"
)
sys.stdout.write(line)  # one write: the processes share the terminal
sys.stdout.flush()
if rank == 0 and len(sys.argv) > 1:
    np.savez(
        sys.argv[1],
        centers=np.asarray(km.centers),
        inertia=np.asarray(km.inertia),
        means=np.asarray(gm.params.means),
        covariances=np.asarray(gm.params.covariances),
        log_likelihood=np.asarray(gm.log_likelihood),
    )
