"""`tollgate creds vault` against a loopback Vault (JWT auth, KV v1/v2, revoke-self)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import tollgate
from tests.fakes.github_oidc import FakeGitHubOIDC
from tests.fakes.vault import FakeVault, Role
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
from tollgate.credentials import vault
from tollgate.errors import ConfigError, ExternalError, UsageError

AUD = "https://github.com/octo-org"
DATA = {
    "secret/ci/db": {"password": "v2-db-password", "user": "app", "port": 5432},
    "kv1/ci/legacy": {"data": "a v1 key named data", "token": "v1-token-value"},
    "secret/ci/cert": {
        "pem": "-----BEGIN X-----\nline-one-of-cert\nline-two-of-cert\n-----END X-----"
    },
}


@pytest.fixture
def server() -> Iterator[FakeVault]:
    with FakeVault(data=DATA) as fake:
        yield fake


def run_local(fake: FakeVault, tmp_path: Path, token: str, *args: str) -> Any:
    return creds_local("vault", tmp_path, token, "--url", fake.base_url, "--timeout", "10", *args)


def provider(fake: FakeVault, *secrets: str, **options: Any) -> vault.VaultProvider:
    return vault.VaultProvider(
        fake.base_url,
        role=options.pop("role", "ci"),
        secrets=vault.parse_secrets(secrets),
        http=FAST_HTTP,
        **options,
    )


def tokens(**claims: Any) -> Any:
    return lambda aud: ci_token(aud or AUD, **claims)


# End to end through the CLI


def test_local_kv_v1_and_v2_told_apart_by_the_mount(server: FakeVault, tmp_path: Path) -> None:
    result = run_local(
        server,
        tmp_path,
        ci_token(AUD),
        "--role",
        "ci",
        "--secret",
        "secret/ci/db password | PW",
        "--secret",
        "kv1/ci/legacy data | LEGACY; secret/ci/db * | DB",
        "--secret",
        "secret/ci/cert pem",
        "--output",
        "shell",
    )
    assert result.returncode == 0, result.stderr.decode()
    env = shell_exports(result.stdout)
    [token] = list(server.tokens)
    assert env["VAULT_TOKEN"] == token
    assert env["VAULT_ADDR"] == server.base_url
    assert env["PW"] == env["DB_PASSWORD"] == "v2-db-password"
    # A KV v1 secret with a key named "data" is read right (vault-action misreads it).
    assert env["LEGACY"] == "a v1 key named data"
    assert env["DB_USER"] == "app"
    assert env["DB_PORT"] == "5432"
    assert env["PEM"] == DATA["secret/ci/cert"]["pem"]
    # The wire: login body, mount lookups, the v2 read under data/, the v1 read as is.
    login = server.matching("/login")[0]
    assert login.path == "/v1/auth/jwt/login"
    assert login.json()["role"] == "ci"
    assert login.headers["x-vault-request"] == "true"
    reads = [r.path for r in server.requests if r.method == "GET"]
    assert "/v1/sys/internal/ui/mounts/secret/ci/db" in reads
    assert "/v1/secret/data/ci/db" in reads
    assert "/v1/kv1/ci/legacy" in reads
    assert reads.count("/v1/secret/data/ci/db") == 1  # read once for both entries
    err = result.stderr.decode()
    assert "policies=default,ci" in err
    for value in (token, "v2-db-password", "line-one-of-cert"):
        assert value not in err


def test_revoke_after_reading_and_do_not_export(server: FakeVault, tmp_path: Path) -> None:
    result = run_local(
        server,
        tmp_path,
        ci_token(AUD),
        "--role",
        "ci",
        "--secret",
        "secret/ci/db password",
        "--revoke",
        "--output",
        "json",
    )
    assert result.returncode == 0, result.stderr.decode()
    document = json.loads(result.stdout)
    assert document["secrets"] == {"PASSWORD": "v2-db-password"}
    assert document["facts"]["token_revoked"] == "true"
    assert len(server.revoked) == 1
    assert not server.tokens
    # Revoked after the read, with the token itself.
    paths = [r.path for r in server.requests]
    assert paths.index("/v1/auth/token/revoke-self") > paths.index("/v1/secret/data/ci/db")


def test_github_default_audience_namespace_and_outputs(tmp_path: Path) -> None:
    with FakeGitHubOIDC() as oidc, FakeVault(data=DATA, namespace="team/ci") as server:
        server.issuer = oidc.issuer
        files = {name: tmp_path / name.lower() for name in ("GITHUB_ENV", "GITHUB_OUTPUT")}
        env = loopback_env(tmp_path, **oidc.env(), **{k: str(v) for k, v in files.items()})
        result = tollgate(
            "creds",
            "vault",
            "--platform",
            "github",
            "--url",
            server.base_url,
            "--role",
            "ci",
            "--namespace",
            "team/ci",
            "--secret",
            "secret/ci/db password | DB_PASSWORD",
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr.decode()
        # vault-action's behaviour: no audience asked for, GitHub's default aud.
        assert [r.audience for r in oidc.token_requests] == [None]
        assert all(r.headers.get("x-vault-namespace") == "team/ci" for r in server.requests)
        exported = runner_file(files["GITHUB_ENV"])
        outputs = runner_file(files["GITHUB_OUTPUT"])
        assert exported["DB_PASSWORD"] == "v2-db-password"
        assert exported["VAULT_NAMESPACE"] == "team/ci"
        assert exported["VAULT_TOKEN"] == next(iter(server.tokens))
        assert outputs["policies"] == "default,ci"
        assert "expires_at" in outputs
        assert b"::add-mask::v2-db-password" in result.stderr


def test_gitlab_id_token_variable_and_dotenv_outputs(tmp_path: Path) -> None:
    gitlab = "https://gitlab.example.com"
    roles = {"ci": Role(bound_audiences=("https://vault.example.com",))}
    with FakeVault(data=DATA, issuer=gitlab, roles=roles) as server:
        token = ci_token(
            "https://vault.example.com",
            issuer=gitlab,
            sub="project_path:group/app:ref_type:branch:ref:main",
            project_path="group/app",
        )
        env = loopback_env(tmp_path, GITLAB_CI="true", VAULT_ID_TOKEN=token)
        result = tollgate(
            "creds",
            "vault",
            "--platform",
            "gitlab",
            "--token-env",
            "VAULT_ID_TOKEN",
            "--url",
            server.base_url,
            "--role",
            "ci",
            "--secret",
            "secret/ci/db password | DB_PASSWORD",
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr.decode()
        exported = shell_exports(result.stdout)
        assert exported["DB_PASSWORD"] == "v2-db-password"
        assert exported["VAULT_TOKEN"] == next(iter(server.tokens))
        dotenv = (tmp_path / "tollgate.env").read_text()
        assert "policies=default,ci" in dotenv
        assert "v2-db-password" not in dotenv and token not in dotenv
        assert "v2-db-password" not in result.stderr.decode()


def test_login_rejected_by_bound_claims_shows_the_claim(server: FakeVault, tmp_path: Path) -> None:
    token = ci_token(AUD, repository="octo-org/fork")
    result = run_local(server, tmp_path, token, "--role", "ci", "--output", "json")
    assert result.returncode == 2
    err = result.stderr.decode()
    assert 'claim "repository" does not match any associated bound claim values' in err
    assert "repository: octo-org/fork" in err
    assert "aud: https://github.com/octo-org" in err
    assert "sub: repo:octo-org/octo-repo:ref:refs/heads/main" in err
    assert token not in err and not result.stdout


def test_login_is_retried_on_412_and_5xx(server: FakeVault, tmp_path: Path) -> None:
    server.fail("/login", 412, {"errors": ["performance standby not ready"]})
    server.fail("/login", 503, {"errors": ["Vault is sealed"]})
    result = run_local(server, tmp_path, ci_token(AUD), "--role", "ci", "--output", "json")
    assert result.returncode == 0, result.stderr.decode()
    assert server.count("/login") == 3


def test_sealed_vault_gives_up_with_exit_3(server: FakeVault, tmp_path: Path) -> None:
    server.fail("/login", 503, {"errors": ["Vault is sealed"]}, times=5)
    result = run_local(
        server, tmp_path, ci_token(AUD), "--role", "ci", "--max-attempts", "2", "--output", "json"
    )
    assert result.returncode == 3
    assert server.count("/login") == 2
    assert "Vault is sealed" in result.stderr.decode()


@pytest.mark.parametrize(("platform", "output"), SINK_CASES)
def test_secrets_reach_only_their_sinks(tmp_path: Path, platform: str, output: str) -> None:
    with FakeGitHubOIDC() as oidc, FakeVault(data=DATA) as server:
        server.issuer = oidc.issuer
        local_token = ci_token(AUD, issuer=oidc.issuer)
        env, args = creds_platform(oidc, tmp_path, platform, local_token)
        result = tollgate(
            "creds",
            "vault",
            *args,
            "--url",
            server.base_url,
            "--role",
            "ci",
            "--secret",
            "secret/ci/cert pem; kv1/ci/legacy token",
            "--output",
            output,
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr.decode()
        assert_only_in_sinks(
            tmp_path,
            result.stdout,
            result.stderr,
            exported=[*server.tokens, DATA["secret/ci/cert"]["pem"], "v1-token-value"],
            hidden=[oidc.request_token, "v2-db-password"],
            oidc_tokens=[*oidc.issued, local_token],
            stdout_is_sink=(platform, output) != ("github", "env"),
        )


# The provider in-process: each rejection Vault gives, and its message


def test_role_not_found_missing_role_and_unconfigured_mount(server: FakeVault) -> None:
    with pytest.raises(ConfigError, match='role "nope" could not be found') as caught:
        provider(server, role="nope").exchange(tokens())
    assert "vault list auth/jwt/role" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match="missing role"):
        provider(server, role=None).exchange(tokens())
    server.configured = False
    with pytest.raises(ConfigError, match="could not load configuration") as caught:
        provider(server).exchange(tokens())
    assert "vault write auth/jwt/config" in (caught.value.hint or "")


def test_wrong_mount_or_namespace(server: FakeVault) -> None:
    with pytest.raises(ConfigError, match="HTTP 403: permission denied") as caught:
        provider(server, auth_path="gitlab-jwt").exchange(tokens())
    assert "No JWT auth method is mounted at auth/gitlab-jwt" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match="namespace other") as caught:
        provider(server, namespace="other").exchange(tokens())
    assert "--namespace" in (caught.value.hint or "")


def test_audience_expiry_issuer_and_signature(server: FakeVault) -> None:
    with pytest.raises(ConfigError, match="audience claim does not match") as caught:
        provider(server).exchange(lambda aud: ci_token("sigstore"))
    assert "bound_audiences" in (caught.value.hint or "")
    assert "aud: sigstore" in caught.value.message
    server.roles["open"] = Role()
    with pytest.raises(ConfigError, match="no audiences bound to the role") as caught:
        provider(server, role="open").exchange(tokens())
    assert "1.17" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match="token is expired") as caught:
        provider(server).exchange(tokens(lifetime=-5))
    assert "clock" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match="invalid issuer") as caught:
        provider(server).exchange(tokens(issuer="https://gitlab.example.com"))
    assert "bound_issuer" in (caught.value.hint or "")


def test_permission_denied_names_the_path_and_policy(server: FakeVault) -> None:
    server.data["secret/prod/db"] = {"password": "prod"}
    server.policies["ci"] = (*server.policies["ci"], "secret/data/prod-other/")
    with pytest.raises(ConfigError, match="Vault denied reading secret/prod/db") as caught:
        provider(server, "secret/prod/db password").exchange(tokens())
    hint = caught.value.hint or ""
    assert 'path "secret/data/prod/db" { capabilities = ["read"] }' in hint
    assert "default, ci" in hint
    assert "1 error occurred" not in caught.value.message


def test_missing_key_secret_and_deleted_version(server: FakeVault) -> None:
    with pytest.raises(ConfigError, match="no key 'pass'") as caught:
        provider(server, "secret/ci/db pass").exchange(tokens())
    assert "password" in caught.value.message  # lists the keys there are
    with pytest.raises(ConfigError, match="no Vault secret at secret/ci/absent"):
        provider(server, "secret/ci/absent x").exchange(tokens())
    server.deleted.add("secret/ci/db")
    with pytest.raises(ConfigError, match="is deleted"):
        provider(server, "secret/ci/db password").exchange(tokens())


def test_revoke_happens_even_when_a_read_fails(server: FakeVault) -> None:
    with pytest.raises(ConfigError):
        provider(server, "secret/ci/absent x", revoke=True).exchange(tokens())
    assert len(server.revoked) == 1


def test_revoke_failure_is_a_warning_not_an_error(
    server: FakeVault, caplog: pytest.LogCaptureFixture
) -> None:
    server.fail("revoke-self", 500, {"errors": ["internal error"]})
    credentials = provider(server, "secret/ci/db user", revoke=True).exchange(tokens())
    assert "VAULT_TOKEN" not in credentials.secrets
    assert server.count("revoke-self") == 1  # a non-idempotent POST: not retried on 500
    assert "could not revoke the Vault token" in caplog.text


def test_explicit_kv_version_and_vault_action_style_paths(server: FakeVault) -> None:
    credentials = provider(server, "secret/data/ci/db user", kv_version=2).exchange(tokens())
    assert credentials.secrets["USER"] == "app"
    assert server.count("sys/internal/ui/mounts") == 0
    assert server.count("/v1/secret/data/ci/db") == 1


def test_read_retried_on_reset_and_malformed_login_body(server: FakeVault) -> None:
    server.reset("/v1/secret/data/ci/db")
    credentials = provider(server, "secret/ci/db user").exchange(tokens())
    assert credentials.secrets["USER"] == "app"
    assert server.count("/v1/secret/data/ci/db") == 2
    server.fail("/login", 200, {"auth": None, "data": None})
    with pytest.raises(ExternalError, match=r"auth\.client_token"):
        provider(server).exchange(tokens())


def test_parse_secrets() -> None:
    parsed = vault.parse_secrets(["a/b k | NAME; c/d *\n e/f g", "h/i * | P"])
    assert parsed == (
        vault.VaultSecret("a/b", "k", "NAME"),
        vault.VaultSecret("c/d", "*", None),
        vault.VaultSecret("e/f", "g", None),
        vault.VaultSecret("h/i", "*", "P"),
    )
    assert parsed[3].env_for("db-user") == "P_DB_USER"
    for bad in ("a/b", "a/b k |", "a/b k | 9X", "a b c"):
        with pytest.raises(UsageError):
            vault.parse_secrets([bad])
    with pytest.raises(UsageError, match="only over TLS"):
        vault.VaultProvider("http://vault.example.com")
