"""Plumbing shared by the GCP, Azure and Vault providers: HTTP, error texts, token claims.

:class:`HttpClient` wraps one ``requests`` session: retries with jittered backoff inside a
total time budget, a timeout on every request, no redirects, ``HTTPS_PROXY``/``NO_PROXY``
from the environment (requests' own handling), an optional CA bundle and a
``tollgate/<version>`` User-Agent. Failures become :class:`~tollgate.errors.ExternalError`
(the service or the network failed) or :class:`~tollgate.errors.ConfigError` (TLS trust).
Error texts quote at most a short, single-line, redacted excerpt of what the server said and
never a request body: those carry the OIDC token.

``requests`` is imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import re
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tollgate.errors import ConfigError, ExternalError, UsageError

if TYPE_CHECKING:
    import argparse
    from types import TracebackType

    import requests
    from typing_extensions import Self
    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse
    from urllib3.util.retry import Retry

_logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Statuses worth another try of a request that is safe to repeat."""
UNPROCESSED_STATUSES = frozenset({429})
"""Statuses that prove the server did not act on the request: retried for any method."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
EXCERPT_CHARS = 300

_NOT_PRINTABLE = re.compile(r"[\x00-\x1f\x7f]")
_TIMESTAMP = re.compile(
    r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:\.(\d+))?\s*(Z|z|[+-]\d\d:?\d\d)?\Z"
)


@dataclass(frozen=True)
class HttpPolicy:
    """How hard to try a service before giving up."""

    retries: int = 4
    """Retries after the first attempt (connection errors, timeouts, retryable statuses)."""
    backoff_factor: float = 0.5
    """Seconds before the first retry; each later wait doubles, up to ``backoff_max``."""
    backoff_max: float = 8.0
    jitter: float = 0.5
    """Each wait is shortened by a random fraction up to this, so jobs do not retry in step."""
    budget: float = 60.0
    """No retry starts once this many seconds have passed since the first attempt."""
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    ca_bundle: str | None = None
    """A PEM file of CA certificates to trust instead of the default ones."""

    def __post_init__(self) -> None:
        if self.retries < 0 or self.budget <= 0 or self.read_timeout <= 0:
            raise UsageError("retries must be >= 0, and timeouts and the time budget > 0")
        # Checked here, so a bad path fails before a token is requested.
        if self.ca_bundle is not None and not os.path.isfile(self.ca_bundle):
            raise UsageError(
                f"the CA bundle {self.ca_bundle} does not exist or is not a file",
                hint="give the path of a PEM file holding the CA certificates to trust",
            )


DEFAULT_POLICY = HttpPolicy()


class HttpClient:
    """One session to the services of one exchange. Use as a context manager."""

    def __init__(self, policy: HttpPolicy = DEFAULT_POLICY) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        from tollgate import __version__

        self.policy = policy
        self.attempts = 0
        """Attempts the last request took (1 when it needed no retry)."""
        self._session = requests.Session()
        # A session-wide no-op auth keeps requests from sending ~/.netrc credentials (it
        # looks there only when no auth is set) to the services we call.
        self._session.auth = _keep_headers
        self._session.headers["User-Agent"] = f"tollgate/{__version__}"
        self._adapter = HTTPAdapter()
        self._session.mount("https://", self._adapter)
        self._session.mount("http://", self._adapter)

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        service: str,
        idempotent: bool,
        headers: Mapping[str, str] | None = None,
        json_body: object = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        retry_statuses: frozenset[int] = RETRY_STATUSES,
        unprocessed_statuses: frozenset[int] = UNPROCESSED_STATUSES,
    ) -> requests.Response:
        """Send one request, retrying what is safe to retry; return the final response.

        Every status comes back (callers know what their service's errors mean); network
        failures raise :class:`ExternalError`, TLS trust failures :class:`ConfigError`.
        ``idempotent`` requests are retried on ``retry_statuses`` and on read errors; others
        only when the connection was never made or the status is in ``unprocessed_statuses``.
        """
        import requests

        started = time.monotonic()
        counter = _Counter()
        self._adapter.max_retries = _retry(
            self.policy,
            started,
            counter,
            # An empty allow-list would mean "every method" to urllib3.
            methods=frozenset({method.upper()}) if idempotent else frozenset({"NONE"}),
            statuses=retry_statuses | unprocessed_statuses,
            unprocessed=unprocessed_statuses,
        )
        host = urlsplit(url).hostname or "?"
        try:
            response = self._session.request(
                method,
                url,
                headers=dict(headers or {}),
                json=json_body,
                data=form,
                params=params,
                timeout=(self.policy.connect_timeout, self.policy.read_timeout),
                verify=self.policy.ca_bundle or True,
                # A redirect could carry a body with a token to another place; none of the
                # APIs we call redirects.
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as error:
            self.attempts = counter.attempts
            raise ConfigError(
                f"could not establish a trusted TLS connection to {service} ({host}): "
                f"{describe_exception(error)}",
                hint=(
                    "If a TLS-inspecting proxy or a private CA signs this server's certificate, "
                    "give its CA certificates with --ca-bundle (or REQUESTS_CA_BUNDLE)."
                ),
            ) from None
        except requests.RequestException as error:
            self.attempts = counter.attempts
            elapsed = time.monotonic() - started
            raise ExternalError(
                f"could not reach {service} ({host}) after {_attempts(counter.attempts)} in "
                f"{elapsed:.1f} s: {describe_exception(error)}",
                hint=(
                    "The network or the service failed. Re-run the job; if it keeps failing, "
                    "check the URL, the service's status page and, on a self-hosted runner, "
                    "HTTPS_PROXY / NO_PROXY and the firewall."
                ),
            ) from None
        self.attempts = counter.attempts
        _logger.debug(
            "%s %s%s -> HTTP %d (%s, %.2f s)",
            method.upper(),
            host,
            urlsplit(url).path,
            response.status_code,
            _attempts(counter.attempts),
            time.monotonic() - started,
        )
        return response

    def describe_attempts(self) -> str:
        """``after 3 attempts`` when the last request was retried, else ``""``."""
        return f" after {_attempts(self.attempts)}" if self.attempts > 1 else ""


def _keep_headers(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


class _Counter:
    """Attempts of one request; shared by every copy urllib3 makes of the Retry."""

    def __init__(self) -> None:
        self.attempts = 1


def _retry(
    policy: HttpPolicy,
    started: float,
    counter: _Counter,
    *,
    methods: frozenset[str],
    statuses: frozenset[int],
    unprocessed: frozenset[int],
) -> Retry:
    """A urllib3 ``Retry`` with jittered exponential backoff that stops at the time budget."""
    from urllib3.exceptions import MaxRetryError, ResponseError
    from urllib3.util.retry import Retry

    deadline = started + policy.budget

    class _BudgetRetry(Retry):
        # urllib3 copies the object for every attempt (type(self)(**params)); the deadline
        # and the counter live in this closure, so every copy shares them.

        def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
            if status_code in unprocessed:
                return True
            return bool(super().is_retry(method, status_code, has_retry_after))

        def is_exhausted(self) -> bool:
            return bool(super().is_exhausted()) or time.monotonic() >= deadline

        def increment(
            self,
            method: str | None = None,
            url: str | None = None,
            response: BaseHTTPResponse | None = None,
            error: Exception | None = None,
            _pool: ConnectionPool | None = None,
            _stacktrace: TracebackType | None = None,
        ) -> Self:
            new = super().increment(method, url, response, error, _pool, _stacktrace)
            if response is not None and _pool is not None and self.respect_retry_after_header:
                wait = self.get_retry_after(response)
                if wait is not None and time.monotonic() + wait >= deadline:
                    # Waiting as asked would outlast the budget: give up now, not later.
                    raise MaxRetryError(
                        _pool, url or "", ResponseError(f"Retry-After {wait:.0f} s is too long")
                    )
            counter.attempts += 1
            return new

        def get_backoff_time(self) -> float:
            failures = len(self.history)
            if failures == 0:
                return 0.0
            delay = min(policy.backoff_max, policy.backoff_factor * 2 ** (failures - 1))
            return float(delay * (1.0 - policy.jitter * random.random()))

        def sleep(self, response: BaseHTTPResponse | None = None) -> None:
            delay = None
            if response is not None and self.respect_retry_after_header:
                delay = self.get_retry_after(response)
            if delay is None:
                delay = self.get_backoff_time()
            time.sleep(max(0.0, min(delay, deadline - time.monotonic())))

    return _BudgetRetry(
        total=policy.retries,
        connect=policy.retries,
        read=policy.retries,
        status=policy.retries,
        other=0,
        redirect=0,
        allowed_methods=methods,
        status_forcelist=statuses,
        raise_on_status=False,
        raise_on_redirect=False,
        respect_retry_after_header=True,
    )


# Turning what a server or the network said into safe text.


def clean_text(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line, cut to ``limit``, secrets redacted, unable to form a command."""
    from tollgate.ci._commands import neutralize
    from tollgate.masking.secrets import process_secrets

    one_line = " ".join(_NOT_PRINTABLE.sub(" ", text).split())
    if len(one_line) > limit:
        one_line = one_line[:limit] + "..."
    # Neutralized on every platform: the text may end up in a GitHub log later.
    return neutralize(process_secrets().redact_text(one_line))


def excerpt(response: requests.Response) -> str:
    """The start of an error body, made safe; says so when the body was empty."""
    text = response.content[: EXCERPT_CHARS * 4].decode("utf-8", "replace")
    if not text.strip():
        return "the response body was empty"
    return "the response began: " + clean_text(text)


def describe_exception(error: BaseException) -> str:
    """A one-line reason for a failed request, redacted (urllib3 wraps the last failure)."""
    reason: object = error
    inner = error.args[0] if error.args else None
    last = getattr(inner, "reason", None)
    if isinstance(last, BaseException):
        reason = last
    return clean_text(f"{type(reason).__name__}: {reason}")


def error_json(response: requests.Response) -> Any:
    """The body of an error response as JSON, or ``None`` when it is not JSON."""
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def json_object(response: requests.Response, service: str) -> dict[str, Any]:
    """A successful response's JSON object body.

    A success body holds credentials, so errors describe its shape and never its content.
    """
    content_type = response.headers.get("Content-Type", "no content type")
    try:
        body = json.loads(response.content)
    except ValueError:
        raise ExternalError(
            f"{service} answered HTTP {response.status_code} with a body that is not JSON "
            f"({len(response.content)} bytes, {clean_text(content_type, 80)})",
            hint="this is a fault of the service or of a proxy in between; re-run the job",
        ) from None
    if not isinstance(body, dict):
        raise ExternalError(
            f"{service} answered HTTP {response.status_code} with a JSON "
            f"{type(body).__name__}, not an object",
            hint="this is a fault of the service or of a proxy in between; re-run the job",
        )
    return body


def missing_field(service: str, field: str, body: Mapping[str, Any]) -> ExternalError:
    """The error for a success body without a field we need (naming only its keys)."""
    names = ", ".join(clean_text(str(key), 40) for key in sorted(body)[:10]) or "none"
    return ExternalError(
        f"{service}'s answer has no usable {field!r} field (fields: {names})",
        hint="this is a fault of the service or of a proxy in between; re-run the job",
    )


def status_error(
    response: requests.Response, service: str, attempts: str, hint: str | None = None
) -> ConfigError | ExternalError:
    """The generic error for an unexpected status: 5xx and 429 are the service's fault."""
    status = response.status_code
    if status in RETRY_STATUSES or status >= 500:
        return ExternalError(
            f"{service} failed with HTTP {status}{attempts}; {excerpt(response)}",
            hint=hint or "the service is failing or rate-limiting this job; re-run it later",
        )
    if 300 <= status < 400:
        where = clean_text(response.headers.get("Location", "nowhere"), 120)
        return ConfigError(
            f"{service} answered with a redirect (HTTP {status} to {where}); tollgate does "
            "not follow redirects",
            hint="give the service's final URL",
        )
    return ConfigError(
        f"{service} refused the request: HTTP {status}; {excerpt(response)}", hint=hint
    )


def remember(value: str, label: str) -> None:
    """Add a secret to the process's secrets as soon as it arrives, before any log line."""
    from tollgate.ci.local import remember_secret

    remember_secret(value, label=label)


# Endpoints, files and times.


def check_endpoint(url: str, option: str) -> str:
    """``url`` without a trailing slash; only https, or http to this machine (tests)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise UsageError(f"{option}: {url!r} is not a URL", hint="give an https:// URL")
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
        return url.rstrip("/")
    raise UsageError(
        f"{option}: {url!r} is not an https URL; tollgate sends tokens only over TLS",
        hint="use https:// (plain http is accepted for 127.0.0.1 and localhost only)",
    )


def job_temp_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where credential files go: ``explicit``, else ``$RUNNER_TEMP``, else a new 0700 dir.

    Never the workspace by default: files there get uploaded as artifacts, copied into
    Docker build contexts and globbed by later steps (google-github-actions/auth#298).
    """
    if explicit is not None:
        # Absolute: later steps may run in another working directory.
        directory = Path(explicit).absolute()
        _warn_if_in_workspace(directory)
    elif os.environ.get("RUNNER_TEMP"):
        directory = Path(os.environ["RUNNER_TEMP"])
    else:
        return Path(tempfile.mkdtemp(prefix="tollgate-creds-"))
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"cannot create the directory {directory} for credential files: {error.strerror}",
            hint="choose a writable directory",
        ) from None
    return directory


def _warn_if_in_workspace(directory: Path) -> None:
    for variable in ("GITHUB_WORKSPACE", "CI_PROJECT_DIR"):
        workspace = os.environ.get(variable)
        if not workspace:
            continue
        try:
            directory.resolve().relative_to(Path(workspace).resolve())
        except ValueError:
            continue
        _logger.warning(
            "credential files go to %s, inside the workspace ($%s): later steps may upload, "
            "copy or commit them; a directory outside it ($RUNNER_TEMP) is safer",
            directory,
            variable,
        )


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read (0600), atomically."""
    from tollgate._files import atomic_write

    try:
        atomic_write(path, data, mode=0o600)
    except OSError as error:
        raise ConfigError(
            f"cannot write {path}: {error.strerror}",
            hint="choose a writable directory for credential files",
        ) from None


def parse_timestamp(text: str) -> datetime | None:
    """An RFC 3339 time (fractional seconds of any length, ``Z`` or an offset), or None."""
    match = _TIMESTAMP.match(text.strip())
    if not match:
        return None
    date, clock, fraction, zone = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    offset = timezone.utc
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        parsed = datetime.fromisoformat(f"{date}T{clock}.{micro}")
    except ValueError:
        return None
    return parsed.replace(tzinfo=offset).astimezone(timezone.utc)


def expires_in(value: object, now: datetime | None = None) -> datetime | None:
    """The expiry for an ``expires_in`` of seconds (a number or a numeric string)."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return (now or datetime.now(timezone.utc)) + timedelta(seconds=seconds)


def format_time(moment: datetime) -> str:
    """``2024-01-01T01:00:00Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def env_name(text: str) -> str:
    """``text`` as an environment variable name: upper case, ``_`` for anything else."""
    name = re.sub(r"[^A-Z0-9_]", "_", text.upper())
    return f"_{name}" if not name or name[0].isdigit() else name


# The claims of the token we sent, for error messages (claims are not secret; the token is).


def token_expiry(token: str) -> str:
    """``2024-01-01T00:05:00Z`` from the token's ``exp``, or ``its exp`` when it has none."""
    exp = token_claims(token).get("exp")
    if isinstance(exp, (int, float)):
        return format_time(datetime.fromtimestamp(exp, timezone.utc))
    return "its exp"


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified; ``{}`` when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def describe_claims(
    claims: Mapping[str, Any], present: Iterable[str] = (), required: Iterable[str] = ()
) -> str:
    """Lines ``  name: value``: iss, sub, aud and ``required`` always, ``present`` if set."""
    lines: list[str] = []
    seen: set[str] = set()
    wanted = [(name, True) for name in ("iss", "sub", "aud", *required)]
    wanted += [(name, False) for name in present]
    for name, always in wanted:
        if name in seen or (name not in claims and not always):
            continue
        seen.add(name)
        if name not in claims:
            lines.append(f"  {name}: (not in the token)")
            continue
        value = claims[name]
        shown = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"  {name}: {clean_text(str(shown), 200)}")
    expiry = claims.get("exp")
    if isinstance(expiry, (int, float)):
        left = expiry - time.time()
        state = f"expired {-left:.0f} s ago" if left < 0 else f"expires in {left:.0f} s"
        moment = format_time(datetime.fromtimestamp(expiry, timezone.utc))
        lines.append(f"  exp: {moment} ({state})")
    return "\n".join(lines)


def policy_from_args(args: argparse.Namespace) -> HttpPolicy:
    """The :class:`HttpPolicy` for ``--ca-bundle``, ``--timeout`` and ``--max-attempts``
    (``tollgate._cli._creds_gcp.add_network_arguments``)."""
    if args.max_attempts < 1 or args.timeout <= 0:
        raise UsageError("--max-attempts must be at least 1 and --timeout more than 0")
    # A hung attempt must leave time for the next ones.
    per_attempt = min(DEFAULT_POLICY.read_timeout, args.timeout / 3)
    return HttpPolicy(
        retries=args.max_attempts - 1,
        budget=args.timeout,
        read_timeout=per_attempt,
        connect_timeout=min(DEFAULT_POLICY.connect_timeout, per_attempt),
        ca_bundle=args.ca_bundle,
    )
