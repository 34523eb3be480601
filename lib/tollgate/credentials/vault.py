"""HashiCorp Vault: JWT login with the CI token, KV secrets, and revocation.

What hashicorp/vault-action does (oidc-anchors.md §5, wire formats §10.5), with the fixes its
users asked for (§8.4):

- KV v1 and v2 are told apart by asking Vault about the mount
  (``GET /v1/sys/internal/ui/mounts/<path>``, as ``vault kv get`` does), not by guessing from
  the shape of the data, so a v1 secret with a key named ``data`` reads right; paths are
  written as ``vault kv get`` takes them (``secret/ci/db``; ``secret/data/ci/db`` works too);
- the login is retried on 5xx and on 412 (performance standbys, vault-action#332);
- ``--revoke`` revokes the token once the secrets are read (vault-action#427);
- a rejected login shows the token's claims, naming the ones Vault complained about.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from tollgate import _http
from tollgate._http import DEFAULT_POLICY, RETRY_STATUSES, HttpClient, HttpPolicy
from tollgate.ci import is_env_name, validate_env_name
from tollgate.ci.local import remember_secret
from tollgate.credentials import _common
from tollgate.credentials.claims import describe_claims, token_claims
from tollgate.credentials.interface import Credentials, Provider, TokenSource
from tollgate.errors import ConfigError, ExternalError, UsageError

if TYPE_CHECKING:
    import requests

_logger = logging.getLogger(__name__)

DEFAULT_AUTH_PATH = "jwt"
ALL_KEYS = "*"
# 412: a performance standby has not caught up yet (Vault Enterprise); the request was not
# processed, so even a non-idempotent one may be sent again.
_VAULT_RETRY = RETRY_STATUSES | {412}
_VAULT_UNPROCESSED = frozenset({412, 429})
_PATH = re.compile(r"[A-Za-z0-9_.+@=,~-]+(?:/[A-Za-z0-9_.+@=,~-]+)*\Z")
_NAMED_CLAIM = re.compile(r'claim "([^"]+)"')
_VALIDITY = re.compile(r"\bexpired\b|\b(?:exp|nbf|iat)\b|not yet valid")


@dataclass(frozen=True)
class VaultSecret:
    """``PATH KEY | NAME``: one key of the secret at ``path`` (``*``: every key)."""

    path: str
    key: str
    name: str | None = None
    """The variable (for ``*``: the prefix of the variables); default from the key."""

    def env_for(self, key: str) -> str:
        if self.key != ALL_KEYS:
            return self.name or _common.env_name(key)
        base = _common.env_name(key)
        return f"{self.name}_{base}" if self.name else base


def parse_secrets(specs: Iterable[str]) -> tuple[VaultSecret, ...]:
    """Parse ``PATH KEY [| NAME]`` entries; each spec may hold several, split by ``;`` or lines."""
    entries = (entry.strip() for spec in specs for entry in re.split(r"[;\n]", spec))
    return tuple(_parse_one(entry) for entry in entries if entry)


def _parse_one(entry: str) -> VaultSecret:
    selector, bar, name = entry.partition("|")
    words = selector.split()
    name = name.strip()
    if len(words) != 2 or (bar and not name):
        raise UsageError(
            f"--secret {entry!r}: expected 'PATH KEY [| NAME]'",
            hint="for example: --secret 'secret/ci/db password | DB_PASSWORD' "
            "(or 'secret/ci/db * | DB' for every key)",
        )
    path, key = words[0].strip("/"), words[1]
    if not _PATH.match(path):
        raise UsageError(f"--secret {entry!r}: {path!r} is not a Vault path")
    if name:
        validate_env_name(name, f"--secret {entry!r}: ")
    return VaultSecret(path, key, name or None)


@dataclass(frozen=True)
class _Mount:
    path: str
    """The mount's path with a trailing slash (``secret/``)."""
    kv_version: int | None
    """1 or 2 for a KV engine; None for any other engine (read as is)."""


@dataclass(frozen=True)
class _Login:
    token: str
    policies: tuple[str, ...]
    expires_at: datetime | None


@dataclass(frozen=True)
class VaultProvider(Provider):
    """Log in to Vault with the CI token; read KV secrets; optionally revoke the token."""

    name: ClassVar[str] = "vault"

    url: str
    role: str | None = None
    auth_path: str = DEFAULT_AUTH_PATH
    namespace: str | None = None
    token_audience: str | None = None
    secrets: tuple[VaultSecret, ...] = ()
    kv_version: int | None = None
    """Skip the mount lookup and treat every path as this KV version (1 or 2)."""
    export_token: bool = True
    revoke: bool = False
    http: HttpPolicy = field(default=DEFAULT_POLICY, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", _http.check_endpoint(self.url, "--url"))
        path = self.auth_path.strip("/")
        if not _PATH.match(path):
            raise UsageError(f"--path {self.auth_path!r} is not a Vault mount path")
        object.__setattr__(self, "auth_path", path)
        if self.kv_version not in (None, 1, 2):
            raise UsageError("--kv-version must be 1 or 2")
        if self.namespace is not None:
            object.__setattr__(self, "namespace", self.namespace.strip("/") or None)

    @property
    def audience(self) -> str | None:
        return self.token_audience

    def exchange(self, token_source: TokenSource) -> Credentials:
        token = token_source(self.audience)
        claims = token_claims(token)
        with HttpClient(self.http) as client:
            login = self._login(client, token, claims)
            try:
                values = self._read_all(client, login)
            finally:
                if self.revoke:
                    self._revoke(client, login.token)
        secret_env = dict(values)
        exported = self.export_token and not self.revoke
        if exported:
            secret_env["VAULT_TOKEN"] = login.token
        environment = {"VAULT_ADDR": self.url}
        if self.namespace:
            environment["VAULT_NAMESPACE"] = self.namespace
        if self.http.ca_bundle:
            environment["VAULT_CACERT"] = os.path.abspath(self.http.ca_bundle)
        facts = {"policies": ",".join(login.policies)}
        if self.revoke:
            facts["token_revoked"] = "true"
        elif login.expires_at is not None:
            facts["expires_at"] = _common.format_time(login.expires_at)
        return Credentials(
            provider=self.name,
            secrets=secret_env,
            environment=environment,
            facts=facts,
            expires_at=login.expires_at if exported else None,
        )

    # HTTP

    def _headers(self, token: str | None = None) -> dict[str, str]:
        # X-Vault-Request marks an API call (Vault Agent and proxies require it).
        headers = {"Accept": "application/json", "X-Vault-Request": "true"}
        if self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        if token:
            headers["X-Vault-Token"] = token
        return headers

    def _api(self, path: str) -> str:
        return f"{self.url}/v1/{quote(path, safe='/')}"

    # Login

    def _login(self, client: HttpClient, token: str, claims: dict[str, Any]) -> _Login:
        body: dict[str, str] = {"jwt": token}
        if self.role:
            body["role"] = self.role
        service = "Vault"
        # A login only issues a token; repeating one that was lost leaves an unused token
        # to expire, so it is retried like vault-action's GETs (5xx, 412, 429).
        response = client.request(
            "POST",
            self._api(f"auth/{self.auth_path}/login"),
            service=service,
            idempotent=True,
            headers=self._headers(),
            json_body=body,
            retry_statuses=_VAULT_RETRY,
            unprocessed_statuses=_VAULT_UNPROCESSED,
        )
        if response.status_code != 200:
            raise self._login_error(response, client.describe_attempts(), claims)
        answer = _http.json_object(response, service)
        auth = answer.get("auth")
        client_token = auth.get("client_token") if isinstance(auth, dict) else None
        if not isinstance(client_token, str) or not client_token:
            raise _http.missing_field(service, "auth.client_token", answer)
        assert isinstance(auth, dict)
        remember_secret(client_token, label="the Vault token")
        policies = tuple(str(p) for p in auth.get("policies") or [] if isinstance(p, str))
        lease = auth.get("lease_duration")
        expiry = _common.expires_in(lease) if isinstance(lease, int) and lease > 0 else None
        _logger.info(
            "logged in to Vault at auth/%s (role %s, policies %s)",
            self.auth_path,
            self.role or "default",
            ", ".join(policies) or "none",
        )
        return _Login(client_token, policies, expiry)

    def _login_error(
        self, response: requests.Response, attempts: str, claims: dict[str, Any]
    ) -> ConfigError | ExternalError:
        status = response.status_code
        if status in _VAULT_RETRY or status >= 500:
            return _http.status_error(
                response, "Vault", attempts, hint="Vault is failing, sealed or rate-limiting"
            )
        message = _errors(response)
        named = _NAMED_CLAIM.findall(message)
        where = f"auth/{self.auth_path}" + (
            f" in namespace {self.namespace}" if self.namespace else ""
        )
        lowered = message.lower()
        if "could not be found" in lowered or "missing role" in lowered:
            hint = (
                f"Check --role ({self.role or 'none given'}) and --path ({self.auth_path}): "
                f"list the roles with `vault list auth/{self.auth_path}/role`."
            )
        elif "could not load configuration" in lowered:
            hint = (
                f"The auth method at {where} is not configured yet: "
                f"vault write auth/{self.auth_path}/config "
                f"oidc_discovery_url={claims.get('iss', 'ISSUER')} bound_issuer={claims.get('iss', 'ISSUER')}"
            )
        elif "no handler for route" in lowered or status == 404 or "permission denied" in lowered:
            hint = (
                f"No JWT auth method is mounted at {where}: check --path and --namespace "
                "(`vault auth list`)."
            )
        elif "audience" in lowered:
            hint = (
                f"The role's bound_audiences must contain the token's aud ({claims.get('aud', '?')}); "
                "or request the token for an audience the role accepts with --audience. Vault "
                "1.17+ refuses a token with an aud when the role binds none."
            )
        elif named or "bound subject" in lowered:
            hint = (
                "The role's bound_claims / bound_subject do not match this token's claims "
                "(above). Change the role or run from a ref it allows."
            )
        elif "issuer" in lowered:
            hint = f"The auth method's bound_issuer must be the token's iss ({claims.get('iss', '?')})."
        elif _VALIDITY.search(lowered):
            hint = "The token is outside its validity window: check the runner's clock."
        else:
            hint = None
        shown = describe_claims(claims, required=named)
        return ConfigError(
            f"Vault refused the login at {where} (role {self.role or 'default'}): HTTP {status}: "
            f"{message}\nthe OIDC token's claims:\n{shown}",
            hint=hint,
        )

    # Secrets

    def _read_all(self, client: HttpClient, login: _Login) -> dict[str, str]:
        values: dict[str, str] = {}
        mounts: dict[str, _Mount] = {}
        documents: dict[str, Mapping[str, Any]] = {}
        for ref in self.secrets:
            if ref.path not in documents:
                # One lookup per mount, not per path.
                known = [m for m in mounts.values() if m.path and ref.path.startswith(m.path)]
                mount = known[0] if known else self._mount(client, login, ref.path)
                mounts[mount.path] = mount
                documents[ref.path] = self._read(client, login, ref.path, mount)
            data = documents[ref.path]
            if ref.key == ALL_KEYS:
                selected = dict(data)
            elif ref.key in data:
                selected = {ref.key: data[ref.key]}
            else:
                keys = ", ".join(_http.clean_text(str(k), 40) for k in sorted(data)[:20]) or "none"
                raise ConfigError(
                    f"the Vault secret {ref.path} has no key {ref.key!r} (its keys: {keys})",
                    hint="keys are case-sensitive; use '*' to import every key",
                )
            for key, raw in selected.items():
                env = ref.env_for(str(key))
                if not is_env_name(env):
                    raise UsageError(f"{ref.path} {key!r} makes an invalid variable name {env!r}")
                if env in values:
                    raise UsageError(
                        f"two secrets would be written to {env}",
                        hint="name each one with '| NAME'",
                    )
                value = raw if isinstance(raw, str) else json.dumps(raw)
                # Every line of a multi-line value is masked too (CVE-2021-32074).
                remember_secret(value, label=env)
                values[env] = value
            _logger.info("read %s from Vault", ref.path)
        return values

    def _mount(self, client: HttpClient, login: _Login, path: str) -> _Mount:
        if self.kv_version is not None:
            return _Mount(path.split("/", 1)[0] + "/", self.kv_version)
        response = client.request(
            "GET",
            self._api(f"sys/internal/ui/mounts/{path}"),
            service="Vault",
            idempotent=True,
            headers=self._headers(login.token),
            retry_statuses=_VAULT_RETRY,
            unprocessed_statuses=_VAULT_UNPROCESSED,
        )
        if response.status_code == 404:
            # Vault before 0.10 has no such endpoint; `vault kv get` then reads it as KV v1.
            _logger.debug("no mount information for %s: reading it as is", path)
            return _Mount("", None)
        if response.status_code != 200:
            raise self._read_error(response, client, login, path, "sys/internal/ui/mounts")
        data = _http.json_object(response, "Vault").get("data")
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            return _Mount("", None)
        options = data.get("options")
        version = str(options.get("version", "1")) if isinstance(options, dict) else "1"
        kind = data.get("type")
        kv = 2 if kind == "kv" and version == "2" else 1 if kind in ("kv", "generic") else None
        mount = data["path"] if data["path"].endswith("/") else data["path"] + "/"
        _logger.debug("%s is on the %s mount %s", path, f"KV v{kv}" if kv else kind, mount)
        return _Mount(mount, kv)

    def _read(
        self, client: HttpClient, login: _Login, path: str, mount: _Mount
    ) -> Mapping[str, Any]:
        api_path = path
        if mount.kv_version == 2 and path.startswith(mount.path):
            rest = path[len(mount.path) :]
            # vault-action wants `secret/data/...`; accept it as written.
            api_path = path if rest.startswith("data/") else f"{mount.path}data/{rest}"
        response = client.request(
            "GET",
            self._api(api_path),
            service="Vault",
            idempotent=True,
            headers=self._headers(login.token),
            retry_statuses=_VAULT_RETRY,
            unprocessed_statuses=_VAULT_UNPROCESSED,
        )
        body = _http.error_json(response)
        if response.status_code == 404 and mount.kv_version == 2 and isinstance(body, dict):
            data = body.get("data")
            metadata = data.get("metadata") if isinstance(data, dict) else None
            if isinstance(metadata, dict) and (
                metadata.get("deletion_time") or metadata.get("destroyed")
            ):
                raise ConfigError(
                    f"the latest version of the Vault secret {path} is deleted",
                    hint=f"undelete it (vault kv undelete -versions=N {path}) or write a new version",
                )
        if response.status_code != 200:
            raise self._read_error(response, client, login, path, api_path)
        answer = _http.json_object(response, "Vault")
        data = answer.get("data")
        if mount.kv_version == 2:
            data = data.get("data") if isinstance(data, dict) else None
        if not isinstance(data, dict):
            raise _http.missing_field("Vault", "data", answer)
        return data

    def _read_error(
        self,
        response: requests.Response,
        client: HttpClient,
        login: _Login,
        path: str,
        api_path: str,
    ) -> ConfigError | ExternalError:
        status = response.status_code
        if status in _VAULT_RETRY or status >= 500:
            return _http.status_error(response, "Vault", client.describe_attempts())
        message = _errors(response) or "no message"
        if status == 403:
            return ConfigError(
                f"Vault denied reading {path}: HTTP 403: {message}",
                hint=(
                    f"The token's policies ({', '.join(login.policies) or 'none'}) must allow:\n"
                    f'  path "{api_path}" {{ capabilities = ["read"] }}\n'
                    "(KV v2 paths have /data/ after the mount; the role's token_policies "
                    "attach the policy.)"
                ),
            )
        if status == 404:
            return ConfigError(
                f"there is no Vault secret at {path} (HTTP 404)",
                hint="check the path (`vault kv get " + path + "`) and --namespace",
            )
        return ConfigError(f"Vault refused to read {path}: HTTP {status}: {message}")

    # Revocation

    def _revoke(self, client: HttpClient, token: str) -> None:
        try:
            response = client.request(
                "POST",
                self._api("auth/token/revoke-self"),
                service="Vault",
                idempotent=False,
                headers=self._headers(token),
                retry_statuses=_VAULT_RETRY,
                unprocessed_statuses=_VAULT_UNPROCESSED,
            )
        except (ConfigError, ExternalError) as error:
            _logger.warning("could not revoke the Vault token: %s", error.message)
            return
        if response.status_code in (200, 204):
            _logger.info("revoked the Vault token")
            return
        _logger.warning(
            "could not revoke the Vault token (HTTP %d: %s); it stays valid until its TTL ends, "
            "but tollgate did not export it",
            response.status_code,
            _errors(response),
        )


def _errors(response: requests.Response) -> str:
    """Vault's ``{"errors": [...]}`` as one safe line, or an excerpt of the body."""
    body = _http.error_json(response)
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        text = "; ".join(str(e) for e in body["errors"])
        # "1 error occurred:\n\t* permission denied\n\n" -> "permission denied"
        text = re.sub(r"^\d+ errors? occurred:\s*", "", text.strip())
        return _http.clean_text(text.replace("* ", "")) if text else "no message"
    return _http.excerpt(response)
