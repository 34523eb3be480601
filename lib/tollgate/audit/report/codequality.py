"""The GitLab Code Quality format: a JSON array of CodeClimate issues, streamed.

GitLab reads ``description``, ``check_name``, ``fingerprint``, ``severity``,
``location.path`` and ``location.lines.begin``; the report shows on every GitLab tier.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, TextIO

from tollgate.audit.findings import Diagnostic, Finding, Severity
from tollgate.audit.report.interface import Format, ReportOptions, RunStats

SEVERITY = {
    Severity.INFO: "info",
    Severity.LOW: "minor",
    Severity.MEDIUM: "major",
    Severity.HIGH: "critical",
    Severity.CRITICAL: "blocker",
}
"""Our severities in CodeClimate's words."""

DIAGNOSTIC_CHECK = "tollgate-diagnostic"
"""``check_name`` of the issues that stand for files the audit could not read."""


# Records are plain trees, so the cycle check is skipped (it costs a fifth of the time).
_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def _digest(*parts: str) -> str:
    key = "\0".join(parts).encode("utf-8", "surrogateescape")
    return hashlib.sha256(key).hexdigest()[:32]


def _relative(path: str) -> str:
    while path.startswith("./"):
        path = path[2:]
    return path


class CodeQualityFormat(Format):
    """``[{"description", "check_name", "fingerprint", "severity", "location"}, ...]``."""

    def __init__(self, stream: TextIO, options: ReportOptions | None = None) -> None:
        super().__init__(stream, options)
        self._written = 0
        self._path: str | None = None
        self._occurrences: dict[str, int] = {}

    def begin(self) -> None:
        self.stream.write("[")

    def _finding(self, finding: Finding) -> None:
        where = finding.location
        self._write(
            {
                "type": "issue",
                "check_name": finding.rule,
                "description": finding.message or finding.rule,
                "categories": ["Security"],
                "fingerprint": self._unique(where.path, finding.fingerprint()),
                "severity": SEVERITY[finding.severity],
                "location": {
                    "path": _relative(where.path),
                    "lines": {"begin": where.line, "end": max(where.end_line or 0, where.line)},
                },
            }
        )

    def _diagnostic(self, diagnostic: Diagnostic) -> None:
        # Code Quality has no notion of a tool error; an info issue keeps a file the audit
        # could not read from passing silently.
        self._write(
            {
                "type": "issue",
                "check_name": DIAGNOSTIC_CHECK,
                "description": f"tollgate could not audit this file: {diagnostic.message}",
                "categories": ["Security"],
                "fingerprint": _digest(DIAGNOSTIC_CHECK, diagnostic.path, diagnostic.message),
                "severity": "info",
                "location": {
                    "path": _relative(diagnostic.path),
                    "lines": {"begin": diagnostic.line or 1},
                },
            }
        )

    def end(self, stats: RunStats) -> None:
        self.stream.write("\n]\n")
        self.stream.flush()

    def _unique(self, path: str, fingerprint: str) -> str:
        """``fingerprint``, told apart from an identical earlier one in the same file.

        The finding's fingerprint ignores lines (so GitLab tracks an issue across edits), so
        two identical risks in one place share it; GitLab would show them as one. Counting
        per file only keeps memory bounded: findings of a file arrive together.
        """
        if path != self._path:
            self._path = path
            self._occurrences = {}
        seen = self._occurrences.get(fingerprint, 0)
        self._occurrences[fingerprint] = seen + 1
        return fingerprint if seen == 0 else _digest(fingerprint, str(seen))

    def _write(self, issue: dict[str, Any]) -> None:
        separator = "\n" if self._written == 0 else ",\n"
        self.stream.write(separator + _dumps(issue))
        self._written += 1
