"""Writing files that other steps, jobs or the runner read.

Two shapes only: :func:`atomic_write` for files tollgate owns (a reader sees the old content
or the new, never half of it) and :func:`append_record` for files the runner owns and reads
after the step (``GITHUB_OUTPUT``, ``GITHUB_ENV``, ``GITHUB_STEP_SUMMARY``), where each
record must land in one piece.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

_logger = logging.getLogger(__name__)


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data``, all at once, with permission bits ``mode``.

    The data goes to a temporary file in the same directory (so the final rename cannot
    cross file systems), is flushed to disk, and is renamed over ``path``. On any failure the
    temporary file is removed and ``path`` keeps its old content. Raises :class:`OSError`.
    """
    target = Path(path)
    directory = target.parent
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; set the requested bits explicitly so the umask cannot
        # loosen or tighten them.
        os.fchmod(fd, mode)
        _write_all(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(temp_name, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    _fsync_directory(directory)


def append_record(path: str | os.PathLike[str], data: bytes) -> None:
    """Append ``data`` to ``path`` as one record (the file is created when missing).

    ``O_APPEND`` puts each write at the end even when another process appends too; one
    ``write`` of the whole record keeps it contiguous, and a short write is continued
    rather than lost. Raises :class:`OSError`.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; best effort (not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as error:
        _logger.debug("could not fsync directory %s: %s", directory, error)
    finally:
        os.close(fd)
