"""A developer's terminal (or any CI system tollgate does not know).

Nothing here masks a log, collects outputs or renders a summary, so outputs and exports go
to stdout as text a shell can ``eval``, the summary goes to a Markdown file, and masks live
only in this process (:func:`tollgate.masking.secrets.process_secrets`). GitLab CI shares
most of this: :class:`tollgate.ci.gitlab.GitLabPlatform` builds on :class:`LocalPlatform`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, ClassVar, TextIO

from tollgate.ci import (
    PlatformOptions,
    is_jwt,
    refuse_secret_output,
    reject_nul,
    validate_env_name,
    validate_output_name,
)
from tollgate.ci.interface import Annotation, Platform
from tollgate.errors import ConfigError

_logger = logging.getLogger(__name__)

DEFAULT_TOKEN_ENV = "TOLLGATE_ID_TOKEN"
DEFAULT_SUMMARY_PATH = "tollgate-summary.md"


class LocalPlatform(Platform):
    """Plain text on stdout and stderr, files in the current directory."""

    name: ClassVar[str] = "local"

    def __init__(
        self,
        options: PlatformOptions | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.options = options or PlatformOptions()
        self._environ = environ

    @property
    def environ(self) -> Mapping[str, str]:
        """The environment this platform reads (``os.environ`` unless one was given)."""
        return os.environ if self._environ is None else self._environ

    def id_token(self, audience: str | None = None) -> str:
        """The token from the configured file or ``$TOLLGATE_ID_TOKEN`` (audience unused)."""
        if self.options.token_file is not None:
            return self._token_from_file(Path(self.options.token_file))
        variable = self.options.token_env or DEFAULT_TOKEN_ENV
        value = self.environ.get(variable)
        if value is None:
            raise ConfigError(
                f"no OIDC token: {variable} is not set and no token file was given",
                hint=(
                    "Outside CI there is no OIDC issuer to ask; hand tollgate a token you got "
                    "elsewhere, either:\n"
                    f'  export {variable}="$(cat token.jwt)"\n'
                    "or give the path of a file holding the token (the token file option)."
                ),
            )
        return self._checked_token(value, f"${variable}")

    def add_mask(self, value: str) -> None:
        """Remember ``value`` so tollgate's own output redacts it (nothing masks the log)."""
        remember_secret(value, label="a masked value")

    def set_output(self, name: str, value: str) -> None:
        """Print ``name=value`` on stdout."""
        validate_output_name(name)
        reject_nul(name, value)
        refuse_secret_output(name, value)
        write_stdout(f"{name}={value}\n")

    def export_env(self, name: str, value: str, *, secret: bool) -> None:
        """Print ``export NAME='value'`` on stdout, for ``eval "$(tollgate ...)"``."""
        validate_env_name(name)
        reject_nul(name, value)
        if secret:
            self.add_mask(value)
        write_stdout(f"export {name}={shell_quote(value)}\n")

    def summary(self, markdown: str) -> None:
        """Append ``markdown`` (secrets redacted) to the summary file."""
        path = Path(self.options.summary_path or DEFAULT_SUMMARY_PATH)
        append_markdown(path, markdown)
        _logger.info("summary written to %s", path)

    def annotate(self, annotation: Annotation) -> None:
        """Print ``path:line:col: level: message`` on stderr."""
        write_stderr(format_plain_annotation(annotation) + "\n")

    # Helpers for subclasses.

    def _token_from_file(self, path: Path) -> str:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(
                f"the token file {path} does not exist",
                hint="check the path, and that an earlier step wrote the token there",
            ) from None
        except OSError as error:
            raise ConfigError(
                f"cannot read the token file {path}: {error.strerror}",
                hint="check the file's permissions",
            ) from None
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            remember_secret(raw.decode("utf-8", "surrogateescape"), label=str(path))
            raise ConfigError(
                f"the token file {path} is not UTF-8 text, so it cannot hold a JWT",
                hint="write the token itself (three base64url parts joined by dots) to it",
            ) from None
        return self._checked_token(value, f"the token file {path}")

    def _checked_token(self, value: str, source: str, hint: str | None = None) -> str:
        """Mask ``value``, then make sure it is a JWT; ``source`` names it in errors."""
        hint = hint or "put the token itself there, not a JSON document or a file name"
        token = value.strip()
        if not token:
            raise ConfigError(
                f"{source} is empty: it should hold an OIDC token (a JWT)",
                hint=hint,
            )
        # Mask before checking: whatever it is, it was meant to be a credential.
        self.add_mask(token)
        if not is_jwt(token):
            raise ConfigError(
                f"{source} does not hold a JWT (three base64url parts joined by dots)",
                hint=hint,
            )
        return token


def shell_quote(value: str) -> str:
    """``value`` as one single-quoted POSIX shell word (``'`` becomes ``'\\''``)."""
    return "'" + value.replace("'", "'\\''") + "'"


def format_plain_annotation(annotation: Annotation) -> str:
    """One line: ``path:line:col: level: title: message``, leaving out what is missing."""
    from tollgate.masking.secrets import process_secrets

    where = ""
    if annotation.file:
        where = annotation.file
        if annotation.line is not None:
            where += f":{annotation.line}"
            if annotation.column is not None:
                where += f":{annotation.column}"
        where += ": "
    text = f"{annotation.title}: {annotation.message}" if annotation.title else annotation.message
    line = f"{where}{annotation.level.value}: {' '.join(text.splitlines())}"
    return process_secrets().redact_text(line)


def append_markdown(path: Path, markdown: str) -> None:
    """Append ``markdown`` (secrets redacted) to ``path``, replacing the file atomically."""
    from tollgate._files import atomic_write
    from tollgate.masking.secrets import process_secrets

    text = process_secrets().redact_text(markdown)
    if not text.endswith("\n"):
        text += "\n"
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        old = b""
    except OSError as error:
        raise ConfigError(f"cannot read the summary file {path}: {error.strerror}") from None
    if old and not old.endswith(b"\n"):
        old += b"\n"
    try:
        atomic_write(path, old + text.encode("utf-8", "surrogateescape"), mode=0o644)
    except OSError as error:
        raise ConfigError(
            f"cannot write the summary file {path}: {error.strerror}",
            hint="choose a writable summary path",
        ) from None


def write_stdout(text: str) -> None:
    """Write data to stdout, byte for byte (undecodable environment bytes survive)."""
    write_bytes(sys.stdout, text.encode("utf-8", "surrogateescape"))


def write_stderr(text: str) -> None:
    """Write a diagnostic line to stderr, flushed."""
    write_bytes(sys.stderr, text.encode("utf-8", "surrogateescape"))


def write_bytes(stream: TextIO, data: bytes) -> None:
    """Write ``data`` to the binary layer of ``stream`` (decoded when it has none), flushed."""
    # Flush the text layer first so earlier text writes keep their order.
    stream.flush()
    buffer: BinaryIO | None = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(data.decode("utf-8", "replace"))
        stream.flush()
        return
    buffer.write(data)
    buffer.flush()


def remember_secret(value: str, *, label: str) -> None:
    """Add ``value`` to the process's secrets; blank values are ignored (they would mask
    every run of spaces)."""
    from tollgate.masking.secrets import process_secrets

    if not value.strip():
        _logger.debug("not masking an empty or blank value")
        return
    process_secrets().add(value, label=label)
