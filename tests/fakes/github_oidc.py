"""A fake GitHub Actions OIDC token endpoint on 127.0.0.1 (oidc-anchors.md §10.1).

It hands out a request URL that already has a query string (``...?api-version=2.0``),
requires ``Authorization: Bearer <request token>`` (scheme case-insensitive), echoes the
``audience`` query parameter into ``aud`` and answers ``{"count": ..., "value": <JWT>}`` with
GitHub's claims (§7.1) signed RS256 by the test key. It serves the discovery document and
the JWKS it names, so tokens can be verified end to end.

Faults are scripted: each token request takes the next :class:`Fault` from a queue
(statuses with bodies and headers, delays, dropped or reset connections). Every request is
recorded for assertions. Use it as a context manager; it stops itself.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes import jwt
from tests.fakes._service import Fault, LoopbackServer, interrupt

TOKEN_PATH = (
    "/00000000-0000-0000-0000-000000000000/_apis/distributedtask/hubs/Actions/plans/"
    "11111111-1111-1111-1111-111111111111/jobs/22222222-2222-2222-2222-222222222222/idtoken"
)
JWKS_PATH = "/.well-known/jwks"
DISCOVERY_PATH = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received."""

    path: str
    raw_query: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Header names lower-cased."""

    @property
    def audience(self) -> str | None:
        values = self.query.get("audience")
        return values[0] if values else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        fake.requests.append(
            RecordedRequest(
                path=parts.path,
                raw_query=parts.query,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={name.lower(): value for name, value in self.headers.items()},
            )
        )
        if parts.path == DISCOVERY_PATH:
            self._json(200, fake.discovery())
        elif parts.path == JWKS_PATH:
            self._json(200, fake.key.jwks())
        elif parts.path == TOKEN_PATH:
            self._token(fake, parse_qs(parts.query))
        else:
            self._json(404, {"message": "Not Found"})

    def _token(self, fake: FakeGitHubOIDC, query: dict[str, list[str]]) -> None:
        fault = fake._next_fault()
        if fault is not None:
            if interrupt(self, fault, fake._stopping):
                return
            if fault.status is not None:
                self._send(fault.status, fault.body, fault.headers)
                return
        scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or credentials.strip() != fake.request_token:
            self._json(401, {"message": "Bad credentials"})
            return
        audience = query.get("audience", [None])[0]
        token = jwt.sign(fake.claims_for(audience), fake.key)
        fake.issued.append(token)
        self._json(200, {"count": len(fake.issued), "value": token})

    def _json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FakeGitHubOIDC(LoopbackServer):
    """The token endpoint, discovery document and JWKS of a GitHub Actions job."""

    handler = _Handler
    thread_name = "fake-github-oidc"

    def __init__(
        self,
        *,
        owner: str = "octo-org",
        repo: str = "octo-repo",
        request_token: str | None = None,
        claims: Mapping[str, Any] | None = None,
        key: jwt.SigningKey | None = None,
    ) -> None:
        super().__init__()
        self.owner = owner
        self.repo = repo
        self.request_token = request_token or f"fake-request-token-{secrets.token_hex(16)}"
        self.extra_claims = dict(claims or {})
        self.key = key or jwt.default_key()
        self.requests: list[RecordedRequest] = []
        self.issued: list[str] = []
        self._count = 0

    # Addresses

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def request_url(self) -> str:
        """What the runner puts in ``ACTIONS_ID_TOKEN_REQUEST_URL``."""
        return f"{self.base_url}{TOKEN_PATH}?api-version=2.0"

    def env(self) -> dict[str, str]:
        """The variables a job with ``id-token: write`` gets."""
        return {
            "GITHUB_ACTIONS": "true",
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.request_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token,
        }

    @property
    def token_requests(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == TOKEN_PATH]

    # Fault injection

    def enqueue(self, *faults: Fault) -> None:
        """Apply ``faults`` to the next token requests, in order."""
        self.inject("", *faults)

    def fail(
        self,
        status: int,
        body: bytes | str = b"",
        *,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.enqueue(*[Fault(status=status, body=data, headers=dict(headers or {}))] * times)

    def empty_body(self, times: int = 1) -> None:
        self.fail(200, b"", headers={"Content-Type": "application/json"}, times=times)

    def malformed_json(self, times: int = 1) -> None:
        self.fail(200, b'{"value": "eyJ', headers={"Content-Type": "application/json"}, times=times)

    def without_value(self, times: int = 1) -> None:
        self.fail(200, b'{"count": 1}', headers={"Content-Type": "application/json"}, times=times)

    def delay(self, seconds: float, times: int = 1) -> None:
        self.enqueue(*[Fault(delay=seconds)] * times)

    def disconnect(self, times: int = 1) -> None:
        self.enqueue(*[Fault(disconnect=True)] * times)

    def reset(self, times: int = 1) -> None:
        self.enqueue(*[Fault(reset=True)] * times)

    # Tokens

    def claims_for(self, audience: str | None) -> dict[str, Any]:
        """GitHub's claims for a push to main (oidc-anchors.md §7.1), plus any overrides."""
        with self._lock:
            self._count += 1
            count = self._count
        now = int(time.time())
        repository = f"{self.owner}/{self.repo}"
        workflow_ref = f"{repository}/.github/workflows/deploy.yml@refs/heads/main"
        sha = "a" * 40
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "sub": f"repo:{repository}:ref:refs/heads/main",
            "aud": audience or f"https://github.com/{self.owner}",
            "ref": "refs/heads/main",
            "sha": sha,
            "repository": repository,
            "repository_owner": self.owner,
            "repository_owner_id": "1000",
            "repository_id": "2000",
            "repository_visibility": "private",
            "run_id": "3000",
            "run_number": "7",
            "run_attempt": "1",
            "runner_environment": "github-hosted",
            "actor": "octocat",
            "actor_id": "4000",
            "workflow": "deploy",
            "workflow_ref": workflow_ref,
            "workflow_sha": sha,
            "job_workflow_ref": workflow_ref,
            "job_workflow_sha": sha,
            "head_ref": "",
            "base_ref": "",
            "event_name": "push",
            "ref_type": "branch",
            "ref_protected": "true",
            "check_run_id": str(5000 + count),
            "iss": self.issuer,
            "nbf": now - 600,
            "exp": now + 300,
            "iat": now,
        }
        claims.update(self.extra_claims)
        return claims

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.base_url}{JWKS_PATH}",
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
        }
