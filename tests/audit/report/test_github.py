"""The GitHub format: annotations and a job summary through the Platform, text in the log."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import pytest

from tests.audit.report import RULES, WORKFLOW, FakePlatform, make_finding, render
from tollgate.audit.findings import Diagnostic, Finding, Severity
from tollgate.audit.report import GitHubFormat, ReportOptions
from tollgate.ci.interface import AnnotationLevel


def _run(items: Sequence[Finding | Diagnostic], files_scanned: int = 2) -> tuple[FakePlatform, str]:
    platform = FakePlatform()
    stream = io.StringIO()
    render(
        GitHubFormat(stream, ReportOptions(rules=RULES, platform=platform)), items, files_scanned
    )
    return platform, stream.getvalue()


def test_each_finding_is_an_annotation_at_its_place() -> None:
    finding = make_finding(line=5, column=20, end_line=5, end_column=51)
    platform, _ = _run([finding])
    [annotation] = platform.annotations
    assert annotation.level is AnnotationLevel.ERROR
    assert annotation.title == "template-injection: Template injection"
    assert annotation.message.startswith(finding.message)
    assert (annotation.file, annotation.line, annotation.column) == (WORKFLOW, 5, 20)
    assert (annotation.end_line, annotation.end_column) == (5, 51)


def test_annotation_level_follows_severity() -> None:
    platform, _ = _run([make_finding(severity=s) for s in Severity])
    levels = [annotation.level for annotation in platform.annotations]
    assert levels == [
        AnnotationLevel.NOTICE,  # info
        AnnotationLevel.NOTICE,  # low
        AnnotationLevel.WARNING,  # medium
        AnnotationLevel.ERROR,  # high
        AnnotationLevel.ERROR,  # critical
    ]


def test_unknown_rule_titles_with_its_id() -> None:
    platform, _ = _run([make_finding("new-rule")])
    assert platform.annotations[0].title == "new-rule: new-rule"


def test_each_level_stops_at_github_limit_and_the_summary_says_so() -> None:
    lows = [make_finding(severity=Severity.LOW, line=n + 1) for n in range(15)]
    highs = [make_finding(severity=Severity.HIGH, line=n + 1) for n in range(15)]
    platform, _ = _run(lows + highs)
    counts = dict.fromkeys(AnnotationLevel, 0)
    for annotation in platform.annotations:
        counts[annotation.level] += 1
    # Fifteen notices first do not crowd out the errors that come after them.
    assert counts == {
        AnnotationLevel.ERROR: 10,
        AnnotationLevel.WARNING: 0,
        AnnotationLevel.NOTICE: 10,
    }
    assert "10 findings and diagnostics were not annotated" in platform.summaries[0]


def test_summary_has_counts_and_findings_most_severe_first() -> None:
    items: Sequence[Finding | Diagnostic] = [
        make_finding(severity=Severity.LOW, message="low one", line=1),
        make_finding(severity=Severity.CRITICAL, message="critical one", line=2),
        make_finding(severity=Severity.LOW, message="low two", line=3),
    ]
    platform, _ = _run(items, files_scanned=9)
    [summary] = platform.summaries
    lines = summary.splitlines()
    assert "3 findings (1 critical, 2 low), 9 files scanned, 0 diagnostics" in lines
    assert "| critical | 1 |" in lines
    assert "| low | 2 |" in lines
    assert "| medium | 0 |" in lines
    rows = [line for line in lines if line.endswith((" one |", " two |"))]
    assert [row.split(" | ")[-1] for row in rows] == ["critical one |", "low one |", "low two |"]
    assert "more findings" not in summary


def test_summary_cells_cannot_break_the_table_or_format() -> None:
    message = "a | b\nc *bold* <img src=x> [link](https://e.test) @team `code`"
    platform, _ = _run([make_finding(message=message, path="a|b.yml")])
    [row] = [line for line in platform.summaries[0].splitlines() if "bold" in line]
    assert row.count("|") - row.count("\\|") == 6  # five cells, nothing more
    assert "\n" not in row
    # Every character that could format, link or mention is backslash-escaped.
    assert re.findall(r"(?<!\\)[*<>\[\]`@]", row) == []
    assert "a \\| b c \\*bold\\* \\<img src=x\\>" in row


def test_summary_is_capped_and_says_how_many_were_left_out() -> None:
    findings = [
        make_finding(severity=Severity.HIGH if n == 149 else Severity.LOW, line=n + 1)
        for n in range(150)
    ]
    platform, _ = _run(findings)
    summary = platform.summaries[0]
    rows = [line for line in summary.splitlines() if line.startswith(("| high | ", "| low | "))]
    rows = [row for row in rows if WORKFLOW.replace("_", "\\_") in row]
    assert len(rows) == GitHubFormat.SUMMARY_ROWS
    assert rows[0].startswith("| high | ")  # the last finding, but the most severe
    assert "50 more findings are not in this table" in summary


def test_summary_stays_far_below_one_mebibyte() -> None:
    findings = [make_finding(message="m|" * 10_000, path="p" * 5000) for _ in range(200)]
    diagnostics = [Diagnostic("d" * 5000, "x" * 10_000) for _ in range(50)]
    platform, _ = _run([*findings, *diagnostics])
    assert len(platform.summaries[0].encode()) < 1024 * 1024 // 2


def test_diagnostics_are_annotated_and_listed() -> None:
    platform, _ = _run([Diagnostic("bad.yml", "not | UTF-8", 3, 1)])
    [annotation] = platform.annotations
    assert annotation.level is AnnotationLevel.WARNING
    assert (annotation.file, annotation.line) == ("bad.yml", 3)
    assert "| bad.yml | not \\| UTF-8 |" in platform.summaries[0]


def test_the_text_report_goes_to_the_log_neutralized() -> None:
    platform, log = _run([make_finding(), Diagnostic("x.yml", "::set-output name=a::b")])
    assert f"{WORKFLOW}:5:20: high[medium] template-injection:" in log
    assert "tollgate audit: 1 finding (1 high), 2 files scanned, 1 diagnostic" in log
    assert platform.neutralized == len(log.splitlines())  # every line went through it
    assert "::set-output" not in log


def test_a_platform_is_required() -> None:
    with pytest.raises(ValueError, match="platform"):
        GitHubFormat(io.StringIO(), ReportOptions())
