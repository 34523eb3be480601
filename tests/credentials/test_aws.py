"""`tollgate creds aws`: success paths against moto, failure paths against the fake STS."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import clean_env, tollgate
from tests.fakes import jwt
from tests.fakes.github_oidc import FakeGitHubOIDC
from tests.fakes.sts import VERIFICATION_KEY_MESSAGE, FakeSTS, Fault
from tests.helpers import CI_PREFIXES, isolate, parse_runner_file
from tollgate._cli import main
from tollgate.credentials import aws as aws_module
from tollgate.credentials.aws import (
    AwsProvider,
    RetryPolicy,
    SecretRef,
    default_session_name,
    sanitize_session_name,
)
from tollgate.credentials.claims import token_claims
from tollgate.errors import ConfigError, ExitCode, ExternalError, UsageError
from tollgate.masking import secrets as secrets_module

if TYPE_CHECKING:
    from tests.fakes.moto import MotoServer

pytest_plugins = ("tests.fakes.moto",)

DEFAULT_ACCOUNT = "123456789012"  # where moto keeps resources made with test keys

ROLE = f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/deploy"
OTHER_ACCOUNT = "210987654321"
TARGET_ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/target"
REGION = "eu-west-1"
ISSUER = "https://token.actions.githubusercontent.com"
SUB = "repo:octo-org/octo-repo:ref:refs/heads/main"
FAST = RetryPolicy(
    max_attempts=4, base_delay=0.01, max_delay=0.02, budget=10.0, connect_timeout=1, read_timeout=1
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS or CI settings, proxies or secrets from the machine running the tests."""
    isolate(monkeypatch, (*CI_PREFIXES, "AWS_"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "absent-aws-credentials"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def sts() -> Iterator[FakeSTS]:
    with FakeSTS() as server:
        yield server


def github_token(**overrides: Any) -> str:
    """A token with GitHub's claims for a push to main (oidc-anchors.md §7.1)."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "sts.amazonaws.com",
        "sub": SUB,
        "repository": "octo-org/octo-repo",
        "run_id": "3000",
        "iat": now,
        "nbf": now - 600,
        "exp": now + 300,
        **overrides,
    }
    return jwt.sign(claims)


def token_file(tmp_path: Path, **overrides: Any) -> Path:
    path = tmp_path / "token.jwt"
    path.write_text(github_token(**overrides))
    return path


def creds(
    *args: str,
    platform: str = "local",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """`tollgate creds aws --platform P --region eu-west-1 ARGS`."""
    return tollgate(
        "creds", "aws", "--platform", platform, "--region", REGION, *args, env=env, cwd=cwd
    )


def eval_in_bash(script: str) -> dict[str, str]:
    """``eval`` tollgate's stdout in bash and read back the AWS variables it set."""
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION")
    printf = " ".join(f'"${name}"' for name in names)
    result = subprocess.run(
        ["bash", "-c", f'eval "$1" && printf "%s\\n" {printf}', "bash", script],
        capture_output=True,
        check=True,
    )
    return dict(zip(names, result.stdout.decode().splitlines(), strict=True))


def identity_of(moto: MotoServer, values: dict[str, str]) -> Any:
    return moto.caller_identity(
        values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"], values["AWS_SESSION_TOKEN"]
    )


def static_token_source(token: str) -> tuple[Callable[[str | None], str], list[str | None]]:
    calls: list[str | None] = []

    def source(audience: str | None) -> str:
        calls.append(audience)
        return token

    return source, calls


# Success paths, end to end through the CLI, against moto.


def test_eval_of_the_default_output_gives_working_keys(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    # The documented local/GitLab usage: eval "$(tollgate creds aws ...)".
    result = creds(
        "--role-arn", ROLE, "--token-file", str(token_file(tmp_path)), "--sts-endpoint", moto_server.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    values = eval_in_bash(result.stdout.decode())
    assert values["AWS_REGION"] == REGION
    identity = identity_of(moto_server, values)
    assert identity["Arn"] == f"arn:aws:sts::{DEFAULT_ACCOUNT}:assumed-role/deploy/tollgate"
    # Local: the facts are logged on stderr, never mixed into the eval'd stdout.
    assert f"aws-account-id={DEFAULT_ACCOUNT}" in result.stderr.decode()
    assert b"aws-account-id" not in result.stdout


def test_shell_output_on_gitlab_and_facts_in_the_dotenv_report(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    env = {
        "GITLAB_CI": "true",
        "CI_PROJECT_ID": "42",
        "CI_PIPELINE_ID": "1001",
        "AWS_ID_TOKEN": github_token(
            iss="https://gitlab.example.com", sub="project_path:g/p:ref_type:branch:ref:main"
        ),
    }
    result = creds(
        "--role-arn", ROLE, "--token-env", "AWS_ID_TOKEN", "--sts-endpoint", moto_server.url,
        "--output", "shell", platform="gitlab", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert all(line.startswith("export ") for line in out.splitlines())
    values = eval_in_bash(out)
    assert values["AWS_REGION"] == REGION
    identity = identity_of(moto_server, values)
    assert identity["Arn"].endswith("assumed-role/deploy/GitLab-42-1001")
    dotenv = dict(
        line.split("=", 1) for line in (tmp_path / "tollgate.env").read_text().splitlines()
    )
    assert dotenv["aws_account_id"] == DEFAULT_ACCOUNT
    assert dotenv["aws_arn"] == identity["Arn"]
    assert dotenv["aws_expiration"].endswith("Z")
    for secret in values.values():
        if secret != REGION:
            assert secret not in (tmp_path / "tollgate.env").read_text()
            assert secret.encode() not in result.stderr


def test_json_output_with_role_chaining_and_allowed_accounts(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    result = creds(
        "--role-arn", ROLE, "--chain-role-arn", TARGET_ROLE, "--allowed-account-id",
        f"{OTHER_ACCOUNT},999999999999", "--token-file", str(token_file(tmp_path)),
        "--sts-endpoint", moto_server.url, "--output", "json", "--duration", "900",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"provider", "secrets", "environment", "facts", "expires_at"}
    assert document["provider"] == "aws"
    assert document["environment"] == {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
    identity = identity_of(moto_server, document["secrets"])
    # The keys are the chained role's, in the other account.
    assert identity["Account"] == OTHER_ACCOUNT
    assert identity["Arn"] == f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/target/tollgate"
    assert document["facts"] == {
        "aws-account-id": OTHER_ACCOUNT,
        "aws-arn": identity["Arn"],
        "aws-expiration": document["expires_at"],
    }
    expires = datetime.strptime(document["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc
    )
    assert 800 < (expires - datetime.now(timezone.utc)).total_seconds() <= 900


def test_allowed_account_ids_are_checked_before_and_after_the_exchange(sts: FakeSTS) -> None:
    # Before: the role ARN already names a foreign account, so nothing is sent.
    with pytest.raises(ConfigError, match=f"would get credentials for AWS account {OTHER_ACCOUNT}"):
        AwsProvider(TARGET_ROLE, region=REGION, allowed_account_ids=[DEFAULT_ACCOUNT], environ={})
    # After: what STS actually returned is what counts.
    foreign = f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/deploy/tollgate"
    sts.raw(200, SUCCESS_XML.format(arn=foreign).encode())
    provider = AwsProvider(
        ROLE, region=REGION, sts_endpoint=sts.url, allowed_account_ids=[DEFAULT_ACCOUNT], environ={}
    )
    with pytest.raises(ConfigError, match=f"got credentials for AWS account {OTHER_ACCOUNT}"):
        provider.exchange(static_token_source(github_token())[0])


SUCCESS_XML = (
    '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
    "<AssumeRoleWithWebIdentityResult><AssumedRoleUser><Arn>{arn}</Arn>"
    "<AssumedRoleId>AROAEXAMPLE:tollgate</AssumedRoleId></AssumedRoleUser><Credentials>"
    "<AccessKeyId>ASIAEXAMPLEEXAMPLE12</AccessKeyId>"
    "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>"
    "<SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE</SessionToken>"
    "<Expiration>2099-10-24T23:00:23Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
    "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
    "</AssumeRoleWithWebIdentityResponse>"
)


def test_credential_process_output_is_what_an_sdk_runs(
    moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = token_file(tmp_path)
    command = [
        sys.executable, "-m", "tollgate", "creds", "aws", "--platform", "local", "--role-arn", ROLE,
        "--region", REGION, "--token-file", str(token), "--sts-endpoint", moto_server.url,
        "--output", "credential-process",
    ]  # fmt: skip
    # botocore itself runs the command from a profile and signs with what it printed.
    import botocore.session

    config = tmp_path / "sdk-config"
    config.write_text(f"[profile cp]\ncredential_process = {' '.join(command)}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_server.url)
    session = botocore.session.Session(profile="cp")
    client = session.create_client("sts", region_name=REGION)
    assert client.get_caller_identity()["Arn"].endswith(":assumed-role/deploy/tollgate")


def test_github_env_output_masks_first_and_writes_the_runner_files(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    files = {name: tmp_path / name for name in ("GITHUB_ENV", "GITHUB_OUTPUT")}
    for path in files.values():
        path.touch()
    with FakeGitHubOIDC() as oidc:
        env = {**oidc.env(), **{k: str(v) for k, v in files.items()}, "GITHUB_RUN_ID": "777"}
        result = creds(
            "--role-arn", ROLE, "--sts-endpoint", moto_server.url, platform="github", env=env
        )
        token = oidc.issued[0]
        audiences = [request.audience for request in oidc.token_requests]
    assert result.returncode == 0, result.stderr
    assert audiences == ["sts.amazonaws.com"]
    assert result.stdout == b""
    exported = dict(parse_runner_file(files["GITHUB_ENV"].read_text()))
    assert set(exported) == {
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
    }  # fmt: skip
    identity = identity_of(moto_server, exported)
    assert identity["Arn"].endswith("assumed-role/deploy/GitHubActions-777")
    outputs = dict(parse_runner_file(files["GITHUB_OUTPUT"].read_text()))
    assert outputs == {
        "aws-account-id": DEFAULT_ACCOUNT,
        "aws-arn": identity["Arn"],
        "aws-expiration": outputs["aws-expiration"],
    }
    assert_masked_before_use(
        result.stderr.decode(),
        [
            token,
            *(
                exported[name]
                for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
            ),
        ],
    )


def assert_masked_before_use(stderr: str, secrets: list[str]) -> None:
    """Each secret is in an ``::add-mask::`` line before any other line that mentions it."""
    lines = stderr.splitlines()
    for secret in secrets:
        masks = [i for i, line in enumerate(lines) if line == f"::add-mask::{secret}"]
        uses = [
            i
            for i, line in enumerate(lines)
            if secret in line and not line.startswith("::add-mask::")
        ]
        assert masks, "a secret was never masked"
        assert not uses or masks[0] < uses[0], "a secret was printed before it was masked"
        assert not uses, "a secret appeared on stderr outside ::add-mask::"


def test_github_profiles_for_two_roles_in_one_job(
    moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    files = {name: tmp_path / name for name in ("GITHUB_ENV", "GITHUB_OUTPUT")}
    for path in files.values():
        path.touch()
    with FakeGitHubOIDC() as oidc:
        env = {
            **oidc.env(),
            **{k: str(v) for k, v in files.items()},
            "RUNNER_TEMP": str(runner_temp),
        }
        first = creds(
            "--role-arn",
            ROLE,
            "--sts-endpoint",
            moto_server.url,
            "--profile",
            "build",
            platform="github",
            env=env,
        )
        second = creds(
            "--role-arn", ROLE, "--chain-role-arn", TARGET_ROLE, "--sts-endpoint", moto_server.url,
            "--profile", "prod", "--output", "profile", platform="github", env=env,
        )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    directory = runner_temp / "tollgate-aws"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in ("config", "credentials"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    exported = dict(parse_runner_file(files["GITHUB_ENV"].read_text()))
    # Keys live in the profile files only; the environment names the files and profile.
    assert exported == {
        "AWS_CONFIG_FILE": str(directory / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(directory / "credentials"),
        "AWS_PROFILE": "prod",
    }
    import botocore.session

    arns = {}
    for profile in ("build", "prod"):
        monkeypatch.setenv("AWS_CONFIG_FILE", exported["AWS_CONFIG_FILE"])
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", exported["AWS_SHARED_CREDENTIALS_FILE"])
        session = botocore.session.Session(profile=profile)
        assert session.get_config_variable("region") == REGION
        client = session.create_client("sts", endpoint_url=moto_server.url)
        arns[profile] = client.get_caller_identity()["Arn"]
    assert arns == {
        "build": f"arn:aws:sts::{DEFAULT_ACCOUNT}:assumed-role/deploy/tollgate",
        "prod": f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/target/tollgate",
    }


def test_secrets_manager_values_become_masked_variables(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    suffix = os.urandom(4).hex()
    password = f"db-password-{os.urandom(8).hex()}"
    api_token = f"api-token-{os.urandom(8).hex()}"
    manager = moto_server.client("secretsmanager", region=REGION)
    manager.create_secret(
        Name=f"prod/db-{suffix}", SecretString=json.dumps({"password": password, "port": 5432})
    )
    arn = manager.create_secret(Name=f"prod/api-{suffix}", SecretString=api_token)["ARN"]
    files = {name: tmp_path / name for name in ("GITHUB_ENV", "GITHUB_OUTPUT")}
    for path in files.values():
        path.touch()
    with FakeGitHubOIDC() as oidc:
        env = {
            **oidc.env(),
            **{k: str(v) for k, v in files.items()},
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_server.url,
        }
        result = creds(
            "--role-arn", ROLE, "--sts-endpoint", moto_server.url,
            "--secret", f"DB_PASSWORD=prod/db-{suffix}#password",
            "--secret", f"DB_PORT=prod/db-{suffix}#port",
            "--secret", f"API_TOKEN={arn}",  # an ARN: colons and all
            platform="github", env=env,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    exported = dict(parse_runner_file(files["GITHUB_ENV"].read_text()))
    assert exported["DB_PASSWORD"] == password
    assert exported["DB_PORT"] == "5432"
    assert exported["API_TOKEN"] == api_token
    assert_masked_before_use(result.stderr.decode(), [password, api_token])
    assert password not in files["GITHUB_OUTPUT"].read_text()


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("prod/missing-{suffix}", "ResourceNotFoundException"),
        ("prod/doc-{suffix}#nope", "has no key 'nope'"),
        ("prod/text-{suffix}#user", "is not a JSON object"),
    ],
)
def test_secrets_manager_failures_are_configuration_errors(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, reference: str, expected: str
) -> None:
    suffix = os.urandom(4).hex()
    manager = moto_server.client("secretsmanager", region=REGION)
    manager.create_secret(
        Name=f"prod/doc-{suffix}",
        SecretString=json.dumps({"user": "app", "password": "hunter2-long"}),
    )
    manager.create_secret(Name=f"prod/text-{suffix}", SecretString="plain-hunter2-long")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_server.url)
    provider = AwsProvider(
        ROLE, region=REGION, sts_endpoint=moto_server.url, environ={},
        secrets=[SecretRef.parse("DB=" + reference.format(suffix=suffix))],
    )  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        provider.exchange(static_token_source(github_token())[0])
    text = caught.value.diagnostics()
    assert expected in text
    assert "hunter2-long" not in text


# botocore is loaded by the exchange only.

_PROBE = """\
import runpy, sys
sys.argv = ["tollgate", *sys.argv[1:]]
try:
    runpy.run_module("tollgate", run_name="__main__")
except SystemExit as exit:
    status = exit.code
print("botocore" in sys.modules, status, file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("argv", "imported", "status"),
    [
        (["creds", "aws", "--help"], False, 0),
        (["creds", "aws", "--role-arn", "not-an-arn", "--region", REGION], False, 2),
        (["creds", "aws", "--role-arn", ROLE, "--region", REGION, "--output", "json"], True, 0),
    ],
)
def test_only_the_exchange_imports_botocore(
    argv: list[str], imported: bool, status: int, moto_server: MotoServer, tmp_path: Path
) -> None:
    extra = ["--token-file", str(token_file(tmp_path)), "--sts-endpoint", moto_server.url]
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv, "--platform", "local", *([] if status else extra)],
        capture_output=True,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.stderr.decode().strip().splitlines()[-1] == f"{imported} {status}", result.stderr


# Usage errors: exit 2 before any token or network.


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role-arn", "deploy"], "is not an IAM role ARN"),
        (["--role-arn", ROLE, "--region", "Europe"], "is not an AWS region name"),
        (["--role-arn", ROLE, "--session-name", "has space"], "is not a valid role session name"),
        (["--role-arn", ROLE, "--duration", "100"], "a session lasts 900 to 43200 seconds"),
        (
            ["--role-arn", ROLE, "--chain-role-arn", TARGET_ROLE, "--duration", "7200"],
            "at most 3600",
        ),
        (["--role-arn", ROLE, "--secret", "X=#key"], "cannot read the secret reference"),
        (
            ["--role-arn", ROLE, "--secret", "A=x", "--output", "credential-process"],
            "cannot carry other secrets",
        ),
        (
            ["--role-arn", ROLE, "--session-policy", "/nonexistent/policy.json"],
            "cannot read the session policy",
        ),
        (["--role-arn", ROLE, "--managed-policy-arn", "ReadOnly"], "is not an IAM policy ARN"),
        (["--role-arn", ROLE, "--allowed-account-id", "12"], "is not an AWS account id"),
        (
            ["--role-arn", ROLE, "--allowed-account-id", OTHER_ACCOUNT],
            "not one of the allowed accounts",
        ),
    ],
)
def test_bad_options_exit_2_without_a_request(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fixed = ["--sts-endpoint", "http://127.0.0.1:9", "--token-file", "/nonexistent/token"]
    status = main(["creds", "aws", "--platform", "local", "--region", REGION, *args, *fixed])
    assert status == ExitCode.USAGE
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


# Against the fake STS: the wire format, retry classification, time bounds, messages.


def test_the_request_is_an_unsigned_form_post_with_every_option(sts: FakeSTS) -> None:
    token = github_token()
    policy = '{\n  "Version": "2012-10-17",\n  "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]\n}'
    provider = AwsProvider(
        ROLE,
        region=REGION,
        sts_endpoint=sts.url,
        duration=1800,
        session_policy=policy,
        managed_policy_arns=[
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            f"arn:aws:iam::{DEFAULT_ACCOUNT}:policy/x",
        ],
        retry=FAST,
        environ={"GITHUB_RUN_ID": "9001"},
    )
    source, calls = static_token_source(token)
    credentials = provider.exchange(source)
    assert calls == ["sts.amazonaws.com"]
    (request,) = sts.requests
    assert request.method == "POST"
    assert request.path == "/"
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert not request.signed
    assert request.params == {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "RoleArn": ROLE,
        "RoleSessionName": "GitHubActions-9001",
        "WebIdentityToken": token,
        "DurationSeconds": "1800",
        "Policy": json.dumps(json.loads(policy), separators=(",", ":")),
        "PolicyArns.member.1.arn": "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "PolicyArns.member.2.arn": f"arn:aws:iam::{DEFAULT_ACCOUNT}:policy/x",
    }
    (issued,) = sts.issued
    assert credentials.secrets == {
        "AWS_ACCESS_KEY_ID": issued.access_key_id,
        "AWS_SECRET_ACCESS_KEY": issued.secret_access_key,
        "AWS_SESSION_TOKEN": issued.session_token,
    }
    assert credentials.expires_at == issued.expiration
    assert credentials.facts["aws-arn"] == issued.arn
    assert credentials.facts["aws-expiration"] == issued.expiration.strftime("%Y-%m-%dT%H:%M:%SZ")
    # Registered with the process at once, so any later text redacts them.
    assert secrets_module.process_secrets().contains_secret(issued.secret_access_key)


def test_chaining_signs_with_the_first_keys_and_narrows_the_last_hop(sts: FakeSTS) -> None:
    provider = AwsProvider(
        ROLE,
        region=REGION,
        sts_endpoint=sts.url,
        chain_role_arns=[f"arn:aws:iam::{OTHER_ACCOUNT}:role/middle", TARGET_ROLE],
        duration=3000,
        managed_policy_arns=["arn:aws:iam::aws:policy/ReadOnlyAccess"],
        retry=FAST,
        environ={},
    )
    credentials = provider.exchange(static_token_source(github_token())[0])
    first, middle, last = sts.requests
    assert [r.action for r in sts.requests] == [
        "AssumeRoleWithWebIdentity",
        "AssumeRole",
        "AssumeRole",
    ]
    # Earlier hops live as briefly as AWS allows and carry no session policy.
    assert first.params["DurationSeconds"] == middle.params["DurationSeconds"] == "900"
    assert "PolicyArns.member.1.arn" not in first.params
    assert "PolicyArns.member.1.arn" not in middle.params
    assert last.params["DurationSeconds"] == "3000"
    assert last.params["PolicyArns.member.1.arn"] == "arn:aws:iam::aws:policy/ReadOnlyAccess"
    # Each hop is signed with the keys of the one before (the fake checks key and token).
    assert f"Credential={sts.issued[0].access_key_id}/" in middle.headers["authorization"]
    assert middle.headers["x-amz-security-token"] == sts.issued[0].session_token
    assert f"Credential={sts.issued[1].access_key_id}/" in last.headers["authorization"]
    assert credentials.facts["aws-account-id"] == OTHER_ACCOUNT
    assert credentials.secrets["AWS_ACCESS_KEY_ID"] == sts.issued[2].access_key_id


def test_a_refused_chain_hop_names_both_roles(sts: FakeSTS) -> None:
    sts.enqueue(
        Fault(), Fault(code="AccessDenied", message="not authorized to perform sts:AssumeRole")
    )
    provider = AwsProvider(
        ROLE,
        region=REGION,
        sts_endpoint=sts.url,
        chain_role_arns=[TARGET_ROLE],
        retry=FAST,
        environ={},
    )
    with pytest.raises(ConfigError) as caught:
        provider.exchange(static_token_source(github_token())[0])
    text = caught.value.diagnostics()
    assert f"assume {TARGET_ROLE} (role chaining)" in text
    assert f"{TARGET_ROLE} must trust {ROLE}" in text
    assert len(sts.requests) == 2


REJECTIONS = [
    "AccessDenied",
    "IDPRejectedClaim",
    "InvalidIdentityToken",
    "ExpiredTokenException",
    "MalformedPolicyDocument",
    "PackedPolicyTooLarge",
    "ValidationError",
    "RegionDisabledException",
]


@pytest.mark.parametrize("code", REJECTIONS)
def test_rejections_fail_at_once_with_the_claims_and_never_the_token(
    sts: FakeSTS, code: str
) -> None:
    sts.fail(code, times=5)
    token = github_token()
    provider = AwsProvider(ROLE, region=REGION, sts_endpoint=sts.url, retry=FAST, environ={})
    with pytest.raises(ConfigError) as caught:
        provider.exchange(static_token_source(token)[0])
    assert len(sts.requests) == 1, "a rejection must not be retried"
    error = caught.value
    assert error.exit_code == ExitCode.USAGE
    text = error.diagnostics()
    assert f"assume {ROLE}: {code}" in text
    for claim in (f"iss: {ISSUER}", "aud: sts.amazonaws.com", f"sub: {SUB}"):
        assert claim in text
    assert token not in text
    for part in token.split("."):
        assert part not in text
    assert error.hint


def test_access_denied_hint_is_the_matching_trust_policy(sts: FakeSTS) -> None:
    sts.fail("AccessDenied")
    provider = AwsProvider(ROLE, region=REGION, sts_endpoint=sts.url, retry=FAST, environ={})
    with pytest.raises(ConfigError) as caught:
        provider.exchange(static_token_source(github_token())[0])
    hint = caught.value.hint or ""
    assert (
        f'"Federated": "arn:aws:iam::{DEFAULT_ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"'
        in hint
    )
    assert '"Action": "sts:AssumeRoleWithWebIdentity"' in hint
    assert f'"token.actions.githubusercontent.com:sub": "{SUB}"' in hint
    assert '"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"' in hint


RETRYABLE = {
    "Throttling": [Fault(code="Throttling")],
    "ThrottlingException": [Fault(code="ThrottlingException")],
    "RequestLimitExceeded": [Fault(code="RequestLimitExceeded")],
    "IDPCommunicationError": [Fault(code="IDPCommunicationError")],
    "verification key": [Fault(code="InvalidIdentityToken", message=VERIFICATION_KEY_MESSAGE)],
    "500": [Fault(code="InternalFailure")],
    "503": [Fault(code="ServiceUnavailable")],
    "502 html": [Fault(status=502, body=b"<html>Bad Gateway</html>", content_type="text/html")],
    "reset": [Fault(reset=True)],
    "disconnect": [Fault(disconnect=True)],
    "timeout": [Fault(delay=3.0)],
}


@pytest.mark.parametrize("name", list(RETRYABLE))
def test_transient_failures_are_retried(sts: FakeSTS, name: str) -> None:
    faults = RETRYABLE[name]
    sts.enqueue(*faults, *faults)
    provider = AwsProvider(
        ROLE, region=REGION, sts_endpoint=sts.url, environ={},
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, read_timeout=0.5),
    )  # fmt: skip
    credentials = provider.exchange(static_token_source(github_token())[0])
    assert len(sts.requests) == 3
    assert credentials.secrets["AWS_ACCESS_KEY_ID"] == sts.issued[0].access_key_id


def test_retries_stop_after_the_last_attempt_without_sleeping(
    sts: FakeSTS, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(aws_module.time, "sleep", sleeps.append)
    sts.fail("Throttling", times=10)
    provider = AwsProvider(
        ROLE, region=REGION, sts_endpoint=sts.url, environ={},
        retry=RetryPolicy(max_attempts=4, base_delay=0.4, max_delay=1.0),
    )  # fmt: skip
    with pytest.raises(ExternalError) as caught:
        provider.exchange(static_token_source(github_token())[0])
    assert len(sts.requests) == 4
    assert len(sleeps) == 3, "no sleep after the last attempt"
    # Full jitter: each wait is within [0, min(max, base * 2**n)).
    for attempt, delay in enumerate(sleeps):
        assert 0 <= delay < min(1.0, 0.4 * 2**attempt)
    assert caught.value.exit_code == ExitCode.EXTERNAL
    assert "gave up after 4 attempts" in caught.value.message
    assert "Throttling: Rate exceeded" in caught.value.message
    assert f"sub: {SUB}" in caught.value.message


def test_the_time_budget_bounds_the_whole_exchange(sts: FakeSTS) -> None:
    sts.delay(30.0, times=10)
    provider = AwsProvider(
        ROLE, region=REGION, sts_endpoint=sts.url, environ={},
        retry=RetryPolicy(max_attempts=10, base_delay=0.01, budget=1.5, read_timeout=20),
    )  # fmt: skip
    started = time.monotonic()
    with pytest.raises(ExternalError):
        provider.exchange(static_token_source(github_token())[0])
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<AssumeRoleWithWebIdentityResponse><oops", "not a well-formed AWS response"),
        (b"<ListAllMyBucketsResult><Buckets/></ListAllMyBucketsResult>", "not the AWS response"),
    ],
)
def test_an_answer_that_is_not_sts_fails_at_once(sts: FakeSTS, body: bytes, message: str) -> None:
    sts.raw(200, body, times=5)
    provider = AwsProvider(ROLE, region=REGION, sts_endpoint=sts.url, retry=FAST, environ={})
    with pytest.raises(ExternalError) as caught:
        provider.exchange(static_token_source(github_token())[0])
    assert message in caught.value.message
    assert len(sts.requests) == 1


def test_a_token_about_to_expire_is_renewed_before_a_retry(sts: FakeSTS) -> None:
    sts.fail("Throttling")
    tokens = [github_token(exp=int(time.time()) + 20, jti="old"), github_token(jti="new")]
    calls: list[str | None] = []

    def source(audience: str | None) -> str:
        calls.append(audience)
        return tokens[len(calls) - 1]

    provider = AwsProvider(ROLE, region=REGION, sts_endpoint=sts.url, retry=FAST, environ={})
    provider.exchange(source)
    assert calls == ["sts.amazonaws.com", "sts.amazonaws.com"]
    assert [r.params["WebIdentityToken"] for r in sts.requests] == tokens


def test_cli_exit_codes_and_messages_against_the_fake(sts: FakeSTS, tmp_path: Path) -> None:
    token = token_file(tmp_path)
    sts.fail("AccessDenied")
    denied = creds("--role-arn", ROLE, "--token-file", str(token), "--sts-endpoint", sts.url)
    assert denied.returncode == ExitCode.USAGE
    err = denied.stderr.decode()
    for needle in (
        ROLE,
        f"sub: {SUB}",
        "aud: sts.amazonaws.com",
        f"iss: {ISSUER}",
        "hint:",
        "Traceback",
    ):
        assert (needle in err) is (needle != "Traceback"), needle
    assert token.read_text() not in err
    assert denied.stdout == b""

    sts.requests.clear()
    sts.fail("Throttling", times=10)
    throttled = creds(
        "--role-arn", ROLE, "--token-file", str(token), "--sts-endpoint", sts.url, "--max-attempts", "2",
    )  # fmt: skip
    assert throttled.returncode == ExitCode.EXTERNAL
    assert len(sts.requests) == 2
    assert b"gave up after 2 attempts" in throttled.stderr
    assert throttled.stdout == b""


# Units


def test_session_names_follow_the_ci_run_and_aws_rules() -> None:
    assert default_session_name({"GITHUB_RUN_ID": "123"}) == "GitHubActions-123"
    assert default_session_name({"CI_PROJECT_ID": "7", "CI_PIPELINE_ID": "99"}) == "GitLab-7-99"
    assert default_session_name({}) == "tollgate"
    assert sanitize_session_name("a b/c:d" + "x" * 80) == ("a-b-c-d" + "x" * 80)[:64]
    assert sanitize_session_name("é") == "--"


def test_secret_references() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db=x-AbCdEf"
    assert SecretRef.parse(f"DB={arn}#pass:word") == SecretRef("DB", arn, "pass:word")
    assert SecretRef.parse("TOKEN=prod/api") == SecretRef("TOKEN", "prod/api", None)
    # The other providers' form, with or without a name.
    assert SecretRef.parse(f"{arn}#pass:word | DB") == SecretRef("DB", arn, "pass:word")
    assert SecretRef.parse(" prod/api|TOKEN ") == SecretRef("TOKEN", "prod/api", None)
    assert SecretRef.parse("prod/db#password") == SecretRef(
        "PROD_DB_PASSWORD", "prod/db", "password"
    )
    assert SecretRef.parse(arn).name == "PROD_DB_X_ABCDEF"
    # A name that is not a variable name is not the NAME= form: the whole is a secret id.
    assert SecretRef.parse("1X=prod/api") == SecretRef("_1X_PROD_API", "1X=prod/api", None)
    for bad in ("X=", "X=prod#", "prod | ", " | NAME", "prod/api | 1BAD", "#key"):
        with pytest.raises(UsageError):
            SecretRef.parse(bad)


def test_token_claims_never_fail() -> None:
    assert token_claims("not a jwt") == {}
    assert token_claims("a.%%%.c") == {}
    assert token_claims(github_token())["sub"] == SUB


def test_missing_region_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no AWS region"):
        AwsProvider(ROLE, environ={})
    assert (
        AwsProvider(ROLE, environ={"AWS_DEFAULT_REGION": "us-west-2"}).options.region == "us-west-2"
    )


@pytest.mark.parametrize("url", ["sts.amazonaws.com", "ftp://sts.example.com", "https://"])
def test_the_endpoint_must_be_an_http_url(url: str) -> None:
    with pytest.raises(UsageError, match="is not an endpoint URL"):
        AwsProvider(ROLE, region=REGION, sts_endpoint=url, environ={})


def test_plain_http_to_another_host_is_allowed_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # LocalStack in a service container: allowed, but the token crosses the network in clear.
    AwsProvider(ROLE, region=REGION, sts_endpoint="http://localstack:4566", environ={})
    assert "plain HTTP: the OIDC token is sent unencrypted" in caplog.text
