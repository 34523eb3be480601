"""Privileged triggers: ``dangerous-triggers``, ``untrusted-checkout`` ("pwn request") and
``artifact-poisoning``.

``pull_request_target``, ``workflow_run`` and ``issue_comment`` run with the base
repository's secrets and (by default) a writable token, at a time an outsider chooses. The
trigger alone is only an attack surface; what makes it exploitable is a job that then checks
out and runs the pull request's code, or consumes the artifacts of the run that triggered it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tollgate.audit.findings import Confidence, Finding, Location, Persona, RuleInfo, Severity
from tollgate.audit.github.gates import Gate, describe, gated_confidence, job_events, job_gates
from tollgate.audit.github.model import Job, Workflow
from tollgate.audit.github.rules._scan import effective_permissions, scan
from tollgate.audit.github.rules._untrusted import (
    artifact_downloads,
    consumption_after,
    execution_after,
    outside_workspace,
    pr_checkouts,
    privileged_jobs,
)
from tollgate.audit.rules import AuditContext, Rule, register

_WHY: dict[str, str] = {
    "pull_request_target": "runs with this repository's secrets and token for any fork's "
    "pull request",
    "workflow_run": "runs with this repository's secrets and token after another workflow, "
    "which a fork's pull request may have started",
    "issue_comment": "runs with this repository's secrets and token whenever anyone comments",
    "issues": "runs with this repository's secrets and token whenever anyone opens or edits "
    "an issue",
    "discussion": "runs with this repository's secrets and token for anyone's discussion",
    "discussion_comment": "runs with this repository's secrets and token whenever anyone "
    "comments on a discussion",
    "pull_request_review": "runs with this repository's secrets and token for reviews of "
    "same-repository pull requests, which anyone may write",
    "pull_request_review_comment": "runs with this repository's secrets and token for review "
    "comments on same-repository pull requests, which anyone may write",
}
# Events that carry no code: only reported when the jobs hold secrets or a write token.
_MINOR = frozenset(
    (
        "issues",
        "discussion",
        "discussion_comment",
        "pull_request_review",
        "pull_request_review_comment",
    )
)
_CODE_EVENTS = frozenset(("pull_request_target", "workflow_run"))

TRIAGE_ACTIONS = frozenset(
    (
        "actions/labeler",
        "actions/first-interaction",
        "actions/stale",
        "actions/add-to-project",
        "actions-ecosystem/action-add-labels",
        "actions-ecosystem/action-remove-labels",
        "andymckay/labeler",
        "github/issue-labeler",
        "srvaroa/labeler",
        "timonvs/pr-labeler-action",
        "kentaro-m/auto-assign-action",
        "peter-evans/create-or-update-comment",
        "marocchino/sticky-pull-request-comment",
        "thollander/actions-comment-pull-request",
        "mshick/add-pr-comment",
        "dessant/lock-threads",
        "dessant/label-actions",
    )
)
"""Actions that only label, comment, assign or close: they read the event, never PR code."""


@dataclass(frozen=True)
class _Grade:
    severity: Severity
    confidence: Confidence
    persona: Persona
    reason: str
    culprits: tuple[Job, ...]
    """The jobs that make it this bad (their gates lower the confidence)."""
    related: tuple[Location, ...] = ()


@register
class DangerousTriggers(Rule):
    """``pull_request_target``, ``workflow_run``, ``issue_comment`` and friends, graded by what
    the workflow does with the privileges they bring."""

    info = RuleInfo(
        id="dangerous-triggers",
        name="Dangerous triggers",
        summary="Triggers that run with secrets and a writable token at an outsider's request, "
        "graded by what the jobs then do (run PR code, use secrets, write, or only label).",
        default_severity=Severity.HIGH,
        help_uri="docs/rules/dangerous-triggers.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        graded: list[tuple[str, _Grade]] = []
        for event in workflow.triggers:
            if event in _WHY:
                grade = self._grade(workflow, event)
                if grade is not None:
                    graded.append((event, grade))
        if not graded:
            return
        event, grade = max(graded, key=lambda item: _rank(item[1]))
        gates = _common_gates(workflow, grade.culprits, (event,))
        others = [e for e, _ in graded if e != event]
        also = f" (also: {', '.join(others)})" if others else ""
        trigger = workflow.triggers[event]
        yield Finding(
            rule=self.info.id,
            severity=grade.severity,
            confidence=gated_confidence(grade.confidence, gates),
            message=f"{event}{also} {_WHY[event]}, and {grade.reason}.{describe(gates)}",
            location=workflow.location(trigger.node),
            anchor=f"on.{event}",
            persona=grade.persona,
            evidence=event,
            related=grade.related + tuple(gate.location for gate in gates),
        )

    def _grade(self, workflow: Workflow, event: str) -> _Grade | None:
        jobs = [job for job in workflow.jobs.values() if event in job_events(workflow, job)]
        if not jobs:
            return None
        events = frozenset((event,))
        # Pull-request code in a privileged job: the pwn request.
        runs: list[Job] = []
        checks_out: list[Job] = []
        related: list[Location] = []
        for job in jobs:
            for checkout in pr_checkouts(workflow, job, events):
                related.append(workflow.location(checkout.node))
                execution = execution_after(workflow, job, checkout.step, checkout.path)
                (runs if execution is not None else checks_out).append(job)
            if event == "workflow_run":
                for download in artifact_downloads(job):
                    related.append(workflow.location(download.node))
                    consumed = consumption_after(workflow, job, download)
                    if consumed is not None:
                        runs.append(job)
                    elif not outside_workspace(download.path):
                        checks_out.append(job)
        if runs:
            return _Grade(
                Severity.HIGH,
                Confidence.HIGH,
                Persona.REGULAR,
                f"job {_names(runs)} runs the pull request's code (see untrusted-checkout and "
                "artifact-poisoning); use `pull_request` for untrusted code",
                tuple(runs),
                tuple(related),
            )
        if checks_out:
            return _Grade(
                Severity.HIGH,
                Confidence.MEDIUM,
                Persona.REGULAR,
                f"job {_names(checks_out)} puts the pull request's files on the runner; make "
                "sure nothing ever runs them, or use `pull_request`",
                tuple(checks_out),
                tuple(related),
            )
        secret_jobs = [job for job in jobs if _uses_secrets(workflow, job)]
        if not secret_jobs and all(_triage_only(job) for job in jobs):
            return _Grade(
                Severity.INFO,
                Confidence.HIGH,
                Persona.AUDITOR,
                "its jobs only label or comment with known actions, without secrets; keep it "
                "that way",
                tuple(jobs),
            )
        write_jobs = [job for job in jobs if effective_permissions(workflow, job).writable()]
        chosen = {job.id for job in secret_jobs + write_jobs}
        privileged = [job for job in jobs if job.id in chosen]
        if privileged:
            what = _privileges(workflow, secret_jobs, write_jobs)
            severity, persona = Severity.MEDIUM, Persona.REGULAR
            if event in _CODE_EVENTS:
                severity = Severity.HIGH
            elif event in _MINOR and not secret_jobs:
                # Triage bots need `issues: write`; the risk is injection, reported where
                # the event's text is used.
                severity, persona = Severity.LOW, Persona.PEDANTIC
            return _Grade(
                severity,
                Confidence.MEDIUM,
                persona,
                f"job {_names(privileged)} {what}; never check out or evaluate content from "
                "the event in these jobs, or move the privileged part to a separate job",
                tuple(privileged),
            )
        default = [job for job in jobs if effective_permissions(workflow, job).is_absent]
        if default:
            persona = Persona.AUDITOR if event in _MINOR else Persona.REGULAR
            severity = Severity.LOW if event in _MINOR else Severity.MEDIUM
            return _Grade(
                severity,
                Confidence.LOW,
                persona,
                f"job {_names(default)} has no `permissions:`, so its token may be writable "
                "(the repository default); declare the least it needs",
                tuple(default),
            )
        if event in _MINOR:
            return None
        return _Grade(
            Severity.LOW,
            Confidence.HIGH,
            Persona.AUDITOR,
            "its jobs have a read-only token and no secrets; keep it that way",
            tuple(jobs),
        )


@register
class UntrustedCheckout(Rule):
    """A privileged job checks out the pull request's code and then runs it ("pwn request")."""

    info = RuleInfo(
        id="untrusted-checkout",
        name="Untrusted checkout in a privileged workflow",
        summary="A pull_request_target, workflow_run or issue_comment job checks out the pull "
        "request's code and then builds, installs or tests it with the base repository's "
        "secrets and token.",
        default_severity=Severity.CRITICAL,
        help_uri="docs/rules/untrusted-checkout.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        for job, events in privileged_jobs(workflow):
            for checkout in pr_checkouts(workflow, job, events):
                execution = execution_after(workflow, job, checkout.step, checkout.path)
                gates = job_gates(workflow, job, step=checkout.step, events=sorted(events))
                triggers = tuple(
                    workflow.location(workflow.triggers[e].node) for e in sorted(checkout.events)
                )
                where = f"line {workflow.location(checkout.node).line}"
                if execution is not None:
                    # Without secrets or a writable token the code can still poison the
                    # default branch's caches and read what the job reads: high, not critical.
                    armed = _uses_secrets(workflow, job) or _may_write(workflow, job)
                    severity = Severity.CRITICAL if armed else Severity.HIGH
                    confidence = Confidence.HIGH if checkout.certain else Confidence.MEDIUM
                    held = (
                        "this repository's secrets and token"
                        if armed
                        else "a read-only token, in the default branch's cache scope"
                    )
                    message = (
                        f"Job {job.id} checks out pull-request code ({checkout.evidence}, "
                        f"{where}) under {_list(checkout.events)} and runs it here "
                        f"({execution.evidence}): the PR's author runs code with {held}. Run "
                        "it in a `pull_request` workflow instead, or never execute the checkout."
                    )
                    location = workflow.location(execution.node)
                    anchor = execution.anchor
                else:
                    severity = Severity.HIGH
                    confidence = Confidence.MEDIUM if checkout.certain else Confidence.LOW
                    message = (
                        f"Job {job.id} checks out pull-request code ({checkout.evidence}) under "
                        f"{_list(checkout.events)}; no step was seen running it, but any "
                        "build, install, test or local action added later would. Prefer "
                        "`pull_request`, or check out the base and read the PR through the API."
                    )
                    location = workflow.location(checkout.node)
                    anchor = checkout.anchor
                yield Finding(
                    rule=self.info.id,
                    severity=severity,
                    confidence=gated_confidence(confidence, gates),
                    message=message + describe(gates),
                    location=location,
                    anchor=anchor,
                    evidence=checkout.evidence,
                    related=(*triggers, workflow.location(checkout.node)),
                )


@register
class ArtifactPoisoning(Rule):
    """A ``workflow_run`` job uses the artifacts of the run that triggered it, which a fork's
    pull request may have produced."""

    info = RuleInfo(
        id="artifact-poisoning",
        name="Artifact poisoning",
        summary="A workflow_run (or other privileged) job downloads another run's artifacts "
        "into its workspace or runs them, so a fork's pull request can plant files that run "
        "with secrets.",
        default_severity=Severity.HIGH,
        help_uri="docs/rules/artifact-poisoning.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        for job, events in privileged_jobs(workflow):
            for download in artifact_downloads(job):
                consumed = consumption_after(workflow, job, download)
                inside = not outside_workspace(download.path)
                if consumed is None and not inside:
                    continue
                gates = job_gates(workflow, job, step=download.step, events=sorted(events))
                triggers = tuple(
                    workflow.location(workflow.triggers[e].node) for e in sorted(events)
                )
                fix = (
                    "Download to a directory outside the workspace (${{ runner.temp }}), treat "
                    "the files as data, validate them, and never run, source or append them "
                    "to $GITHUB_ENV."
                )
                if consumed is not None:
                    yield Finding(
                        rule=self.info.id,
                        severity=Severity.HIGH,
                        confidence=gated_confidence(Confidence.HIGH, gates),
                        message=(
                            f"Job {job.id} downloads artifacts of another run ({download.evidence}"
                            f", line {workflow.location(download.node).line}) and then uses "
                            f"them here ({consumed.evidence}): a fork's pull request can plant "
                            f"code that runs with this job's secrets. {fix}{describe(gates)}"
                        ),
                        location=workflow.location(consumed.node),
                        anchor=consumed.anchor,
                        evidence=download.evidence,
                        related=(*triggers, workflow.location(download.node)),
                    )
                else:
                    yield Finding(
                        rule=self.info.id,
                        severity=Severity.LOW,
                        confidence=gated_confidence(Confidence.MEDIUM, gates),
                        message=(
                            f"Job {job.id} downloads artifacts of another run "
                            f"({download.evidence}) into the workspace, where they can "
                            f"overwrite checked-out files; nothing was seen running them. {fix}"
                            f"{describe(gates)}"
                        ),
                        location=workflow.location(download.node),
                        anchor=download.anchor,
                        persona=Persona.PEDANTIC,
                        evidence=download.evidence,
                        related=triggers,
                    )


# --- Helpers ----------------------------------------------------------------------------------


def _rank(grade: _Grade) -> tuple[int, int]:
    return grade.severity.rank, grade.confidence.rank


def _common_gates(workflow: Workflow, jobs: Sequence[Job], events: Sequence[str]) -> list[Gate]:
    """Gates in front of every job in ``jobs`` (none when one of them is ungated); the
    weakest job's gates are the ones that count."""
    per_job = [job_gates(workflow, job, events=events) for job in jobs]
    if not per_job or not all(per_job):
        return []
    weak = [gates for gates in per_job if not any(gate.strong for gate in gates)]
    return list(weak[0] if weak else per_job[0])


def _uses_secrets(workflow: Workflow, job: Job) -> bool:
    return bool(job.secrets_inherit or job.secrets or scan(workflow).job_secrets(job))


def _may_write(workflow: Workflow, job: Job) -> bool:
    """True unless the job's token is known to be read-only (absent: the default may write)."""
    permissions = effective_permissions(workflow, job)
    return permissions.is_absent or permissions.kind == "invalid" or bool(permissions.writable())


def _privileges(workflow: Workflow, secret_jobs: list[Job], write_jobs: list[Job]) -> str:
    parts = []
    if secret_jobs:
        names = sorted(
            {use.name for job in secret_jobs for use in scan(workflow).job_secrets(job)}
            | ({"(inherited)"} if any(job.secrets_inherit for job in secret_jobs) else set())
        )
        parts.append(f"uses secrets ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})")
    if write_jobs:
        scopes = {s for job in write_jobs for s in effective_permissions(workflow, job).writable()}
        if scopes - {"id-token"}:
            parts.append(f"has write access ({', '.join(sorted(scopes - {'id-token'}))})")
        if "id-token" in scopes:
            parts.append("can request OIDC tokens (id-token: write)")
    return " and ".join(parts)


def _triage_only(job: Job) -> bool:
    if job.is_reusable_call or not job.steps:
        return False
    return all(
        step.run is None and step.uses is not None and step.uses.slug in TRIAGE_ACTIONS
        for step in job.all_steps()
    )


def _names(jobs: Sequence[Job]) -> str:
    ids = list(dict.fromkeys(job.id for job in jobs))
    return ", ".join(ids[:3]) + (f" (and {len(ids) - 3} more)" if len(ids) > 3 else "")


def _list(events: frozenset[str]) -> str:
    return " / ".join(sorted(events))
