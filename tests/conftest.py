import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "jaxmix",
    deadline=None,  # first calls compile; speed is measured in bench/, not here
    max_examples=int(os.environ.get("JAXMIX_HYPOTHESIS_EXAMPLES", "20")),
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile("jaxmix")


def make_blobs(seed, n=300, d=2, k=3, spread=0.5, scale=5.0, dtype=np.float32):
    """Gaussian blobs around k random centres; returns (x, true_centres)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=scale, size=(k, d))
    labels = rng.integers(0, k, size=n)
    x = centres[labels] + spread * rng.normal(size=(n, d))
    return x.astype(dtype), centres.astype(dtype)


@pytest.fixture
def blobs():
    return make_blobs(0)
