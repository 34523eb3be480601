"""What the credential providers share besides HTTP: credential files, times, names.

HTTP itself (the client, its retries and safe error texts) is :mod:`tollgate._http`; the
claims of the token a service refused are :mod:`tollgate.credentials.claims`.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tollgate._http import missing_field
from tollgate.ci.local import remember_secret
from tollgate.errors import ConfigError, UsageError

_logger = logging.getLogger(__name__)

_TIMESTAMP = re.compile(
    r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:\.(\d+))?\s*(Z|z|[+-]\d\d:?\d\d)?\Z"
)


def check_distinct(names: list[str]) -> None:
    """Refuse ``--secret`` options that would write the same variable."""
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UsageError(
            f"several --secret options write {', '.join(duplicates)}",
            hint="name each one with '| NAME'",
        )


def secret_field(answer: Mapping[str, Any], field: str, service: str, *, label: str) -> str:
    """``answer[field]``, a token in a success body: masked at once, before any log line.

    Without it (or with an empty or non-text value), the error names only the body's keys.
    """
    value = answer.get(field)
    if not isinstance(value, str) or not value:
        raise missing_field(service, field, answer)
    remember_secret(value, label=label)
    return value


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
