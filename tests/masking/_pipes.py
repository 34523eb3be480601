"""Reading pipes with a deadline, for the streaming tests."""

from __future__ import annotations

import os
import select
import time


def read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    """Read ``fd`` until ``marker`` shows up, end of file, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    data = b""
    while marker not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: a pty whose other side has gone
            break
        if not chunk:
            break
        data += chunk
    return data
