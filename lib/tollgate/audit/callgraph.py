"""Cross-file taint: which inputs of a local action or reusable workflow callers fill with
attacker-controlled data.

Every file's local calls (``uses: ./path`` with ``with:`` values) are noted as it is
checked; :meth:`CallGraph.solve` then gives each callee its tainted inputs, following callees
that pass their own tainted inputs on (``with: {x: ${{ inputs.y }}}``) to a fixed point.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from tollgate.audit.discover import Kind, SourceFile
from tollgate.audit.github.expressions import flows
from tollgate.audit.github.model import (
    Action,
    Step,
    Workflow,
    expressions,
)
from tollgate.audit.source import YScalar

if TYPE_CHECKING:
    from tollgate.audit.checker import FileResult


@dataclass(frozen=True)
class Call:
    """A local ``uses:`` with a ``with:`` value that may carry attacker data."""

    target: str
    """The callee's key: an action's directory or a workflow's file, absolute."""
    input: str
    """The input's name, lower-case (the ``inputs`` context ignores case)."""
    direct: bool
    """The value flows an attacker-controlled context."""
    via: frozenset[str]
    """The caller's own inputs the value flows (taint passed on by a callee)."""


def local_calls(model: Workflow | Action, source: SourceFile) -> Iterator[Call]:
    """The local calls of a file whose ``with:`` values carry attacker data or inputs."""
    local = list(_local_uses(model))
    if not local:
        return
    root = _repository_root(source.fs_path, source.relative)
    for path, values in local:
        target = os.path.normpath(os.path.join(root, path))
        for name, node in values.items():
            direct, via = _value_taint(node)
            if direct or via:
                yield Call(target, name.lower(), direct, via)


def _local_uses(model: Workflow | Action) -> Iterator[tuple[str, Mapping[str, YScalar]]]:
    """``(path, with)`` of every local ``uses:`` (steps and reusable-workflow jobs)."""
    steps: Iterable[Step]
    if isinstance(model, Workflow):
        for job in model.jobs.values():
            if job.uses is not None and job.uses.is_local and job.with_:
                yield job.uses.path or ".", job.with_
        steps = (step for _, step in model.steps())
    else:
        steps = model.all_steps()
    for step in steps:
        if step.uses is not None and step.uses.is_local and step.with_:
            yield step.uses.path or ".", step.with_


def _value_taint(node: YScalar) -> tuple[bool, frozenset[str]]:
    """Whether a value flows attacker data, and which of the file's own inputs it flows."""
    direct = False
    via: set[str] = set()
    attacker_controlled = _attacker_check()
    for match in expressions(node):
        if match.expr is None:
            continue
        for ref in flows(match.expr):
            if ref.context == "inputs" and len(ref.parts) > 1:
                via.add(ref.parts[1])
            elif attacker_controlled(ref.path):
                direct = True
    return direct, frozenset(via)


def callee_key(source: SourceFile) -> str:
    """What a local ``uses:`` names: an action's directory, a workflow's file."""
    path = os.path.abspath(source.fs_path)
    return os.path.dirname(path) if source.kind is Kind.ACTION else path


def _repository_root(fs_path: str, relative: str) -> str:
    """The directory ``uses: ./x`` is relative to (GitHub: the checked-out repository)."""
    path = os.path.abspath(fs_path)
    directory = os.path.dirname(path)
    parent = os.path.dirname(directory)
    if os.path.basename(directory) == "workflows" and os.path.basename(parent) == ".github":
        return os.path.dirname(parent)
    marked = _marked_ancestor(directory)
    if marked is not None:
        return marked
    # Nothing marks a repository: take the directory the file was found under.
    suffix = relative.replace("/", os.sep)
    if not path.endswith(suffix):
        return directory
    return path[: -len(suffix)].rstrip(os.sep) or os.sep


@lru_cache(maxsize=1024)
def _marked_ancestor(directory: str) -> str | None:
    """The nearest directory at or above ``directory`` holding ``.github`` or ``.git``."""
    if os.path.isdir(os.path.join(directory, ".github")) or os.path.exists(
        os.path.join(directory, ".git")
    ):
        return directory
    parent = os.path.dirname(directory)
    return None if parent == directory else _marked_ancestor(parent)


class CallGraph:
    """Local calls seen so far; :meth:`solve` gives each callee its tainted inputs."""

    def __init__(self) -> None:
        self.tainted: dict[str, set[str]] = {}
        self.passed_on: list[tuple[str, Call]] = []
        """(caller key, call) for calls of callees that pass their own inputs on."""

    def add(self, result: FileResult) -> None:
        """Note the local calls of a checked file."""
        caller = callee_key(result.source) if result.deferred else None
        for call in result.calls:
            if call.direct:
                self.tainted.setdefault(call.target, set()).add(call.input)
            elif caller is not None:
                # Only a callee's `inputs` come from a caller; a workflow_dispatch input
                # needs write access to set, so it is not attacker data.
                self.passed_on.append((caller, call))

    def solve(self, callees: Sequence[SourceFile]) -> dict[str, frozenset[str]]:
        """Display path of each callee -> its tainted input names (a fixed point)."""
        changed = True
        while changed:
            changed = False
            for caller, call in self.passed_on:
                names = self.tainted.get(call.target)
                if names is not None and call.input in names:
                    continue
                if call.via & self.tainted.get(caller, set()):
                    self.tainted.setdefault(call.target, set()).add(call.input)
                    changed = True
        result: dict[str, frozenset[str]] = {}
        for source in callees:
            names = self.tainted.get(callee_key(source))
            if names:
                result[source.path] = frozenset(names)
        return result


@lru_cache(maxsize=1)
def _attacker_check() -> Callable[[str], bool]:
    """``tollgate.audit.github.taint.is_attacker_controlled`` when it exists, else ours."""
    try:
        module = importlib.import_module("tollgate.audit.github.taint")
    except ImportError:
        return _is_attacker_controlled
    check: Callable[[str], bool] = module.is_attacker_controlled
    return check


def _by_event_key(paths: Iterable[str]) -> dict[str, tuple[tuple[str, ...], ...]]:
    grouped: dict[str, tuple[tuple[str, ...], ...]] = {}
    for path in paths:
        key, *rest = path.split(".")
        grouped[key] = (*grouped.get(key, ()), tuple(rest))
    return grouped


# Context paths under `github.event` an outsider can set (zizmor's list, GitHub's guidance
# on untrusted input), by the key under `github.event`.
_ATTACKER_EVENT_PATHS = _by_event_key(
    (
        "issue.title",
        "issue.body",
        "pull_request.title",
        "pull_request.body",
        "pull_request.head.ref",
        "pull_request.head.label",
        "pull_request.head.repo.default_branch",
        "pull_request.head.repo.description",
        "pull_request.head.repo.homepage",
        "comment.body",
        "review.body",
        "review_comment.body",
        "discussion.title",
        "discussion.body",
        "pages.*.page_name",
        "commits.*.message",
        "commits.*.author.email",
        "commits.*.author.name",
        "head_commit.message",
        "head_commit.author.email",
        "head_commit.author.name",
        "head_commit.committer.email",
        "head_commit.committer.name",
        "workflow_run.head_branch",
        "workflow_run.display_title",
        "workflow_run.head_commit.message",
        "workflow_run.head_commit.author.email",
        "workflow_run.head_commit.author.name",
        "workflow_run.pull_requests.*.head.ref",
    )
)


def _is_attacker_controlled(path: str) -> bool:
    """True when ``path`` is, lies under, or contains an attacker-controlled value
    (``toJSON(github.event.pull_request)`` carries the title)."""
    parts = path.lower().split(".")
    if parts[0] != "github":
        return False
    if len(parts) < 3:
        # `github`, `github.event` (whole objects), `github.head_ref`.
        return len(parts) == 1 or parts[1] in ("event", "head_ref", "*")
    if parts[1] not in ("event", "*"):
        return False
    keys = _ATTACKER_EVENT_PATHS if parts[2] == "*" else {parts[2]: ()}
    rest = parts[3:]
    return any(
        all(w == "*" or p == "*" or w == p for w, p in zip(known, rest, strict=False))
        for key in keys
        for known in _ATTACKER_EVENT_PATHS.get(key, ())
    )
