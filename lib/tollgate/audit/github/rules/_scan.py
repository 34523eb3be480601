"""Shared scan of a workflow: every ``${{ }}`` that mentions ``secrets``, with its anchor,
and every secret it uses.

Several rules ask the same questions of the same file (which jobs use secrets, where a
``toJSON(secrets)`` is); the walk is done once per workflow and kept for the next rule. It
only descends into the parts of the tree whose source text mentions ``secrets``, which on
real workflows skips most of the file.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from functools import cached_property

from tollgate.audit.github.expressions import ExpressionMatch, find_expressions, references
from tollgate.audit.github.model import Job, Permissions, Workflow
from tollgate.audit.source import YMapping, YNode, YScalar

_OPEN = "${{"
_SECRETS_RE = re.compile("secrets", re.IGNORECASE)


@dataclass(frozen=True)
class ExpressionSite:
    """One ``${{ }}`` in the file."""

    anchor: str
    """The structural path of the scalar holding it: ``jobs.build.steps[2].env.TOKEN``."""
    node: YScalar
    match: ExpressionMatch
    job_id: str | None
    """The job it belongs to (``None`` outside ``jobs:``)."""


@dataclass(frozen=True)
class SecretUse:
    """A reference to ``secrets.NAME`` (``GITHUB_TOKEN`` left out: every job has it)."""

    name: str
    """As written (``*`` for a computed index, ``""`` for the whole context)."""
    site: ExpressionSite
    start: int
    """Offsets of the reference in the scalar's value."""
    end: int


@dataclass(frozen=True)
class Scan:
    """What one walk over a workflow found."""

    sites: tuple[ExpressionSite, ...]
    """Expressions that mention ``secrets``."""
    secrets: tuple[SecretUse, ...]

    def job_secrets(self, job: Job) -> tuple[SecretUse, ...]:
        """Secrets the job's steps can see: its own, and those of the workflow's ``env:``."""
        shared = self._by_job.get(None, ())
        own = self._by_job.get(job.id, ())
        return shared + own if shared else own

    @cached_property
    def _by_job(self) -> dict[str | None, tuple[SecretUse, ...]]:
        groups: dict[str | None, list[SecretUse]] = {}
        for use in self.secrets:
            anchor = use.site.anchor
            if use.site.job_id is None and not anchor.startswith("env."):
                continue  # `on.workflow_call.secrets...` and the like reach no step
            groups.setdefault(use.site.job_id, []).append(use)
        return {key: tuple(value) for key, value in groups.items()}


_last: tuple[Workflow, Scan] | None = None
_last_text: tuple[Workflow, str] | None = None


def scan(workflow: Workflow) -> Scan:
    """The expressions and secrets of ``workflow`` (the last result is kept: the rules of one
    file ask in turn)."""
    global _last
    if _last is not None and _last[0] is workflow:
        return _last[1]
    hits = _mentions(workflow.document.text, lowered_text(workflow))
    sites = tuple(_sites(workflow.node, hits)) if hits else ()
    result = Scan(sites, tuple(_secret_uses(sites)))
    _last = (workflow, result)
    return result


def whole_context_hint(workflow: Workflow) -> bool:
    """Whether the text has ``secrets`` followed by something other than ``.name``
    (``toJSON(secrets)``, ``secrets[x]``, ``secrets.*``): a cheap test before any walk."""
    text = workflow.document.text
    lowered = lowered_text(workflow)
    position = lowered.find("secrets")
    while position >= 0:
        if _whole_context_after(text, position + len("secrets")):
            return True
        position = lowered.find("secrets", position + 7)
    return False


def lowered_text(workflow: Workflow) -> str:
    """The file's text in lower case (kept for the next rule that asks)."""
    global _last_text
    if _last_text is None or _last_text[0] is not workflow:
        _last_text = (workflow, workflow.document.text.lower())
    return _last_text[1]


def _whole_context_after(text: str, position: int) -> bool:
    """Whether what follows a ``secrets`` at ``position`` uses the whole context: anything
    but ``.name`` (or a name character: ``secrets_file`` is another word)."""
    rest = text[position : position + 8].lstrip()
    if not rest:
        return False
    if rest[0] == ".":
        return rest[1:].lstrip().startswith("*")
    return not (rest[0].isalnum() or rest[0] in "_-:")


def effective_permissions(workflow: Workflow, job: Job) -> Permissions:
    """The job's ``permissions:``, else the workflow's (either may be absent)."""
    return job.permissions if not job.permissions.is_absent else workflow.permissions


def _mentions(text: str, lowered: str) -> list[int]:
    """Offsets of "secrets" (any case) in ``text``, in order."""
    if len(lowered) != len(text):  # a character whose lower case is longer: slow path
        return [match.start() for match in _SECRETS_RE.finditer(text)]
    hits: list[int] = []
    find = lowered.find
    position = find("secrets")
    while position >= 0:
        hits.append(position)
        position = find("secrets", position + 7)
    return hits


def _sites(root: YMapping, hits: list[int]) -> list[ExpressionSite]:
    found: list[ExpressionSite] = []
    count = len(hits)

    def mentions(node: YNode) -> bool:
        # (an alias's span is its anchored node's, which holds the same text)
        index = bisect_left(hits, node.start)
        return index < count and hits[index] <= node.end

    # Only subtrees whose source span holds "secrets" are entered.
    stack: list[tuple[str, YNode]] = [("", root)]
    while stack:
        anchor, node = stack.pop()
        if isinstance(node, YScalar):
            if _OPEN in node.value:
                job_id = _job_of(anchor)
                found.extend(
                    ExpressionSite(anchor, node, match, job_id)
                    for match in find_expressions(node.value)
                    if "secrets" in match.source.lower()
                )
        elif isinstance(node, YMapping):
            for key, value in reversed(node.items):
                if isinstance(key, YScalar) and mentions(value):
                    stack.append((f"{anchor}.{key.value}" if anchor else key.value, value))
        else:
            for position in range(len(node.items) - 1, -1, -1):
                item = node.items[position]
                if mentions(item):
                    stack.append((f"{anchor}[{position}]", item))
    return found


def _secret_uses(sites: tuple[ExpressionSite, ...]) -> list[SecretUse]:
    found: list[SecretUse] = []
    for site in sites:
        expr = site.match.expr
        if expr is None:
            continue
        for ref in references(expr):
            if ref.context != "secrets":
                continue
            name = ref.parts[1] if len(ref.parts) > 1 else ""
            if name == "github_token":
                continue
            start, end = site.match.span(ref.node)
            written = site.node.value[start:end]
            shown = written.split(".", 1)[1] if name not in ("", "*") and "." in written else name
            found.append(SecretUse(shown, site, start, end))
    return found


def _job_of(anchor: str) -> str | None:
    if not anchor.startswith("jobs."):
        return None
    rest = anchor[len("jobs.") :]
    # Job ids cannot contain "." or "[", so the id ends at the first of them.
    for index, char in enumerate(rest):
        if char in ".[":
            return rest[:index]
    return rest
