"""``filter_stream``: redaction across reads, prompt release, EPIPE, pass-through."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest

from tests.masking._pipes import read_until as _read_until
from tollgate.masking.secrets import SecretSet
from tollgate.masking.stream import filter_stream

SECRET = "s3cr3t-T0ken-9f8e7d"


@pytest.fixture
def secrets() -> SecretSet:
    found = SecretSet()
    found.add(SECRET)
    return found


def _feed(fd: int, pieces: list[bytes], pause: float) -> threading.Thread:
    def write() -> None:
        for piece in pieces:
            os.write(fd, piece)
            time.sleep(pause)
        os.close(fd)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_filter_stream_redacts_a_secret_split_across_reads(
    tmp_path: Path, secrets: SecretSet
) -> None:
    src, feeder = os.pipe()
    secret = SECRET.encode()
    thread = _feed(feeder, [b"a " + secret[:5], secret[5:12], secret[12:] + b" b\n"], 0.05)
    with (tmp_path / "out").open("wb") as out:
        assert filter_stream(src, out, secrets, b"***") is True
    thread.join()
    os.close(src)
    assert (tmp_path / "out").read_bytes() == b"a *** b\n"


def test_filter_stream_releases_each_piece_at_once(secrets: SecretSet) -> None:
    src, feeder = os.pipe()
    reader, dst = os.pipe()
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(filter_stream(src, dst, secrets, b"*")))
    thread.start()
    try:
        os.write(feeder, b"first line\n")
        assert _read_until(reader, b"\n", timeout=2) == b"first line\n"
    finally:
        os.close(feeder)
        thread.join(timeout=5)
    assert result == [True]
    for fd in (src, reader, dst):
        os.close(fd)


def test_filter_stream_stops_quietly_when_the_reader_goes(secrets: SecretSet) -> None:
    src, feeder = os.pipe()
    reader, dst = os.pipe()
    os.close(reader)
    os.write(feeder, b"nobody reads this\n")
    os.close(feeder)
    assert filter_stream(src, dst, secrets, b"***") is False
    os.close(src)
    os.close(dst)


def test_filter_stream_without_secrets_passes_bytes_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_matcher(self: SecretSet) -> None:
        raise AssertionError("a matcher was built for an empty secret set")

    monkeypatch.setattr(SecretSet, "matcher", no_matcher)
    data = bytes(range(256)) * 5000
    src, feeder = os.pipe()
    thread = _feed(feeder, [data[i : i + 70000] for i in range(0, len(data), 70000)], 0)
    out = io.BytesIO()
    assert filter_stream(src, out, SecretSet(), b"***") is True
    thread.join()
    os.close(src)
    assert out.getvalue() == data


def test_read_from_releases_what_feed_releases(tmp_path: Path) -> None:
    # read_from() reuses one buffer and hands back views of it; the bytes must be those
    # feed() gives for the same reads, whatever the read size.
    import random

    from tollgate.masking.redactor import StreamRedactor, redact_all

    rng = random.Random(11)
    found = SecretSet()
    for value in ("s3cr3t-T0ken-9f8e7d", "hunter22", "pa:ss'wo\"rd&"):
        found.add(value)
    patterns = sorted(found.patterns)
    pieces = [rng.randbytes(rng.randint(0, 30)) for _ in range(300)]
    for index in range(0, len(pieces), 3):
        pieces[index] += rng.choice(patterns)
    data = b"".join(pieces)
    log = tmp_path / "log"
    log.write_bytes(data)
    for size in (1, 7, 64, 4096):
        redactor = StreamRedactor(found.matcher(), b"*")
        out: list[bytes] = []
        fd = os.open(log, os.O_RDONLY)
        try:
            while (released := redactor.read_from(fd, size)) is not None:
                # Copied at once: the views are only valid until the next read.
                out.append(b"".join(released))
        finally:
            os.close(fd)
        out.append(redactor.flush())
        assert b"".join(out) == redact_all(found.matcher(), data, b"*"), size


def test_sink_writes_many_pieces_through_short_writes() -> None:
    # More pieces than one writev() takes, into a pipe smaller than the data, drained
    # slowly: every byte must come out once, in order.
    from tollgate.masking.stream import Sink

    pieces: list[bytes | memoryview] = []
    for index in range(3000):
        piece = f"<{index}>".encode() * (index % 7) * 8  # ~450 KB in all
        pieces.append(memoryview(piece) if index % 2 else piece)
    expected = b"".join(pieces)
    reader, writer = os.pipe()
    os.set_blocking(writer, False)  # short writes and EAGAIN, as a CI runner's pipe may give
    received: list[bytes] = []

    def drain() -> None:
        while chunk := os.read(reader, 4096):
            received.append(chunk)
            time.sleep(0.0005)

    thread = threading.Thread(target=drain)
    thread.start()
    try:
        assert Sink(writer).write_pieces(pieces) is True
    finally:
        os.close(writer)
        thread.join(timeout=10)
        os.close(reader)
    assert b"".join(received) == expected


@pytest.mark.skipif(
    not hasattr(__import__("fcntl"), "F_GETPIPE_SZ"), reason="pipe sizes are a Linux feature"
)
def test_a_pipe_we_read_is_widened_and_files_are_left_alone(tmp_path: Path) -> None:
    import fcntl

    from tollgate.masking.stream import PIPE_SIZE, widen_pipe

    reader, writer = os.pipe()
    try:
        assert fcntl.fcntl(reader, fcntl.F_GETPIPE_SZ) < PIPE_SIZE
        widen_pipe(reader)
        assert fcntl.fcntl(reader, fcntl.F_GETPIPE_SZ) >= PIPE_SIZE
        # Never shrunk: a pipe already larger stays as it is.
        widen_pipe(reader, size=4096)
        assert fcntl.fcntl(reader, fcntl.F_GETPIPE_SZ) >= PIPE_SIZE
    finally:
        os.close(reader)
        os.close(writer)
    with (tmp_path / "file").open("wb") as handle:
        widen_pipe(handle.fileno())  # not a pipe: nothing happens, nothing raised


def test_filter_stream_without_readv_gives_the_same_bytes(
    tmp_path: Path, secrets: SecretSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where os.readv is missing (Windows), reads go through feed(): same output.
    data = b"".join(f"{i} {SECRET[: i % 7]}|{SECRET}\n".encode() for i in range(5000))
    log = tmp_path / "log"
    log.write_bytes(data)
    outputs = []
    for zero_copy in (True, False):
        monkeypatch.setattr("tollgate.masking.stream.ZERO_COPY", zero_copy)
        out = io.BytesIO()
        fd = os.open(log, os.O_RDONLY)
        try:
            assert filter_stream(fd, out, secrets, b"*") is True
        finally:
            os.close(fd)
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1]
    assert SECRET.encode() not in outputs[0]
    assert outputs[0].count(b"|*\n") == 5000
