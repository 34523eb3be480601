"""AWS: the job's OIDC token -> STS ``AssumeRoleWithWebIdentity`` -> temporary keys.

The web-identity call is unsigned (the token is the credential) and goes to the regional STS
endpoint. tollgate retries, not botocore (whose own retries are off): only throttling, IdP
hiccups, the transient "Couldn't retrieve verification key", 5xx and network errors are
retried, with full-jitter backoff inside one time budget for the whole exchange, and never
with a sleep after the last attempt (oidc-anchors.md §2.6, §8.1, §8.6). A rejection fails at
once with the claims the token carried and the trust-policy statement that would match them.

Optional hops follow: ``AssumeRole`` for each chained role, then Secrets Manager reads with
the final keys. botocore is imported by :meth:`AwsProvider.exchange` only.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from tollgate._http import clean_text, is_secure_endpoint
from tollgate.ci import is_env_name, validate_env_name
from tollgate.ci.local import remember_secret
from tollgate.credentials._common import env_name, format_time
from tollgate.credentials.claims import describe_claims, token_claims
from tollgate.credentials.interface import Credentials, Provider, TokenSource
from tollgate.errors import ConfigError, Error, ExternalError, UsageError

_logger = logging.getLogger(__name__)

DEFAULT_AUDIENCE = "sts.amazonaws.com"
DEFAULT_DURATION = 3600
MIN_DURATION = 900
MAX_DURATION = 43200
CHAINED_MAX_DURATION = 3600
"""AWS caps sessions of a role assumed with credentials of another role at one hour."""

ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
SESSION_TOKEN = "AWS_SESSION_TOKEN"
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")

RETRYABLE_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "IDPCommunicationError"}
)
"""Error codes worth another attempt (besides HTTP 5xx and network errors)."""

_VERIFICATION_KEY = "couldn't retrieve verification key"
_ROLE_ARN = re.compile(r"arn:(aws[a-z-]*):iam::(\d{12}):role/[\w+=,.@/-]{1,512}\Z", re.ASCII)
_POLICY_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]{1,512}\Z", re.ASCII)
_ASSUMED_ARN = re.compile(r"arn:aws[a-z-]*:sts::(\d{12}):assumed-role/", re.ASCII)
_REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+)+-\d\Z")
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}\Z", re.ASCII)
_NOT_IN_SESSION_NAME = re.compile(r"[^\w+=,.@-]", re.ASCII)
_ACCOUNT_ID = re.compile(r"\d{12}\Z")
_MAX_POLICY_CHARS = 2048
_REMINT_MARGIN = 60.0
"""Ask the CI system for a new token before a retry when the old one expires this soon."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try AWS before giving up. ``budget`` bounds the whole exchange."""

    max_attempts: int = 5
    """Attempts per call (the first one included)."""
    base_delay: float = 0.5
    """Full jitter: the wait before retry n is uniform in [0, min(max_delay, base * 2**n))."""
    max_delay: float = 8.0
    budget: float = 60.0
    """Seconds for the whole exchange, retries and every hop included."""
    connect_timeout: float = 5.0
    read_timeout: float = 20.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise UsageError("the number of attempts must be at least 1")
        if self.budget <= 0:
            raise UsageError("the time budget must be a positive number of seconds")


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class SecretRef:
    """A Secrets Manager secret (or one key of a JSON secret) for environment variable NAME.

    Written ``SECRET_ID[#JSON_KEY] [| NAME]``, as the other providers' ``--secret``, or
    ``NAME=SECRET_ID[#JSON_KEY]``. SECRET_ID is a name or an ARN (both may hold ``:`` and
    ``=``, never ``#`` or ``|``); JSON_KEY picks one top-level key of a JSON secret. Without
    NAME, the variable is named after the secret (and key): ``prod/db#password`` sets
    ``PROD_DB_PASSWORD``, as aws-actions/aws-secretsmanager-get-secrets does.
    """

    name: str
    secret_id: str
    json_key: str | None = None

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        """Parse either form; :class:`UsageError` when malformed."""
        before, equals, after = text.partition("=")
        name: str | None
        if "|" in text:
            reference, _, name = (part.strip() for part in text.partition("|"))
            if not name:
                raise UsageError(f"--secret {text!r}: the name after '|' is empty")
        elif equals and is_env_name(before):
            name, reference = before, after
        else:
            name, reference = None, text.strip()
        secret_id, hash_sign, key = reference.partition("#")
        if not secret_id:
            raise UsageError(
                f"cannot read the secret reference {text!r}",
                hint=(
                    "write SECRET_ID[#JSON_KEY] [| NAME], e.g.\n"
                    "  --secret 'prod/db#password | DB_PASSWORD'\n"
                    "SECRET_ID is a secret's name or ARN; NAME the environment variable to set."
                ),
            )
        if hash_sign and not key:
            raise UsageError(f"the secret reference {text!r} has an empty JSON key after '#'")
        if name is None:
            friendly = secret_id.rpartition(":secret:")[2]  # an ARN's secret name
            name = env_name(f"{friendly}_{key}" if hash_sign else friendly)
        validate_env_name(name, f"--secret {text!r}: ")
        return cls(name=name, secret_id=secret_id, json_key=key if hash_sign else None)


@dataclass(frozen=True)
class AwsOptions:
    """What to assume, where, and what to fetch with it (validated on construction)."""

    role_arn: str
    region: str
    session_name: str
    audience: str = DEFAULT_AUDIENCE
    duration: int = DEFAULT_DURATION
    sts_endpoint: str | None = None
    chain_role_arns: tuple[str, ...] = ()
    session_policy: str | None = None
    """An IAM policy document (JSON text) that narrows the final session."""
    managed_policy_arns: tuple[str, ...] = ()
    secrets: tuple[SecretRef, ...] = ()
    allowed_account_ids: tuple[str, ...] = ()
    ca_bundle: str | None = None
    retry: RetryPolicy = field(default=DEFAULT_RETRY)

    def __post_init__(self) -> None:
        for arn in (self.role_arn, *self.chain_role_arns):
            _check_role_arn(arn)
        if not _REGION.match(self.region):
            raise UsageError(
                f"{self.region!r} is not an AWS region name", hint="for example: us-east-1"
            )
        if not _SESSION_NAME.match(self.session_name):
            raise UsageError(
                f"{self.session_name!r} is not a valid role session name",
                hint="use 2 to 64 characters of letters, digits and + = , . @ _ -",
            )
        if not self.audience:
            raise UsageError("the audience must not be empty")
        if self.sts_endpoint is not None:
            _check_endpoint(self.sts_endpoint)
        if not MIN_DURATION <= self.duration <= MAX_DURATION:
            raise UsageError(
                f"a session lasts {MIN_DURATION} to {MAX_DURATION} seconds, not {self.duration}"
            )
        if self.chain_role_arns and self.duration > CHAINED_MAX_DURATION:
            raise UsageError(
                f"a chained role session lasts at most {CHAINED_MAX_DURATION} seconds, not "
                f"{self.duration}",
                hint="AWS caps role chaining at one hour; lower the duration",
            )
        for arn in self.managed_policy_arns:
            if not _POLICY_ARN.match(arn):
                raise UsageError(
                    f"{arn!r} is not an IAM policy ARN",
                    hint="for example: arn:aws:iam::aws:policy/ReadOnlyAccess",
                )
        for account in self.allowed_account_ids:
            if not _ACCOUNT_ID.match(account):
                raise UsageError(f"{account!r} is not an AWS account id (12 digits)")
        names = [ref.name for ref in self.secrets]
        clash = sorted({n for n in names if names.count(n) > 1 or n.upper().startswith("AWS_")})
        if clash:
            raise UsageError(
                f"secret variable names must be unique and not start with AWS_: {', '.join(clash)}"
            )
        if self.session_policy is not None:
            _check_policy(self.session_policy)

    @property
    def final_role_arn(self) -> str:
        """The role whose keys the job gets (the last of the chain)."""
        return self.chain_role_arns[-1] if self.chain_role_arns else self.role_arn


class AwsProvider(Provider):
    """Temporary AWS keys for a role that trusts the CI system's OIDC issuer."""

    name: ClassVar[str] = "aws"

    def __init__(
        self,
        role_arn: str,
        *,
        region: str | None = None,
        audience: str | None = None,
        session_name: str | None = None,
        duration: int | None = None,
        sts_endpoint: str | None = None,
        chain_role_arns: Sequence[str] = (),
        session_policy: str | None = None,
        managed_policy_arns: Sequence[str] = (),
        secrets: Sequence[SecretRef] = (),
        allowed_account_ids: Sequence[str] = (),
        ca_bundle: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if not region:
            raise UsageError(
                "no AWS region: give one, or set AWS_REGION",
                hint="STS is called in this region and later steps get it as AWS_REGION",
            )
        self.options = AwsOptions(
            role_arn=role_arn,
            region=region,
            session_name=session_name or default_session_name(env),
            audience=audience or DEFAULT_AUDIENCE,
            duration=DEFAULT_DURATION if duration is None else duration,
            sts_endpoint=sts_endpoint,
            chain_role_arns=tuple(chain_role_arns),
            session_policy=None if session_policy is None else compact_policy(session_policy),
            managed_policy_arns=tuple(managed_policy_arns),
            secrets=tuple(secrets),
            allowed_account_ids=tuple(allowed_account_ids),
            ca_bundle=ca_bundle,
            retry=retry,
        )
        self._check_allowed_account(_role_account(self.options.final_role_arn), before=True)

    @property
    def audience(self) -> str:
        """``sts.amazonaws.com`` unless another audience was given."""
        return self.options.audience

    def exchange(self, token_source: TokenSource) -> Credentials:
        """Assume the role (and the chain), read the secrets, return everything as credentials."""
        opts = self.options
        started = time.monotonic()
        deadline = started + opts.retry.budget
        sdk = _sdk(opts.ca_bundle)
        keys = self._assume_web_identity(sdk, token_source, deadline)
        previous = opts.role_arn
        for index, role in enumerate(opts.chain_role_arns):
            final = index == len(opts.chain_role_arns) - 1
            keys = self._assume_role(sdk, keys, previous, role, final=final, deadline=deadline)
            previous = role
        account = _assumed_account(keys.arn)
        self._check_allowed_account(account, before=False)
        fetched = self._fetch_secrets(sdk, keys, deadline)
        _logger.debug("AWS exchange done in %.2f s", time.monotonic() - started)
        expiration = format_time(keys.expiration)
        return Credentials(
            provider=self.name,
            secrets={
                ACCESS_KEY_ID: keys.access_key_id,
                SECRET_ACCESS_KEY: keys.secret_access_key,
                SESSION_TOKEN: keys.session_token,
                **fetched,
            },
            environment=dict.fromkeys(REGION_VARIABLES, opts.region),
            facts={"aws-account-id": account, "aws-arn": keys.arn, "aws-expiration": expiration},
            expires_at=keys.expiration,
        )

    # The hops

    def _assume_web_identity(self, sdk: _Sdk, token_source: TokenSource, deadline: float) -> _Keys:
        opts = self.options
        token = token_source(self.audience)
        claims = token_claims(token)
        _warn_on_audience(claims, self.audience)
        chained = bool(opts.chain_role_arns)
        params: dict[str, Any] = {
            "RoleArn": opts.role_arn,
            "RoleSessionName": opts.session_name,
            # A first hop only has to live long enough to assume the next role.
            "DurationSeconds": MIN_DURATION if chained else opts.duration,
        }
        if not chained:
            params.update(self._policy_params())

        def call(timeout: float) -> Any:
            client = sdk.client("sts", opts, timeout=timeout, endpoint=opts.sts_endpoint)
            return client.assume_role_with_web_identity(WebIdentityToken=token, **params)

        def before_retry() -> None:
            nonlocal token, claims
            # GitHub tokens live five minutes; a long retry must not send an expired one.
            if _expires_within(claims, _REMINT_MARGIN):
                _logger.info("the OIDC token expires soon; requesting a new one")
                token = token_source(self.audience)
                claims = token_claims(token)

        what = f"AssumeRoleWithWebIdentity for {opts.role_arn}"
        try:
            response = _with_retries(
                sdk,
                opts.retry,
                what,
                call,
                deadline,
                before_retry,
                lambda: _describe_claims(claims),
            )
        except _RejectedError as rejected:
            raise _web_identity_error(rejected.failure, opts, claims, token) from None
        return _keys_from(response, what)

    def _assume_role(
        self, sdk: _Sdk, keys: _Keys, previous: str, role: str, *, final: bool, deadline: float
    ) -> _Keys:
        opts = self.options
        params: dict[str, Any] = {
            "RoleArn": role,
            "RoleSessionName": opts.session_name,
            "DurationSeconds": opts.duration if final else MIN_DURATION,
        }
        if final:
            params.update(self._policy_params())

        def call(timeout: float) -> Any:
            client = sdk.client("sts", opts, timeout=timeout, endpoint=opts.sts_endpoint, keys=keys)
            return client.assume_role(**params)

        what = f"AssumeRole for {role}"
        try:
            response = _with_retries(sdk, opts.retry, what, call, deadline)
        except _RejectedError as rejected:
            raise _chain_error(rejected.failure, previous, role, keys.arn) from None
        return _keys_from(response, what)

    def _fetch_secrets(self, sdk: _Sdk, keys: _Keys, deadline: float) -> dict[str, str]:
        opts = self.options
        documents: dict[str, str] = {}
        values: dict[str, str] = {}
        for ref in opts.secrets:
            if ref.secret_id not in documents:
                documents[ref.secret_id] = self._read_secret(sdk, keys, ref.secret_id, deadline)
            value = _pick(documents[ref.secret_id], ref)
            remember_secret(value, label=ref.name)
            values[ref.name] = value
        return values

    def _read_secret(self, sdk: _Sdk, keys: _Keys, secret_id: str, deadline: float) -> str:
        opts = self.options

        def call(timeout: float) -> Any:
            client = sdk.client("secretsmanager", opts, timeout=timeout, keys=keys)
            return client.get_secret_value(SecretId=secret_id)

        try:
            response = _with_retries(
                sdk, opts.retry, f"GetSecretValue for {secret_id}", call, deadline
            )
        except _RejectedError as rejected:
            raise _secret_error(rejected.failure, secret_id, keys.arn, opts.region) from None
        text = response.get("SecretString")
        if isinstance(text, str):
            remember_secret(text, label=secret_id)
            return text
        binary = response.get("SecretBinary")
        if isinstance(binary, (bytes, bytearray)):
            # Environment variables hold text: a binary secret is handed over as base64.
            encoded = base64.b64encode(bytes(binary)).decode("ascii")
            remember_secret(encoded, label=secret_id)
            return encoded
        raise ExternalError(f"Secrets Manager returned no value for {secret_id}")

    def _policy_params(self) -> dict[str, Any]:
        opts = self.options
        params: dict[str, Any] = {}
        if opts.session_policy is not None:
            params["Policy"] = opts.session_policy
        if opts.managed_policy_arns:
            params["PolicyArns"] = [{"arn": arn} for arn in opts.managed_policy_arns]
        return params

    def _check_allowed_account(self, account: str, *, before: bool) -> None:
        allowed = self.options.allowed_account_ids
        if not allowed or account in allowed:
            return
        when = "would get" if before else "got"
        raise ConfigError(
            f"this job {when} credentials for AWS account {account}, which is not one of the "
            f"allowed accounts ({', '.join(allowed)})",
            hint="check the role ARN (and the chain), or add the account to the allowed ones",
        )


def default_session_name(environ: Mapping[str, str]) -> str:
    """``GitHubActions-<run id>``, ``GitLab-<project id>-<pipeline id>`` or ``tollgate``."""
    if environ.get("GITHUB_RUN_ID"):
        name = f"GitHubActions-{environ['GITHUB_RUN_ID']}"
    elif environ.get("CI_PIPELINE_ID"):
        name = f"GitLab-{environ.get('CI_PROJECT_ID', '')}-{environ['CI_PIPELINE_ID']}"
    else:
        name = "tollgate"
    return sanitize_session_name(name)


def sanitize_session_name(name: str) -> str:
    """``name`` made to fit AWS's ``[\\w+=,.@-]{2,64}``."""
    cleaned = _NOT_IN_SESSION_NAME.sub("-", name)[:64]
    return cleaned if len(cleaned) >= 2 else f"{cleaned}--"[:2]


# botocore, behind one small seam.


@dataclass(frozen=True)
class _Keys:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime
    arn: str


class _Sdk:
    """The parts of botocore the exchange uses, imported here and nowhere else."""

    def __init__(self, ca_bundle: str | None) -> None:
        try:
            import botocore.exceptions
            import botocore.session
            from botocore import UNSIGNED
            from botocore.config import Config
            from botocore.parsers import ResponseParserError
        except ImportError:
            raise ConfigError(
                "tollgate creds aws needs botocore, which is not installed",
                hint="pip install 'tollgate[aws]'",
            ) from None
        self.errors: Any = botocore.exceptions
        self.parse_error: Any = ResponseParserError
        self._unsigned: Any = UNSIGNED
        self._config: Any = Config
        self._ca_bundle = ca_bundle
        self._lock = threading.Lock()  # botocore sessions are not thread-safe; clients are
        # AWS_PROFILE may name a profile that a later step creates (or none at all); the
        # exchange needs no profile, so a missing one must not stop it.
        self._session: Any = botocore.session.Session(
            session_vars={"profile": (None, None, None, None)}
        )
        self._session.set_config_variable("sts_regional_endpoints", "regional")
        # botocore logs raw response bodies at DEBUG, before tollgate has masked the keys
        # in them; -vv must not print those.
        logging.getLogger("botocore.parsers").setLevel(logging.INFO)

    def client(
        self,
        service: str,
        opts: AwsOptions,
        *,
        timeout: float,
        endpoint: str | None = None,
        keys: _Keys | None = None,
    ) -> Any:
        """A client whose timeouts fit in ``timeout`` seconds and that never retries."""
        settings: dict[str, Any] = {
            "retries": {"total_max_attempts": 1, "mode": "standard"},
            # Connecting and reading together must fit in what is left of the budget.
            "connect_timeout": max(0.1, min(opts.retry.connect_timeout, timeout / 2)),
            "read_timeout": max(0.1, min(opts.retry.read_timeout, timeout / 2)),
            "user_agent_appid": "tollgate",
        }
        credentials: dict[str, str] = {}
        if keys is None:
            settings["signature_version"] = self._unsigned
        else:
            credentials = {
                "aws_access_key_id": keys.access_key_id,
                "aws_secret_access_key": keys.secret_access_key,
                "aws_session_token": keys.session_token,
            }
        try:
            with self._lock:
                return self._session.create_client(
                    service,
                    region_name=opts.region,
                    endpoint_url=endpoint,
                    verify=self._ca_bundle,
                    config=self._config(**settings),
                    **credentials,
                )
        except (self.errors.BotoCoreError, ValueError) as error:
            raise ConfigError(
                f"cannot set up the AWS {service} client: {clean_text(str(error))}",
                hint="check the region, the endpoint URL and the AWS configuration files",
            ) from None


@functools.lru_cache(maxsize=4)
def _sdk(ca_bundle: str | None) -> _Sdk:
    """One botocore session per CA bundle: loading its data files is most of a client's cost."""
    return _Sdk(ca_bundle)


@dataclass(frozen=True)
class _Failure:
    """One failed attempt, reduced to what classification and messages need."""

    kind: str
    """``client`` (AWS answered with an error), ``network``, ``tls`` or ``parse``."""
    code: str = ""
    message: str = ""
    status: int = 0

    def __str__(self) -> str:
        if self.kind == "client":
            status = f" (HTTP {self.status})" if self.status else ""
            return f"{self.code}: {self.message}{status}" if self.message else self.code
        return self.message

    @property
    def retryable(self) -> bool:
        if self.kind == "network":
            return True
        if self.kind != "client":
            return False
        if self.code in RETRYABLE_CODES or self.status >= 500:
            return True
        # STS fails this way when it cannot reach the issuer's keys for a moment.
        return self.code == "InvalidIdentityToken" and _VERIFICATION_KEY in self.message.lower()


class _RejectedError(Exception):
    """A failure that retrying cannot fix; the caller turns it into a ConfigError."""

    def __init__(self, failure: _Failure) -> None:
        super().__init__(str(failure))
        self.failure = failure


def _failure_of(sdk: _Sdk, error: Exception) -> _Failure | None:
    """Classify a botocore exception (None: not one of botocore's)."""
    errors = sdk.errors
    if isinstance(error, errors.ClientError):
        response = getattr(error, "response", {}) or {}
        info = response.get("Error", {}) or {}
        status = int((response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode") or 0)
        return _Failure(
            "client",
            code=str(info.get("Code") or status or "UnknownError"),
            message=clean_text(str(info.get("Message") or "")),
            status=status,
        )
    if isinstance(error, errors.SSLError):
        return _Failure("tls", message=clean_text(f"TLS error: {error}"))
    if isinstance(error, (errors.ConnectionError, errors.HTTPClientError)):
        return _Failure("network", message=clean_text(f"{type(error).__name__}: {error}"))
    if isinstance(error, sdk.parse_error):
        return _Failure("parse", message="the answer was not a well-formed AWS response")
    if isinstance(error, (KeyError, IndexError, TypeError, ValueError)):
        # botocore's parsers fail this way on XML of the wrong shape (another service's).
        _logger.debug("unexpected answer", exc_info=True)
        return _Failure("parse", message="the answer was not the AWS response expected")
    if isinstance(error, errors.ParamValidationError):
        raise UsageError(f"AWS refused the request parameters: {clean_text(str(error))}") from None
    return None


def _with_retries(
    sdk: _Sdk,
    policy: RetryPolicy,
    what: str,
    call: Callable[[float], _T],
    deadline: float,
    before_retry: Callable[[], None] | None = None,
    detail: Callable[[], str] | None = None,
) -> _T:
    """``call(seconds_left)`` until it succeeds, is rejected, or attempts or time run out.

    ``detail`` adds context (the token's claims) to the message when it gives up.
    """
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        left = deadline - time.monotonic()
        if left <= 0:
            raise _gave_up(what, attempt - 1, time.monotonic() - started, None, detail)
        try:
            return call(left)
        except Error:
            raise
        except Exception as error:
            failure = _failure_of(sdk, error)
            if failure is None:
                raise
        if failure.kind == "tls":
            raise ConfigError(
                f"{what}: {failure}",
                hint=(
                    "The TLS certificate of the endpoint could not be verified. Behind a "
                    "TLS-inspecting proxy, give its CA bundle (--ca-bundle or AWS_CA_BUNDLE)."
                ),
            )
        if failure.kind == "parse":
            raise ExternalError(
                f"{what}: {failure}",
                hint=(
                    "Something other than AWS answered: check --sts-endpoint, "
                    "AWS_ENDPOINT_URL_* and the proxy settings (HTTPS_PROXY, NO_PROXY)."
                ),
            )
        if not failure.retryable:
            raise _RejectedError(failure)
        elapsed = time.monotonic() - started
        if attempt >= policy.max_attempts:
            raise _gave_up(what, attempt, elapsed, failure, detail)
        delay = random.uniform(0, min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1)))
        if time.monotonic() + delay >= deadline:
            raise _gave_up(what, attempt, elapsed, failure, detail)
        # Info, not warning: on GitHub a warning is an annotation, and this may yet succeed.
        _logger.info(
            "%s failed (%s), attempt %d of %d; retrying in %.1f s",
            what,
            failure,
            attempt,
            policy.max_attempts,
            delay,
        )
        time.sleep(delay)
        if before_retry is not None:
            before_retry()


def _gave_up(
    what: str,
    attempts: int,
    elapsed: float,
    last: _Failure | None,
    detail: Callable[[], str] | None,
) -> ExternalError:
    tail = f"; last error: {last}" if last is not None else ""
    more = f"\n{detail()}" if detail is not None else ""
    return ExternalError(
        f"{what} failed: gave up after {attempts} attempt{'s' if attempts != 1 else ''} in "
        f"{elapsed:.1f} s{tail}{more}",
        hint=(
            "AWS or the network kept failing. Re-run the job; if it keeps happening, allow more "
            "time or attempts (--timeout, --max-attempts), see https://health.aws.amazon.com, "
            "and behind a proxy check HTTPS_PROXY and NO_PROXY."
        ),
    )


def _keys_from(response: Any, what: str) -> _Keys:
    """The credentials of an AssumeRole* answer; masked here, before anything can print them."""
    creds = response.get("Credentials") if isinstance(response, dict) else None
    user = response.get("AssumedRoleUser") if isinstance(response, dict) else None
    values = [
        (creds or {}).get(name)
        for name in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")
    ]
    arn = (user or {}).get("Arn")
    if not all(values) or not isinstance(arn, str):
        raise ExternalError(
            f"{what}: the answer holds no credentials",
            hint="Something other than AWS STS answered: check --sts-endpoint.",
        )
    access_key_id, secret_access_key, session_token, expiration = values
    for label, value in (
        (ACCESS_KEY_ID, access_key_id),
        (SECRET_ACCESS_KEY, secret_access_key),
        (SESSION_TOKEN, session_token),
    ):
        remember_secret(str(value), label=label)
    if not isinstance(expiration, datetime):
        raise ExternalError(f"{what}: the answer has no valid expiration time")
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=timezone.utc)
    return _Keys(str(access_key_id), str(secret_access_key), str(session_token), expiration, arn)


def _pick(document: str, ref: SecretRef) -> str:
    if ref.json_key is None:
        return document
    try:
        data = json.loads(document)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ConfigError(
            f"secret {ref.secret_id} is not a JSON object, so it has no key {ref.json_key!r}",
            hint=f"drop '#{ref.json_key}' to get the whole secret",
        )
    if ref.json_key not in data:
        raise ConfigError(
            f"secret {ref.secret_id} has no key {ref.json_key!r}",
            hint=f"its keys are: {', '.join(sorted(map(str, data))) or '(none)'}",
        )
    value = data[ref.json_key]
    return value if isinstance(value, str) else json.dumps(value)


# Messages


def _web_identity_error(
    failure: _Failure, opts: AwsOptions, claims: Mapping[str, Any], token: str
) -> ConfigError:
    message = (
        f"AWS STS refused to let this job assume {opts.role_arn}: "
        f"{_without(str(failure), token)}\n{_describe_claims(claims)}"
    )
    return ConfigError(message, hint=_web_identity_hint(failure.code, opts, claims))


def _describe_claims(claims: Mapping[str, Any]) -> str:
    if not claims:
        return "The OIDC token sent is not a readable JWT."
    return f"The OIDC token sent has these claims:\n{describe_claims(claims)}"


def _web_identity_hint(code: str, opts: AwsOptions, claims: Mapping[str, Any]) -> str:
    issuer = _claim(claims, "iss")
    host = re.sub(r"^https://", "", issuer).rstrip("/")
    partition, account = _role_partition_account(opts.role_arn)
    if code == "InvalidIdentityToken":
        return (
            f"STS could not validate the token. Account {account} needs an IAM OIDC identity "
            f"provider for {issuer} whose audiences include {_claim(claims, 'aud')!r} (request "
            "another audience with --audience), and the issuer's discovery document and keys "
            "must be reachable from AWS."
        )
    if code == "ExpiredTokenException":
        return (
            "The token had expired when STS checked it. On GitHub tollgate requests a fresh "
            "token right before the exchange; a token from a file or variable may be older: "
            "obtain it right before this step (and check the runner's clock)."
        )
    if code in ("MalformedPolicyDocument", "PackedPolicyTooLarge"):
        return "Check the session policy (--session-policy) and the managed policy ARNs."
    if code == "ValidationError":
        return (
            "Check the duration (at most the role's maximum session duration), the session "
            "name and the policies."
        )
    if code == "RegionDisabledException":
        return f"STS is not active in {opts.region} for account {account}; choose another region."
    statement = {
        "Effect": "Allow",
        "Principal": {"Federated": f"arn:{partition}:iam::{account}:oidc-provider/{host}"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {
            "StringEquals": {
                f"{host}:aud": _claim(claims, "aud"),
                f"{host}:sub": _claim(claims, "sub"),
            }
        },
    }
    rendered = json.dumps(statement, indent=2)
    return (
        "The role's trust policy must allow this token. For these claims it needs a "
        "statement like:\n"
        + "\n".join(f"  {line}" for line in rendered.splitlines())
        + "\nConditions compare exactly (case included); StringLike with * matches several "
        "refs. The issuer must also be registered as an IAM OIDC provider in the account."
    )


def _chain_error(failure: _Failure, previous: str, role: str, session_arn: str) -> ConfigError:
    hint = (
        f"{role} must trust {previous} (Principal AWS: {previous}, Action sts:AssumeRole), "
        f"and {previous} needs permission for sts:AssumeRole on it."
    )
    if failure.code == "ValidationError":
        hint += " A chained session lasts at most one hour."
    return ConfigError(
        f"AWS STS refused to let {session_arn} assume {role} (role chaining): {failure}",
        hint=hint,
    )


def _secret_error(failure: _Failure, secret_id: str, session_arn: str, region: str) -> ConfigError:
    hints = {
        "ResourceNotFoundException": f"Check the secret's name or ARN and the region ({region}).",
        "AccessDeniedException": (
            "Allow secretsmanager:GetSecretValue on the secret (and kms:Decrypt on its key, "
            "if it uses a customer managed key) for the role."
        ),
        "DecryptionFailure": "Allow kms:Decrypt on the secret's KMS key for the role.",
    }
    return ConfigError(
        f"Secrets Manager refused {session_arn} the secret {secret_id}: {failure}",
        hint=hints.get(failure.code),
    )


def _warn_on_audience(claims: Mapping[str, Any], audience: str) -> None:
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if aud is not None and audience not in audiences:
        _logger.warning(
            "the OIDC token's audience is %s, not %s: STS accepts it only if the account's "
            "OIDC provider lists that audience",
            _claim(claims, "aud"),
            audience,
        )


# Small helpers


def _check_role_arn(arn: str) -> None:
    if not _ROLE_ARN.match(arn):
        raise UsageError(
            f"{arn!r} is not an IAM role ARN",
            hint="for example: arn:aws:iam::123456789012:role/deploy",
        )


def _check_endpoint(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError(
            f"{url!r} is not an endpoint URL",
            hint="for example: https://sts.eu-west-1.amazonaws.com",
        )
    if not is_secure_endpoint(url):
        # LocalStack or MinIO in a service container is a fair use; the token still crosses a
        # network in clear text, so say so.
        _logger.warning(
            "the STS endpoint %s is plain HTTP: the OIDC token is sent unencrypted", url
        )


def _check_policy(document: str) -> None:
    try:
        parsed = json.loads(document)
    except ValueError as error:
        raise UsageError(f"the session policy is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise UsageError("the session policy must be a JSON object (an IAM policy document)")
    if len(document) > _MAX_POLICY_CHARS:
        raise UsageError(
            f"the session policy has {len(document)} characters; AWS allows {_MAX_POLICY_CHARS}"
        )


def compact_policy(document: str) -> str:
    """A policy document without insignificant white space (AWS counts every character)."""
    try:
        return json.dumps(json.loads(document), separators=(",", ":"))
    except ValueError:
        return document


def _role_partition_account(arn: str) -> tuple[str, str]:
    match = _ROLE_ARN.match(arn)
    return (match.group(1), match.group(2)) if match else ("aws", "<account>")


def _role_account(arn: str) -> str:
    return _role_partition_account(arn)[1]


def _assumed_account(arn: str) -> str:
    match = _ASSUMED_ARN.match(arn)
    if match is None:
        raise ExternalError(f"AWS STS returned an unexpected assumed-role ARN: {clean_text(arn)}")
    return match.group(1)


def _claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if value is None:
        return "(missing)"
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return clean_text(text)


def _expires_within(claims: Mapping[str, Any], seconds: float) -> bool:
    exp = claims.get("exp")
    return isinstance(exp, (int, float)) and exp - time.time() < seconds


def _without(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text
