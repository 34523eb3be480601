"""GitHub Actions: runner files, workflow commands, and the OIDC token endpoint (faked)."""

from __future__ import annotations

import base64
import dataclasses
import socket
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.ci.conftest import FAST_RETRY, RunnerFiles
from tests.fakes import jwt
from tests.fakes.github_oidc import TOKEN_PATH, FakeGitHubOIDC
from tests.helpers import parse_runner_file
from tollgate import __version__
from tollgate._http import HttpPolicy
from tollgate.ci import github as github_module
from tollgate.ci.github import GitHubPlatform, _cut_utf8, _with_audience
from tollgate.ci.interface import Annotation, AnnotationLevel
from tollgate.errors import ConfigError, Error, ExternalError, UsageError
from tollgate.masking.secrets import process_secrets

SECRET = "ghs_SuperSecretValue0123456789"
ZWSP = "\u200b"


def platform(retry: HttpPolicy = FAST_RETRY) -> GitHubPlatform:
    return GitHubPlatform(retry=retry)


def mask_lines(err: str) -> list[str]:
    return [
        line[len("::add-mask::") :] for line in err.splitlines() if line.startswith("::add-mask::")
    ]


def assert_clean(error: Error, *secrets: str) -> None:
    text = f"{error.diagnostics()}\n{error.hint or ''}\n{error!r}"
    for secret in secrets:
        assert secret not in text


# Outputs


def test_set_output_heredoc_round_trip(
    runner_files: RunnerFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    values = {
        "simple": "v",
        "multi": "line 1\nline 2\n",
        "tricky": "EOF\nname<<EOF\n=x\nghadelimiter_\r\n",
        "empty": "",
        "with-dash": "a=b",
    }
    p = platform()
    for name, value in values.items():
        p.set_output(name, value)
    assert parse_runner_file(runner_files.output.read_bytes().decode()) == list(values.items())
    assert capsys.readouterr().out == ""


def test_set_output_uses_random_delimiters(runner_files: RunnerFiles) -> None:
    p = platform()
    p.set_output("a", "1")
    p.set_output("b", "2")
    lines = runner_files.output.read_text().splitlines()
    first, second = lines[0].split("<<")[1], lines[3].split("<<")[1]
    assert first.startswith("ghadelimiter_")
    assert len(first) > len("ghadelimiter_") + 30
    assert first != second


def test_set_output_refuses_value_containing_delimiter(
    runner_files: RunnerFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixed = uuid.UUID(int=42)
    monkeypatch.setattr("tollgate.ci.github.uuid.uuid4", lambda: fixed)
    with pytest.raises(UsageError, match="delimiter"):
        platform().set_output("x", f"a\nghadelimiter_{fixed.hex}\nb")
    assert runner_files.output.read_text() == ""


def test_set_output_refuses_secret(runner_files: RunnerFiles) -> None:
    p = platform()
    p.add_mask(SECRET)
    with pytest.raises(UsageError, match="masked secret") as info:
        p.set_output("token", base64.b64encode(SECRET.encode()).decode())
    assert_clean(info.value, SECRET)
    assert runner_files.output.read_text() == ""


def test_set_output_bad_name(runner_files: RunnerFiles) -> None:
    with pytest.raises(UsageError, match="not a valid output name"):
        platform().set_output("a<<b", "x")


def test_set_output_without_github_output() -> None:
    with pytest.raises(ConfigError, match="GITHUB_OUTPUT is not set"):
        platform().set_output("a", "1")


def test_set_output_unwritable_file(
    runner_files: RunnerFiles, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "missing-dir" / "out"))
    with pytest.raises(ConfigError, match=r"cannot write \$GITHUB_OUTPUT"):
        platform().set_output("a", "1")


# Environment


def test_export_env_heredoc(runner_files: RunnerFiles, capsys: pytest.CaptureFixture[str]) -> None:
    platform().export_env("REGION", "eu-west-1", secret=False)
    platform().export_env("MULTI", "a\nb", secret=False)
    assert parse_runner_file(runner_files.env.read_bytes().decode()) == [
        ("REGION", "eu-west-1"),
        ("MULTI", "a\nb"),
    ]
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "add-mask" not in captured.err


def test_export_env_secret_masks_before_writing(
    runner_files: RunnerFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    platform().export_env("AWS_SECRET_ACCESS_KEY", SECRET, secret=True)
    captured = capsys.readouterr()
    assert SECRET in mask_lines(captured.err)
    assert SECRET not in captured.out
    assert parse_runner_file(runner_files.env.read_bytes().decode()) == [
        ("AWS_SECRET_ACCESS_KEY", SECRET)
    ]


@pytest.mark.parametrize("name", ["A-B", "9A", "A B"])
def test_export_env_bad_name(runner_files: RunnerFiles, name: str) -> None:
    with pytest.raises(UsageError, match="not a valid environment variable name"):
        platform().export_env(name, "x", secret=False)


def test_export_env_refuses_node_options(runner_files: RunnerFiles) -> None:
    with pytest.raises(UsageError, match="NODE_OPTIONS"):
        platform().export_env("NODE_OPTIONS", "--require x", secret=False)


# Summary


def test_summary_appends_redacted(runner_files: RunnerFiles) -> None:
    p = platform()
    p.add_mask(SECRET)
    p.summary("# Result")
    p.summary(f"token `{SECRET}`\n")
    assert runner_files.summary.read_text() == "# Result\ntoken `***`\n"


def test_summary_truncates_at_limit_on_utf8_boundary(
    runner_files: RunnerFiles, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    note = github_module._TRUNCATION_NOTE.encode()
    limit = 1000 + len(note)
    monkeypatch.setattr(github_module, "SUMMARY_LIMIT", limit)
    runner_files.summary.write_bytes(b"x" * 1)
    text = "\u20ac" * 600  # 3 bytes each: the cut at 999 bytes falls exactly on a boundary
    with caplog.at_level("WARNING"):
        platform().summary("y" + text)
    data = runner_files.summary.read_bytes()
    assert len(data) <= limit
    assert data.endswith(note)
    body = data[: -len(note)].decode("utf-8")  # strict: no split character
    assert body.startswith("xy\u20ac")
    assert "1 MiB" in caplog.text


@pytest.mark.parametrize("prefix", [0, 1, 2])
def test_summary_never_splits_a_character(
    runner_files: RunnerFiles, monkeypatch: pytest.MonkeyPatch, prefix: int
) -> None:
    note = github_module._TRUNCATION_NOTE.encode()
    monkeypatch.setattr(github_module, "SUMMARY_LIMIT", 100 + len(note))
    runner_files.summary.write_bytes(b"p" * prefix)
    platform().summary("\U0001d11e" * 100)  # 4 bytes each
    data = runner_files.summary.read_bytes()
    assert len(data) <= 100 + len(note)
    data[: -len(note)].decode("utf-8")


def test_summary_full_file_is_left_alone(
    runner_files: RunnerFiles, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(github_module, "SUMMARY_LIMIT", 50)
    runner_files.summary.write_bytes(b"z" * 45)
    with caplog.at_level("WARNING"):
        platform().summary("more text than fits")
    assert runner_files.summary.read_bytes() == b"z" * 45
    assert "not written" in caplog.text


def test_summary_real_limit_is_one_mib(runner_files: RunnerFiles) -> None:
    assert github_module.SUMMARY_LIMIT == 1024 * 1024
    runner_files.summary.write_bytes(b"a" * (1024 * 1024 - 500))
    platform().summary("b" * 2000)
    data = runner_files.summary.read_bytes()
    assert len(data) <= 1024 * 1024
    assert b"cut this summary short" in data


def test_summary_exactly_at_limit_is_not_cut(
    runner_files: RunnerFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(github_module, "SUMMARY_LIMIT", 20)
    platform().summary("x" * 19)
    assert runner_files.summary.read_bytes() == b"x" * 19 + b"\n"


def test_summary_without_variable() -> None:
    with pytest.raises(ConfigError, match="GITHUB_STEP_SUMMARY is not set"):
        platform().summary("x")


@pytest.mark.parametrize(
    ("data", "size", "expected"),
    [
        (b"abc", 10, b"abc"),
        ("\u00e9\u00e9".encode(), 3, "\u00e9".encode()),
        ("\u00e9\u00e9".encode(), 2, "\u00e9".encode()),
        ("\u00e9".encode(), 1, b""),
        ("a\u20ac".encode(), 3, b"a"),
    ],
)
def test_cut_utf8(data: bytes, size: int, expected: bytes) -> None:
    assert _cut_utf8(data, size) == expected


# Masks


def test_add_mask_goes_to_stderr_only(capsys: pytest.CaptureFixture[str]) -> None:
    platform().add_mask(SECRET)
    captured = capsys.readouterr()
    assert captured.out == ""
    masks = mask_lines(captured.err)
    assert SECRET in masks
    assert base64.b64encode(SECRET.encode()).decode() in masks
    assert all(line.startswith("::add-mask::") for line in captured.err.splitlines())
    assert process_secrets().contains_secret(SECRET)


def test_add_mask_multiline_masks_each_line(capsys: pytest.CaptureFixture[str]) -> None:
    value = "-----BEGIN KEY-----\nAAAABBBBCCCC\nDDDDEEEE%\r\n-----END KEY-----"
    platform().add_mask(value)
    masks = mask_lines(capsys.readouterr().err)
    assert "AAAABBBBCCCC" in masks
    assert "DDDDEEEE%25" in masks  # escaped: the runner unescapes %25 back to %
    assert "-----BEGIN KEY-----%0AAAAABBBBCCCC%0ADDDDEEEE%25%0D%0A-----END KEY-----" in masks


@pytest.mark.parametrize("value", ["", " ", "\n\t "])
def test_add_mask_ignores_blank(capsys: pytest.CaptureFixture[str], value: str) -> None:
    platform().add_mask(value)
    assert capsys.readouterr().err == ""
    assert len(process_secrets()) == 0


def test_add_mask_writes_undecodable_bytes(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    value = b"secret-\xff\xfe-bytes".decode("utf-8", "surrogateescape")
    platform().add_mask(value)
    err = capfdbinary.readouterr().err
    assert b"::add-mask::secret-\xff\xfe-bytes\n" in err


def test_add_mask_respects_min_length(capsys: pytest.CaptureFixture[str]) -> None:
    process_secrets().min_length = 40
    platform().add_mask(SECRET)  # 30 characters: only longer encodings are registered
    masks = mask_lines(capsys.readouterr().err)
    assert SECRET not in masks
    assert masks
    assert all(len(mask) >= 40 for mask in masks)


# Annotations


@pytest.mark.parametrize(
    ("annotation", "line"),
    [
        (
            Annotation(
                AnnotationLevel.ERROR,
                "100% bad\r\nsecond line",
                file="dir,1/a:b.yml",
                line=3,
                column=5,
                end_line=4,
                end_column=9,
                title="Title: with, chars%",
            ),
            "::error file=dir%2C1/a%3Ab.yml,line=3,col=5,endLine=4,endColumn=9,"
            "title=Title%3A with%2C chars%25::100%25 bad%0D%0Asecond line",
        ),
        (Annotation(AnnotationLevel.WARNING, "just a message"), "::warning::just a message"),
        (
            Annotation(AnnotationLevel.NOTICE, "a: b, c", file="f.py", line=1),
            "::notice file=f.py,line=1::a: b, c",
        ),
    ],
)
def test_annotate(annotation: Annotation, line: str, capsys: pytest.CaptureFixture[str]) -> None:
    platform().annotate(annotation)
    captured = capsys.readouterr()
    assert captured.err == line + "\n"
    assert captured.out == ""


def test_annotate_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    p = platform()
    p.add_mask(SECRET)
    capsys.readouterr()
    p.annotate(Annotation(AnnotationLevel.ERROR, f"got {SECRET}", title=f"T {SECRET}"))
    assert capsys.readouterr().err == "::error title=T ***::got ***\n"


def test_annotation_message_cannot_inject_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    platform().annotate(Annotation(AnnotationLevel.ERROR, "x\n::add-mask::y"))
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err == "::error::x%0A::add-mask::y\n"


def test_neutralize() -> None:
    assert platform().neutralize("::set-output name=a::b") == f":{ZWSP}:set-output name=a::b"


# id_token: the happy path


@pytest.fixture
def oidc_env(oidc_server: FakeGitHubOIDC, monkeypatch: pytest.MonkeyPatch) -> FakeGitHubOIDC:
    for name, value in oidc_server.env().items():
        monkeypatch.setenv(name, value)
    return oidc_server


def test_id_token_success(
    oidc_env: FakeGitHubOIDC, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    audience = "sts.amazonaws.com"
    with caplog.at_level("DEBUG"):
        token = platform().id_token(audience)
    header, claims = jwt.decode(token)
    assert header["alg"] == "RS256"
    assert claims["aud"] == audience
    assert claims["iss"] == oidc_env.issuer
    assert claims["sub"] == "repo:octo-org/octo-repo:ref:refs/heads/main"
    assert claims["repository"] == "octo-org/octo-repo"
    assert claims["runner_environment"] == "github-hosted"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["iat"] - claims["nbf"] == 600
    assert token == oidc_env.issued[-1]

    (request,) = oidc_env.token_requests
    assert request.headers["authorization"] == f"Bearer {oidc_env.request_token}"
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"] == f"tollgate/{__version__}"
    assert request.query == {"api-version": ["2.0"], "audience": [audience]}

    captured = capsys.readouterr()
    assert token in mask_lines(captured.err)
    assert token not in captured.out
    assert oidc_env.request_token not in captured.out + captured.err
    assert token not in caplog.text
    assert oidc_env.request_token not in caplog.text
    assert process_secrets().contains_secret(token)


def test_id_token_verifies_against_advertised_jwks(oidc_env: FakeGitHubOIDC) -> None:
    token = platform().id_token("sigstore")
    discovery = requests.get(f"{oidc_env.issuer}/.well-known/openid-configuration", timeout=5)
    jwks = requests.get(discovery.json()["jwks_uri"], timeout=5).json()
    claims = jwt.verify(token, jwks)
    assert claims["aud"] == "sigstore"
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(ValueError, match="signature"):
        jwt.verify(tampered, jwks)


def test_id_token_each_request_has_its_own_jti(oidc_env: FakeGitHubOIDC) -> None:
    p = platform()
    first, second = p.id_token("a"), p.id_token("a")
    assert jwt.decode(first)[1]["jti"] != jwt.decode(second)[1]["jti"]


def test_id_token_default_audience(oidc_env: FakeGitHubOIDC) -> None:
    token = platform().id_token()
    assert jwt.decode(token)[1]["aud"] == "https://github.com/octo-org"
    (request,) = oidc_env.token_requests
    assert "audience" not in request.query


def test_id_token_audience_is_url_encoded(oidc_env: FakeGitHubOIDC) -> None:
    audience = "https://iam.googleapis.com/projects/1/x?y=z&w=1 2#f"
    token = platform().id_token(audience)
    assert jwt.decode(token)[1]["aud"] == audience
    (request,) = oidc_env.token_requests
    assert request.raw_query == (
        "api-version=2.0&audience=https%3A%2F%2Fiam.googleapis.com%2Fprojects%2F1%2Fx"
        "%3Fy%3Dz%26w%3D1%202%23f"
    )


def test_id_token_url_without_query(
    oidc_env: FakeGitHubOIDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", f"{oidc_env.base_url}{TOKEN_PATH}")
    platform().id_token("aud")
    (request,) = oidc_env.token_requests
    assert request.raw_query == "audience=aud"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x/t?api-version=2.0", "https://x/t?api-version=2.0&audience=a%2Fb"),
        ("https://x/t", "https://x/t?audience=a%2Fb"),
        ("https://x/t?", "https://x/t?audience=a%2Fb"),
        ("https://x/t?v=1&", "https://x/t?v=1&audience=a%2Fb"),
    ],
)
def test_with_audience(url: str, expected: str) -> None:
    assert _with_audience(url, "a/b") == expected
    assert _with_audience(url, None) == url


def test_fake_accepts_lowercase_bearer(oidc_server: FakeGitHubOIDC) -> None:
    response = requests.get(
        oidc_server.request_url,
        headers={"Authorization": f"bearer {oidc_server.request_token}"},
        timeout=5,
    )
    assert response.status_code == 200
    assert set(response.json()) == {"count", "value"}


# id_token: missing configuration


@pytest.mark.parametrize(
    "present",
    [(), ("ACTIONS_ID_TOKEN_REQUEST_URL",), ("ACTIONS_ID_TOKEN_REQUEST_TOKEN",)],
)
def test_id_token_without_permission(
    oidc_server: FakeGitHubOIDC, monkeypatch: pytest.MonkeyPatch, present: tuple[str, ...]
) -> None:
    for name in present:
        monkeypatch.setenv(name, oidc_server.env()[name])
    with pytest.raises(ConfigError, match="not set") as info:
        platform().id_token("aud")
    text = info.value.diagnostics()
    assert "id-token: write" in text
    assert "fork" in text
    for name in {"ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"} - set(present):
        assert name in info.value.message
    assert_clean(info.value, oidc_server.request_token)
    assert oidc_server.requests == []


def test_id_token_refuses_plain_http_to_remote_host(
    oidc_env: FakeGitHubOIDC, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "http://example.invalid/idtoken?x=1")
    with pytest.raises(ConfigError, match="not an https URL") as info:
        platform().id_token("aud")
    assert_clean(info.value, oidc_env.request_token)


# id_token: retries and failures


def test_retries_then_succeeds_after_two_503(oidc_env: FakeGitHubOIDC) -> None:
    oidc_env.fail(503, "Service Unavailable", times=2)
    token = platform().id_token("aud")
    assert jwt.decode(token)[1]["aud"] == "aud"
    assert len(oidc_env.token_requests) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_gives_up_after_persistent_5xx(oidc_env: FakeGitHubOIDC, status: int) -> None:
    oidc_env.fail(status, '{"message": "upstream broke"}', times=50)
    with pytest.raises(ExternalError, match=f"HTTP {status}") as info:
        platform().id_token("aud")
    assert "upstream broke" in info.value.message
    assert len(oidc_env.token_requests) == FAST_RETRY.retries + 1
    assert_clean(info.value, oidc_env.request_token)


def test_error_body_is_neutralized_and_redacted(oidc_env: FakeGitHubOIDC) -> None:
    body = f"::set-output name=x::y\n##[command]oops bearer={oidc_env.request_token}"
    oidc_env.fail(500, body, times=50)
    with pytest.raises(ExternalError) as info:
        platform().id_token("aud")
    message = info.value.message
    assert "::set-output" not in message
    assert "##[" not in message
    assert f":{ZWSP}:set-output" in message
    assert f"#{ZWSP}#[command]" in message
    assert "\n" not in message
    assert_clean(info.value, oidc_env.request_token)


def test_long_error_body_is_cut(oidc_env: FakeGitHubOIDC) -> None:
    oidc_env.fail(500, "x" * 5000 + "TAIL", times=50)
    with pytest.raises(ExternalError) as info:
        platform().id_token("aud")
    assert "TAIL" not in info.value.message
    assert len(info.value.message) < 600


@pytest.mark.parametrize("status", [401, 403])
def test_unauthorized_is_config_error_without_retry(oidc_env: FakeGitHubOIDC, status: int) -> None:
    oidc_env.fail(status, '{"message": "Bad credentials"}', times=50)
    with pytest.raises(ConfigError, match=f"HTTP {status}") as info:
        platform().id_token("aud")
    assert "Bad credentials" in info.value.message
    assert len(oidc_env.token_requests) == 1
    assert_clean(info.value, oidc_env.request_token)


def test_wrong_request_token(oidc_env: FakeGitHubOIDC, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "wrong-request-token-0123456789"
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", wrong)
    with pytest.raises(ConfigError, match="refused the request token") as info:
        platform().id_token("aud")
    assert_clean(info.value, wrong, oidc_env.request_token)


def test_404_is_external_error(oidc_env: FakeGitHubOIDC) -> None:
    oidc_env.fail(404, "Not Found", times=50)
    with pytest.raises(ExternalError, match="HTTP 404"):
        platform().id_token("aud")
    assert len(oidc_env.token_requests) == 1


def test_429_honours_retry_after(oidc_env: FakeGitHubOIDC) -> None:
    oidc_env.fail(429, "slow down", headers={"Retry-After": "1"})
    started = time.monotonic()
    platform().id_token("aud")
    assert time.monotonic() - started >= 0.9
    assert len(oidc_env.token_requests) == 2


def test_retry_after_is_capped_by_the_budget(oidc_env: FakeGitHubOIDC) -> None:
    oidc_env.fail(429, "slow down", headers={"Retry-After": "3600"}, times=50)
    started = time.monotonic()
    with pytest.raises(ExternalError, match="HTTP 429"):
        platform(dataclasses.replace(FAST_RETRY, budget=0.5)).id_token("aud")
    assert time.monotonic() - started < 3


def test_timeout_is_retried(oidc_env: FakeGitHubOIDC) -> None:
    oidc_env.delay(1.5)  # longer than FAST_RETRY.read_timeout
    token = platform().id_token("aud")
    assert jwt.decode(token)[1]["aud"] == "aud"
    assert len(oidc_env.token_requests) == 2


def test_persistent_timeout_gives_up(oidc_env: FakeGitHubOIDC) -> None:
    oidc_env.delay(1.5, times=50)
    with pytest.raises(ExternalError, match=r"(?i)timed out") as info:
        platform().id_token("aud")
    assert len(oidc_env.token_requests) == FAST_RETRY.retries + 1
    assert_clean(info.value, oidc_env.request_token)


def test_budget_bounds_total_time(oidc_env: FakeGitHubOIDC) -> None:
    oidc_env.delay(1.5, times=50)
    policy = dataclasses.replace(FAST_RETRY, retries=100, budget=0.5)
    started = time.monotonic()
    with pytest.raises(ExternalError):
        platform(policy).id_token("aud")
    # At most the budget plus one attempt's timeout (and scheduling slack).
    assert time.monotonic() - started < policy.budget + policy.read_timeout + 1.0
    assert len(oidc_env.token_requests) < 5


@pytest.mark.parametrize("fault", ["reset", "disconnect"])
def test_dropped_connection_is_retried(oidc_env: FakeGitHubOIDC, fault: str) -> None:
    getattr(oidc_env, fault)(times=2)
    token = platform().id_token("aud")
    assert jwt.decode(token)[1]["aud"] == "aud"
    assert len(oidc_env.token_requests) == 3


def test_persistent_reset_gives_up(oidc_env: FakeGitHubOIDC) -> None:
    oidc_env.reset(times=50)
    with pytest.raises(ExternalError, match="could not get a token") as info:
        platform().id_token("aud")
    assert_clean(info.value, oidc_env.request_token)


def test_connection_refused(oidc_env: FakeGitHubOIDC, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", f"http://127.0.0.1:{port}/t?api-version=2.0")
    with pytest.raises(ExternalError, match=r"127\.0\.0\.1") as info:
        platform().id_token("aud")
    assert_clean(info.value, oidc_env.request_token)


# id_token: unusable 2xx answers


def test_malformed_json(oidc_env: FakeGitHubOIDC) -> None:
    oidc_env.malformed_json()
    with pytest.raises(ExternalError, match="not JSON") as info:
        platform().id_token("aud")
    assert "eyJ" not in info.value.diagnostics()  # a broken body may hold part of a token


def test_empty_body(oidc_env: FakeGitHubOIDC) -> None:
    oidc_env.empty_body()
    with pytest.raises(ExternalError, match=r"not JSON.*0 bytes"):
        platform().id_token("aud")


def test_missing_value(oidc_env: FakeGitHubOIDC) -> None:
    oidc_env.without_value()
    with pytest.raises(ExternalError, match=r"no 'value' field.*count"):
        platform().id_token("aud")


@pytest.mark.parametrize(
    "body", [b'{"value": "not-a-jwt-but-secret-ish"}', b'{"value": 42}', b'{"value": "a.b"}']
)
def test_value_not_a_jwt(oidc_env: FakeGitHubOIDC, body: bytes) -> None:
    oidc_env.fail(200, body, headers={"Content-Type": "application/json"})
    with pytest.raises(ExternalError, match="not a JWT") as info:
        platform().id_token("aud")
    assert_clean(info.value, "not-a-jwt-but-secret-ish")


def test_json_array_body(oidc_env: FakeGitHubOIDC) -> None:
    oidc_env.fail(200, b'["value"]')
    with pytest.raises(ExternalError, match="JSON list"):
        platform().id_token("aud")


def test_extra_fields_are_ignored(oidc_env: FakeGitHubOIDC) -> None:
    token = jwt.sign({"aud": "x"})
    oidc_env.fail(200, f'{{"value": "{token}", "count": 3, "other": {{}}}}')
    assert platform().id_token("x") == token
