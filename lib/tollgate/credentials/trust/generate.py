"""Least-privilege trust for one repository: exact subject, ref or environment, audience.

:class:`TrustSpec` says who should get in (a GitHub repository or GitLab project, its refs
or environments, the audience); the builders write what each cloud needs for exactly
that: an IAM trust policy, a CEL attribute condition (or the provider around it), Entra
federated identity credentials. :func:`token_conditions` does the same for the claims of a
real token, to show which conditions it would match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from tollgate.errors import UsageError

if TYPE_CHECKING:
    from tollgate.credentials.claims import TokenClaims

__all__ = [
    "ACCOUNT_PLACEHOLDER",
    "AWS_AUDIENCE",
    "AZURE_AUDIENCE",
    "GITHUB_ISSUER",
    "GITLAB_URL",
    "TrustSpec",
    "aws_policy",
    "azure_credentials",
    "gcp_condition",
    "gcp_provider",
    "github_spec",
    "gitlab_spec",
    "spec_from_claims",
    "token_conditions",
]

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_URL = "https://gitlab.com"
AWS_AUDIENCE = "sts.amazonaws.com"
AZURE_AUDIENCE = "api://AzureADTokenExchange"
ACCOUNT_PLACEHOLDER = "ACCOUNT_ID"
GCP_SUBJECT_LIMIT = 127
"""Bytes of ``google.subject`` GCP accepts (google-github-actions/auth TROUBLESHOOTING)."""

_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?\Z")
_REPO = re.compile(r"[A-Za-z0-9._-]{1,100}\Z")
_GITLAB_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_DIGITS = re.compile(r"[0-9]+\Z")
_ACCOUNT = re.compile(r"[0-9]{12}\Z")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class TrustSpec:
    """Who may get in. Build it with :func:`github_spec` or :func:`gitlab_spec`."""

    platform: Literal["github", "gitlab"]
    path: str
    """``OWNER/REPO`` or ``GROUP/PROJECT``."""
    issuer: str
    refs: tuple[str, ...] = ()
    """Full refs: ``refs/heads/main``, ``refs/tags/v1``."""
    environments: tuple[str, ...] = ()
    audience: str | None = None
    """``None``: each cloud's own default."""
    owner_id: str | None = None
    repo_id: str | None = None
    immutable_subject: bool = False
    """Write GitHub's ``repo:OWNER@ID/REPO@ID:...`` form (oidc-anchors.md section 7.1)."""
    exact_subjects: tuple[str, ...] = ()
    """Subjects to use verbatim (a real token's), instead of building them."""

    @property
    def host(self) -> str:
        """The issuer without scheme or trailing slash: IAM's provider name and key prefix."""
        return re.sub(r"^[a-z]+://", "", self.issuer, flags=re.IGNORECASE).rstrip("/")

    def subjects(self) -> tuple[str, ...]:
        """The ``sub`` values to trust (AWS, Azure): one per ref or environment."""
        if self.exact_subjects:
            return self.exact_subjects
        if self.platform == "gitlab":
            return tuple(
                f"project_path:{self.path}:ref_type:{_gitlab_ref(ref)[0]}:ref:{_gitlab_ref(ref)[1]}"
                for ref in self.refs
            )
        owner, repo = self.path.split("/", 1)
        if self.immutable_subject:
            owner, repo = f"{owner}@{self.owner_id}", f"{repo}@{self.repo_id}"
        contexts = [f"environment:{_escape(env)}" for env in self.environments]
        contexts += [f"ref:{ref}" for ref in self.refs]
        return tuple(f"repo:{owner}/{repo}:{context}" for context in contexts)


def github_spec(
    repo: str,
    *,
    refs: tuple[str, ...] = (),
    environments: tuple[str, ...] = (),
    audience: str | None = None,
    owner_id: str | None = None,
    repo_id: str | None = None,
    immutable_subject: bool = False,
    issuer: str | None = None,
) -> TrustSpec:
    """A GitHub repository's trust; :class:`UsageError` on anything inexact."""
    owner, slash, name = repo.partition("/")
    if not slash or not _OWNER.match(owner) or not _REPO.match(name) or name in (".", ".."):
        raise UsageError(
            f"{repo!r} is not OWNER/REPO",
            hint="give the exact repository, e.g. --repo octo-org/octo-repo (no wildcards: "
            "generate writes least-privilege trust; write org-wide trust by hand)",
        )
    for label, value in (("--owner-id", owner_id), ("--repo-id", repo_id)):
        if value is not None and not _DIGITS.match(value):
            raise UsageError(f"{label} must be a number (GitHub's numeric ID), got {value!r}")
    if immutable_subject and (owner_id is None or repo_id is None):
        raise UsageError(
            "an immutable subject needs both IDs",
            hint="pass --owner-id and --repo-id (gh api repos/OWNER/REPO --jq '.owner.id, .id')",
        )
    _require_context(refs, environments)
    return TrustSpec(
        "github",
        repo,
        _issuer(issuer or GITHUB_ISSUER),
        refs=tuple(_full_ref(ref) for ref in refs),
        environments=tuple(_environment(env) for env in environments),
        audience=_audience(audience),
        owner_id=owner_id,
        repo_id=repo_id,
        immutable_subject=immutable_subject,
    )


def gitlab_spec(
    project: str,
    *,
    refs: tuple[str, ...] = (),
    environments: tuple[str, ...] = (),
    audience: str | None = None,
    gitlab_url: str | None = None,
    project_id: str | None = None,
) -> TrustSpec:
    """A GitLab project's trust; :class:`UsageError` on anything inexact."""
    segments = project.split("/")
    if len(segments) < 2 or not all(_GITLAB_SEGMENT.match(s) for s in segments):
        raise UsageError(
            f"{project!r} is not GROUP/PROJECT",
            hint="give the project's full path, e.g. --project my-group/my-project",
        )
    if project_id is not None and not _DIGITS.match(project_id):
        raise UsageError(f"--project-id must be a number, got {project_id!r}")
    _require_context(refs, environments)
    return TrustSpec(
        "gitlab",
        project,
        _issuer(gitlab_url or GITLAB_URL),
        refs=tuple(_full_ref(ref) for ref in refs),
        environments=tuple(_environment(env) for env in environments),
        audience=_audience(audience),
        repo_id=project_id,
    )


def spec_from_claims(claims: TokenClaims) -> TrustSpec | None:
    """The spec a token satisfies exactly (its own ``sub``), or ``None`` if unknown."""
    platform = claims.platform
    if platform == "other" or not claims.iss:
        return None
    ref = claims.get("ref_path" if platform == "gitlab" else "ref")
    if platform == "gitlab" and ref is None and claims.get("ref"):
        kind = "tags" if claims.get("ref_type") == "tag" else "heads"
        ref = f"refs/{kind}/{claims.get('ref')}"
    environment = claims.get("environment")
    path = claims.get("project_path" if platform == "gitlab" else "repository")
    if not path:
        return None
    return TrustSpec(
        platform,
        path,
        claims.iss,
        refs=(ref,) if ref else (),
        environments=(environment,) if environment else (),
        audience=claims.aud[0] if claims.aud else None,
        owner_id=claims.get("namespace_id" if platform == "gitlab" else "repository_owner_id"),
        repo_id=claims.get("project_id" if platform == "gitlab" else "repository_id"),
        exact_subjects=(claims.sub,) if claims.sub else (),
    )


# Builders


def aws_policy(spec: TrustSpec, *, account_id: str | None = None) -> dict[str, object]:
    """An IAM role trust policy: StringEquals on ``aud`` and on every subject."""
    _single_context(spec, "AWS")
    account = account_id or ACCOUNT_PLACEHOLDER
    if account_id is not None and not _ACCOUNT.match(account_id):
        raise UsageError(f"--account-id must be 12 digits, got {account_id!r}")
    subjects = spec.subjects()
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{account}:oidc-provider/{spec.host}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{spec.host}:aud": spec.audience or AWS_AUDIENCE,
                        f"{spec.host}:sub": subjects[0] if len(subjects) == 1 else list(subjects),
                    }
                },
            }
        ],
    }


def gcp_condition(spec: TrustSpec) -> str:
    """The CEL attribute condition: the exact repository, its IDs, refs and environments."""
    if spec.platform == "gitlab":
        terms = [f"assertion.project_path == {_cel(spec.path)}"]
        if spec.repo_id:
            terms.append(f"assertion.project_id == {_cel(spec.repo_id)}")
        terms.append(_cel_member("assertion.ref_path", spec.refs))
    else:
        terms = [f"assertion.repository == {_cel(spec.path)}"]
        if spec.owner_id:
            terms.append(f"assertion.repository_owner_id == {_cel(spec.owner_id)}")
        if spec.repo_id:
            terms.append(f"assertion.repository_id == {_cel(spec.repo_id)}")
        terms.append(_cel_member("assertion.ref", spec.refs))
    terms.append(_cel_member("assertion.environment", spec.environments))
    return " && ".join(term for term in terms if term)


def gcp_provider(spec: TrustSpec) -> dict[str, object]:
    """The provider's condition, attribute mapping and OIDC settings (``describe`` shape)."""
    if spec.platform == "gitlab":
        keys = ("project_path", "project_id", "namespace_id", "ref_path")
    else:
        keys = ("repository", "repository_id", "repository_owner_id", "ref")
    mapping = {"google.subject": "assertion.sub"}
    mapping.update({f"attribute.{key}": f"assertion.{key}" for key in keys})
    oidc: dict[str, object] = {"issuerUri": spec.issuer}
    if spec.audience:
        oidc["allowedAudiences"] = [spec.audience]
    return {"attributeCondition": gcp_condition(spec), "attributeMapping": mapping, "oidc": oidc}


def azure_credentials(spec: TrustSpec) -> list[dict[str, object]]:
    """One federated identity credential per subject (Entra matches subjects exactly)."""
    _single_context(spec, "Azure")
    credentials: list[dict[str, object]] = []
    for subject in spec.subjects():
        context = subject.split(":", 2)[-1] if spec.platform == "github" else subject
        name = _NAME_CHARS.sub("-", f"{spec.platform}-{spec.path}-{context.split(':')[-1]}")
        credentials.append(
            {
                "name": name.strip("-_")[:120],
                "issuer": spec.issuer,
                "subject": subject,
                "audiences": [spec.audience or AZURE_AUDIENCE],
                "description": f"{spec.path} ({context}), written by tollgate trust generate",
            }
        )
    return credentials


def token_conditions(claims: TokenClaims) -> dict[str, dict[str, object]]:
    """For each cloud, the trust condition this token would match exactly."""
    if not claims.sub or not claims.iss:
        return {}
    host = re.sub(r"^[a-z]+://", "", claims.iss, flags=re.IGNORECASE).rstrip("/")
    audiences: list[str] = list(claims.aud)
    aud: object = audiences[0] if len(audiences) == 1 else audiences
    result: dict[str, dict[str, object]] = {
        "aws": {
            "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT_PLACEHOLDER}:oidc-provider/{host}"},
            "Condition": {"StringEquals": {f"{host}:aud": aud, f"{host}:sub": claims.sub}},
        },
        "gcp": {"google.subject": claims.sub},
        "azure": {"issuer": claims.iss, "subject": claims.sub, "audiences": audiences},
        "vault": {"bound_audiences": audiences, "bound_subject": claims.sub},
    }
    spec = spec_from_claims(claims)
    if spec is not None:
        # The condition names the repository and its ref, not the subject: it keeps working
        # whatever subject template the repository uses.
        result["gcp"]["attributeCondition"] = gcp_condition(replace(spec, exact_subjects=()))
    return result


# Helpers


def _require_context(refs: tuple[str, ...], environments: tuple[str, ...]) -> None:
    if not refs and not environments:
        raise UsageError(
            "name the ref or environment to trust",
            hint=(
                "give --ref (a branch such as main, or refs/tags/v1) or --environment NAME: "
                "trust without one lets every branch and pull request of the repository in"
            ),
        )


def _single_context(spec: TrustSpec, cloud: str) -> None:
    if spec.exact_subjects:
        return
    if spec.platform == "gitlab" and spec.environments:
        raise UsageError(
            f"GitLab's sub carries no environment, so {cloud} cannot check one",
            hint="trust the protected branch that deploys (--ref main), or use GCP, whose "
            "attribute condition can check the environment claim",
        )
    if spec.refs and spec.environments:
        raise UsageError(
            f"GitHub's sub names the environment or the ref, never both, so {cloud} can check "
            "only one",
            hint="choose --environment (with required reviewers) or --ref; GCP can check both",
        )


def _full_ref(ref: str) -> str:
    text = ref.strip()
    if not text or any(char in text for char in "*?:[\\ ~^") or ".." in text:
        raise UsageError(
            f"{ref!r} is not an exact branch or tag",
            hint="give a branch (main), or a full ref (refs/heads/main, refs/tags/v1.0.0)",
        )
    if text.startswith("refs/"):
        if not text.startswith(("refs/heads/", "refs/tags/")) or text.endswith("/"):
            raise UsageError(
                f"{ref!r} is neither refs/heads/BRANCH nor refs/tags/TAG",
                hint="pull request refs cannot be trusted exactly; trust a branch or tag",
            )
        return text
    return f"refs/heads/{text}"


def _gitlab_ref(ref: str) -> tuple[str, str]:
    if ref.startswith("refs/tags/"):
        return "tag", ref[len("refs/tags/") :]
    return "branch", ref[len("refs/heads/") :]


def _environment(name: str) -> str:
    if not name.strip() or any(char in name for char in "*?"):
        raise UsageError(f"{name!r} is not an exact environment name")
    return name


def _audience(audience: str | None) -> str | None:
    if audience is not None and (not audience.strip() or any(c in audience for c in "*?")):
        raise UsageError(f"{audience!r} is not an exact audience")
    return audience


def _issuer(url: str) -> str:
    text = url.strip().rstrip("/")
    if not re.match(r"https://[^/\s]+", text):
        raise UsageError(f"{url!r} is not an https:// URL", hint="e.g. https://gitlab.example.com")
    return text


def _escape(value: str) -> str:
    """GitHub writes ':' inside subject values as %3A (oidc-anchors.md section 7.1)."""
    return value.replace(":", "%3A")


def _cel(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _cel_member(claim: str, values: tuple[str, ...]) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{claim} == {_cel(values[0])}"
    return f"{claim} in [{', '.join(_cel(v) for v in values)}]"
