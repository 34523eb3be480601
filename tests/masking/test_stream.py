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
