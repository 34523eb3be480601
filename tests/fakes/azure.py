"""A fake Microsoft Entra ID token endpoint and Key Vault on 127.0.0.1 (§10.4).

``POST /{tenant}/oauth2/v2.0/token`` takes the client-credentials form with a federated
client assertion and checks it the way Entra does: the tenant and app exist, the assertion
is an RS256 JWT signed by the test key, inside its validity window, and one of the app's
federated credentials matches its issuer, subject (case-sensitively) and audience. Errors are
Entra's envelope: ``{"error", "error_description": "AADSTS...: ...", "error_codes": [...],
"timestamp", "trace_id", "correlation_id"}``.

Key Vault (``GET /secrets/{name}[/{version}]?api-version=...``) serves one vault, so a
test names secrets by identifier URL (``<base_url>/secrets/NAME``). It accepts only tokens
this fake issued for the Key Vault resource.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from tests.fakes import jwt
from tests.fakes._service import GITHUB_ISSUER, FakeService, Reply, Request, json_reply, verify_jwt

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "97e0a5b7-d745-40b6-94fe-5f77d35c6e05"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
ARM_SCOPE = "https://management.azure.com/.default"
VAULT_SCOPE = "https://vault.azure.net/.default"


@dataclass(frozen=True)
class FederatedCredential:
    issuer: str
    subject: str
    audiences: tuple[str, ...] = (EXCHANGE_AUDIENCE,)


@dataclass(frozen=True)
class _Issued:
    resource: str
    expires: float


class FakeAzure(FakeService):
    """One tenant with one app registration (and its federated credentials), one Key Vault."""

    thread_name = "fake-azure"

    def __init__(
        self,
        *,
        tenant_id: str = TENANT_ID,
        client_id: str = CLIENT_ID,
        credentials: list[FederatedCredential] | None = None,
        key: jwt.SigningKey | None = None,
        vault_secrets: Mapping[str, str] | None = None,
        denied_secrets: set[str] | None = None,
    ) -> None:
        super().__init__()
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.credentials = credentials or [
            FederatedCredential(GITHUB_ISSUER, "repo:octo-org/octo-repo:ref:refs/heads/main")
        ]
        self.key = key or jwt.default_key()
        self.vault_secrets = dict(vault_secrets or {})
        self.denied_secrets = set(denied_secrets or ())
        self.issued: dict[str, _Issued] = {}
        self.assertions: list[str] = []

    def handle(self, request: Request) -> Reply:
        parts = request.path.strip("/").split("/")
        if request.method == "POST" and parts[1:] == ["oauth2", "v2.0", "token"]:
            return self._token(request, parts[0])
        if request.method == "GET" and parts[0] == "secrets" and len(parts) in (2, 3):
            return self._secret(request, parts[1])
        return json_reply(404, {"error": {"code": "NotFound", "message": "Not found"}})

    # Entra ID

    def _aad_error(self, status: int, error: str, code: int, text: str) -> Reply:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        return json_reply(
            status,
            {
                "error": error,
                "error_description": f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: "
                f"{correlation} Timestamp: {now}",
                "error_codes": [code],
                "timestamp": now,
                "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": f"https://login.microsoftonline.com/error?code={code}",
            },
        )

    def _token(self, request: Request, tenant: str) -> Reply:
        form = request.form()
        if tenant != self.tenant_id:
            return self._aad_error(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud.",
            )
        if form.get("grant_type") != "client_credentials":
            return self._aad_error(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        client_id = form.get("client_id", "")
        if client_id != self.client_id:
            return self._aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant.",
            )
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            return self._aad_error(
                400,
                "invalid_request",
                90014,
                "The required field 'client_assertion' is missing from the credential.",
            )
        self.assertions.append(assertion)
        claims, reason = verify_jwt(assertion, key=self.key, audiences=None, issuer=None)
        if reason == "malformed":
            return self._aad_error(
                400, "invalid_client", 50027, "JWT token is invalid or malformed."
            )
        if reason == "signature":
            return self._aad_error(
                401, "invalid_client", 50013, "Assertion failed signature validation."
            )
        if reason in ("expired", "not-yet-valid"):
            raw = jwt.decode(assertion)[1]
            return self._aad_error(
                400,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range. Current time: "
                f"{_when(time.time())}, assertion valid from {_when(raw.get('nbf'))}, expiry "
                f"time of assertion {_when(raw.get('exp'))}.",
            )
        assert claims is not None
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        match = [
            c
            for c in self.credentials
            if c.issuer == claims.get("iss")
            and c.subject == claims.get("sub")
            and set(c.audiences) & set(audiences)
        ]
        if not match:
            return self._aad_error(
                400,
                "invalid_client",
                70021,
                "No matching federated identity record found for presented assertion. "
                f"Assertion Issuer: '{claims.get('iss')}'. Assertion Subject: "
                f"'{claims.get('sub')}'. Assertion Audience: '{aud}'.",
            )
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            return self._aad_error(
                400,
                "invalid_scope",
                70011,
                f"The provided value for the input parameter 'scope' is not valid. The scope "
                f"{scope} is not valid.",
            )
        token = f"eyJ0eXAi.fake-{secrets.token_urlsafe(24)}"
        self.issued[token] = _Issued(scope.removesuffix("/.default"), time.time() + 3599)
        return json_reply(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": token,
            },
        )

    # Key Vault

    def _secret(self, request: Request, name: str) -> Reply:
        if not request.query.get("api-version"):
            return json_reply(
                400,
                {
                    "error": {
                        "code": "BadParameter",
                        "message": "The 'api-version' query parameter is missing.",
                    }
                },
            )
        issued = self.issued.get(request.bearer or "")
        if issued is None or issued.expires < time.time():
            return json_reply(
                401,
                {
                    "error": {
                        "code": "Unauthorized",
                        "message": "AKV10000: Request is missing a Bearer or PoP token.",
                    }
                },
                {
                    "WWW-Authenticate": 'Bearer authorization="https://login.microsoftonline.com/'
                    f'{self.tenant_id}", resource="https://vault.azure.net"'
                },
            )
        if issued.resource != "https://vault.azure.net":
            return json_reply(
                401,
                {
                    "error": {
                        "code": "Unauthorized",
                        "message": "AKV10022: Invalid audience. Expected https://vault.azure.net, "
                        f"found: {issued.resource}.",
                    }
                },
            )
        if name in self.denied_secrets:
            return json_reply(
                403,
                {
                    "error": {
                        "code": "Forbidden",
                        "message": "Caller is not authorized to perform action on resource.\r\n"
                        "If role assignments, deny assignments or role definitions were changed "
                        f"recently, please observe propagation time.\r\nCaller: appid={self.client_id}"
                        "\r\nAction: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'",
                        "innererror": {"code": "ForbiddenByRbac"},
                    }
                },
            )
        if name not in self.vault_secrets:
            return json_reply(
                404,
                {
                    "error": {
                        "code": "SecretNotFound",
                        "message": f"A secret with (name/id) {name} was not found in this key vault. "
                        "If you recently deleted this secret you may be able to recover it using "
                        "the correct recovery command.",
                    }
                },
            )
        return json_reply(
            200,
            {
                "value": self.vault_secrets[name],
                "id": f"https://fake.vault.azure.net/secrets/{name}/{uuid.uuid4().hex}",
                "attributes": {"enabled": True, "created": 1700000000, "updated": 1700000000},
                "tags": {},
            },
        )


def _when(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "unknown"
    return datetime.fromtimestamp(value, timezone.utc).strftime("%m/%d/%Y %H:%M:%S")
