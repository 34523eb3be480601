"""Which CI platform a way in is for, and whether its issuer and audience hold."""

from __future__ import annotations

import re

from tollgate.credentials.trust.findings import (
    Alternative,
    Constraint,
    Severity,
    TrustFinding,
    TrustPolicy,
    finding,
    show_values,
)

_GITHUB_ONLY = frozenset(
    (
        "repository repository_id repository_owner repository_owner_id "
        "repository_visibility job_workflow_ref workflow_ref event_name head_ref base_ref "
        "run_attempt actor"
    ).split()
)
_GITLAB_ONLY = frozenset(
    (
        "project_path project_id namespace_path namespace_id pipeline_source ref_path "
        "ref_protected environment_protected deployment_tier ci_config_ref_uri user_login"
    ).split()
)
_GITHUB_ISSUER = re.compile(
    r"(https://)?(token\.actions\.githubusercontent\.com(/[^/]+)?"
    r"|token\.actions\.[a-z0-9-]+\.ghe\.com|[^/]+/_services/token)/?\Z",
    re.IGNORECASE,
)
GHES_ISSUER = re.compile(r"(https://)?[^/]+/_services/token/?\Z", re.IGNORECASE)


def issuer_platform(issuer: str | None) -> str | None:
    """``github`` or ``gitlab`` when the issuer says so (``None`` for self-hosted GitLab)."""
    if not issuer:
        return None
    if _GITHUB_ISSUER.match(issuer.strip()):
        return "github"
    host = re.sub(r"^[a-z]+://", "", issuer.strip(), flags=re.IGNORECASE).split("/")[0]
    return "gitlab" if "gitlab" in host.lower() else None


def _implied_platform(constraint: Constraint) -> str | None:
    if constraint.claim in _GITHUB_ONLY:
        return "github"
    if constraint.claim in _GITLAB_ONLY:
        return "gitlab"
    if constraint.claim == "sub":
        prefixes = {p.literal_prefix for p in constraint.patterns}
        if all(prefix.startswith("repo:") for prefix in prefixes):
            return "github"
        if all(prefix.startswith("project_path:") for prefix in prefixes):
            return "gitlab"
    return None


def platform_of(alternative: Alternative) -> str:
    """``github``, ``gitlab`` or ``other``: from the issuer, else from claims only one sends."""
    by_issuer = issuer_platform(alternative.issuer)
    if by_issuer:
        return by_issuer
    implied = {p for c in alternative.constraints if (p := _implied_platform(c)) is not None}
    return implied.pop() if len(implied) == 1 else "other"


def issuer_findings(alternative: Alternative, platform: str) -> list[TrustFinding]:
    """Conditions on claims this issuer never sends: the way in is closed, and a mistake."""
    if issuer_platform(alternative.issuer) is None:
        return []
    found = []
    for constraint in alternative.constraints:
        implied = _implied_platform(constraint)
        if implied is None or implied == platform:
            continue
        other = "GitLab" if implied == "gitlab" else "GitHub"
        mine = "GitHub" if platform == "github" else "GitLab"
        found.append(
            finding(
                "wrong-issuer",
                f"the condition on {constraint.claim} {show_values(constraint.values)} is written "
                f"for {other} tokens, but this trust is for {mine}'s issuer "
                f"({alternative.issuer}), whose tokens never match it: this way in never works. "
                f"Trust {other}'s issuer, or write the condition in {mine}'s claim format.",
                constraint.path,
            )
        )
    return found


# Audience

_GITHUB_DEFAULT_AUDIENCE = re.compile(r"https://github\.com/[^/]+/?\Z", re.IGNORECASE)


def audience_findings(
    alternative: Alternative, policy: TrustPolicy, platform: str
) -> list[TrustFinding]:
    """A missing audience condition, or one that admits tokens minted for other services."""
    audiences = [c for c in alternative.constraints if c.claim == "aud"]
    if not audiences:
        if policy.missing_audience is None:
            return []
        return [
            finding(
                "no-audience-condition",
                "nothing checks the token's audience (aud), so a token minted for another "
                "service is accepted here too; " + policy.audience_hint,
                alternative.path,
                policy.missing_audience,
            )
        ]
    found = []
    for constraint in audiences:
        for pattern in constraint.patterns:
            if not pattern.is_exact and not pattern.literal_prefix:
                found.append(
                    finding(
                        "no-audience-condition",
                        f"the audience condition {str(pattern)!r} accepts any audience, so a "
                        "token minted for another service is accepted here too; "
                        + (policy.audience_hint or "name the one audience your jobs request"),
                        constraint.path,
                        policy.missing_audience or Severity.MEDIUM,
                    )
                )
            elif pattern.is_exact:
                found.extend(_shared_audience(str(pattern), constraint, alternative, platform))
    return found


def _shared_audience(
    value: str, constraint: Constraint, alternative: Alternative, platform: str
) -> list[TrustFinding]:
    fix = "request a dedicated audience (sts.amazonaws.com, api://AzureADTokenExchange, or "
    fix += "the provider's own name on GCP) and require exactly that"
    if value == "sigstore":
        why = (
            "'sigstore' is the audience of the tokens jobs send to Sigstore's public Fulcio "
            "service to sign artifacts, so this trust accepts tokens that left your control"
        )
        return [finding("shared-audience", f"{why}; {fix}", constraint.path)]
    if platform == "github" and _GITHUB_DEFAULT_AUDIENCE.match(value):
        why = (
            f"{value!r} is GitHub's default audience: every action that asks for a token "
            "without naming an audience gets one with it, and may send it to its own service"
        )
        return [finding("shared-audience", f"{why}; {fix}", constraint.path)]
    issuer = _url(alternative.issuer)
    if platform == "gitlab" and issuer and _url(value) == issuer:
        why = (
            f"{value!r} is the GitLab instance's URL, the audience GitLab's documentation "
            "suggests for every cloud and for Vault, so tokens meant for other services carry it"
        )
        return [finding("shared-audience", f"{why}; {fix}", constraint.path, Severity.LOW)]
    return []


def _url(value: str | None) -> str | None:
    if not value:
        return None
    text = value.strip().rstrip("/").lower()
    return text if "://" in text else f"https://{text}"
