"""Copying a byte stream through a redactor, written through as it arrives.

Shared by ``tollgate redact`` (stdin to stdout) and ``tollgate run`` (the child's two pipes);
kept apart from the process supervisor so ``redact`` does not load subprocess machinery.
"""

from __future__ import annotations

import logging
import os
import select
from typing import BinaryIO

from tollgate.masking.redactor import StreamRedactor
from tollgate.masking.secrets import SecretSet

_logger = logging.getLogger(__name__)

READ_SIZE = 1 << 22
"""Bytes asked for per read: a read returns what is there at once, up to this much.

4 MiB rather than 1: a large read is scanned as two halves on two cores, and the hand-over
costs the same whatever the size (1,000 secrets: 650 MB/s in 1 MiB pieces, 730 in 4 MiB).
The buffer is a mapping whose pages are only touched as far as reads fill it."""

ZERO_COPY = hasattr(os, "readv")
"""Whether reads can land in the redactor's own buffer (not on Windows): else :meth:`feed`."""

PIPE_SIZE = 1 << 20
"""Capacity asked for a pipe we read (Linux; 1 MiB is the unprivileged limit)."""


def widen_pipe(fd: int, size: int = PIPE_SIZE) -> None:
    """Grow the pipe on ``fd`` to ``size`` bytes, if it is a pipe and smaller (Linux).

    A default pipe holds 64 KiB, so each read brought at most that: with 1 MiB, a busy
    writer fills it while we scan, and per-read costs are paid 16 times less often
    (``cat log | tollgate redact`` with 1,000 secrets: from about 180 to 250-300 MB/s).
    """
    try:
        import fcntl
        import stat

        set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
        get_size = getattr(fcntl, "F_GETPIPE_SZ", None)
        if set_size is None or get_size is None or not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
        if fcntl.fcntl(fd, get_size) < size:
            fcntl.fcntl(fd, set_size, size)
    except (ImportError, OSError):
        pass  # not Linux, or a lowered pipe-max-size: the pipe works as it is, just slower


def stream_redactor(secrets: SecretSet, replacement: bytes) -> StreamRedactor | None:
    """A fresh redactor for one stream, or ``None`` when there is nothing to mask."""
    if not secrets:
        return None
    return StreamRedactor(secrets.matcher(), replacement)


class Sink:
    """Where released bytes go: written through at once, with no buffering of our own."""

    def __init__(self, target: BinaryIO | int, name: str = "output") -> None:
        self.name = name
        self.broken = False
        self._file: BinaryIO | None = None
        if isinstance(target, int):
            self._fd: int | None = target
            return
        try:
            fd = target.fileno()
        except (AttributeError, OSError, ValueError):
            # In-memory files (tests) have no descriptor: write and flush the object.
            self._fd = None
            self._file = target
            return
        # Whatever the file object already buffered must come out before our bytes.
        target.flush()
        self._fd = fd

    def write(self, data: bytes | memoryview) -> bool:
        """Write all of ``data``; ``False`` once the reader has gone (EPIPE), quietly."""
        return self.write_pieces([data])

    def write_pieces(self, pieces: list[bytes | memoryview]) -> bool:
        """Write ``pieces`` one after another (one ``writev``, no joining); as :meth:`write`."""
        if self.broken:
            return False
        try:
            if self._fd is not None:
                _writev_all(self._fd, pieces)
            elif self._file is not None:
                for piece in pieces:
                    self._file.write(piece)
                self._file.flush()
        except BrokenPipeError:
            _logger.debug("the reader of %s has gone; discarding the rest", self.name)
            self.broken = True
            return False
        return True


_IOV_MAX = 1024
"""Pieces per ``writev`` call (POSIX's minimum IOV_MAX is 16, Linux's is 1024)."""


def _writev_all(fd: int, pieces: list[bytes | memoryview]) -> None:
    """``os.writev`` until every piece is out (short writes, non-blocking descriptors)."""
    views = [memoryview(piece) for piece in pieces if len(piece)]
    first = 0
    while first < len(views):
        try:
            written = os.writev(fd, views[first : first + _IOV_MAX])
        except BlockingIOError:
            # Someone left our stdout non-blocking (it happens in CI): wait, don't fail.
            select.select([], [fd], [])
            continue
        # Drop what went out whole; trim the piece the write stopped in.
        while first < len(views) and written >= len(views[first]):
            written -= len(views[first])
            first += 1
        if written:
            views[first] = views[first][written:]


def _read_some(fd: int) -> bytes:
    """What is available on ``fd`` (waiting for something), ``b""`` at end of file."""
    while True:
        try:
            return os.read(fd, READ_SIZE)
        except BlockingIOError:  # noqa: PERF203 - only a non-blocking descriptor gets here
            # An inherited non-blocking stdin: wait for data instead of failing.
            select.select([fd], [], [])


def filter_stream(src_fd: int, dst: BinaryIO | int, secrets: SecretSet, replacement: bytes) -> bool:
    """Copy ``src_fd`` to ``dst`` until end of file with every secret replaced.

    Each piece is written as soon as it is read, minus what might be the start of a secret;
    with no secrets the bytes pass through untouched. Returns ``False`` when ``dst`` was
    closed by its reader (EPIPE) and the copy stopped early, quietly.
    """
    widen_pipe(src_fd)
    return copy_stream(src_fd, Sink(dst), stream_redactor(secrets, replacement))


def copy_stream(src_fd: int, sink: Sink, redactor: StreamRedactor | None) -> bool:
    """:func:`filter_stream` with a redactor of the caller's (``None``: no redaction)."""
    if redactor is None or not ZERO_COPY:
        while data := _read_some(src_fd):
            if not sink.write(redactor.feed(data) if redactor is not None else data):
                return False
        return sink.write(redactor.flush()) if redactor is not None else True
    while True:
        try:
            released = redactor.read_from(src_fd, READ_SIZE)
        except BlockingIOError:
            # An inherited non-blocking stdin: wait for data instead of failing.
            select.select([src_fd], [], [])
            continue
        if released is None:
            break
        if not sink.write_pieces(released):
            return False
    return sink.write(redactor.flush())
