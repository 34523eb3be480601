"""A fake Google Cloud on 127.0.0.1: STS, IAM Credentials and Secret Manager (§10.3).

Wire formats follow oidc-anchors.md §10.3: STS takes the JSON camelCase body of
google-github-actions/auth or the form body of google-auth and answers OAuth-style errors
(``{"error", "error_description"}``); IAM Credentials and Secret Manager answer Google JSON
errors (``{"error": {"code", "message", "status", "details"}}``). The STS verifies the
subject token the way a workload identity pool provider does: RS256 signature against the
test key, issuer, allowed audience, expiry, attribute condition and the 127-byte
``google.subject`` limit. Error wording the anchors do not quote is marked ``(approximated)``.

It builds on :class:`tests.fakes._service.FakeService`, as the Azure and Vault fakes do.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.fakes import jwt
from tests.fakes._service import GITHUB_ISSUER, FakeService, Reply, Request, json_reply, verify_jwt

__all__ = ["FakeGCP", "crc32c"]


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
            header_claims = jwt.unverified_claims(subject_token)
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
