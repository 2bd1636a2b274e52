"""Run in a subprocess with 4 simulated CPU devices by tests/test_sharding.py.

Prints one JSON object: for each case, what the sharded fit gave and what
the single-device fit on the same rows gave.
"""

import json
import os
import sys

if __name__ == "__main__":
    # Only when run as the worker: pytest's --doctest-modules imports this file in every
    # test process, which then ran the whole suite on 4 simulated devices.
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jaxmix as jm


def arr(a):
    return np.asarray(a, dtype=np.float64).tolist()


def main() -> None:
    out: dict = {"devices": jax.device_count()}
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 6.0]])
    x = np.concatenate([rng.normal(size=(200, 2)) + c for c in centres]).astype(np.float32)
    x = x[rng.permutation(len(x))][:598]  # 598 rows: not a multiple of 4
    n = x.shape[0]
    key = jax.random.key(3)
    explicit = jax.make_mesh((4,), ("data",))
    auto = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    xs, ws = jm.shard_rows(x, explicit)
    out["padded_rows"] = int(xs.shape[0])
    out["pad_weight"] = float(np.asarray(ws)[n:].sum())
    out["x_spec"] = str(xs.sharding.spec)

    def kmeans_case(name, xs_, ws_, **kw):
        r1 = jm.kmeans(key, x, 3, algorithm="lloyd", **kw)
        r4 = jm.kmeans(key, xs_, 3, weights=ws_, **kw)
        out[name] = {
            "one": [float(r1.inertia), int(r1.n_iter), arr(r1.centers)],
            "many": [float(r4.inertia), int(r4.n_iter), arr(r4.centers)],
            "labels_equal": float(np.mean(np.asarray(r4.labels)[:n] == np.asarray(r1.labels))),
            "labels_spec": str(r4.labels.sharding.spec),
        }

    kmeans_case("kmeans_explicit", xs, ws)
    kmeans_case("kmeans_restarts", xs, ws, n_init=3, init="random")
    xa, wa = jm.shard_rows(x, auto)
    kmeans_case("kmeans_auto", xa, wa)
    mesh2 = jax.make_mesh((2, 2), ("data", "model"))
    x2, w2 = jm.shard_rows(x, mesh2, "data")
    kmeans_case("kmeans_2d_mesh", x2, w2)

    for name, kw in [
        ("gmm_full", {}),
        ("gmm_diag_random", {"covariance_type": "diag", "init": "random"}),
        ("gmm_vev", {"covariance_type": "VEV"}),  # an iterative M-step (mclust's VEV) on split rows
    ]:
        g1 = jm.gmm(key, x, 3, **kw)
        g4 = jm.gmm(key, xs, 3, weights=ws, **kw)
        out[name] = {
            "one": [float(g1.log_likelihood), int(g1.n_iter), arr(g1.params.means), arr(g1.params.covariances)],
            "many": [float(g4.log_likelihood), int(g4.n_iter), arr(g4.params.means), arr(g4.params.covariances)],
        }
    # The toolbox on sharded rows (plain jit: XLA partitions it), with the sharded fit's parameters.
    g4 = jm.gmm(key, xs, 3, weights=ws)
    out["toolbox"] = {
        "predict_equal": float(
            np.mean(np.asarray(jm.predict(g4.params, xs))[:n] == np.asarray(jm.predict(g4.params, x)))
        ),
        "log_prob_diff": float(
            np.abs(np.asarray(jm.log_prob(g4.params, xs))[:n] - np.asarray(jm.log_prob(g4.params, x))).max()
        ),
        "log_prob_spec": str(jm.log_prob(g4.params, xs).sharding.spec),
    }
    s1 = jm.soft_kmeans(key, x, 3, beta=0.5)
    s4 = jm.soft_kmeans(key, xs, 3, beta=0.5, weights=ws)
    out["soft_kmeans"] = {
        "one": [float(s1.objective), int(s1.n_iter), arr(s1.centers)],
        "many": [float(s4.objective), int(s4.n_iter), arr(s4.centers)],
    }
    # The default start on row-sharded data is "kmeans" (the agglomeration runs on the host): the
    # sharded grid equals the one-device grid with init="kmeans".
    sel1 = jm.select(key, x, range(1, 4), ("full", "spherical"), n_init=2, init="kmeans")
    sel4 = jm.select(key, xs, range(1, 4), ("full", "spherical"), n_init=2, weights=ws)
    out["select"] = {
        "one": [arr(sel1.bic), sel1.best_k, sel1.best_covariance_type],
        "many": [arr(sel4.bic), sel4.best_k, sel4.best_covariance_type],
    }
    # A user-built even split (no padding, no weights) is taken as it is.
    even = jax.device_put(x[:596], NamedSharding(explicit, P("data", None)))
    r1 = jm.kmeans(key, x[:596], 3, algorithm="lloyd")
    r4 = jm.kmeans(key, even, 3)
    out["kmeans_even_no_weights"] = {"one": [float(r1.inertia)], "many": [float(r4.inertia)]}
    errors = {}
    cols = jax.device_put(np.zeros((8, 4), np.float32), NamedSharding(explicit, P(None, "data")))
    for label, call in [
        ("feature_axis", lambda: jm.kmeans(key, cols, 2)),
        ("hamerly", lambda: jm.kmeans(key, xs, 3, weights=ws, algorithm="hamerly")),
        ("bad_weights", lambda: jm.kmeans(key, xs, 3, weights=-np.asarray(ws))),
    ]:
        try:
            call()
            errors[label] = "no error"
        except (ValueError, TypeError) as e:
            errors[label] = f"{type(e).__name__}: {e}"
    out["errors"] = errors
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
