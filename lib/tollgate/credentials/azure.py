"""Azure: Entra ID workload identity federation, without the az CLI.

azure/login hands the job's token to ``az login --federated-token`` (oidc-anchors.md §4);
this provider sends the client-credentials request with the token as the client assertion
itself (§10.4), so it needs no az CLI and explains Entra's ``AADSTS`` errors with the claims
that were sent and what the app's federated credential must say (§8.3).

It asks the CI platform for a fresh token for every request, and writes one to a 0600 file
named by ``AZURE_FEDERATED_TOKEN_FILE``, so azure-identity's ``WorkloadIdentityCredential``
(and ``DefaultAzureCredential``) in later steps can get tokens for any resource by
themselves. A GitHub token in that file expires five minutes after the step; a GitLab one
when the job times out. Later steps that outlive it need ``tollgate creds azure`` again.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

from tollgate import _http
from tollgate._http import DEFAULT_POLICY, HttpClient, HttpPolicy
from tollgate.ci import validate_env_name
from tollgate.ci.local import remember_secret
from tollgate.credentials import _common
from tollgate.credentials.claims import describe_claims, token_claims, token_expiry
from tollgate.credentials.interface import Credentials, Provider, TokenSource
from tollgate.errors import ConfigError, ExternalError, UsageError

if TYPE_CHECKING:
    import requests

_logger = logging.getLogger(__name__)

DEFAULT_AUDIENCE = "api://AzureADTokenExchange"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_SCOPE = "https://management.azure.com/.default"
DEFAULT_KEY_VAULT_SUFFIX = "vault.azure.net"
KEY_VAULT_API_VERSION = "7.4"
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\Z")
_TENANT_NAME = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\Z")  # contoso.onmicrosoft.com
_AADSTS = re.compile(r"AADSTS(\d+)")
_VAULT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]\Z")
_SECRET_NAME = re.compile(r"[A-Za-z0-9-]{1,127}\Z")

_FEDERATION_CODES = frozenset({70021, 700211, 700212, 700213, 7002138})


@dataclass(frozen=True)
class KeyVaultSecret:
    """One Key Vault secret to read (``vault_url`` without a trailing slash)."""

    vault_url: str
    name: str
    version: str | None
    env: str

    @property
    def url(self) -> str:
        path = f"/secrets/{quote(self.name)}" + (f"/{quote(self.version)}" if self.version else "")
        return f"{self.vault_url}{path}"


def parse_secret(spec: str, suffix: str = DEFAULT_KEY_VAULT_SUFFIX) -> KeyVaultSecret:
    """``VAULT/SECRET[/VERSION] [| NAME]`` or a secret identifier URL ``[| NAME]``."""
    ref, bar, name = spec.partition("|")
    ref, name = ref.strip(), name.strip()
    usage = UsageError(
        f"--secret {spec!r}: expected VAULT_NAME/SECRET[/VERSION] [| NAME], or the secret's "
        "identifier https://VAULT.vault.azure.net/secrets/SECRET[/VERSION] [| NAME]",
        hint="for example: --secret 'my-vault/db-password | DB_PASSWORD'",
    )
    if "://" in ref:
        parts = urlsplit(ref)
        segments = parts.path.strip("/").split("/")
        if len(segments) not in (2, 3) or segments[0] != "secrets":
            raise usage
        vault_url = _http.check_endpoint(f"{parts.scheme}://{parts.netloc}", "--secret")
        secret, version = segments[1], segments[2] if len(segments) == 3 else None
    else:
        segments = ref.split("/")
        if len(segments) not in (2, 3) or not _VAULT_NAME.match(segments[0]):
            raise usage
        vault_url = f"https://{segments[0]}.{suffix}"
        secret, version = segments[1], segments[2] if len(segments) == 3 else None
    if not _SECRET_NAME.match(secret) or (version is not None and not version.isalnum()):
        raise usage
    if bar and not name:
        raise UsageError(f"--secret {spec!r}: the name after '|' is empty")
    env = name or _common.env_name(secret)
    validate_env_name(env, f"--secret {spec!r}: ")
    return KeyVaultSecret(vault_url, secret, version, env)


@dataclass(frozen=True)
class AzureProvider(Provider):
    """Get an Entra ID access token with the CI token as a federated client assertion."""

    name: ClassVar[str] = "azure"

    client_id: str
    tenant_id: str
    subscription_id: str | None = None
    token_audience: str = DEFAULT_AUDIENCE
    authority_host: str = DEFAULT_AUTHORITY
    scope: str = DEFAULT_SCOPE
    secrets: tuple[KeyVaultSecret, ...] = ()
    key_vault_scope: str = f"https://{DEFAULT_KEY_VAULT_SUFFIX}/.default"
    token_file: bool = True
    credentials_dir: str | None = None
    http: HttpPolicy = field(default=DEFAULT_POLICY, repr=False)

    def __post_init__(self) -> None:
        if not _GUID.match(self.client_id):
            raise UsageError(
                f"--client-id {self.client_id!r} is not a GUID",
                hint="use the app registration's (or managed identity's) Application (client) ID",
            )
        if not (_GUID.match(self.tenant_id) or _TENANT_NAME.match(self.tenant_id)):
            raise UsageError(
                f"--tenant-id {self.tenant_id!r} is neither a GUID nor a domain name",
                hint="use the Directory (tenant) ID shown on the app registration's overview",
            )
        if self.subscription_id is not None and not _GUID.match(self.subscription_id):
            raise UsageError(f"--subscription-id {self.subscription_id!r} is not a GUID")
        for scope, flag in ((self.scope, "--scope"), (self.key_vault_scope, "--key-vault-scope")):
            if not scope.endswith("/.default"):
                raise UsageError(
                    f"{flag} {scope!r} does not end with /.default",
                    hint="the client-credentials flow takes one resource's /.default scope, "
                    "e.g. https://management.azure.com/.default",
                )
        _common.check_distinct([ref.env for ref in self.secrets])
        authority = _http.check_endpoint(self.authority_host, "--authority-host")
        object.__setattr__(self, "authority_host", authority)

    @property
    def audience(self) -> str:
        return self.token_audience

    @property
    def token_url(self) -> str:
        return f"{self.authority_host}/{quote(self.tenant_id)}/oauth2/v2.0/token"

    def exchange(self, token_source: TokenSource) -> Credentials:
        with HttpClient(self.http) as client:
            access_token, expiry = self._token(client, token_source, self.scope)
            values: dict[str, str] = {}
            if self.secrets:
                vault_token, _ = self._token(client, token_source, self.key_vault_scope)
                for ref in self.secrets:
                    values[ref.env] = self._read_secret(client, vault_token, ref)
        environment = {
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_AUTHORITY_HOST": self.authority_host,
        }
        facts = {"client_id": self.client_id, "tenant_id": self.tenant_id}
        if self.subscription_id:
            environment["AZURE_SUBSCRIPTION_ID"] = self.subscription_id
            facts["subscription_id"] = self.subscription_id
        if self.token_file:
            # Fetched last, so it lives as long as it can.
            path = self._write_token_file(token_source(self.audience))
            environment["AZURE_FEDERATED_TOKEN_FILE"] = path
            facts["federated_token_file"] = path
        if expiry is not None:
            facts["expires_at"] = _common.format_time(expiry)
        return Credentials(
            provider=self.name,
            secrets={"AZURE_ACCESS_TOKEN": access_token, **values},
            environment=environment,
            facts=facts,
            expires_at=expiry,
        )

    def _token(
        self, client: HttpClient, token_source: TokenSource, scope: str
    ) -> tuple[str, datetime | None]:
        # A fresh CI token for every request: GitHub's expire after five minutes, and Entra
        # refuses an expired assertion (AADSTS700024, azure/login#180).
        assertion = token_source(self.audience)
        form = {
            "scope": scope,
            "client_id": self.client_id,
            "client_assertion_type": _ASSERTION_TYPE,
            "client_assertion": assertion,
            "grant_type": "client_credentials",
        }
        service = "Microsoft Entra ID"
        # Issuing a token changes nothing a retry could duplicate: safe to repeat.
        response = client.request(
            "POST",
            self.token_url,
            service=service,
            idempotent=True,
            headers={"Accept": "application/json"},
            form=form,
        )
        if response.status_code != 200:
            raise self._entra_error(response, client.describe_attempts(), assertion, scope)
        answer = _http.json_object(response, service)
        token = _common.secret_field(
            answer, "access_token", service, label=f"the access token for {scope}"
        )
        _logger.info("got an Entra ID access token for %s", scope)
        return token, _common.expires_in(answer.get("expires_in"))

    def _entra_error(
        self, response: requests.Response, attempts: str, assertion: str, scope: str
    ) -> ConfigError | ExternalError:
        status = response.status_code
        body = _http.error_json(response)
        if status >= 500 or status == 429 or not isinstance(body, dict):
            return _http.status_error(response, "Microsoft Entra ID", attempts)
        error = _http.clean_text(str(body.get("error", "")), 60)
        description = str(body.get("error_description", ""))
        codes = [c for c in body.get("error_codes") or [] if isinstance(c, int)]
        found = _AADSTS.search(description)
        code = codes[0] if codes else int(found.group(1)) if found else None
        # Entra appends trace and correlation ids after the first sentence: keep them, they
        # are what Microsoft support asks for, but drop the timestamp noise.
        text = _http.clean_text(description.split(" Timestamp:")[0], 500)
        claims = token_claims(assertion)
        shown = describe_claims(claims, ("environment", "job_workflow_ref", "project_path"))
        hint = self._hint(code, claims, scope)
        return ConfigError(
            f"Microsoft Entra ID refused the token request: HTTP {status} {error}: {text}\n"
            f"the OIDC token's claims:\n{shown}",
            hint=hint,
        )

    def _hint(self, code: int | None, claims: dict[str, Any], scope: str) -> str | None:
        if code in _FEDERATION_CODES:
            return (
                f"Add a federated credential to the app {self.client_id} that matches this "
                "token exactly (matching is case-sensitive):\n"
                f"  issuer:   {claims.get('iss', '?')}\n"
                f"  subject:  {claims.get('sub', '?')}\n"
                f"  audience: {claims.get('aud', '?')}\n"
                "  az ad app federated-credential create --id <app> --parameters "
                '\'{"name": ..., "issuer": ..., "subject": ..., "audiences": [...]}\'\n'
                "A GitHub subject names the environment when the job has one "
                "(repo:OWNER/REPO:environment:NAME), else the branch or tag, or pull_request."
            )
        if code == 700016:
            return (
                f"No app with client id {self.client_id} in tenant {self.tenant_id}: check "
                "--client-id and --tenant-id (and --authority-host for national clouds)."
            )
        if code == 90002:
            return (
                f"Tenant {self.tenant_id} does not exist in this cloud: check --tenant-id, and "
                "--authority-host for national clouds (login.microsoftonline.us, "
                "login.chinacloudapi.cn)."
            )
        if code == 700024:
            return (
                "The OIDC token was expired or not yet valid when Entra checked it (see exp "
                "above). GitHub tokens live five minutes: this step asks for a fresh one per "
                "request, so check the runner's clock, or a token file/variable that is stale."
            )
        if code == 70011:
            return f"{scope} is not a valid scope: use one resource's /.default scope."
        if code in (50027, 50013):
            return "Entra could not validate the token: pass the CI system's OIDC token as is."
        if code == 501661:
            return (
                "Entra could not fetch the issuer's OpenID configuration: a self-managed "
                "GitLab must be reachable from the internet for federation."
            )
        return None

    def _read_secret(self, client: HttpClient, token: str, ref: KeyVaultSecret) -> str:
        service = "Azure Key Vault"
        response = client.request(
            "GET",
            ref.url,
            service=service,
            idempotent=True,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            params={"api-version": KEY_VAULT_API_VERSION},
        )
        where = f"{ref.name} in {urlsplit(ref.vault_url).hostname}"
        if response.status_code != 200:
            status = response.status_code
            if status >= 500 or status == 429:
                raise _http.status_error(response, service, client.describe_attempts())
            body = _http.error_json(response)
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict):
                inner = error.get("innererror")
                code = _http.clean_text(str(error.get("code", "")), 60)
                if isinstance(inner, dict) and inner.get("code"):
                    code += "/" + _http.clean_text(str(inner["code"]), 60)
                message = f"{code}: {_http.clean_text(str(error.get('message', '')))}"
            else:
                message = _http.excerpt(response)
            hints = {
                401: f"The token is not for Key Vault: check --key-vault-scope ({self.key_vault_scope}).",
                403: (
                    f"Give the app {self.client_id} the 'Key Vault Secrets User' role on the "
                    "vault (or a get-secret access policy); role changes take a few minutes."
                ),
                404: "Check the vault and secret names, and that the secret is enabled.",
            }
            raise ConfigError(
                f"{service} refused {where}: HTTP {status}: {message}", hint=hints.get(status)
            )
        answer = _http.json_object(response, service)
        value = answer.get("value")
        if not isinstance(value, str):
            raise _http.missing_field(service, "value", answer)
        remember_secret(value, label=ref.env)
        _logger.info("read %s into %s", where, ref.env)
        return value

    def _write_token_file(self, token: str) -> str:
        directory = _common.job_temp_dir(self.credentials_dir)
        path = directory / f"tollgate-azure-{secrets.token_hex(8)}.jwt"
        _common.write_private(path, token.encode())
        _logger.info(
            "wrote the federated token to %s; it expires at %s (run this step again when "
            "later steps need it longer)",
            path,
            token_expiry(token),
        )
        return str(path)
