"""A streamed fit with a checkpoint over a deliberately slow source; tests/test_stream.py kills it.

Usage: python _stream_worker.py CHECKPOINT SECONDS_PER_BATCH
"""

import sys
import time

import numpy as np

N, D, K, BATCH = 1000, 2, 3, 256


def data() -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=5.0, size=(K, D))
    return (centres[rng.integers(0, K, N)] + rng.normal(size=(N, D)) + 100.0).astype(np.float32)


def source(x: np.ndarray, sleep: float = 0.0):
    def batches():
        for lo in range(0, x.shape[0], BATCH):
            if sleep:
                time.sleep(sleep)
            yield x[lo : lo + BATCH]

    return batches


def fit(checkpoint, sleep: float = 0.0):
    import jax

    import jaxmix.stream as js

    return js.kmeans(
        jax.random.key(3),
        source(data(), sleep),
        K,
        tol=0.0,
        checkpoint=checkpoint,
        checkpoint_every=None if checkpoint is None else 3,
        progress=False,
    )


if __name__ == "__main__":
    fit(sys.argv[1], float(sys.argv[2]))
