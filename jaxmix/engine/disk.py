"""Files on disk, safely: atomic writes (a crash leaves the old file or the new one, never half of one)
and opening only regular files (no FIFO, device or directory that would block or mislead a reader).

Used by model files (`jaxmix.tools.files`), streaming checkpoints and data sources.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open a temporary file next to `path` for writing; on success it replaces `path`.

    The data are flushed and fsynced before `os.replace`, so `path` holds
    either its old content or the complete new one, never a mix; on any
    error the temporary file is removed and `path` is untouched.
    """
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    mode = _new_file_mode()
    with contextlib.suppress(OSError):
        old = os.stat(target)
        if stat.S_ISREG(old.st_mode):  # a file replaced keeps its permissions (e.g. private, 0600)
            mode = stat.S_IMODE(old.st_mode)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(target) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the old file's mode, else the usual one.
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable (POSIX; not possible everywhere).
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _new_file_mode() -> int:
    # The process umask, read without changing it (os.umask would race with other threads).
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    return 0o644


def _kind_of_file(mode: int) -> str:
    for test, what in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return what
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def check_regular_file(path: str | os.PathLike[str], what: str = "file", error: type[ValueError] = ValueError) -> str:
    """`path` as a string if it names a regular file (links followed); else `error` naming it.

    Reading a FIFO blocks until some other process writes to it, and a
    device may never end: every file jaxmix reads (model files, `.npy`
    shards, the command line's data files) goes through this check (or
    `open_regular`) first. `os.stat` itself never blocks.

    Raises:
      FileNotFoundError: nothing at `path`.
      ValueError (or `error`): a directory, FIFO, socket or device.
    """
    p = os.fspath(path)
    mode = os.stat(p).st_mode
    if not stat.S_ISREG(mode):
        raise error(f"{p}: {_kind_of_file(mode)}, not a regular file; give the {what} as a regular file")
    return p


def open_regular(path: str | os.PathLike[str], what: str = "file", error: type[ValueError] = ValueError) -> IO[bytes]:
    """Open `path` for binary reading if it is a regular file (see `check_regular_file`), checked on the open file.

    The file is opened without blocking (O_NONBLOCK, which a FIFO would
    otherwise need a writer for) and checked with `fstat`, so a file swapped
    for a FIFO between a check and the open is refused too.
    """
    p = os.fspath(path)
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{p}: {_kind_of_file(mode)}, not a regular file; give the {what} as a regular file")
        return os.fdopen(fd, "rb")  # O_NONBLOCK has no effect on a regular file
    except BaseException:
        os.close(fd)
        raise
