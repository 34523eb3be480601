"""`tollgate creds azure` against a loopback Entra ID token endpoint and Key Vault."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import tollgate
from tests.fakes import jwt
from tests.fakes.azure import (
    ASSERTION_TYPE,
    CLIENT_ID,
    EXCHANGE_AUDIENCE,
    TENANT_ID,
    FakeAzure,
    FederatedCredential,
)
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
from tollgate.credentials import azure
from tollgate.errors import ConfigError, ExternalError, UsageError

SUBSCRIPTION = "22222222-2222-2222-2222-222222222222"


@pytest.fixture
def entra() -> Iterator[FakeAzure]:
    with FakeAzure(vault_secrets={"db-password": "kv-secret-value"}) as fake:
        yield fake


def run_local(fake: FakeAzure, tmp_path: Path, token: str, *args: str) -> Any:
    app = ["--client-id", fake.client_id, "--tenant-id", fake.tenant_id]
    return creds_local(
        "azure", tmp_path, token, *app, "--authority-host", fake.base_url, "--timeout", "10", *args
    )


def provider(fake: FakeAzure, **options: Any) -> azure.AzureProvider:
    return azure.AzureProvider(
        fake.client_id,
        fake.tenant_id,
        authority_host=fake.base_url,
        http=FAST_HTTP,
        token_file=False,
        **options,
    )


def tokens(**claims: Any) -> Any:
    return lambda aud: ci_token(aud or "", **claims)


# End to end through the CLI


def test_local_exchange_key_vault_and_token_file(entra: FakeAzure, tmp_path: Path) -> None:
    token = ci_token(EXCHANGE_AUDIENCE)
    result = run_local(
        entra,
        tmp_path,
        token,
        "--subscription-id",
        SUBSCRIPTION,
        "--secret",
        f"{entra.base_url}/secrets/db-password | DB_PASSWORD",
        "--output",
        "shell",
    )
    assert result.returncode == 0, result.stderr.decode()
    env = shell_exports(result.stdout)
    arm = [t for t, i in entra.issued.items() if i.resource == "https://management.azure.com"]
    assert env["AZURE_ACCESS_TOKEN"] == arm[0]
    assert env["DB_PASSWORD"] == "kv-secret-value"
    assert env["AZURE_CLIENT_ID"] == CLIENT_ID
    assert env["AZURE_TENANT_ID"] == TENANT_ID
    assert env["AZURE_SUBSCRIPTION_ID"] == SUBSCRIPTION
    assert env["AZURE_AUTHORITY_HOST"] == entra.base_url
    # The token request has exactly the documented fields (§10.4), one CI token each.
    requests = entra.matching("/oauth2/v2.0/token")
    assert [r.path for r in requests] == [f"/{TENANT_ID}/oauth2/v2.0/token"] * 2
    assert requests[0].form() == {
        "scope": "https://management.azure.com/.default",
        "client_id": CLIENT_ID,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": token,
        "grant_type": "client_credentials",
    }
    assert requests[1].form()["scope"] == "https://vault.azure.net/.default"
    assert entra.matching("/secrets/")[0].query["api-version"] == ["7.4"]
    # The federated token file: a 0600 file in a private temp dir, holding the CI token.
    path = Path(env["AZURE_FEDERATED_TOKEN_FILE"])
    assert path.parent.parent == tmp_path / "tmp"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == token
    err = result.stderr.decode()
    assert f"tenant_id={TENANT_ID}" in err
    assert "expires_at=" in err
    assert arm[0] not in err and "kv-secret-value" not in err and token not in err


def test_github_fresh_token_per_request_and_outputs(tmp_path: Path) -> None:
    with FakeGitHubOIDC() as oidc, FakeAzure(vault_secrets={"s": "v-a-l-u-e"}) as entra:
        entra.credentials = [
            FederatedCredential(oidc.issuer, "repo:octo-org/octo-repo:ref:refs/heads/main")
        ]
        files = {name: tmp_path / name.lower() for name in ("GITHUB_ENV", "GITHUB_OUTPUT")}
        env = loopback_env(
            tmp_path,
            **oidc.env(),
            RUNNER_TEMP=str(tmp_path / "runner"),
            **{name: str(path) for name, path in files.items()},
        )
        result = tollgate(
            "creds",
            "azure",
            "--platform",
            "github",
            "--client-id",
            CLIENT_ID,
            "--tenant-id",
            TENANT_ID,
            "--subscription-id",
            SUBSCRIPTION,
            "--authority-host",
            entra.base_url,
            "--secret",
            f"{entra.base_url}/secrets/s",
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr.decode()
        # One fresh GitHub token per Entra request, and one more for the token file.
        assert [r.audience for r in oidc.token_requests] == [EXCHANGE_AUDIENCE] * 3
        assert entra.assertions == oidc.issued[:2]
        assert len(set(oidc.issued)) == 3
        exported = runner_file(files["GITHUB_ENV"])
        outputs = runner_file(files["GITHUB_OUTPUT"])
        assert Path(exported["AZURE_FEDERATED_TOKEN_FILE"]).read_text() == oidc.issued[2]
        assert Path(exported["AZURE_FEDERATED_TOKEN_FILE"]).parent == tmp_path / "runner"
        assert exported["S"] == "v-a-l-u-e"
        assert outputs["tenant_id"] == TENANT_ID
        assert outputs["subscription_id"] == SUBSCRIPTION
        assert outputs["client_id"] == CLIENT_ID
        assert "AZURE_ACCESS_TOKEN" not in outputs
        assert b"::add-mask::v-a-l-u-e" in result.stderr


def test_no_matching_federated_credential_shows_what_to_configure(
    entra: FakeAzure, tmp_path: Path
) -> None:
    token = ci_token(EXCHANGE_AUDIENCE, sub="repo:octo-org/octo-repo:pull_request")
    result = run_local(entra, tmp_path, token, "--output", "json")
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "AADSTS70021" in err
    assert "subject:  repo:octo-org/octo-repo:pull_request" in err
    assert "issuer:   https://token.actions.githubusercontent.com" in err
    assert "audience: api://AzureADTokenExchange" in err
    assert "Trace ID" in err and "Timestamp" not in err
    assert token not in err and not result.stdout


def test_entra_5xx_is_retried_then_gives_up_with_exit_3(entra: FakeAzure, tmp_path: Path) -> None:
    entra.fail("/oauth2/", 503, "Service Unavailable", times=5)
    result = run_local(entra, tmp_path, ci_token(EXCHANGE_AUDIENCE), "--max-attempts", "2")
    assert result.returncode == 3
    assert entra.count("/oauth2/") == 2
    assert "Microsoft Entra ID failed with HTTP 503 after 2 attempts" in result.stderr.decode()


@pytest.mark.parametrize(("platform", "output"), SINK_CASES)
def test_secrets_reach_only_their_sinks(tmp_path: Path, platform: str, output: str) -> None:
    secret = "azure-secret\nanother-line"
    with FakeGitHubOIDC() as oidc, FakeAzure(vault_secrets={"s": secret}) as entra:
        entra.credentials = [
            FederatedCredential(oidc.issuer, "repo:octo-org/octo-repo:ref:refs/heads/main")
        ]
        local_token = ci_token(EXCHANGE_AUDIENCE, issuer=oidc.issuer)
        env, args = creds_platform(oidc, tmp_path, platform, local_token)
        result = tollgate(
            "creds",
            "azure",
            *args,
            "--client-id",
            CLIENT_ID,
            "--tenant-id",
            TENANT_ID,
            "--authority-host",
            entra.base_url,
            "--secret",
            f"{entra.base_url}/secrets/s",
            "--output",
            output,
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr.decode()
        arm = [t for t, i in entra.issued.items() if i.resource.startswith("https://management")]
        vault = [t for t, i in entra.issued.items() if i.resource == "https://vault.azure.net"]
        assert_only_in_sinks(
            tmp_path,
            result.stdout,
            result.stderr,
            exported=[*arm, secret],
            hidden=[*vault, oidc.request_token],
            oidc_tokens=[*oidc.issued, local_token],
            stdout_is_sink=(platform, output) != ("github", "env"),
        )


# The provider in-process: every AADSTS code the fake produces


def test_unknown_app_and_tenant(entra: FakeAzure) -> None:
    other = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(ConfigError, match="AADSTS700016") as caught:
        azure.AzureProvider(
            other, entra.tenant_id, authority_host=entra.base_url, http=FAST_HTTP, token_file=False
        ).exchange(tokens())
    assert "--client-id" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match="AADSTS90002") as caught:
        azure.AzureProvider(
            entra.client_id, other, authority_host=entra.base_url, http=FAST_HTTP, token_file=False
        ).exchange(tokens())
    assert "national clouds" in (caught.value.hint or "")


def test_expired_assertion_is_explained(entra: FakeAzure) -> None:
    with pytest.raises(ConfigError, match="AADSTS700024") as caught:
        provider(entra).exchange(tokens(lifetime=-30))
    assert "expired" in caught.value.message  # the exp line of the claims
    assert "five minutes" in (caught.value.hint or "")


def test_bad_signature_and_audience(entra: FakeAzure) -> None:
    other_key = jwt.generate_key()
    with pytest.raises(ConfigError, match="AADSTS50013"):
        provider(entra).exchange(lambda aud: ci_token(aud or "", key=other_key))
    with pytest.raises(ConfigError, match="AADSTS70021") as caught:
        provider(entra, token_audience="https://github.com/octo-org").exchange(tokens())
    assert "aud: https://github.com/octo-org" in caught.value.message


def test_key_vault_errors(entra: FakeAzure) -> None:
    entra.denied_secrets.add("locked")
    locked = azure.parse_secret(f"{entra.base_url}/secrets/locked")
    with pytest.raises(ConfigError, match="ForbiddenByRbac") as caught:
        provider(entra, secrets=(locked,)).exchange(tokens())
    assert "Key Vault Secrets User" in (caught.value.hint or "")
    assert "\r" not in caught.value.message
    absent = azure.parse_secret(f"{entra.base_url}/secrets/absent")
    with pytest.raises(ConfigError, match="SecretNotFound"):
        provider(entra, secrets=(absent,)).exchange(tokens())
    wrong_scope = provider(
        entra,
        secrets=(azure.parse_secret(f"{entra.base_url}/secrets/db-password"),),
        key_vault_scope="https://management.azure.com/.default",
    )
    with pytest.raises(ConfigError, match="AKV10022") as caught:
        wrong_scope.exchange(tokens())
    assert "--key-vault-scope" in (caught.value.hint or "")


def test_timeout_throttling_then_success_and_malformed_body(entra: FakeAzure) -> None:
    entra.delay("/oauth2/", 3.0)
    entra.fail("/oauth2/", 429, {"error": "temporarily_unavailable"}, headers={"Retry-After": "0"})
    credentials = provider(entra).exchange(tokens())
    assert entra.count("/oauth2/") == 3
    assert credentials.expires_at is not None
    assert 3500 < credentials.expires_at.timestamp() - time.time() < 3600
    entra.fail("/oauth2/", 200, "not json at all")
    with pytest.raises(ExternalError, match="not JSON"):
        provider(entra).exchange(tokens())


def test_parse_secret_and_options() -> None:
    ref = azure.parse_secret("my-vault/db-password")
    assert ref.url == "https://my-vault.vault.azure.net/secrets/db-password"
    assert ref.env == "DB_PASSWORD"
    ref = azure.parse_secret("my-vault/s/0123abcd | X", "vault.azure.cn")
    assert ref.url == "https://my-vault.vault.azure.cn/secrets/s/0123abcd"
    assert ref.env == "X"
    with pytest.raises(UsageError):
        azure.parse_secret("http://vault.example.com/secrets/s")  # plain http off loopback
    with pytest.raises(UsageError):
        azure.parse_secret("just-a-name")
    with pytest.raises(UsageError, match="not a GUID"):
        azure.AzureProvider("app", TENANT_ID)
    with pytest.raises(UsageError, match=r"/\.default"):
        azure.AzureProvider(CLIENT_ID, TENANT_ID, scope="https://management.azure.com/user")
    assert azure.AzureProvider(CLIENT_ID, "contoso.onmicrosoft.com").token_url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    assert json.dumps(azure.DEFAULT_AUDIENCE) == '"api://AzureADTokenExchange"'
