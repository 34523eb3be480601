"""HTTP for every service tollgate calls: retries in a time budget, and safe error texts.

Used by the GitHub OIDC token request (:mod:`tollgate.ci.github`) and by the GCP, Azure and
Vault credential providers. :class:`HttpClient` wraps one ``requests`` session: retries
with jittered backoff inside a total time budget, a timeout on every request, no redirects,
``HTTPS_PROXY``/``NO_PROXY`` from the environment (requests' own handling), an optional CA
bundle and a ``tollgate/<version>`` User-Agent. Network failures become
:class:`~tollgate.errors.ExternalError` (or :class:`~tollgate.errors.ConfigError` for TLS
trust) unless the caller words them itself. Error texts quote at most a short, single-line,
redacted excerpt of what the server said and never a request body: those carry tokens.

``requests`` and ``urllib3`` are imported on first use: ``tollgate --version``, ``redact``
and ``run`` import this package's modules but must never load them.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tollgate.errors import ConfigError, Error, ExternalError, UsageError

if TYPE_CHECKING:
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
_FAULT_HINT = "this is a fault of the service or of a proxy in between; re-run the job"


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


@dataclass(frozen=True)
class NetworkFailure:
    """A request that got no answer: what :class:`HttpClient` knows when it gives up."""

    service: str
    host: str
    attempts: int
    elapsed: float
    """Seconds from the first attempt to giving up."""
    reason: str
    """The last failure, on one line, redacted (see :func:`describe_exception`)."""
    tls: bool
    """The TLS handshake failed: the server's certificate is not trusted."""

    def error(self) -> ConfigError | ExternalError:
        """The standard error: a TLS trust problem is the user's to fix, the rest is not."""
        if self.tls:
            return ConfigError(
                f"could not establish a trusted TLS connection to {self.service} ({self.host}): "
                f"{self.reason}",
                hint=(
                    "If a TLS-inspecting proxy or a private CA signs this server's certificate, "
                    "give its CA certificates with --ca-bundle (or REQUESTS_CA_BUNDLE)."
                ),
            )
        return ExternalError(
            f"could not reach {self.service} ({self.host}) after {_attempts(self.attempts)} in "
            f"{self.elapsed:.1f} s: {self.reason}",
            hint=(
                "The network or the service failed. Re-run the job; if it keeps failing, "
                "check the URL, the service's status page and, on a self-hosted runner, "
                "HTTPS_PROXY / NO_PROXY and the firewall."
            ),
        )


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
        hide: Iterable[str] = (),
        on_failure: Callable[[NetworkFailure], Error] = NetworkFailure.error,
    ) -> requests.Response:
        """Send one request, retrying what is safe to retry; return the final response.

        Every status comes back (callers know what their service's errors mean); when no
        answer came, ``on_failure`` turns the :class:`NetworkFailure` into the error raised.
        ``idempotent`` requests are retried on ``retry_statuses`` and on read errors; others
        only when the connection was never made or the status is in ``unprocessed_statuses``.
        ``hide``: values (the credential sent) to keep out of the failure's reason.
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
        except requests.RequestException as error:
            self.attempts = counter.attempts
            failure = NetworkFailure(
                service=service,
                host=host,
                attempts=counter.attempts,
                elapsed=time.monotonic() - started,
                reason=describe_exception(error, hide=hide),
                tls=isinstance(error, requests.exceptions.SSLError),
            )
            raise on_failure(failure) from None
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


# Endpoints.


def is_secure_endpoint(url: str) -> bool:
    """Whether ``url`` is https, or plain http to this machine (tests, local fakes)."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)


def check_endpoint(url: str, option: str) -> str:
    """``url`` without a trailing slash; only https, or http to this machine (tests)."""
    if not urlsplit(url).hostname:
        raise UsageError(f"{option}: {url!r} is not a URL", hint="give an https:// URL")
    if is_secure_endpoint(url):
        return url.rstrip("/")
    raise UsageError(
        f"{option}: {url!r} is not an https URL; tollgate sends tokens only over TLS",
        hint="use https:// (plain http is accepted for 127.0.0.1 and localhost only)",
    )


# Turning what a server or the network said into safe text.


def clean_text(text: str, limit: int = EXCERPT_CHARS, *, hide: Iterable[str] = ()) -> str:
    """``text`` on one line, cut to ``limit``, secrets redacted, unable to form a command.

    ``hide``: further values to replace with ``***``, for a credential that may be too short
    for the process's secrets to mask.
    """
    from tollgate.ci._commands import neutralize
    from tollgate.masking.secrets import process_secrets

    one_line = " ".join(_NOT_PRINTABLE.sub(" ", text).split())
    # Redacted before it is cut, so no secret survives in part at the cut.
    safe = process_secrets().redact_text(one_line)
    for value in hide:
        if value:
            safe = safe.replace(value, "***")
    if len(safe) > limit:
        safe = safe[:limit] + "..."
    # Neutralized on every platform: the text may end up in a GitHub log later.
    return neutralize(safe)


def excerpt(response: requests.Response, *, hide: Iterable[str] = ()) -> str:
    """The start of an error body, made safe; says so when the body was empty."""
    text = response.content[: EXCERPT_CHARS * 4].decode("utf-8", "replace")
    if not text.strip():
        return "the response body was empty"
    return "the response began: " + clean_text(text, hide=hide)


def describe_exception(error: BaseException, *, hide: Iterable[str] = ()) -> str:
    """A one-line reason for a failed request, redacted (urllib3 wraps the last failure)."""
    reason: object = error
    inner = error.args[0] if error.args else None
    last = getattr(inner, "reason", None)
    if isinstance(last, BaseException):
        reason = last
    return clean_text(f"{type(reason).__name__}: {reason}", hide=hide)


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
            hint=_FAULT_HINT,
        ) from None
    if not isinstance(body, dict):
        raise ExternalError(
            f"{service} answered HTTP {response.status_code} with a JSON "
            f"{type(body).__name__}, not an object",
            hint=_FAULT_HINT,
        )
    return body


def field_names(body: Mapping[str, Any]) -> str:
    """``fields: a, b`` (the first ten keys of a success body, never its values)."""
    names = ", ".join(clean_text(str(key), 40) for key in sorted(body)[:10])
    return f"fields: {names or 'none'}"


def missing_field(service: str, field: str, body: Mapping[str, Any]) -> ExternalError:
    """The error for a success body without a field we need (naming only its keys)."""
    return ExternalError(
        f"{service}'s answer has no usable {field!r} field ({field_names(body)})",
        hint=_FAULT_HINT,
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
        f"{service} refused the request: HTTP {status}; {excerpt(response)}",
        hint=hint,
    )
