"""Lint OIDC trust: who, by the cloud's own rules, may turn a CI token into credentials.

:func:`lint` reads an AWS IAM trust policy, a GCP workload identity provider (or its CEL
attribute condition) or Azure federated identity credentials, turns it into a
:class:`~tollgate.credentials.trust.findings.TrustPolicy`, and applies the rules below to
each way in: which repositories (and owners) it admits, which refs and events, which
audience and issuer. The subject formats are those of oidc-anchors.md section 7.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from tollgate.credentials.trust.findings import (
    CHECKS,
    Alternative,
    Constraint,
    Pattern,
    RoleKind,
    Severity,
    TrustFinding,
    TrustPolicy,
    finding,
    load_json,
    malformed,
)

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


# The rules


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
    platform = _platform(alternative)
    found = _issuer_findings(alternative, platform)
    if found:
        return found  # a claim this issuer never sends: the condition fails, nothing gets in
    found.extend(_audience_findings(alternative, policy, platform))
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
    found.extend(_subject_form_findings(alternative, platform, policy.cloud))
    scope = _scope(alternative, platform)
    found.extend(_scope_findings(scope, alternative, platform))
    # A partial wildcard spans the rest of the subject: its finding already says so.
    if scope.reach in (Reach.REPO, Reach.ORG_WIDE):
        found.extend(_context_findings(alternative, platform, scope, kind))
    return found


# Platforms and issuers

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
_GHES_ISSUER = re.compile(r"(https://)?[^/]+/_services/token/?\Z", re.IGNORECASE)


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


def _platform(alternative: Alternative) -> str:
    by_issuer = issuer_platform(alternative.issuer)
    if by_issuer:
        return by_issuer
    implied = {p for c in alternative.constraints if (p := _implied_platform(c)) is not None}
    return implied.pop() if len(implied) == 1 else "other"


def _issuer_findings(alternative: Alternative, platform: str) -> list[TrustFinding]:
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
                f"the condition on {constraint.claim} {_show(constraint.values)} is written "
                f"for {other} tokens, but this trust is for {mine}'s issuer "
                f"({alternative.issuer}), whose tokens never match it: this way in never works. "
                f"Trust {other}'s issuer, or write the condition in {mine}'s claim format.",
                constraint.path,
            )
        )
    return found


# Audience

_GITHUB_DEFAULT_AUDIENCE = re.compile(r"https://github\.com/[^/]+/?\Z", re.IGNORECASE)


def _audience_findings(
    alternative: Alternative, policy: TrustPolicy, platform: str
) -> list[TrustFinding]:
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


# Which repositories get in


class Reach(enum.IntEnum):
    """How many repositories an alternative admits, narrowest first."""

    REPO = 0
    ORG_PARTIAL = 1
    """Some repositories of one owner (a name prefix, or a wildcard in an ID)."""
    ORG_WIDE = 2
    """Every repository of one owner, on purpose (``repo:org/*``, ``repository_owner``)."""
    OWNERS = 3
    """Repositories of other owners too."""
    NONE = 4
    """Nothing restricts the repository."""


@dataclass(frozen=True)
class Scope:
    """The reach of an alternative and the condition that decides it."""

    reach: Reach
    constraint: Constraint | None = None
    value: str = ""
    note: str = ""


_REPO_CLAIMS = frozenset(
    (
        "sub repository repository_id repository_owner repository_owner_id workflow_ref "
        "project_path project_id namespace_path namespace_id"
    ).split()
)
_GITHUB_SUB_KEYS = frozenset(
    (
        "repo context ref environment ref_type job_workflow_ref job_workflow_sha workflow "
        "workflow_ref workflow_sha repository repository_id repository_owner "
        "repository_owner_id repository_visibility actor actor_id event_name head_ref "
        "base_ref runner_environment enterprise enterprise_id sha"
    ).split()
)


def _scope(alternative: Alternative, platform: str) -> Scope:
    """The narrowest reach among the alternative's conditions (they must all hold)."""
    best = Scope(Reach.NONE)
    for constraint in alternative.constraints:
        if constraint.claim not in _REPO_CLAIMS:
            continue
        # Several values are alternatives: the widest one is what an attacker uses.
        worst: Scope | None = None
        for pattern in constraint.patterns:
            reach, note = _pattern_reach(constraint.claim, pattern, platform)
            if worst is None or reach > worst.reach:
                worst = Scope(reach, constraint, str(pattern), note)
        if worst is not None and worst.reach < best.reach:
            best = worst
    return best


def _pattern_reach(claim: str, pattern: Pattern, platform: str) -> tuple[Reach, str]:
    if claim == "sub":
        if platform == "gitlab":
            return _gitlab_sub_reach(pattern)
        return _github_sub_reach(pattern)
    if claim in ("repository", "project_path"):
        return _path_reach(pattern, "repository" if claim == "repository" else "project")
    if claim in ("repository_owner", "namespace_path"):
        if pattern.is_exact:
            return Reach.ORG_WIDE, ""
        prefix = pattern.literal_prefix
        if claim == "namespace_path" and prefix.endswith("/"):
            return Reach.ORG_WIDE, ""
        return Reach.OWNERS, _other_owners_note(prefix, pattern)
    id_note = "a pattern on a numeric ID also matches other owners' IDs; compare the ID exactly"
    if claim in ("repository_id", "project_id"):
        return (Reach.REPO, "") if pattern.is_exact else (Reach.OWNERS, id_note)
    if claim in ("repository_owner_id", "namespace_id"):
        return (Reach.ORG_WIDE, "") if pattern.is_exact else (Reach.OWNERS, id_note)
    # workflow_ref: OWNER/REPO/.github/workflows/FILE@REF
    prefix = pattern.literal_prefix
    slashes = prefix.count("/")
    if pattern.is_exact or slashes >= 2:
        return Reach.REPO, ""
    if slashes == 1:
        return (Reach.ORG_WIDE if prefix.endswith("/") else Reach.ORG_PARTIAL), ""
    return Reach.OWNERS, _other_owners_note(prefix, pattern)


def _other_owners_note(prefix: str, pattern: Pattern | None = None) -> str:
    if pattern is not None and not prefix and not pattern.matches_everything:
        return (
            "it does not fix the start of the value, so it also matches other owners' "
            "repositories whose names merely contain or end with the text (CEL's matches() "
            "is unanchored unless the regex starts with '^')"
        )
    if not prefix:
        return "it matches every repository"
    return f"it also matches owners whose names start with {prefix!r}, which anyone can register"


def _path_reach(pattern: Pattern, what: str) -> tuple[Reach, str]:
    if pattern.is_exact:
        return Reach.REPO, ""
    prefix = pattern.literal_prefix
    if "/" not in prefix:
        return Reach.OWNERS, _other_owners_note(prefix, pattern)
    if prefix.endswith("/") and pattern.without_prefix(prefix).matches_everything:
        return Reach.ORG_WIDE, ""
    return Reach.ORG_PARTIAL, f"it matches every {what} whose path starts with {prefix!r}"


def _github_sub_reach(pattern: Pattern) -> tuple[Reach, str]:
    prefix = pattern.literal_prefix
    exact = pattern.is_exact
    if not prefix.startswith("repo:"):
        if not exact and "repo:".startswith(prefix):
            return Reach.OWNERS, "it matches the subject of every repository on GitHub"
        pairs = _chain(prefix, exact)
        if pairs is None:
            return Reach.REPO, ""  # never issued by GitHub: reported as subject-malformed
        keys = dict(pairs)
        if "repository" in keys or "repository_id" in keys:
            return Reach.REPO, ""
        if "repository_owner" in keys or "repository_owner_id" in keys:
            return Reach.ORG_WIDE, ""
        return Reach.OWNERS, (
            "it names no repository or owner, so every repository whose token carries these "
            "claims matches (a reusable workflow is called from other owners' repositories too)"
        )
    rest = prefix[len("repo:") :]
    cut = _first(rest, "/@")
    if cut < 0:
        if exact:
            return Reach.REPO, ""
        return Reach.OWNERS, _other_owners_note(rest)
    slash = rest.find("/")
    if slash < 0:
        # repo:OWNER@<wildcard>: the wildcard can stand for "ID/any-repository@ID".
        if exact:
            return Reach.REPO, ""
        return Reach.ORG_PARTIAL, (
            f"the wildcard in place of {rest[:cut]}'s ID can also stand for the name of any "
            f"of {rest[:cut]}'s repositories"
        )
    name = rest[slash + 1 :]
    if _first(name, ":@") >= 0 or exact:
        return Reach.REPO, ""
    owner = rest[:cut]
    if not name:
        return Reach.ORG_WIDE, ""
    return Reach.ORG_PARTIAL, (
        f"it also matches every repository of {owner} whose name starts with {name!r} "
        "(and the wildcard spans ':' too, so every ref of them)"
    )


def _gitlab_sub_reach(pattern: Pattern) -> tuple[Reach, str]:
    prefix = pattern.literal_prefix
    head = "project_path:"
    if not prefix.startswith(head):
        if not pattern.is_exact and head.startswith(prefix):
            return Reach.OWNERS, "it matches every project on the GitLab instance"
        return Reach.REPO, ""
    rest = prefix[len(head) :]
    if ":" in rest or pattern.is_exact:
        return Reach.REPO, ""
    if "/" not in rest:
        return Reach.OWNERS, (
            f"it also matches groups whose names start with {rest!r}, which any user of the "
            "instance may be able to create"
        )
    if rest.endswith("/"):
        return Reach.ORG_WIDE, ""
    return Reach.ORG_PARTIAL, f"it matches every project whose path starts with {rest!r}"


def _first(text: str, chars: str) -> int:
    positions = [text.find(char) for char in chars if char in text]
    return min(positions) if positions else -1


def _chain(text: str, exact: bool) -> list[tuple[str, str]] | None:
    """``key:value:...`` pairs of a GitHub subject (``pull_request`` stands alone).

    For a pattern only complete pairs count: the last piece may be cut short by a wildcard.
    ``None`` when a piece is not a claim GitHub can put in a subject.
    """
    pieces = text.split(":")
    if not exact:
        pieces = pieces[:-1]
    pairs: list[tuple[str, str]] = []
    index = 0
    while index < len(pieces):
        key = pieces[index]
        if key == "pull_request":
            pairs.append((key, ""))
            index += 1
            continue
        if key not in _GITHUB_SUB_KEYS:
            return None
        if index + 1 >= len(pieces):
            break
        pairs.append((key, pieces[index + 1]))
        index += 2
    return pairs


def _scope_findings(scope: Scope, alternative: Alternative, platform: str) -> list[TrustFinding]:
    example = (
        "repo:OWNER/REPO:environment:production"
        if platform == "github"
        else "project_path:GROUP/PROJECT:ref_type:branch:ref:main"
    )
    if scope.reach is Reach.NONE:
        names = "repository" if platform == "github" else "project"
        who = (
            "on GitHub.com, anyone's"
            if platform == "github"
            else "on gitlab.com, anyone's; on your own instance, every user's"
        )
        return [
            finding(
                "no-subject-condition",
                f"no condition on sub or the {names}: every {names} whose jobs can get a token "
                f"from this issuer gets in ({who}). Add an exact subject condition, e.g. "
                f"{example!r}.",
                alternative.path,
            )
        ]
    assert scope.constraint is not None
    where = scope.constraint.path
    if scope.reach is Reach.OWNERS:
        return [
            finding(
                "subject-other-owners",
                f"{scope.value!r} on {scope.constraint.claim}: {scope.note}. Name the owner "
                f"and repository exactly, e.g. {example!r}.",
                where,
            )
        ]
    if scope.reach is Reach.ORG_PARTIAL:
        return [
            finding(
                "subject-repo-wildcard",
                f"{scope.value!r} on {scope.constraint.claim}: {scope.note}. Name the "
                "repository exactly (list several subjects if several need the role).",
                where,
            )
        ]
    if scope.reach is Reach.ORG_WIDE:
        owner = "organization" if platform == "github" else "group (and its subgroups)"
        return [
            finding(
                "subject-org-wide",
                f"{scope.value!r} on {scope.constraint.claim} trusts every repository of the "
                f"{owner}, including any a member creates later. That is fine only if "
                "org-wide access is intended (a shared read-only role); otherwise name the "
                "repository.",
                where,
            )
        ]
    return []


# Which refs, events and environments get in


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
        return _gitlab_context(rest) if platform == "gitlab" else _github_context(rest)
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
        if platform == "github" and _id_wildcard(pattern):
            # repo:OWNER/REPO@<wildcard>:...: the wildcard stands for the ID.
            after_id = Pattern(pattern.without_prefix(prefix).tokens[1:])
            if after_id.literal_prefix.startswith(":"):
                return after_id.without_prefix(":")
            return Pattern.glob("*")
    elif platform == "github" and scope.reach is Reach.REPO:
        # A customized subject without repo: (repository_id:...:ref:...).
        pairs = _chain(prefix, pattern.is_exact)
        if pairs:
            return Pattern.literal(":".join(f"{k}:{v}" if v else k for k, v in pairs))
    if pattern.is_exact:
        return Pattern(())
    # After a wildcard only the text following the last one says anything certain.
    tail = pattern.literal_suffix
    if tail.startswith(":"):
        return Pattern.literal(tail[1:])
    return Pattern.glob("*")


def _github_context(rest: Pattern) -> Ctx:
    prefix = rest.literal_prefix
    if rest.is_exact:
        pairs = _chain(prefix, True)
        if not pairs:
            return Ctx.MALFORMED
        contexts = [c for c in (_github_pair_context(k, v) for k, v in pairs) if c is not None]
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
    pairs = _chain(prefix, False)
    if pairs is None:
        return Ctx.MALFORMED
    contexts = [c for c in (_github_pair_context(k, v) for k, v in pairs) if c is not None]
    return contexts[0] if contexts else Ctx.ANY


def _github_pair_context(key: str, value: str) -> Ctx | None:
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


def _gitlab_context(rest: Pattern) -> Ctx:
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


def _context_findings(
    alternative: Alternative, platform: str, scope: Scope, kind: RoleKind
) -> list[TrustFinding]:
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


# The form of subjects

_IMMUTABLE_PART = re.compile(r"[^@/:]+@\d+\Z")


_NAME_CLAIMS = frozenset(
    {"sub", "repository", "repository_owner", "project_path", "namespace_path"}
)


def _subject_form_findings(
    alternative: Alternative, platform: str, cloud: str
) -> list[TrustFinding]:
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
    if platform == "github" and _id_wildcard(pattern):
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
    if _gitlab_context(_rest_after(pattern, "project_path:")) is Ctx.MALFORMED:
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
        pairs = _chain(prefix, exact)
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
        if issuer and _GHES_ISSUER.match(issuer.strip()):
            return "GitHub Enterprise Server does not issue immutable subjects", None
    rest_pattern = pattern.without_prefix(prefix[: len("repo:") + colon + 1])
    if not rest_pattern.tokens:
        return "nothing follows the repository", None
    context = _github_context(rest_pattern)
    if context is Ctx.MALFORMED:
        return _context_problem(rest_pattern.literal_prefix), None
    if rest_pattern.is_exact:
        pairs = _chain(rest_pattern.literal_prefix, True) or []
        if len(pairs) > 1 or (pairs and _github_pair_context(*pairs[0]) is None):
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


def _id_wildcard(pattern: Pattern) -> bool:
    prefix = pattern.literal_prefix
    return (
        prefix.startswith("repo:")
        and prefix.endswith("@")
        and "/" in prefix
        and ":" not in prefix[len("repo:") :]
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


def _show(values: tuple[str, ...]) -> str:
    return repr(values[0]) if len(values) == 1 else repr(list(values))
