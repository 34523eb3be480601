"""A fake HashiCorp Vault on 127.0.0.1: JWT auth, KV v1/v2, mount lookup, revoke (§10.5).

Every error is Vault's envelope ``{"errors": [...]}``; the login checks the JWT the way the
JWT auth method does (signature against the test key, ``bound_issuer``, expiry,
``bound_audiences``, ``bound_subject``, ``bound_claims``), with the messages Vault uses.
Mounts and roles live in one namespace (``None``: the root), so a wrong ``X-Vault-Namespace``
looks to a client like a missing mount, as it does on Vault Enterprise: ``403 permission
denied``, which is what Vault answers for an unknown path without a valid token. Policies are lists
of path prefixes the token may read.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes import jwt
from tests.fakes._service import GITHUB_ISSUER, FakeService, Reply, Request, json_reply, verify_jwt


@dataclass(frozen=True)
class Role:
    bound_audiences: tuple[str, ...] = ()
    bound_subject: str | None = None
    bound_claims: Mapping[str, str | list[str]] = field(default_factory=dict)
    policies: tuple[str, ...] = ("default", "ci")
    ttl: int = 1200


@dataclass
class _Token:
    policies: tuple[str, ...]
    expires: float


def errors(status: int, *messages: str, **extra: Any) -> Reply:
    return json_reply(status, {"errors": list(messages), **extra})


def _envelope(**fields: Any) -> dict[str, Any]:
    return {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": None,
        "wrap_info": None,
        "warnings": None,
        "auth": None,
        **fields,
    }


class FakeVault(FakeService):
    """A JWT auth mount, KV mounts (``secret/`` v2 and ``kv1/`` v1 by default), policies."""

    thread_name = "fake-vault"

    def __init__(
        self,
        *,
        auth_mount: str = "jwt",
        issuer: str = GITHUB_ISSUER,
        roles: Mapping[str, Role] | None = None,
        default_role: str | None = None,
        configured: bool = True,
        namespace: str | None = None,
        key: jwt.SigningKey | None = None,
        kv: Mapping[str, int] | None = None,
        data: Mapping[str, Mapping[str, Any]] | None = None,
        deleted: set[str] | None = None,
        policies: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        super().__init__()
        self.auth_mount = auth_mount
        self.issuer = issuer
        self.roles = dict(
            roles
            if roles is not None
            else {
                "ci": Role(
                    bound_audiences=("https://github.com/octo-org",),
                    bound_claims={"repository": "octo-org/octo-repo"},
                )
            }
        )
        self.default_role = default_role
        self.configured = configured
        self.namespace = namespace
        self.key = key or jwt.default_key()
        # mount path (with trailing slash) -> KV version
        self.kv = dict(kv if kv is not None else {"secret/": 2, "kv1/": 1})
        # "mount/path" (logical, without data/) -> key/value data
        self.data = {k: dict(v) for k, v in (data or {}).items()}
        self.deleted = set(deleted or ())
        # policy -> readable API path prefixes (KV v2 with data/)
        self.policies = dict(
            policies
            if policies is not None
            else {"default": (), "ci": ("secret/data/ci/", "kv1/ci/")}
        )
        self.tokens: dict[str, _Token] = {}
        self.revoked: list[str] = []

    def handle(self, request: Request) -> Reply:
        path = request.path
        if not path.startswith("/v1/"):
            return errors(404)
        path = path[len("/v1/") :]
        namespace = request.headers.get("x-vault-namespace", "").strip("/") or None
        if namespace != self.namespace:
            # Mounts are per namespace: in another one, this is an unknown path, and an
            # unknown path without a valid token is refused before routing.
            return errors(403, "permission denied")
        if request.method == "POST" and path == f"auth/{self.auth_mount}/login":
            return self._login(request)
        token = self._token(request)
        if token is None:
            return errors(403, "permission denied")
        if request.method == "POST" and path == "auth/token/revoke-self":
            self.revoked.append(request.headers["x-vault-token"])
            del self.tokens[request.headers["x-vault-token"]]
            return Reply(204)
        if request.method == "GET" and path.startswith("sys/internal/ui/mounts/"):
            return self._mount(path[len("sys/internal/ui/mounts/") :], token)
        if request.method == "GET":
            return self._read(path, token)
        return errors(405, "unsupported operation")

    def _token(self, request: Request) -> _Token | None:
        token = self.tokens.get(request.headers.get("x-vault-token", ""))
        if token is None or token.expires < time.time():
            return None
        return token

    # Login

    def _login(self, request: Request) -> Reply:
        if not self.configured:
            return errors(400, "could not load configuration")
        body = request.json()
        name = body.get("role") or self.default_role
        if not name:
            return errors(400, "missing role")
        role = self.roles.get(name)
        if role is None:
            return errors(400, f'role "{name}" could not be found')
        token = body.get("jwt")
        if not isinstance(token, str) or not token:
            return errors(400, "missing token")
        claims, reason = verify_jwt(token, key=self.key, audiences=None, issuer=None, leeway=0)
        if claims is None:
            return errors(400, _LOGIN_REASONS[reason or "signature"])
        if claims.get("iss") != self.issuer:
            return errors(400, "error validating token: invalid issuer (iss) claim")
        aud = claims.get("aud")
        presented = aud if isinstance(aud, list) else [aud] if aud else []
        if not role.bound_audiences and presented:
            return errors(400, "audience claim found in JWT but no audiences bound to the role")
        if role.bound_audiences and not set(presented) & set(role.bound_audiences):
            return errors(
                400,
                "error validating token: invalid audience (aud) claim: audience claim does not "
                "match any expected audience",
            )
        if role.bound_subject and claims.get("sub") != role.bound_subject:
            return errors(400, "sub claim does not match bound subject")
        for claim, expected in role.bound_claims.items():
            if claim not in claims:
                return errors(400, f'claim "{claim}" is missing')
            allowed = expected if isinstance(expected, list) else [expected]
            if claims[claim] not in allowed:
                return errors(
                    400, f'claim "{claim}" does not match any associated bound claim values'
                )
        client_token = f"hvs.{secrets.token_urlsafe(24)}"
        self.tokens[client_token] = _Token(role.policies, time.time() + role.ttl)
        return json_reply(
            200,
            _envelope(
                auth={
                    "client_token": client_token,
                    "accessor": secrets.token_urlsafe(12),
                    "policies": list(role.policies),
                    "token_policies": list(role.policies),
                    "identity_policies": None,
                    "metadata": {"role": name},
                    "orphan": True,
                    "entity_id": str(uuid.uuid4()),
                    "lease_duration": role.ttl,
                    "renewable": True,
                    "mfa_requirement": None,
                }
            ),
        )

    # Reading

    def _allowed(self, token: _Token, api_path: str) -> bool:
        return any(
            api_path.startswith(prefix)
            for policy in token.policies
            for prefix in self.policies.get(policy, ())
        )

    def _mount_of(self, path: str) -> str | None:
        found = [m for m in self.kv if path.startswith(m) or path + "/" == m]
        return max(found, key=len) if found else None

    def _mount(self, path: str, token: _Token) -> Reply:
        mount = self._mount_of(path)
        if mount is None or not any(
            prefix.startswith(mount)
            for policy in token.policies
            for prefix in self.policies.get(policy, ())
        ):
            return errors(
                403,
                f'preflight capability check returned 403, please ensure client\'s policies grant access to path "{path}/"',
            )
        return json_reply(
            200,
            _envelope(
                data={
                    "accessor": f"kv_{secrets.token_hex(4)}",
                    "config": {"default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0},
                    "description": "key/value secret storage",
                    "external_entropy_access": False,
                    "local": False,
                    "options": {"version": str(self.kv[mount])},
                    "path": mount,
                    "seal_wrap": False,
                    "type": "kv",
                    "uuid": str(uuid.uuid4()),
                }
            ),
        )

    def _read(self, api_path: str, token: _Token) -> Reply:
        mount = self._mount_of(api_path)
        if mount is None:
            return errors(403, "1 error occurred:\n\t* permission denied\n\n")
        if not self._allowed(token, api_path):
            return errors(403, "1 error occurred:\n\t* permission denied\n\n")
        rest = api_path[len(mount) :]
        if self.kv[mount] == 2:
            if not rest.startswith("data/"):
                return errors(
                    404,
                    warnings=[
                        "Invalid path for a versioned K/V secrets engine. See the API docs for "
                        "the appropriate API endpoints to use. If using the Vault CLI, use "
                        "'vault kv get' for this operation."
                    ],
                )
            logical = mount + rest[len("data/") :]
            if logical in self.deleted:
                return json_reply(
                    404,
                    _envelope(
                        data={
                            "data": None,
                            "metadata": {
                                "created_time": "2018-03-22T02:24:06.945319214Z",
                                "custom_metadata": None,
                                "deletion_time": "2024-01-01T00:00:00.000000Z",
                                "destroyed": False,
                                "version": 3,
                            },
                        }
                    ),
                )
            if logical not in self.data:
                return errors(404)
            return json_reply(
                200,
                _envelope(
                    data={
                        "data": self.data[logical],
                        "metadata": {
                            "created_time": "2018-03-22T02:24:06.945319214Z",
                            "custom_metadata": {"owner": "jdoe"},
                            "deletion_time": "",
                            "destroyed": False,
                            "version": 2,
                        },
                    }
                ),
            )
        if api_path not in self.data:
            return errors(404)
        return json_reply(
            200,
            {
                "auth": None,
                "data": {**self.data[api_path]},
                "lease_duration": 2764800,
                "lease_id": "",
                "renewable": False,
            },
        )


_LOGIN_REASONS = {
    "signature": "error validating token: failed to verify id token signature",
    "malformed": "error validating token: malformed token",
    "expired": "error validating token: failed to validate claims: exp claim: token is expired",
    "not-yet-valid": "error validating token: failed to validate claims: nbf claim: token not yet valid",
}
