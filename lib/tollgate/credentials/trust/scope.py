"""Which repositories (and owners) a way in admits."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tollgate.credentials.trust.findings import (
    Alternative,
    Constraint,
    Pattern,
    TrustFinding,
    finding,
)


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


def scope_of(alternative: Alternative, platform: str) -> Scope:
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
        pairs = chain(prefix, exact)
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


def chain(text: str, exact: bool) -> list[tuple[str, str]] | None:
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


def scope_findings(scope: Scope, alternative: Alternative, platform: str) -> list[TrustFinding]:
    """Findings for how many repositories ``scope`` lets in."""
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


def id_wildcard(pattern: Pattern) -> bool:
    """Whether ``pattern`` is a GitHub ``repo:OWNER/REPO@...`` subject with an id wildcard."""
    prefix = pattern.literal_prefix
    return (
        prefix.startswith("repo:")
        and prefix.endswith("@")
        and "/" in prefix
        and ":" not in prefix[len("repo:") :]
    )
