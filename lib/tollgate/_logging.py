"""The package logger: diagnostics on stderr, redacted, and inert on GitHub.

Only the ``tollgate`` logger is configured (never the root logger, so third-party libraries
stay quiet unless ``-vv``). Every record passes through the process's secret set before it is
printed, so a secret that reaches a log message anyway is masked; on GitHub, text is
neutralized so it cannot start a workflow command, and warnings and errors become
``::warning::`` / ``::error::`` annotations.
"""

from __future__ import annotations

import logging
import os
import sys

LOGGER_NAME = "tollgate"
LOGLEVEL_ENV = "TOLLGATE_LOGLEVEL"


class _RedactingFormatter(logging.Formatter):
    def __init__(self, platform_name: str) -> None:
        super().__init__("%(message)s")
        self._github = platform_name == "github"

    def format(self, record: logging.LogRecord) -> str:
        from tollgate.masking.secrets import process_secrets

        text = process_secrets().redact_text(super().format(record))
        if not self._github:
            prefix = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
            return f"tollgate: {prefix}{text}"
        from tollgate.ci import _commands

        if record.levelno >= logging.ERROR:
            return _commands.format_command("error", {}, text)
        if record.levelno >= logging.WARNING:
            return _commands.format_command("warning", {}, text)
        return _commands.neutralize(f"tollgate: {text}")


def configure(verbosity: int, platform_name: str) -> None:
    """Set up the package logger from ``-v`` count and ``TOLLGATE_LOGLEVEL``."""
    logger = logging.getLogger(LOGGER_NAME)
    level: int | str = os.environ.get(LOGLEVEL_ENV, "INFO").upper()
    if verbosity >= 1:
        level = logging.DEBUG
    try:
        logger.setLevel(level)
    except ValueError:
        logger.setLevel(logging.INFO)
        logger.warning("ignoring %s=%r: not a log level", LOGLEVEL_ENV, level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter(platform_name))
    if verbosity >= 2:
        # -vv: third-party libraries (urllib3, botocore, ...) speak too, through the same
        # redacting handler.
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(logging.DEBUG)
        logger.handlers[:] = []
        logger.propagate = True
    else:
        logger.handlers[:] = [handler]
        logger.propagate = False
