"""Which files the workflow audit reads, given the paths on the command line.

A directory is walked for workflows (``*.yml``/``*.yaml`` directly in a
``.github/workflows`` folder, as GitHub reads them) and action metadata (``action.yml`` /
``action.yaml`` anywhere), skipping version-control, dependency and vendored trees. A file
named on the command line is always taken. The order is deterministic (arguments in the
order given, then names sorted), and a file reached twice is reported once.
"""

from __future__ import annotations

import enum
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tollgate.audit.findings import Diagnostic

_logger = logging.getLogger(__name__)

SKIPPED_DIRECTORIES = frozenset(
    (
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "vendor",
        "third_party",
        ".venv",
        "venv",
        "site-packages",
        ".tox",
        ".nox",
        # gitlab-ci-local copies the whole checkout here for each job it runs
        ".gitlab-ci-local",
    )
)
"""Directory names never walked into (they hold other people's code, or copies of ours)."""

ACTION_NAMES = frozenset(("action.yml", "action.yaml"))
WORKFLOW_SUFFIXES = (".yml", ".yaml")


@enum.unique
class Kind(str, enum.Enum):
    """What a discovered file is."""

    WORKFLOW = "workflow"
    ACTION = "action"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to audit."""

    path: str
    """As reported: the argument as given joined with the path below it, ``/`` separators
    (``.`` and a leading ``./`` dropped): ``.github/workflows/ci.yml``, ``repo/action.yml``."""
    fs_path: str
    """Where to open it (an OS path)."""
    kind: Kind
    relative: str
    """The path relative to the argument it was found under (``/`` separators); for a file
    argument, its name."""


def discover(paths: Iterable[str | os.PathLike[str]] = (".",)) -> Iterator[SourceFile | Diagnostic]:
    """Yield the files to audit under ``paths``; a path that does not exist is a diagnostic."""
    seen: set[tuple[int, int]] = set()
    for argument in paths:
        given = os.fspath(argument)
        if not os.path.exists(given):
            yield Diagnostic(_display(given), "no such file or directory")
            continue
        walked = os.path.isdir(given)
        if walked:
            found: Iterable[SourceFile | Diagnostic] = _walk(given)
        else:
            found = (_explicit_file(given),)
        for source in found:
            if isinstance(source, Diagnostic):
                yield source
                continue
            try:
                status = os.stat(source.fs_path)
            except OSError:
                continue  # vanished, or a dangling link
            if stat.S_ISDIR(status.st_mode) or (walked and not stat.S_ISREG(status.st_mode)):
                # A directory, or a pipe or device met while walking, named like a workflow.
                # A file named on the command line may be a pipe (`<(generate)`).
                continue
            # Device and inode: the same file reached through two arguments or a link.
            key = (status.st_dev, status.st_ino)
            if key not in seen:
                seen.add(key)
                yield source


def classify(path: str | os.PathLike[str]) -> Kind | None:
    """The kind of a file met while walking, or ``None`` when the audit does not read it."""
    name = os.path.basename(path)
    if name in ACTION_NAMES:
        return Kind.ACTION
    if not name.endswith(WORKFLOW_SUFFIXES):
        return None
    return Kind.WORKFLOW if _is_workflows_folder(os.path.dirname(os.path.abspath(path))) else None


def _explicit_file(given: str) -> SourceFile:
    # Named on the command line: always read; only action.yml/action.yaml are actions.
    name = os.path.basename(given)
    kind = Kind.ACTION if name in ACTION_NAMES else Kind.WORKFLOW
    return SourceFile(_display(given), given, kind, name)


def _walk(root: str) -> Iterator[SourceFile | Diagnostic]:
    errors: list[OSError] = []
    found: list[SourceFile] = []
    # os.walk does not follow symlinked directories, so a link loop cannot trap it.
    for directory, subdirectories, files in os.walk(root, onerror=errors.append):
        subdirectories[:] = [d for d in subdirectories if d not in SKIPPED_DIRECTORIES]
        in_workflows = _is_workflows_folder(directory)
        for name in files:
            if name in ACTION_NAMES:
                kind = Kind.ACTION
            elif in_workflows and name.endswith(WORKFLOW_SUFFIXES):
                kind = Kind.WORKFLOW
            else:
                continue
            fs_path = os.path.join(directory, name)
            relative = os.path.relpath(fs_path, root).replace(os.sep, "/")
            found.append(SourceFile(_display(fs_path), fs_path, kind, relative))
    for error in errors:
        yield _walk_error(error)
    # Sorted by path components, so that the order does not depend on the file system.
    found.sort(key=lambda source: source.relative.split("/"))
    yield from found


def _is_workflows_folder(directory: str) -> bool:
    absolute = os.path.abspath(directory)
    return (
        os.path.basename(absolute) == "workflows"
        and os.path.basename(os.path.dirname(absolute)) == ".github"
    )


def _walk_error(error: OSError) -> Diagnostic:
    where = _display(os.fspath(error.filename)) if error.filename else "?"
    return Diagnostic(where, f"cannot list directory: {error.strerror or error}")


def _display(path: str) -> str:
    shown = os.path.normpath(path).replace(os.sep, "/")
    return shown[2:] if shown.startswith("./") else shown
