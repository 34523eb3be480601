"""``run_redacted``: exit codes, redaction, streaming, signals, memory."""

from __future__ import annotations

import io
import logging
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.masking._pipes import read_until as _read_until
from tollgate.errors import UsageError
from tollgate.masking.process import (
    FORWARDED_SIGNALS,
    exit_status,
    run_redacted,
)
from tollgate.masking.secrets import SecretSet

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process supervision")

SECRET = "s3cr3t-T0ken-9f8e7d"
LAUNCHER = Path(__file__).with_name("_launcher.py")


@pytest.fixture
def secrets() -> SecretSet:
    found = SecretSet()
    found.add(SECRET)
    return found


def _env() -> dict[str, str]:
    return {**os.environ, "TOLLGATE_TEST_SECRET": SECRET}


def _assert_clean(secrets: SecretSet, *outputs: bytes) -> None:
    for output in outputs:
        assert SECRET.encode() not in output
        assert not secrets.contains_secret(output), "an encoded form of the secret leaked"


def _run(
    tmp_path: Path, command: str | list[str], secrets: SecretSet, **kwargs: float
) -> tuple[int, bytes, bytes]:
    """Run a Python snippet (or an argv) in-process through run_redacted, into two files."""
    argv = [sys.executable, "-c", command] if isinstance(command, str) else command
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        status = run_redacted(
            argv, secrets, replacement=b"***", stdout=out, stderr=err, env=_env(), **kwargs
        )
    return status, out_path.read_bytes(), err_path.read_bytes()


def _launch(child_code: str, **popen: object) -> subprocess.Popen[bytes]:
    """The launcher (our stand-in for `tollgate run`) running a Python snippet, in its own
    session so that no terminal of the test runner is involved."""
    options: dict[str, object] = {
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        "start_new_session": True,
        "env": _env(),
        **popen,
    }
    argv = [sys.executable, str(LAUNCHER), "--", sys.executable, "-c", child_code]
    return subprocess.Popen(argv, **options)  # type: ignore[call-overload, no-any-return]


# --- exit status ----------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 3, 255])
def test_exit_code_is_the_childs(tmp_path: Path, secrets: SecretSet, code: int) -> None:
    status, out, err = _run(tmp_path, f"import sys; sys.exit({code})", secrets)
    assert (status, out, err) == (code, b"", b"")


@pytest.mark.parametrize(("signum", "expected"), [(signal.SIGKILL, 137), (signal.SIGTERM, 143)])
def test_killed_by_signal_exits_128_plus_n(
    tmp_path: Path, secrets: SecretSet, signum: int, expected: int
) -> None:
    code = f"import os; os.kill(os.getpid(), {int(signum)}); import time; time.sleep(10)"
    status, _, _ = _run(tmp_path, code, secrets)
    assert status == expected


def test_exit_status_mapping() -> None:
    assert [exit_status(rc) for rc in (0, 1, 255, -9, -15, -2)] == [0, 1, 255, 137, 143, 130]


def test_command_not_found_exits_127(tmp_path: Path, secrets: SecretSet) -> None:
    status, out, err = _run(tmp_path, ["tollgate-test-no-such-command"], secrets)
    assert status == 127
    assert out == b""
    assert err == b"tollgate run: tollgate-test-no-such-command: command not found\n"


def test_missing_path_exits_127(tmp_path: Path, secrets: SecretSet) -> None:
    missing = str(tmp_path / "missing")
    status, _, err = _run(tmp_path, [missing], secrets)
    assert status == 127
    assert err == f"tollgate run: {missing}: no such file or directory\n".encode()


def test_not_executable_exits_126(tmp_path: Path, secrets: SecretSet) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    status, out, err = _run(tmp_path, [str(script)], secrets)
    assert status == 126
    assert out == b""
    assert err == f"tollgate run: {script}: cannot execute: permission denied\n".encode()


def test_missing_interpreter_exits_126(tmp_path: Path, secrets: SecretSet) -> None:
    script = tmp_path / "script"
    script.write_text("#!/nonexistent/interpreter\n")
    script.chmod(0o755)
    status, _, err = _run(tmp_path, [str(script)], secrets)
    assert status == 126
    assert err.startswith(f"tollgate run: {script}: cannot execute: bad interpreter".encode())


def test_diagnostic_never_shows_a_secret(tmp_path: Path, secrets: SecretSet) -> None:
    status, _, err = _run(tmp_path, [f"x{SECRET}"], secrets)
    assert status == 127
    assert err == b"tollgate run: x***: command not found\n"


def test_no_command_is_a_usage_error(secrets: SecretSet) -> None:
    with pytest.raises(UsageError):
        run_redacted([], secrets, replacement=b"***", stdout=1, stderr=2)


def test_inherited_descriptors_reach_the_child(tmp_path: Path, secrets: SecretSet) -> None:
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    try:
        code = f"import os; os.write({write_end}, b'through fd')"
        status, _, err = _run(tmp_path, code, secrets)
        os.close(write_end)
        assert (status, err) == (0, b"")
        assert os.read(read_end, 100) == b"through fd"
    finally:
        os.close(read_end)


# --- redaction ------------------------------------------------------------------------------

PRINT_BOTH = """
import os, sys
secret = os.environ["TOLLGATE_TEST_SECRET"]
sys.stdout.write(f"token={secret} end\\n")
sys.stderr.write(f"error: {secret}\\n")
"""


def test_secret_is_redacted_on_stdout_and_stderr(tmp_path: Path, secrets: SecretSet) -> None:
    status, out, err = _run(tmp_path, PRINT_BOTH, secrets)
    assert status == 0
    assert out == b"token=*** end\n"
    assert err == b"error: ***\n"
    _assert_clean(secrets, out, err)


def test_other_replacement_and_in_memory_destinations(secrets: SecretSet) -> None:
    out, err = io.BytesIO(), io.BytesIO()
    status = run_redacted(
        [sys.executable, "-c", PRINT_BOTH],
        secrets,
        replacement=b"[MASKED]",
        stdout=out,
        stderr=err,
        env=_env(),
    )
    assert status == 0
    assert out.getvalue() == b"token=[MASKED] end\n"
    assert err.getvalue() == b"error: [MASKED]\n"


BYTE_BY_BYTE = """
import os, sys, time
secret = os.environ["TOLLGATE_TEST_SECRET"].encode()
for stream in (sys.stdout.buffer, sys.stderr.buffer):
    for byte in b"<" + secret + b">\\n":
        stream.write(bytes([byte]))
        stream.flush()
        time.sleep(0.005)
"""


def test_secret_written_byte_by_byte_is_redacted(tmp_path: Path, secrets: SecretSet) -> None:
    status, out, err = _run(tmp_path, BYTE_BY_BYTE, secrets)
    assert status == 0
    assert out == b"<***>\n"
    assert err == b"<***>\n"
    _assert_clean(secrets, out, err)


def test_invalid_utf8_passes_through(tmp_path: Path, secrets: SecretSet) -> None:
    code = (
        "import os, sys; s = os.environ['TOLLGATE_TEST_SECRET'].encode(); "
        "sys.stdout.buffer.write(b'\\xff\\xfe ' + s + b' \\xc3\\x28 \\xed\\xa0\\x80\\n')"
    )
    status, out, _ = _run(tmp_path, code, secrets)
    assert status == 0
    assert out == b"\xff\xfe *** \xc3\x28 \xed\xa0\x80\n"


def test_no_secrets_pass_through_without_a_matcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_matcher(self: SecretSet) -> None:
        raise AssertionError("a matcher was built for an empty secret set")

    monkeypatch.setattr(SecretSet, "matcher", no_matcher)
    status, out, err = _run(tmp_path, PRINT_BOTH, SecretSet())
    assert status == 0
    assert out == f"token={SECRET} end\n".encode()
    assert err == f"error: {SECRET}\n".encode()


# --- streaming ------------------------------------------------------------------------------

INTERLEAVED = """
import sys
for i in range(3000):
    sys.stdout.write(f"out {i}\\n"); sys.stdout.flush()
    sys.stderr.write(f"err {i}\\n"); sys.stderr.flush()
"""


def test_interleaved_streams_arrive_complete(tmp_path: Path, secrets: SecretSet) -> None:
    status, out, err = _run(tmp_path, INTERLEAVED, secrets)
    assert status == 0
    assert out == "".join(f"out {i}\n" for i in range(3000)).encode()
    assert err == "".join(f"err {i}\n" for i in range(3000)).encode()


def test_one_destination_keeps_each_streams_order(tmp_path: Path, secrets: SecretSet) -> None:
    path = tmp_path / "log"
    with path.open("wb") as log:
        status = run_redacted(
            [sys.executable, "-c", INTERLEAVED],
            secrets,
            replacement=b"***",
            stdout=log,
            stderr=log,
        )
    assert status == 0
    lines = path.read_bytes().decode().splitlines()
    assert [line for line in lines if line.startswith("out ")] == [f"out {i}" for i in range(3000)]
    assert [line for line in lines if line.startswith("err ")] == [f"err {i}" for i in range(3000)]
    assert len(lines) == 6000


def test_interleaving_follows_arrival(tmp_path: Path, secrets: SecretSet) -> None:
    code = """
import sys, time
for stream, text in ((sys.stdout, "A"), (sys.stderr, "B"), (sys.stdout, "C"), (sys.stderr, "D")):
    stream.write(text + "\\n"); stream.flush(); time.sleep(0.1)
"""
    path = tmp_path / "log"
    with path.open("wb") as log:
        run_redacted(
            [sys.executable, "-c", code], secrets, replacement=b"*", stdout=log, stderr=log
        )
    assert path.read_bytes() == b"A\nB\nC\nD\n"


GENERATE = """
import os, sys
unit = b"x" * 1000 + os.environ["TOLLGATE_TEST_SECRET"].encode() + b"\\n"
block = unit * 64
for _ in range({blocks}):
    sys.stdout.buffer.write(block)
sys.stdout.buffer.flush()
"""


def test_large_output_streams_complete_in_bounded_memory(tmp_path: Path) -> None:
    blocks = 800  # 800 * 64 units of 1,020 bytes: 52 MB, 51,200 secrets
    out_path, rss_path = tmp_path / "out", tmp_path / "maxrss"
    with out_path.open("wb") as out:
        proc = _launch(
            GENERATE.format(blocks=blocks),
            stdout=out,
            env={**_env(), "TOLLGATE_TEST_MAXRSS": str(rss_path)},
        )
        _, err = proc.communicate(timeout=25)
    assert proc.returncode == 0, err
    redacted_unit = b"x" * 1000 + b"***\n"
    assert out_path.stat().st_size == blocks * 64 * len(redacted_unit)
    with out_path.open("rb") as produced:
        expected_block = redacted_unit * 1024
        while chunk := produced.read(len(expected_block)):
            assert chunk == expected_block[: len(chunk)]
    peak_mib = int(rss_path.read_text()) / 1024
    # The output is 52 MB: holding it (or a growing part of it) would show here.
    assert peak_mib < 45, f"peak RSS {peak_mib:.0f} MiB"


def test_a_flushed_line_arrives_before_the_child_exits() -> None:
    proc = _launch("import time; print('hello', flush=True); time.sleep(2); print('bye')")
    try:
        assert proc.stdout is not None
        started = time.monotonic()
        first = _read_until(proc.stdout.fileno(), b"\n", timeout=1.5)
        elapsed = time.monotonic() - started
        assert first == b"hello\n"
        assert proc.poll() is None, "the line only came out when the child exited"
        rest, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert elapsed < 1.5
    assert (proc.returncode, rest, err) == (0, b"bye\n", b"")


def test_closed_stdout_stops_the_child_with_sigpipe(tmp_path: Path, secrets: SecretSet) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        with (tmp_path / "err").open("wb") as err:
            # 20 MB at most: a supervisor that kept reading would not hang or eat the memory.
            status = run_redacted(
                ["head", "-c", "20000000", "/dev/zero"],
                secrets,
                replacement=b"***",
                stdout=write_end,
                stderr=err,
            )
    finally:
        os.close(write_end)
    assert status == 128 + signal.SIGPIPE


def test_background_process_holding_the_pipes_does_not_hang(
    tmp_path: Path, secrets: SecretSet, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tollgate.masking.process"):
        status, out, _ = _run(
            tmp_path, ["sh", "-c", "sleep 3 & echo done"], secrets, drain_timeout=0.3
        )
    assert time.monotonic() - started < 2.5
    assert (status, out) == (0, b"done\n")
    assert "background" in caplog.text


# --- signals --------------------------------------------------------------------------------

TRAP = """
import os, signal, sys, time
secret = os.environ["TOLLGATE_TEST_SECRET"]
def on_signal(signum, frame):
    sys.stdout.write(f"got {{signal.Signals(signum).name}} holding {{secret}}\\n")
    sys.stdout.flush()
    time.sleep(0.2)  # last words after a pause: the launcher must still be reading
    sys.stderr.write(f"last words: {{secret}}\\n")
    sys.stderr.flush()
    os._exit(7)
signal.signal({signum}, on_signal)
print("ready", flush=True)
time.sleep(20)
sys.exit(1)
"""


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1], ids=lambda s: s.name
)
def test_signal_is_forwarded_and_last_words_redacted(signum: signal.Signals) -> None:
    proc = _launch(TRAP.format(signum=int(signum)))
    try:
        assert proc.stdout is not None
        ready = _read_until(proc.stdout.fileno(), b"\n", timeout=10)
        assert ready == b"ready\n"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 7
    assert out == f"got {signum.name} holding ***\n".encode()
    assert err == b"last words: ***\n"
    assert SECRET.encode() not in out + err


def test_handlers_restored_and_ignored_signals_stay_ignored(
    tmp_path: Path, secrets: SecretSet
) -> None:
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        before = {name: signal.getsignal(getattr(signal, name)) for name in FORWARDED_SIGNALS}
        code = (
            "import signal as s; "
            "print(s.getsignal(s.SIGHUP) == s.SIG_IGN, s.getsignal(s.SIGTERM) == s.SIG_DFL)"
        )
        status, out, _ = _run(tmp_path, code, secrets)
        after = {name: signal.getsignal(getattr(signal, name)) for name in FORWARDED_SIGNALS}
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert status == 0
    assert out == b"True True\n"
    assert after == before


COUNT_INTERRUPTS = """
import signal, sys, time
count = 0
def on_interrupt(signum, frame):
    global count
    count += 1
signal.signal(signal.SIGINT, on_interrupt)
print("ready", flush=True)
deadline = time.monotonic() + 10
while not count and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(1)  # a forwarded copy would arrive well within this
print(f"count={count}", flush=True)
"""


@pytest.fixture
def terminal_session() -> Iterator[tuple[int, int]]:
    """The launcher as the session leader of a new pseudo-terminal: (pid, master fd)."""
    argv = [sys.executable, str(LAUNCHER), "--", sys.executable, "-c", COUNT_INTERRUPTS]
    env = _env()
    try:
        pid, master = pty.fork()
    except OSError as error:
        pytest.skip(f"no pseudo-terminal available: {error}")
    if pid == 0:  # pragma: no cover - the child execs at once
        try:
            os.execve(sys.executable, argv, env)
        finally:
            os._exit(127)
    try:
        yield pid, master
    finally:
        os.close(master)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ChildProcessError, ProcessLookupError):
            pass


def test_terminal_interrupt_reaches_the_child_once(terminal_session: tuple[int, int]) -> None:
    pid, master = terminal_session
    output = _read_until(master, b"ready", timeout=10)
    assert b"ready" in output
    os.write(master, b"\x03")  # Ctrl-C: the terminal signals the whole foreground group
    output += _read_until(master, b"count=", timeout=10)
    output += _read_until(master, b"\n", timeout=2)
    _, wait_status = os.waitpid(pid, 0)
    assert b"count=1" in output, output
    assert os.waitstatus_to_exitcode(wait_status) == 0


@pytest.mark.parametrize("zero_copy", [True, False])
def test_both_read_paths_give_the_same_output(
    tmp_path: Path, secrets: SecretSet, monkeypatch: pytest.MonkeyPatch, zero_copy: bool
) -> None:
    # Without os.readv (Windows) the channels read with os.read and feed(); same bytes out.
    monkeypatch.setattr("tollgate.masking.process.ZERO_COPY", zero_copy)
    script = (
        "import sys\n"
        f"s = {SECRET!r}\n"
        "for i in range(2000):\n"
        "    sys.stdout.write(f'line {i} ' + s[: i % len(s)] + '|' + s + '\\n')\n"
        "    sys.stdout.flush() if i % 97 == 0 else None\n"
        "sys.stderr.write(s[:5]); sys.stderr.flush(); sys.stderr.write(s[5:] + ' end\\n')\n"
    )
    status, out, err = _run(tmp_path, script, secrets)
    assert status == 0
    assert SECRET.encode() not in out + err
    assert out.count(b"|***\n") == 2000
    assert err == b"*** end\n"
