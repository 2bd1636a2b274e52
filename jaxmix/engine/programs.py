"""Compiled programs: how jaxmix jits, keeps, bounds and stores its programs.

Every fitting and toolbox program is declared with `fit_jit`. A call then

- runs one `jax.jit` per combination of static arguments (a *program*),
  with XLA:CPU compiler options that pay (LLVM optimisation level 1 compiled
  the fitting programs 10-30% faster and ran no slower; bench/), set per
  program and never globally;
- keeps at most `max_programs()` compiled programs alive in the process,
  releasing the least recently used ones: each compiled XLA:CPU program
  holds hundreds of memory mappings, and Linux allows 65,530 per process,
  so a long-lived process that fits thousands of configurations would
  otherwise crash;
- reads and writes compiled programs in an on-disk cache when one is on
  (`cache_programs`, or the `JAXMIX_CACHE_DIR` environment variable; the
  `jaxmix` command line turns it on by default), so a second run of the
  same script or command neither traces, lowers nor compiles again: each
  program is kept as exported StableHLO (`program_files`), its executable
  in JAX's own persistent cache, switched on only around jaxmix's calls by
  JAX's thread-local configuration contexts: the user's global JAX
  configuration and the user's own programs are left alone. Entries are
  keyed by the program, the jax/jaxlib versions, jaxmix's sources, the
  backend, the device kind and the compiler options; a damaged entry is
  recompiled (and rewritten);
- says so on the progress display (`progress=True`) when compiling takes
  longer than `NOTICE_S`.

Inside a user's `jit`/`vmap` (traced arguments) the program is the user's:
the call is inlined into it, without compiler options (JAX takes them on
the outermost jit only).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import inspect
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax

CPU_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}
# Small fits (a size bucket, `buckets`) finish in milliseconds, so their compile is
# most of the user's time. XLA:CPU's fusion emitters cost most of a small program's
# compile; without them, measured on the 2-core CPU (bench/, wine 178 x 13):
#   k-means (16 restarts): compile 1.83 -> 0.94 s at LLVM level 0, run 21 -> 35 ms;
#   full GMM:              compile 2.22 -> 0.83 s at level 0, run 8 -> 6 ms.
# Level 0 runs arithmetic ~2-4x slower than level 1, so it is kept for fits of at most
# TINY_WORK multiply-adds per iteration (a few ms per iteration at worst: KMeans(3, n_init=10)
# on wine in the k <= 16 bucket, 0.64M, runs in 45 ms at level 0 and 25 ms at level 1, and
# compiles ~1 s faster; sklearn takes ~50 ms); larger
# small fits compile at level 1 without fusion emitters (runs within 30% of the
# default, compiles 0.7-1.6 s faster). Large fits keep the default emitters.
CPU_TINY_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
CPU_SMALL_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1, "xla_cpu_use_fusion_emitters": False}
TINY_WORK = 2**20
# JAXMIX_COMPILE=fast compiles every program for compile speed: the tiny options for tiny
# fits, the small ones for all others (large fits included; they run up to ~1.5x slower).
# For test suites and short scripts, where compiling is most of the run time.
ENV_COMPILE = "JAXMIX_COMPILE"
_unsupported_options: set[str] = set()  # options this jaxlib refused ("No such compile option")


def compiler_options(work: int | None = None) -> dict[str, Any] | None:
    """XLA compiler options for a program: None off CPU; by `work` (multiply-adds per iteration)
    for a small fit (`buckets`), the default options for `work=None`."""
    if jax.default_backend() != "cpu":
        return None
    fast = os.environ.get(ENV_COMPILE, "").strip().lower() == "fast"
    if work is None:
        options = CPU_SMALL_COMPILER_OPTIONS if fast else CPU_COMPILER_OPTIONS
    elif work <= TINY_WORK:
        options = CPU_TINY_COMPILER_OPTIONS
    else:
        options = CPU_SMALL_COMPILER_OPTIONS
    return {k: v for k, v in options.items() if k not in _unsupported_options}


def _drop_unknown_option(error: Exception) -> bool:
    """Remember an option this jaxlib does not know (so later programs leave it out); True if found."""
    text = str(error)
    if "No such compile option" not in text:
        return False
    for name in set(CPU_TINY_COMPILER_OPTIONS) | set(CPU_SMALL_COMPILER_OPTIONS) | set(CPU_COMPILER_OPTIONS):
        if f"'{name}'" in text and name not in _unsupported_options:
            _unsupported_options.add(name)
            return True
    return False


ENV_CACHE_DIR = "JAXMIX_CACHE_DIR"
ENV_MAX_PROGRAMS = "JAXMIX_MAX_PROGRAMS"
DEFAULT_MAX_PROGRAMS = 256
# Release programs while the process holds more memory mappings than this (Linux;
# the kernel's default limit is 65,530 and an XLA:CPU fit program holds hundreds).
MAX_MAPPINGS = 40_000
NOTICE_S = 1.0  # a compile that takes longer shows a line on the progress display


class _Program:
    """One `jax.jit` for one combination of static arguments, and the argument signatures it compiled;
    with the on-disk cache on, the exported program of each signature (`program_files`)."""

    def __init__(self, jitted: Any):
        self.jitted = jitted
        self.seen: set[Any] = set()
        self.exported: dict[Any, Any] = {}  # signature -> jax.jit of the exported program (None: not kept)

    def size(self) -> int:
        return _size(self.jitted) + sum(_size(j) for j in self.exported.values() if j is not None)

    def clear(self) -> None:
        for j in (self.jitted, *self.exported.values()):
            with contextlib.suppress(Exception):
                if j is not None:
                    j.clear_cache()
        self.exported.clear()


_lock = threading.RLock()
_programs: collections.OrderedDict[tuple[Any, ...], _Program] = collections.OrderedDict()
_cache_dir: str | None = None
_cache_dir_set = False  # cache_programs() was called: it overrides the environment
_max_programs: int | None = None


# ----------------------------------------------------------------------------- configuration


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/jaxmix/programs` (or `~/.cache/jaxmix/programs`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jaxmix" / "programs"


def cache_programs(path: str | os.PathLike[str] | bool | None = True) -> Path | None:
    """Keep jaxmix's compiled programs on disk, so later processes skip compiling them.

    A program is compiled the first time a process needs it (about a second
    on a 2-core CPU); with the cache on, the next process that needs the
    same program (same sizes bucket, options, jax version, backend and
    device) loads it in milliseconds. Only jaxmix's programs are stored;
    the user's JAX configuration and programs are left as they are. Safe
    with several processes at once; a damaged entry is compiled again.

    Args:
      path: a folder; True (default) for `default_cache_dir()`; False or
        None to turn the cache off. Without a call, the environment variable
        `JAXMIX_CACHE_DIR` decides (a folder; unset, empty or "0": off).

    Returns:
      The folder in use, or None when off.

    Example:
      >>> import jaxmix, tempfile
      >>> folder = jaxmix.cache_programs(tempfile.mkdtemp())
      >>> jaxmix.cache_programs(False) is None
      True
    """
    global _cache_dir, _cache_dir_set
    if path is True:
        path = default_cache_dir()
    if path is False or path is None:
        folder = None
    else:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a folder, True, False or None; got {type(path).__name__}")
        folder = str(Path(path).expanduser())
    with _lock:
        _cache_dir, _cache_dir_set = folder, True
    return None if folder is None else Path(folder)


@contextlib.contextmanager
def programs_on_disk(on: bool = True) -> Iterator[None]:
    """`cache_programs(True)` inside the block (when `on`), the previous setting after it."""
    global _cache_dir, _cache_dir_set
    if not on:
        yield
        return
    with _lock:
        saved = (_cache_dir, _cache_dir_set)
    cache_programs(True)
    try:
        yield
    finally:
        with _lock:
            _cache_dir, _cache_dir_set = saved


def program_cache_dir() -> Path | None:
    """The on-disk program cache in use (see `cache_programs`), or None."""
    if _cache_dir_set:
        return None if _cache_dir is None else Path(_cache_dir)
    env = os.environ.get(ENV_CACHE_DIR, "").strip()
    return None if env in ("", "0") else Path(env).expanduser()


def max_programs() -> int:
    """How many compiled programs a process keeps at most (`JAXMIX_MAX_PROGRAMS`, default 256)."""
    if _max_programs is not None:
        return _max_programs
    try:
        return max(1, int(os.environ.get(ENV_MAX_PROGRAMS, DEFAULT_MAX_PROGRAMS)))
    except ValueError:
        return DEFAULT_MAX_PROGRAMS


def set_max_programs(n: int | None) -> None:
    """Bound the compiled programs kept in this process (None: back to the default)."""
    global _max_programs
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"max programs must be an int >= 1, got {n!r}")
    with _lock:
        _max_programs = n
        _evict()


def programs_alive() -> int:
    """Compiled programs jaxmix holds in this process now."""
    with _lock:
        return sum(p.size() for p in _programs.values())


# ----------------------------------------------------------------------------- the disk cache


@contextlib.contextmanager
def _disk_cache() -> Iterator[None]:
    """JAX's persistent cache at jaxmix's folder, for the calls inside only (thread-local config)."""
    folder = program_cache_dir()
    if folder is None:
        yield
        return
    try:
        from jax._src import compilation_cache as cc
        from jax._src import config as jc

        contexts = (
            jc.compilation_cache_dir(str(folder / f"jax-{jax.__version__}")),
            jc.enable_compilation_cache(True),
            jc.persistent_cache_min_compile_time_secs(0.0),
            jc.persistent_cache_min_entry_size_bytes(-1),  # -1: JAX leaves the (global) size floor alone
        )
    except (ImportError, AttributeError):  # a JAX without these: run without the disk cache
        yield
        return
    with contextlib.ExitStack() as stack:
        for c in contexts:
            stack.enter_context(c)
        # A damaged or half-written entry is recompiled by JAX with a warning: the recompile is the fix.
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message=".*persistent compilation cache.*")
        cc.reset_cache()  # JAX memoises whether (and where) a cache is used: re-read inside
        try:
            yield
        finally:
            cc.reset_cache()  # and again for the user's own compiles outside


# ----------------------------------------------------------------------------- programs


def _size(program: Any) -> int:
    try:
        return max(1, int(program._cache_size()))
    except Exception:  # a JAX without _cache_size: count the program once
        return 1


def _mappings() -> int:
    """Memory mappings of this process (0 where /proc is not there)."""
    try:
        with open("/proc/self/maps", "rb") as f:
            return f.read().count(b"\n")
    except OSError:
        return 0


def _evict() -> None:
    """Release least recently used programs while more than `max_programs()` are alive
    or the process holds more than `MAX_MAPPINGS` memory mappings."""
    limit = max_programs()
    total = sum(p.size() for p in _programs.values())
    if _mappings() > MAX_MAPPINGS:  # release the older half (their mappings go once they are collected)
        limit = min(limit, total // 2)
    while len(_programs) > 1 and total > limit:
        _, old = _programs.popitem(last=False)
        total -= old.size()
        old.clear()


def _notice(label: str) -> threading.Timer | None:
    """A timer that puts 'compiling ...' on the progress display if it fires; None without a display."""
    from jaxmix.engine import progress as _progress

    if _progress._active is None:
        return None

    def say() -> None:
        with contextlib.suppress(Exception):  # a display never fails a fit
            sys.stderr.write(f"jaxmix: compiling {label} (once per process{_disk_note()}) ...\n")
            sys.stderr.flush()

    t = threading.Timer(NOTICE_S, say)
    t.daemon = True
    t.start()
    return t


def _disk_note() -> str:
    return "; kept on disk" if program_cache_dir() is not None else ""


class _FitJit:
    def __init__(self, fun: Callable[..., Any], static_argnames: tuple[str, ...] = (), **jit_kwargs: Any):
        self._fun = fun
        self._static = tuple(static_argnames)
        self._signature = inspect.signature(fun)
        self._jit_kwargs = jit_kwargs
        self._default = jax.jit(fun, static_argnames=self._static, **jit_kwargs)
        functools.update_wrapper(self, fun)

    def _split(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        bound = self._signature.bind(*args, **kwargs)
        static = {k: v for k, v in bound.arguments.items() if k in self._static}
        dynamic = {k: v for k, v in bound.arguments.items() if k not in self._static}
        return static, dynamic

    def _program(self, static: dict[str, Any], work: int | None = None) -> _Program:
        options = compiler_options(work)
        key = (self, tuple(sorted((options or {}).items())), tuple(sorted(static.items())))
        with _lock:
            prog = _programs.get(key)
            if prog is None:
                prog = _Program(
                    jax.jit(functools.partial(self._fun, **static), compiler_options=options, **self._jit_kwargs)
                )
                _programs[key] = prog
            else:
                _programs.move_to_end(key)
            return prog

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(None, args, kwargs)

    def small(self, work: int | None) -> Callable[..., Any]:
        """This program for a small fit of `work` multiply-adds per iteration (or pass over the rows),
        compiled for compile speed (`compiler_options(work)`); `work=None` is a plain call.
        Usage: `program.small(work)(*args, **kwargs)`."""
        return lambda *args, **kwargs: self._call(work, args, kwargs)

    def _call(self, work: int | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        leaves = jax.tree_util.tree_leaves((args, kwargs))
        if any(isinstance(a, jax.core.Tracer) for a in leaves) or _tracing():
            # Inside a user's jit/vmap the program is theirs.
            return self._default(*args, **kwargs)
        static, dynamic = self._split(args, kwargs)
        prog = self._program(static, work)
        shapes = tuple((getattr(a, "shape", None), str(getattr(a, "dtype", type(a)))) for a in leaves)
        signature = (tuple(sorted(static.items())), jax.tree_util.tree_structure(dynamic), shapes)
        new = signature not in prog.seen
        timer = _notice(f"{self._fun.__name__.lstrip('_')} for {_describe(static)}") if new else None
        try:
            with _disk_cache():
                try:
                    out = self._run(prog, signature, static, dynamic, work)
                except jax.errors.JaxRuntimeError as e:  # an option this jaxlib does not have: without it
                    if not new or not _drop_unknown_option(e):
                        raise
                    prog = self._program(static, work)
                    prog.exported.pop(signature, None)
                    out = self._run(prog, signature, static, dynamic, work)
        finally:
            if timer is not None:
                timer.cancel()
        if new:  # a program was compiled (or loaded): keep the count bounded
            with _lock:
                prog.seen.add(signature)
                _evict()
        return out

    def _run(
        self, prog: _Program, signature: Any, static: dict[str, Any], dynamic: dict[str, Any], work: int | None
    ) -> Any:
        """Call the program: through its exported form when programs are kept on disk (a second
        process then skips tracing and lowering, `program_files`), else its `jax.jit`."""
        folder = program_cache_dir()
        if folder is None or self._jit_kwargs:  # jit options beyond static arguments: not exported
            return prog.jitted(**dynamic)
        if signature not in prog.exported:
            from jaxmix.engine import program_files as _program_files

            options = compiler_options(work)
            exp = _program_files.exported(self._fun, static, dynamic, options, folder)
            prog.exported[signature] = None if exp is None else jax.jit(exp.call, compiler_options=options)
        call = prog.exported[signature]
        return prog.jitted(**dynamic) if call is None else call(**dynamic)

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        static, dynamic = self._split(args, kwargs)
        return self._program(static).jitted.lower(**dynamic)

    def _cache_size(self) -> int:
        with _lock:
            return sum(p.size() for k, p in _programs.items() if k[0] is self)


def _tracing() -> bool:
    """True while any trace runs (a call inside a user's jit with closed-over concrete arrays)."""
    from jaxmix.engine.arrays import _tracing as tracing

    return tracing()


def _describe(static: dict[str, Any]) -> str:
    shown = {k: v for k, v in static.items() if k not in ("progress", "chunk_size") and v is not None}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "its arguments"


def fit_jit(**jit_kwargs: Any) -> Callable[[Callable[..., Any]], _FitJit]:
    """Decorator: a jaxmix program (see the module docstring); takes `static_argnames` like `jax.jit`."""
    return lambda fun: _FitJit(fun, **jit_kwargs)
