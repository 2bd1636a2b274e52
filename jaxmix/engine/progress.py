"""A one-line progress display for long fits (`progress=True`).

The compiled loop (`loop.iterate`) hands each iteration's count and
objective to the host with `jax.debug.callback`; `report` below prints them
to stderr (never failing the fit when stderr cannot be written) as

    jaxmix kmeans: iteration 12 objective 1234.57 (cpu, 3.2 s)

On a terminal the line overwrites itself (at most every `REFRESH_S`);
otherwise a line is printed every `INTERVAL_S`. Fits that finish within
`THRESHOLD_S` of the call (compilation included) print nothing at all.

Under `vmap` (restarts, a user's batch) the device side reduces the batch
before calling the host: the largest iteration count and the best
objective (`device_report` has a custom batching rule), so one callback per
iteration reaches the host whatever the batch size. The iteration shown is
thus the longest-running restart's; a result's `n_iter` is the winner's.

The public fitting functions open a `session` around the call (they then
wait for the result, so that the last line is complete when they return).
Inside a user's own `jit` nothing runs on the host at call time: the clock
then starts at the first reported iteration, and a report of iteration 1
starts a new line.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import jax
import jax.numpy as jnp

T = TypeVar("T")

# Module constants, so that tests (and impatient users) can change them.
THRESHOLD_S = 1.0  # print nothing for fits that finish sooner
INTERVAL_S = 5.0  # between lines when stderr is not a terminal
REFRESH_S = 0.1  # between redraws of the line on a terminal


@dataclass
class _Session:
    label: str
    start: float = field(default_factory=time.monotonic)
    device: str = ""
    last: tuple[int, float] | None = None  # latest (iteration, objective)
    shown: tuple[int, float] | None = None  # what the display shows now
    last_print: float = -float("inf")
    pending_newline: bool = False  # a terminal line waits for its "\n"
    implicit: bool = False  # opened by a report, not by `session`


_lock = threading.Lock()
_active: _Session | None = None  # opened by `session`, or implicitly by a report


def _device() -> str:
    try:
        return jax.devices()[0].device_kind
    except Exception:  # never let the display break a fit
        return jax.default_backend()


def _is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def _line(s: _Session, done: bool = False) -> str:
    n, obj = s.last if s.last is not None else (0, float("nan"))
    elapsed = time.monotonic() - s.start
    return f"{s.label}: iteration {n} objective {obj:.6g} ({s.device}, {elapsed:.1f} s{', done' if done else ''})"


def _emit(text: str) -> None:
    """Write to stderr; a display never fails the fit it shows (stderr full, closed, a broken pipe)."""
    with contextlib.suppress(Exception):
        sys.stderr.write(text)
        sys.stderr.flush()


def _write(s: _Session, done: bool = False) -> None:
    if _is_tty():
        # "\r" + clear-to-end-of-line: the status overwrites itself.
        _emit("\r" + _line(s, done) + "\x1b[K" + ("\n" if done else ""))
        s.pending_newline = not done
    else:
        _emit(_line(s, done) + "\n")
    s.shown = s.last
    s.last_print = time.monotonic()


def _finish(s: _Session) -> None:
    """Complete the display: the final values, once, if anything was shown."""
    if s.shown is None:
        return
    if s.shown != s.last or s.pending_newline:
        _write(s, done=True)


def report(n_iter: object, objective: object) -> None:
    """Host side of the callback: remember the values, print when due."""
    global _active
    try:
        n, obj = int(n_iter), float(objective)  # type: ignore[call-overload, arg-type]
    except (TypeError, ValueError):
        return
    with _lock:
        s = _active
        if s is None or (s.implicit and n == 1 and s.last is not None):
            # Traced inside a user's jit: no session was opened on the host.
            if s is not None:
                _finish(s)
            s = _active = _Session("jaxmix", device=_device(), implicit=True)
        s.last = (n, obj)
        now = time.monotonic()
        if now - s.start < THRESHOLD_S:
            return
        wait = REFRESH_S if _is_tty() else INTERVAL_S
        if s.shown is None or now - s.last_print >= wait:
            _write(s)


def note(message: str) -> None:
    """One line on stderr for a step of a long task (e.g. each covariance type of `select`).

    A display never fails the work: a closed, full or broken stderr is ignored.
    """
    with _lock:
        if _active is not None and _active.pending_newline:
            _emit("\n")
            _active.pending_newline = False
        _emit(message + "\n")


@contextlib.contextmanager
def session(label: str) -> Iterator[None]:
    """Time one fit from the host call; complete its display on exit."""
    global _active
    with _lock:
        if _active is not None:
            _finish(_active)
        s = _active = _Session(f"jaxmix {label}", device=_device())
    try:
        yield
    finally:
        with _lock:
            _finish(s)
            if _active is s:
                _active = None


def run(label: str, fit: Callable[[], T], progress: bool) -> T:
    """`fit()`, inside a `session` when `progress` is on (and waiting for its result).

    Called inside a user's `jit`/`vmap` (the result is traced) nothing is
    waited for: the user's program reports when it runs.
    """
    if not progress:
        return fit()
    with session(label):
        out = fit()
        if not any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves(out)):
            out = jax.block_until_ready(out)
    return out


@atexit.register
def _close_implicit() -> None:
    # A fit traced in a user's jit has no session to end its terminal line.
    if _active is not None and _active.pending_newline:
        _emit("\n")


def _reducer(minimize: bool):
    """A device-side report whose batching rule keeps the largest count and the best objective."""

    @jax.custom_batching.custom_vmap
    def device_report(n_iter: jax.Array, objective: jax.Array) -> jax.Array:
        jax.debug.callback(report, n_iter, objective)
        return n_iter

    @device_report.def_vmap
    def _batched(axis_size, in_batched, n_iter, objective):
        del axis_size
        n_b, o_b = in_batched
        n = jnp.max(n_iter) if n_b else n_iter
        if o_b:
            # NaN restarts never count as best (unless all are NaN).
            o = jnp.nanmin(objective) if minimize else jnp.nanmax(objective)
        else:
            o = objective
        device_report(n, o)  # outer vmaps reduce again
        return n_iter, n_b

    return device_report


_REPORTERS = {True: _reducer(True), False: _reducer(False)}


def device_report(n_iter: jax.Array, objective: jax.Array, *, minimize: bool) -> None:
    """Send one iteration's count and objective to `report` (call inside the compiled loop)."""
    _REPORTERS[minimize](n_iter, objective)
