"""The one error base of tollgate, and the exit codes every subcommand shares.

Every failure a user can meet is an :class:`Error` whose :meth:`Error.diagnostics` says what
went wrong and what to do about it. The CLI prints that text (never a traceback unless ``-v``)
and exits with :attr:`Error.exit_code`.
"""

from __future__ import annotations

import enum


@enum.unique
class ExitCode(enum.IntEnum):
    """Exit codes shared by all subcommands (see ``tollgate --help``)."""

    OK = 0
    """Success, gate allowed, or no findings at or above the threshold."""
    FINDINGS = 1
    """Findings at or above the threshold, or the gate denied."""
    USAGE = 2
    """A usage, input or configuration error: fix the call or the setup."""
    EXTERNAL = 3
    """An external service failed (after retries). The gate treats this as a denial."""


class Error(Exception):
    """Base of every error tollgate raises on purpose.

    ``message`` says what went wrong; ``hint`` says how to fix it. Neither may contain a secret
    value: callers pass facts (names, claims, statuses), never credentials.
    """

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """A human-readable, actionable, possibly multi-line description."""
        lines = [self.message]
        if self.hint:
            lines.append("")
            lines.extend(f"hint: {line}" if line else "" for line in self.hint.splitlines())
        cause = self.__cause__
        if cause is not None and not isinstance(cause, Error):
            lines.append("")
            lines.append(f"caused by: {type(cause).__name__}: {cause}")
        return "\n".join(lines)


class UsageError(Error):
    """The call itself is wrong: a bad argument, a missing input, malformed input data."""


class ConfigError(Error):
    """The CI job or a configuration file is set up wrongly (a missing permission, say)."""


class ExternalError(Error):
    """A service outside tollgate failed or answered in a way we cannot use, after retries."""

    exit_code = ExitCode.EXTERNAL
