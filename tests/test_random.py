"""The programs' random streams (jaxmix.engine.random): deterministic, independent, uniform."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxmix.engine import random as jr


def test_typed_and_raw_keys_give_the_same_words_and_draws():
    typed = jax.random.key(7)
    raw = jax.random.key_data(typed)
    np.testing.assert_array_equal(jr.words(typed), raw)
    np.testing.assert_array_equal(jr.uniform(typed, (5,), jnp.float32), jr.uniform(raw, (5,), jnp.float32))
    # keys of more than two words fold into two, and different keys differ
    rbg = jax.random.key(7, impl="rbg")
    assert jr.words(rbg).shape == (2,)
    assert not np.array_equal(jr.words(jax.random.key(8)), jr.words(typed))


def test_split_is_fold_in_and_does_not_depend_on_the_count():
    key = jax.random.key(3)
    a, b = jr.split(key, 4), jr.split(key, 9)
    np.testing.assert_array_equal(a, b[:4])
    for i in range(4):
        np.testing.assert_array_equal(a[i], jr.fold_in(key, i))
    assert len({tuple(np.asarray(w)) for w in b}) == 9  # distinct streams
    # the draws of one stream do not depend on how many are taken
    np.testing.assert_array_equal(jr.bits(key, (3,)), jr.bits(key, (10,))[:3])


def test_uniform_draws_are_uniform_and_float32_float64_agree_on_the_grid():
    key = jax.random.key(0)
    u32 = np.asarray(jr.uniform(key, (20_000,), jnp.float32))
    assert u32.min() >= 0.0 and u32.max() < 1.0
    assert stats.kstest(u32, "uniform").pvalue > 1e-3
    with jax.enable_x64(True):
        u64 = np.asarray(jr.uniform(key, (20_000,), jnp.float64))
    assert u64.dtype == np.float64 and u64.max() < 1.0
    # the float32 draw is the float64 one rounded down to the 2^-24 grid
    np.testing.assert_array_equal(np.floor(u64 * 2.0**24) / 2.0**24, u32)


def test_neighbouring_streams_and_counters_are_uncorrelated():
    keys = jr.split(jax.random.key(1), 200)
    u = np.asarray(jr.uniform(keys, (100,), jnp.float32))  # (200 streams, 100 draws)
    assert u.shape == (200, 100)
    across = np.corrcoef(u[:-1].ravel(), u[1:].ravel())[0, 1]  # stream i vs stream i + 1
    along = np.corrcoef(u[:, :-1].ravel(), u[:, 1:].ravel())[0, 1]  # draw c vs draw c + 1
    assert abs(across) < 0.02 and abs(along) < 0.02
    # bits: every bit position is fair
    b = np.asarray(jr.bits(jax.random.key(2), (50_000,)))
    ones = np.array([np.mean((b >> i) & 1) for i in range(32)])
    assert np.all(np.abs(ones - 0.5) < 0.01), ones


def test_gumbel_draws_follow_the_gumbel_law():
    g = np.asarray(jr.gumbel(jax.random.key(4), (20_000,), jnp.float32))
    assert np.all(np.isfinite(g))
    assert stats.kstest(g, "gumbel_r").pvalue > 1e-3


@pytest.mark.parametrize("n_init", [1, 3])
def test_streams_work_inside_jit_vmap_and_on_traced_keys(n_init):
    @jax.jit
    def draw(key):
        return jax.vmap(lambda w: jr.uniform(w, (2,), jnp.float32))(jr.split(key, n_init))

    out = draw(jax.random.key(5))
    np.testing.assert_array_equal(out, jr.uniform(jr.split(jax.random.key(5), n_init), (2,), jnp.float32))


def test_draws_at_counters_are_the_streams_bits():
    key = jax.random.key(6)
    np.testing.assert_array_equal(jr.uniform_at(key, np.arange(4), jnp.float32), jr.uniform(key, (4,), jnp.float32))
    with jax.enable_x64(True):
        u = jr.uniform_at(key, np.array([[3, 70]]), jnp.float64)
        assert u.shape == (1, 2) and u.dtype == jnp.float64
        np.testing.assert_array_equal(
            np.floor(np.asarray(u) * 2.0**24) / 2.0**24, jr.uniform_at(key, [[3, 70]], jnp.float32)
        )
