import gc
import os

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "jaxmix",
    deadline=None,  # first calls compile; speed is measured in bench/, not here
    max_examples=int(os.environ.get("JAXMIX_HYPOTHESIS_EXAMPLES", "10")),
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile("jaxmix")

# The suite compiles hundreds of programs on small data: compile them all for compile
# speed (jaxmix._jit.compiler_options; the same programs, optimised less). Set before
# any test runs, so notebook kernels and worker processes inherit it too.
# tests/test_programs.py checks the default options explicitly.
os.environ.setdefault("JAXMIX_COMPILE", "fast")


def make_blobs(seed, n=300, d=2, k=3, spread=0.5, scale=5.0, dtype=np.float32):
    """Gaussian blobs around k random centres; returns (x, true_centres)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=scale, size=(k, d))
    labels = rng.integers(0, k, size=n)
    x = centres[labels] + spread * rng.normal(size=(n, d))
    return x.astype(dtype), centres.astype(dtype)


class BrokenStream:
    """A stderr that cannot be written: full disk (/dev/full), closed pipe."""

    def write(self, text):
        raise OSError(28, "No space left on device")

    def flush(self):
        raise OSError(28, "No space left on device")

    def isatty(self):
        return False


@pytest.fixture
def blobs():
    return make_blobs(0)


# XLA:CPU maps each compiled program's code in a few hundred memory
# mappings (a GMM fit: ~400), and the kernel allows 65,530 per process
# (vm.max_map_count). The suite compiles a thousand programs or so: past the
# limit LLVM cannot map the next program and the process dies inside the
# compiler. Dropping JAX's caches when the count grows releases the
# programs (later tests recompile what they need).
MAPS = "/proc/self/maps"
MAX_MAPS = 45_000


def _n_maps():
    try:
        with open(MAPS) as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


@pytest.fixture(autouse=True)
def _bounded_compiled_programs():
    yield
    if _n_maps() > MAX_MAPS:
        jax.clear_caches()
        gc.collect()
