"""``if:`` conditions that do not guard what they seem to.

- ``unsound-condition``: text around ``${{ }}`` (a ``|`` block's trailing newline, or
  ``${{ a }} && ${{ b }}``) makes the value a non-empty string, which GitHub reads as true.
- ``unsound-contains``: ``contains('refs/heads/main refs/heads/dev', github.ref)`` is a
  substring test on a string, so ``refs/heads/m`` passes; an array (``fromJSON('[...]')``)
  is the membership test that was meant.
- ``bot-conditions``: ``github.actor == 'dependabot[bot]'`` names whoever caused the *latest*
  event, which an outsider can arrange to be the bot (a fork branch the bot updated); the
  pull request's author (``github.event.pull_request.user.login``) is what identifies a bot's
  pull request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from tollgate.audit.findings import Confidence, Finding, Persona, RuleInfo, Severity
from tollgate.audit.github import gates
from tollgate.audit.github.expressions import (
    Call,
    Compare,
    Condition,
    Expr,
    Literal,
    Logical,
    Not,
    children,
    flows,
    parse_condition,
    references,
)
from tollgate.audit.github.model import Action, Job, Step, Workflow
from tollgate.audit.github.rules.injection import tracker
from tollgate.audit.github.taint import PRIVILEGED_EVENTS, Control, worst
from tollgate.audit.github.tracker import JOB, STEP
from tollgate.audit.rules import AuditContext, FileRule, Rule, register
from tollgate.audit.source import YScalar

Model = Workflow | Action


@dataclass(frozen=True)
class IfSite:
    """One ``if:`` of a job or a step, read as GitHub reads it."""

    job: Job | None
    step: Step | None
    node: YScalar
    anchor: str
    condition: Condition


def if_sites(model: Model) -> Iterator[IfSite]:
    """Every ``if:`` of a workflow's jobs and steps, or of an action's steps."""
    if isinstance(model, Workflow):
        for job in model.jobs.values():
            if job.if_ is not None:
                yield IfSite(job, None, job.if_, f"{job.anchor}.if", parse_condition(job.if_.value))
            for step in job.all_steps():
                if step.if_ is not None:
                    yield _step_site(job, step, step.if_)
    else:
        for step in model.all_steps():
            if step.if_ is not None:
                yield _step_site(None, step, step.if_)


def _step_site(job: Job | None, step: Step, node: YScalar) -> IfSite:
    return IfSite(job, step, node, step.field_anchor("if"), parse_condition(node.value))


def _events(model: Model, job: Job | None) -> frozenset[str] | None:
    """The triggers that can run ``job`` (``None`` for an action: its caller decides)."""
    if not isinstance(model, Workflow):
        return None
    if job is None:
        return frozenset(model.triggers)
    return gates.job_events(model, job)


def _privileged(events: frozenset[str] | None) -> bool:
    return events is not None and bool(events & PRIVILEGED_EVENTS)


def _positive(expr: Expr) -> Iterator[Expr]:
    """The nodes of ``expr`` not under a ``!`` (a test that, when true, lets the job run)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Not):
            continue
        yield node
        stack.extend(reversed(children(node)))


# --- unsound-condition ----------------------------------------------------------------------


@register
class UnsoundCondition(Rule):
    info = RuleInfo(
        id="unsound-condition",
        name="Always-true condition",
        summary=(
            "Finds if: values with text around ${{ }} (a block scalar's trailing newline, "
            "${{ a }} && ${{ b }}), which GitHub evaluates as a non-empty string: always true."
        ),
        default_severity=Severity.MEDIUM,
        help_uri="docs/rules/unsound-condition.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        return self._check(workflow)

    def check_action(self, action: Action, context: AuditContext) -> Iterator[Finding]:
        return self._check(action)

    def _check(self, model: Model) -> Iterator[Finding]:
        for site in if_sites(model):
            if not site.condition.always_true or site.condition.error is not None:
                continue  # (an expression that does not parse makes GitHub reject the file)
            privileged = _privileged(_events(model, site.job))
            what = "step" if site.step is not None else "job"
            if site.node.is_block and len(site.condition.matches) == 1:
                why = (
                    f"the `{site.node.style}` block keeps a line break after `${{{{ }}}}`, so "
                    "GitHub reads the value as a non-empty string"
                )
                fix = "write it on one line, or use `>-` to drop the line break"
            else:
                why = "text outside `${{ }}` makes the value a non-empty string"
                fix = "write the whole condition as one expression, with or without `${{ }}`"
            yield Finding(
                rule=self.info.id,
                severity=Severity.HIGH if privileged else Severity.MEDIUM,
                confidence=Confidence.HIGH,
                message=f"This `if:` is always true ({why}), so the {what} always runs: {fix}.",
                location=model.location(site.node),
                anchor=site.anchor,
                evidence=site.node.value.strip(),
            )


# --- unsound-contains -----------------------------------------------------------------------


@register
class UnsoundContains(FileRule):
    info = RuleInfo(
        id="unsound-contains",
        name="Substring test used as a membership test",
        summary=(
            "Finds contains('a b c', x) in conditions: on a string it tests for a substring, "
            "so a value such as a short branch name passes; use an array from fromJSON."
        ),
        default_severity=Severity.HIGH,
        help_uri="docs/rules/unsound-contains.md",
    )

    def check(self, model: Workflow | Action, context: AuditContext) -> Iterator[Finding]:
        for site in if_sites(model):
            expr = site.condition.expr
            if expr is None or "contains" not in site.node.value.lower():
                continue
            for node in _positive(expr):
                if not _is_string_contains(node):
                    continue
                assert isinstance(node, Call)
                finding = self._finding(model, context, site, node)
                if finding is not None and finding.persona.rank <= context.persona.rank:
                    yield finding

    def _finding(
        self, model: Model, context: AuditContext, site: IfSite, call: Call
    ) -> Finding | None:
        haystack, needle = call.args
        assert isinstance(haystack, Literal) and isinstance(haystack.value, str)
        level = STEP if site.step is not None else JOB
        found = tracker(model, context)
        refs = flows(needle)
        taint = worst(found.reference(ref, site.job, site.step, level) for ref in refs)
        shown = ", ".join(dict.fromkeys(ref.path for ref in refs)) or "the value"
        if taint.control is Control.ATTACKER:
            severity, confidence, persona = Severity.HIGH, Confidence.HIGH, Persona.REGULAR
            who = f"which {taint.who} sets"
        elif taint.control is Control.WRITER:
            severity, confidence, persona = Severity.MEDIUM, Confidence.HIGH, Persona.REGULAR
            who = f"which {taint.who} sets"
        elif taint.control is Control.UNKNOWN:
            severity, confidence, persona = Severity.LOW, Confidence.MEDIUM, Persona.PEDANTIC
            who = "whose origin this file does not show"
        else:
            severity, confidence, persona = Severity.LOW, Confidence.LOW, Persona.AUDITOR
            who = "which GitHub sets, so only a coincidence would pass"
        items = [part for part in haystack.value.replace(",", " ").split() if part]
        array = json.dumps(items).replace("'", "''")
        text = site.node.value[site.condition.span(call)[0] : site.condition.span(call)[1]]
        return Finding(
            rule=self.info.id,
            severity=severity,
            confidence=confidence,
            message=(
                f"`{text}` passes when {shown} ({who}) is any substring of "
                f"'{haystack.value}', not only one of its words: test membership with "
                f"`contains(fromJSON('{array}'), {site.node.value[_span(site, needle)]})`."
            ),
            location=model.location(site.node, *site.condition.span(call)),
            anchor=site.anchor,
            persona=persona,
            evidence=text,
            related=found.locations(taint),
        )


def _is_string_contains(node: Expr) -> bool:
    """``contains('literal text', <not a literal>)``."""
    if not isinstance(node, Call) or node.name != "contains" or len(node.args) != 2:
        return False
    haystack, needle = node.args
    return (
        isinstance(haystack, Literal)
        and isinstance(haystack.value, str)
        and not isinstance(needle, Literal)
        and bool(references(needle))
    )


def _span(site: IfSite, node: Expr) -> slice:
    start, end = site.condition.span(node)
    return slice(start, end)


# --- bot-conditions -------------------------------------------------------------------------

# Events where the actor can be a bot while the change comes from someone else: a fork's
# branch the bot pushed to (pull_request_target), a run the bot's push started (workflow_run).
_SPOOFABLE_EVENTS = frozenset(("pull_request_target", "workflow_run"))
_ACTOR_PATHS = frozenset(("github.actor", "github.triggering_actor", "github.event.sender.login"))
# Tests that pin the pull request itself to the bot (or to this repository): with one of
# them in the same `&&`, a spoofed actor gets nowhere.
_AUTHOR_PATHS = frozenset(
    (
        "github.event.pull_request.user.login",
        "github.event.issue.user.login",
        "github.event.pull_request.head.repo.full_name",
        "github.event.pull_request.head.repo.fork",
        "github.event.workflow_run.head_repository.full_name",
    )
)


@register
class BotConditions(FileRule):
    info = RuleInfo(
        id="bot-conditions",
        name="Spoofable bot check",
        summary=(
            "Finds github.actor == 'dependabot[bot]'-style checks in workflows outsiders "
            "can trigger: the actor is whoever caused the latest event, which an attacker can "
            "arrange to be the bot; check the pull request's author instead."
        ),
        default_severity=Severity.HIGH,
        help_uri="docs/rules/bot-conditions.md",
    )

    def check(self, model: Workflow | Action, context: AuditContext) -> Iterator[Finding]:
        for site in if_sites(model):
            expr = site.condition.expr
            if expr is None or "bot" not in site.node.value.lower():
                continue
            events = _events(model, site.job)
            if events is None:
                severity, confidence, persona = Severity.MEDIUM, Confidence.LOW, Persona.PEDANTIC
            elif _privileged(events) and events & _SPOOFABLE_EVENTS:
                severity, confidence, persona = Severity.HIGH, Confidence.HIGH, Persona.REGULAR
            elif _privileged(events):
                # On comments and issues the actor is their author; only a bot's own
                # activity (that an outsider may provoke) makes it the bot.
                severity, confidence, persona = Severity.MEDIUM, Confidence.MEDIUM, Persona.REGULAR
            elif "workflow_call" in events:
                severity, confidence, persona = Severity.MEDIUM, Confidence.MEDIUM, Persona.REGULAR
            else:
                severity, confidence, persona = Severity.LOW, Confidence.LOW, Persona.PEDANTIC
            if persona.rank > context.persona.rank:
                continue
            for actor, bot in _bot_checks(expr, guarded=False):
                start, end = site.condition.span(actor)
                yield Finding(
                    rule=self.info.id,
                    severity=severity,
                    confidence=confidence,
                    message=(
                        f"`{site.node.value[start:end]}` names whoever caused the latest event, "
                        f"not the author of the change: an outsider can get {bot} to be that "
                        "actor (for example on a fork branch the bot updated). Check "
                        f"`github.event.pull_request.user.login == '{bot}'` instead."
                    ),
                    location=model.location(site.node, start, end),
                    anchor=site.anchor,
                    persona=persona,
                    evidence=f"{site.node.value[start:end]} {bot}",
                )


def _bot_checks(expr: Expr, guarded: bool) -> Iterator[tuple[Expr, str]]:
    """``(actor reference, bot name)`` of each positive actor test not guarded by an author
    test in the same ``&&``."""
    if isinstance(expr, Not):
        return  # `!(actor == bot)` keeps the bot out; it grants nothing
    if isinstance(expr, Logical):
        if expr.op == "&&":
            guarded = guarded or any(_pins_author(operand) for operand in expr.operands)
        for operand in expr.operands:
            yield from _bot_checks(operand, guarded)
        return
    if guarded:
        return
    found = _actor_test(expr)
    if found is not None:
        yield found
        return
    for child in children(expr):
        yield from _bot_checks(child, guarded)


def _actor_test(expr: Expr) -> tuple[Expr, str] | None:
    """``github.actor == 'x[bot]'`` (either side), ``startsWith/endsWith/contains(actor,
    '...bot...')`` or ``contains(fromJSON('[..bot..]'), actor)``."""
    if isinstance(expr, Compare) and expr.op == "==":
        for actor, other in ((expr.left, expr.right), (expr.right, expr.left)):
            bot = _bot_literal(other)
            if bot is not None and _is_actor(actor):
                return actor, bot
    if isinstance(expr, Call) and expr.name in ("contains", "startswith", "endswith"):
        if len(expr.args) == 2:
            first, second = expr.args
            if _is_actor(first) and (bot := _bot_literal(second)) is not None:
                return first, bot
            if expr.name == "contains" and _is_actor(second):
                bot = _bot_in_array(first)
                if bot is not None:
                    return second, bot
    return None


def _is_actor(expr: Expr) -> bool:
    refs = references(expr)
    return len(refs) == 1 and refs[0].node is expr and refs[0].path in _ACTOR_PATHS


def _bot_literal(expr: Expr) -> str | None:
    if isinstance(expr, Literal) and isinstance(expr.value, str):
        text = expr.value.lower()
        if "[bot]" in text or text.endswith("bot"):
            return expr.value
    return None


def _bot_in_array(expr: Expr) -> str | None:
    if isinstance(expr, Call) and expr.name == "fromjson" and len(expr.args) == 1:
        text = expr.args[0]
        if isinstance(text, Literal) and isinstance(text.value, str):
            try:
                items = json.loads(text.value)
            except ValueError:
                return None
            if isinstance(items, list):
                return next((i for i in items if isinstance(i, str) and "[bot]" in i), None)
    return None


def _pins_author(expr: Expr) -> bool:
    """True when ``expr`` tests the pull request's author or its repository."""
    if isinstance(expr, Logical) and expr.op == "&&":
        return any(_pins_author(operand) for operand in expr.operands)
    if isinstance(expr, (Compare, Call, Not)):
        return any(ref.path in _AUTHOR_PATHS for ref in references(expr))
    return False
