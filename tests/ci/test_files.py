"""atomic_write and append_record."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from tollgate._files import append_record, atomic_write


def test_atomic_write_creates_file_with_mode(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    atomic_write(path, b"secret\n")
    assert path.read_bytes() == b"secret\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_atomic_write_mode_ignores_umask(tmp_path: Path) -> None:
    path = tmp_path / "report.env"
    old = os.umask(0o077)
    try:
        atomic_write(path, b"A=1\n", mode=0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"old")
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


@pytest.mark.parametrize("failing", ["fsync", "replace", "write"])
def test_atomic_write_failure_keeps_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"old content")

    def boom(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(f"tollgate._files.os.{failing}", boom)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, b"new content")
    monkeypatch.undo()
    assert path.read_bytes() == b"old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_atomic_write_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "missing" / "f", b"x")


def test_append_record_appends(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_bytes(b"a=1\n")
    append_record(path, b"b=2\n")
    append_record(path, b"c=3\n")
    assert path.read_bytes() == b"a=1\nb=2\nc=3\n"


def test_append_record_creates_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "out"
    append_record(path, b"x\n")
    assert path.read_bytes() == b"x\n"


def test_append_record_continues_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out"
    real_write = os.write
    calls: list[int] = []

    def short_write(fd: int, data: bytes | memoryview) -> int:
        chunk = bytes(data[:3])  # the kernel may write less than asked
        calls.append(len(chunk))
        return real_write(fd, chunk)

    monkeypatch.setattr("tollgate._files.os.write", short_write)
    append_record(path, b"0123456789")
    assert path.read_bytes() == b"0123456789"
    assert calls == [3, 3, 3, 1]


def test_append_record_concurrent_records_stay_whole(tmp_path: Path) -> None:
    path = tmp_path / "out"
    records = [f"name{i}<<D\n{'x' * 5000}{i}\nD\n".encode() for i in range(40)]
    threads = [threading.Thread(target=append_record, args=(path, r)) for r in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    data = path.read_bytes()
    assert len(data) == sum(map(len, records))
    for record in records:
        assert record in data
