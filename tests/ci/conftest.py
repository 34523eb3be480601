"""Fixtures for the CI platform tests: a clean environment, fresh process secrets, fakes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.github_oidc import FakeGitHubOIDC
from tollgate.ci.github import RetryPolicy
from tollgate.masking import secrets as secrets_module
from tollgate.masking.secrets import SecretSet

_CI_PREFIXES = ("GITHUB_", "GITLAB_", "ACTIONS_", "CI_", "RUNNER_", "TOLLGATE_")
_PROXIES = ("http_proxy", "https_proxy", "all_proxy")

FAST_RETRY = RetryPolicy(
    retries=3,
    backoff_factor=0.01,
    backoff_max=0.05,
    jitter=0.5,
    budget=5.0,
    connect_timeout=1.0,
    read_timeout=0.3,
)
"""Retries that finish in well under a second, so the suite stays fast."""


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CI variables or proxies from the machine running the tests; a fresh secret set."""
    for name in list(os.environ):
        if name.startswith(_CI_PREFIXES) or name.endswith("_ID_TOKEN") or name.lower() in _PROXIES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(secrets_module, "_PROCESS_SECRETS", SecretSet())
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def oidc_server() -> Iterator[FakeGitHubOIDC]:
    with FakeGitHubOIDC() as server:
        yield server


@dataclass(frozen=True)
class RunnerFiles:
    output: Path
    env: Path
    summary: Path


@pytest.fixture
def runner_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RunnerFiles:
    """The files a GitHub runner creates for a step, empty, named in the environment."""
    directory = tmp_path / "_runner_file_commands"
    directory.mkdir()
    files = RunnerFiles(
        output=directory / "set_output_1",
        env=directory / "set_env_1",
        summary=directory / "step_summary_1",
    )
    for path in (files.output, files.env, files.summary):
        path.touch()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(files.output))
    monkeypatch.setenv("GITHUB_ENV", str(files.env))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(files.summary))
    return files


def parse_runner_file(text: str) -> list[tuple[str, str]]:
    """Parse a GITHUB_OUTPUT/GITHUB_ENV file the way the runner does.

    A port of ``FileCommandManager`` (``actions/runner``): ``NAME=VALUE`` lines, and
    ``NAME<<DELIM`` heredocs whose value is the text up to the line equal to ``DELIM``.
    """
    entries: list[tuple[str, str]] = []
    index = 0

    def read_line() -> tuple[str | None, str | None]:
        nonlocal index
        if index >= len(text):
            return None, None
        end = text.find("\n", index)
        if end < 0:
            line, newline, index = text[index:], None, len(text)
            return line, newline
        line = text[index:end]
        newline = "\n"
        if line.endswith("\r"):
            line, newline = line[:-1], "\r\n"
        index = end + 1
        return line, newline

    line, _ = read_line()
    while line is not None:
        if line:
            equals, heredoc = line.find("="), line.find("<<")
            if equals >= 0 and (heredoc < 0 or equals < heredoc):
                entries.append((line[:equals], line[equals + 1 :]))
            else:
                name, delimiter = line.split("<<", 1)
                assert name and delimiter, f"invalid heredoc line {line!r}"
                start = end = index
                value_line, newline = read_line()
                while value_line is None or value_line.rstrip(" \t\r") != delimiter:
                    assert value_line is not None, f"delimiter {delimiter!r} not found"
                    assert newline is not None, "EOF marker missing new line"
                    end = index - len(newline)
                    value_line, newline = read_line()
                entries.append((name, text[start:end] if end > start else ""))
        line, _ = read_line()
    return entries
