"""Lint OIDC trust: who, by the cloud's own rules, may turn a CI token into credentials.

:func:`lint` reads an AWS IAM trust policy, a GCP workload identity provider (or its CEL
attribute condition) or Azure federated identity credentials, turns it into a
:class:`~tollgate.credentials.trust.findings.TrustPolicy`, and applies the rules
(:mod:`.rules`) to each way in: which repositories (and owners) it admits (:mod:`.scope`),
which refs, events and environments (:mod:`.refs`), which audience and issuer
(:mod:`.issuers`), and whether subjects have a form the platform sends (:mod:`.subjects`).
The subject formats are those of oidc-anchors.md section 7.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tollgate.credentials.trust.findings import (
    RoleKind,
    Severity,
    TrustFinding,
    load_json,
    malformed,
)
from tollgate.credentials.trust.rules import check_policy

__all__ = ["CLOUDS", "LintResult", "check_policy", "detect_cloud", "lint"]

CLOUDS = ("aws", "gcp", "azure")


@dataclass(frozen=True)
class LintResult:
    """The findings for one document."""

    source: str
    cloud: str
    role_kind: RoleKind
    findings: tuple[TrustFinding, ...]

    def worst(self) -> Severity | None:
        """The most severe finding's severity, if any."""
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def fails(self, threshold: Severity) -> bool:
        """Whether any finding is at or above ``threshold``."""
        return any(f.severity.rank >= threshold.rank for f in self.findings)


def lint(
    text: str,
    *,
    source: str = "<input>",
    cloud: str | None = None,
    role_kind: RoleKind = RoleKind.AUTO,
) -> LintResult:
    """Lint one trust document; :class:`~tollgate.errors.UsageError` if it is malformed."""
    from tollgate.credentials.trust import aws, azure, gcp

    chosen = cloud or detect_cloud(text, source)
    parsers = {"aws": aws.parse, "gcp": gcp.parse, "azure": azure.parse}
    if chosen not in parsers:
        raise malformed(source, "", f"unknown cloud {chosen!r}; choose one of {', '.join(CLOUDS)}")
    policy = parsers[chosen](text, source)
    kind = infer_role_kind(policy.role_name) if role_kind is RoleKind.AUTO else role_kind
    findings = check_policy(policy, kind)
    return LintResult(source, chosen, kind, findings)


def detect_cloud(text: str, source: str = "<input>") -> str:
    """``aws``, ``gcp`` or ``azure``, from the shape of the document."""
    stripped = text.strip()
    if not stripped:
        raise malformed(source, "", "the file is empty")
    if stripped[0] not in '{["':
        # Not JSON: a CEL attribute condition, or an Entra claims matching expression.
        return "azure" if stripped.startswith("claims[") else "gcp"
    document = load_json(stripped, source)
    if isinstance(document, str):
        return "azure" if document.lstrip().startswith("claims[") else "gcp"
    items = document if isinstance(document, list) else [document]
    first = items[0] if items else None
    if isinstance(first, dict):
        keys = set(first)
        if keys & {"Statement", "AssumeRolePolicyDocument", "Role"}:
            return "aws"
        if keys & {"attributeCondition", "attributeMapping", "oidc"}:
            return "gcp"
        if keys & {"issuer", "subject", "claimsMatchingExpression", "audiences", "value"}:
            return "azure"
    raise malformed(
        source,
        "",
        "cannot tell which cloud this document is for (no Statement, attributeCondition or "
        "issuer key); pass --cloud aws|gcp|azure",
    )


_READ_ONLY = re.compile(r"read|plan|view|audit|ci-only", re.IGNORECASE)
_PRODUCTION = re.compile(r"prod(?!uct)", re.IGNORECASE)
_DEPLOY = re.compile(r"deploy|release|publish|admin|write|push", re.IGNORECASE)


def infer_role_kind(name: str | None) -> RoleKind:
    """A guess from a role's name: ``prod-deployer`` is production, ``ci-readonly`` read-only."""
    if not name:
        return RoleKind.UNKNOWN
    if _PRODUCTION.search(name):
        return RoleKind.PRODUCTION
    if _DEPLOY.search(name):
        return RoleKind.DEPLOY
    if _READ_ONLY.search(name):
        return RoleKind.READ_ONLY
    return RoleKind.UNKNOWN
