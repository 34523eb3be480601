"""The format factory and what every format shares: the lifecycle and the tally."""

from __future__ import annotations

import io

import pytest

from tests.audit.report import FakePlatform, make_finding, render
from tollgate.audit.findings import Diagnostic, Severity
from tollgate.audit.report import (
    FORMATS,
    CodeQualityFormat,
    FormatChoice,
    GitHubFormat,
    JsonFormat,
    ReportOptions,
    SarifFormat,
    TextFormat,
    create_format,
    format_class,
)

EXPECTED = {
    "text": TextFormat,
    "json": JsonFormat,
    "sarif": SarifFormat,
    "github": GitHubFormat,
    "codequality": CodeQualityFormat,
}


def test_choices_are_the_documented_names() -> None:
    assert sorted(choice.value for choice in FormatChoice) == sorted(EXPECTED)
    assert set(FORMATS) == set(FormatChoice)
    assert {format_class(choice) for choice in FormatChoice} == set(EXPECTED.values())


@pytest.mark.parametrize("choice", list(FormatChoice))
def test_factory_covers_every_choice(choice: FormatChoice) -> None:
    stream = io.StringIO()
    report = create_format(choice.value, stream, ReportOptions(platform=FakePlatform()))
    assert type(report) is EXPECTED[choice.value]
    render(report, [make_finding(severity=Severity.MEDIUM), Diagnostic("x.yml", "bad")])
    assert stream.getvalue()
    assert report.tally.max_severity is Severity.MEDIUM
    assert (report.tally.findings, report.tally.diagnostics) == (1, 1)


def test_factory_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="yaml"):
        create_format("yaml", io.StringIO())


def test_unknown_attributes_are_still_errors() -> None:
    import tollgate.audit.report as report

    with pytest.raises(AttributeError, match="YamlFormat"):
        report.YamlFormat  # noqa: B018


def test_tally_keeps_the_worst_severity_and_every_count() -> None:
    report = create_format(FormatChoice.JSON, io.StringIO())
    before = report.tally.max_severity
    assert before is None
    render(
        report,
        [
            make_finding(severity=Severity.LOW),
            make_finding(severity=Severity.HIGH),
            make_finding(severity=Severity.MEDIUM),
        ],
    )
    assert report.tally.max_severity is Severity.HIGH
    assert report.tally.by_severity == {
        Severity.INFO: 0,
        Severity.LOW: 1,
        Severity.MEDIUM: 1,
        Severity.HIGH: 1,
        Severity.CRITICAL: 0,
    }
