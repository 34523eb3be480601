"""Every command, run with secrets in play: no secret may appear where it is not meant to.

Each scenario runs the real `tollgate` command in a fresh directory that also holds the
files a CI runner hands to a step (GITHUB_OUTPUT, GITHUB_ENV, GITHUB_STEP_SUMMARY). Afterwards
stdout, stderr and every file in that directory are searched for each secret and its common
encodings. The only places a secret may appear are the ones a scenario names: the
``::add-mask::`` lines the GitHub runner consumes without printing.
"""

from __future__ import annotations

import base64
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import tollgate

SECRET = "leak-test-S3cret/+=value"
SECOND = "second-leak-test-secret-42"
ARG_SECRET = "argv-leak-test-secret-77"


def _forms(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [
        raw,
        base64.b64encode(raw),
        base64.b64encode(raw + b"\n"),
        urllib.parse.quote(secret, safe="").encode(),
    ]


@dataclass(frozen=True)
class Scenario:
    name: str
    argv: tuple[str, ...]
    platform: str = "local"
    stdin: bytes = b""
    # Lines of stderr that start with one of these may hold the secret (consumed by the runner).
    allowed_stderr_prefixes: tuple[bytes, ...] = ()
    expect_status: int = 0
    secrets: tuple[str, ...] = (SECRET, SECOND)
    env: dict[str, str] = field(default_factory=dict)


_SHOUT = (
    'echo "out: $S"; echo "$S" | base64; printf %s "$S2" >&2; echo >&2; '
    'python3 -c \'import os,urllib.parse;print(urllib.parse.quote(os.environ["S"], safe=""))\''
)

SCENARIOS = [
    Scenario("version", ("--version",)),
    Scenario("help", ("--help",)),
    Scenario(
        "mask on github",
        ("mask", "--env", "S", "S2"),
        platform="github",
        allowed_stderr_prefixes=(b"::add-mask::",),
    ),
    Scenario(
        "mask from stdin on github",
        ("mask", "--stdin"),
        platform="github",
        stdin=SECRET.encode() + b"\n",
        allowed_stderr_prefixes=(b"::add-mask::",),
    ),
    Scenario("mask on gitlab", ("mask", "--env", "S", "S2"), platform="gitlab"),
    Scenario("mask on local", ("mask", "--env", "S"), platform="local"),
    Scenario(
        "redact",
        ("redact", "--secret-env", "S", "--secret-env", "S2"),
        stdin=b"\n".join(_forms(SECRET) + _forms(SECOND)) + b"\n",
    ),
    Scenario(
        "redact with a value argument",
        ("redact", "--secret", ARG_SECRET),
        stdin=b"x " + ARG_SECRET.encode() + b" y\n",
        secrets=(ARG_SECRET,),
    ),
    *(
        Scenario(
            f"run on {platform}",
            ("run", "--secret-env", "S", "--secret-env", "S2", "--", "sh", "-c", _SHOUT),
            platform=platform,
        )
        for platform in ("local", "gitlab", "github")
    ),
    Scenario(
        "run: command not found, named after the secret",
        ("run", "--secret-env", "S", "--", f"/nonexistent/{SECRET}"),
        expect_status=127,
    ),
    Scenario(
        "a usage error with -v (traceback)",
        ("-v", "redact", "--secret-env", "S", "--secret-file", f"/nonexistent/{SECRET}"),
        expect_status=2,
    ),
    Scenario(
        "a usage error with -vv on github",
        (
            "-vv",
            "run",
            "--secret-env",
            "S",
            "--secret-file",
            f"/nonexistent/{SECOND}",
            "--",
            "true",
        ),
        platform="github",
        expect_status=2,
        secrets=(SECOND,),
        env={"S": SECOND},
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_no_secret_leaks(scenario: Scenario, tmp_path: Path) -> None:
    runner_files = {
        "GITHUB_OUTPUT": tmp_path / "github_output",
        "GITHUB_ENV": tmp_path / "github_env",
        "GITHUB_STEP_SUMMARY": tmp_path / "step_summary.md",
    }
    for path in runner_files.values():
        path.touch()
    env = {"S": SECRET, "S2": SECOND, "TOLLGATE_PLATFORM": scenario.platform}
    if scenario.platform == "github":
        env["GITHUB_ACTIONS"] = "true"
        env.update({name: str(path) for name, path in runner_files.items()})
    elif scenario.platform == "gitlab":
        env["GITLAB_CI"] = "true"
    env.update(scenario.env)

    result = tollgate(*scenario.argv, env=env, stdin=scenario.stdin, cwd=tmp_path)
    assert result.returncode == scenario.expect_status, result.stderr.decode(errors="replace")

    stderr_lines = [
        line
        for line in result.stderr.splitlines()
        if not line.startswith(scenario.allowed_stderr_prefixes or (b"\0never",))
    ]
    captured = {"stdout": result.stdout, "stderr": b"\n".join(stderr_lines)}
    captured.update({f"file {p.name}": p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()})
    for secret in scenario.secrets:
        for form in _forms(secret):
            for sink, content in captured.items():
                assert form not in content, f"{secret!r} leaked into {sink} as {form!r}"


def test_the_leak_check_can_fail(tmp_path: Path) -> None:
    # Without --secret-env, run passes the secret through: the check above must see it.
    result = tollgate("run", "--", "sh", "-c", 'echo "$S"', env={"S": SECRET}, cwd=tmp_path)
    assert SECRET.encode() in result.stdout


def test_github_masks_come_before_anything_else() -> None:
    result = tollgate("mask", "--env", "S", env={"S": SECRET, "GITHUB_ACTIONS": "true"})
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    masks = [line for line in lines if line.startswith(b"::add-mask::")]
    # The value and its encoded forms are all registered with the runner.
    for form in _forms(SECRET)[:2]:
        assert any(line == b"::add-mask::" + form for line in masks), form
