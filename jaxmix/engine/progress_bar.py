"""Progress bars over passes and batches for streaming fits (tqdm, optional).

`bar(total, desc, progress)` returns a tqdm bar when tqdm is installed and
the bar is wanted, or a silent stand-in with the same `update`, `set_postfix`
and `close` methods. `progress=None` (the default of every streaming entry
point) means: on when stderr is a terminal, off otherwise (logs, CI, pipes).
`True` forces it on, `False` off. Without tqdm (`pip install jaxmix[progress]`)
`True` falls back to nothing rather than failing. A bar never fails the fit
it shows: when stderr cannot be written (full, closed, a broken pipe) the bar
goes silent.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any


class _Silent:
    def update(self, n: int = 1) -> None:
        del n

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        del args, kwargs

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Guarded(_Silent):
    """A tqdm bar whose failures to write are ignored (the first one silences it)."""

    def __init__(self, bar: Any) -> None:
        self._bar: Any = bar

    def _call(self, name: str, *args: Any, **kwargs: Any) -> None:
        if self._bar is None:
            return
        try:
            getattr(self._bar, name)(*args, **kwargs)
        except Exception:
            bar, self._bar = self._bar, None
            with contextlib.suppress(Exception):
                bar.disable = True  # tqdm writes no more, not even when collected
                bar.close()

    def update(self, n: int = 1) -> None:
        self._call("update", n)

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        self._call("set_postfix", *args, **kwargs)

    def close(self) -> None:
        self._call("close")


def wanted(progress: bool | None) -> bool:
    """Resolve `progress` (None: on only when stderr is a terminal)."""
    if progress is None:
        try:
            return bool(sys.stderr.isatty())
        except (AttributeError, ValueError):
            return False
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None, got {progress!r}")
    return progress


def bar(total: int | None, desc: str, progress: bool | None, unit: str = "batch") -> Any:
    """A tqdm bar writing to stderr, or a silent stand-in.

    Args:
      total: number of steps, or None when unknown (a generator source).
      desc: label, e.g. "jaxmix stream kmeans pass 3".
      progress: True, False or None (auto: on when stderr is a terminal).
      unit: what one step is.
    """
    if not wanted(progress):
        return _Silent()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # optional extra not installed
        return _Silent()
    try:
        return _Guarded(tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True))
    except Exception:  # stderr cannot be written: no bar
        return _Silent()
