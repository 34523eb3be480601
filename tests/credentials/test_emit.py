"""`tollgate.credentials.emit`: masks first, every output mode, facts, and no leaks."""

from __future__ import annotations

import argparse
import configparser
import json
import logging
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import tollgate
from tests.fakes import jwt
from tests.fakes.github_oidc import FakeGitHubOIDC
from tests.helpers import CI_PREFIXES, isolate, parse_runner_file
from tollgate.ci import PlatformOptions
from tollgate.ci.github import GitHubPlatform
from tollgate.ci.gitlab import GitLabPlatform
from tollgate.ci.interface import Platform
from tollgate.ci.local import LocalPlatform
from tollgate.credentials import emit as emit_module
from tollgate.credentials.emit import credential_process_document, emit
from tollgate.credentials.interface import Credentials, OutputMode
from tollgate.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from tests.fakes.moto import MotoServer

pytest_plugins = ("tests.fakes.moto",)

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/deploy"
EXPIRES = datetime(2099, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
KEYS = {
    "AWS_ACCESS_KEY_ID": "ASIAEMITTESTKEY00001",
    "AWS_SECRET_ACCESS_KEY": "emit/Secret+Access=Key/0000000000000001",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEmitTestSessionToken/+=0000000000000000000000001",
}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No CI or AWS settings from the machine; a fresh secret set; temp files under tmp_path."""
    isolate(monkeypatch, (*CI_PREFIXES, "AWS_"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "absent-aws-credentials"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.chdir(tmp_path)
    yield


def aws_credentials(**extra: str) -> Credentials:
    return Credentials(
        provider="aws",
        secrets={**KEYS, **extra},
        environment={"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION},
        facts={
            "aws-account-id": "123456789012",
            "aws-arn": "arn:aws:sts::123456789012:assumed-role/deploy/tollgate",
            "aws-expiration": "2099-01-02T03:04:05Z",
        },
        expires_at=EXPIRES,
    )


def args(output: str, **extra: Any) -> argparse.Namespace:
    return argparse.Namespace(output=output, **extra)


def github(tmp_path: Path, **environ: str) -> tuple[GitHubPlatform, dict[str, Path]]:
    files = {name: tmp_path / name for name in ("GITHUB_ENV", "GITHUB_OUTPUT")}
    for path in files.values():
        path.touch()
    env = {**{name: str(path) for name, path in files.items()}, **environ}
    return GitHubPlatform(environ=env), files


def eval_in_bash(script: str, names: list[str]) -> dict[str, str]:
    printf = " ".join(f'"${name}"' for name in names)
    result = subprocess.run(
        ["bash", "-c", f'eval "$1" && printf "%s\\0" {printf}', "bash", script],
        capture_output=True,
        check=True,
    )
    return dict(zip(names, result.stdout.decode().split("\0")[:-1], strict=True))


class Recording(LocalPlatform):
    """A local platform that records the order of calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    def add_mask(self, value: str) -> None:
        self.calls.append(("add_mask", value))
        super().add_mask(value)

    def export_env(self, name: str, value: str, *, secret: bool) -> None:
        self.calls.append(("export_env", name))
        super().export_env(name, value, secret=secret)

    def set_output(self, name: str, value: str) -> None:
        self.calls.append(("set_output", name))
        super().set_output(name, value)


# Order and the GitHub sinks


def test_every_secret_is_masked_before_anything_is_written(
    capfd: pytest.CaptureFixture[str],
) -> None:
    platform = Recording()
    credentials = aws_credentials(DB_PASSWORD="db-password-0001")
    emit(credentials, platform, args("env"))
    count = len(credentials.secrets)
    assert platform.calls[:count] == [("add_mask", v) for v in credentials.secrets.values()]
    writes = [name for call, name in platform.calls[count:] if call != "add_mask"]
    assert writes == [*credentials.secrets, "AWS_REGION", "AWS_DEFAULT_REGION"]


def test_github_env_mode_writes_github_env_and_outputs_only(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    platform, files = github(tmp_path)
    emit(aws_credentials(), platform, args("env"))
    out, err = capfd.readouterr()
    assert out == ""
    lines = err.splitlines()
    for value in KEYS.values():
        assert f"::add-mask::{value}" in lines
        assert all(line.startswith("::add-mask::") for line in lines if value in line)
    assert dict(parse_runner_file(files["GITHUB_ENV"].read_text())) == {
        **KEYS,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    assert dict(parse_runner_file(files["GITHUB_OUTPUT"].read_text())) == dict(
        aws_credentials().facts
    )


# stdout modes


@pytest.mark.parametrize("platform_name", ["github", "gitlab", "local"])
def test_shell_mode_prints_exports_that_bash_reads_back_exactly(
    platform_name: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    platforms: dict[str, Platform] = {
        "github": github(tmp_path)[0],
        "gitlab": GitLabPlatform(PlatformOptions(dotenv_path=tmp_path / "out.env"), environ={}),
        "local": LocalPlatform(environ={}),
    }
    tricky = 'it\'s $HOME `x` "q" \\ %0A ::add-mask::'
    emit(aws_credentials(WEIRD=tricky), platforms[platform_name], args("shell"))
    out = capfd.readouterr().out
    names = [*KEYS, "WEIRD", "AWS_REGION", "AWS_DEFAULT_REGION"]
    assert eval_in_bash(out, names) == {
        **KEYS,
        "WEIRD": tricky,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    assert all(line.startswith("export ") for line in out.splitlines())
    if platform_name == "github":
        assert (tmp_path / "GITHUB_ENV").read_text() == ""
        assert "aws-arn<<" in (tmp_path / "GITHUB_OUTPUT").read_text()


def test_json_mode_prints_one_document(capfd: pytest.CaptureFixture[str]) -> None:
    emit(aws_credentials(), LocalPlatform(environ={}), args("json"))
    out = capfd.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out) == {
        "provider": "aws",
        "secrets": KEYS,
        "environment": {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION},
        "facts": dict(aws_credentials().facts),
        "expires_at": "2099-01-02T03:04:05Z",
    }


def test_credential_process_mode_prints_exactly_the_sdk_document(
    capfd: pytest.CaptureFixture[str],
) -> None:
    emit(aws_credentials(), LocalPlatform(environ={}), args("credential-process"))
    out = capfd.readouterr().out
    assert json.loads(out) == {
        "Version": 1,
        "AccessKeyId": KEYS["AWS_ACCESS_KEY_ID"],
        "SecretAccessKey": KEYS["AWS_SECRET_ACCESS_KEY"],
        "SessionToken": KEYS["AWS_SESSION_TOKEN"],
        "Expiration": "2099-01-02T03:04:05Z",
    }
    undated = Credentials("aws", KEYS)
    assert "Expiration" not in credential_process_document(undated)


@pytest.mark.parametrize("mode", list(OutputMode))
def test_local_keeps_facts_off_stdout(
    mode: OutputMode,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tollgate")
    emit(
        aws_credentials(),
        LocalPlatform(environ={}),
        args(mode.value, profile_dir=str(tmp_path / "p")),
    )
    out = capfd.readouterr().out
    assert "aws-account-id=" not in out  # what set_output would print here
    if mode in (OutputMode.JSON, OutputMode.CREDENTIAL_PROCESS):
        json.loads(out)
    else:
        assert out and all(line.startswith("export ") for line in out.splitlines())
    assert "aws-account-id=123456789012" in caplog.text
    assert "2099-01-02T03:04:05Z" in caplog.text
    for value in KEYS.values():
        assert value not in caplog.text


def test_gitlab_outputs_use_dotenv_keys(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    dotenv = tmp_path / "job.env"
    emit(
        aws_credentials(),
        GitLabPlatform(PlatformOptions(dotenv_path=dotenv), environ={}),
        args("env"),
    )
    assert dotenv.read_text().splitlines() == [
        "aws_account_id=123456789012",
        "aws_arn=arn:aws:sts::123456789012:assumed-role/deploy/tollgate",
        "aws_expiration=2099-01-02T03:04:05Z",
    ]
    out = capfd.readouterr().out
    assert out.startswith("export AWS_ACCESS_KEY_ID=")


# Profiles


def read_ini(path: Path) -> dict[str, dict[str, str]]:
    parser = configparser.RawConfigParser()
    parser.read(path)
    return {section: dict(parser[section]) for section in parser.sections()}


def test_profiles_are_private_atomic_and_kept_side_by_side(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    platform, files = github(tmp_path, RUNNER_TEMP=str(tmp_path / "runner"))
    (tmp_path / "runner").mkdir()
    other = {name: value.replace("1", "2") for name, value in KEYS.items()}
    emit(
        aws_credentials(DB_PASSWORD="db-password-0001"), platform, args("profile", profile="build")
    )
    emit(Credentials("aws", other, {"AWS_REGION": "us-west-2"}), platform, args("profile"))
    emit(aws_credentials(), platform, args("profile", profile="build"))  # replaced, not duplicated
    directory = tmp_path / "runner" / "tollgate-aws"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "credentials").stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / "config").stat().st_mode) == 0o600
    assert read_ini(directory / "credentials") == {
        "build": {key.lower(): value for key, value in KEYS.items()},
        "default": {key.lower(): value for key, value in other.items()},
    }
    assert read_ini(directory / "config") == {
        "profile build": {"region": REGION},
        "default": {"region": "us-west-2"},
    }
    exported = parse_runner_file(files["GITHUB_ENV"].read_text())
    names = [name for name, _ in exported]
    # No keys and no region in the environment: those would override every profile.
    assert not set(names) & {*KEYS, "AWS_REGION", "AWS_DEFAULT_REGION"}
    assert ("DB_PASSWORD", "db-password-0001") in exported
    assert exported[-3:] == [
        ("AWS_CONFIG_FILE", str(directory / "config")),
        ("AWS_SHARED_CREDENTIALS_FILE", str(directory / "credentials")),
        ("AWS_PROFILE", "build"),
    ]
    assert capfd.readouterr().out == ""


def test_profile_directories_off_github(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    gitlab = GitLabPlatform(
        PlatformOptions(dotenv_path=tmp_path / "o.env"), environ={"CI_JOB_ID": "55"}
    )
    emit(aws_credentials(), gitlab, args("profile"))
    assert (tmp_path / "tmp" / "tollgate-aws-job55" / "credentials").exists()
    emit(aws_credentials(), LocalPlatform(environ={}), args("profile"))
    local_dir = tmp_path / "tmp" / f"tollgate-aws-{os.getuid()}"
    out = capfd.readouterr().out
    assert f"export AWS_SHARED_CREDENTIALS_FILE='{local_dir / 'credentials'}'" in out
    for value in KEYS.values():
        assert value not in out


def test_profile_directory_must_be_private(tmp_path: Path) -> None:
    platform = LocalPlatform(environ={})
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(ConfigError, match="not a directory"):
        emit(aws_credentials(), platform, args("profile", profile_dir=str(tmp_path / "link")))
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigError, match="writable by other users"):
        emit(aws_credentials(), platform, args("profile", profile_dir=str(shared)))
    assert not (shared / "credentials").exists()
    # A default directory left open by someone (us) earlier is closed again.
    default = tmp_path / "tmp" / f"tollgate-aws-{os.getuid()}"
    default.mkdir(mode=0o755)
    default.chmod(0o755)
    emit(aws_credentials(), platform, args("profile"))
    assert stat.S_IMODE(default.stat().st_mode) == 0o700


# Refusals


@pytest.mark.parametrize(
    ("credentials", "mode", "message"),
    [
        (
            Credentials("vault", {"VAULT_TOKEN": "hvs.secret-token"}),
            "profile",
            "for AWS credentials only",
        ),
        (
            Credentials("gcp", {"TOKEN": "ya29.secret-token"}),
            "credential-process",
            "AWS credentials only",
        ),
        (
            aws_credentials(DB="db-password-0001"),
            "credential-process",
            "cannot carry other secrets",
        ),
        (aws_credentials(), "yaml", "unknown output mode"),
    ],
)
def test_modes_that_cannot_carry_the_credentials_are_refused(
    credentials: Credentials, mode: str, message: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError, match=message):
        emit(credentials, LocalPlatform(environ={}), args(mode))
    assert capfd.readouterr().out == ""


@pytest.mark.parametrize(
    ("platform_name", "mode", "refused"),
    [
        ("local", "env", True),
        ("local", "shell", True),
        ("gitlab", "json", True),
        ("github", "credential-process", True),
        ("github", "env", False),
        ("local", "profile", False),
    ],
)
def test_secrets_are_not_printed_to_a_terminal(
    platform_name: str,
    mode: str,
    refused: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(emit_module, "_stdout_is_terminal", lambda: True)
    platforms: dict[str, Platform] = {
        "github": github(tmp_path)[0],
        "gitlab": GitLabPlatform(PlatformOptions(dotenv_path=tmp_path / "o.env"), environ={}),
        "local": LocalPlatform(environ={}),
    }
    if refused:
        with pytest.raises(UsageError, match="which is a terminal"):
            emit(aws_credentials(), platforms[platform_name], args(mode))
        assert capfd.readouterr().out == ""
    else:
        emit(aws_credentials(), platforms[platform_name], args(mode))


# End to end: no secret outside its sink.

SINKS = {
    "env": "GITHUB_ENV",
    "shell": "stdout",
    "json": "stdout",
    "profile": "profile",
    "credential-process": "stdout",
}


@pytest.mark.parametrize("mode", list(SINKS))
def test_no_secret_leaks_outside_its_sink_on_github(
    mode: str, moto_server: MotoServer, tmp_path: Path
) -> None:
    suffix = os.urandom(4).hex()
    password = f"leak-db-password-{os.urandom(8).hex()}"
    api_token = f"leak-api-token-{os.urandom(8).hex()}"
    manager = moto_server.client("secretsmanager", region=REGION)
    manager.create_secret(Name=f"leak/db-{suffix}", SecretString=json.dumps({"password": password}))
    manager.create_secret(Name=f"leak/api-{suffix}", SecretString=api_token)
    fetched = [] if mode == "credential-process" else [password, api_token]
    secret_args = [] if not fetched else [
        "--secret", f"DB_PASSWORD=leak/db-{suffix}#password", "--secret", f"API_TOKEN=leak/api-{suffix}",
    ]  # fmt: skip
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    files = {
        name: tmp_path / name for name in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")
    }
    for path in files.values():
        path.touch()
    with FakeGitHubOIDC() as oidc:
        env = {
            **oidc.env(),
            **{name: str(path) for name, path in files.items()},
            "RUNNER_TEMP": str(runner_temp),
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_server.url,
        }
        result = tollgate(
            "creds", "aws", "--platform", "github", "--role-arn", ROLE, "--region", REGION,
            "--sts-endpoint", moto_server.url, "--output", mode, *secret_args, env=env, cwd=tmp_path,
        )  # fmt: skip
        token = oidc.issued[0]
    assert result.returncode == 0, result.stderr
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    profile_file = runner_temp / "tollgate-aws" / "credentials"
    github_env = dict(parse_runner_file(files["GITHUB_ENV"].read_text()))
    # Read the keys back from where they were meant to go.
    if SINKS[mode] == "GITHUB_ENV":
        keys = [github_env[name] for name in KEYS]
    elif mode == "credential-process":
        document = json.loads(stdout)
        keys = [document[name] for name in ("AccessKeyId", "SecretAccessKey", "SessionToken")]
    elif mode == "json":
        keys = [json.loads(stdout)["secrets"][name] for name in KEYS]
    elif mode == "shell":
        keys = list(eval_in_bash(stdout, list(KEYS)).values())
    else:
        keys = list(read_ini(profile_file)["default"].values())
    assert moto_server.caller_identity(*keys)["Arn"].endswith("assumed-role/deploy/tollgate")
    secrets = [*keys, *fetched, token]

    # Every secret is masked on stderr, and stderr holds it nowhere else.
    mask_lines = {line for line in stderr.splitlines() if line.startswith("::add-mask::")}
    for secret in secrets:
        assert f"::add-mask::{secret}" in mask_lines
    other_stderr = "\n".join(line for line in stderr.splitlines() if line not in mask_lines)

    allowed = {
        "stdout": stdout if SINKS[mode] == "stdout" else "",
        "GITHUB_ENV": files["GITHUB_ENV"].read_text(),
        "profile": profile_file.read_text() if mode == "profile" else "",
    }
    sinks_of = {secret: _sinks_holding(secret, allowed) for secret in secrets}
    for secret in keys:
        assert sinks_of[secret] == {SINKS[mode]}
    for secret in fetched:
        assert sinks_of[secret] == ({"stdout"} if mode in ("shell", "json") else {"GITHUB_ENV"})
    assert sinks_of[token] == set()

    forbidden = {
        "stderr (not ::add-mask::)": other_stderr,
        "stdout": "" if SINKS[mode] == "stdout" else stdout,
    }
    for path in tmp_path.rglob("*"):
        if path.is_file() and path not in (files["GITHUB_ENV"], profile_file):
            forbidden[str(path)] = path.read_text(errors="replace")
    for secret in secrets:
        for name, text in forbidden.items():
            assert secret not in text, f"a secret leaked into {name}"


def _sinks_holding(secret: str, sinks: dict[str, str]) -> set[str]:
    return {name for name, text in sinks.items() if secret in text}


def test_debug_logs_of_botocore_leak_nothing(moto_server: MotoServer, tmp_path: Path) -> None:
    # -vv lets botocore log requests and responses; the keys and token must stay out.
    suffix = os.urandom(4).hex()
    password = f"debug-db-password-{os.urandom(8).hex()}"
    moto_server.client("secretsmanager", region=REGION).create_secret(
        Name=f"debug/db-{suffix}", SecretString=password
    )
    token = jwt.sign(
        {"iss": "https://gitlab.example.com", "aud": "sts.amazonaws.com", "sub": "p:x"}
    )
    (tmp_path / "token").write_text(token)
    result = tollgate(
        "-vv", "creds", "aws", "--platform", "local", "--role-arn", ROLE, "--region", REGION,
        "--token-file", str(tmp_path / "token"), "--sts-endpoint", moto_server.url, "--output", "json",
        "--secret", f"DB_PASSWORD=debug/db-{suffix}",
        env={"AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_server.url},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stderr = result.stderr.decode()
    assert "DEBUG" in stderr or "botocore" in stderr, "botocore's debug logs are on"
    document = json.loads(result.stdout)
    for secret in [*document["secrets"].values(), token]:
        assert secret not in stderr
    assert document["secrets"]["DB_PASSWORD"] == password
