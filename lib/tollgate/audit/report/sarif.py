"""The SARIF format: SARIF 2.1.0 as GitHub code scanning (``upload-sarif``) accepts it.

One run, streamed: JSON key order does not matter, so ``results`` come first as findings
arrive and ``tool`` (with only the rules that were seen) is written at the end. GitHub's
documented limits are kept: at most 25,000 results per run (the rest are counted in a
notification) and 1,024 characters per rule description.
"""

from __future__ import annotations

import json
import re
from typing import Any, TextIO

from tollgate.audit.findings import Confidence, Diagnostic, Finding, Location, RuleInfo, Severity
from tollgate.audit.report.interface import Format, ReportOptions, RunStats, Spool

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "tollgate/v1"
"""The ``partialFingerprints`` key holding :meth:`Finding.fingerprint`."""
DEFAULT_CATEGORY = "tollgate-audit"

_DESCRIPTION_LIMIT = 1024
_NAME_LIMIT = 255
_MAX_RELATED = 100  # GitHub keeps the first 100 locations of a result

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# Used by GitHub only for rules without a security severity (ours at "info").
_PROBLEM_SEVERITY = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "recommendation",
    Severity.INFO: "recommendation",
}
_PRECISION = {Confidence.HIGH: "high", Confidence.MEDIUM: "medium", Confidence.LOW: "low"}


# Records are plain trees, so the cycle check is skipped (it costs a fifth of the time).
_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# RFC 3986 unreserved characters, and "/" between path segments.
_URI_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/")
_URI_PLAIN = re.compile(r"[A-Za-z0-9._~/-]*")


def _quote(path: str) -> str:
    """Percent-encode ``path`` for a URI (urllib.parse would cost 15 ms to import)."""
    if _URI_PLAIN.fullmatch(path):
        return path
    try:
        # Undecodable file names reach us surrogate-escaped: encode their original bytes.
        data = path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = path.encode("utf-8", "replace")
    return "".join(chr(byte) if byte in _URI_SAFE else f"%{byte:02X}" for byte in data)


def artifact_location(path: str) -> dict[str, str]:
    """A repository-relative URI under ``%SRCROOT%``, or a ``file://`` URI for absolute paths."""
    if path.startswith("/"):
        return {"uri": "file://" + _quote(path)}
    while path.startswith("./"):
        path = path[2:]
    return {"uri": _quote(path), "uriBaseId": "%SRCROOT%"}


def region(location: Location) -> dict[str, int]:
    """A SARIF region; a missing end becomes a one-character span on the start line."""
    start_line = max(location.line, 1)
    start_column = max(location.column, 1)
    end_line = max(location.end_line or start_line, start_line)
    result = {"startLine": start_line, "startColumn": start_column, "endLine": end_line}
    if location.end_column is not None:
        minimum = start_column if end_line == start_line else 1
        result["endColumn"] = max(location.end_column, minimum)
    elif end_line == start_line:
        result["endColumn"] = start_column + 1
    return result


def physical_location(location: Location) -> dict[str, Any]:
    """``{"physicalLocation": ...}`` for ``location``."""
    return {
        "physicalLocation": {
            "artifactLocation": artifact_location(location.path),
            "region": region(location),
        }
    }


def _is_web_uri(uri: str) -> bool:
    return uri.startswith(("https://", "http://"))


def rule_descriptor(info: RuleInfo, precision: Confidence) -> dict[str, Any]:
    """A ``reportingDescriptor`` with what GitHub code scanning reads."""
    title = info.name or info.id
    summary = info.summary or title
    help_text, help_markdown = summary, f"**{title}**\n\n{summary}"
    if info.help_uri:
        help_text += f"\n\nDocumentation: {info.help_uri}"
        link = f"[{info.id}]({info.help_uri})" if _is_web_uri(info.help_uri) else info.help_uri
        help_markdown += f"\n\nDocumentation: {link}"
    descriptor: dict[str, Any] = {
        "id": info.id,
        "name": _clip(info.id, _NAME_LIMIT),
        "shortDescription": {"text": _clip(title, _DESCRIPTION_LIMIT)},
        "fullDescription": {"text": _clip(summary, _DESCRIPTION_LIMIT)},
        "help": {"text": help_text, "markdown": help_markdown},
        "defaultConfiguration": {"level": _LEVEL[info.default_severity]},
        "properties": {
            "tags": ["security", "ci"],
            "precision": _PRECISION[precision],
            # Rule-level, from the rule's default: GitHub reads no per-result score, and a
            # rule's alerts should not change severity from one run to the next.
            "security-severity": info.default_severity.security_severity,
            "problem.severity": _PROBLEM_SEVERITY[info.default_severity],
        },
    }
    if _is_web_uri(info.help_uri):
        descriptor["helpUri"] = info.help_uri
    return descriptor


def automation_id(category: str) -> str:
    """``category/``: GitHub takes everything before the last ``/`` as the category."""
    category = category.strip("/") or DEFAULT_CATEGORY
    return f"{category}/"


class SarifFormat(Format):
    """A SARIF 2.1.0 log with one run, for ``github/codeql-action/upload-sarif``."""

    MAX_RESULTS = 25_000
    """GitHub rejects a run with more results."""

    def __init__(self, stream: TextIO, options: ReportOptions | None = None) -> None:
        super().__init__(stream, options)
        self._rule_index: dict[str, int] = {}
        self._rule_severity: dict[str, Severity] = {}
        self._rule_confidence: dict[str, Confidence] = {}
        self._written = 0
        self._left_out = 0
        self._notifications = Spool()

    def begin(self) -> None:
        automation = _dumps({"id": automation_id(self.options.sarif_category)})
        # Our columns count code points; SARIF's default is UTF-16 code units.
        self.stream.write(
            f'{{"$schema":{_dumps(SARIF_SCHEMA)},"version":"2.1.0","runs":[{{'
            f'"automationDetails":{automation},"columnKind":"unicodeCodePoints","results":['
        )

    def _finding(self, finding: Finding) -> None:
        if self._written >= self.MAX_RESULTS:
            self._left_out += 1
            return
        result = self._result(finding)
        self.stream.write(("\n" if self._written == 0 else ",\n") + _dumps(result))
        self._written += 1

    def _result(self, finding: Finding) -> dict[str, Any]:
        index = self._rule_index.setdefault(finding.rule, len(self._rule_index))
        self._rule_severity.setdefault(finding.rule, finding.severity)
        # A rule's precision is the best confidence its results reached in this run.
        seen = self._rule_confidence.get(finding.rule)
        if seen is None or finding.confidence.rank > seen.rank:
            self._rule_confidence[finding.rule] = finding.confidence
        message = finding.message or self.rule_info(finding.rule, finding.severity).name
        result: dict[str, Any] = {
            "ruleId": finding.rule,
            "ruleIndex": index,
            "level": _LEVEL[finding.severity],
            "message": {"text": message},
            "locations": [physical_location(finding.location)],
            "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint()},
            "properties": {
                "severity": finding.severity.value,
                "confidence": finding.confidence.value,
                "persona": finding.persona.value,
                "anchor": finding.anchor,
                "evidence": finding.evidence,
            },
        }
        if finding.related:
            result["relatedLocations"] = [
                {"id": number, **physical_location(related), "message": {"text": "related"}}
                for number, related in enumerate(finding.related[:_MAX_RELATED])
            ]
        return result

    def _diagnostic(self, diagnostic: Diagnostic) -> None:
        physical: dict[str, Any] = {"artifactLocation": artifact_location(diagnostic.path)}
        if diagnostic.line is not None:
            physical["region"] = {"startLine": max(diagnostic.line, 1)}
            if diagnostic.column is not None:
                physical["region"]["startColumn"] = max(diagnostic.column, 1)
        notification = {
            # The file went (partly) unaudited: an error, though the run itself went on.
            "level": "error",
            "message": {"text": diagnostic.message or "could not read the file"},
            "locations": [{"physicalLocation": physical}],
        }
        self._add_notification(notification)

    def _add_notification(self, notification: dict[str, Any]) -> None:
        separator = "\n" if self._notifications.count == 0 else ",\n"
        self._notifications.add(separator + _dumps(notification))

    def end(self, stats: RunStats) -> None:
        if self._left_out:
            self._add_notification(
                {
                    "level": "warning",
                    "message": {
                        "text": (
                            f"{self._left_out} findings were left out of this SARIF run: "
                            f"GitHub code scanning rejects more than {self.MAX_RESULTS} "
                            "results per run. The json format lists them all."
                        )
                    },
                }
            )
        self.stream.write(
            '\n],"invocations":[{"executionSuccessful":true,"toolExecutionNotifications":['
        )
        self._notifications.drain(self.stream)
        self.stream.write(f'\n]}}],"tool":{_dumps({"driver": self._driver()})}}}]}}\n')
        self.stream.flush()

    def _driver(self) -> dict[str, Any]:
        rules = [
            rule_descriptor(
                self.rule_info(rule, self._rule_severity[rule]), self._rule_confidence[rule]
            )
            for rule in self._rule_index  # insertion order is index order
        ]
        driver: dict[str, Any] = {
            "name": "tollgate",
            "semanticVersion": self.options.tool_version,
            "rules": rules,
        }
        if self.options.information_uri:
            driver["informationUri"] = self.options.information_uri
        return driver
