"""Running a command with its stdout and stderr redacted: the engine of ``tollgate run``.

The child is started without a shell, inherits stdin (and any other descriptor tollgate
inherited), and writes stdout and stderr into two pipes. Both are read as data arrives (one
``selectors`` loop, so the child never blocks on a full pipe while we wait on the other),
each through its own :class:`StreamRedactor`, and what the redactor releases is written out
at once: a line appears as soon as the child flushes it, unless its end could be the start
of a secret. Memory stays constant whatever the volume. POSIX only (pipes in a selector).

Exit status, as a shell reports it:

- the child's exit code;
- ``128 + N`` when the child was killed by signal ``N`` (137 for SIGKILL, 143 for SIGTERM);
- 127 when the command does not exist (``tollgate run: CMD: command not found``);
- 126 when it exists but cannot be executed (permission denied, not a binary or script,
  a ``#!`` interpreter that does not exist, a process or file limit reached).

Signals: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to tollgate are forwarded
to the child, and tollgate keeps reading until the child has gone, so its last words are still
redacted. Signals ignored when tollgate starts (``nohup``, a background job) stay ignored, for
the child too. The handlers are restored afterwards.

When the child exits but a process it started in the background still holds the pipes,
reading stops after ``drain_timeout`` seconds without output (with a warning), rather than
hanging the job until that process ends.

Process group: the child stays in tollgate's process group. It inherits stdin, so it must be
in the terminal's foreground group to read it (in a group of its own it would be stopped by
SIGTTIN), and a CI runner that kills the job's process group reaches it directly. The price
is that a terminal's Ctrl-C (SIGINT) or Ctrl-\\ (SIGQUIT) reaches the child on its own: to
avoid delivering it twice (many programs, terraform among them, treat a second interrupt as
"abort now, skip the cleanup"), those two are not forwarded while our group is the
foreground group of the controlling terminal, since that is how the terminal sends them.
``kill -INT`` aimed at tollgate alone in that situation is therefore not forwarded either.
The other signals are always forwarded, so one sent to the whole group (``kill -TERM -PGID``)
reaches the child twice, which nearly every program takes as once.
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import IO, BinaryIO, TypeAlias

from tollgate.errors import UsageError
from tollgate.masking.redactor import StreamRedactor
from tollgate.masking.secrets import SecretSet
from tollgate.masking.stream import READ_SIZE, ZERO_COPY, Sink, stream_redactor, widen_pipe

_logger = logging.getLogger(__name__)

DRAIN_TIMEOUT = 2.0
"""Seconds of silence after the child exits before its pipes are given up (see run_redacted)."""

EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127

FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
"""Signals passed on to the child (by name: not every platform has all of them)."""

_TERMINAL_SIGNALS = ("SIGINT", "SIGQUIT")
# How often to check whether the child has exited while its pipes are still open.
_POLL_INTERVAL = 0.5

_Handler: TypeAlias = "Callable[[int, FrameType | None], object] | int | signal.Handlers | None"


def exit_status(returncode: int) -> int:
    """The shell's exit status for a ``Popen.returncode`` (``-N`` means killed by signal N)."""
    return 128 - returncode if returncode < 0 else returncode


class _Channel:
    """One of the child's output pipes, its redactor, and where its output goes."""

    def __init__(self, pipe: IO[bytes], sink: Sink, redactor: StreamRedactor | None) -> None:
        self.pipe = pipe
        self.fd = pipe.fileno()
        self.sink = sink
        self.redactor = redactor

    def pump(self) -> bool:
        """Move one read's worth; ``False`` when this channel is finished."""
        if self.redactor is not None and ZERO_COPY:
            released = self.redactor.read_from(self.fd, READ_SIZE)
        else:
            data = os.read(self.fd, READ_SIZE)
            released = None if not data else [self.redactor.feed(data) if self.redactor else data]
        if released is None:
            self.finish()
            return False
        return self._write(released)

    def finish(self) -> None:
        """End of stream: release what the redactor still holds."""
        if self.redactor is not None:
            self._write([self.redactor.flush()])

    def _write(self, pieces: list[bytes | memoryview]) -> bool:
        try:
            return self.sink.write_pieces(pieces)
        except OSError as error:
            _logger.warning(
                "cannot write to %s (%s); discarding the rest of it", self.sink.name, error.strerror
            )
            self.sink.broken = True
            return False


def _from_terminal(signum: int) -> bool:
    """Whether the terminal most likely sent ``signum`` to our whole group, child included."""
    if signum not in {getattr(signal, name, None) for name in _TERMINAL_SIGNALS}:
        return False
    try:
        tty = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False  # no controlling terminal: a CI job
    try:
        return os.tcgetpgrp(tty) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(tty)


class _SignalForwarder:
    """Installs the forwarding handlers for the duration of a ``with`` block."""

    def __init__(self) -> None:
        self._child: subprocess.Popen[bytes] | None = None
        self._early: list[int] = []
        self._previous: dict[int, _Handler] = {}

    def __enter__(self) -> _SignalForwarder:
        if threading.current_thread() is not threading.main_thread():
            _logger.debug("not in the main thread: signals are not forwarded")
            return self
        for name in FORWARDED_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is None or signal.getsignal(signum) == signal.SIG_IGN:
                continue
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, previous in self._previous.items():
            # None: set outside Python, cannot be put back exactly; the default is closest.
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        """Forward to ``child`` from now on, and what arrived while it was starting."""
        self._child = child
        early, self._early = self._early, []
        for signum in early:
            self._forward(signum)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._child is None:
            self._early.append(signum)
        else:
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        assert self._child is not None
        name = signal.Signals(signum).name
        if _from_terminal(signum):
            _logger.debug("%s came from the terminal, which sent it to the child too", name)
            return
        _logger.debug("forwarding %s to the child (pid %d)", name, self._child.pid)
        try:
            # send_signal() does nothing once the child has been reaped (no stray kill).
            self._child.send_signal(signum)
        except ProcessLookupError:
            pass


def _start_failure(command: str, error: OSError, env: Mapping[str, str] | None) -> int:
    """127 or 126 for a command that could not be started, as a shell would say it."""
    if error.errno in (errno.ENOENT, errno.ENOTDIR):
        if os.sep in command:
            if os.path.exists(command):
                return EXIT_CANNOT_EXECUTE  # the #! line names a missing interpreter
            return EXIT_NOT_FOUND
        import shutil

        path = (env if env is not None else os.environ).get("PATH", os.defpath)
        if shutil.which(command, path=path) is None:
            return EXIT_NOT_FOUND
    return EXIT_CANNOT_EXECUTE


def _start_failure_message(command: str, error: OSError, status: int) -> str:
    if status == EXIT_NOT_FOUND:
        if os.sep in command:
            return f"tollgate run: {command}: no such file or directory"
        return f"tollgate run: {command}: command not found"
    reason = (error.strerror or type(error).__name__).lower()
    if error.errno in (errno.ENOENT, errno.ENOTDIR):
        reason = "bad interpreter (the program named on its #! line does not exist)"
    return f"tollgate run: {command}: cannot execute: {reason}"


def _start(argv: Sequence[str], env: Mapping[str, str] | None) -> subprocess.Popen[bytes] | OSError:
    try:
        # close_fds=False: descriptors our caller let us inherit (a make jobserver's, a
        # `3>file` redirection) reach the command as they would without us. Our own are all
        # close-on-exec (PEP 446), so nothing of tollgate's leaks into the child.
        child = subprocess.Popen(
            list(argv),
            stdin=None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=False,
        )
    except OSError as error:
        return error
    _grow_pipes(child)
    return child


def _grow_pipes(child: subprocess.Popen[bytes]) -> None:
    for pipe in (child.stdout, child.stderr):
        if pipe is not None:
            widen_pipe(pipe.fileno())


def _pump(
    child: subprocess.Popen[bytes], channels: list[_Channel], drain_timeout: float, name: str
) -> None:
    """Move output until every channel ends, or goes silent after the child has exited."""
    with selectors.DefaultSelector() as selector:
        for channel in channels:
            selector.register(channel.fd, selectors.EVENT_READ, channel)
        while selector.get_map():
            exited = child.poll() is not None
            events = selector.select(drain_timeout if exited else _POLL_INTERVAL)
            if exited and not events:
                _give_up(selector, name, drain_timeout)
                return
            for key, _ in events:
                channel = key.data
                if not channel.pump():
                    selector.unregister(channel.fd)
                    # Closing our end lets the child meet EPIPE, as it would without us.
                    channel.pipe.close()


def _give_up(selector: selectors.BaseSelector, name: str, drain_timeout: float) -> None:
    _logger.warning(
        "%s exited, but a process it started in the background still holds its output open; "
        "stopped reading after %g s of silence (that process will get SIGPIPE if it writes "
        "again). Redirect the output of background processes, e.g. `cmd > log 2>&1 &`.",
        name,
        drain_timeout,
    )
    for key in list(selector.get_map().values()):
        channel = key.data
        channel.finish()
        selector.unregister(channel.fd)
        channel.pipe.close()


def run_redacted(
    argv: Sequence[str],
    secrets: SecretSet,
    *,
    replacement: bytes,
    stdout: BinaryIO | int,
    stderr: BinaryIO | int,
    env: Mapping[str, str] | None = None,
    drain_timeout: float = DRAIN_TIMEOUT,
) -> int:
    """Run ``argv`` with its stdout and stderr redacted; return the status to exit with.

    ``stdout`` and ``stderr`` are where the child's redacted output goes (file objects or
    descriptors). When the child exits while a process it left in the background keeps the
    pipes open, reading stops after ``drain_timeout`` seconds without output.
    """
    if not argv:
        raise UsageError(
            "tollgate run: no command given",
            hint="put the command after --: tollgate run -- CMD ARGS...",
        )
    out_sink = Sink(stdout, "stdout")
    err_sink = Sink(stderr, "stderr")
    name = secrets.redact_text(argv[0])
    with _SignalForwarder() as forwarder:
        started = _start(argv, env)
        if isinstance(started, OSError):
            status = _start_failure(argv[0], started, env)
            _logger.debug("cannot start the command: %s", secrets.redact_text(str(started)))
            err_sink.write(_start_failure_message(name, started, status).encode() + b"\n")
            return status
        child = started
        forwarder.attach(child)
        assert child.stdout is not None and child.stderr is not None
        channels = [
            _Channel(child.stdout, out_sink, stream_redactor(secrets, replacement)),
            _Channel(child.stderr, err_sink, stream_redactor(secrets, replacement)),
        ]
        try:
            _pump(child, channels, drain_timeout, name)
        except BaseException:
            _stop(child)
            raise
        finally:
            for channel in channels:
                channel.pipe.close()
        return exit_status(child.wait())


def _stop(child: subprocess.Popen[bytes]) -> None:
    """We failed mid-way: do not leave the child running unwatched and unmasked."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
