"""GitHub Actions: the OIDC token endpoint, workflow commands and the runner's files.

Workflow commands go to stderr: the runner parses both of a step's streams
(``actions/runner`` ``ScriptHandler.cs`` has an output manager for each), and stdout is
tollgate's data channel, often captured by ``eval "$(tollgate ...)"``. Outputs, environment
and summaries are records appended to the files the runner names in ``GITHUB_OUTPUT``,
``GITHUB_ENV`` and ``GITHUB_STEP_SUMMARY`` and reads after the step.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import quote

from tollgate._http import (
    RETRY_STATUSES,
    HttpClient,
    HttpPolicy,
    NetworkFailure,
    excerpt,
    field_names,
    is_secure_endpoint,
    json_object,
)
from tollgate.ci import (
    PlatformOptions,
    is_jwt,
    refuse_secret_output,
    reject_nul,
    validate_env_name,
    validate_output_name,
)
from tollgate.ci._commands import escape_data_bytes, format_command, neutralize
from tollgate.ci.interface import Annotation, Platform
from tollgate.ci.local import remember_secret, write_bytes, write_stderr
from tollgate.errors import ConfigError, ExternalError, UsageError

if TYPE_CHECKING:
    import requests

_logger = logging.getLogger(__name__)

SUMMARY_LIMIT = 1024 * 1024
"""The runner refuses a step summary larger than this many bytes (1 MiB)."""

_TRUNCATION_NOTE = (
    "\n\n> **Note:** tollgate cut this summary short: GitHub shows at most 1 MiB of summary "
    "per step.\n"
)
_DELIMITER_PREFIX = "ghadelimiter_"
_SERVICE = "the GitHub OIDC endpoint"
_URL_VARIABLE = "ACTIONS_ID_TOKEN_REQUEST_URL"
_TOKEN_VARIABLE = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
_FAULT_HINT = "this is a fault of the token service or of a proxy in between; re-run the job"
_PERMISSION_HINT = """\
Grant the job the permission to request an OIDC token:

  permissions:
    id-token: write
    contents: read

Pull requests from forks never get an OIDC token (their id-token permission is at most
read), whatever the workflow asks for: skip this step for forks, or run it on push."""


DEFAULT_RETRY = HttpPolicy(retries=5, read_timeout=15.0)
"""How hard to try the token endpoint: five retries, 15 s per attempt, 60 s in all."""


class GitHubPlatform(Platform):
    """GitHub Actions, detected by ``GITHUB_ACTIONS=true``."""

    name: ClassVar[str] = "github"

    def __init__(
        self,
        options: PlatformOptions | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        retry: HttpPolicy = DEFAULT_RETRY,
    ) -> None:
        self.options = options or PlatformOptions()
        self.retry = retry
        self._environ = environ

    @property
    def environ(self) -> Mapping[str, str]:
        """The environment this platform reads (``os.environ`` unless one was given)."""
        return os.environ if self._environ is None else self._environ

    # OIDC

    def id_token(self, audience: str | None = None) -> str:
        """Ask the job's OIDC token endpoint for a token for ``audience``."""
        url = self.environ.get(_URL_VARIABLE, "")
        bearer = self.environ.get(_TOKEN_VARIABLE, "")
        missing = [
            name for name, value in ((_URL_VARIABLE, url), (_TOKEN_VARIABLE, bearer)) if not value
        ]
        if missing:
            raise ConfigError(
                f"this job cannot request a GitHub OIDC token: {' and '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not set",
                hint=_PERMISSION_HINT,
            )
        # The runner masks the request token already; this keeps it out of our own texts.
        remember_secret(bearer, label=_TOKEN_VARIABLE)
        _check_endpoint(url)
        request_url = _with_audience(url, audience)
        _logger.debug("requesting a GitHub OIDC token (audience %s)", audience or "default")
        started = time.monotonic()
        with HttpClient(self.retry) as client:
            response = client.request(
                "GET",
                request_url,
                service=_SERVICE,
                idempotent=True,
                headers={"Accept": "application/json", "Authorization": f"Bearer {bearer}"},
                hide=(bearer,),
                on_failure=_network_error,
            )
        elapsed = time.monotonic() - started
        if not 200 <= response.status_code < 300:
            raise _status_error(response, bearer, elapsed)
        token = _token_from_body(response)
        self.add_mask(token)
        _logger.debug("got a GitHub OIDC token")
        return token

    # Masks

    def add_mask(self, value: str) -> None:
        """Register ``value`` here and emit ``::add-mask::`` for every encoded form of it."""
        from tollgate.masking.secrets import process_secrets
        from tollgate.masking.variants import secret_variants

        if not value.strip():
            _logger.debug("not masking an empty or blank value")
            return
        secrets = process_secrets()
        secrets.add(value, label="a masked value")
        patterns = secret_variants(value, secrets.min_length).patterns
        # Patterns are bytes (an encoded form need not be UTF-8), so are the commands.
        lines = b"".join(
            b"::add-mask::" + escape_data_bytes(pattern) + b"\n"
            for pattern in sorted(patterns)
            if pattern.strip()
        )
        if lines:
            write_bytes(sys.stderr, lines)

    # Outputs, environment, summary

    def set_output(self, name: str, value: str) -> None:
        """Append ``name`` to ``$GITHUB_OUTPUT`` (heredoc with a random delimiter)."""
        validate_output_name(name)
        reject_nul(name, value)
        refuse_secret_output(name, value)
        self._append_heredoc("GITHUB_OUTPUT", "step outputs", name, value)

    def export_env(self, name: str, value: str, *, secret: bool) -> None:
        """Append ``name`` to ``$GITHUB_ENV`` for later steps (masked first when secret)."""
        validate_env_name(name)
        reject_nul(name, value)
        if name.upper() == "NODE_OPTIONS":
            raise UsageError(
                "the runner refuses NODE_OPTIONS from $GITHUB_ENV",
                hint="set it in the workflow's env: instead",
            )
        if secret:
            self.add_mask(value)
        self._append_heredoc("GITHUB_ENV", "environment variables", name, value)

    def summary(self, markdown: str) -> None:
        """Append ``markdown`` (secrets redacted) to ``$GITHUB_STEP_SUMMARY``, within 1 MiB."""
        from tollgate.masking.secrets import process_secrets

        path = self._runner_file("GITHUB_STEP_SUMMARY", "a step summary")
        text = process_secrets().redact_text(markdown)
        if not text.endswith("\n"):
            text += "\n"
        data = text.encode("utf-8", "surrogateescape")
        try:
            used = os.stat(path).st_size
        except FileNotFoundError:
            used = 0
        except OSError as error:
            raise _file_error("GITHUB_STEP_SUMMARY", path, error) from None
        room = SUMMARY_LIMIT - used
        if len(data) > room:
            note = _TRUNCATION_NOTE.encode()
            keep = room - len(note)
            if keep <= 0:
                _logger.warning(
                    "the step summary is already at GitHub's 1 MiB limit; %d bytes of "
                    "summary were not written",
                    len(data),
                )
                return
            _logger.warning(
                "the step summary would exceed GitHub's 1 MiB limit; cut %d of %d bytes",
                len(data) - keep,
                len(data),
            )
            data = _cut_utf8(data, keep) + note
        self._append("GITHUB_STEP_SUMMARY", path, data)

    # Annotations

    def annotate(self, annotation: Annotation) -> None:
        """Emit ``::error file=...,line=...::message`` (or warning/notice) on stderr."""
        from tollgate.masking.secrets import process_secrets

        redact = process_secrets().redact_text
        properties: dict[str, str | int | None] = {
            "file": redact(annotation.file) if annotation.file else None,
            "line": annotation.line,
            "col": annotation.column,
            "endLine": annotation.end_line,
            "endColumn": annotation.end_column,
            "title": redact(annotation.title) if annotation.title else None,
        }
        command = format_command(annotation.level.value, properties, redact(annotation.message))
        write_stderr(command + "\n")

    def neutralize(self, text: str) -> str:
        """Make ``text`` unable to start a workflow command."""
        return neutralize(text)

    # Runner files

    def _runner_file(self, variable: str, what: str) -> str:
        path = self.environ.get(variable, "")
        if not path:
            raise ConfigError(
                f"{variable} is not set, so tollgate cannot write {what}",
                hint=(
                    "The runner sets it in every step (runner 2.297.0 or later). Outside "
                    "GitHub Actions, choose another platform (local)."
                ),
            )
        return path

    def _append_heredoc(self, variable: str, what: str, name: str, value: str) -> None:
        path = self._runner_file(variable, what)
        # A random delimiter: a fixed one could be ended early by the value itself.
        delimiter = f"{_DELIMITER_PREFIX}{uuid.uuid4().hex}"
        if delimiter in value:
            raise UsageError(f"the value for {name!r} contains the random heredoc delimiter")
        try:
            data = f"{name}<<{delimiter}\n{value}\n{delimiter}\n".encode()
        except UnicodeEncodeError:
            raise UsageError(
                f"the value for {name!r} is not valid UTF-8, which the runner requires"
            ) from None
        self._append(variable, path, data)

    def _append(self, variable: str, path: str, data: bytes) -> None:
        from tollgate._files import append_record

        try:
            append_record(path, data)
        except OSError as error:
            raise _file_error(variable, path, error) from None


def _file_error(variable: str, path: str, error: OSError) -> ConfigError:
    return ConfigError(
        f"cannot write ${variable} ({path}): {error.strerror}",
        hint=f"{variable} should name a writable file the runner created for this step",
    )


def _check_endpoint(url: str) -> None:
    """Refuse to send the request token anywhere but over TLS (or to this machine)."""
    if is_secure_endpoint(url):
        return
    raise ConfigError(
        f"{_URL_VARIABLE} is not an https URL; tollgate will not send the request token over it",
        hint=f"do not set {_URL_VARIABLE} yourself: the runner sets it",
    )


def _with_audience(url: str, audience: str | None) -> str:
    """The runner's URL already has ``?api-version=...``; add ``audience`` to its query."""
    if not audience:
        return url
    separator = "" if url.endswith(("?", "&")) else "&" if "?" in url else "?"
    return f"{url}{separator}audience={quote(audience, safe='')}"


def _network_error(failure: NetworkFailure) -> ExternalError:
    return ExternalError(
        f"could not get a token from {_SERVICE} ({failure.host}) after trying for "
        f"{failure.elapsed:.1f} s: {failure.reason}",
        hint=(
            "The network or GitHub's token service failed. Re-run the job; if it keeps "
            "failing, check https://www.githubstatus.com and, on a self-hosted runner, its "
            "proxy and firewall settings."
        ),
    )


def _status_error(
    response: requests.Response, bearer: str, elapsed: float
) -> ConfigError | ExternalError:
    status = response.status_code
    said = excerpt(response, hide=(bearer,))
    if status in (401, 403):
        return ConfigError(
            f"{_SERVICE} refused the request token: HTTP {status}; {said}",
            hint=(
                f"{_TOKEN_VARIABLE} is issued by the runner for this job only and expires "
                "with it: do not set it yourself or carry it to another job. Re-run the job; "
                "if it keeps failing, check that the job has `permissions: id-token: write`."
            ),
        )
    if status in RETRY_STATUSES or status >= 500:
        return ExternalError(
            f"{_SERVICE} failed with HTTP {status} (gave up after {elapsed:.1f} s of "
            f"retries); {said}",
            hint=(
                "GitHub's token service is failing or rate-limiting this job. Re-run the job "
                "later; see https://www.githubstatus.com."
            ),
        )
    return ExternalError(
        f"{_SERVICE} answered HTTP {status}; {said}",
        hint=f"check that {_URL_VARIABLE} is the runner's own value, not one set by the workflow",
    )


def _token_from_body(response: requests.Response) -> str:
    """The JWT in a 2xx body ``{"value": ...}``. A 2xx body may hold the token, so errors
    describe its shape, never its content."""
    body = json_object(response, _SERVICE)
    if "value" not in body:
        raise ExternalError(
            f"{_SERVICE}'s answer has no 'value' field ({field_names(body)})",
            hint=_FAULT_HINT,
        )
    value = body["value"]
    if not isinstance(value, str) or not is_jwt(value.strip()):
        if isinstance(value, str):
            remember_secret(value, label="the OIDC endpoint's answer")
        raise ExternalError(
            f"the 'value' field of {_SERVICE}'s answer is not a JWT (three base64url parts "
            "joined by dots)",
            hint=_FAULT_HINT,
        )
    return value.strip()


def _cut_utf8(data: bytes, size: int) -> bytes:
    """The first ``size`` bytes of ``data`` or fewer, never splitting a UTF-8 character."""
    if size >= len(data):
        return data
    end = size
    # A byte 10xxxxxx continues a character; cutting before it would split that character.
    while end > 0 and data[end] & 0xC0 == 0x80:
        end -= 1
    return data[:end]
