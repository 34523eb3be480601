"""Gates: what makes an outsider-triggered job harder to reach, and which events reach it.

A job that a fork pull request or a comment can start is less exposed when something stands
between the outsider and the job: an ``if:`` that requires a trusted author, a label only
maintainers can add, a same-repository (not a fork) check, a merged pull request, a step that
fails unless the actor may write, an ``environment:`` whose reviewers may have to approve.
Rules use :func:`job_gates` to **lower their confidence** (:func:`gated_confidence`) and to
say which gate they saw (:func:`describe`); they never go silent because of a gate, since a
gate can be misconfigured (a label that persists across pushes, an environment without
reviewers) and the audit cannot see the repository settings.

:func:`job_events` answers a different question: which of the workflow's triggers can run a
job at all, given ``github.event_name`` tests in its ``if:`` (or in the ``if:`` of a job it
``needs``). A job that only runs on ``push`` is not reachable from ``pull_request_target``.

What counts as a gate (:class:`GateKind`; *strong* gates lower the confidence to low, *weak*
ones by one step):

=====================  ==============================================================  ======
kind                   seen as                                                        strong
=====================  ==============================================================  ======
author-association     ``github.event.{pull_request,comment,review}.author_association``  yes
                       in OWNER/MEMBER/COLLABORATOR (``==``, ``contains(fromJSON(..))``)
                       (``issue.author_association``: the issue's author, not the
                       commenter: weak)
actor                  ``github.actor`` / ``triggering_actor`` / ``event.sender.login``   yes
                       equal to a literal (a ``[bot]`` name: weak, see bot-conditions);
                       the author (``event.pull_request.user.login``,
                       ``event.comment.user.login``) equal to a literal
actor-permission       a step before, or a needed job, using a permission-check action     table
                       (:data:`PERMISSION_CHECKS`), or a ``run:``/``github-script`` step
                       calling the permission or membership API (weak: its failure
                       path cannot be seen)
label                  ``github.event.label.name == '...'`` (strong); ``contains(          see
                       github.event.*.labels.*.name, '...')`` (strong only when the       left
                       trigger fires for maintainer-only activity types, since a label
                       stays on while the author pushes more commits)
maintainer-activity    the trigger's ``types:`` are all maintainer-only                    yes
                       (``labeled``, ``assigned``, ``milestoned``... see
                       :data:`MAINTAINER_TYPES`)
merged                 ``github.event.pull_request.merged`` is true                         yes
same-repository        ``head.repo.full_name == github.repository`` (or a literal,          yes
                       or ``base.repo.full_name``), ``!head.repo.fork``, ``fork == false``,
                       and the same for ``workflow_run.head_repository``
not-pull-request       ``github.event.workflow_run.event`` is not ``pull_request``          yes
environment            the job (or a needed job) has ``environment:``                      no
=====================  ==============================================================  ======

A condition gates when it implies the test: ``a && gate`` does, ``a || gate`` does not,
``gate1 || gate2`` does (and is strong only when both are); ``!`` is only understood on a
fork test. ``if:`` values that GitHub reads as always true (text around ``${{ }}``) gate
nothing. A needed job's gates count unless the job's ``if:`` calls ``always()``,
``failure()`` or ``cancelled()``, which run it even when the needed job was skipped.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from tollgate.audit.findings import Confidence, Location
from tollgate.audit.github.expressions import (
    Call,
    Compare,
    Context,
    Expr,
    Index,
    Literal,
    Logical,
    Not,
    Property,
    Wildcard,
    calls,
    flows,
    references,
)
from tollgate.audit.github.model import Job, Step, Workflow, condition
from tollgate.audit.source import YNode, YScalar


@enum.unique
class GateKind(str, enum.Enum):
    """What stands between an outsider and the job (see the module table)."""

    AUTHOR_ASSOCIATION = "author-association"
    ACTOR = "actor"
    ACTOR_PERMISSION = "actor-permission"
    LABEL = "label"
    MAINTAINER_ACTIVITY = "maintainer-activity"
    MERGED = "merged"
    SAME_REPOSITORY = "same-repository"
    NOT_PULL_REQUEST = "not-pull-request"
    ENVIRONMENT = "environment"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Gate:
    """One gate seen on the way to a job or step."""

    kind: GateKind
    strong: bool
    """Strong gates keep outsiders out when configured as written; weak ones may not."""
    what: str
    """A short phrase for messages: ``author_association is OWNER or MEMBER``."""
    location: Location
    anchor: str
    """Where it is: ``jobs.test.if``, ``on.pull_request_target.types``..."""


PERMISSION_CHECKS: Mapping[str, bool] = {
    # slug -> the step fails when the actor lacks the permission (strong unless
    # continue-on-error); False: it only sets an output that a later `if:` may or may not read.
    "prince-chrismc/check-actor-permissions-action": True,
    "lannonbr/repo-permission-check-action": True,
    "actions-cool/check-user-permission": False,
    "skjnldsv/check-actor-permission": False,
    "xt0rted/slash-command-action": False,
    "github/command": False,
    "tspascoal/get-user-teams-membership": False,
}
"""Actions that check the triggering actor's permission or team, by ``owner/repo``."""

MAINTAINER_TYPES = frozenset(
    ("labeled", "unlabeled", "assigned", "unassigned", "milestoned", "demilestoned")
)
"""Activity types only people with triage access or more can cause."""

# The REST calls that tell a user's permission or membership (`gh api`, github-script).
_PERMISSION_API_RE = re.compile(
    r"collaborators/[^\s/]+/permission|getCollaboratorPermissionLevel|checkMembershipForUser|"
    r"getMembershipForUserInOrg|orgs/[^\s/]+/members/|author_association"
)

TRUSTED_ASSOCIATIONS = frozenset(("OWNER", "MEMBER", "COLLABORATOR"))
_ASSOCIATIONS = frozenset(
    (
        *TRUSTED_ASSOCIATIONS,
        "CONTRIBUTOR",
        "FIRST_TIME_CONTRIBUTOR",
        "FIRST_TIMER",
        "MANNEQUIN",
        "NONE",
    )
)
# Whose association it is: the pull request's or comment's author is who triggers (strong);
# an issue's author is not the commenter who triggers `issue_comment` (weak).
_ASSOCIATION_PATHS: Mapping[str, bool] = {
    "github.event.pull_request.author_association": True,
    "github.event.comment.author_association": True,
    "github.event.review.author_association": True,
    "github.event.discussion.author_association": True,
    "github.event.issue.author_association": False,
}
_ACTOR_PATHS = frozenset(("github.actor", "github.triggering_actor", "github.event.sender.login"))
# Who wrote the pull request or comment: a bot name here cannot be borrowed (unlike
# `github.actor`, which is whoever caused the latest event).
_AUTHOR_PATHS = frozenset(
    (
        "github.event.pull_request.user.login",
        "github.event.comment.user.login",
        "github.event.review.user.login",
    )
)
_HEAD_REPO_NAMES = frozenset(
    (
        "github.event.pull_request.head.repo.full_name",
        "github.event.workflow_run.head_repository.full_name",
    )
)
_HEAD_REPO_OWNERS = frozenset(
    (
        "github.event.pull_request.head.repo.owner.login",
        "github.event.workflow_run.head_repository.owner.login",
    )
)
_THIS_REPO = frozenset(("github.repository", "github.event.repository.full_name"))
_THIS_OWNER = frozenset(("github.repository_owner", "github.event.repository.owner.login"))
_BASE_REPO_NAMES = frozenset(("github.event.pull_request.base.repo.full_name",))
_FORK_FLAGS = frozenset(
    (
        "github.event.pull_request.head.repo.fork",
        "github.event.workflow_run.head_repository.fork",
    )
)
_MERGED = "github.event.pull_request.merged"
_LABEL_NAME = "github.event.label.name"
_WORKFLOW_RUN_EVENT = "github.event.workflow_run.event"
_EVENT_NAME = "github.event_name"
# Status functions that run a job although a job it needs was skipped or failed.
_RUN_ANYWAY = frozenset(("always", "failure", "cancelled"))


# --- Public API -------------------------------------------------------------------------------


def job_gates(
    workflow: Workflow,
    job: Job,
    *,
    step: Step | None = None,
    events: Iterable[str] | None = None,
) -> tuple[Gate, ...]:
    """The gates in front of ``job`` (and of ``step`` in it, when given).

    Counted: the job's ``if:``, its ``environment:``, the gates of the jobs it needs
    (transitively, unless its ``if:`` runs it anyway), the trigger ``types:`` of ``events``
    (default: every trigger; a ``types:`` gate counts only when all of them have one), and
    with ``step``: that step's ``if:`` and permission checks in the steps before it.
    """
    wanted = tuple(workflow.triggers) if events is None else tuple(events)
    maintainer_only = bool(wanted) and all(_maintainer_only(workflow, event) for event in wanted)
    found: list[Gate] = []
    if maintainer_only:
        found.extend(_trigger_gates(workflow, wanted))
    found.extend(_job_gates(workflow, job, maintainer_only, set(), whole=step is None))
    if step is not None:
        found.extend(_step_gates(workflow, job, step, maintainer_only))
    return tuple(_unique(found))


def job_events(workflow: Workflow, job: Job) -> frozenset[str]:
    """The workflow's triggers that can run ``job``: all of them, minus those ruled out by
    ``github.event_name`` tests in its ``if:`` or in the ``if:`` of a job it needs."""
    global _events_memo
    if _events_memo is None or _events_memo[0] is not workflow:
        _events_memo = (workflow, {})
    memo = _events_memo[1]
    found = memo.get(job.id)
    if found is None:
        found = memo[job.id] = _job_events(workflow, job, frozenset(workflow.triggers), set())
    return found


# Rules ask for the same jobs of the same workflow in turn: the last workflow's answers stay.
_events_memo: tuple[Workflow, dict[str, frozenset[str]]] | None = None


def step_events(workflow: Workflow, job: Job, step: Step) -> frozenset[str]:
    """The triggers that can run ``step``: :func:`job_events` minus those its own ``if:``
    rules out through ``github.event_name``."""
    events = job_events(workflow, job)
    node = step.if_
    if node is None or "event_name" not in node.value.lower():
        return events
    cond = condition(node)
    if cond is None or cond.expr is None:
        return events
    return events & _possible_events(cond.expr, events)


def gated_confidence(confidence: Confidence, gates: Sequence[Gate]) -> Confidence:
    """``confidence`` lowered for ``gates``: to low for a strong gate, one step for weak ones."""
    if not gates:
        return confidence
    if any(gate.strong for gate in gates):
        return Confidence.LOW
    return Confidence.LOW if confidence is not Confidence.HIGH else Confidence.MEDIUM


def describe(gates: Sequence[Gate]) -> str:
    """A clause for a message: `` Gated: the job's if: requires ...; confidence lowered.``
    (empty without gates)."""
    if not gates:
        return ""
    parts = "; ".join(dict.fromkeys(gate.what for gate in gates))
    return f" Gated ({parts}), so confidence is lowered: check that the gate holds."


# --- Jobs and steps ---------------------------------------------------------------------------


def _job_gates(
    workflow: Workflow, job: Job, maintainer_only: bool, seen: set[str], *, whole: bool
) -> list[Gate]:
    """Gates of ``job``; ``whole``: its permission-check steps count (a needed job, which
    finishes before ours starts, or the whole job when no step was asked about)."""
    if job.id in seen:
        return []
    seen.add(job.id)
    found: list[Gate] = []
    if job.if_ is not None:
        whose = f"job {job.id}'s"
        found.extend(_if_gates(workflow, job.if_, f"{job.anchor}.if", maintainer_only, whose))
    if job.environment is not None:
        name = job.environment.name or "(unnamed)"
        found.append(
            Gate(
                GateKind.ENVIRONMENT,
                False,
                f"job {job.id}'s environment {name} may require a reviewer's approval",
                workflow.location(job.environment.node),
                f"{job.anchor}.environment",
            )
        )
    if whole:
        found.extend(g for s in job.all_steps() if (g := _permission_check(workflow, s)))
    if not _runs_anyway(job):
        for name in job.needs:
            needed = workflow.jobs.get(name)
            if needed is not None:
                found.extend(_job_gates(workflow, needed, maintainer_only, seen, whole=True))
    return found


def _step_gates(workflow: Workflow, job: Job, step: Step, maintainer_only: bool) -> list[Gate]:
    """The step's own ``if:`` and the permission checks that run before it."""
    found: list[Gate] = []
    for earlier in job.all_steps():
        if earlier is step:
            break
        gate = _permission_check(workflow, earlier)
        if gate is not None:
            found.append(gate)
    if step.if_ is not None:
        whose = f"step {step.label!r}'s"
        found.extend(_if_gates(workflow, step.if_, step.field_anchor("if"), maintainer_only, whose))
    return found


def _permission_check(workflow: Workflow, step: Step) -> Gate | None:
    uses = step.uses
    if uses is not None and uses.slug is not None:
        fails = PERMISSION_CHECKS.get(uses.slug)
        if fails is not None:
            soft = step.continue_on_error is not None and step.continue_on_error.value != "false"
            return Gate(
                GateKind.ACTOR_PERMISSION,
                fails and not soft,
                f"{uses.slug} checks the actor's permission",
                workflow.location(uses.node),
                step.anchor,
            )
        if uses.slug == "actions/github-script":
            script = step.with_.get("script")
            if script is not None and _PERMISSION_API_RE.search(script.value):
                return Gate(
                    GateKind.ACTOR_PERMISSION,
                    False,
                    "a github-script step checks the actor's permission",
                    workflow.location(uses.node),
                    step.anchor,
                )
    elif step.run is not None and _PERMISSION_API_RE.search(step.run.value):
        return Gate(
            GateKind.ACTOR_PERMISSION,
            False,
            "a run step checks the actor's permission through the API",
            workflow.location(step.run),
            step.anchor,
        )
    return None


def _runs_anyway(job: Job) -> bool:
    cond = condition(job.if_)
    if cond is None or cond.expr is None:
        return False
    return any(call.name in _RUN_ANYWAY for call in calls(cond.expr))


def _unique(gates: Iterable[Gate]) -> Iterator[Gate]:
    seen: set[tuple[str, str]] = set()
    for gate in gates:
        key = (gate.anchor, gate.what)
        if key not in seen:
            seen.add(key)
            yield gate


# --- Triggers ---------------------------------------------------------------------------------


def _maintainer_only(workflow: Workflow, event: str) -> bool:
    trigger = workflow.triggers.get(event)
    if trigger is None:
        return False
    types = trigger.types()
    return bool(types) and all(t in MAINTAINER_TYPES for t in types)


def _trigger_gates(workflow: Workflow, events: Sequence[str]) -> list[Gate]:
    found: list[Gate] = []
    for event in events:
        trigger = workflow.triggers[event]
        settings = trigger.settings
        node: YNode = trigger.node
        if settings is not None and settings.get("types") is not None:
            node = settings.get("types") or node
        found.append(
            Gate(
                GateKind.MAINTAINER_ACTIVITY,
                True,
                f"{event} only fires for {', '.join(trigger.types())}, which needs triage access",
                workflow.location(node),
                f"on.{event}.types",
            )
        )
    return found


# --- Conditions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    """A gate in a condition, before it is placed in the file."""

    kind: GateKind
    strong: bool
    what: str
    start: int
    end: int


def _if_gates(
    workflow: Workflow, node: YScalar, anchor: str, maintainer_only: bool, whose: str
) -> list[Gate]:
    cond = condition(node)
    if cond is None or cond.expr is None:
        return []
    gates = []
    one_line = node.line == node.end_line
    for found in _gates(cond.expr, maintainer_only):
        start, end = cond.offset + found.start, cond.offset + found.end
        # A one-line `if:` is located whole (as precise, and no line table to build).
        location = workflow.location(node) if one_line else workflow.location(node, start, end)
        gates.append(Gate(found.kind, found.strong, f"{whose} if: {found.what}", location, anchor))
    return gates


def _gates(expr: Expr, maintainer_only: bool) -> list[_Found]:
    """The gates ``expr`` implies (empty when it does not imply any)."""
    if isinstance(expr, Logical):
        parts = [_gates(operand, maintainer_only) for operand in expr.operands]
        if expr.op == "&&":
            return [gate for part in parts for gate in part]
        if not all(parts):
            return []
        strong = all(any(gate.strong for gate in part) for part in parts)
        return [replace(gate, strong=strong) for part in parts for gate in part]
    if isinstance(expr, Not):
        path = _path(expr.operand)
        if path in _FORK_FLAGS:
            return [_found(GateKind.SAME_REPOSITORY, True, "excludes forks", expr)]
        return []
    if isinstance(expr, Compare):
        return _compare_gates(expr)
    if isinstance(expr, Call):
        return _call_gates(expr, maintainer_only)
    path = _path(expr)
    if path == _MERGED:
        return [_found(GateKind.MERGED, True, "requires a merged pull request", expr)]
    return []


def _compare_gates(expr: Compare) -> list[_Found]:
    if expr.op not in ("==", "!="):
        return []
    equal = expr.op == "=="
    for side, other in ((expr.left, expr.right), (expr.right, expr.left)):
        path = _path(side)
        if path is None:
            continue
        value = _literal(other)
        other_path = _path(other)
        if equal and path in _ASSOCIATION_PATHS and isinstance(value, str):
            if value.upper() in TRUSTED_ASSOCIATIONS:
                what = f"requires author_association {value.upper()}"
                return [_found(GateKind.AUTHOR_ASSOCIATION, _ASSOCIATION_PATHS[path], what, expr)]
            return []
        if (
            path in _HEAD_REPO_NAMES
            and equal
            and (
                other_path in _THIS_REPO or other_path in _BASE_REPO_NAMES or isinstance(value, str)
            )
        ):
            return [_found(GateKind.SAME_REPOSITORY, True, "excludes forks", expr)]
        if (
            path in _HEAD_REPO_OWNERS
            and equal
            and (other_path in _THIS_OWNER or isinstance(value, str))
        ):
            return [_found(GateKind.SAME_REPOSITORY, True, "excludes other owners' forks", expr)]
        if path in _FORK_FLAGS and isinstance(value, bool) and value is not equal:
            return [_found(GateKind.SAME_REPOSITORY, True, "excludes forks", expr)]
        if path == _MERGED and value is True and equal:
            return [_found(GateKind.MERGED, True, "requires a merged pull request", expr)]
        if path == _LABEL_NAME and equal and isinstance(value, str):
            what = f"requires the label {value!r} to be added"
            return [_found(GateKind.LABEL, True, what, expr)]
        if path == _WORKFLOW_RUN_EVENT and isinstance(value, str):
            # `== 'push'` or `!= 'pull_request'`: the triggering run did not come from a PR.
            if (equal and not value.startswith("pull_request")) or (
                not equal and value == "pull_request"
            ):
                what = "requires a triggering run that is not a pull request's"
                return [_found(GateKind.NOT_PULL_REQUEST, True, what, expr)]
        if path in _ACTOR_PATHS and equal and isinstance(value, str):
            bot = value.endswith("[bot]")
            return [_found(GateKind.ACTOR, not bot, f"requires the actor {value}", expr)]
        if path in _AUTHOR_PATHS and equal and isinstance(value, str):
            return [_found(GateKind.ACTOR, True, f"requires the author {value}", expr)]
    return []


def _call_gates(expr: Call, maintainer_only: bool) -> list[_Found]:
    if expr.name != "contains" or len(expr.args) != 2:
        return []
    haystack, needle = expr.args
    # contains(fromJSON('["OWNER", "MEMBER"]'), github.event.comment.author_association)
    needle_paths = {ref.path for ref in flows(needle)}
    if needle_paths and needle_paths <= set(_ASSOCIATION_PATHS):
        allowed = _allowed_associations(haystack)
        if allowed and allowed <= TRUSTED_ASSOCIATIONS:
            strong = all(_ASSOCIATION_PATHS[path] for path in needle_paths)
            what = f"requires author_association {' or '.join(sorted(allowed))}"
            return [_found(GateKind.AUTHOR_ASSOCIATION, strong, what, expr)]
        return []
    if needle_paths and needle_paths <= _ACTOR_PATHS | _AUTHOR_PATHS:
        names = _string_list(haystack)
        if names:
            borrowed = needle_paths & _ACTOR_PATHS and any(n.endswith("[bot]") for n in names)
            what = f"requires the actor to be one of {', '.join(names)}"
            return [_found(GateKind.ACTOR, not borrowed, what, expr)]
        return []
    # contains(github.event.pull_request.labels.*.name, 'safe to test')
    path = _path(haystack)
    label = _literal(needle)
    if path is not None and path.endswith(".labels.*.name") and isinstance(label, str):
        what = f"requires the label {label!r}"
        if not maintainer_only:
            what += " (it stays on when more commits are pushed)"
        return [_found(GateKind.LABEL, maintainer_only, what, expr)]
    return []


def _allowed_associations(haystack: Expr) -> frozenset[str]:
    """The association values that a ``contains`` haystack accepts (empty: unknown)."""
    listed = _string_list(haystack)
    if listed:
        return frozenset(v.upper() for v in listed)
    text = _literal(haystack)
    if isinstance(text, str):
        # A substring test: every value that occurs in the text passes.
        upper = text.upper()
        return frozenset(value for value in _ASSOCIATIONS if value in upper)
    return frozenset()


def _string_list(expr: Expr) -> tuple[str, ...]:
    """The strings of ``fromJSON('["a", "b"]')`` (empty for anything else)."""
    if isinstance(expr, Call) and expr.name == "fromjson" and len(expr.args) == 1:
        text = _literal(expr.args[0])
        if isinstance(text, str):
            try:
                value = json.loads(text)
            except ValueError:
                return ()
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                return tuple(value)
    return ()


def _found(kind: GateKind, strong: bool, what: str, expr: Expr) -> _Found:
    return _Found(kind, strong, what, expr.start, expr.end)


def _path(expr: Expr) -> str | None:
    """The lower-case context path of an access such as ``github.event.x``, else ``None``."""
    if not isinstance(expr, (Context, Property, Index, Wildcard)):
        return None
    refs = references(expr)
    if refs and refs[0].node is expr:
        return refs[0].path
    return None


def _literal(expr: Expr) -> bool | float | str | None:
    return expr.value if isinstance(expr, Literal) else None


# --- Events -----------------------------------------------------------------------------------


def _job_events(
    workflow: Workflow, job: Job, events: frozenset[str], seen: set[str]
) -> frozenset[str]:
    if job.id in seen:
        return events
    seen.add(job.id)
    text = job.if_.value.lower() if job.if_ is not None else ""
    # Parse only what can matter: an event test, or a status function that ignores `needs`.
    anyway = False
    if "event_name" in text or (job.needs and any(f in text for f in _RUN_ANYWAY)):
        cond = condition(job.if_)
        if cond is not None and cond.expr is not None:
            events = events & _possible_events(cond.expr, events)
            anyway = any(call.name in _RUN_ANYWAY for call in calls(cond.expr))
    if not anyway:
        for name in job.needs:
            needed = workflow.jobs.get(name)
            if needed is not None:
                events = _job_events(workflow, needed, events, seen)
    return events


def _possible_events(expr: Expr, events: frozenset[str]) -> frozenset[str]:
    """The events for which ``expr`` may be true: an over-approximation (unknown parts
    allow every event)."""
    if isinstance(expr, Logical):
        parts = [_possible_events(operand, events) for operand in expr.operands]
        result = parts[0]
        for part in parts[1:]:
            result = result & part if expr.op == "&&" else result | part
        return result
    if isinstance(expr, Not):
        inner = _event_test(expr.operand, events)
        return events - inner if inner is not None else events
    tested = _event_test(expr, events)
    return tested if tested is not None else events


def _event_test(expr: Expr, events: frozenset[str]) -> frozenset[str] | None:
    """The events for which a pure ``github.event_name`` test is true; ``None`` when ``expr``
    is not one."""
    if isinstance(expr, Compare) and expr.op in ("==", "!="):
        for side, other in ((expr.left, expr.right), (expr.right, expr.left)):
            value = _literal(other)
            if _path(side) == _EVENT_NAME and isinstance(value, str):
                same = frozenset(e for e in events if e == value)
                return same if expr.op == "==" else events - same
        return None
    if isinstance(expr, Call) and expr.name == "contains" and len(expr.args) == 2:
        haystack, needle = expr.args
        if _path(needle) == _EVENT_NAME:
            listed = _string_list(haystack)
            text = _literal(haystack)
            if listed:
                return frozenset(e for e in events if e in listed)
            if isinstance(text, str):
                return frozenset(e for e in events if e in text)
        return None
    if isinstance(expr, Logical):
        parts = [_event_test(operand, events) for operand in expr.operands]
        if any(part is None for part in parts):
            return None
        known = [part for part in parts if part is not None]
        result = known[0]
        for part in known[1:]:
            result = result & part if expr.op == "&&" else result | part
        return result
    if isinstance(expr, Not):
        inner = _event_test(expr.operand, events)
        return None if inner is None else events - inner
    return None
