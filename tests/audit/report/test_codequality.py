"""The GitLab Code Quality format: a JSON array with the fields GitLab reads."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

from tests.audit.report import WORKFLOW, make_finding, render
from tollgate.audit.findings import Diagnostic, Finding, Severity
from tollgate.audit.report import CodeQualityFormat
from tollgate.audit.report.codequality import DIAGNOSTIC_CHECK


def _issues(items: Sequence[Finding | Diagnostic]) -> list[dict[str, Any]]:
    stream = io.StringIO()
    render(CodeQualityFormat(stream), items)
    assert not stream.getvalue().startswith("\ufeff")
    issues: list[dict[str, Any]] = json.loads(stream.getvalue())
    return issues


def test_issue_has_the_fields_gitlab_reads() -> None:
    finding = make_finding(path="./" + WORKFLOW, line=7)
    [issue] = _issues([finding])
    assert issue["description"] == finding.message
    assert issue["check_name"] == "template-injection"
    assert issue["fingerprint"] == finding.fingerprint()
    assert issue["severity"] == "critical"
    assert issue["location"]["path"] == WORKFLOW
    assert issue["location"]["lines"]["begin"] == 7


def test_every_severity_maps_to_a_codeclimate_severity() -> None:
    issues = _issues([make_finding(severity=s, anchor=str(s)) for s in Severity])
    assert [issue["severity"] for issue in issues] == [
        "info",
        "minor",
        "major",
        "critical",
        "blocker",
    ]


def test_identical_risks_in_one_file_get_distinct_fingerprints() -> None:
    twins = [make_finding(line=3), make_finding(line=9), make_finding(line=12)]
    assert len({twin.fingerprint() for twin in twins}) == 1
    fingerprints = [issue["fingerprint"] for issue in _issues(twins)]
    assert len(set(fingerprints)) == 3
    assert fingerprints[0] == twins[0].fingerprint()  # the first keeps the baseline identity
    again = [issue["fingerprint"] for issue in _issues(twins)]
    assert again == fingerprints  # stable from one run to the next


def test_diagnostics_become_info_issues() -> None:
    [issue] = _issues([Diagnostic("bad.yml", "not UTF-8", 4)])
    assert issue["check_name"] == DIAGNOSTIC_CHECK
    assert issue["severity"] == "info"
    assert issue["description"].endswith("not UTF-8")
    assert issue["location"] == {"path": "bad.yml", "lines": {"begin": 4}}
    [no_line] = _issues([Diagnostic("bad.yml", "not UTF-8")])
    assert no_line["location"]["lines"]["begin"] == 1


def test_nothing_found_is_an_empty_array() -> None:
    assert _issues([]) == []
