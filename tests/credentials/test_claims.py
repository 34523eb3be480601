"""Decoding a token's claims without verification, for diagnostics."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timezone

import pytest

from tests.fakes import jwt
from tollgate.credentials.claims import (
    TokenClaims,
    decode_claims,
    describe,
    describe_claims,
    expiry_warning,
    format_duration,
    platform_of,
    token_claims,
)
from tollgate.errors import ConfigError

NOW = 1_800_000_000


def github_claims(**overrides: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": "https://token.actions.githubusercontent.com",
        "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
        "aud": "sts.amazonaws.com",
        "repository": "octo-org/octo-repo",
        "repository_owner": "octo-org",
        "run_attempt": "1",
        "iat": NOW,
        "nbf": NOW - 600,
        "exp": NOW + 300,
    }
    claims.update(overrides)
    return claims


def segment(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


HEADER = segment({"alg": "RS256"})
NOT_UTF8 = segment(b"\xff\xfe")


def test_decodes_standard_and_custom_claims() -> None:
    claims = decode_claims(jwt.sign(github_claims()))
    assert claims.iss == "https://token.actions.githubusercontent.com"
    assert claims.sub == "repo:octo-org/octo-repo:ref:refs/heads/main"
    assert claims.aud == ("sts.amazonaws.com",)
    assert (claims.iat, claims.nbf, claims.exp) == (NOW, NOW - 600, NOW + 300)
    assert claims.custom["repository"] == "octo-org/octo-repo"
    assert "sub" not in claims.custom
    assert claims.header["alg"] == "RS256"
    assert claims.lifetime == 300
    assert claims.expires_at == datetime.fromtimestamp(NOW + 300, tz=timezone.utc)
    assert claims.platform == "github"


def test_claims_are_immutable() -> None:
    claims = decode_claims(jwt.sign(github_claims()))
    with pytest.raises(AttributeError):
        claims.sub = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        claims.custom["repository"] = "evil/repo"  # type: ignore[index]


def test_audience_list_and_get_as_text() -> None:
    claims = decode_claims(jwt.sign(github_claims(aud=["a", "b"], runner_id=42, flag=True)))
    assert claims.aud == ("a", "b")
    assert claims.get("runner_id") == "42"
    assert claims.get("flag") == "true"
    assert claims.get("sub") == "repo:octo-org/octo-repo:ref:refs/heads/main"
    assert claims.get("missing") is None
    assert claims.as_dict()["aud"] == ["a", "b"]


def test_describe_is_one_line_with_sub_aud_iss() -> None:
    claims = decode_claims(jwt.sign(github_claims(sub="repo:o/r:ref:refs/heads/x\n::error::y")))
    text = claims.describe()
    assert text == describe(claims)
    assert "\n" not in text
    assert text.startswith("sub='repo:o/r:ref:refs/heads/x\\x0a::error::y'")
    assert "aud='sts.amazonaws.com'" in text
    assert "iss='https://token.actions.githubusercontent.com'" in text
    assert TokenClaims().describe() == "sub=<none> aud=<none> iss=<none>"


def test_describe_cuts_long_values() -> None:
    claims = TokenClaims(sub="x" * 1000, aud=("a", "b"))
    text = claims.describe()
    assert len(text) < 300
    assert "aud=['a', 'b']" in text


@pytest.mark.parametrize(
    ("claims", "platform"),
    [
        ({"iss": "https://token.actions.githubusercontent.com"}, "github"),
        ({"iss": "https://token.actions.githubusercontent.com/my-enterprise"}, "github"),
        ({"iss": "https://token.actions.octocorp.ghe.com"}, "github"),
        ({"iss": "https://github.example.com/_services/token"}, "github"),
        (
            {
                "iss": "https://gitlab.example.com",
                "sub": "project_path:g/p:ref_type:branch:ref:main",
            },
            "gitlab",
        ),
        ({"iss": "https://git.corp", "project_path": "g/p"}, "gitlab"),
        (
            {"iss": "https://oidc.eks.amazonaws.com/id/X", "sub": "system:serviceaccount:ns:sa"},
            "other",
        ),
    ],
)
def test_platform_of(claims: dict[str, object], platform: str) -> None:
    assert platform_of(decode_claims(jwt.sign(claims))) == platform


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("", "empty"),
        ("not-a-jwt", "three parts"),
        ("a.b.c.d.e", "encrypted"),
        (f"{HEADER}.eyJzdWIi!.sig", "payload is not base64url"),
        (f"{segment({'alg': 'RS256'})}..sig", "payload is empty"),
        (f"{segment({'alg': 'RS256'})}.{segment(b'not json')}.sig", "payload is not JSON"),
        (f"{segment({'alg': 'RS256'})}.{segment([1, 2])}.sig", "not an object"),
        (f"{HEADER}.{NOT_UTF8}.sig", "UTF-8"),
        (f"{segment(b'[]')}.{segment({'sub': 'x'})}.sig", "header is JSON but not an object"),
        (f"{segment({})}.{segment({'sub': 5})}.sig", "'sub' claim is a number"),
        (f"{segment({})}.{segment({'aud': [1]})}.sig", "'aud' claim"),
        (f"{segment({})}.{segment({'exp': '1700000000'})}.sig", "'exp' claim is a string"),
        (f"{segment({})}.{segment({'iat': True})}.sig", "'iat' claim is a boolean"),
        ("x" * 70_000, "far longer"),
    ],
)
def test_malformed_tokens_raise_config_error_without_echoing(token: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        decode_claims(token)
    text = caught.value.diagnostics()
    assert problem in text
    # No part of the input comes back.
    for part in token.split("."):
        if len(part) >= 8:
            assert part not in text
    assert caught.value.__cause__ is None


def test_unsigned_token_decodes_for_diagnostics() -> None:
    token = f"{segment({'alg': 'none'})}.{segment({'sub': 'repo:o/r:pull_request'})}."
    assert decode_claims(token).sub == "repo:o/r:pull_request"


def test_expiry_helpers() -> None:
    claims = decode_claims(jwt.sign(github_claims()))
    assert claims.seconds_left(NOW) == 300
    assert not claims.is_expired(NOW)
    assert claims.is_expired(NOW + 300)
    assert not claims.is_expired(NOW + 301, leeway=5)
    assert not claims.is_not_yet_valid(NOW)
    assert claims.is_not_yet_valid(NOW - 700)
    assert TokenClaims().seconds_left(NOW) is None
    assert not TokenClaims().is_expired(NOW)


def test_expiry_warning() -> None:
    claims = decode_claims(jwt.sign(github_claims()))
    assert expiry_warning(claims, NOW) is None
    soon = expiry_warning(claims, NOW + 270)
    assert soon is not None and "expires in 30s" in soon
    gone = expiry_warning(claims, NOW + 420)
    assert gone is not None and "expired 2m 0s ago" in gone
    early = expiry_warning(claims, NOW - 900)
    assert early is not None and "clock is behind" in early
    missing = expiry_warning(TokenClaims(sub="x"), NOW)
    assert missing is not None and "no exp" in missing


def test_format_duration() -> None:
    assert format_duration(12.7) == "12s"
    assert format_duration(299) == "4m 59s"
    assert format_duration(7380) == "2h 3m"
    assert format_duration(-5) == "0s"


def test_describe_claims_names_required_claims_and_expiry() -> None:
    claims = {"iss": "https://issuer", "sub": "repo:a/b:ref:refs/heads/main", "aud": ["x", "y"]}
    claims["exp"] = int(time.time()) - 30
    text = describe_claims(claims, present=("ref",), required=("repository",))
    assert "  sub: repo:a/b:ref:refs/heads/main" in text
    assert '  aud: ["x", "y"]' in text
    assert "repository: (not in the token)" in text
    assert "  ref:" not in text  # only shown when present
    assert "expired" in text
    assert token_claims("not-a-jwt") == {}
