"""The shared HTTP client (GitHub's token request, the GCP, Azure and Vault providers),
against a loopback server."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes._service import FakeService, Reply, Request, json_reply
from tollgate import __version__, _http
from tollgate._http import HttpClient, HttpPolicy
from tollgate.errors import ConfigError, ExternalError, UsageError
from tollgate.masking import secrets as secrets_module

FAST = HttpPolicy(
    retries=3,
    backoff_factor=0.01,
    backoff_max=0.05,
    budget=5.0,
    connect_timeout=1,
    read_timeout=0.5,
)


class Echo(FakeService):
    """Answers 200 with a JSON object naming the request."""

    def handle(self, request: Request) -> Reply:
        return json_reply(200, {"method": request.method, "path": request.path})


@pytest.fixture
def echo() -> Iterator[Echo]:
    with Echo() as server:
        yield server


def test_sends_user_agent_and_no_netrc_credentials(
    echo: Echo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with HttpClient(FAST) as client:
        response = client.request("GET", f"{echo.base_url}/x", service="echo", idempotent=True)
    assert response.status_code == 200
    headers = echo.requests[0].headers
    assert headers["user-agent"] == f"tollgate/{__version__}"
    assert "authorization" not in headers


def test_idempotent_request_is_retried_on_5xx_and_counted(echo: Echo) -> None:
    echo.fail("/x", 503, {"error": "busy"}, times=2)
    with HttpClient(FAST) as client:
        response = client.request("POST", f"{echo.base_url}/x", service="echo", idempotent=True)
        assert client.attempts == 3
    assert response.status_code == 200
    assert echo.count("/x") == 3


def test_non_idempotent_post_is_not_retried_on_5xx_or_reset(echo: Echo) -> None:
    echo.fail("/x", 503, "busy")
    with HttpClient(FAST) as client:
        response = client.request("POST", f"{echo.base_url}/x", service="echo", idempotent=False)
        assert response.status_code == 503
        echo.reset("/y")
        with pytest.raises(ExternalError, match="could not reach echo"):
            client.request("POST", f"{echo.base_url}/y", service="echo", idempotent=False)
    assert echo.count("/x") == 1
    assert echo.count("/y") == 1


def test_non_idempotent_post_is_retried_when_the_server_did_not_process_it(echo: Echo) -> None:
    echo.fail("/x", 429, "slow down", headers={"Retry-After": "0"})
    echo.fail("/x", 412, "standby")
    with HttpClient(FAST) as client:
        response = client.request(
            "POST",
            f"{echo.base_url}/x",
            service="echo",
            idempotent=False,
            unprocessed_statuses=frozenset({412, 429}),
        )
    assert response.status_code == 200
    assert echo.count("/x") == 3


def test_connection_reset_and_read_timeout_are_retried_when_idempotent(echo: Echo) -> None:
    echo.reset("/x")
    echo.delay("/x", 2.0)
    with HttpClient(FAST) as client:
        response = client.request("GET", f"{echo.base_url}/x", service="echo", idempotent=True)
    assert response.status_code == 200
    assert echo.count("/x") == 3


def test_retry_after_is_honoured(echo: Echo) -> None:
    echo.fail("/x", 429, "slow down", headers={"Retry-After": "1"})
    started = time.monotonic()
    with HttpClient(FAST) as client:
        response = client.request("GET", f"{echo.base_url}/x", service="echo", idempotent=True)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.9


def test_retry_after_beyond_the_budget_gives_up_at_once(echo: Echo) -> None:
    echo.fail("/x", 429, "slow down", headers={"Retry-After": "120"})
    started = time.monotonic()
    with HttpClient(FAST) as client:
        response = client.request("GET", f"{echo.base_url}/x", service="echo", idempotent=True)
    assert response.status_code == 429
    assert time.monotonic() - started < 1.0
    assert echo.count("/x") == 1


def test_the_time_budget_bounds_the_retries(echo: Echo) -> None:
    echo.fail("/x", 503, "busy", times=50)
    policy = HttpPolicy(retries=50, backoff_factor=0.2, backoff_max=0.2, jitter=0, budget=0.7)
    started = time.monotonic()
    with HttpClient(policy) as client:
        response = client.request("GET", f"{echo.base_url}/x", service="echo", idempotent=True)
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert elapsed < 1.5
    assert 2 <= echo.count("/x") <= 6


def test_connection_refused_becomes_external_error_naming_the_host() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with HttpClient(FAST) as client, pytest.raises(ExternalError) as caught:
        client.request(
            "POST",
            f"http://127.0.0.1:{port}/token",
            service="Test STS",
            idempotent=False,
            json_body={"subjectToken": "request-body-token-value"},
        )
    text = caught.value.diagnostics()
    assert "Test STS (127.0.0.1)" in text
    assert "4 attempts" in text  # connection refused proves nothing was sent: retried
    assert "request-body-token-value" not in text
    assert caught.value.exit_code == 3


def test_redirects_are_not_followed(echo: Echo) -> None:
    echo.fail("/x", 307, "", headers={"Location": f"{echo.base_url}/elsewhere"})
    with HttpClient(FAST) as client:
        response = client.request("POST", f"{echo.base_url}/x", service="echo", idempotent=True)
    assert response.status_code == 307
    assert echo.count("/elsewhere") == 0
    error = _http.status_error(response, "echo", "")
    assert isinstance(error, ConfigError)
    assert "redirect" in error.message


def test_error_excerpt_is_one_line_short_redacted_and_inert(echo: Echo) -> None:
    secret = "super-secret-value-123"
    secrets_module.process_secrets().add(secret)
    body = f"oops\n::add-mask::x\n::set-env name=A::{secret}\n" + "y" * 1000
    echo.fail("/x", 400, body)
    with HttpClient(FAST) as client:
        response = client.request("GET", f"{echo.base_url}/x", service="echo", idempotent=True)
    error = _http.status_error(response, "echo", "")
    assert isinstance(error, ConfigError)
    assert "\n" not in error.message
    assert secret not in error.message
    # The runner acts only on lines that start with "::": the body is inside one line.
    assert not any(line.lstrip().startswith("::") for line in error.diagnostics().splitlines())
    assert len(error.message) < 400


def test_success_body_that_is_not_json_is_described_without_content(echo: Echo) -> None:
    echo.fail("/x", 200, "access_token=leaked-token-value", headers={"Content-Type": "text/plain"})
    with HttpClient(FAST) as client:
        response = client.request("GET", f"{echo.base_url}/x", service="echo", idempotent=True)
    with pytest.raises(ExternalError) as caught:
        _http.json_object(response, "echo")
    assert "not JSON" in caught.value.message
    assert "leaked-token-value" not in caught.value.diagnostics()


def test_proxy_from_the_environment_and_no_proxy(
    echo: Echo, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Echo() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
        monkeypatch.setenv("http_proxy", proxy.base_url)
        monkeypatch.delenv("NO_PROXY")
        monkeypatch.delenv("no_proxy")
        with HttpClient(FAST) as client:
            client.request("GET", f"{echo.base_url}/via-proxy", service="echo", idempotent=True)
        # The proxy got the request in absolute form; the target got nothing.
        assert [r.path for r in proxy.requests] == [f"{echo.base_url}/via-proxy"]
        assert echo.count() == 0

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        with HttpClient(FAST) as client:
            client.request("GET", f"{echo.base_url}/direct", service="echo", idempotent=True)
        assert echo.count("/direct") == 1
        assert len(proxy.requests) == 1


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tollgate test CA")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "ca.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_with_a_private_ca_needs_the_ca_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Echo()
    server.ssl_context = context
    with server:
        with HttpClient(FAST) as client, pytest.raises(ConfigError) as caught:
            client.request("GET", f"{server.base_url}/x", service="echo", idempotent=True)
        assert "--ca-bundle" in caught.value.diagnostics()
        policy = HttpPolicy(retries=0, ca_bundle=str(cert))
        with HttpClient(policy) as client:
            response = client.request(
                "GET", f"{server.base_url}/x", service="echo", idempotent=True
            )
        assert response.status_code == 200
    with pytest.raises(UsageError, match="CA bundle"):
        HttpClient(HttpPolicy(ca_bundle=str(tmp_path / "missing.pem")))


def test_check_endpoint_allows_https_and_loopback_http_only() -> None:
    assert _http.check_endpoint("https://sts.example.com/", "--x") == "https://sts.example.com"
    assert _http.check_endpoint("http://127.0.0.1:8200", "--x") == "http://127.0.0.1:8200"
    with pytest.raises(UsageError, match="only over TLS"):
        _http.check_endpoint("http://vault.example.com", "--url")
    with pytest.raises(UsageError, match="not a URL"):
        _http.check_endpoint("vault.example.com", "--url")
