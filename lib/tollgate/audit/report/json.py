"""The JSON format: one document, findings written as they arrive, one per line.

The shape is described by ``tollgate/schemas/audit-report.schema.json`` (shipped in the
package); :data:`REPORT_VERSION` changes only when a field changes meaning or goes away.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from tollgate.audit.findings import Diagnostic, Finding, Location
from tollgate.audit.report.interface import Format, ReportOptions, RunStats, Spool

REPORT_VERSION = 1


# ASCII output: any stream encoding can carry it, and odd paths stay escaped.
# Records are plain trees, so the cycle check is skipped (it costs a fifth of the time).
_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def location_record(location: Location) -> dict[str, Any]:
    """A location as the report writes it (``end_*`` are ``null`` when unknown)."""
    return {
        "path": location.path,
        "line": location.line,
        "column": location.column,
        "end_line": location.end_line,
        "end_column": location.end_column,
    }


def finding_record(finding: Finding) -> dict[str, Any]:
    """A finding as the report writes it."""
    return {
        "rule": finding.rule,
        "severity": finding.severity.value,
        "confidence": finding.confidence.value,
        "persona": finding.persona.value,
        **location_record(finding.location),
        "message": finding.message,
        "anchor": finding.anchor,
        "evidence": finding.evidence,
        "fingerprint": finding.fingerprint(),
        "related": [location_record(related) for related in finding.related],
    }


def diagnostic_record(diagnostic: Diagnostic) -> dict[str, Any]:
    """A diagnostic as the report writes it."""
    return {
        "path": diagnostic.path,
        "message": diagnostic.message,
        "line": diagnostic.line,
        "column": diagnostic.column,
    }


class JsonFormat(Format):
    """``{"version", "tool", "findings": [...], "diagnostics": [...], "summary"}``."""

    def __init__(self, stream: TextIO, options: ReportOptions | None = None) -> None:
        super().__init__(stream, options)
        self._written = 0
        self._diagnostics = Spool()

    def begin(self) -> None:
        tool = _dumps({"name": "tollgate", "version": self.options.tool_version})
        self.stream.write(f'{{"version":{REPORT_VERSION},"tool":{tool},"findings":[')

    def _finding(self, finding: Finding) -> None:
        self.stream.write(("\n" if self._written == 0 else ",\n") + _dumps(finding_record(finding)))
        self._written += 1

    def _diagnostic(self, diagnostic: Diagnostic) -> None:
        separator = "\n" if self._diagnostics.count == 0 else ",\n"
        self._diagnostics.add(separator + _dumps(diagnostic_record(diagnostic)))

    def end(self, stats: RunStats) -> None:
        self.stream.write('\n],"diagnostics":[')
        self._diagnostics.drain(self.stream)
        summary = {
            "findings": self.tally.findings,
            "by_severity": {severity.value: n for severity, n in self.tally.by_severity.items()},
            "files_scanned": stats.files_scanned,
            "diagnostics": self.tally.diagnostics,
        }
        self.stream.write(f'\n],"summary":{_dumps(summary)}}}\n')
        self.stream.flush()
