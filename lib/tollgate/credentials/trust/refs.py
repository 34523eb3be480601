"""Which refs, events and environments a way in admits."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from tollgate.credentials.trust.findings import (
    Alternative,
    Constraint,
    Pattern,
    RoleKind,
    Severity,
    TrustFinding,
    finding,
)
from tollgate.credentials.trust.scope import Reach, Scope, chain, id_wildcard


class Ctx(enum.Enum):
    """What a subject (or a ref/environment condition) says about the run."""

    BRANCH = "branch"
    TAG = "tag"
    ENVIRONMENT = "environment"
    PULL_REQUEST = "pull request"
    PATTERN = "pattern"
    """A partial pattern (``refs/heads/release-*``): pinned enough."""
    ENV_PATTERN = "environment pattern"
    PROTECTED = "protected ref"
    MALFORMED = "malformed"
    ANY = "any"
    ANY_BRANCH = "any branch"
    ANY_TAG = "any tag"
    ANY_ENVIRONMENT = "any environment"


_UNPINNED = frozenset({Ctx.ANY, Ctx.ANY_BRANCH, Ctx.ANY_TAG, Ctx.ANY_ENVIRONMENT})
_ENV_PINNED = frozenset({Ctx.ENVIRONMENT, Ctx.ENV_PATTERN})


@dataclass(frozen=True)
class _Context:
    kind: Ctx
    constraint: Constraint
    value: str


def _contexts(alternative: Alternative, platform: str, scope: Scope) -> list[list[_Context]]:
    """Per ref-related constraint, the context of each of its values."""
    result = []
    for constraint in alternative.constraints:
        group = [
            _Context(kind, constraint, str(pattern))
            for pattern in constraint.patterns
            if (kind := _value_context(constraint.claim, pattern, platform, scope)) is not None
        ]
        if group:
            result.append(group)
    return result


def _value_context(claim: str, pattern: Pattern, platform: str, scope: Scope) -> Ctx | None:
    if claim == "sub":
        rest = _sub_rest(pattern, platform, scope)
        return gitlab_context(rest) if platform == "gitlab" else github_context(rest)
    exact = pattern.is_exact
    prefix = pattern.literal_prefix
    if claim in ("ref", "ref_path"):
        if exact:
            return Ctx.TAG if prefix.startswith("refs/tags/") else Ctx.BRANCH
        if prefix in ("", "refs/"):
            return Ctx.ANY
        if prefix == "refs/heads/":
            return Ctx.ANY_BRANCH
        return Ctx.ANY_TAG if prefix == "refs/tags/" else Ctx.PATTERN
    if claim == "environment":
        if exact:
            return Ctx.ENVIRONMENT
        return Ctx.ENV_PATTERN if prefix else Ctx.ANY_ENVIRONMENT
    if claim in ("ref_protected", "environment_protected"):
        if exact and prefix == "true":
            return Ctx.PROTECTED if claim == "ref_protected" else Ctx.ENVIRONMENT
        return None
    if claim == "workflow_ref":
        at = prefix.find("@")
        if exact:
            return Ctx.BRANCH
        if at < 0:
            return Ctx.ANY
        ref = prefix[at + 1 :]
        return Ctx.PATTERN if ref not in ("", "refs/", "refs/heads/", "refs/tags/") else Ctx.ANY
    if claim == "event_name" and exact and prefix == "pull_request":
        return Ctx.PULL_REQUEST
    if claim == "pipeline_source" and exact and prefix == "merge_request_event":
        return Ctx.PULL_REQUEST
    return None


def _sub_rest(pattern: Pattern, platform: str, scope: Scope) -> Pattern:
    """The part of a subject after the repository (``ref:refs/heads/main``...).

    An empty exact pattern stands for "nothing GitHub or GitLab issues" (never matches).
    """
    prefix = pattern.literal_prefix
    head = "project_path:" if platform == "gitlab" else "repo:"
    if prefix.startswith(head):
        colon = prefix.find(":", len(head))
        if colon >= 0:
            return pattern.without_prefix(prefix[: colon + 1])
        if platform == "github" and id_wildcard(pattern):
            # repo:OWNER/REPO@<wildcard>:...: the wildcard stands for the ID.
            after_id = Pattern(pattern.without_prefix(prefix).tokens[1:])
            if after_id.literal_prefix.startswith(":"):
                return after_id.without_prefix(":")
            return Pattern.glob("*")
    elif platform == "github" and scope.reach is Reach.REPO:
        # A customized subject without repo: (repository_id:...:ref:...).
        pairs = chain(prefix, pattern.is_exact)
        if pairs:
            return Pattern.literal(":".join(f"{k}:{v}" if v else k for k, v in pairs))
    if pattern.is_exact:
        return Pattern(())
    # After a wildcard only the text following the last one says anything certain.
    tail = pattern.literal_suffix
    if tail.startswith(":"):
        return Pattern.literal(tail[1:])
    return Pattern.glob("*")


def github_context(rest: Pattern) -> Ctx:
    """What the part of a GitHub subject after the repository pins (ref, event, environment)."""
    prefix = rest.literal_prefix
    if rest.is_exact:
        pairs = chain(prefix, True)
        if not pairs:
            return Ctx.MALFORMED
        contexts = [c for c in (github_pair_context(k, v) for k, v in pairs) if c is not None]
        # A customized subject without ref or environment keys admits every run.
        return contexts[0] if contexts else Ctx.ANY
    if not prefix:
        return Ctx.ANY
    if prefix.startswith("ref:"):
        ref = prefix[len("ref:") :]
        heads, tags = "refs/heads/".startswith(ref), "refs/tags/".startswith(ref)
        if heads and tags:
            return Ctx.ANY
        if heads:
            return Ctx.ANY_BRANCH
        if tags:
            return Ctx.ANY_TAG
        return Ctx.PATTERN if ref.startswith(("refs/heads/", "refs/tags/")) else Ctx.MALFORMED
    if prefix == "environment:":
        return Ctx.ANY_ENVIRONMENT
    if prefix.startswith("environment:"):
        return Ctx.ENV_PATTERN
    if "ref:".startswith(prefix) or "environment:".startswith(prefix):
        return Ctx.ANY  # "r*", "env*"
    if "pull_request".startswith(prefix):
        return Ctx.PULL_REQUEST
    pairs = chain(prefix, False)
    if pairs is None:
        return Ctx.MALFORMED
    contexts = [c for c in (github_pair_context(k, v) for k, v in pairs) if c is not None]
    return contexts[0] if contexts else Ctx.ANY


def github_pair_context(key: str, value: str) -> Ctx | None:
    """What one ``key:value`` pair of a GitHub subject pins; ``None`` for other keys."""
    if key == "pull_request":
        return Ctx.PULL_REQUEST
    if key == "environment":
        return Ctx.ENVIRONMENT if value else Ctx.MALFORMED
    if key == "ref":
        if value.startswith("refs/heads/") and len(value) > len("refs/heads/"):
            return Ctx.BRANCH
        if value.startswith("refs/tags/") and len(value) > len("refs/tags/"):
            return Ctx.TAG
        return Ctx.MALFORMED
    return None


_GITLAB_CONTEXT = re.compile(r"ref_type:(branch|tag):ref:(.+)\Z", re.DOTALL)


def gitlab_context(rest: Pattern) -> Ctx:
    """What the part of a GitLab subject after the project pins (branch or tag)."""
    prefix = rest.literal_prefix
    if rest.is_exact:
        match = _GITLAB_CONTEXT.match(prefix)
        if not match:
            return Ctx.MALFORMED
        return Ctx.BRANCH if match.group(1) == "branch" else Ctx.TAG
    if "ref_type:".startswith(prefix) or prefix == "ref_type:":
        return Ctx.ANY
    if "ref_type:branch:ref:".startswith(prefix):
        return Ctx.ANY_BRANCH
    if "ref_type:tag:ref:".startswith(prefix):
        return Ctx.ANY_TAG
    if prefix.startswith(("ref_type:branch:ref:", "ref_type:tag:ref:")):
        return Ctx.PATTERN
    return Ctx.MALFORMED


def context_findings(
    alternative: Alternative, platform: str, scope: Scope, kind: RoleKind
) -> list[TrustFinding]:
    """Findings for which refs, events and environments the way in admits."""
    groups = _contexts(alternative, platform, scope)
    found = [
        _pull_request_finding(context, kind, platform)
        for group in groups
        for context in group
        if context.kind is Ctx.PULL_REQUEST
    ]
    # A constraint pins the run when every one of its values does; any pinning one will do.
    pinning = [g for g in groups if all(c.kind not in _UNPINNED for c in g)]
    if not pinning:
        found.append(_any_ref_finding(groups, alternative, platform, kind))
    if kind is RoleKind.PRODUCTION and not _environment_pinned(groups, platform):
        found.append(_no_environment_finding(alternative, platform, scope))
    return found


def _environment_pinned(groups: list[list[_Context]], platform: str) -> bool:
    allowed = set(_ENV_PINNED)
    if platform == "gitlab":
        # GitLab's sub carries no environment: a protected branch is the best AWS/Azure allow.
        allowed |= {Ctx.BRANCH, Ctx.PROTECTED}
    return any(all(c.kind in allowed for c in group) for group in groups)


def _pull_request_finding(context: _Context, kind: RoleKind, platform: str) -> TrustFinding:
    severity = {
        RoleKind.READ_ONLY: Severity.INFO,
        RoleKind.DEPLOY: Severity.HIGH,
        RoleKind.PRODUCTION: Severity.HIGH,
    }.get(kind, Severity.MEDIUM)
    what = "merge request pipelines" if platform == "gitlab" else "pull request runs"
    return finding(
        "pull-request-subject",
        f"{context.value!r} on {context.constraint.claim} trusts {what}: anyone who can push "
        "a branch and open one runs their own code with this role (forks get no token, "
        "branches of the repository do). Fine for a read-only role (a plan, a test); a role "
        "that deploys or writes should trust an environment with required reviewers or a "
        "protected branch instead (pass --role to say what the role does).",
        context.constraint.path,
        severity,
    )


def _any_ref_finding(
    groups: list[list[_Context]], alternative: Alternative, platform: str, kind: RoleKind
) -> TrustFinding:
    # A read-only role (a plan, a test) is meant to run on every branch and pull request.
    severity = Severity.LOW if kind is RoleKind.READ_ONLY else None
    unpinned = [c for group in groups for c in group if c.kind in _UNPINNED]
    if platform == "github":
        fix = (
            "Pin what deploys: ':environment:NAME' (with required reviewers) or "
            "':ref:refs/heads/main' (a protected branch)."
        )
    else:
        fix = (
            "Pin a protected branch (':ref_type:branch:ref:main'), or check ref_protected "
            "where the cloud can (GCP, Vault)."
        )
    if not unpinned:
        return finding(
            "subject-any-ref",
            "nothing restricts the ref or environment: every branch, tag, pull request and "
            f"environment of the trusted repository gets in. {fix}",
            alternative.path,
            severity,
        )
    context = unpinned[0]
    what = {
        Ctx.ANY: "every branch, tag, pull request and environment",
        Ctx.ANY_BRANCH: "every branch, and anyone with push access can create one",
        Ctx.ANY_TAG: "every tag, and anyone with push access can create one",
        Ctx.ANY_ENVIRONMENT: (
            "every environment, and naming a new one in a workflow creates it without "
            "protection rules"
        ),
    }[context.kind]
    return finding(
        "subject-any-ref",
        f"{context.value!r} on {context.constraint.claim} trusts {what}. {fix}",
        context.constraint.path,
        severity,
    )


def _no_environment_finding(alternative: Alternative, platform: str, scope: Scope) -> TrustFinding:
    where = scope.constraint.path if scope.constraint else alternative.path
    if platform == "gitlab":
        message = (
            "a production role trusted without a protected branch or environment: pin the "
            "protected branch that deploys (':ref_type:branch:ref:main'); GitLab's sub carries "
            "no environment, so check environment and environment_protected where the cloud "
            "can (GCP attribute conditions, Vault bound_claims)"
        )
    else:
        message = (
            "a production role trusted without a deployment environment: any workflow that "
            "runs on the trusted ref (including one a merged pull request adds) gets it. Trust "
            "'repo:OWNER/REPO:environment:production' and give the environment required "
            "reviewers and a deployment branch rule."
        )
    return finding("no-environment", message, where)
