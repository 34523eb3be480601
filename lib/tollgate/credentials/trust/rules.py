"""Applying the trust rules to each way into a role: the order, and what depends on what."""

from __future__ import annotations

from tollgate.credentials.trust.findings import (
    CHECKS,
    Alternative,
    RoleKind,
    TrustFinding,
    TrustPolicy,
    finding,
)
from tollgate.credentials.trust.issuers import audience_findings, issuer_findings, platform_of
from tollgate.credentials.trust.refs import context_findings
from tollgate.credentials.trust.scope import Reach, scope_findings, scope_of
from tollgate.credentials.trust.subjects import subject_form_findings


def check_policy(policy: TrustPolicy, kind: RoleKind) -> tuple[TrustFinding, ...]:
    """Every finding for ``policy``, most severe first, without duplicates."""
    found: list[TrustFinding] = list(policy.findings)
    for alternative in policy.alternatives:
        if any(c.dead for c in alternative.constraints):
            continue  # it never matches; the cloud module reported why
        found.extend(_check_alternative(alternative, policy, kind))
    unique = {(f.id, f.path, f.message): f for f in found}
    order = list(CHECKS)
    return tuple(
        sorted(unique.values(), key=lambda f: (-f.severity.rank, order.index(f.id), f.path))
    )


def _check_alternative(
    alternative: Alternative, policy: TrustPolicy, kind: RoleKind
) -> list[TrustFinding]:
    platform = platform_of(alternative)
    found = issuer_findings(alternative, platform)
    if found:
        return found  # a claim this issuer never sends: the condition fails, nothing gets in
    found.extend(audience_findings(alternative, policy, platform))
    if alternative.opaque:
        found.append(
            finding(
                "condition-not-understood",
                "tollgate could not analyse "
                + "; ".join(repr(text) for text in alternative.opaque)
                + ": the findings assume it restricts nothing; check it by hand",
                alternative.path,
            )
        )
    if platform == "other":
        if not any(c.claim != "aud" for c in alternative.constraints):
            issuer = alternative.issuer or "the issuer"
            found.append(
                finding(
                    "no-subject-condition",
                    f"nothing but the audience restricts which identity of {issuer} gets in: "
                    "add a condition on sub",
                    alternative.path,
                )
            )
        return found
    found.extend(subject_form_findings(alternative, platform, policy.cloud))
    scope = scope_of(alternative, platform)
    found.extend(scope_findings(scope, alternative, platform))
    # A partial wildcard spans the rest of the subject: its finding already says so.
    if scope.reach in (Reach.REPO, Reach.ORG_WIDE):
        found.extend(context_findings(alternative, platform, scope, kind))
    return found
