"""The GitHub format: annotations, a job summary, and the text report for the log.

GitHub shows at most 10 annotations of each level per step (50 per job) and drops the rest
silently, so each level stops at that many and the summary says how many were left out.
Critical and high findings are errors, so they are never crowded out by notices. The job
summary is capped to the most severe findings, far below GitHub's 1 MiB per step.
"""

from __future__ import annotations

import heapq
import re
from typing import TextIO

from tollgate.audit.findings import Diagnostic, Finding, Severity
from tollgate.audit.report.interface import Format, ReportOptions, RunStats
from tollgate.audit.report.text import TextFormat, printable
from tollgate.ci.interface import Annotation, AnnotationLevel, Platform

LEVEL = {
    Severity.CRITICAL: AnnotationLevel.ERROR,
    Severity.HIGH: AnnotationLevel.ERROR,
    Severity.MEDIUM: AnnotationLevel.WARNING,
    Severity.LOW: AnnotationLevel.NOTICE,
    Severity.INFO: AnnotationLevel.NOTICE,
}
"""Annotation level of each severity."""

# Markdown and HTML punctuation that could format, link, mention or break a table cell.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>()#+!|~@&$:])")
_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def cell(text: str, limit: int = 300) -> str:
    """``text`` as literal, single-line Markdown for a table cell, at most ``limit`` chars."""
    text = _BREAKS.sub(" ", text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _MARKDOWN.sub(r"\\\1", printable(text))


class GitHubFormat(Format):
    """Annotations per finding, a job summary at the end, the text report on the stream."""

    ANNOTATIONS_PER_LEVEL = 10
    """GitHub's per-step cap for each of error, warning and notice."""
    SUMMARY_ROWS = 100
    DIAGNOSTIC_ROWS = 20
    SUMMARY_BUDGET = 512 * 1024
    """Bytes of Markdown at most; GitHub refuses a step summary over 1 MiB."""

    def __init__(self, stream: TextIO, options: ReportOptions | None = None) -> None:
        super().__init__(stream, options)
        if self.options.platform is None:
            raise ValueError("the github format needs a platform in its options")
        self._platform: Platform = self.options.platform
        self._text = TextFormat(stream, self.options)
        self._annotated = dict.fromkeys(AnnotationLevel, 0)
        self._not_annotated = 0
        # The most severe findings, earliest first among equals: a bounded min-heap whose
        # root is the least severe, latest finding, the first to give way.
        self._rows: list[tuple[int, int, Finding]] = []
        self._diagnostics: list[Diagnostic] = []

    def begin(self) -> None:
        self._text.begin()

    def _finding(self, finding: Finding) -> None:
        self._text.finding(finding)
        level = LEVEL[finding.severity]
        if self._may_annotate(level):
            where = finding.location
            info = self.rule_info(finding.rule, finding.severity)
            self._platform.annotate(
                Annotation(
                    level=level,
                    message=(
                        f"{finding.message} "
                        f"[{finding.severity.value}, {finding.confidence.value} confidence]"
                    ),
                    file=where.path,
                    line=where.line,
                    column=where.column,
                    end_line=where.end_line,
                    end_column=where.end_column,
                    title=f"{finding.rule}: {info.name}",
                )
            )
        entry = (finding.severity.rank, -self.tally.findings, finding)
        if len(self._rows) < self.SUMMARY_ROWS:
            heapq.heappush(self._rows, entry)
        else:
            heapq.heappushpop(self._rows, entry)

    def _diagnostic(self, diagnostic: Diagnostic) -> None:
        self._text.diagnostic(diagnostic)
        if self._may_annotate(AnnotationLevel.WARNING):
            self._platform.annotate(
                Annotation(
                    level=AnnotationLevel.WARNING,
                    message=diagnostic.message,
                    file=diagnostic.path,
                    line=diagnostic.line,
                    column=diagnostic.column,
                    title="tollgate: could not audit this file",
                )
            )
        if len(self._diagnostics) < self.DIAGNOSTIC_ROWS:
            self._diagnostics.append(diagnostic)

    def _may_annotate(self, level: AnnotationLevel) -> bool:
        """Count one annotation of ``level``: false once GitHub would drop it."""
        if self._annotated[level] >= self.ANNOTATIONS_PER_LEVEL:
            self._not_annotated += 1
            return False
        self._annotated[level] += 1
        return True

    def end(self, stats: RunStats) -> None:
        self._text.end(stats)
        self._platform.summary(self.summary_markdown(stats))

    def summary_markdown(self, stats: RunStats) -> str:
        """The job summary: counts by severity, the most severe findings, the diagnostics."""
        tally = self.tally
        lines = [
            "### tollgate audit",
            "",
            tally.describe(stats.files_scanned),
            "",
            "| Severity | Findings |",
            "| --- | ---: |",
        ]
        lines += [
            f"| {severity} | {tally.by_severity[severity]} |"
            for severity in sorted(Severity, key=lambda s: -s.rank)
        ]
        # What follows the table (notes, up to DIAGNOSTIC_ROWS clipped rows) fits in 64 KiB.
        budget = self.SUMMARY_BUDGET - 64 * 1024
        rows = sorted(self._rows, key=lambda entry: (-entry[0], -entry[1]))
        shown = 0
        if rows:
            lines += [
                "",
                "| Severity | Confidence | Rule | Location | Message |",
                "| --- | --- | --- | --- | --- |",
            ]
            for _rank, _order, finding in rows:
                where = finding.location
                row = (
                    f"| {finding.severity} | {finding.confidence} | {cell(finding.rule)} "
                    f"| {cell(f'{where.path}:{where.line}:{where.column}')} "
                    f"| {cell(finding.message)} |"
                )
                budget -= len(row.encode("utf-8", "replace")) + 1
                if budget < 0:
                    break
                lines.append(row)
                shown += 1
        notes = []
        if tally.findings > shown:
            notes.append(
                f"{tally.findings - shown} more findings are not in this table "
                "(the most severe come first); the job log lists them all."
            )
        if self._not_annotated:
            notes.append(
                f"{self._not_annotated} findings and diagnostics were not annotated: GitHub "
                f"shows at most {self.ANNOTATIONS_PER_LEVEL} annotations of each level per "
                "step."
            )
        if notes:
            lines += ["", *(f"_{note}_" for note in notes)]
        if self._diagnostics:
            lines += ["", "#### Files not audited", "", "| File | Problem |", "| --- | --- |"]
            lines += [
                f"| {cell(diagnostic.path)} | {cell(diagnostic.message)} |"
                for diagnostic in self._diagnostics
            ]
            if tally.diagnostics > len(self._diagnostics):
                lines += ["", f"_{tally.diagnostics - len(self._diagnostics)} more in the log._"]
        return "\n".join(lines) + "\n"
