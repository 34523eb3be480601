"""Builders shared by the report tests: rules, findings, a fake platform, a discarding stream."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

from tollgate.audit.findings import (
    Confidence,
    Diagnostic,
    Finding,
    Location,
    Persona,
    RuleInfo,
    Severity,
)
from tollgate.audit.report import Format, RunStats
from tollgate.ci.interface import Annotation, Platform

WORKFLOW = ".github/workflows/ci.yml"

RULES = {
    rule.id: rule
    for rule in (
        RuleInfo(
            id="template-injection",
            name="Template injection",
            summary="Expressions expanded into a shell script let whoever controls them run code.",
            default_severity=Severity.HIGH,
            help_uri="https://tollgate.example/rules/template-injection",
        ),
        RuleInfo(
            id="unpinned-uses",
            name="Unpinned action",
            summary="An action referenced by a branch or tag can change under you.",
            default_severity=Severity.MEDIUM,
            help_uri="docs/rules/unpinned-uses.md",
        ),
        RuleInfo(
            id="excessive-permissions",
            name="Excessive permissions",
            summary="The job's token can do more than the job needs.",
            default_severity=Severity.LOW,
        ),
    )
}


def make_finding(
    rule: str = "template-injection",
    severity: Severity = Severity.HIGH,
    confidence: Confidence = Confidence.MEDIUM,
    *,
    path: str = WORKFLOW,
    line: int = 5,
    column: int = 20,
    end_line: int | None = None,
    end_column: int | None = None,
    message: str = "github.event.issue.title is expanded into the script; pass it via env.",
    anchor: str = "jobs.build.steps[0].run",
    evidence: str = "github.event.issue.title",
    persona: Persona = Persona.REGULAR,
    related: tuple[Location, ...] = (),
) -> Finding:
    """A finding with sensible defaults; override what a test is about."""
    return Finding(
        rule=rule,
        severity=severity,
        confidence=confidence,
        message=message,
        location=Location(path, line, column, end_line, end_column),
        anchor=anchor,
        persona=persona,
        evidence=evidence,
        related=related,
    )


def render(report: Format, items: Iterable[Finding | Diagnostic], files_scanned: int = 1) -> None:
    """Drive ``report`` as the audit command does."""
    report.begin()
    for item in items:
        if isinstance(item, Finding):
            report.finding(item)
        else:
            report.diagnostic(item)
    report.end(RunStats(files_scanned=files_scanned))


def many_findings(count: int, per_file: int = 10) -> Iterator[Finding]:
    """``count`` distinct findings, made one at a time, ``per_file`` to a file."""
    severities = list(Severity)
    message = "github.event.issue.title is expanded into the script; pass it via env."
    for number in range(count):
        yield Finding(
            rule="template-injection" if number % 3 else "unpinned-uses",
            severity=severities[number % 5],
            confidence=Confidence.MEDIUM,
            message=message,
            location=Location(f"repo/.github/workflows/w{number // per_file}.yml", number % 12 + 1),
            anchor=f"jobs.j{number}.steps[0].run",
            evidence="github.event.issue.title",
        )


class FakePlatform(Platform):
    """Records annotations and summaries; anything else is a test failure."""

    name = "fake"

    def __init__(self) -> None:
        self.annotations: list[Annotation] = []
        self.summaries: list[str] = []
        self.neutralized = 0  # a count: the streaming tests send 100,000 lines through

    def annotate(self, annotation: Annotation) -> None:
        self.annotations.append(annotation)

    def summary(self, markdown: str) -> None:
        self.summaries.append(markdown)

    def neutralize(self, text: str) -> str:
        self.neutralized += 1
        return text.replace("::", ":\u200b:")

    def id_token(self, audience: str | None = None) -> str:
        raise AssertionError("a report must not ask for a token")

    def add_mask(self, value: str) -> None:
        raise AssertionError("a report must not mask")

    def set_output(self, name: str, value: str) -> None:
        raise AssertionError("a report must not set outputs")

    def export_env(self, name: str, value: str, *, secret: bool) -> None:
        raise AssertionError("a report must not export variables")


class Sink(io.TextIOBase):
    """A text stream that counts what it is given and keeps none of it."""

    def __init__(self) -> None:
        self.chars = 0
        self.lines = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.chars += len(text)
        self.lines += text.count("\n")
        return len(text)
