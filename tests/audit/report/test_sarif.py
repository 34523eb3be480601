"""The SARIF format: valid SARIF 2.1.0 with what GitHub code scanning requires."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import jsonschema
import pytest

from tests.audit.report import RULES, WORKFLOW, make_finding, render
from tests.conftest import SHARED
from tollgate import __version__
from tollgate.audit.findings import Confidence, Diagnostic, Finding, Location, RuleInfo, Severity
from tollgate.audit.report import ReportOptions, SarifFormat
from tollgate.audit.report.sarif import FINGERPRINT_KEY

SCHEMA = SHARED / "schemas" / "sarif-2.1.0.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    if not SCHEMA.exists():
        pytest.skip(f"the vendored SARIF schema is not at {SCHEMA}")
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def _sarif(
    items: Sequence[Finding | Diagnostic],
    options: ReportOptions | None = None,
    report_class: type[SarifFormat] = SarifFormat,
) -> dict[str, Any]:
    stream = io.StringIO()
    render(report_class(stream, options or ReportOptions(rules=RULES)), items)
    log: dict[str, Any] = json.loads(stream.getvalue())
    return log


ITEMS: list[Finding | Diagnostic] = [
    make_finding(
        severity=Severity.CRITICAL,
        confidence=Confidence.HIGH,
        end_line=5,
        end_column=51,
        related=(Location(WORKFLOW, 1, 1),),
    ),
    make_finding("unpinned-uses", Severity.MEDIUM, Confidence.LOW, line=9, column=15),
    make_finding("unpinned-uses", Severity.LOW, Confidence.MEDIUM, path="./action.yml", line=3),
    make_finding("no-such-rule", Severity.INFO, path="dir with space/a.yml", line=2),
    Diagnostic("bad.yml", "found character '\\t' that cannot start any token", 4, 2),
    Diagnostic("empty.yml", "not a mapping"),
]


def test_log_validates_against_the_sarif_schema(validator: jsonschema.Draft7Validator) -> None:
    log = _sarif(ITEMS)
    errors = sorted(validator.iter_errors(log), key=str)
    assert errors == []
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    # The schema is not vacuous: GitHub's favourite mistake is caught.
    log["runs"][0]["results"][0]["level"] = "critical"
    assert not validator.is_valid(log)


def test_one_run_with_a_category() -> None:
    log = _sarif(ITEMS)
    assert len(log["runs"]) == 1
    assert log["runs"][0]["automationDetails"] == {"id": "tollgate-audit/"}
    assert log["runs"][0]["columnKind"] == "unicodeCodePoints"
    custom = _sarif(ITEMS, ReportOptions(rules=RULES, sarif_category="workflows/gitlab"))
    assert custom["runs"][0]["automationDetails"] == {"id": "workflows/gitlab/"}


def test_driver_lists_only_the_rules_seen_with_github_metadata() -> None:
    options = ReportOptions(rules=RULES, information_uri="https://tollgate.example/")
    driver = _sarif(ITEMS, options)["runs"][0]["tool"]["driver"]
    assert driver["name"] == "tollgate"
    assert driver["semanticVersion"] == __version__
    assert driver["informationUri"] == "https://tollgate.example/"
    rules = {rule["id"]: rule for rule in driver["rules"]}
    assert list(rules) == ["template-injection", "unpinned-uses", "no-such-rule"]
    injection = rules["template-injection"]
    assert injection["shortDescription"]["text"] == "Template injection"
    assert injection["fullDescription"]["text"] == RULES["template-injection"].summary
    assert injection["help"]["text"].startswith(RULES["template-injection"].summary)
    assert "(https://tollgate.example/rules/template-injection)" in injection["help"]["markdown"]
    assert injection["helpUri"] == "https://tollgate.example/rules/template-injection"
    assert injection["properties"]["security-severity"] == "8.0"
    assert injection["properties"]["precision"] == "high"
    assert injection["properties"]["problem.severity"] == "error"
    assert "security" in injection["properties"]["tags"]
    # A repository-relative doc path is no URL: kept in the help text, not in helpUri.
    assert "helpUri" not in rules["unpinned-uses"]
    assert "docs/rules/unpinned-uses.md" in rules["unpinned-uses"]["help"]["text"]
    assert rules["unpinned-uses"]["properties"]["security-severity"] == "5.5"
    assert rules["unpinned-uses"]["properties"]["precision"] == "medium"  # best seen
    for rule in driver["rules"]:
        assert isinstance(rule["properties"]["security-severity"], str)
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]


def test_results_carry_rule_index_level_location_and_fingerprints() -> None:
    run = _sarif(ITEMS)["runs"][0]
    results = run["results"]
    assert len(results) == 4
    for result, finding in zip(results, ITEMS, strict=False):
        assert isinstance(finding, Finding)
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["ruleId"] == finding.rule
        assert result["message"]["text"] == finding.message
        assert result["partialFingerprints"] == {FINGERPRINT_KEY: finding.fingerprint()}
        assert result["properties"]["severity"] == finding.severity.value
        assert result["properties"]["confidence"] == finding.confidence.value
    assert [result["level"] for result in results] == ["error", "warning", "note", "note"]
    first = results[0]["locations"][0]["physicalLocation"]
    assert first["artifactLocation"] == {"uri": WORKFLOW, "uriBaseId": "%SRCROOT%"}
    assert first["region"] == {"startLine": 5, "startColumn": 20, "endLine": 5, "endColumn": 51}
    assert results[0]["relatedLocations"][0]["physicalLocation"]["region"]["startLine"] == 1
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results]
    assert uris[2:] == ["action.yml", "dir%20with%20space/a.yml"]
    region = results[1]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 9, "startColumn": 15, "endLine": 9, "endColumn": 16}


def test_every_severity_maps_to_a_sarif_level(validator: jsonschema.Draft7Validator) -> None:
    findings: list[Finding | Diagnostic] = [make_finding(severity=s) for s in Severity]
    log = _sarif(findings)
    validator.validate(log)
    levels = {r["properties"]["severity"]: r["level"] for r in log["runs"][0]["results"]}
    assert levels == {
        "info": "note",
        "low": "note",
        "medium": "warning",
        "high": "error",
        "critical": "error",
    }


def test_absolute_paths_become_file_uris() -> None:
    log = _sarif([make_finding(path="/home/runner/work/x/ci.yml")])
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "file:///home/runner/work/x/ci.yml"}


def test_uris_are_percent_encoded_from_the_original_bytes() -> None:
    log = _sarif([make_finding(path="wörk/\udcff #1.yml")])
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "w%C3%B6rk/%FF%20%231.yml"


def test_diagnostics_are_tool_execution_notifications() -> None:
    invocations = _sarif(ITEMS)["runs"][0]["invocations"]
    assert len(invocations) == 1
    assert invocations[0]["executionSuccessful"] is True
    notes = invocations[0]["toolExecutionNotifications"]
    assert [n["message"]["text"] for n in notes] == [
        "found character '\\t' that cannot start any token",
        "not a mapping",
    ]
    assert notes[0]["level"] == "error"
    physical = notes[0]["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "bad.yml"
    assert physical["region"] == {"startLine": 4, "startColumn": 2}
    assert "region" not in notes[1]["locations"][0]["physicalLocation"]


def test_results_over_the_github_limit_are_left_out_and_said_so(
    validator: jsonschema.Draft7Validator,
) -> None:
    assert SarifFormat.MAX_RESULTS == 25_000

    class Small(SarifFormat):
        MAX_RESULTS = 3

    findings: list[Finding | Diagnostic] = [make_finding(line=n + 1) for n in range(5)]
    log = _sarif(findings, report_class=Small)
    validator.validate(log)
    run = log["runs"][0]
    lines = [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in run["results"]]
    assert lines == [1, 2, 3]
    [note] = run["invocations"][0]["toolExecutionNotifications"]
    assert note["level"] == "warning"
    assert note["message"]["text"].startswith("2 findings were left out")


def test_long_rule_texts_are_clipped_to_github_limits(
    validator: jsonschema.Draft7Validator,
) -> None:
    rule = RuleInfo("wordy", "W" * 2000, "S" * 5000, Severity.MEDIUM)
    log = _sarif([make_finding("wordy")], ReportOptions(rules={"wordy": rule}))
    validator.validate(log)
    [descriptor] = log["runs"][0]["tool"]["driver"]["rules"]
    assert len(descriptor["shortDescription"]["text"]) == 1024
    assert len(descriptor["fullDescription"]["text"]) == 1024


def test_empty_run_is_valid(validator: jsonschema.Draft7Validator) -> None:
    log = _sarif([])
    validator.validate(log)
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["tool"]["driver"]["rules"] == []
