"""Whether each subject condition has a form the platform actually sends."""

from __future__ import annotations

import re

from tollgate.credentials.trust.findings import (
    Alternative,
    Constraint,
    Pattern,
    TrustFinding,
    finding,
)
from tollgate.credentials.trust.issuers import GHES_ISSUER
from tollgate.credentials.trust.refs import Ctx, github_context, github_pair_context, gitlab_context
from tollgate.credentials.trust.scope import chain, id_wildcard

_IMMUTABLE_PART = re.compile(r"[^@/:]+@\d+\Z")


_NAME_CLAIMS = frozenset(
    {"sub", "repository", "repository_owner", "project_path", "namespace_path"}
)


def subject_form_findings(
    alternative: Alternative, platform: str, cloud: str
) -> list[TrustFinding]:
    """Subject conditions in a form the platform never sends, or compared case-sensitively."""
    found: list[TrustFinding] = []
    for constraint in alternative.constraints:
        for pattern in constraint.patterns:
            if constraint.claim == "sub":
                found.extend(_sub_form(constraint, pattern, platform, alternative.issuer))
            if constraint.claim in _NAME_CLAIMS and not constraint.ignore_case:
                found.extend(_case_finding(constraint, pattern, platform, cloud))
    return found


def _sub_form(
    constraint: Constraint, pattern: Pattern, platform: str, issuer: str | None
) -> list[TrustFinding]:
    value = str(pattern)
    problem: str | None = None
    custom: str | None = None
    if pattern.is_exact and ("*" in value or "?" in value):
        problem = (
            f"{constraint.operator} compares literally, so '*' and '?' are ordinary "
            "characters here (use StringLike on AWS, claimsMatchingExpression on Azure, "
            "and better still an exact subject)"
        )
    elif platform == "github":
        problem, custom = _github_sub_problem(pattern, issuer)
    elif pattern.is_exact:
        problem = _gitlab_sub_problem(pattern)
    found = []
    if problem:
        found.append(
            finding(
                "subject-malformed",
                f"{value!r} is not a subject {'GitHub' if platform == 'github' else 'GitLab'} "
                f"issues, so this condition never matches: {problem}.",
                constraint.path,
            )
        )
    if custom:
        found.append(
            finding(
                "custom-subject",
                f"{value!r} matches only tokens whose subject was customized "
                f"(include_claim_keys: {custom}); check that the organization or repository "
                "uses exactly this template (GET /repos/OWNER/REPO/actions/oidc/customization/sub).",
                constraint.path,
            )
        )
    if platform == "github" and id_wildcard(pattern):
        found.append(
            finding(
                "subject-id-wildcard",
                f"{value!r} puts a wildcard where the repository's ID goes: a repository "
                "created later under the same name matches too, which is what immutable "
                "subjects exist to prevent. Write the ID.",
                constraint.path,
            )
        )
    return found


def _gitlab_sub_problem(pattern: Pattern) -> str | None:
    prefix = pattern.literal_prefix
    if not prefix.startswith("project_path:") or ":" not in prefix[len("project_path:") :]:
        return "GitLab subjects read 'project_path:GROUP/PROJECT:ref_type:...'"
    if gitlab_context(_rest_after(pattern, "project_path:")) is Ctx.MALFORMED:
        return (
            "GitLab subjects end ':ref_type:branch:ref:NAME' or ':ref_type:tag:ref:NAME' "
            "(unless the project customized its sub)"
        )
    return None


def _rest_after(pattern: Pattern, head: str) -> Pattern:
    prefix = pattern.literal_prefix
    colon = prefix.find(":", len(head))
    return pattern.without_prefix(prefix[: colon + 1]) if colon >= 0 else Pattern(())


def _github_sub_problem(pattern: Pattern, issuer: str | None) -> tuple[str | None, str | None]:
    """A reason GitHub never issues this subject, and the include_claim_keys it needs."""
    prefix = pattern.literal_prefix
    exact = pattern.is_exact
    if not prefix.startswith("repo:"):
        pairs = chain(prefix, exact)
        if pairs is None or (exact and not pairs):
            if not exact and "repo:".startswith(prefix):
                return None, None
            return "GitHub subjects start 'repo:OWNER/REPO:'", None
        return None, str([key for key, _ in pairs]) if pairs else None
    rest = prefix[len("repo:") :]
    colon = rest.find(":")
    if colon < 0:
        if exact:
            return (
                "GitHub subjects go on after the repository: ':ref:refs/heads/BRANCH', "
                "':environment:NAME' or ':pull_request'"
            ), None
        return None, None
    names = rest[:colon]
    owner, _, repo = names.partition("/")
    with_ids = [_IMMUTABLE_PART.match(part) is not None for part in (owner, repo)]
    if "@" in names:
        if not all(with_ids):
            return "immutable subjects carry both IDs: 'repo:OWNER@ID/REPO@ID:...'", None
        if issuer and GHES_ISSUER.match(issuer.strip()):
            return "GitHub Enterprise Server does not issue immutable subjects", None
    rest_pattern = pattern.without_prefix(prefix[: len("repo:") + colon + 1])
    if not rest_pattern.tokens:
        return "nothing follows the repository", None
    context = github_context(rest_pattern)
    if context is Ctx.MALFORMED:
        return _context_problem(rest_pattern.literal_prefix), None
    if rest_pattern.is_exact:
        pairs = chain(rest_pattern.literal_prefix, True) or []
        if len(pairs) > 1 or (pairs and github_pair_context(*pairs[0]) is None):
            keys = ["repo"] + [key for key, _ in pairs if key != "pull_request"]
            if any(key in ("ref", "environment", "pull_request") for key, _ in pairs):
                keys = ["repo", "context"] + [
                    key
                    for key, _ in pairs
                    if key not in ("ref", "environment", "pull_request", "context")
                ]
            return None, str(keys)
    return None, None


def _context_problem(text: str) -> str:
    if text.startswith("ref:") and not text.startswith("ref:refs/"):
        return f"GitHub writes the full ref: 'ref:refs/heads/{text[4:]}'"
    if text.startswith(("pull-request", "pr", "pull_requests", "merge_request")):
        return "GitHub writes ':pull_request'"
    if text.startswith("refs/"):
        return f"GitHub writes 'ref:{text}'"
    if text.startswith("environment:") or text == "environment":
        return "the environment name is missing"
    return (
        "after the repository GitHub writes ':ref:refs/heads/BRANCH', ':ref:refs/tags/TAG', "
        "':environment:NAME' or ':pull_request'"
    )


def _case_finding(
    constraint: Constraint, pattern: Pattern, platform: str, cloud: str
) -> list[TrustFinding]:
    prefix = pattern.literal_prefix
    if constraint.claim == "sub":
        head = "repo:" if platform == "github" else "project_path:"
        if not prefix.startswith(head):
            return []
        names = prefix[len(head) :].split(":", 1)[0]
    else:
        names = prefix
    names = re.sub(r"@\d+", "", names)
    if names == names.lower():
        return []
    how = {
        "aws": "IAM's StringEquals and StringLike compare",
        "gcp": "CEL's == compares",
        "azure": "Entra compares",
    }
    compares = how.get(cloud, "the cloud compares")
    host = "GitHub" if platform == "github" else "GitLab"
    return [
        finding(
            "subject-case",
            f"{str(pattern)!r} has upper-case letters: {host} treats owner and repository "
            f"names case-insensitively, but {compares} case-sensitively, so this matches only "
            "if the casing is exactly what the token carries (a mismatch locks the role out, "
            "AADSTS7002138 on Azure). Copy the names from 'tollgate token', or pin IDs "
            "(an immutable subject, repository_id).",
            constraint.path,
        )
    ]
