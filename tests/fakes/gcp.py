"""A fake Google Cloud on 127.0.0.1: STS, IAM Credentials and Secret Manager (§10.3).

Wire formats follow oidc-anchors.md §10.3: STS takes the JSON camelCase body of
google-github-actions/auth or the form body of google-auth and answers OAuth-style errors
(``{"error", "error_description"}``); IAM Credentials and Secret Manager answer Google JSON
errors (``{"error": {"code", "message", "status", "details"}}``). The STS verifies the
subject token the way a workload identity pool provider does: RS256 signature against the
test key, issuer, allowed audience, expiry, attribute condition and the 127-byte
``google.subject`` limit. Error wording the anchors do not quote is marked ``(approximated)``.

This module also holds :class:`FakeService`, the loopback server with fault injection and
request recording that the Azure and Vault fakes build on too.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes import jwt
from tests.fakes.github_oidc import Fault

__all__ = ["FakeGCP", "FakeService", "Fault", "Reply", "Request", "crc32c", "verify_jwt"]

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
_S = TypeVar("_S", bound="FakeService")


# The shared loopback service.


@dataclass(frozen=True)
class Request:
    """One request a fake received."""

    method: str
    path: str
    """Percent-decoded path."""
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    @property
    def bearer(self) -> str | None:
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def json_reply(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(
        status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


def verify_jwt(
    token: str,
    *,
    key: jwt.SigningKey,
    audiences: list[str] | None,
    issuer: str | None,
    leeway: float = 0.0,
) -> tuple[dict[str, Any] | None, str | None]:
    """``(claims, None)`` for a valid token, or ``(None, reason)`` for why it is not.

    ``audiences`` None: any ``aud`` is accepted. Reasons are ``signature``, ``malformed``,
    ``expired``, ``not-yet-valid``, ``issuer`` and ``audience``.
    """
    try:
        claims = jwt.verify(token, key.jwks())
    except (ValueError, IndexError, KeyError):
        try:
            jwt.decode(token)
        except (ValueError, IndexError):
            return None, "malformed"
        return None, "signature"
    now = time.time()
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] + leeway < now:
        return None, "expired"
    if isinstance(claims.get("nbf"), (int, float)) and claims["nbf"] - leeway > now:
        return None, "not-yet-valid"
    if issuer is not None and claims.get("iss") != issuer:
        return None, "issuer"
    if audiences is not None:
        aud = claims.get("aud")
        presented = aud if isinstance(aud, list) else [aud]
        if not set(presented) & set(audiences):
            return None, "audience"
    return claims, None


class FakeService:
    """A threaded HTTP server on 127.0.0.1 that records requests and injects faults.

    Subclasses implement :meth:`handle`. Faults are queued per route (a substring of the
    path; ``""`` matches every request) and consumed in order.
    """

    thread_name = "fake-service"
    ssl_context: ssl.SSLContext | None = None
    """Serve HTTPS with this context (set before :meth:`start`)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._faults: deque[tuple[str, Fault]] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self: _S) -> _S:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.02,), name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self: _S) -> _S:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the fake is not running"
        host, port = self._server.server_address[:2]
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host!s}:{port}"

    # Faults and records

    def inject(self, route: str, *faults: Fault) -> None:
        """Apply ``faults``, in order, to the next requests whose path contains ``route``."""
        with self._lock:
            self._faults.extend((route, fault) for fault in faults)

    def fail(
        self,
        route: str,
        status: int,
        body: bytes | str | Any = b"",
        *,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer ``status`` with ``body`` (JSON-encoded unless bytes or str)."""
        hdrs = dict(headers or {})
        if isinstance(body, (bytes, str)):
            data = body.encode() if isinstance(body, str) else body
        else:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        self.inject(route, *[Fault(status=status, body=data, headers=hdrs)] * times)

    def delay(self, route: str, seconds: float, times: int = 1) -> None:
        self.inject(route, *[Fault(delay=seconds)] * times)

    def reset(self, route: str, times: int = 1) -> None:
        self.inject(route, *[Fault(reset=True)] * times)

    def disconnect(self, route: str, times: int = 1) -> None:
        self.inject(route, *[Fault(disconnect=True)] * times)

    def count(self, route: str = "", method: str | None = None) -> int:
        """How many requests whose path contains ``route`` (and of ``method``) arrived."""
        return len(self.matching(route, method))

    def matching(self, route: str = "", method: str | None = None) -> list[Request]:
        return [
            r
            for r in list(self.requests)
            if route in r.path and (method is None or r.method == method)
        ]

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            for index, (route, fault) in enumerate(self._faults):
                if route in path:
                    del self._faults[index]
                    return fault
        return None

    def handle(self, request: Request) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeService

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Writes to connections the client gave up on fail here; expected, not worth noise.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        # A proxied request carries an absolute URL; keep it whole so a test can see that.
        path = self.path if not self.path.startswith("/") else unquote(parts.path)
        request = Request(
            method=self.command,
            path=path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        fake.requests.append(request)
        fault = fake._next_fault(path)
        if fault is not None:
            if fault.delay and fake._stopping.wait(fault.delay):
                return
            if fault.reset:
                # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True
                return
            if fault.disconnect:
                self.connection.shutdown(socket.SHUT_RDWR)
                self.connection.close()
                self.close_connection = True
                return
            if fault.status is not None:
                self._send(Reply(fault.status, fault.body, fault.headers))
                return
        try:
            reply = fake.handle(request)
        except Exception as error:  # a bug in the fake: say so loudly
            reply = json_reply(599, {"fake_error": f"{type(error).__name__}: {error}"})
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


# CRC32C (Castagnoli), which Secret Manager sends as dataCrc32c.


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# Google Cloud.

_SA_PATH = re.compile(
    r"/v1/projects/-/serviceAccounts/([^/:]+):(generateAccessToken|generateIdToken)"
)
_SECRET_PATH = re.compile(r"/v1/projects/([^/]+)/secrets/([^/]+)/versions/([^/:]+):access")
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def google_error(code: int, status: str, message: str, **extra: Any) -> Reply:
    return json_reply(
        code, {"error": {"code": code, "message": message, "status": status, **extra}}
    )


def oauth_error(error: str, description: str, status: int = 400) -> Reply:
    return json_reply(status, {"error": error, "error_description": description})


@dataclass
class _Issued:
    principal: str
    """``subject/<sub>`` for federated tokens, the email for service-account tokens."""
    claims: dict[str, Any]
    expires: float
    kind: str


class FakeGCP(FakeService):
    """STS, IAM Credentials and Secret Manager of one project with one WIF provider."""

    thread_name = "fake-gcp"

    def __init__(
        self,
        *,
        project_number: str = "123456789",
        pool: str = "my-pool",
        provider: str = "my-provider",
        issuer: str = GITHUB_ISSUER,
        key: jwt.SigningKey | None = None,
        allowed_audiences: list[str] | None = None,
        attribute_condition: Callable[[dict[str, Any]], bool] | None = None,
        service_accounts: Mapping[str, set[str]] | None = None,
        secrets_data: Mapping[str, bytes] | None = None,
        denied_secrets: set[str] | None = None,
        fractional_expire_time: bool = False,
    ) -> None:
        super().__init__()
        self.provider_name = (
            f"projects/{project_number}/locations/global/workloadIdentityPools/{pool}"
            f"/providers/{provider}"
        )
        self.issuer = issuer
        self.key = key or jwt.default_key()
        self.allowed_audiences = allowed_audiences or [
            f"https://iam.googleapis.com/{self.provider_name}"
        ]
        self.attribute_condition = attribute_condition
        # email -> principals granted roles/iam.workloadIdentityUser on it:
        # "subject/<sub>" or "attribute.repository/<owner>/<repo>".
        self.service_accounts = dict(
            service_accounts
            if service_accounts is not None
            else {
                "deployer@my-project.iam.gserviceaccount.com": {
                    "attribute.repository/octo-org/octo-repo"
                }
            }
        )
        # "<project>/<secret>/<version>" -> payload; "latest" is the highest version.
        self.secrets_data = dict(secrets_data or {})
        self.denied_secrets = set(denied_secrets or ())
        self.fractional_expire_time = fractional_expire_time
        self.issued: dict[str, _Issued] = {}
        self.subject_tokens: list[str] = []

    def handle(self, request: Request) -> Reply:
        if request.method == "POST" and request.path == "/v1/token":
            return self._sts(request)
        match = _SA_PATH.fullmatch(request.path)
        if request.method == "POST" and match:
            return self._iam(request, match.group(1), match.group(2))
        match = _SECRET_PATH.fullmatch(request.path)
        if request.method == "GET" and match:
            return self._secret(request, *match.groups())
        return google_error(404, "NOT_FOUND", f"The requested URL {request.path} was not found.")

    # STS

    def _sts(self, request: Request) -> Reply:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            body = request.json()
            grant_type = body.get("grantType")
            audience = body.get("audience")
            subject_token = body.get("subjectToken")
            subject_token_type = body.get("subjectTokenType")
            requested = body.get("requestedTokenType")
        else:
            form = request.form()
            grant_type = form.get("grant_type")
            audience = form.get("audience")
            subject_token = form.get("subject_token")
            subject_token_type = form.get("subject_token_type")
            requested = form.get("requested_token_type")
        if grant_type != "urn:ietf:params:oauth:grant-type:token-exchange":
            return oauth_error("unsupported_grant_type", f"Unsupported grant type: {grant_type}")
        if subject_token_type not in (
            "urn:ietf:params:oauth:token-type:jwt",
            "urn:ietf:params:oauth:token-type:id_token",
        ):
            return oauth_error("invalid_request", "Invalid subject token type.")
        if requested != "urn:ietf:params:oauth:token-type:access_token":
            return oauth_error("invalid_request", "Invalid requested token type.")
        if audience != f"//iam.googleapis.com/{self.provider_name}":
            return oauth_error(
                "invalid_target",
                'The target service indicated by the "audience" parameters is invalid. This '
                "might either be because the pool or provider is disabled or deleted or because "
                "it doesn't exist.",
            )
        if not isinstance(subject_token, str):
            return oauth_error("invalid_request", "Missing subject token.")
        self.subject_tokens.append(subject_token)
        claims, reason = verify_jwt(
            subject_token, key=self.key, audiences=self.allowed_audiences, issuer=self.issuer
        )
        if claims is None:
            header_claims = _unverified(subject_token)
            return oauth_error("invalid_grant", self._reason_text(reason, header_claims))
        if self.attribute_condition and not self.attribute_condition(claims):
            return oauth_error(
                "unauthorized_client",
                "The given credential is rejected by the attribute condition.",
            )
        if len(str(claims.get("sub", "")).encode()) > 127:
            return oauth_error(
                "invalid_request",
                "The size of mapped attribute google.subject exceeds the 127 bytes limit. "
                "Either modify your attribute mapping or the incoming assertion to produce a "
                "mapped attribute that is less than 127 bytes.",
            )
        token = f"ya29.fed-{secrets.token_urlsafe(24)}"
        self.issued[token] = _Issued(f"subject/{claims['sub']}", claims, time.time() + 3599, "fed")
        return json_reply(
            200,
            {
                "access_token": token,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": 3599,
            },
        )

    def _reason_text(self, reason: str | None, claims: dict[str, Any]) -> str:
        if reason == "issuer":
            return (
                f"The issuer in ID Token {claims.get('iss')} does not match the expected ones: "
                f"{self.issuer}."
            )
        if reason == "audience":
            return (
                f"The audience in ID Token [{claims.get('aud')}] does not match the expected "
                "audience."
            )  # (approximated)
        if reason == "expired":
            return "ID Token expired."  # (approximated)
        if reason == "malformed":
            return "Unable to parse the ID Token."  # (approximated)
        return "Invalid ID Token signature."  # (approximated)

    # IAM Credentials

    def _authenticated(self, request: Request) -> _Issued | Reply:
        issued = self.issued.get(request.bearer or "")
        if issued is None or issued.expires < time.time():
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential. See "
                "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            )
        return issued

    def _iam(self, request: Request, email: str, method: str) -> Reply:
        caller = self._authenticated(request)
        if isinstance(caller, Reply):
            return caller
        if email not in self.service_accounts:
            return google_error(404, "NOT_FOUND", f"Not found; Gaia id not found for email {email}")
        claims = caller.claims
        principals = {
            f"subject/{claims.get('sub')}",
            f"attribute.repository/{claims.get('repository')}",
        }
        if caller.kind != "fed" or not principals & self.service_accounts[email]:
            permission = "iam.serviceAccounts.getAccessToken"
            if method == "generateIdToken":
                permission = "iam.serviceAccounts.getOpenIdToken"
            return google_error(
                403,
                "PERMISSION_DENIED",
                f"Permission '{permission}' denied on resource (or it may not exist).",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "IAM_PERMISSION_DENIED",
                        "domain": "iam.googleapis.com",
                        "metadata": {"permission": permission},
                    }
                ],
            )
        body = request.json()
        if method == "generateIdToken":
            audience = body.get("audience")
            if not audience:
                return google_error(400, "INVALID_ARGUMENT", "Audience required.")
            claims_out = {
                "iss": "https://accounts.google.com",
                "aud": audience,
                "sub": "1" * 21,
                "azp": "1" * 21,
                "iat": int(time.time()),
                "exp": int(time.time()) + 3600,
            }
            if body.get("includeEmail"):
                claims_out["email"] = email
            return json_reply(200, {"token": jwt.sign(claims_out, self.key)})
        scope = body.get("scope")
        if not scope:
            return google_error(400, "INVALID_ARGUMENT", "Scope required.")
        lifetime = str(body.get("lifetime", "3600s"))
        seconds = float(lifetime.rstrip("s"))
        if seconds > 3600:
            return google_error(
                400, "INVALID_ARGUMENT", "The access token lifetime cannot exceed 3600 seconds."
            )
        token = f"ya29.sa-{secrets.token_urlsafe(24)}"
        expires = time.time() + seconds
        self.issued[token] = _Issued(email, claims, expires, "sa")
        moment = datetime.fromtimestamp(expires, timezone.utc).replace(microsecond=0)
        text = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.fractional_expire_time:
            text = (moment + timedelta(microseconds=123456)).strftime(
                "%Y-%m-%dT%H:%M:%S.%f"
            ) + "789Z"
        return json_reply(200, {"accessToken": token, "expireTime": text})

    # Secret Manager

    def _secret(self, request: Request, project: str, name: str, version: str) -> Reply:
        caller = self._authenticated(request)
        if isinstance(caller, Reply):
            return caller
        resource = f"projects/{project}/secrets/{name}/versions/{version}"
        if name in self.denied_secrets:
            return google_error(
                403,
                "PERMISSION_DENIED",
                f"Permission 'secretmanager.versions.access' denied for resource '{resource}' "
                "(or it may not exist).",
            )
        versions = sorted(
            (int(key.rsplit("/", 1)[1]), key)
            for key in self.secrets_data
            if key.startswith(f"{project}/{name}/")
        )
        if version == "latest" and versions:
            key = versions[-1][1]
        else:
            key = f"{project}/{name}/{version}"
        if key not in self.secrets_data:
            return google_error(
                404,
                "NOT_FOUND",
                f"Secret [projects/{project}/secrets/{name}] not found or has no versions.",
            )
        payload = self.secrets_data[key]
        return json_reply(
            200,
            {
                "name": f"projects/{project}/secrets/{name}/versions/{key.rsplit('/', 1)[1]}",
                "payload": {
                    "data": base64.b64encode(payload).decode(),
                    "dataCrc32c": str(crc32c(payload)),
                },
            },
        )


def _unverified(token: str) -> dict[str, Any]:
    try:
        return jwt.decode(token)[1]
    except (ValueError, IndexError):
        return {}


# Helpers for driving `tollgate creds` against these fakes (shared by the provider tests).


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
    from pathlib import Path

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


def shell_exports(stdout: bytes, names: list[str] | None = None) -> dict[str, str]:
    """Evaluate ``export`` lines in bash, as a job would; the variables they set."""
    import os
    import subprocess

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
    """The ``NAME<<DELIMITER ... DELIMITER`` records of ``$GITHUB_ENV`` / ``$GITHUB_OUTPUT``."""
    from pathlib import Path

    records: dict[str, str] = {}
    lines = Path(path).read_text().split("\n") if Path(path).exists() else []
    index = 0
    while index < len(lines):
        head = lines[index]
        if "<<" in head:
            name, _, delimiter = head.partition("<<")
            end = lines.index(delimiter, index + 1)
            records[name] = "\n".join(lines[index + 1 : end])
            index = end + 1
        else:
            index += 1
    return records


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
    from pathlib import Path

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
