"""detect() and get_platform()."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tollgate.ci import PlatformOptions, detect, get_platform
from tollgate.ci.github import GitHubPlatform
from tollgate.ci.gitlab import GitLabPlatform
from tollgate.ci.local import LocalPlatform
from tollgate.errors import UsageError


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"GITHUB_ACTIONS": "true"}, "github"),
        ({"GITLAB_CI": "true"}, "gitlab"),
        ({"GITHUB_ACTIONS": "true", "GITLAB_CI": "true"}, "github"),
        ({"GITHUB_ACTIONS": "1"}, "local"),
        ({"GITLAB_CI": "TRUE"}, "local"),
        ({}, "local"),
    ],
)
def test_detect(environ: dict[str, str], expected: str) -> None:
    assert detect(environ) == expected


def test_detect_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    assert detect() == "local"
    monkeypatch.setenv("GITLAB_CI", "true")
    assert detect() == "gitlab"


@pytest.mark.parametrize(
    ("name", "environ", "cls"),
    [
        ("github", {}, GitHubPlatform),
        ("gitlab", {}, GitLabPlatform),
        ("local", {"GITHUB_ACTIONS": "true"}, LocalPlatform),
        (None, {"GITHUB_ACTIONS": "true"}, GitHubPlatform),
        ("auto", {"GITLAB_CI": "true"}, GitLabPlatform),
        ("auto", {}, LocalPlatform),
    ],
)
def test_get_platform(name: str | None, environ: dict[str, str], cls: type) -> None:
    platform = get_platform(name, environ=environ)
    assert type(platform) is cls
    assert platform.name == {GitHubPlatform: "github", GitLabPlatform: "gitlab"}.get(cls, "local")


def test_get_platform_passes_options() -> None:
    options = PlatformOptions(token_env="MY_TOKEN")
    platform = get_platform("gitlab", options=options)
    assert isinstance(platform, GitLabPlatform)
    assert platform.options is options


def test_get_platform_unknown_name() -> None:
    with pytest.raises(UsageError, match="unknown platform 'jenkins'") as info:
        get_platform("jenkins")
    assert "github" in (info.value.hint or "")


def test_platform_options_rejects_bad_variable_name() -> None:
    with pytest.raises(UsageError, match="not a valid environment variable name"):
        PlatformOptions(token_env="MY-TOKEN")


def test_importing_ci_does_not_import_requests() -> None:
    code = (
        "import sys, tollgate.ci, tollgate.ci.github, tollgate.ci.gitlab, tollgate.ci.local;"
        "bad = [m for m in ('requests', 'urllib3') if m in sys.modules];"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
