"""``excessive-permissions``: the job token gets more than the jobs use.

Four cases, from worst to mildest: ``write-all``; no ``permissions:`` anywhere (the
repository default applies, which is read-write on older repositories and organizations);
write scopes granted at workflow level to several jobs (each job should ask for its own);
``id-token: write`` where no step exchanges an OIDC token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from tollgate.audit.findings import Confidence, Finding, Persona, RuleInfo, Severity
from tollgate.audit.github.model import Job, Permissions, Step, Workflow
from tollgate.audit.github.rules._untrusted import PRIVILEGED_EVENTS
from tollgate.audit.rules import AuditContext, Rule, register
from tollgate.audit.source import YNode

OIDC_ACTIONS = frozenset(
    (
        "aws-actions/configure-aws-credentials",
        "google-github-actions/auth",
        "azure/login",
        "hashicorp/vault-action",
        "pypa/gh-action-pypi-publish",
        "sigstore/gh-action-sigstore-python",
        "sigstore/cosign-installer",
        "actions/attest",
        "actions/attest-build-provenance",
        "actions/attest-sbom",
        "actions/deploy-pages",
        "rubygems/release-gem",
        "rubygems/configure-rubygems-credentials",
        "rust-lang/crates-io-auth-action",
        "nuget/login",
        "pyo3/maturin-action",
        "ossf/scorecard-action",
        "jfrog/setup-jfrog-cli",
        "octo-sts/action",
        "pulumi/auth-actions",
        "depot/setup-action",
        "depot/build-push-action",
        "depot/bake-action",
        "determinatesystems/flakehub-push",
        "determinatesystems/flakehub-cache-action",
        "goreleaser/goreleaser-action",
        "slsa-framework/slsa-github-generator",
        "tailscale/github-action",
    )
)
"""Actions that request the job's OIDC token (cloud logins, trusted publishing, signing)."""

# Inputs that only make sense with OIDC (`use_oidc: true` on codecov, `audience` on many).
_OIDC_INPUTS = frozenset(
    ("audience", "role-to-assume", "workload_identity_provider", "use_oidc", "oidc-provider-name")
)
# Commands that exchange the token: trusted publishing, keyless signing, our own `creds`.
_OIDC_RUN_RE = re.compile(
    r"ACTIONS_ID_TOKEN_REQUEST|getIDToken|\b(?:npm|pnpm|yarn(?:\s+npm)?)\s+publish\b|"
    r"--provenance|\b(?:uv|pdm|twine|maturin)\s+(?:publish|upload)\b|\bcosign\s+(?:sign|attest)|"
    r"\bgh\s+attestation\b|\bsigstore\b|\btollgate\s+creds\b|assume-role-with-web-identity|"
    r"\bvault\s+login\b[^\n]*jwt|\bgcloud\b[^\n]*workload",
)
# Substrings one of which every match above contains: most scripts are skipped on them.
_OIDC_HINTS = (
    "ACTIONS_ID_TOKEN",
    "getIDToken",
    "publish",
    "provenance",
    "upload",
    "cosign",
    "attestation",
    "sigstore",
    "creds",
    "web-identity",
    "vault",
    "workload",
)
# Actions known not to use the OIDC token: with only these, a missing consumer is certain.
_PLAIN_OWNERS = ("actions/", "docker/setup-", "docker/metadata-action", "docker/login-action")
_CODE_TRIGGERS = frozenset(PRIVILEGED_EVENTS)


@register
class ExcessivePermissions(Rule):
    """The job token is broader than the jobs need."""

    info = RuleInfo(
        id="excessive-permissions",
        name="Excessive permissions",
        summary="write-all, no permissions at all (the repository default), write scopes "
        "shared by every job, or id-token: write with no step that uses it.",
        default_severity=Severity.MEDIUM,
        help_uri="docs/rules/excessive-permissions.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        jobs = list(workflow.jobs.values())
        if not jobs:
            return
        inheriting = [job for job in jobs if job.permissions.is_absent]
        privileged = workflow.has_trigger(*_CODE_TRIGGERS)
        yield from self._write_all(workflow, jobs, inheriting)
        if workflow.permissions.is_absent:
            yield from self._default(workflow, jobs, inheriting, privileged)
        elif workflow.permissions.kind == "scopes":
            yield from self._shared_writes(workflow, inheriting, privileged)
        yield from self._id_token(workflow, jobs, inheriting)

    # write-all ----------------------------------------------------------------------------

    def _write_all(
        self, workflow: Workflow, jobs: Sequence[Job], inheriting: Sequence[Job]
    ) -> Iterator[Finding]:
        if workflow.permissions.kind == "write-all" and inheriting:
            yield self._finding(
                workflow,
                Severity.HIGH,
                Confidence.HIGH,
                "`permissions: write-all` gives every job a token that can push, release and "
                "change settings-adjacent data; grant the scopes each job needs at job level.",
                workflow.permissions.node,
                "permissions",
            )
        for job in jobs:
            if job.permissions.kind == "write-all":
                yield self._finding(
                    workflow,
                    Severity.HIGH,
                    Confidence.HIGH,
                    f"Job {job.id} has `permissions: write-all`; list only the scopes it needs "
                    "(e.g. `contents: write`).",
                    job.permissions.node,
                    f"{job.anchor}.permissions",
                )

    # No permissions anywhere -------------------------------------------------------------

    def _default(
        self,
        workflow: Workflow,
        jobs: Sequence[Job],
        inheriting: Sequence[Job],
        privileged: bool,
    ) -> Iterator[Finding]:
        if not inheriting or set(workflow.triggers) == {"workflow_call"}:
            # A reusable workflow gets at most what its caller grants.
            return
        severity = Severity.HIGH if privileged else Severity.MEDIUM
        why = (
            " Outsiders can trigger this workflow, which makes a writable token worse."
            if privileged
            else ""
        )
        if len(inheriting) == len(jobs):
            on_key = workflow.node.key_node("on")
            yield self._finding(
                workflow,
                severity,
                Confidence.MEDIUM,
                "No `permissions:` in this workflow: every job gets the repository's default "
                "token, which is read-write unless the repository or organization made it "
                "read-only. Add `permissions: {}` (or `contents: read`) at the top and grant "
                f"more per job.{why}",
                on_key if on_key is not None else workflow.node,
                "permissions",
            )
            return
        for job in inheriting:
            yield self._finding(
                workflow,
                severity,
                Confidence.MEDIUM,
                f"Job {job.id} has no `permissions:` (nor has the workflow), so it gets the "
                "repository's default token, possibly read-write; declare what it needs, "
                f"e.g. `permissions: {{contents: read}}`.{why}",
                job.key,
                f"{job.anchor}.permissions",
            )

    # Workflow-level writes ---------------------------------------------------------------

    def _shared_writes(
        self, workflow: Workflow, inheriting: Sequence[Job], privileged: bool
    ) -> Iterator[Finding]:
        writes = [s for s in workflow.permissions.writable() if s != "id-token"]
        if not writes or len(inheriting) < 2:
            # One job: workflow level and job level are the same thing.
            return
        node = workflow.permissions.scope_nodes.get(writes[0], workflow.permissions.node)
        scopes = ", ".join(f"{scope}: write" for scope in writes)
        yield self._finding(
            workflow,
            Severity.MEDIUM,
            Confidence.MEDIUM,
            f"{scopes} is granted at workflow level, so all {len(inheriting)} jobs that do not "
            f"set their own permissions get it ({_ids(inheriting)}); keep `contents: read` at "
            "the top and grant writes to the jobs that need them.",
            node,
            f"permissions.{writes[0]}",
            persona=Persona.REGULAR if privileged else Persona.PEDANTIC,
        )

    # id-token: write ---------------------------------------------------------------------

    def _id_token(
        self, workflow: Workflow, jobs: Sequence[Job], inheriting: Sequence[Job]
    ) -> Iterator[Finding]:
        top = workflow.permissions
        # (write-all is reported as such; its id-token is part of it.)
        if top.kind == "scopes" and top.level("id-token") == "write" and inheriting:
            steps_jobs = [job for job in inheriting if not job.is_reusable_call]
            idle = [job for job in steps_jobs if not _consumes(job)]
            if idle and len(idle) == len(inheriting):
                yield self._id_token_finding(
                    workflow,
                    top,
                    "permissions.id-token",
                    idle,
                    "`id-token: write` is granted at workflow level but no step here requests "
                    "an OIDC token; remove it, or grant it only to the job that signs, "
                    "publishes or logs in to a cloud.",
                )
            elif idle:
                yield self._id_token_finding(
                    workflow,
                    top,
                    "permissions.id-token",
                    idle,
                    f"`id-token: write` is granted at workflow level, but only some jobs use it; "
                    f"jobs {_ids(idle)} do not: grant it at job level instead.",
                )
        for job in jobs:
            if job.is_reusable_call or job.permissions.level("id-token") != "write":
                continue
            if job.permissions.kind != "scopes" or _consumes(job):
                continue
            yield self._id_token_finding(
                workflow,
                job.permissions,
                f"{job.anchor}.permissions.id-token",
                [job],
                f"Job {job.id} has `id-token: write` but no step requests an OIDC token "
                "(no cloud login, trusted publishing or signing seen); remove it.",
            )

    def _id_token_finding(
        self,
        workflow: Workflow,
        permissions: Permissions,
        anchor: str,
        idle: Sequence[Job],
        message: str,
    ) -> Finding:
        node = permissions.scope_nodes.get("id-token", permissions.node)
        # A third-party or local action might request the token without our knowing it.
        unknown = any(_opaque(job) for job in idle)
        return self._finding(
            workflow,
            Severity.MEDIUM,
            Confidence.LOW if unknown else Confidence.MEDIUM,
            message,
            node,
            anchor,
            persona=Persona.PEDANTIC if unknown else Persona.REGULAR,
        )

    def _finding(
        self,
        workflow: Workflow,
        severity: Severity,
        confidence: Confidence,
        message: str,
        node: YNode | None,
        anchor: str,
        *,
        persona: Persona = Persona.REGULAR,
    ) -> Finding:
        return Finding(
            rule=self.info.id,
            severity=severity,
            confidence=confidence,
            message=message,
            location=workflow.location(node if node is not None else workflow.node),
            anchor=anchor,
            persona=persona,
            evidence=anchor,
        )


def _consumes(job: Job) -> bool:
    """True when a step of ``job`` requests an OIDC token (as far as can be told)."""
    return any(_step_consumes(step) for step in job.all_steps())


def _step_consumes(step: Step) -> bool:
    uses = step.uses
    if uses is not None:
        slug = uses.slug or ""
        if slug in OIDC_ACTIONS or slug.startswith(("sigstore/", "slsa-framework/", "azure/")):
            return True
        if uses.repo is not None and uses.repo.lower() == "tollgate":
            command = step.with_.get("command")
            return "creds" in (uses.path or "") or (
                command is not None and "creds" in command.value
            )
        if any(key.lower() in _OIDC_INPUTS for key in step.with_):
            return True
        script = step.with_.get("script")
        if script is not None and "getIDToken" in script.value:
            return True
        return False
    if any(key.upper() == "NPM_CONFIG_PROVENANCE" for key in step.env):
        return True
    run = step.run
    if run is None or not any(hint in run.value for hint in _OIDC_HINTS):
        return False
    return _OIDC_RUN_RE.search(run.value) is not None


def _opaque(job: Job) -> bool:
    """True when the job has steps whose use of the token cannot be told: local actions and
    third-party actions outside a short list of plain ones."""
    for step in job.all_steps():
        uses = step.uses
        if uses is None:
            continue
        if uses.is_local or uses.kind == "docker":
            return True
        slug = uses.slug or ""
        if not slug.startswith(_PLAIN_OWNERS):
            return True
    return False


def _ids(jobs: Sequence[Job]) -> str:
    ids = [job.id for job in jobs]
    return ", ".join(ids[:4]) + (f" and {len(ids) - 4} more" if len(ids) > 4 else "")
