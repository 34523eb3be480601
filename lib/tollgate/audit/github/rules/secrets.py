"""How secrets reach jobs: ``secrets-inherit``, ``overprovisioned-secrets``,
``unredacted-secrets``, ``secrets-outside-env`` and ``secrets-in-untrusted-job``."""

from __future__ import annotations

from collections.abc import Iterator

from tollgate.audit.findings import Confidence, Finding, Persona, RuleInfo, Severity
from tollgate.audit.github.expressions import Call, flows, walk
from tollgate.audit.github.gates import describe, gated_confidence, job_gates
from tollgate.audit.github.model import Job, Step, Workflow
from tollgate.audit.github.rules._scan import (
    SecretUse,
    lowered_text,
    scan,
    whole_context_hint,
)
from tollgate.audit.github.rules._untrusted import (
    Execution,
    artifact_downloads,
    consumption_after,
    execution_after,
    pr_checkouts,
    privileged_jobs,
)
from tollgate.audit.rules import AuditContext, Rule, register


@register
class SecretsInherit(Rule):
    """``secrets: inherit`` hands every secret to a reusable workflow."""

    info = RuleInfo(
        id="secrets-inherit",
        name="Secrets inherited by a reusable workflow",
        summary="`secrets: inherit` passes every secret of the repository and organization to "
        "the called workflow instead of the few it needs.",
        default_severity=Severity.MEDIUM,
        help_uri="docs/rules/secrets-inherit.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        for job in workflow.jobs.values():
            if not job.secrets_inherit or job.secrets_node is None or job.uses is None:
                continue
            local = job.uses.is_local
            yield Finding(
                rule=self.info.id,
                severity=Severity.LOW if local else Severity.MEDIUM,
                confidence=Confidence.HIGH,
                message=(
                    f"Job {job.id} passes every secret to {job.uses.raw} with `secrets: "
                    "inherit`; list only the secrets it needs under `secrets:`."
                    + (" (It is this repository's own workflow, hence low.)" if local else "")
                ),
                location=workflow.location(job.secrets_node),
                anchor=f"{job.anchor}.secrets",
                persona=Persona.PEDANTIC if local else Persona.REGULAR,
                evidence=job.uses.raw,
            )


@register
class OverprovisionedSecrets(Rule):
    """``toJSON(secrets)`` or ``secrets[expr]`` makes GitHub send every secret to the runner."""

    info = RuleInfo(
        id="overprovisioned-secrets",
        name="Overprovisioned secrets",
        summary="An expression uses the whole secrets context (toJSON(secrets), secrets[...] "
        "with a computed name), so every secret is sent to the runner.",
        default_severity=Severity.MEDIUM,
        help_uri="docs/rules/overprovisioned-secrets.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        if not whole_context_hint(workflow):
            return
        for use in scan(workflow).secrets:
            if use.name not in ("", "*"):
                continue
            what = "the whole secrets context" if use.name == "" else "a computed secret name"
            yield Finding(
                rule=self.info.id,
                severity=Severity.MEDIUM,
                confidence=Confidence.HIGH,
                message=(
                    f"This expression uses {what} ({use.site.match.text.strip()}), so GitHub "
                    "sends every secret to the runner; name the secrets one by one "
                    "(secrets.NAME)."
                ),
                location=workflow.location(use.site.node, use.start, use.end),
                anchor=use.site.anchor,
                evidence=use.site.match.text,
            )


@register
class UnredactedSecrets(Rule):
    """``fromJSON(secrets.X)``: parts of a structured secret are not masked in logs."""

    info = RuleInfo(
        id="unredacted-secrets",
        name="Unredacted structured secrets",
        summary="fromJSON(secrets.X) extracts values that the log masking does not know, so they "
        "can appear in logs in clear.",
        default_severity=Severity.MEDIUM,
        help_uri="docs/rules/unredacted-secrets.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        if "fromjson" not in lowered_text(workflow):
            return
        for site in scan(workflow).sites:
            expr = site.match.expr
            if expr is None or "fromjson" not in site.match.source.lower():
                continue
            for node in walk(expr):
                if not (isinstance(node, Call) and node.name == "fromjson" and node.args):
                    continue
                names = [r.path for r in flows(node.args[0]) if r.context == "secrets"]
                if not names:
                    continue
                start, end = site.match.span(node)
                yield Finding(
                    rule=self.info.id,
                    severity=Severity.MEDIUM,
                    confidence=Confidence.HIGH,
                    message=(
                        f"fromJSON({names[0]}) takes values out of a JSON secret; only the "
                        "whole secret is masked in logs, not its parts. Store each value as "
                        "its own secret."
                    ),
                    location=workflow.location(site.node, start, end),
                    anchor=site.anchor,
                    evidence=site.node.value[start:end],
                )


@register
class SecretsOutsideEnv(Rule):
    """Secrets used by a job that has no ``environment:``."""

    info = RuleInfo(
        id="secrets-outside-env",
        name="Secrets outside an environment",
        summary="A job reads secrets without an environment, so no deployment protection rule "
        "(reviewers, branch restrictions) guards them.",
        default_severity=Severity.LOW,
        help_uri="docs/rules/secrets-outside-env.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        if context.persona is not Persona.AUDITOR:
            return  # every finding here is for auditors: spare the work
        for job in workflow.jobs.values():
            # A reusable-workflow call cannot have an environment: the callee's jobs can.
            if job.environment is not None or job.is_reusable_call:
                continue
            uses = _named(scan(workflow).job_secrets(job))
            if not uses:
                continue
            names = _names(uses)
            first = uses[0]
            yield Finding(
                rule=self.info.id,
                severity=Severity.LOW,
                confidence=Confidence.HIGH,
                message=(
                    f"Job {job.id} reads {names} without an `environment:`; move them into an "
                    "environment with protection rules so only approved runs can read them."
                ),
                # The whole scalar when it is one line (an `env:` value, a `with:` input):
                # as precise, and it spares computing line offsets for the whole file.
                location=(
                    workflow.location(first.site.node)
                    if first.site.node.line == first.site.node.end_line
                    else workflow.location(first.site.node, first.start, first.end)
                ),
                anchor=job.anchor,
                persona=Persona.AUDITOR,
                evidence=names,
            )


@register
class SecretsInUntrustedJob(Rule):
    """Secrets in a job that also runs a pull request's code."""

    info = RuleInfo(
        id="secrets-in-untrusted-job",
        name="Secrets in a job that runs untrusted code",
        summary="A privileged job runs pull-request code (or another run's artifacts) and also "
        "hands secrets to its steps, where that code can read them.",
        default_severity=Severity.HIGH,
        help_uri="docs/rules/secrets-in-untrusted-job.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        for job, events in privileged_jobs(workflow):
            uses = _named(scan(workflow).job_secrets(job))
            if not uses:
                continue
            found = _untrusted_code(workflow, job, events)
            if found is None:
                continue
            start, execution = found
            # Secrets in the job's or workflow's env, or in a step from the checkout on, are
            # in reach of that code; earlier steps only when they leave them behind (a
            # credentials file, $GITHUB_ENV).
            order = _positions(job)
            begin = order[start.anchor]
            exposed = [use for use in uses if _position(order, use) >= begin]
            shown = exposed or uses
            gates = job_gates(workflow, job, step=start, events=sorted(events))
            confidence = Confidence.HIGH if exposed else Confidence.MEDIUM
            first = shown[0]
            yield Finding(
                rule=self.info.id,
                severity=Severity.HIGH,
                confidence=gated_confidence(confidence, gates),
                message=(
                    f"Job {job.id} runs untrusted code ({execution.evidence}, line "
                    f"{workflow.location(execution.node).line}) and gives {_names(shown)} to "
                    "its steps, where that code can read them. Move the secret-using steps to a "
                    f"separate job that never runs the pull request's code.{describe(gates)}"
                ),
                location=workflow.location(first.site.node, first.start, first.end),
                anchor=job.anchor,
                evidence=_names(uses),
                related=(workflow.location(execution.node),),
            )


def _untrusted_code(
    workflow: Workflow, job: Job, events: frozenset[str]
) -> tuple[Step, Execution] | None:
    """The step that brings untrusted code in, and the step that runs it."""
    for checkout in pr_checkouts(workflow, job, events):
        execution = execution_after(workflow, job, checkout.step, checkout.path)
        if execution is not None:
            return checkout.step, execution
    for download in artifact_downloads(job):
        consumed = consumption_after(workflow, job, download)
        if consumed is not None:
            return download.step, consumed
    return None


def _positions(job: Job) -> dict[str, int]:
    """Step anchor -> its position in :meth:`Job.all_steps`."""
    return {step.anchor: position for position, step in enumerate(job.all_steps())}


def _position(order: dict[str, int], use: SecretUse) -> int:
    """Where the step holding ``use`` runs; job and workflow ``env:`` come first of all, and
    count as everywhere (``10**9``)."""
    anchor = use.site.anchor
    best = -1
    for step_anchor, position in order.items():
        if anchor.startswith((f"{step_anchor}.", f"{step_anchor}[")) and position > best:
            best = position  # the innermost (parallel members come after their group)
    return best if best >= 0 else 10**9


def _named(uses: tuple[SecretUse, ...]) -> list[SecretUse]:
    """Named secret uses (whole-context uses are overprovisioned-secrets' business), in
    document order."""
    named = [use for use in uses if use.name not in ("", "*")]
    return sorted(named, key=lambda use: use.site.node.start + use.start)


def _names(uses: list[SecretUse]) -> str:
    names = sorted(dict.fromkeys(f"secrets.{use.name}" for use in uses))
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
