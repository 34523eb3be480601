"""Shared fixtures: a clean CI environment and a way to run the real `tollgate` command."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TOLLGATE_SHARED", REPO.parent / "shared"))
"""The team's shared folder (schemas, corpus), which CI places beside the checkout."""

# Variables that make tollgate believe it runs in CI; tests opt into them explicitly.
_CI_VARIABLES = (
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "GITHUB_OUTPUT",
    "GITHUB_ENV",
    "GITHUB_STEP_SUMMARY",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "TOLLGATE_PLATFORM",
    "TOLLGATE_LOGLEVEL",
)


@pytest.fixture(autouse=True)
def _no_ambient_ci(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests run the same on a developer's machine and inside a CI job."""
    for name in _CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture(autouse=True)
def _restore_tollgate_logger() -> Iterator[None]:
    """Undo what an in-process ``main()`` does to the ``tollgate`` logger.

    ``main()`` gives it a handler bound to the ``sys.stderr`` of the moment (a capture that
    is closed once the test ends) and stops propagation, which would hide later tests' log
    records from ``caplog``.
    """
    logger = logging.getLogger("tollgate")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a `tollgate` subprocess: ours minus CI variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _CI_VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def tollgate(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: bytes = b"",
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m tollgate ARGS` as a user would, capturing both streams."""
    return subprocess.run(
        [sys.executable, "-m", "tollgate", *args],
        input=stdin,
        capture_output=True,
        env=clean_env(env),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
