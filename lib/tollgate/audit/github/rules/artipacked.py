"""``artipacked``: ``actions/checkout`` leaves the job token on disk.

By default the checkout keeps the token in ``.git/config`` (from v6, in a file under
``$RUNNER_TEMP`` that ``.git/config`` includes), so later steps can read it. That matters
when the job uploads its workspace as an artifact (anyone who can read the run's artifacts,
on a public repository everyone, then holds a live token until the job ends), or when an
outsider's code or text reaches the job (privileged triggers). Elsewhere it is hygiene.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from tollgate.audit.findings import Confidence, Finding, Location, Persona, RuleInfo, Severity
from tollgate.audit.github.gates import job_events
from tollgate.audit.github.model import Action, Job, Step, Uses, Workflow
from tollgate.audit.github.rules._scan import effective_permissions, lowered_text
from tollgate.audit.github.rules._untrusted import (
    PRIVILEGED_EVENTS,
    execution_after,
    pr_checkouts,
)
from tollgate.audit.rules import AuditContext, Rule, register

_VERSION_RE = re.compile(r"v?(\d+)(?:\.(\d+))?(?:\.\d+)*")
_COMMENT_VERSION_RE = re.compile(r"#\s*(?:tag[:=]\s*)?v?(\d+)(?:\.(\d+))?")
_WHOLE_TREE = frozenset(
    (".", "./", "..", "../", "*", "**", "**/*", "./**", ".git", ".git/", "./.git")
)
# Steps that need the persisted credential: it is kept on purpose there.
_PUSHES_RE = re.compile(r"\bgit\s+(?:-C\s+\S+\s+)?push\b")
_PUSH_ACTIONS = frozenset(
    (
        "peter-evans/create-pull-request",
        "stefanzweifel/git-auto-commit-action",
        "endbug/add-and-commit",
        "ad-m/github-push-action",
        "changesets/action",
        "googleapis/release-please-action",
    )
)


@register
class Artipacked(Rule):
    """A checkout keeps its token on disk where an artifact or untrusted code can take it."""

    info = RuleInfo(
        id="artipacked",
        name="Persisted checkout credentials",
        summary="actions/checkout without persist-credentials: false leaves the token on disk; "
        "high when the job then uploads the workspace or runs in a privileged trigger.",
        default_severity=Severity.LOW,
        help_uri="docs/rules/artipacked.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        privileged = workflow.has_trigger(*PRIVILEGED_EVENTS)
        uploads = "upload-artifact" in lowered_text(workflow)
        for job in workflow.jobs.values():
            if not job.steps:
                continue
            events: frozenset[str] = frozenset()
            if privileged:
                events = job_events(workflow, job) & frozenset(PRIVILEGED_EVENTS)
            if not events and context.persona is Persona.REGULAR and not uploads:
                continue  # what is left is pedantic or auditor
            yield from self._steps(workflow, list(job.all_steps()), job, events)

    def check_action(self, action: Action, context: AuditContext) -> Iterator[Finding]:
        yield from self._steps(action, list(action.all_steps()), None, frozenset())

    def _steps(
        self,
        file: Workflow | Action,
        steps: Sequence[Step],
        job: Job | None,
        events: frozenset[str],
    ) -> Iterator[Finding]:
        for index, step in enumerate(steps):
            uses = step.uses
            if uses is None or uses.slug != "actions/checkout":
                continue
            persist = step.with_.get("persist-credentials")
            value = persist.value.strip().lower() if persist is not None else ""
            if value == "false":
                continue
            later = steps[index + 1 :]
            finding = self._grade(file, step, uses, later, job, events, explicit=value == "true")
            if finding is not None:
                yield finding

    def _grade(
        self,
        file: Workflow | Action,
        step: Step,
        uses: Uses,
        later: Sequence[Step],
        job: Job | None,
        events: frozenset[str],
        *,
        explicit: bool,
    ) -> Finding | None:
        major = _major(file, uses)
        v6 = major is not None and major >= 6
        upload = None if v6 else _workspace_upload(step, later)
        location = file.location(uses.node)
        if upload is not None:
            upload_step, certain = upload
            return self._finding(
                step,
                location,
                Severity.HIGH,
                Confidence.HIGH if certain else Confidence.MEDIUM,
                Persona.REGULAR,
                f"This checkout keeps the job token in .git/config and step "
                f"{upload_step.label!r} uploads the workspace with it: anyone who can download "
                "the artifact gets a live token. Set `persist-credentials: false`, and upload "
                "only the files you need.",
                (file.location(upload_step.node),),
            )
        if job is not None and events and isinstance(file, Workflow):
            return self._privileged(file, step, location, job, events)
        if explicit or _needs_credential(later):
            return None  # kept on purpose: a later step pushes or fetches
        return self._finding(
            step,
            location,
            Severity.INFO if v6 else Severity.LOW,
            Confidence.MEDIUM,
            Persona.AUDITOR if v6 else Persona.PEDANTIC,
            "This checkout keeps the job token on disk for every later step; set "
            "`persist-credentials: false` unless a later step pushes with it.",
        )

    def _privileged(
        self, workflow: Workflow, step: Step, location: Location, job: Job, events: frozenset[str]
    ) -> Finding:
        checkouts = pr_checkouts(workflow, job, events)
        runs = any(
            execution_after(workflow, job, checkout.step, checkout.path) is not None
            for checkout in checkouts
        )
        if runs:
            confidence, what = Confidence.HIGH, "runs the pull request's code, which can read it"
        elif checkouts:
            confidence, what = Confidence.MEDIUM, "checks out the pull request's code"
        else:
            confidence, what = Confidence.LOW, "handles outsider-controlled events"
        permissions = effective_permissions(workflow, job)
        custom = "token" in step.with_ or "ssh-key" in step.with_
        if custom or permissions.is_absent or set(permissions.writable()) - {"id-token"}:
            token = "the token given to it" if custom else "a token that may write"
            return self._finding(
                step,
                location,
                Severity.HIGH,
                confidence,
                Persona.REGULAR,
                f"This checkout keeps {token} on disk in a job that {what} "
                f"({', '.join(sorted(events))}); any code or injection there can take it and "
                "push. Set `persist-credentials: false`.",
            )
        return self._finding(
            step,
            location,
            Severity.LOW,
            confidence,
            Persona.PEDANTIC,
            f"This checkout keeps the job's read-only token on disk in a job that {what} "
            f"({', '.join(sorted(events))}); set `persist-credentials: false` so that it stays "
            "harmless if the job gains write permissions.",
        )

    def _finding(
        self,
        step: Step,
        location: Location,
        severity: Severity,
        confidence: Confidence,
        persona: Persona,
        message: str,
        related: tuple[Location, ...] = (),
    ) -> Finding:
        uses = step.uses
        return Finding(
            rule=self.info.id,
            severity=severity,
            confidence=confidence,
            message=message,
            location=location,
            anchor=step.anchor,
            persona=persona,
            evidence=uses.raw if uses is not None else "",
            related=related,
        )


def _major(file: Workflow | Action, uses: Uses) -> int | None:
    """The checkout's major version: from the ref, or from a ``# v4.2.2`` comment after a
    SHA; ``None`` when unknown (a branch, a SHA without comment)."""
    return _version(file, uses)[0]


def _version(file: Workflow | Action, uses: Uses) -> tuple[int | None, int | None]:
    ref = uses.ref or ""
    match = _VERSION_RE.fullmatch(ref)
    if match is None and uses.is_sha_pinned:
        # The rest of the line after the value: `# v4.2.2` (Dependabot and pinning tools).
        text = file.document.text
        end = text.find("\n", uses.node.end)
        match = _COMMENT_VERSION_RE.search(text, uses.node.end, end if end >= 0 else len(text))
    if match is None:
        return None, None
    minor = match.group(2)
    return int(match.group(1)), int(minor) if minor is not None else None


def _workspace_upload(checkout: Step, later: Sequence[Step]) -> tuple[Step, bool] | None:
    """A later ``actions/upload-artifact`` whose path takes in ``.git`` (with its config);
    ``certain`` is False when the uploader's version may skip hidden files."""
    path_node = checkout.with_.get("path")
    root = path_node.value.strip().strip("/") if path_node is not None else ""
    for step in later:
        uses = step.uses
        if uses is None or uses.slug != "actions/upload-artifact":
            continue
        path = step.with_.get("path")
        if path is None or not any(_takes_git(p, root) for p in _patterns(path.value)):
            continue
        hidden = step.with_.get("include-hidden-files")
        if hidden is not None and hidden.value.strip().lower() == "true":
            return step, True
        # Since upload-artifact v4.4.0 hidden files (.git) are left out unless asked for.
        ref = uses.ref or ""
        match = _VERSION_RE.fullmatch(ref)
        if match is not None:
            major, minor = int(match.group(1)), int(match.group(2) or 0)
            if major < 4 or (major == 4 and match.group(2) is not None and minor < 4):
                return step, True
            continue
        if uses.is_sha_pinned:
            return step, False
    return None


def _patterns(text: str) -> Iterator[str]:
    for line in text.splitlines():
        item = line.strip()
        if item and not item.startswith(("!", "#")):
            yield item


def _takes_git(pattern: str, root: str) -> bool:
    """True when an upload pattern covers the checkout's ``.git`` directory."""
    text = pattern.strip().strip("'\"")
    if "github.workspace" in text:
        text = re.sub(r"\$\{\{[^}]*\}\}", ".", text)
    text = text.replace("\\", "/")
    if root:
        if text.strip("./") in (root, f"{root}/.git") or text.rstrip("/") in (
            f"./{root}",
            f"{root}/**",
        ):
            return True
    return text in _WHOLE_TREE or text.rstrip("/") in ("./.", ".", "./.git")


def _needs_credential(later: Sequence[Step]) -> bool:
    for step in later:
        run = step.run
        if run is not None and "push" in run.value and _PUSHES_RE.search(run.value):
            return True
        if step.uses is not None and step.uses.slug in _PUSH_ACTIONS:
            return True
    return False
