"""Google Cloud: workload identity federation, service-account tokens, Secret Manager.

The flow of google-github-actions/auth (oidc-anchors.md §3, wire formats §10.3), with two
changes its users asked for (§8.2):

- the ``external_account`` credentials file goes to the job's temp dir (``$RUNNER_TEMP``),
  not the workspace, with mode 0600;
- its ``credential_source`` is a file holding the OIDC token, not the runner's token-request
  URL and bearer, which would let anyone who reads the file mint OIDC tokens for any audience
  for the rest of the job. The price: Google's libraries can run *new* exchanges from the file
  only while that token is valid (five minutes on GitHub, the job's lifetime on GitLab); the
  access tokens they got before keep working for their hour. Re-run ``tollgate creds gcp``
  in a long job to refresh.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from tollgate import _http
from tollgate._http import DEFAULT_POLICY, HttpClient, HttpPolicy
from tollgate.ci import validate_env_name
from tollgate.ci.local import remember_secret
from tollgate.credentials import _common
from tollgate.credentials.claims import (
    describe_claims,
    token_claims,
    token_expires_at,
    token_expiry,
)
from tollgate.credentials.interface import Credentials, Provider, TokenSource
from tollgate.errors import ConfigError, ExternalError, UsageError

if TYPE_CHECKING:
    import requests

_logger = logging.getLogger(__name__)

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_UNIVERSE = "googleapis.com"
TOKEN_FORMATS = ("access_token", "id_token")
MAX_LIFETIME = 43200
"""12 h: the most any org policy allows (``allowServiceAccountCredentialLifetimeExtension``)."""

_JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
_PROVIDER = re.compile(
    r"projects/(?P<number>[0-9]+)/locations/global/workloadIdentityPools/"
    r"(?P<pool>[a-z0-9-]{4,32})/providers/(?P<provider>[a-z0-9-]{4,32})\Z"
)
_SERVICE_ACCOUNT = re.compile(r"[a-z0-9][a-z0-9-]{4,61}[a-z0-9]@(?P<domain>[a-z0-9.-]+)\Z")
_SA_PROJECT = re.compile(r"(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com\Z")
_SECRET_ID = r"[A-Za-z0-9_-]{1,255}"
_SHORT_SECRET = re.compile(
    rf"(?P<project>[^/\s]+)/(?P<secret>{_SECRET_ID})(?:/(?P<version>[^/\s]+))?\Z"
)
_LONG_SECRET = re.compile(
    rf"projects/(?P<project>[^/\s]+)/secrets/(?P<secret>{_SECRET_ID})"
    r"(?:/versions/(?P<version>[^/\s]+))?\Z"
)
_PROVIDER_HINT = """\
Give the provider's full resource name, as
  gcloud iam workload-identity-pools providers describe PROVIDER \\
    --project=PROJECT --location=global --workload-identity-pool=POOL --format='value(name)'
prints it: projects/<project NUMBER>/locations/global/workloadIdentityPools/<pool>/providers/<provider>"""


@dataclass(frozen=True)
class SecretRef:
    """One Secret Manager version to read, and the variable to put it in."""

    project: str
    secret: str
    version: str
    env: str

    @property
    def resource(self) -> str:
        return f"projects/{self.project}/secrets/{self.secret}/versions/{self.version}"


def parse_secret(spec: str) -> SecretRef:
    """``PROJECT/SECRET[/VERSION] [| NAME]`` or ``projects/P/secrets/S[/versions/V] [| NAME]``."""
    ref, bar, name = spec.partition("|")
    ref, name = ref.strip(), name.strip()
    match = _LONG_SECRET.match(ref) or _SHORT_SECRET.match(ref)
    if not match:
        raise UsageError(
            f"--secret {spec!r}: expected PROJECT/SECRET[/VERSION] [| NAME]",
            hint="for example: --secret 'my-project/db-password | DB_PASSWORD'",
        )
    if bar and not name:
        raise UsageError(f"--secret {spec!r}: the name after '|' is empty")
    env = name or _common.env_name(match["secret"])
    validate_env_name(env, f"--secret {spec!r}: ")
    return SecretRef(match["project"], match["secret"], match["version"] or "latest", env)


@dataclass(frozen=True)
class GcpProvider(Provider):
    """Exchange the CI token at Google STS; optionally impersonate a service account."""

    name: ClassVar[str] = "gcp"

    workload_identity_provider: str
    service_account: str | None = None
    project: str | None = None
    token_audience: str | None = None
    """The ``aud`` to request (default ``https://iam.googleapis.com/<provider name>``)."""
    token_format: str = "access_token"
    scopes: tuple[str, ...] = (CLOUD_PLATFORM_SCOPE,)
    lifetime: int = 3600
    delegates: tuple[str, ...] = ()
    id_token_audience: str | None = None
    id_token_include_email: bool = False
    secrets: tuple[SecretRef, ...] = ()
    create_credentials_file: bool = True
    credentials_dir: str | None = None
    universe: str = DEFAULT_UNIVERSE
    sts_endpoint: str | None = None
    iam_endpoint: str | None = None
    secret_manager_endpoint: str | None = None
    request_reason: str | None = None
    http: HttpPolicy = field(default=DEFAULT_POLICY, repr=False)

    def __post_init__(self) -> None:
        wip = self.workload_identity_provider.strip().removeprefix("//iam.googleapis.com/")
        if not _PROVIDER.match(wip):
            raise UsageError(
                f"--workload-identity-provider {self.workload_identity_provider!r} is not a "
                "provider's resource name",
                hint=_PROVIDER_HINT,
            )
        object.__setattr__(self, "workload_identity_provider", wip)
        if self.service_account is not None and not _SERVICE_ACCOUNT.match(self.service_account):
            raise UsageError(
                f"--service-account {self.service_account!r} is not a service account email",
                hint="it looks like NAME@PROJECT_ID.iam.gserviceaccount.com",
            )
        if self.token_format not in TOKEN_FORMATS:
            raise UsageError(f"--token-format must be one of {', '.join(TOKEN_FORMATS)}")
        if self.token_format == "id_token":
            if self.service_account is None:
                raise UsageError(
                    "--token-format id_token needs --service-account",
                    hint="Google issues ID tokens for service accounts only",
                )
            if not self.id_token_audience:
                raise UsageError(
                    "--token-format id_token needs --id-token-audience",
                    hint="the audience is the URL of the service that will check the ID token",
                )
        if not 1 <= self.lifetime <= MAX_LIFETIME:
            raise UsageError(f"--lifetime must be between 1 and {MAX_LIFETIME} seconds")
        if not self.scopes:
            raise UsageError("at least one --scope is needed")
        if self.delegates and self.service_account is None:
            raise UsageError("--delegate needs --service-account")
        _common.check_distinct([ref.env for ref in self.secrets])
        for option in ("sts_endpoint", "iam_endpoint", "secret_manager_endpoint"):
            value = getattr(self, option)
            if value is not None:
                flag = "--" + option.replace("_", "-")
                object.__setattr__(self, option, _http.check_endpoint(value, flag))

    # Derived settings

    @property
    def audience(self) -> str:
        return (
            self.token_audience or f"https://iam.googleapis.com/{self.workload_identity_provider}"
        )

    @property
    def sts_audience(self) -> str:
        """The ``audience`` field STS wants (note ``//``, not ``https://``)."""
        return f"//iam.googleapis.com/{self.workload_identity_provider}"

    @property
    def token_url(self) -> str:
        return self.sts_endpoint or f"https://sts.{self.universe}/v1/token"

    @property
    def iam_url(self) -> str:
        return self.iam_endpoint or f"https://iamcredentials.{self.universe}"

    @property
    def secret_manager_url(self) -> str:
        return self.secret_manager_endpoint or f"https://secretmanager.{self.universe}"

    @property
    def project_id(self) -> str | None:
        """``--project``, else the project in the service account's email."""
        if self.project:
            return self.project
        if self.service_account:
            match = _SA_PROJECT.search(self.service_account.split("@", 1)[1])
            if match:
                return match["project"]
        return None

    # The exchange

    def exchange(self, token_source: TokenSource) -> Credentials:
        token = token_source(self.audience)
        claims = token_claims(token)
        with HttpClient(self.http) as client:
            federated, federated_expiry = self._sts(client, token, claims)
            access_token: str | None = federated
            expiry = federated_expiry
            id_token: str | None = None
            if self.service_account and (self.token_format == "access_token" or self.secrets):
                access_token, expiry = self._generate_access_token(client, federated, claims)
            if self.token_format == "id_token":
                id_token = self._generate_id_token(client, federated, claims)
                expiry = token_expires_at(id_token)
            values = {ref.env: self._read_secret(client, access_token, ref) for ref in self.secrets}

        secret_env: dict[str, str] = {}
        if self.token_format == "access_token" and access_token:
            # gcloud reads the first, Terraform's google provider the second.
            secret_env["CLOUDSDK_AUTH_ACCESS_TOKEN"] = access_token
            secret_env["GOOGLE_OAUTH_ACCESS_TOKEN"] = access_token
        if id_token:
            secret_env["GOOGLE_ID_TOKEN"] = id_token
        secret_env.update(values)

        environment: dict[str, str] = {}
        facts: dict[str, str] = {"workload_identity_provider": self.workload_identity_provider}
        if self.create_credentials_file:
            path = self._write_credentials_file(token)
            for name in (
                "GOOGLE_APPLICATION_CREDENTIALS",
                "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
                "GOOGLE_GHA_CREDS_PATH",
            ):
                environment[name] = str(path)
            facts["credentials_file_path"] = str(path)
        project = self.project_id
        if project:
            for name in (
                "GOOGLE_CLOUD_PROJECT",
                "CLOUDSDK_CORE_PROJECT",
                "CLOUDSDK_PROJECT",
                "GCLOUD_PROJECT",
                "GCP_PROJECT",
            ):
                environment[name] = project
            facts["project_id"] = project
        if self.service_account:
            facts["service_account"] = self.service_account
        if expiry is not None and (access_token or id_token):
            facts["expires_at"] = _common.format_time(expiry)
        return Credentials(
            provider=self.name,
            secrets=secret_env,
            environment=environment,
            facts=facts,
            expires_at=expiry,
        )

    def _headers(self, bearer: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        if self.request_reason:
            headers["X-Goog-Request-Reason"] = self.request_reason
        return headers

    def _sts(
        self, client: HttpClient, token: str, claims: dict[str, Any]
    ) -> tuple[str, datetime | None]:
        body = {
            "audience": self.sts_audience,
            "grantType": "urn:ietf:params:oauth:grant-type:token-exchange",
            "requestedTokenType": "urn:ietf:params:oauth:token-type:access_token",
            "scope": " ".join(self.scopes),
            "subjectTokenType": _JWT_TYPE,
            "subjectToken": token,
        }
        service = "Google STS"
        # Issuing a token changes nothing a retry could duplicate: safe to repeat.
        response = client.request(
            "POST",
            self.token_url,
            service=service,
            idempotent=True,
            headers=self._headers(),
            json_body=body,
        )
        if response.status_code != 200:
            raise self._sts_error(response, client.describe_attempts(), claims)
        answer = _http.json_object(response, service)
        federated = _common.secret_field(
            answer, "access_token", service, label="the federated access token"
        )
        _logger.info("exchanged the OIDC token at Google STS (%s)", self.workload_identity_provider)
        return federated, _common.expires_in(answer.get("expires_in"))

    def _sts_error(
        self, response: requests.Response, attempts: str, claims: dict[str, Any]
    ) -> ConfigError | ExternalError:
        body = _http.error_json(response)
        if response.status_code >= 500 or response.status_code == 429 or not isinstance(body, dict):
            return _http.status_error(response, "Google STS", attempts)
        code = _http.clean_text(str(body.get("error", "")), 60)
        description = _http.clean_text(str(body.get("error_description", "")))
        shown = describe_claims(claims, ("repository", "project_path", "ref"))
        if code == "invalid_target":
            hint = (
                f"Check that the provider exists and is enabled:\n  {self.workload_identity_provider}\n"
                "and that the project NUMBER (not its id) is in the name."
            )
        elif "127 bytes" in description:
            hint = (
                "Map google.subject to something shorter than assertion.sub (e.g. "
                "assertion.repository_id + ':' + assertion.ref) in the provider's attribute "
                "mapping, or shorten the branch name."
            )
        elif code == "unauthorized_client":
            hint = (
                "The provider's attribute condition rejected this token's claims (above). "
                "Change the condition, or run from a repository/branch it allows."
            )
        else:
            hint = (
                "The provider must accept this token:\n"
                f"  issuer URI: {claims.get('iss', '?')}\n"
                f"  allowed audience: {claims.get('aud', '?')} (or leave the provider's "
                "default audience and do not pass --audience)\n"
                "and the token must not be expired (check the runner's clock)."
            )
        return ConfigError(
            f"Google STS rejected the OIDC token: HTTP {response.status_code} {code}: "
            f"{description}\nthe token's claims:\n{shown}",
            hint=hint,
        )

    def _sa_url(self, method: str) -> str:
        email = quote(self.service_account or "", safe="@")
        return f"{self.iam_url}/v1/projects/-/serviceAccounts/{email}:{method}"

    def _delegates(self) -> list[str]:
        return [
            d if d.startswith("projects/") else f"projects/-/serviceAccounts/{d}"
            for d in self.delegates
        ]

    def _generate_access_token(
        self, client: HttpClient, federated: str, claims: dict[str, Any]
    ) -> tuple[str, datetime | None]:
        body = {"scope": list(self.scopes), "lifetime": f"{self.lifetime}s"}
        answer, service = self._impersonate(client, "generateAccessToken", body, federated, claims)
        access_token = _common.secret_field(
            answer, "accessToken", service, label="the service account's access token"
        )
        expiry = _common.parse_timestamp(str(answer.get("expireTime", "")))
        if expiry is None:
            _logger.warning("the service account token's expireTime could not be parsed")
        _logger.info("got an access token for %s", self.service_account)
        return access_token, expiry

    def _generate_id_token(self, client: HttpClient, federated: str, claims: dict[str, Any]) -> str:
        body = {"audience": self.id_token_audience, "includeEmail": self.id_token_include_email}
        answer, service = self._impersonate(client, "generateIdToken", body, federated, claims)
        id_token = _common.secret_field(
            answer, "token", service, label="the service account's ID token"
        )
        _logger.info("got an ID token for %s", self.service_account)
        return id_token

    def _impersonate(
        self,
        client: HttpClient,
        method: str,
        body: dict[str, Any],
        federated: str,
        claims: dict[str, Any],
    ) -> tuple[dict[str, Any], str]:
        """Call IAM Credentials ``method`` for the service account with the federated token;
        its answer, and the service's name for later messages."""
        if self.delegates:
            body["delegates"] = self._delegates()
        service = f"Google IAM Credentials ({method})"
        response = client.request(
            "POST",
            self._sa_url(method),
            service=service,
            idempotent=True,
            headers=self._headers(federated),
            json_body=body,
        )
        if response.status_code != 200:
            raise self._iam_error(response, client.describe_attempts(), claims, service)
        return _http.json_object(response, service), service

    def _iam_error(
        self, response: requests.Response, attempts: str, claims: dict[str, Any], service: str
    ) -> ConfigError | ExternalError:
        status = response.status_code
        if status >= 500 or status == 429:
            return _http.status_error(response, service, attempts)
        message = _google_message(response)
        pool = self.workload_identity_provider.rsplit("/providers/", 1)[0]
        member = f"principalSet://iam.googleapis.com/{pool}/attribute.repository/{claims.get('repository', 'OWNER/REPO')}"
        if "project_path" in claims:  # GitLab
            member = f"principalSet://iam.googleapis.com/{pool}/attribute.project_path/{claims['project_path']}"
        if status == 403:
            hint = (
                "Grant the pool's identities roles/iam.workloadIdentityUser on the service "
                "account (the attribute must be in the provider's attribute mapping):\n"
                f"  gcloud iam service-accounts add-iam-policy-binding {self.service_account} \\\n"
                f"    --role=roles/iam.workloadIdentityUser --member='{member}'\n"
                "New bindings can take up to 5 minutes to apply."
            )
        elif status == 404:
            hint = f"Check the service account's email: {self.service_account}"
        elif "lifetime" in message:
            hint = (
                "Ask for --lifetime 3600 or less, or allow longer ones with the org policy "
                "constraints/iam.allowServiceAccountCredentialLifetimeExtension."
            )
        else:
            hint = None
        shown = describe_claims(claims, ("repository", "project_path"))
        return ConfigError(
            f"{service} refused to issue a token for {self.service_account}: HTTP {status}: "
            f"{message}\nthe OIDC token's claims:\n{shown}",
            hint=hint,
        )

    def _read_secret(self, client: HttpClient, access_token: str | None, ref: SecretRef) -> str:
        service = "Google Secret Manager"
        url = f"{self.secret_manager_url}/v1/{ref.resource}:access"
        response = client.request(
            "GET", url, service=service, idempotent=True, headers=self._headers(access_token)
        )
        if response.status_code != 200:
            status = response.status_code
            if status >= 500 or status == 429:
                raise _http.status_error(response, service, client.describe_attempts())
            who = self.service_account or "the federated identity"
            hints = {
                403: f"Grant {who} roles/secretmanager.secretAccessor on the secret {ref.secret}.",
                404: "Check the project, the secret's name and that it has an enabled version.",
            }
            raise ConfigError(
                f"{service} refused {ref.resource}: HTTP {status}: {_google_message(response)}",
                hint=hints.get(status),
            )
        answer = _http.json_object(response, service)
        payload = answer.get("payload")
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, str):
            raise _http.missing_field(service, "payload.data", answer)
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError:
            raise ExternalError(f"{service}: the payload of {ref.resource} is not base64") from None
        expected = payload.get("dataCrc32c") if isinstance(payload, dict) else None
        if expected is not None and str(expected) != str(crc32c(raw)):
            raise ExternalError(
                f"{service}: the payload of {ref.resource} does not match its CRC32C checksum",
                hint="the data was corrupted on the way; re-run the job",
            )
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(
                f"{ref.resource} is not UTF-8 text, so it cannot go into an environment variable",
                hint="store text (base64-encode binary data before storing it)",
            ) from None
        remember_secret(value, label=ref.env)
        _logger.info("read %s into %s", ref.resource, ref.env)
        return value

    # The credentials file

    def _write_credentials_file(self, token: str) -> Path:
        directory = _common.job_temp_dir(self.credentials_dir)
        stem = f"tollgate-gcp-{secrets.token_hex(8)}"
        token_path = directory / f"{stem}.jwt"
        config_path = directory / f"{stem}.json"
        # The token file holds the OIDC token only: it cannot mint new ones.
        _common.write_private(token_path, token.encode())
        config: dict[str, Any] = {
            "type": "external_account",
            "audience": self.sts_audience,
            "subject_token_type": _JWT_TYPE,
            "token_url": self.token_url,
            "credential_source": {"file": str(token_path), "format": {"type": "text"}},
            "universe_domain": self.universe,
        }
        if self.service_account:
            config["service_account_impersonation_url"] = self._sa_url("generateAccessToken")
            config["service_account_impersonation"] = {"token_lifetime_seconds": self.lifetime}
        _common.write_private(config_path, (json.dumps(config, indent=2) + "\n").encode())
        _logger.info(
            "wrote the credentials file %s; Google libraries can exchange the OIDC token in it "
            "until %s (run this step again after that)",
            config_path,
            token_expiry(token),
        )
        return config_path


def _google_message(response: requests.Response) -> str:
    """The ``error.message`` of a Google JSON error, or an excerpt of the body."""
    body = _http.error_json(response)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        status = _http.clean_text(str(error.get("status", "")), 40)
        message = _http.clean_text(str(error.get("message", "")))
        return f"{status}: {message}" if status else message
    return _http.excerpt(response)


# CRC32C (Castagnoli), Secret Manager's payload checksum.


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """The CRC32C of ``data`` (secrets are small: a table-driven loop is quick enough)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
