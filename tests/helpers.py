"""Helpers shared across test packages: CI tokens, runner files, subprocess environments and
where secrets may end up. Fixtures live in the conftest files; fakes in ``tests.fakes``."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import tollgate
from tests.fakes import jwt
from tests.fakes._service import GITHUB_ISSUER
from tests.fakes.github_oidc import FakeGitHubOIDC
from tollgate._http import HttpPolicy
from tollgate.masking import secrets as secrets_module
from tollgate.masking.secrets import SecretSet

CI_PREFIXES = ("GITHUB_", "GITLAB_", "ACTIONS_", "CI_", "RUNNER_", "TOLLGATE_")
"""Variables of the CI systems (and tollgate's own) that a test must not inherit."""

SINK_CASES = [("github", "env"), ("local", "env"), ("local", "shell"), ("github", "json")]
"""``(platform, output)`` for the tests of where secrets go: every output mode, and env on both
platforms (a file on one, stdout on the other)."""

FAST_HTTP = HttpPolicy(retries=2, backoff_factor=0.01, backoff_max=0.02, budget=5, read_timeout=1)
"""Retries that give up within a second or two, for the providers against the fakes."""


def isolate(
    monkeypatch: pytest.MonkeyPatch, prefixes: tuple[str, ...] = (), suffixes: tuple[str, ...] = ()
) -> None:
    """No proxy (the fakes are on loopback) and no variable starting with one of ``prefixes``
    or ending with one of ``suffixes`` from the machine running the tests; no secret known to
    the process yet."""
    for name in list(os.environ):
        if name.startswith(prefixes) or name.endswith(suffixes) or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(secrets_module, "_PROCESS_SECRETS", SecretSet())


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


def ci_token(
    audience: str | list[str],
    *,
    issuer: str = GITHUB_ISSUER,
    lifetime: int = 300,
    key: jwt.SigningKey | None = None,
    **claims: Any,
) -> str:
    """A GitHub-style OIDC token for a push to main of octo-org/octo-repo, plus ``claims``."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": issuer,
        "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
        "aud": audience,
        "repository": "octo-org/octo-repo",
        "repository_owner": "octo-org",
        "ref": "refs/heads/main",
        "jti": secrets.token_hex(8),
        "iat": now,
        "nbf": now - 600,
        "exp": now + lifetime,
    }
    body.update(claims)
    return jwt.sign(body, key)


def loopback_env(tmp: Any, **extra: str) -> dict[str, str]:
    """Variables for a `tollgate` subprocess: loopback never proxied, temp files under ``tmp``.

    ``RUNNER_TEMP`` is emptied (a test run inside GitHub Actions must not write to the real
    one); ``TMPDIR`` points at ``tmp/tmp`` so "a new private temp dir" is checkable.
    """
    tmpdir = Path(tmp) / "tmp"
    tmpdir.mkdir(exist_ok=True)
    env = {
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "TMPDIR": str(tmpdir),
        "RUNNER_TEMP": "",
        "HOME": str(tmp),
    }
    env.update(extra)
    return env


def creds_local(
    provider: str, tmp: Path, token: str, *args: str
) -> subprocess.CompletedProcess[bytes]:
    """Run `tollgate creds PROVIDER ARGS` on the local platform with ``token`` in a file."""
    token_file = tmp / "token.jwt"
    token_file.write_text(token)
    return tollgate(
        "creds",
        provider,
        "--platform",
        "local",
        "--token-file",
        str(token_file),
        *args,
        env=loopback_env(tmp),
        cwd=tmp,
    )


def creds_platform(
    oidc: FakeGitHubOIDC, tmp: Path, platform: str, local_token: str
) -> tuple[dict[str, str], list[str]]:
    """The environment and options of a `tollgate creds` subprocess on ``platform``.

    ``github``: a job of ``oidc`` with its runner files (and ``RUNNER_TEMP``) under ``tmp``;
    ``local``: ``local_token`` in a file.
    """
    env = loopback_env(tmp)
    args = ["--platform", platform]
    if platform == "github":
        env.update(oidc.env(), RUNNER_TEMP=str(tmp / "runner"))
        for name in ("GITHUB_ENV", "GITHUB_OUTPUT"):
            env[name] = str(tmp / name.lower())
    else:
        (tmp / "token.jwt").write_text(local_token)
        args += ["--token-file", str(tmp / "token.jwt")]
    return env, args


def shell_exports(stdout: bytes, names: list[str] | None = None) -> dict[str, str]:
    """Evaluate ``export`` lines in bash, as a job would; the variables they set."""
    before = subprocess.run(
        ["bash", "-c", "env -0"], capture_output=True, check=True, env={"PATH": os.environ["PATH"]}
    ).stdout
    result = subprocess.run(
        ["bash", "-c", 'set -e; eval "$TOLLGATE_OUT"; unset TOLLGATE_OUT; env -0'],
        capture_output=True,
        check=True,
        env={"PATH": os.environ["PATH"], "TOLLGATE_OUT": stdout.decode()},
    )
    baseline = dict(_env0(before))
    found = {k: v for k, v in _env0(result.stdout) if baseline.get(k) != v}
    return {k: v for k, v in found.items() if names is None or k in names}


def _env0(data: bytes) -> list[tuple[str, str]]:
    pairs = []
    for item in data.split(b"\0"):
        if b"=" in item:
            key, _, value = item.decode().partition("=")
            pairs.append((key, value))
    return pairs


def runner_file(path: Any) -> dict[str, str]:
    """The records of ``$GITHUB_ENV`` / ``$GITHUB_OUTPUT`` (``{}`` before the file exists)."""
    file = Path(path)
    return dict(parse_runner_file(file.read_text())) if file.exists() else {}


def assert_only_in_sinks(
    tmp: Any,
    stdout: bytes,
    stderr: bytes,
    *,
    exported: list[str],
    hidden: list[str],
    oidc_tokens: list[str],
    stdout_is_sink: bool,
) -> None:
    """Check where every secret went, by grepping the streams and every file under ``tmp``.

    ``exported`` values may appear on stdout (when it is the sink) and in ``$GITHUB_ENV``
    (a file named ``github_env``); ``oidc_tokens`` only in token files (``*.jwt``);
    ``hidden`` nowhere. On stderr, only ``::add-mask::`` commands may carry any of them.
    """

    files = {p: p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
    err = b"\n".join(
        line for line in stderr.split(b"\n") if not line.lstrip().startswith(b"::add-mask::")
    )

    def forms(value: str) -> list[bytes]:
        lines = [line.strip() for line in value.splitlines() if len(line.strip()) >= 4]
        return [value.encode(), *(line.encode() for line in lines)]

    for value in exported:
        first = forms(value)[-1]  # a line survives JSON and shell quoting
        assert (first in stdout) is stdout_is_sink, f"exported value on stdout: {stdout_is_sink}"
        for form in forms(value):
            assert form not in err, "an exported secret is on stderr"
            for path, data in files.items():
                if path.name != "github_env":
                    assert form not in data, f"an exported secret is in {path}"
    for value in hidden:
        for form in forms(value):
            assert form not in stdout and form not in err, "a hidden secret was printed"
            for path, data in files.items():
                assert form not in data, f"a hidden secret is in {path}"
    for value in oidc_tokens:
        assert value.encode() not in stdout and value.encode() not in err
        for path, data in files.items():
            if path.suffix != ".jwt":
                assert value.encode() not in data, f"an OIDC token is in {path}"
