import gc
import json
import os
import time

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
# speed (jaxmix.engine.programs.compiler_options; the same programs, optimised less). Set before
# any test runs, so notebook kernels and worker processes inherit it too.
# tests/test_programs.py checks the default options explicitly.
os.environ.setdefault("JAXMIX_COMPILE", "fast")
# Programs jaxmix does not compile itself (a fit inside a test's own jit, vmap or grad, eager
# jnp operations) use XLA's defaults: compile those as jaxmix's small fits are (LLVM level 1, no
# fusion emitters; ~2x faster to compile). Not level 0: it gave an implicit gradient 30% off in
# float64 (tests/test_differentiable.py, spherical), which levels 1 and 2 get right. Read when JAX
# starts its CPU backend, i.e. before the first test computes anything.
_FAST_XLA = ("--xla_backend_optimization_level=1", "--xla_cpu_use_fusion_emitters=false")
_flags = os.environ.get("XLA_FLAGS", "")
os.environ["XLA_FLAGS"] = " ".join([_flags, *(f for f in _FAST_XLA if f.split("=")[0] not in _flags)]).strip()


# JAXMIX_TEST_PROFILE=FILE: one JSON line per test with its wall time and the seconds JAX spent
# tracing, lowering and compiling (jax.monitoring), to see where the suite's time goes.
_PROFILE = os.environ.get("JAXMIX_TEST_PROFILE")
_compile_secs: dict[str, float] = {}
if _PROFILE:
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, secs, **kw: (
            _compile_secs.__setitem__(event, _compile_secs.get(event, 0.0) + secs) if "/compile/" in event else None
        )
    )


@pytest.fixture(autouse=True)
def _profile(request):
    if not _PROFILE:
        yield
        return
    _compile_secs.clear()
    start = time.perf_counter()
    yield
    record = {k.rsplit("/", 1)[-1]: round(v, 3) for k, v in _compile_secs.items()}
    record.update(test=request.node.nodeid, wall=round(time.perf_counter() - start, 3))
    with open(_PROFILE, "a") as f:
        f.write(json.dumps(record) + "\n")


# The heavy cases: the suite must finish in under 10 minutes on 2 cores, and almost all of its time
# is XLA compiling programs (~1-3 s each). These cases cost 10-60 s each (a fresh process, a
# notebook kernel, or a sweep that compiles a program per configuration); `python3 dev.py test`
# leaves them out (-m "not heavy") and `python3 dev.py heavy` runs them, with the benchmarks.
# Each capability keeps a lighter test in the default run (named after the arrow).
HEAVY = (
    "tests/test_notebooks.py::test_notebook_runs",  # 5 kernels, ~250 s -> test_committed_with_outputs
    "tests/test_sharding.py::test_two_processes_get_the_single_process_model",  # -> one-device mesh tests
    "tests/test_programs.py::test_program_bound_keeps_a_long_process_alive",  # -> ..._releases_least_recently_used
    "tests/test_programs.py::test_disk_cache_serves_a_second_process_and_survives_damage",  # -> cache_programs_switch
    "tests/test_programs.py::test_masked_gmm_equals_exact_k[diag]",  # -> [full], [tied]
    "tests/test_programs.py::test_masked_gmm_equals_exact_k[spherical]",
    "tests/test_hardening.py::test_no_global_state_no_network_and_no_writes_outside_the_given_path",
    "tests/test_hardening.py::test_a_save_killed_at_any_point_leaves_a_readable_file",  # -> test_io, test_files
    "tests/test_hardening.py::test_float32_agrees_with_float64_under_offsets_and_scales[1.0-1000000.0]",
    "tests/test_cli.py::test_the_installed_command_end_to_end",  # -> the in-process CLI tests
    "tests/test_select.py::test_select_finds_the_true_k_and_covariance_model",  # -> agrees_with_mclust
    "tests/test_select.py::test_masked_k_equals_an_unmasked_fit_with_that_k[k-means++",  # -> [kmeans-...]
    "tests/test_batch_mixtures.py::test_gmm_batch_equals_the_loop_and_the_unpadded_fits",  # -> soft_kmeans_batch
    "tests/test_batch_mixtures.py::test_many_restarts_run_in_groups_with_the_same_winner",
    "tests/test_kmeans.py::test_hamerly_equals_lloyd[k-means++-3-True]",  # -> [random-1-False]
    "tests/test_kmeans.py::test_tol_zero_converges_with_restarts",
    "tests/test_gmm.py::test_em_with_fixed_isotropic_covariance_is_soft_kmeans[1000.0]",  # -> [0.3]
    "tests/test_gmm.py::test_degenerate_data_gives_finite_parameters[True]",  # -> [None]
    "tests/test_differentiable.py::test_implicit_gradients_of_converged_gmm_match_finite_differences[diag]",
    "tests/test_differentiable.py::test_implicit_gradients_of_converged_gmm_match_finite_differences[spherical]",
    "tests/test_properties.py::test_gmm_log_likelihood_never_decreases",  # -> test_gmm's monotone history tests
    "tests/test_programs.py::test_masked_kmeans_equals_exact_k[k-means++]",  # -> [random]
    "tests/test_programs.py::test_masked_gmm_equals_exact_k[tied]",  # -> [full]
    "tests/test_differentiable.py::test_implicit_gradients_of_converged_gmm_match_finite_differences[tied]",
    "tests/test_online.py::test_online_gmm_step_size_schedule",  # -> ..._recovers_full_em_and_likelihood_increases
    "tests/test_kmeans.py::test_vmap_over_datasets_equals_loop",  # -> test_gmm's, test_batch's
    "tests/test_kmeans.py::test_zero_weight_rows_change_nothing",  # -> test_gmm's, test_programs' padded rows
    "tests/test_mclust_models.py::test_select_picks_the_generating_model",  # -> ..._on_one_feature_uses_e_and_v
    "tests/test_mclust_models.py::test_batches_and_streams_take_an_mclust_model",
    "tests/test_mclust_models.py::test_common_orientation_m_step_matches_a_direct_minimisation[VVE]",  # -> [EVE]  # -> ..._model_files_and_the_estimator_...
    "tests/test_differentiable.py::test_gradient_fit_reaches_em_log_likelihood[full]",  # -> [diag]
    "tests/test_differentiable.py::test_grad_through_toolbox_and_soft_responsibilities",  # -> docs/gradients.md's block
)


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        # The 4-device worker (~55 s in a subprocess) -> tests/test_sharding.py's one-device mesh tests.
        if item.nodeid.startswith(HEAVY) or "four_devices" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.heavy)


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
