"""`tollgate creds gcp` against a loopback Google (STS, IAM Credentials, Secret Manager)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import tollgate
from tests.fakes.gcp import FakeGCP, crc32c
from tests.fakes.github_oidc import FakeGitHubOIDC
from tests.helpers import (
    FAST_HTTP,
    SINK_CASES,
    assert_only_in_sinks,
    ci_token,
    creds_local,
    creds_platform,
    loopback_env,
    runner_file,
    shell_exports,
)
from tollgate.credentials import gcp
from tollgate.errors import ConfigError, ExternalError, UsageError

SA = "deployer@my-project.iam.gserviceaccount.com"


@pytest.fixture
def google() -> Iterator[FakeGCP]:
    with FakeGCP(
        secrets_data={
            "my-project/db-password/1": b"old",
            "my-project/db-password/2": b"p4ss\nw0rd-line",
        }
    ) as fake:
        yield fake


def endpoints(fake: FakeGCP) -> list[str]:
    return [
        "--sts-endpoint",
        f"{fake.base_url}/v1/token",
        "--iam-endpoint",
        fake.base_url,
        "--secret-manager-endpoint",
        fake.base_url,
    ]


def run_local(fake: FakeGCP, tmp_path: Path, token: str, *args: str, timeout: str = "10") -> Any:
    wip = ["--workload-identity-provider", fake.provider_name, *endpoints(fake)]
    return creds_local("gcp", tmp_path, token, *wip, "--timeout", timeout, *args)


def audience(fake: FakeGCP) -> str:
    return f"https://iam.googleapis.com/{fake.provider_name}"


def provider(fake: FakeGCP, **options: Any) -> gcp.GcpProvider:
    return gcp.GcpProvider(
        fake.provider_name,
        sts_endpoint=f"{fake.base_url}/v1/token",
        iam_endpoint=fake.base_url,
        secret_manager_endpoint=fake.base_url,
        http=FAST_HTTP,
        create_credentials_file=False,
        **options,
    )


# End to end through the CLI


def test_local_service_account_secret_and_credentials_file(google: FakeGCP, tmp_path: Path) -> None:
    token = ci_token(audience(google))
    result = run_local(
        google,
        tmp_path,
        token,
        "--service-account",
        SA,
        "--secret",
        "my-project/db-password | DB_PASSWORD",
        "--output",
        "shell",
    )
    assert result.returncode == 0, result.stderr.decode()
    env = shell_exports(result.stdout)
    [sa_token] = [t for t, i in google.issued.items() if i.kind == "sa"]
    assert env["CLOUDSDK_AUTH_ACCESS_TOKEN"] == sa_token
    assert env["GOOGLE_OAUTH_ACCESS_TOKEN"] == sa_token
    assert env["DB_PASSWORD"] == "p4ss\nw0rd-line"  # the latest version, multi-line intact
    for name in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "GCLOUD_PROJECT"):
        assert env[name] == "my-project"
    # The STS got the documented JSON body (§10.3) with the token audience it expects.
    sts = google.matching("/v1/token")[0]
    assert sts.headers["content-type"].startswith("application/json")
    assert sts.json() == {
        "audience": f"//iam.googleapis.com/{google.provider_name}",
        "grantType": "urn:ietf:params:oauth:grant-type:token-exchange",
        "requestedTokenType": "urn:ietf:params:oauth:token-type:access_token",
        "scope": "https://www.googleapis.com/auth/cloud-platform",
        "subjectTokenType": "urn:ietf:params:oauth:token-type:jwt",
        "subjectToken": token,
    }
    iam = google.matching(":generateAccessToken")[0].json()
    assert iam == {"scope": ["https://www.googleapis.com/auth/cloud-platform"], "lifetime": "3600s"}
    # The credentials file: in a new private temp dir (not the working directory), 0600.
    path = Path(env["GOOGLE_APPLICATION_CREDENTIALS"])
    assert env["CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE"] == str(path)
    assert path.parent.parent == tmp_path / "tmp"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = json.loads(path.read_text())
    assert config["type"] == "external_account"
    assert config["audience"] == f"//iam.googleapis.com/{google.provider_name}"
    assert config["token_url"] == f"{google.base_url}/v1/token"
    assert config["subject_token_type"] == "urn:ietf:params:oauth:token-type:jwt"
    assert config["credential_source"] == {
        "file": config["credential_source"]["file"],
        "format": {"type": "text"},
    }
    assert config["service_account_impersonation_url"] == (
        f"{google.base_url}/v1/projects/-/serviceAccounts/{SA}:generateAccessToken"
    )
    token_path = Path(config["credential_source"]["file"])
    assert token_path.read_text() == token
    assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
    # Facts are logged on a terminal (no outputs there); no secret on stderr.
    err = result.stderr.decode()
    assert "project_id=my-project" in err
    assert f"service_account={SA}" in err
    assert sa_token not in err and "p4ss" not in err and token not in err


def test_github_writes_to_runner_temp_never_the_request_bearer(tmp_path: Path) -> None:
    with FakeGitHubOIDC() as oidc, FakeGCP() as google:
        google.issuer = oidc.issuer
        runner_temp = tmp_path / "runner-temp"
        workspace = tmp_path / "workspace"
        workspace.mkdir()
        files = {name: tmp_path / name.lower() for name in ("GITHUB_ENV", "GITHUB_OUTPUT")}
        env = loopback_env(
            tmp_path,
            **oidc.env(),
            RUNNER_TEMP=str(runner_temp),
            GITHUB_WORKSPACE=str(workspace),
            **{name: str(path) for name, path in files.items()},
        )
        result = tollgate(
            "creds",
            "gcp",
            "--platform",
            "github",
            "--workload-identity-provider",
            google.provider_name,
            "--service-account",
            SA,
            *endpoints(google),
            env=env,
            cwd=workspace,
        )
        assert result.returncode == 0, result.stderr.decode()
        # The token was requested for the provider's default audience.
        assert [r.audience for r in oidc.token_requests] == [audience(google)]
        exported = runner_file(files["GITHUB_ENV"])
        outputs = runner_file(files["GITHUB_OUTPUT"])
        [sa_token] = [t for t, i in google.issued.items() if i.kind == "sa"]
        assert exported["CLOUDSDK_AUTH_ACCESS_TOKEN"] == sa_token
        path = Path(exported["GOOGLE_APPLICATION_CREDENTIALS"])
        assert path.parent == runner_temp
        assert not list(workspace.iterdir())
        assert outputs["project_id"] == "my-project"
        assert outputs["service_account"] == SA
        assert outputs["credentials_file_path"] == str(path)
        assert "expires_at" in outputs
        assert sa_token not in files["GITHUB_OUTPUT"].read_text()
        err = result.stderr.decode()
        assert f"::add-mask::{sa_token}" in err
        # The file holds the OIDC token itself: not the URL or bearer that mint new ones.
        written = b"".join(p.read_bytes() for p in runner_temp.iterdir())
        assert oidc.request_token.encode() not in written
        assert b"ACTIONS_ID_TOKEN_REQUEST" not in written
        assert b"/idtoken" not in written
        assert oidc.issued[0].encode() in written
        assert "url" not in json.loads(path.read_text())["credential_source"]


def test_direct_federation_without_service_account(google: FakeGCP, tmp_path: Path) -> None:
    result = run_local(
        google, tmp_path, ci_token(audience(google)), "--project", "p-1", "--output", "json"
    )
    assert result.returncode == 0, result.stderr.decode()
    document = json.loads(result.stdout)
    [federated] = list(google.issued)
    assert document["secrets"] == {
        "CLOUDSDK_AUTH_ACCESS_TOKEN": federated,
        "GOOGLE_OAUTH_ACCESS_TOKEN": federated,
    }
    assert document["environment"]["GOOGLE_CLOUD_PROJECT"] == "p-1"
    assert "service_account_impersonation_url" not in json.loads(
        Path(document["environment"]["GOOGLE_APPLICATION_CREDENTIALS"]).read_text()
    )
    assert google.count(":generateAccessToken") == 0


def test_id_token_format(google: FakeGCP, tmp_path: Path) -> None:
    result = run_local(
        google,
        tmp_path,
        ci_token(audience(google)),
        "--service-account",
        SA,
        "--token-format",
        "id_token",
        "--id-token-audience",
        "https://run.example.com",
        "--id-token-include-email",
        "--no-credentials-file",
        "--output",
        "json",
    )
    assert result.returncode == 0, result.stderr.decode()
    document = json.loads(result.stdout)
    assert set(document["secrets"]) == {"GOOGLE_ID_TOKEN"}
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in document["environment"]
    body = google.matching(":generateIdToken")[0].json()
    assert body == {"audience": "https://run.example.com", "includeEmail": True}


def test_sts_5xx_is_retried_and_counted(google: FakeGCP, tmp_path: Path) -> None:
    google.fail("/v1/token", 503, {"error": "unavailable"})
    google.reset("/v1/token")
    result = run_local(google, tmp_path, ci_token(audience(google)), "--output", "json")
    assert result.returncode == 0, result.stderr.decode()
    assert google.count("/v1/token") == 3


def test_sts_failing_after_retries_exits_3(google: FakeGCP, tmp_path: Path) -> None:
    google.fail("/v1/token", 500, {"error": "internal"}, times=10)
    token = ci_token(audience(google))
    result = run_local(
        google, tmp_path, token, "--max-attempts", "2", "--output", "json", timeout="10"
    )
    assert result.returncode == 3
    err = result.stderr.decode()
    assert "Google STS failed with HTTP 500 after 2 attempts" in err
    assert google.count("/v1/token") == 2
    assert token not in err and not result.stdout


def test_wrong_audience_is_a_config_error_with_claims(google: FakeGCP, tmp_path: Path) -> None:
    token = ci_token("https://github.com/octo-org")
    result = run_local(google, tmp_path, token, "--output", "json")
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "Google STS rejected the OIDC token: HTTP 400 invalid_grant" in err
    assert "aud: https://github.com/octo-org" in err
    assert "sub: repo:octo-org/octo-repo:ref:refs/heads/main" in err
    assert "iss: https://token.actions.githubusercontent.com" in err
    assert "repository: octo-org/octo-repo" in err
    assert token not in err


def test_iam_permission_denied_names_the_binding(tmp_path: Path) -> None:
    with FakeGCP(service_accounts={SA: {"attribute.repository/other/repo"}}) as google:
        token = ci_token(audience(google))
        result = run_local(google, tmp_path, token, "--service-account", SA, "--output", "json")
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "PERMISSION_DENIED" in err
    assert "roles/iam.workloadIdentityUser" in err
    assert (
        "principalSet://iam.googleapis.com/projects/123456789/locations/global/"
        "workloadIdentityPools/my-pool/attribute.repository/octo-org/octo-repo" in err
    )
    assert token not in err


@pytest.mark.parametrize(("platform", "output"), SINK_CASES)
def test_secrets_reach_only_their_sinks(tmp_path: Path, platform: str, output: str) -> None:
    secret = "gcp-secret-value\nsecond-line-of-it"
    with (
        FakeGitHubOIDC() as oidc,
        FakeGCP(secrets_data={"my-project/s/1": secret.encode()}) as google,
    ):
        google.issuer = oidc.issuer
        local_token = ci_token(audience(google), issuer=oidc.issuer)
        env, args = creds_platform(oidc, tmp_path, platform, local_token)
        result = tollgate(
            "creds",
            "gcp",
            *args,
            "--workload-identity-provider",
            google.provider_name,
            "--service-account",
            SA,
            "--secret",
            "my-project/s",
            *endpoints(google),
            "--output",
            output,
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr.decode()
        kinds = {i.kind: t for t, i in google.issued.items()}
        assert_only_in_sinks(
            tmp_path,
            result.stdout,
            result.stderr,
            exported=[kinds["sa"], secret],
            hidden=[kinds["fed"], oidc.request_token],
            oidc_tokens=[*oidc.issued, local_token],
            stdout_is_sink=(platform, output) != ("github", "env"),
        )
        if platform == "github":
            assert f"::add-mask::{kinds['sa']}".encode() in result.stderr
            assert b"::add-mask::second-line-of-it" in result.stderr


# The provider in-process: every error path, the exit code its class carries


def test_attribute_condition_and_subject_limit(google: FakeGCP) -> None:
    google.attribute_condition = lambda claims: claims.get("ref") == "refs/heads/release"
    with pytest.raises(ConfigError, match="attribute condition") as caught:
        provider(google).exchange(lambda aud: ci_token(aud or ""))
    assert "ref: refs/heads/main" in caught.value.message
    google.attribute_condition = None
    with pytest.raises(ConfigError, match="127 bytes") as caught:
        provider(google).exchange(lambda aud: ci_token(aud or "", sub="repo:" + "x" * 130))
    assert "attribute mapping" in (caught.value.hint or "")


def test_wrong_issuer_expired_token_and_unknown_provider(google: FakeGCP) -> None:
    with pytest.raises(ConfigError, match="issuer in ID Token"):
        provider(google).exchange(lambda aud: ci_token(aud or "", issuer="https://gitlab.example"))
    with pytest.raises(ConfigError, match="expired"):
        provider(google).exchange(lambda aud: ci_token(aud or "", lifetime=-10))
    other = google.provider_name.replace("my-provider", "gone-provider")
    unknown = gcp.GcpProvider(
        other,
        sts_endpoint=f"{google.base_url}/v1/token",
        http=FAST_HTTP,
        create_credentials_file=False,
    )
    with pytest.raises(ConfigError, match="invalid_target") as caught:
        unknown.exchange(lambda aud: ci_token(aud or ""))
    assert "project NUMBER" in (caught.value.hint or "")


def test_service_account_not_found_and_lifetime_too_long(google: FakeGCP) -> None:
    with pytest.raises(ConfigError, match="Gaia id not found"):
        provider(google, service_account="ghost-sa@my-project.iam.gserviceaccount.com").exchange(
            lambda aud: ci_token(aud or "")
        )
    with pytest.raises(ConfigError, match="cannot exceed 3600") as caught:
        provider(google, service_account=SA, lifetime=7200).exchange(
            lambda aud: ci_token(aud or "")
        )
    assert "allowServiceAccountCredentialLifetimeExtension" in (caught.value.hint or "")


def test_secret_errors(google: FakeGCP) -> None:
    google.denied_secrets.add("locked")
    missing = gcp.parse_secret("my-project/absent")
    with pytest.raises(ConfigError, match="not found or has no versions"):
        provider(google, secrets=(missing,)).exchange(lambda aud: ci_token(aud or ""))
    locked = gcp.parse_secret("projects/my-project/secrets/locked/versions/3 | L")
    with pytest.raises(ConfigError, match="PERMISSION_DENIED") as caught:
        provider(google, secrets=(locked,)).exchange(lambda aud: ci_token(aud or ""))
    assert "secretAccessor" in (caught.value.hint or "")


def test_secret_payload_checksum_is_verified(google: FakeGCP) -> None:
    payload = json.dumps(
        {"name": "x", "payload": {"data": "aGVsbG8=", "dataCrc32c": str(crc32c(b"other"))}}
    )
    google.fail(":access", 200, payload, headers={"Content-Type": "application/json"})
    ref = gcp.parse_secret("my-project/db-password")
    with pytest.raises(ExternalError, match="CRC32C"):
        provider(google, secrets=(ref,)).exchange(lambda aud: ci_token(aud or ""))


def test_malformed_and_empty_success_bodies_are_external_errors(google: FakeGCP) -> None:
    google.fail("/v1/token", 200, "<html>proxy</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(ExternalError, match="not JSON"):
        provider(google).exchange(lambda aud: ci_token(aud or ""))
    google.fail("/v1/token", 200, {"token_type": "Bearer"})
    with pytest.raises(ExternalError, match="no usable 'access_token'"):
        provider(google).exchange(lambda aud: ci_token(aud or ""))


def test_fractional_expire_time_and_fresh_token_per_exchange(google: FakeGCP) -> None:
    google.fractional_expire_time = True
    audiences: list[str | None] = []

    def source(aud: str | None) -> str:
        audiences.append(aud)
        return ci_token(aud or "")

    credentials = provider(google, service_account=SA, lifetime=1800).exchange(source)
    assert audiences == [audience(google)]
    assert credentials.expires_at is not None
    assert credentials.facts["expires_at"] == credentials.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert credentials.expires_at.microsecond == 123456
    assert credentials.facts["project_id"] == "my-project"


def test_delegates_scopes_and_request_reason_on_the_wire(google: FakeGCP) -> None:
    provider(
        google,
        service_account=SA,
        delegates=("middle@my-project.iam.gserviceaccount.com",),
        scopes=("https://www.googleapis.com/auth/devstorage.read_only",),
        request_reason="deploy-42",
    ).exchange(lambda aud: ci_token(aud or ""))
    request = google.matching(":generateAccessToken")[0]
    assert request.json()["delegates"] == [
        "projects/-/serviceAccounts/middle@my-project.iam.gserviceaccount.com"
    ]
    assert request.json()["scope"] == ["https://www.googleapis.com/auth/devstorage.read_only"]
    assert request.headers["x-goog-request-reason"] == "deploy-42"


# Options


@pytest.mark.parametrize(
    "name",
    [
        "projects/my-project/locations/global/workloadIdentityPools/p/providers/x",
        "projects/123/locations/us/workloadIdentityPools/pool/providers/prov",
        "my-pool/my-provider",
    ],
)
def test_provider_name_is_validated(name: str) -> None:
    with pytest.raises(UsageError, match="resource name") as caught:
        gcp.GcpProvider(name)
    assert "gcloud iam workload-identity-pools providers describe" in (caught.value.hint or "")


def test_option_checks() -> None:
    wip = "projects/1/locations/global/workloadIdentityPools/pool/providers/prov"
    with pytest.raises(UsageError, match="needs --service-account"):
        gcp.GcpProvider(wip, token_format="id_token", id_token_audience="x")
    with pytest.raises(UsageError, match="only over TLS"):
        gcp.GcpProvider(wip, sts_endpoint="http://sts.example.com")
    assert gcp.GcpProvider(f"//iam.googleapis.com/{wip}").audience == (
        f"https://iam.googleapis.com/{wip}"
    )


def test_parse_secret() -> None:
    assert gcp.parse_secret("p/s") == gcp.SecretRef("p", "s", "latest", "S")
    assert gcp.parse_secret("p/db-pass/4 | PW") == gcp.SecretRef("p", "db-pass", "4", "PW")
    long = gcp.parse_secret("projects/p/secrets/s/versions/latest")
    assert long.resource == "projects/p/secrets/s/versions/latest"
    with pytest.raises(UsageError):
        gcp.parse_secret("just-a-name")
    with pytest.raises(UsageError):
        gcp.parse_secret("p/s | 1BAD")


def test_crc32c_known_vector() -> None:
    assert gcp.crc32c(b"123456789") == 0xE3069283 == crc32c(b"123456789")
