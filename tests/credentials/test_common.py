"""What the GCP, Azure and Vault providers share besides HTTP: times, names, file places."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tollgate.credentials import _common


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T01:00:00Z", "2024-01-01T01:00:00+00:00"),
        ("2024-01-01T01:00:00.123456789Z", "2024-01-01T01:00:00.123456+00:00"),
        ("2024-01-01T01:00:00.5Z", "2024-01-01T01:00:00.500000+00:00"),
        ("2024-01-01T03:00:00+02:00", "2024-01-01T01:00:00+00:00"),
        ("2024-01-01 01:00:00", "2024-01-01T01:00:00+00:00"),
    ],
)
def test_parse_timestamp_tolerates_fractions_and_offsets(text: str, expected: str) -> None:
    parsed = _common.parse_timestamp(text)
    assert parsed is not None
    assert parsed.isoformat() == expected


@pytest.mark.parametrize("text", ["", "tomorrow", "2024-13-01T00:00:00Z", "2024-01-01"])
def test_parse_timestamp_refuses_garbage(text: str) -> None:
    assert _common.parse_timestamp(text) is None


def test_env_name() -> None:
    assert _common.env_name("db-password") == "DB_PASSWORD"
    assert _common.env_name("1st.key") == "_1ST_KEY"


def test_job_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path / "runner"))
    assert _common.job_temp_dir() == tmp_path / "runner"
    monkeypatch.setenv("RUNNER_TEMP", "")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches its answer
    made = _common.job_temp_dir()
    assert made.parent == tmp_path
    assert made.stat().st_mode & 0o777 == 0o700


def test_credentials_dir_in_the_workspace_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert _common.job_temp_dir("creds") == tmp_path / "creds"  # absolute, and created
    assert (tmp_path / "creds").is_dir()
    assert "inside the workspace ($GITHUB_WORKSPACE)" in caplog.text
    caplog.clear()
    _common.job_temp_dir(tmp_path.parent / "elsewhere")
    assert "workspace" not in caplog.text
