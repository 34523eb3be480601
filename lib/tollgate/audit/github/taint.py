"""Who controls a value in a GitHub workflow, and how far an outsider's value reaches.

The knowledge: :data:`SOURCES` says which contexts an outsider sets (``ATTACKER``: anyone who
can open an issue, a pull request, a comment, a review, or push to a fork), which only someone
with write access sets (``WRITER``), and everything else under ``github`` is ``SAFE``: numbers,
SHAs, ids, timestamps, URLs, and names whose characters GitHub restricts (logins and
repository names are ``[A-Za-z0-9._-]`` only, so ``github.actor`` or
``github.event.pull_request.user.login`` cannot carry shell syntax). The engine asks
:func:`is_attacker_controlled` for cross-file taint.

The grading: :func:`reach` says how an outsider's value reaches a workflow, from its triggers
(:data:`PRIVILEGED_EVENTS`, :data:`FORK_LIMITED_EVENTS`).

How values travel inside a file (``env:``, outputs, ``needs``, inputs) is
:mod:`tollgate.audit.github.tracker`'s job; it describes each value with a :class:`Taint`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache

from tollgate.audit.github.model import Workflow
from tollgate.audit.source import YNode


class Control(enum.IntEnum):
    """Who can set a value, from least to most worrying for an injection."""

    SAFE = 0
    """GitHub sets it, or its format leaves no room for code (numbers, SHAs, logins)."""
    WRITER = 1
    """Someone with write access (or an admin): dispatch inputs, ref names, ``vars``."""
    UNKNOWN = 2
    """Set outside this file: an action's output, a caller's input, an unset env var."""
    ATTACKER = 3
    """Anyone who can open an issue or a pull request, comment, review, or name a branch."""


# --- The knowledge --------------------------------------------------------------------------

_ISSUE = ("issues", "issue_comment")
_PR = ("pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment")
_COMMENT = ("issue_comment", "pull_request_review_comment", "commit_comment", "discussion_comment")
_DISCUSSION = ("discussion", "discussion_comment")
_EDITED = (*_ISSUE, *_PR, *_DISCUSSION, "commit_comment")

PRIVILEGED_EVENTS = frozenset(
    (
        "pull_request_target",
        "workflow_run",
        "issues",
        "issue_comment",
        "discussion",
        "discussion_comment",
        "commit_comment",
        "gollum",
        "fork",
        "watch",
    )
)
"""Events an outsider can cause that run the base repository's workflow with its secrets and a
token that can write (unless ``permissions:`` says otherwise)."""

FORK_LIMITED_EVENTS = frozenset(
    ("pull_request", "pull_request_review", "pull_request_review_comment")
)
"""Events that, for a pull request from a fork, run with a read-only token and no secrets:
code still runs on the runner (cache and artifact poisoning), but steals nothing directly."""


@dataclass(frozen=True, slots=True)
class Source:
    """One row of the table: a context path pattern (``*`` matches one part) and who sets it."""

    pattern: str
    control: Control
    who: str
    """Who sets it, for messages: ``the issue's author``."""
    events: frozenset[str] = frozenset()
    """The events whose payload carries it (empty: any)."""

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.pattern.split("."))


def _rows(control: Control, who: str, events: Iterable[str], *patterns: str) -> list[Source]:
    return [Source(p, control, who, frozenset(events)) for p in patterns]


_A = Control.ATTACKER
_W = Control.WRITER

SOURCES: tuple[Source, ...] = (
    # GitHub's list of untrusted input ("Security hardening for GitHub Actions: understanding the
    # risk of script injections"), plus the fields of the same objects that are free text.
    *_rows(_A, "the issue's author", _ISSUE, "github.event.issue.title", "github.event.issue.body"),
    *_rows(
        _A,
        "the pull request's author",
        _PR,
        "github.event.pull_request.title",
        "github.event.pull_request.body",
    ),
    # The fork's branch name: git allows `$`, `(`, `)`, `;`, backticks and `{}` in ref names.
    *_rows(
        _A,
        "the pull request's author (the fork's branch name)",
        _PR,
        "github.event.pull_request.head.ref",
        "github.event.pull_request.head.label",
    ),
    *_rows(
        _A,
        "the pull request's author",
        ("pull_request", "pull_request_target"),
        "github.head_ref",
    ),
    *_rows(
        _A,
        "the fork's owner",
        _PR,
        "github.event.pull_request.head.repo.default_branch",
        "github.event.pull_request.head.repo.description",
        "github.event.pull_request.head.repo.homepage",
    ),
    *_rows(_A, "the commenter", _COMMENT, "github.event.comment.body"),
    *_rows(_A, "the reviewer", ("pull_request_review",), "github.event.review.body"),
    *_rows(
        _A, "the reviewer", ("pull_request_review_comment",), "github.event.review_comment.body"
    ),
    *_rows(
        _A,
        "the discussion's author",
        _DISCUSSION,
        "github.event.discussion.title",
        "github.event.discussion.body",
    ),
    *_rows(_A, "the answer's author", ("discussion",), "github.event.answer.body"),
    *_rows(
        _A,
        "any wiki editor",
        ("gollum",),
        "github.event.pages.*.page_name",
        "github.event.pages.*.title",
    ),
    # Commit metadata is whatever the commit's author wrote (`git commit --author`); a push
    # carries an outsider's commits once a pull request is merged.
    *_rows(
        _A,
        "the commit's author",
        ("push",),
        "github.event.commits.*.message",
        "github.event.commits.*.author.name",
        "github.event.commits.*.author.email",
        "github.event.commits.*.committer.name",
        "github.event.commits.*.committer.email",
        "github.event.head_commit.message",
        "github.event.head_commit.author.name",
        "github.event.head_commit.author.email",
        "github.event.head_commit.committer.name",
        "github.event.head_commit.committer.email",
    ),
    # A workflow_run that follows a pull_request run carries the fork's branch and commit.
    *_rows(
        _A,
        "the author of the pull request behind the triggering run",
        ("workflow_run",),
        "github.event.workflow_run.head_branch",
        "github.event.workflow_run.display_title",
        "github.event.workflow_run.head_commit.message",
        "github.event.workflow_run.head_commit.author.name",
        "github.event.workflow_run.head_commit.author.email",
        "github.event.workflow_run.head_commit.committer.name",
        "github.event.workflow_run.head_commit.committer.email",
        "github.event.workflow_run.pull_requests.*.head.ref",
        "github.event.workflow_run.head_repository.description",
    ),
    *_rows(
        _A,
        "the author (the text before an edit)",
        _EDITED,
        "github.event.changes.title.from",
        "github.event.changes.body.from",
    ),
    # Write access (or an admin) is needed to set these.
    *_rows(_W, "anyone who can run the workflow (write access)", (), "github.event.inputs"),
    *_rows(
        _W,
        "whoever sends the repository_dispatch (a token with write access)",
        (),
        "github.event.client_payload",
    ),
    *_rows(
        _W,
        "anyone who can push a branch or tag (write access)",
        (),
        "github.ref",
        "github.ref_name",
        "github.base_ref",
        "github.event.ref",
        "github.event.base_ref",
        "github.event.pull_request.base.ref",
        "github.event.pull_request.base.label",
        "github.event.pusher.name",
        "github.event.pusher.email",
    ),
    *_rows(
        _W,
        "maintainers (write access)",
        (),
        "github.event.release.name",
        "github.event.release.body",
        "github.event.release.tag_name",
        "github.event.label.name",
        "github.event.label.description",
        "github.event.issue.labels.*.name",
        "github.event.pull_request.labels.*.name",
        "github.event.milestone.title",
        "github.event.milestone.description",
        "github.event.deployment.payload",
        "github.event.deployment.description",
        "github.event.deployment_status.description",
    ),
)

_ATTACKER_SOURCES = tuple(s for s in SOURCES if s.control is Control.ATTACKER)


def _match(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    return all(p == w or p == "*" or w == "*" for p, w in zip(parts, pattern, strict=False))


@lru_cache(maxsize=2048)
def classify(path: str) -> Source | None:
    """The table row for a ``github.*`` path (lower-case, ``*`` for an index), or ``None``
    when GitHub sets it or its format is fixed.

    A path at or under a row gets that row; a path above attacker rows (an object such as
    ``github.event.pull_request`` given to ``toJSON``) gets a row for all of them.
    """
    parts = tuple(path.lower().split("."))
    if parts[0] != "github":
        return None
    for source in SOURCES:
        wanted = source.parts
        if len(parts) >= len(wanted) and _match(parts, wanted):
            return source
    below = [s for s in _ATTACKER_SOURCES if len(s.parts) > len(parts) and _match(parts, s.parts)]
    if not below:
        return None
    events: frozenset[str] = frozenset().union(*(s.events for s in below))
    whos = dict.fromkeys(s.who for s in below)
    who = next(iter(whos)) if len(whos) == 1 else "outsiders (" + "; ".join(whos) + ")"
    return Source(path.lower(), Control.ATTACKER, who, events)


def is_attacker_controlled(path: str) -> bool:
    """True when ``path`` is, lies under, or contains a value an outsider sets
    (``github.event.issue.title``, ``github.event.commits.*.message``, ``github.event``)."""
    source = classify(path)
    return source is not None and source.control is Control.ATTACKER


# --- Actions whose outputs carry attacker data ----------------------------------------------

_CHANGED_FILE_EVENTS = frozenset((*_PR, "push"))


@dataclass(frozen=True, slots=True)
class ActionOutputs:
    """An action whose named outputs an outsider controls (``*_files``: every output whose
    name ends in ``_files``)."""

    slug: str
    outputs: tuple[str, ...]
    who: str
    events: frozenset[str] = frozenset()
    """When the outputs carry it (empty: on any event)."""


ACTION_OUTPUTS: Mapping[str, ActionOutputs] = {
    a.slug: a
    for a in (
        # File names come from the diff; git allows `$(...)`, `;` and backticks in them.
        # Since v41 `safe_output: true` (the default) backslash-escapes them, which is not
        # enough inside quotes (GHSA-mcph-m25j-8j63): certain only with `safe_output: false`.
        ActionOutputs(
            "tj-actions/changed-files",
            ("*_files", "all_old_new_renamed_files"),
            "the pull request's author (file names)",
            _CHANGED_FILE_EVENTS,
        ),
        # `<filter>_files` lists matching files when `list-files` is set; `shell` and `escape`
        # quote them, `json` and `csv` do not.
        ActionOutputs(
            "dorny/paths-filter",
            ("*_files",),
            "the pull request's author (file names)",
            _CHANGED_FILE_EVENTS,
        ),
        ActionOutputs(
            "jitterbit/get-changed-files",
            ("all", "added", "modified", "removed", "renamed", "deleted", "added_modified"),
            "the pull request's author (file names)",
            _CHANGED_FILE_EVENTS,
        ),
        # The head branch of the pull request a comment is on (issue_comment workflows).
        ActionOutputs(
            "xt0rted/pull-request-comment-branch",
            ("head_ref", "ref"),
            "the pull request's author (the fork's branch name)",
        ),
        ActionOutputs("peter-evans/find-comment", ("comment-body",), "the comment's author"),
        ActionOutputs(
            "8bitjonny/gh-get-current-pr",
            ("pr", "pr_title", "pr_body"),
            "the pull request's author",
        ),
        ActionOutputs(
            "actions-ecosystem/action-get-merged-pull-request",
            ("title", "body"),
            "the pull request's author",
        ),
    )
}


# --- Taint ----------------------------------------------------------------------------------


Place = tuple[YNode, int | None]
"""A node, and an offset in its text: where a hop was set (made a location only if reported)."""


@dataclass(frozen=True, slots=True)
class Taint:
    """Where a value can come from, and how it got here."""

    control: Control
    origin: str = ""
    """The source: ``github.event.issue.title``, ``inputs.title``, ``env.X`` (unknown)..."""
    who: str = ""
    """Who sets it, for messages."""
    chain: tuple[str, ...] = ()
    """The hops from the reference at the sink back towards :attr:`origin`
    (``env.TITLE``, ``steps.meta.outputs.title``), empty when the sink names the source."""
    certain: bool = True
    """False when a hop may change the value (a command, a parameter operator, escaping)."""
    json: bool = False
    """The value is JSON text (a JSON array of file names): a bare JavaScript literal."""
    events: frozenset[str] | None = frozenset()
    """Events that carry the source (empty: any; ``None``: not tied to the event, a caller's
    input)."""
    related: tuple[Place, ...] = ()
    """Where each hop was set (:meth:`tollgate.audit.github.tracker.Tracker.locations` turns
    them into locations)."""

    @property
    def rank(self) -> tuple[int, bool, int]:
        """Worse first when sorted in reverse: control, then certainty, then a shorter chain."""
        return (self.control, self.certain, -len(self.chain))

    def via(self, hop: str, where: Place | None = None, certain: bool = True) -> Taint:
        """This taint seen through ``hop`` (a name the value took on its way)."""
        if self.control is Control.SAFE:
            return self
        related = self.related if where is None else (where, *self.related)
        return replace(
            self, chain=(hop, *self.chain), certain=self.certain and certain, related=related
        )

    def uncertain(self) -> Taint:
        return self if not self.certain else replace(self, certain=False)


SAFE = Taint(Control.SAFE)


def worst(taints: Iterable[Taint]) -> Taint:
    """The most worrying of ``taints`` (:data:`SAFE` when empty)."""
    result = SAFE
    for taint in taints:
        if taint.rank > result.rank:
            result = taint
    return result


def unknown(origin: str, who: str) -> Taint:
    """A value set outside the file (``who`` says where, for messages)."""
    return Taint(Control.UNKNOWN, origin, who)


def from_source(path: str, source: Source | None) -> Taint:
    """The taint of a context path, from its table row."""
    if source is None:
        return SAFE
    return Taint(source.control, path, source.who, events=source.events)


# --- Grading --------------------------------------------------------------------------------


class Reach(enum.Enum):
    """How an outsider's value reaches a workflow, for grading."""

    PRIVILEGED = "privileged"
    """On an event that runs with the repository's secrets and a writable token."""
    CALLER = "caller"
    """In a reusable workflow or an action: it depends on the caller."""
    FORK = "fork"
    """Only on pull-request events, which fork pull requests run read-only without secrets."""
    MERGED = "merged"
    """On push: the outsider's commit must be merged first."""


def reach(
    workflow: Workflow | None, taint: Taint, events: Iterable[str] | None = None
) -> Reach | None:
    """How an attacker-controlled taint reaches ``workflow`` (``None``: it cannot, because
    no trigger carries it); ``events``: the triggers that can run the job (default: all).
    An action (``workflow`` ``None``) depends on its caller."""
    if taint.events is None:
        return Reach.PRIVILEGED  # a caller passes attacker data (the engine saw it)
    if workflow is None or not workflow.triggers:
        return Reach.CALLER
    triggers = set(workflow.triggers if events is None else events)
    relevant = triggers & taint.events if taint.events else triggers
    if relevant & PRIVILEGED_EVENTS:
        return Reach.PRIVILEGED
    if "workflow_call" in triggers:
        return Reach.CALLER
    if not taint.events and relevant - FORK_LIMITED_EVENTS:
        return Reach.PRIVILEGED  # set on any event, and this one runs with full rights
    if relevant & FORK_LIMITED_EVENTS:
        return Reach.FORK
    if relevant:
        return Reach.MERGED
    return None


def has_privileged_trigger(workflow: Workflow) -> bool:
    """True when an outsider can start the workflow with secrets and a writable token."""
    return bool(set(workflow.triggers) & PRIVILEGED_EVENTS)
