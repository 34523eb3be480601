"""`tollgate token` end to end: the real command against the fakes, never showing the token."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.conftest import tollgate
from tests.fakes import jwt
from tests.fakes.github_oidc import FakeGitHubOIDC

LOOPBACK = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def gitlab_token(**overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "https://gitlab.example.com",
        "sub": "project_path:my-group/my-project:ref_type:branch:ref:main",
        "aud": "sts.amazonaws.com",
        "project_path": "my-group/my-project",
        "project_id": "72",
        "namespace_path": "my-group",
        "namespace_id": "7",
        "ref": "main",
        "ref_type": "branch",
        "ref_path": "refs/heads/main",
        "ref_protected": "true",
        "user_email": "dev@example.com",
        "iat": now,
        "nbf": now - 5,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return jwt.sign(claims)


def assert_not_shown(token: str, *streams: str) -> None:
    for stream in streams:
        assert token not in stream
        # Nor its signature or payload on their own.
        for part in token.split("."):
            assert part not in stream


def test_github_token_claims_and_conditions() -> None:
    with FakeGitHubOIDC(claims={"workflow": "deploy\n::error::injected"}) as fake:
        result = tollgate(
            "token",
            "--platform",
            "github",
            "--audience",
            "sts.amazonaws.com",
            env={**fake.env(), **LOOPBACK},
        )
        as_json = tollgate(
            "token",
            "--platform",
            "github",
            "--audience",
            "sts.amazonaws.com",
            "--format",
            "json",
            env={**fake.env(), **LOOPBACK},
        )
        issued = list(fake.issued)
        requests = fake.token_requests
        issuer_host = fake.issuer.removeprefix("http://")
    assert result.returncode == 0, result.stderr
    out, err = result.stdout.decode(), result.stderr.decode()
    token = issued[0]
    assert_not_shown(token, out)
    # On GitHub the token reaches stderr only inside ::add-mask:: commands, which the
    # runner consumes and never shows.
    assert all(line.startswith("::add-mask::") for line in err.splitlines() if token in line)
    assert fake.request_token not in out + err
    assert [r.audience for r in requests] == ["sts.amazonaws.com", "sts.amazonaws.com"]
    assert "repo:octo-org/octo-repo:ref:refs/heads/main" in out
    assert "token.actions.githubusercontent.com" not in out  # the fake is the issuer
    assert f"{issuer_host}:sub" in out
    assert "assertion.repository == 'octo-org/octo-repo'" in out
    # A claim cannot start a workflow command: control characters are escaped.
    assert not any(line.lstrip().startswith("::") for line in out.splitlines())
    assert "deploy\\n::error::injected" in out

    assert as_json.returncode == 0, as_json.stderr
    assert_not_shown(issued[1], as_json.stdout.decode())
    report = json.loads(as_json.stdout)
    assert report["platform"] == "github"
    assert report["claims"]["sub"] == "repo:octo-org/octo-repo:ref:refs/heads/main"
    assert report["claims"]["aud"] == "sts.amazonaws.com"
    assert 200 < report["expires_in"] <= 300
    assert report["lifetime"] == 300
    assert set(report["trust"]) == {"aws", "gcp", "azure", "vault"}
    condition = report["trust"]["aws"]["Condition"]["StringEquals"]
    assert report["claims"]["sub"] in condition.values()


def test_github_default_audience_is_warned_about() -> None:
    with FakeGitHubOIDC() as fake:
        result = tollgate(
            "token", "--platform", "github", "--format", "json", env={**fake.env(), **LOOPBACK}
        )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["claims"]["aud"] == "https://github.com/octo-org"
    assert any("GitHub's default audience" in warning for warning in report["warnings"])


def test_gitlab_token_from_audience_variable() -> None:
    token = gitlab_token()
    result = tollgate(
        "token",
        "--platform",
        "gitlab",
        "--audience",
        "sts.amazonaws.com",
        env={"GITLAB_CI": "true", "STS_AMAZONAWS_COM_ID_TOKEN": token},
    )
    assert result.returncode == 0, result.stderr
    out, err = result.stdout.decode(), result.stderr.decode()
    assert_not_shown(token, out, err)
    assert "project_path:my-group/my-project:ref_type:branch:ref:main" in out
    assert "gitlab.example.com:sub" in out
    assert "assertion.ref_path == 'refs/heads/main'" in out
    assert "cannot be requested again" in out
    # Personal data stays out of the job log unless asked for.
    assert "dev@example.com" not in out
    assert "user_email" in out and "--show-personal" in out
    shown = tollgate(
        "token",
        "--platform",
        "gitlab",
        "--audience",
        "sts.amazonaws.com",
        "--show-personal",
        env={"GITLAB_CI": "true", "STS_AMAZONAWS_COM_ID_TOKEN": token},
    )
    assert "dev@example.com" in shown.stdout.decode()


def test_local_token_file_expired_token(tmp_path: Path) -> None:
    now = int(time.time())
    token = gitlab_token(iat=now - 4000, nbf=now - 4005, exp=now - 400)
    path = tmp_path / "token.jwt"
    path.write_text(token + "\n")
    result = tollgate("token", "--platform", "local", "--token-file", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert_not_shown(token, result.stdout.decode(), result.stderr.decode())
    report = json.loads(result.stdout)
    assert report["platform"] == "gitlab"
    assert report["expires_in"] < 0
    assert any("the token expired 6m" in warning for warning in report["warnings"])


def test_malformed_tokens_exit_2_without_token_text(tmp_path: Path) -> None:
    not_a_jwt = "definitely-not-a-jwt-but-maybe-a-secret-value"
    bad_payload = "eyJhbGciOiJSUzI1NiJ9.bm90LWpzb24tYXQtYWxsLWhlcmU.c2lnbmF0dXJlLXBhcnQ"
    for token, message in [
        (not_a_jwt, "does not hold a JWT"),
        (bad_payload, "cannot read the OIDC token: its payload is not JSON"),
    ]:
        path = tmp_path / "token.jwt"
        path.write_text(token)
        result = tollgate("token", "--platform", "local", "--token-file", str(path))
        err = result.stderr.decode()
        assert result.returncode == 2, err
        assert message in err
        assert "Traceback" not in err
        assert_not_shown(token, result.stdout.decode(), err)
