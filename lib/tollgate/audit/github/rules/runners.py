"""``self-hosted-runner``: jobs on machines that outlive the job.

A self-hosted runner keeps its disk, its network position and often cloud credentials
between jobs. A fork's pull request that runs there (``pull_request``), or a
``pull_request_target`` job that ends up running the pull request's code, can persist on the
machine and attack every later job, including release jobs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import lru_cache

from tollgate.audit.findings import Confidence, Finding, Persona, RuleInfo, Severity
from tollgate.audit.github.expressions import Call, Expr, Literal, Logical
from tollgate.audit.github.gates import describe, gated_confidence, job_events, job_gates
from tollgate.audit.github.model import Job, Workflow, expressions
from tollgate.audit.github.rules._untrusted import execution_after, pr_checkouts
from tollgate.audit.rules import AuditContext, Rule, register
from tollgate.audit.source import YMapping, YNode, YScalar, YSequence

_GITHUB_HOSTED_RE = re.compile(
    r"(?:ubuntu|windows|macos)-(?:latest|slim|\d+(?:\.\d+)?)(?:-(?:arm|arm64|large|xlarge|intel|"
    r"vs\d+))*|windows-11-arm",
    re.IGNORECASE,
)
THIRD_PARTY_HOSTED = (
    "buildjet-",
    "depot-",
    "blacksmith-",
    "namespace-profile-",
    "nscloud-",
    "warp-",
    "ubicloud-",
    "cirrus-",
    "runs-on=",
    "runs-on/",
    "runner=",
)
"""Label prefixes of hosted runner services (fresh virtual machines per job); RunsOn's
labels (`runs-on`, `runner=...`) start machines in the user's cloud, also one per job."""
_FORK_EVENTS = frozenset(("pull_request", "pull_request_target"))
_OPEN = "${{"
_MATRIX_RE = re.compile(r"^matrix\.([\w-]+)$")


@register
class SelfHostedRunner(Rule):
    """A job runs on a self-hosted (or unknown, non-GitHub-hosted) runner."""

    info = RuleInfo(
        id="self-hosted-runner",
        name="Self-hosted runner",
        summary="Jobs on self-hosted runners keep state between jobs; high when fork pull "
        "requests can run there.",
        default_severity=Severity.LOW,
        help_uri="docs/rules/self-hosted-runner.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        if context.persona is not Persona.AUDITOR and not workflow.has_trigger(*_FORK_EVENTS):
            return  # only auditors hear about runners that pull requests cannot reach
        for job in workflow.jobs.values():
            if job.runs_on is None:
                continue
            kind, labels = _classify(job, job.runs_on)
            if kind is None:
                continue
            finding = self._grade(workflow, job, kind, labels)
            if finding is not None:
                yield finding

    def _grade(self, workflow: Workflow, job: Job, kind: str, labels: str) -> Finding | None:
        assert job.runs_on is not None
        forks = []
        if workflow.has_trigger(*_FORK_EVENTS):
            forks = sorted(job_events(workflow, job) & _FORK_EVENTS)
        gates = job_gates(workflow, job, events=forks) if forks else ()
        if kind == "hosted-service":
            severity, confidence, persona = Severity.INFO, Confidence.MEDIUM, Persona.AUDITOR
            what = (
                f"Job {job.id} runs on a third-party hosted runner ({labels}); check that the "
                "service gives each job a fresh machine."
            )
        elif kind == "self-hosted" and forks:
            severity, persona = Severity.HIGH, Persona.REGULAR
            runs_pr_code = "pull_request" in forks or _runs_pr_code(workflow, job)
            confidence = Confidence.HIGH if runs_pr_code else Confidence.MEDIUM
            what = (
                f"Job {job.id} runs on a self-hosted runner ({labels}) and {' / '.join(forks)} "
                "lets fork pull requests reach it: their code can persist on the machine and "
                "attack later jobs. Use GitHub-hosted or ephemeral runners for pull requests, "
                "or restrict the job to same-repository branches."
            )
        elif kind == "self-hosted":
            severity, confidence, persona = Severity.LOW, Confidence.HIGH, Persona.AUDITOR
            what = (
                f"Job {job.id} runs on a self-hosted runner ({labels}); make sure it is "
                "ephemeral or isolated, and never used by pull-request workflows."
            )
        else:
            severity = Severity.MEDIUM if forks else Severity.LOW
            confidence, persona = Confidence.LOW, Persona.AUDITOR
            reach = f", and {' / '.join(forks)} lets fork pull requests reach it" if forks else ""
            what = (
                f"Job {job.id} runs on {labels}, which is not a GitHub-hosted label: it may be "
                f"a self-hosted runner{reach}. Check where it runs."
            )
        return Finding(
            rule=self.info.id,
            severity=severity,
            confidence=gated_confidence(confidence, gates),
            message=what + describe(gates),
            location=workflow.location(job.node.key_node("runs-on") or job.runs_on),
            anchor=f"{job.anchor}.runs-on",
            persona=persona,
            evidence=labels,
            related=tuple(gate.location for gate in gates),
        )


@lru_cache(maxsize=1024)
def _github_hosted(label: str) -> bool:
    return _GITHUB_HOSTED_RE.fullmatch(label) is not None


def _runs_pr_code(workflow: Workflow, job: Job) -> bool:
    events = frozenset(("pull_request_target",))
    return any(
        execution_after(workflow, job, c.step, c.path) is not None
        for c in pr_checkouts(workflow, job, events)
    )


LabelSet = tuple[str, ...]
"""The labels of one runner: a job runs on a machine that has all of them."""


def _classify(job: Job, node: YNode) -> tuple[str | None, str]:
    """``(kind, labels)``: kind is ``self-hosted``, ``unknown`` (not a GitHub-hosted label,
    or a runner group), ``hosted-service`` or ``None`` (GitHub-hosted, or cannot tell)."""
    if isinstance(node, YScalar) and _OPEN not in node.value:
        label = node.value.strip()
        if _github_hosted(label):
            return None, label  # the common case: `runs-on: ubuntu-latest`
    group = False
    if isinstance(node, YMapping):
        group = node.get("group") is not None
        sets = _label_sets(job, node.get("labels"))
        if group and not sets:
            sets = [(f"group {_text(node.get('group'))}",)]
    else:
        sets = _label_sets(job, node)
    if not sets:
        return None, ""
    shown = ", ".join(dict.fromkeys(label for labels in sets for label in labels))
    # The worst runner decides: an expression or a matrix may pick any of them.
    kinds = {_set_kind(labels) for labels in sets}
    if group:
        kinds.add("unknown")
    for kind in ("self-hosted", "unknown", "hosted-service"):
        if kind in kinds:
            return kind, shown
    return None, shown


def _set_kind(labels: LabelSet) -> str | None:
    lowered = [label.lower() for label in labels]
    if "self-hosted" in lowered:
        return "self-hosted"
    if any(label.startswith(THIRD_PARTY_HOSTED) or label == "runs-on" for label in lowered):
        return "hosted-service"
    return None if all(_github_hosted(label) for label in labels) else "unknown"


def _label_sets(job: Job, node: YNode | None) -> list[LabelSet]:
    """The runners a ``runs-on`` value may name: one per value of an expression or matrix
    entry; the items of a list are the labels of one runner."""
    if isinstance(node, YScalar):
        return _alternatives(job, node)
    if isinstance(node, YSequence):
        labels = [
            label
            for item in node.items
            if isinstance(item, YScalar)
            for labels in _alternatives(job, item)
            for label in labels
        ]
        return [tuple(labels)] if labels else []
    return []


def _alternatives(job: Job, item: YScalar) -> list[LabelSet]:
    """What one scalar may stand for: its text, or each value of its one expression
    (``${{ matrix.os }}``, ``c && 'a' || 'b'``, ``macos-${{ matrix.version }}``)."""
    matches = expressions(item)
    if not matches:
        return [] if item.is_null else [(item.value.strip(),)]
    match = matches[0]
    if len(matches) != 1 or match.expr is None:
        return []  # several expressions in one label: cannot tell
    text = item.value
    before, after = text[: match.start].strip(), text[match.end :].strip()
    matrix = _MATRIX_RE.match(match.source.strip())
    values = _matrix_values(job, matrix.group(1)) if matrix else _values(match.expr)
    found: list[LabelSet] = []
    for labels in values:
        if len(labels) == 1:
            labels = (f"{before}{labels[0]}{after}",)
        labels = tuple(label for label in labels if label and _OPEN not in label)
        if labels:
            found.append(labels)
    return found


def _values(expr: Expr) -> list[LabelSet]:
    """The values an expression can take (``c && 'a' || 'b'``: a, b; a JSON list: one set)."""
    if isinstance(expr, Literal):
        return [(expr.value,)] if isinstance(expr.value, str) else []
    if isinstance(expr, Logical):
        operands = expr.operands if expr.op == "||" else expr.operands[-1:]
        return [value for operand in operands for value in _values(operand)]
    if isinstance(expr, Call) and expr.name == "fromjson" and len(expr.args) == 1:
        text = expr.args[0]
        if isinstance(text, Literal) and isinstance(text.value, str):
            try:
                value = json.loads(text.value)
            except ValueError:
                return []
            items = value if isinstance(value, list) else [value]
            labels = tuple(item for item in items if isinstance(item, str))
            return [labels] if labels else []
    return []


def _matrix_values(job: Job, key: str) -> list[LabelSet]:
    matrix = job.matrix
    if not isinstance(matrix, YMapping):
        return []
    values: list[LabelSet] = []
    values.extend(_matrix_entries(matrix.get(key)))
    for entry in _entries(matrix.get("include")):
        # An `include:` entry is one combination: a list there is one runner's labels.
        value = entry.get(key)
        if isinstance(value, YSequence):
            labels = tuple(i.value for i in value.items if isinstance(i, YScalar))
            values.extend([labels] if labels else [])
        else:
            values.extend(_matrix_entries(value))
    return values


def _entries(node: YNode | None) -> list[YMapping]:
    if isinstance(node, YSequence):
        return [item for item in node.items if isinstance(item, YMapping)]
    return []


def _matrix_entries(node: YNode | None) -> list[LabelSet]:
    """A matrix value: one label, a list of values, or (a list inside) one runner's labels."""
    if isinstance(node, YScalar):
        return [] if node.is_null else [(node.value,)]
    if isinstance(node, YSequence):
        found: list[LabelSet] = []
        for item in node.items:
            if isinstance(item, YScalar) and not item.is_null:
                found.append((item.value,))
            elif isinstance(item, YSequence):
                labels = tuple(i.value for i in item.items if isinstance(i, YScalar))
                if labels:
                    found.append(labels)
        return found
    return []


def _text(node: YNode | None) -> str:
    return node.value if isinstance(node, YScalar) else "?"
