"""The JSON format: valid against the shipped schema, faithful to the findings."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

import jsonschema
import pytest

from tests.audit.report import WORKFLOW, make_finding, render
from tollgate import __version__
from tollgate.audit.findings import Confidence, Diagnostic, Finding, Location, Persona, Severity
from tollgate.audit.report import JsonFormat


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    text = (resources.files("tollgate") / "schemas" / "audit-report.schema.json").read_text()
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _report(items: Sequence[Finding | Diagnostic], files_scanned: int = 3) -> dict[str, Any]:
    stream = io.StringIO()
    render(JsonFormat(stream), items, files_scanned)
    report: dict[str, Any] = json.loads(stream.getvalue())
    return report


FINDINGS = [
    make_finding(
        severity=Severity.CRITICAL,
        confidence=Confidence.HIGH,
        line=5,
        column=20,
        end_line=5,
        end_column=51,
        persona=Persona.PEDANTIC,
        related=(Location(WORKFLOW, 1, 1), Location("action.yml", 9, 3, 9, 12)),
    ),
    make_finding("unpinned-uses", Severity.LOW, Confidence.LOW, line=12, anchor="a", evidence=""),
]


def test_report_validates_and_keeps_every_field(
    validator: jsonschema.Draft202012Validator,
) -> None:
    report = _report([*FINDINGS, Diagnostic("bad.yml", "not UTF-8", 2, None)])
    validator.validate(report)
    assert report["version"] == 1
    assert report["tool"] == {"name": "tollgate", "version": __version__}
    first, second = report["findings"]
    assert first == {
        "rule": "template-injection",
        "severity": "critical",
        "confidence": "high",
        "persona": "pedantic",
        "path": WORKFLOW,
        "line": 5,
        "column": 20,
        "end_line": 5,
        "end_column": 51,
        "message": FINDINGS[0].message,
        "anchor": "jobs.build.steps[0].run",
        "evidence": "github.event.issue.title",
        "fingerprint": FINDINGS[0].fingerprint(),
        "related": [
            {"path": WORKFLOW, "line": 1, "column": 1, "end_line": None, "end_column": None},
            {"path": "action.yml", "line": 9, "column": 3, "end_line": 9, "end_column": 12},
        ],
    }
    assert (second["rule"], second["severity"], second["line"]) == ("unpinned-uses", "low", 12)
    assert report["diagnostics"] == [
        {"path": "bad.yml", "message": "not UTF-8", "line": 2, "column": None}
    ]


def test_summary_counts(validator: jsonschema.Draft202012Validator) -> None:
    report = _report([*FINDINGS, make_finding(severity=Severity.LOW)], files_scanned=7)
    assert report["summary"] == {
        "findings": 3,
        "by_severity": {"info": 0, "low": 2, "medium": 0, "high": 0, "critical": 1},
        "files_scanned": 7,
        "diagnostics": 0,
    }


def test_empty_run_is_a_valid_report(validator: jsonschema.Draft202012Validator) -> None:
    report = _report([], files_scanned=0)
    validator.validate(report)
    assert (report["findings"], report["diagnostics"]) == ([], [])


def test_schema_rejects_what_the_format_never_writes(
    validator: jsonschema.Draft202012Validator,
) -> None:
    report = _report(FINDINGS)
    report["findings"][0]["severity"] = "urgent"
    assert not validator.is_valid(report)
    report = _report(FINDINGS)
    del report["findings"][1]["fingerprint"]
    assert not validator.is_valid(report)
    report = _report(FINDINGS)
    report["summary"]["by_severity"].pop("info")
    assert not validator.is_valid(report)


def test_many_diagnostics_come_back_in_order_past_the_memory_spool() -> None:
    # ~1 MB of diagnostics: more than the spool keeps in memory.
    diagnostics = [Diagnostic(f"f{n}.yml", "x" * 200 + str(n), n + 1) for n in range(5000)]
    report = _report(diagnostics)
    assert [d["path"] for d in report["diagnostics"]] == [f"f{n}.yml" for n in range(5000)]
    assert report["diagnostics"][-1]["message"].endswith("4999")
    assert report["summary"]["diagnostics"] == 5000


def test_odd_paths_and_text_survive_as_ascii_json() -> None:
    path = "wörk/\udcff-undecodable.yml"
    stream = io.StringIO()
    render(JsonFormat(stream), [make_finding(path=path, message='quote " and \n newline')])
    assert stream.getvalue().isascii()
    finding = json.loads(stream.getvalue())["findings"][0]
    assert (finding["path"], finding["message"]) == (path, 'quote " and \n newline')


def test_findings_are_written_before_the_end() -> None:
    stream = io.StringIO()
    report = JsonFormat(stream)
    report.begin()
    report.finding(FINDINGS[0])
    assert FINDINGS[0].fingerprint() in stream.getvalue()
