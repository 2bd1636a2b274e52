"""Fits on data whose rows are split over several devices (and processes).

A user passes `x` as a `jax.Array` with a `NamedSharding` whose spec splits
the rows (`P("data")`, `P(("host", "gpu"))`; the feature axis unsplit). The
fitting functions then run their usual pure program under `jax.shard_map`:
every device works on its own rows, and the sums over rows become `psum`s
(`collective`). Parameters come back replicated on every device; per-row
outputs (labels) come back split like `x`.

`shard_map` is JAX's explicit-collectives API: it works the same whether the
mesh's axes are Explicit (`jax.make_mesh`'s default in current JAX, where an
implicit resharding is an error) or Auto, on one process or many
(`jax.distributed`).

A sharded array must split its rows evenly; `shard_rows` pads with
zero-weight rows (which change nothing in any fit) so that any row count
works, and `rows_from_processes` does the same for rows held by several
processes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmix.engine import arrays as A
from jaxmix.engine import collective as coll
from jaxmix.engine import progress as _progress
from jaxmix.engine import validation as V
from jaxmix.engine.programs import compiler_options


def row_axes_of(x: Any) -> tuple[Any, tuple[str, ...]] | None:
    """`(mesh, axes)` when `x` is a jax.Array whose rows are split over more than one device, else None."""
    if not isinstance(x, jax.Array) or A.is_traced(x):
        return None
    sh = x.sharding
    if not isinstance(sh, NamedSharding) or x.ndim < 1:
        return None
    spec = tuple(sh.spec)
    first = spec[0] if spec else None
    if any(s is not None for s in spec[1:]):
        raise ValueError(
            f"x is sharded over its feature axis (spec {sh.spec}); jaxmix splits rows only: "
            f"use NamedSharding(mesh, P(<axis>, None))"
        )
    if first is None:
        return None
    axes = (first,) if isinstance(first, str) else tuple(first)
    if math.prod(sh.mesh.shape[a] for a in axes) == 1:
        return None
    return sh.mesh, axes


def _row_sharding(mesh: Mesh, axes: tuple[str, ...]) -> NamedSharding:
    return NamedSharding(mesh, P(axes if len(axes) > 1 else axes[0]))


def place_weights(weights: Any, x: jax.Array, mesh: Mesh, axes: tuple[str, ...]) -> jax.Array:
    """Per-row weights split like `x` (all ones for None)."""
    sharding = _row_sharding(mesh, axes)
    n = x.shape[0]
    if weights is None:
        return jnp.ones((n,), x.dtype, device=sharding)  # made on the devices: no host array, no fresh jit
    w = A.as_float_array(weights, "weights", ndim=1).astype(x.dtype)
    if w.shape[0] != n:
        raise ValueError(f"weights has {w.shape[0]} entries but x has {n} samples")
    if isinstance(w, jax.Array) and w.sharding == sharding:
        return w
    return jax.device_put(w, sharding)


def row_fields(cls: Any, *names: str) -> Any:
    """`out_rows` for a NamedTuple result: True for the per-row fields `names`, False for the rest."""
    return cls._make(f in names for f in cls._fields)


@dataclasses.dataclass(frozen=True)
class RowDict:
    """`out_rows` for a function returning a dict: `((name, is_row), ...)` (hashable)."""

    items: tuple[tuple[str, bool | int], ...]


def call_fit(
    label: str,
    jitted: Any,
    args: Sequence[Any],
    static: dict[str, Any],
    *,
    row_args: Sequence[bool],
    out_rows: Any,
    progress: bool,
    weights_given: bool,
) -> Any:
    """Run a fitting program `jitted(*args, **static)` (`args[1]` is x, `args[2]` the weights).

    On row-sharded x: under `shard_map` with the weights split like x (all
    ones when the user gave none); otherwise the plain program, with its
    progress display.
    """
    sharded = row_axes_of(args[1])
    if sharded is None:
        return _progress.run(label, functools.partial(jitted, *args, **static), progress)
    placed = list(args)
    placed[2] = place_weights(args[2] if weights_given else None, args[1], *sharded)
    return fit_partial(sharded, jitted, placed, row_args, out_rows, **static)()


def fit_partial(
    sharded: tuple[Mesh, tuple[str, ...]],
    jitted: Any,
    args: Sequence[Any],
    row_args: Sequence[bool],
    out_rows: Any,
    **static: Any,
) -> Callable[[], Any]:
    """A zero-argument call of the fitting program `jitted` (a `fit_jit`) on row-sharded args.

    Progress reports are off in a sharded fit (every device would report).
    """
    mesh, axes = sharded
    if "progress" in static:
        static["progress"] = False
    raw = jitted.__wrapped__
    return functools.partial(run, raw, mesh, axes, tuple(args), tuple(row_args), out_rows, **static)


@functools.lru_cache(maxsize=64)
def _program(
    raw: Callable[..., Any],
    mesh: Mesh,
    axes: tuple[str, ...],
    row_args: tuple[bool, ...],
    out_specs: Any,
    static: tuple[tuple[str, Any], ...],
) -> Callable[..., Any]:
    """One jitted `shard_map` of `raw` per (function, mesh, axes, statics); cached like a module-level jit."""
    kwargs = dict(static)
    row = P(axes if len(axes) > 1 else axes[0])

    def body(*args: Any) -> Any:
        with coll.row_axes(axes):
            return raw(*args, **kwargs)

    in_specs = tuple(row if r else P() for r in row_args)
    rows_tree = dict(out_specs.items) if isinstance(out_specs, RowDict) else out_specs

    def spec(where: bool | int) -> P:
        # False: replicated; True: rows on dim 0; an int n: rows on dim n.
        if isinstance(where, bool):
            return row if where else P()
        return P(*([None] * where), row[0])

    specs = jax.tree_util.tree_map(spec, rows_tree)
    mapped = jax.shard_map(body, mesh=mesh, in_specs=in_specs, out_specs=specs, check_vma=False)
    return jax.jit(mapped, compiler_options=compiler_options())


def run(
    raw: Callable[..., Any],
    mesh: Mesh,
    axes: tuple[str, ...],
    args: Sequence[Any],
    row_args: Sequence[bool],
    out_rows: Any,
    **static: Any,
) -> Any:
    """Call `raw(*args, **static)` with `args[i]` split by rows where `row_args[i]`.

    `out_rows`: a pytree prefix of the output with True for per-row outputs
    (split like x), an int n for outputs whose dim n holds the rows, and
    False for replicated ones.
    """
    fn = _program(raw, mesh, tuple(axes), tuple(row_args), out_rows, tuple(sorted(static.items())))
    return fn(*args)


def shard_rows(
    x: Any, mesh: Mesh, axis: str | Sequence[str] | None = None, *, weights: Any = None
) -> tuple[jax.Array, jax.Array]:
    """Split the rows of `x` (and its weights) over `mesh`, padding to an even split.

    Args:
      x: (n, d) data on the host or on one device.
      mesh: a `jax.sharding.Mesh` (e.g. `jax.make_mesh((4,), ("data",))`;
        Explicit or Auto axes).
      axis: the mesh axis (or axes) that split the rows; default: all of
        the mesh's axes.
      weights: (n,) sample weights; default all ones.

    Returns:
      `(x_sharded, weights_sharded)`: `n` rounded up to a multiple of the
      number of shards; the padding rows are zeros with weight 0, so they
      change no fit. Pass both to `kmeans`, `soft_kmeans`, `gmm` or
      `select` (`weights=`); per-row outputs then have the padded length
      (`result.labels[:n]` are the labels of `x`).

    Example:
      >>> import jax, jaxmix
      >>> mesh = jax.make_mesh((1,), ("data",))
      >>> xs, ws = jaxmix.shard_rows(jaxmix.datasets.load_faithful(), mesh)
      >>> xs.shape, float(ws.sum())
      ((272, 2), 272.0)
    """
    if not isinstance(mesh, Mesh):
        raise TypeError(
            f"mesh must be a jax.sharding.Mesh (e.g. jax.make_mesh((4,), ('data',))), got {type(mesh).__name__}"
        )
    axes = _axes(mesh, axis)
    xv = V.check_data(np.asarray(x) if not isinstance(x, jax.Array) else x)
    n = xv.shape[0]
    wv = V.check_weights(weights, n, xv.dtype)
    s = math.prod(mesh.shape[a] for a in axes)
    pad = -n % s
    xh, wh = np.asarray(xv), np.asarray(wv)
    if pad:
        xh = np.concatenate([xh, np.zeros((pad, xh.shape[1]), xh.dtype)])
        wh = np.concatenate([wh, np.zeros((pad,), wh.dtype)])
    sharding = _row_sharding(mesh, axes)
    return jax.device_put(xh, sharding), jax.device_put(wh, sharding)


def rows_from_processes(
    local_x: Any, mesh: Mesh, axis: str | Sequence[str] | None = None, *, local_weights: Any = None
) -> tuple[jax.Array, jax.Array]:
    """Build global `(x, weights)` from the rows each process holds (`jax.distributed`).

    Every process calls this with its own rows (any number, at least one
    row in all); each process's block is padded with zero-weight rows to the
    largest block, so that the global array splits evenly over the
    processes' devices (`jax.make_array_from_process_local_data`). Pass the
    result to any fitting function: every process gets the same model.

    Args:
      local_x: (n_local, d) rows of this process.
      mesh: a mesh over all processes' devices (`jax.make_mesh((jax.device_count(),), ("data",))`).
      axis: the mesh axes that split the rows (default: all).
      local_weights: (n_local,) weights of this process's rows.

    Returns:
      `(x, weights)`, global arrays with `n_processes * padded_local` rows;
      this process's rows come first in its block.
    """
    from jax.experimental import multihost_utils

    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    axes = _axes(mesh, axis)
    xl = np.asarray(V.check_data(np.asarray(local_x), "local_x"))
    n_local, d = xl.shape
    wl = np.asarray(V.check_weights(local_weights, n_local, xl.dtype))
    counts = np.asarray(multihost_utils.process_allgather(np.array([n_local, d], np.int64)))
    counts = counts.reshape(-1, 2)
    if len(set(counts[:, 1].tolist())) != 1:
        raise ValueError(f"processes hold rows of different widths: {sorted(set(counts[:, 1].tolist()))} features")
    sharding = _row_sharding(mesh, axes)
    local_devices = sum(1 for dv in sharding.addressable_devices)
    per_device = -(-int(counts[:, 0].max()) // local_devices)
    target = per_device * local_devices
    if target > n_local:
        xl = np.concatenate([xl, np.zeros((target - n_local, d), xl.dtype)])
        wl = np.concatenate([wl, np.zeros((target - n_local,), wl.dtype)])
    n_global = target * jax.process_count()
    x = jax.make_array_from_process_local_data(sharding, xl, (n_global, d))
    w = jax.make_array_from_process_local_data(sharding, wl, (n_global,))
    return x, w


def _axes(mesh: Mesh, axis: str | Sequence[str] | None) -> tuple[str, ...]:
    if axis is None:
        return tuple(mesh.axis_names)
    axes = (axis,) if isinstance(axis, str) else tuple(axis)
    for a in axes:
        if a not in mesh.axis_names:
            raise ValueError(f"axis {a!r} is not an axis of the mesh {tuple(mesh.axis_names)}")
    return axes
