"""Pinning rules: ``unpinned-uses`` (actions, reusable workflows, ``docker://`` steps) and
``unpinned-images`` (job containers, services, docker actions' ``runs.image``).

A tag or a branch is a pointer its owner (or whoever steals their credentials) can move:
tj-actions/changed-files (CVE-2025-30066) had every tag rewritten to a commit that printed
the runner's secrets. Only a full commit SHA, or an image digest, names fixed content.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from tollgate.audit.findings import Confidence, Finding, Location, Persona, RuleInfo, Severity
from tollgate.audit.github.expressions import Call, Expr, Literal, Logical, find_expressions
from tollgate.audit.github.model import Action, ImageRef, Uses, Workflow, parse_image
from tollgate.audit.github.rules._places import Model, facts
from tollgate.audit.rules import AuditContext, FileRule, PinningPolicy, Rule, register
from tollgate.audit.source import YMapping, YNode, YScalar, YSequence

_FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")
_SHORT_SHA = re.compile(r"[0-9a-fA-F]{7,39}")
# SLSA's generators verify that they are called by a release tag (a SHA pin fails to build
# provenance), and their tags are immutable by the project's own rules.
_TAG_REQUIRED = frozenset(("slsa-framework/slsa-github-generator",))
# GitHub's own organisations: moving their tags takes a compromise of GitHub itself, which
# already runs the runner, the token service and the hosted images.
_FIRST_PARTY = frozenset(("actions", "github"))


@lru_cache(maxsize=64)
def _globs(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for ``owner/repo`` globs (``*`` matches anything, ``/`` included)."""
    if not patterns:
        return None
    return re.compile(
        "|".join(".*".join(re.escape(part) for part in p.lower().split("*")) for p in patterns)
    )


def needs_pin(policy: PinningPolicy, *names: str) -> bool:
    """True when the policy wants a full SHA (or digest) for something called ``names``."""
    if not policy.allow_ref and "*" in policy.require_sha:
        return True  # the default policy: no need to match anything
    allowed = _globs(policy.allow_ref)
    if allowed is not None and any(allowed.fullmatch(name) for name in names):
        return False
    required = _globs(policy.require_sha)
    return required is not None and any(required.fullmatch(name) for name in names)


def _lower(severity: Severity) -> Severity:
    return Severity.MEDIUM if severity is Severity.HIGH else Severity.LOW


@register
class UnpinnedUses(FileRule):
    """``uses:`` that is not a full commit SHA, as the pinning policy requires."""

    info = RuleInfo(
        id="unpinned-uses",
        name="Unpinned action or reusable workflow",
        summary="A `uses:` that follows a tag or branch instead of a full commit SHA runs "
        "whatever that ref points to when the job starts, with the job's token and secrets.",
        default_severity=Severity.MEDIUM,
        help_uri="docs/rules/unpinned-uses.md",
    )

    def check(self, model: Workflow | Action, context: AuditContext) -> Iterator[Finding]:
        for site in facts(model).uses:
            uses = site.uses
            if uses.kind == "repository":
                graded = _grade_repository(uses, context.pinning)
            elif uses.kind == "docker" and uses.image is not None:
                graded = _grade_docker(uses.image, context.pinning)
            else:
                continue  # local and self refs are this commit; invalid ones are not ours
            if graded is not None:
                severity, message = graded
                yield Finding(
                    rule=self.info.id,
                    severity=severity,
                    confidence=Confidence.HIGH,
                    message=message,
                    location=model.location(uses.node),
                    anchor=site.anchor,
                    # An info grade is a known exception, worth a look only when auditing.
                    persona=Persona.AUDITOR if severity is Severity.INFO else Persona.REGULAR,
                    evidence=uses.raw,
                )


def _grade_repository(uses: Uses, policy: PinningPolicy) -> tuple[Severity, str] | None:
    ref = uses.ref
    if ref is not None and _FULL_SHA.fullmatch(ref):
        return None
    slug = uses.slug or ""
    if not needs_pin(policy, slug, f"{slug}/{uses.path.lower()}" if uses.path else slug):
        return None
    fix = "pin it to a full 40-character commit SHA (keep the tag in a comment: `@<sha> # v1.2.3`)."
    if ref is None:
        return Severity.HIGH, f"`{uses.raw}` has no `@ref`, so it names no fixed code; {fix}"
    has_digit = any(c.isdigit() for c in ref)
    if _SHORT_SHA.fullmatch(ref) and has_digit and not ref.isdigit():
        # GitHub refuses abbreviated SHAs: the ref only resolves as a branch or tag of
        # that name, which anyone with push access can create.
        severity = Severity.MEDIUM
        what = f"`@{ref}` is an abbreviated SHA, which GitHub resolves only as a branch or tag"
    elif not has_digit:
        severity = Severity.HIGH
        what = f"`@{ref}` is a branch: every push to it changes the code this job runs"
    else:
        severity = Severity.MEDIUM
        what = f"`@{ref}` is a tag, which its owner (or a thief of their credentials) can move"
    if uses.owner is not None and uses.owner.lower() in _FIRST_PARTY:
        severity = _lower(severity)
    if slug in _TAG_REQUIRED and severity is Severity.MEDIUM:
        return Severity.INFO, f"`{uses.raw}` must be called by a tag, which it verifies itself."
    return severity, f"`{uses.raw}`: {what}; {fix}"


def _grade_docker(image: ImageRef, policy: PinningPolicy) -> tuple[Severity, str] | None:
    if image.is_digest_pinned or not needs_pin(policy, image.name.lower()):
        return None
    fix = "pin it by digest (`docker://image:tag@sha256:...`)."
    if image.tag is None or image.tag == "latest":
        return Severity.HIGH, f"`docker://{image.raw}` runs whatever `latest` is today; {fix}"
    return Severity.MEDIUM, f"`docker://{image.raw}` follows a tag, which can be re-pushed; {fix}"


# `${{ matrix.image }}` or `${{ matrix.config.image }}`: resolved from the job's matrix.
_MATRIX_REF = re.compile(r"\$\{\{\s*matrix((?:\.[A-Za-z0-9_-]+)+)\s*\}\}")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
# A string literal inside an expression that reads like an image (`'ghcr.io/x/y:latest'`).
_IMAGE_LITERAL = re.compile(r"[a-z0-9][\w.{}-]*(?::\d+)?(?:/[\w.{}-]+)*(?::[\w.{}-]+)?")


@dataclass(frozen=True)
class _Grade:
    severity: Severity
    confidence: Confidence
    persona: Persona
    message: str


def _grade_image(what: str, shown: str, image: ImageRef, confidence: Confidence) -> _Grade | None:
    """How bad a literal image reference is (``None``: digest-pinned)."""
    if image.is_digest_pinned or not image.name:
        return None
    if image.tag is None or image.tag == "latest":
        return _Grade(
            Severity.HIGH,
            confidence,
            Persona.REGULAR,
            f"The {what} `{shown}` is `latest`, which changes with every push to it; "
            "pin a version and its digest (`image:1.2@sha256:...`).",
        )
    return _Grade(
        Severity.MEDIUM,
        confidence,
        Persona.PEDANTIC,
        f"The {what} `{shown}` follows a tag, which can be re-pushed; add its digest "
        "(`image:tag@sha256:...`) and update both together.",
    )


def _matrix_values(matrix: YNode | None, path: list[str]) -> list[YScalar]:
    """The literal values ``matrix.<path>`` takes: from the axis and from ``include:``."""
    found: list[YScalar] = []

    def descend(node: YNode, rest: list[str]) -> None:
        if isinstance(node, YSequence):
            for item in node.items:
                descend(item, rest)
        elif not rest:
            if isinstance(node, YScalar) and not node.is_null:
                found.append(node)
        elif isinstance(node, YMapping):
            child = node.get(rest[0])
            if child is not None:
                descend(child, rest[1:])

    if isinstance(matrix, YMapping):
        for key, value in matrix.str_items():
            if key == path[0]:
                descend(value, path[1:])
            elif key == "include":
                descend(value, path)
    return found


def _literals(raw: str) -> list[str]:
    """String literals an expression in ``raw`` can evaluate to that read like images
    (``a && 'img:1' || 'img:2'``; not the operands of ``==`` or of ``contains()``)."""
    found: list[str] = []
    stack: list[Expr] = [match.expr for match in find_expressions(raw) if match.expr is not None]
    while stack:
        expr = stack.pop()
        if isinstance(expr, Logical):
            # `a && b` yields `b` (or a falsy `a`); `a || b` yields either.
            stack.extend(expr.operands if expr.op == "||" else expr.operands[-1:])
        elif isinstance(expr, Call) and expr.name == "format" and expr.args:
            stack.append(expr.args[0])
        elif (
            isinstance(expr, Literal)
            and isinstance(expr.value, str)
            and ("/" in expr.value or ":" in expr.value)
            and _IMAGE_LITERAL.fullmatch(expr.value)
        ):
            found.append(expr.value)
    return found


@register
class UnpinnedImages(Rule):
    """Container images with no digest: ``latest`` or no tag (high), a tag only (pedantic)."""

    info = RuleInfo(
        id="unpinned-images",
        name="Unpinned container image",
        summary="A job container, service or docker action image without a `@sha256:` digest "
        "can change under the job; `latest` or no tag changes with every push.",
        default_severity=Severity.HIGH,
        help_uri="docs/rules/unpinned-images.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        for job in workflow.jobs.values():
            places = [(job.container, f"{job.anchor}.container", "job container")]
            places.extend(
                (service, f"{job.anchor}.services.{name}", f"service `{name}`")
                for name, service in job.services.items()
            )
            for container, anchor, what in places:
                if container is None or container.image is None or container.image_node is None:
                    continue
                if container.image_node is not container.node:
                    anchor = f"{anchor}.image"
                yield from self._image(
                    workflow, container.image_node, container.image, anchor, what, job.matrix
                )

    def check_action(self, action: Action, context: AuditContext) -> Iterator[Finding]:
        if action.image is not None and action.image_ref is not None:
            yield from self._image(action, action.image, action.image_ref, "runs.image", "image")

    def _image(
        self,
        model: Model,
        node: YScalar,
        image: ImageRef,
        anchor: str,
        what: str,
        matrix: YNode | None = None,
    ) -> Iterator[Finding]:
        raw = image.raw.strip()
        if not image.is_expression or (image.tag is not None and _TAG.fullmatch(image.tag)):
            # A literal tag after a computed name (`ghcr.io/${{ x }}/y:latest`) still tells.
            grade = _grade_image(what, raw, image, Confidence.HIGH)
            if grade is not None:
                yield self._finding(model, node, anchor, raw, grade)
            return
        if image.is_digest_pinned:
            return  # `${{ env.REGISTRY }}/tool@sha256:...`
        reference = _MATRIX_REF.fullmatch(raw)
        values = _matrix_values(matrix, reference.group(1)[1:].split(".")) if reference else []
        if values:
            # One finding per unpinned value, on the `image:` line (where an ignore comment
            # goes), pointing at the matrix entry to fix.
            for value in values:
                grade = _grade_image(what, value.value, parse_image(value.value), Confidence.HIGH)
                if grade is not None:
                    yield self._finding(
                        model, node, anchor, value.value.strip(), grade, model.location(value)
                    )
            return
        graded = [
            (grade, literal)
            for literal in _literals(raw)
            # A `format()` template whose tag is a placeholder (`img:{0}`) tells nothing.
            if "{" not in (parse_image(literal).tag or "")
            and (grade := _grade_image(what, literal, parse_image(literal), Confidence.MEDIUM))
        ]
        if graded:
            # The expression may pick another value: medium confidence, worst one shown.
            grade, literal = max(graded, key=lambda pair: pair[0].severity.rank)
            yield self._finding(model, node, anchor, literal, grade)
            return
        yield self._finding(
            model,
            node,
            anchor,
            raw,
            _Grade(
                Severity.INFO,
                Confidence.LOW,
                Persona.AUDITOR,
                f"The {what} `{raw}` is computed, so whether it is pinned cannot be told "
                "here; make sure every value it takes carries a `@sha256:` digest.",
            ),
        )

    def _finding(
        self,
        model: Model,
        node: YScalar,
        anchor: str,
        evidence: str,
        grade: _Grade,
        *related: Location,
    ) -> Finding:
        return Finding(
            rule=self.info.id,
            severity=grade.severity,
            confidence=grade.confidence,
            message=grade.message,
            location=model.location(node),
            anchor=anchor,
            persona=grade.persona,
            evidence=evidence,
            related=related,
        )
