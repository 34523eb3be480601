"""Fixtures for the CI platform tests: a clean environment, fresh process secrets, fakes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.github_oidc import FakeGitHubOIDC
from tests.helpers import CI_PREFIXES, isolate
from tollgate._http import HttpPolicy

FAST_RETRY = HttpPolicy(
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
    isolate(monkeypatch, CI_PREFIXES, ("_ID_TOKEN",))
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
