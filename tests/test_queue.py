"""engine/queue.py: fits through a few slots give what `vmap(iterate)` gives, each at its own pace."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmix.engine.loop import iterate
from jaxmix.engine.queue import iterate_queue

STARTS = jnp.asarray([1.0, 1e3, 0.5, 1e6, 3.0, 40.0, 7.0], jnp.float32)  # converge after very different counts
RATE = jnp.asarray([0.5, 0.9, 0.1, 0.95, 0.7, 0.3, 0.99], jnp.float32)
TOL = 1e-3


def _step_of(rate):
    def step(x, prev):
        objective = x * x
        return x * rate, objective, jnp.abs(objective - prev) < TOL

    return step


def _reference(max_iter, limit=None):
    return jax.vmap(lambda x, r: iterate(_step_of(r), x, max_iter, jnp.float32, limit=limit))(STARTS, RATE)


@pytest.mark.parametrize("slots", [1, 3, 7])
@pytest.mark.parametrize("limit", [None, 5, 0])
def test_queue_equals_vmapped_iterate(slots, limit):
    def step(x, prev, job):
        return _step_of(RATE[job])(x, prev)

    got, info = jax.jit(lambda s: iterate_queue(step, s, slots, 60, jnp.float32, limit=limit))(STARTS)
    want, ref = _reference(60, limit)
    np.testing.assert_array_equal(np.asarray(info.n_iter), np.asarray(ref.n_iter))
    np.testing.assert_array_equal(np.asarray(info.converged), np.asarray(ref.converged))
    np.testing.assert_array_equal(np.asarray(info.history), np.asarray(ref.history))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    counts = np.asarray(info.n_iter)
    if limit is None:  # the fits really differ in pace, and some hit the bound
        assert counts.min() < 10 and counts.max() == 60 and not bool(info.converged[np.argmax(counts)])
