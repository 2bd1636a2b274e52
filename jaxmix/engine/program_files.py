"""Programs kept on disk as exported StableHLO, so that a second process neither traces nor lowers them.

JAX's persistent compilation cache (switched on around jaxmix's calls by
`programs._disk_cache`) stores compiled executables under a digest of the
*lowered* program: a process must trace and lower a program before it can
look it up, and for jaxmix's fits that is most of a second per program
(one k-means fit on the 2-core CPU: tracing 0.72 s, lowering 0.32 s, the
cached executable loads in 0.3 s). So each program is also exported once
with `jax.export` (StableHLO serialized with flatbuffers, no pickle) into a
file named by a digest of everything that decides the program:

- the function, its static arguments, the tree, shapes and dtypes of its
  array arguments, the compiler options;
- jax and jaxlib versions, a digest of jaxmix's own source files (an edited
  jaxmix never loads an older program), the backend, the device kind, and
  the JAX settings that change tracing (64-bit mode, default matmul
  precision, dtype promotion).

A later process reads the file (milliseconds) and calls the exported
program through `jax.jit`, which lowers in a few milliseconds; JAX's
persistent cache then returns the compiled executable. (On CPU the first
exported call in a process imports `scipy.linalg`, as JAX loads LAPACK then:
~0.5 s where nothing imported it before.)

Files are written atomically (a temporary file, then a rename), so a
concurrent process sees a whole file or none; a file that cannot be read is
exported again and rewritten. A program that cannot be exported (a progress
display's host callbacks, arguments placed on several devices, static
arguments without a stable text form) is compiled as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jaxlib
import numpy as np

SUFFIX = ".jaxexport"


@functools.cache
def _source_digest() -> str:
    """Digest of jaxmix's Python sources (name and bytes of every module)."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@functools.cache
def _serialization() -> bool:
    """jax.export's serialization is importable (it needs the `flatbuffers` package)."""
    try:
        from jax._src.export import serialization  # noqa: F401
    except ImportError:
        return False
    return True


def _leaf_text(a: Any) -> str | None:
    """A leaf's shape/dtype text, or None where the program could not be exported for it."""
    if isinstance(a, jax.Array):
        with contextlib.suppress(Exception):
            if len(a.sharding.device_set) != 1:
                return None
        return f"{a.shape}{a.dtype}{'w' if getattr(a, 'weak_type', False) else ''}"
    if isinstance(a, np.ndarray | np.generic):
        return f"{a.shape}{a.dtype}"
    if isinstance(a, bool | int | float | complex):
        return type(a).__name__  # a Python scalar: weakly typed
    return None


def program_key(fun: Callable[..., Any], static: dict[str, Any], dynamic: dict[str, Any], options: Any) -> str | None:
    """The file name's digest of a program, or None where it cannot be kept on disk."""
    leaves, tree = jax.tree_util.tree_flatten(dynamic)
    texts = [_leaf_text(a) for a in leaves]
    if any(t is None for t in texts):
        return None
    statics = repr(sorted(static.items()))
    if " at 0x" in statics or "<" in statics:  # an object without a stable text form
        return None
    device = jax.devices()[0]
    parts = (
        f"{fun.__module__}.{fun.__qualname__}",
        statics,
        str(tree),
        ";".join(t for t in texts if t is not None),
        repr(sorted((options or {}).items())),
        jax.__version__,
        getattr(jaxlib, "__version__", ""),
        _source_digest(),
        device.platform,
        device.device_kind,
        str(getattr(jax.config, "jax_enable_x64", None)),
        str(getattr(jax.config, "jax_default_matmul_precision", None)),
        str(getattr(jax.config, "jax_numpy_dtype_promotion", None)),
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def exported(
    fun: Callable[..., Any], static: dict[str, Any], dynamic: dict[str, Any], options: Any, folder: Path
) -> Any | None:
    """The program as a `jax.export.Exported`, read from `folder` or exported (and written) now.

    None where the program cannot be exported; the caller then compiles it as before.
    """
    if not _serialization():
        return None
    key = program_key(fun, static, dynamic, options)
    if key is None:
        return None
    _register_result_types()
    path = folder / "exported" / f"{key}{SUFFIX}"
    with contextlib.suppress(Exception):  # missing, damaged or foreign: export again below
        return jax.export.deserialize(bytearray(path.read_bytes()))
    try:
        exp = jax.export.export(jax.jit(functools.partial(fun, **static)))(**dynamic)
        payload = exp.serialize()
    except Exception:  # host callbacks, effects, custom calls without a stable form: not kept
        return None
    _write_atomically(path, payload)
    return exp


_scanned: set[str] = set()  # jaxmix modules whose types are named already


def _register_result_types() -> None:
    """Name jaxmix's NamedTuples and dataclass pytrees (results, parameters, states) for
    `jax.export`'s tree serialization.

    Every jaxmix module loaded now is scanned (once per module, each type in the
    module that defines it), so a program read from disk finds its output types
    registered under the same names.
    """
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "jaxmix" or name.startswith("jaxmix.")) or name in _scanned:
            continue
        _scanned.add(name)
        for obj in list(vars(module).values()):
            if not isinstance(obj, type) or obj.__module__ != name:
                continue
            serialized_name = f"{name}.{obj.__qualname__}"
            with contextlib.suppress(Exception):  # registered already (by another route)
                if issubclass(obj, tuple) and hasattr(obj, "_fields"):
                    jax.export.register_namedtuple_serialization(obj, serialized_name=serialized_name)
                elif dataclasses.is_dataclass(obj):
                    # `jax.tree_util.register_dataclass`: the static fields are its tree's data. (A
                    # dataclass that is a leaf never appears as a node, so naming it is harmless.)
                    jax.export.register_pytree_node_serialization(
                        obj,
                        serialized_name=serialized_name,
                        serialize_auxdata=lambda aux: json.dumps(list(aux)).encode(),
                        deserialize_auxdata=lambda data: tuple(json.loads(data)),
                    )


def _write_atomically(path: Path, payload: bytes | bytearray) -> None:
    """Write `payload` to `path` through a temporary file in the same folder (never a half file)."""
    with contextlib.suppress(OSError):  # a read-only or full disk: the program is just not kept
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
