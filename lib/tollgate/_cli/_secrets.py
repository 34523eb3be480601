"""Secret sources shared by ``mask``, ``redact`` and ``run``: values, variables, files."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

from tollgate.errors import UsageError


def add_source_arguments(parser: argparse.ArgumentParser, *, values: bool) -> None:
    """Add ``--secret-env``, ``--secret-file`` (and ``--secret`` when ``values``)."""
    group = parser.add_argument_group("secrets to mask")
    if values:
        group.add_argument(
            "--secret",
            action="append",
            default=[],
            metavar="VALUE",
            help="a secret value (prefer --secret-env: arguments are visible to other processes)",
        )
    group.add_argument(
        "--secret-env",
        action="append",
        default=[],
        metavar="NAME",
        help=(
            "an environment variable whose value is secret (repeatable); a glob such as "
            "'*_TOKEN' names every variable it matches"
        ),
    )
    group.add_argument(
        "--secret-file",
        action="append",
        default=[],
        metavar="PATH",
        help="a file whose whole content is secret; each of its lines is masked too",
    )
    group.add_argument(
        "--min-length",
        type=_positive_int,
        default=None,
        metavar="N",
        help="do not mask forms of a secret shorter than N bytes (default 4)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def from_env(name: str) -> str:
    """The value of ``name``; a clear error when it is not set."""
    value = os.environ.get(name)
    if value is None:
        raise UsageError(
            f"environment variable {name} is not set",
            hint=f"export {name} in this step, or drop the option that names it",
        )
    return value


def env_names(pattern: str) -> list[str]:
    """The variables ``pattern`` names: itself, or every match of a glob (none is an error)."""
    if not any(c in pattern for c in "*?["):
        return [pattern]
    import fnmatch
    import re

    matches = re.compile(fnmatch.translate(pattern)).match  # compiled once, case-sensitive
    names = sorted(name for name in os.environ if matches(name))
    if not names:
        raise UsageError(
            f"no environment variable matches {pattern!r}",
            hint="check the pattern (it is case-sensitive), or export the variables first",
        )
    return names


def from_file(path: str) -> bytes:
    """A secret file's bytes; a clear error when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise UsageError(f"cannot read secret file {path}: {error.strerror}") from None


def iter_sources(args: argparse.Namespace) -> Iterator[tuple[str, str | bytes]]:
    """``(label, value)`` for every secret the options name; labels never hold values."""
    for index, value in enumerate(getattr(args, "secret", []), start=1):
        yield f"--secret #{index}", value
    for pattern in args.secret_env:
        for name in env_names(pattern):
            yield f"${name}", from_env(name)
    for path in args.secret_file:
        yield f"secret file {path}", from_file(path)


def load_secrets(args: argparse.Namespace) -> int:
    """Register every named secret in the process's set; return how many were non-empty."""
    import logging

    from tollgate.masking.secrets import process_secrets

    secrets = process_secrets()
    if args.min_length is not None:
        secrets.min_length = args.min_length
    count = 0
    for label, value in iter_sources(args):
        if not value:
            logging.getLogger(__name__).warning("%s is empty: nothing to mask", label)
            continue
        secrets.add(value, label=label)
        count += 1
    return count


def replacement_for(args: argparse.Namespace) -> bytes:
    """``--replacement``, else ``[MASKED]`` on GitLab (as gitlab-runner) and ``***`` elsewhere."""
    if args.replacement is not None:
        return str(args.replacement).encode()
    return b"[MASKED]" if args.platform == "gitlab" else b"***"
