"""Where the pinning, credential and hygiene rules look: every ``uses:``, ``env:`` entry and
``run:`` script of a workflow or action, each with its structural anchor, plus helpers that
turn raw-text offsets into anchors and secret values into redacted evidence.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from tollgate.audit.github.model import Action, Job, Step, Uses, Workflow
from tollgate.audit.source import YMapping, YNode, YScalar, YSequence

Model = Workflow | Action


# NamedTuples, not frozen dataclasses, for the per-site records: a file has dozens of them,
# and a frozen dataclass costs several times more to build.


class UsesSite(NamedTuple):
    """A ``uses:`` of a step or of a job (a reusable workflow call)."""

    uses: Uses
    owner: Step | Job

    @property
    def anchor(self) -> str:
        return f"{self.owner.anchor}.uses"


class EnvEntry(NamedTuple):
    """One ``NAME: value`` of an ``env:`` mapping."""

    name: str
    value: YScalar
    anchor: str


class RunSite(NamedTuple):
    """A step with a ``run:`` script."""

    step: Step
    script: YScalar


def env_entries(model: Model) -> Iterator[EnvEntry]:
    """Every entry of every ``env:`` mapping: workflow, jobs, containers, services, steps;
    for an action, ``runs.env`` and its composite steps'."""
    if isinstance(model, Workflow):
        yield from _entries(model.env, "env")
        for job in model.jobs.values():
            yield from _entries(job.env, f"{job.anchor}.env")
            if job.container is not None:
                yield from _entries(job.container.env, f"{job.anchor}.container.env")
            for name, service in job.services.items():
                yield from _entries(service.env, f"{job.anchor}.services.{name}.env")
            for step in job.all_steps():
                yield from _entries(step.env, step.field_anchor("env"))
    else:
        yield from _entries(model.env, "runs.env")
        for step in model.all_steps():
            yield from _entries(step.env, step.field_anchor("env"))


def _entries(env: Mapping[str, YScalar], anchor: str) -> Iterator[EnvEntry]:
    for name, value in env.items():
        yield EnvEntry(name, value, f"{anchor}.{name}")


@dataclass(frozen=True)
class Facts:
    """What several rules walk for: computed once per file (see :func:`facts`)."""

    uses: tuple[UsesSite, ...]
    runs: tuple[RunSite, ...]
    run_text: str
    """Every ``run:`` script joined by NUL: one substring test tells if any mentions a tool."""


_last: tuple[Model, Facts] | None = None


def facts(model: Model) -> Facts:
    """The ``uses:`` and ``run:`` sites of ``model``, in document order; the last file's are
    kept, as the rules of one file run one after the other."""
    global _last
    if _last is not None and _last[0] is model:
        return _last[1]
    uses: list[UsesSite] = []
    runs: list[RunSite] = []

    def visit(steps: tuple[Step, ...]) -> None:
        # A plain loop, not Job.all_steps(): this runs for every step of every file.
        for step in steps:
            if step.uses is not None:
                uses.append(UsesSite(step.uses, step))
            elif step.run is not None and step.run.value:
                runs.append(RunSite(step, step.run))
            if step.parallel:
                visit(step.parallel)

    if isinstance(model, Workflow):
        for job in model.jobs.values():
            if job.uses is not None:
                uses.append(UsesSite(job.uses, job))
            visit(job.steps)
    else:
        visit(model.steps)
    found = Facts(tuple(uses), tuple(runs), "\0".join(site.script.value for site in runs))
    _last = (model, found)
    return found


def anchor_at(root: YNode, offset: int) -> str:
    """The structural path of the innermost node whose source holds character ``offset``
    (``jobs.build.steps[2].run``); ``(file)`` when only the whole document does, as for a
    comment at the top level."""
    parts: list[str] = []
    node: YNode = root
    while True:
        child: tuple[str, YNode] | None = None
        if isinstance(node, YMapping):
            for key, value in node.items:
                if isinstance(key, YScalar) and (_holds(key, offset) or _holds(value, offset)):
                    child = (f".{key.value}", value)
                    break
        elif isinstance(node, YSequence):
            for index, item in enumerate(node.items):
                if _holds(item, offset):
                    child = (f"[{index}]", item)
                    break
        if child is None:
            break
        parts.append(child[0])
        node = child[1]
    return "".join(parts).lstrip(".") or "(file)"


def _holds(node: YNode, offset: int) -> bool:
    return node.start <= offset < node.end


def redact(value: str) -> str:
    """Evidence for a secret: enough to recognise it, never enough to use it.

    Long values keep their first 4 and last 2 characters (a token's public prefix and a
    check on which one it is); short ones show only their length.
    """
    if len(value) >= 16:
        return f"{value[:4]}…{value[-2:]} ({len(value)} chars)"
    return f"… ({len(value)} chars)"
