"""What every report format shares: the :class:`Format` contract, its options and its counts.

A format writes *as findings stream in*: the audit calls :meth:`Format.begin` once, then
:meth:`Format.finding` and :meth:`Format.diagnostic` in any order, then :meth:`Format.end`
once. Nothing here may keep every finding: memory stays bounded however many files are
scanned.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO, TypeAlias

from tollgate import __version__
from tollgate.audit.findings import Diagnostic, Finding, RuleInfo, Severity

if TYPE_CHECKING:
    from tollgate.ci.interface import Platform

SourceLines: TypeAlias = Callable[[str], Sequence[str] | None]
"""Returns a file's lines (with or without line endings) for a path, or ``None``."""


@enum.unique
class FormatChoice(str, enum.Enum):
    """The ``--format`` values of ``tollgate audit``."""

    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"
    CODEQUALITY = "codequality"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ReportOptions:
    """What a format may need besides the findings; each format reads only its part."""

    rules: Mapping[str, RuleInfo] = field(default_factory=dict)
    """Rule metadata by id (SARIF rules, annotation titles); unknown ids get a stand-in."""
    source_lines: SourceLines | None = None
    """Fetches a file's lines for the text format's excerpts."""
    platform: Platform | None = None
    """The CI platform: required by the ``github`` format."""
    color: bool | None = None
    """Colour in the text format: ``None`` decides from the stream and ``NO_COLOR``."""
    sarif_category: str = "tollgate-audit"
    """SARIF ``automationDetails`` category, so several runs can coexist in code scanning."""
    tool_version: str = __version__
    information_uri: str = ""
    """The project's home page for SARIF ``tool.driver.informationUri``; left out if empty."""


@dataclass(frozen=True)
class RunStats:
    """What only the audit knows at the end of a run."""

    files_scanned: int


_RANK = {severity: severity.rank for severity in Severity}


class Tally:
    """Counts of what a format was shown: the summary and the exit code read it."""

    def __init__(self) -> None:
        self.by_severity: dict[Severity, int] = dict.fromkeys(Severity, 0)
        self.diagnostics = 0
        self.max_severity: Severity | None = None

    @property
    def findings(self) -> int:
        """The number of findings, all severities."""
        return sum(self.by_severity.values())

    def add(self, finding: Finding) -> None:
        """Count one finding."""
        severity = finding.severity
        self.by_severity[severity] += 1
        if self.max_severity is None or _RANK[severity] > _RANK[self.max_severity]:
            self.max_severity = severity

    def describe(self, files_scanned: int) -> str:
        """One line: ``3 findings (1 high, 2 low), 12 files scanned, 0 diagnostics``."""
        total = self.findings
        parts = [
            f"{count} {severity}"
            for severity, count in sorted(self.by_severity.items(), key=lambda kv: -kv[0].rank)
            if count
        ]
        head = f"{total} finding{'' if total == 1 else 's'}"
        if parts:
            head += f" ({', '.join(parts)})"
        files = f"{files_scanned} file{'' if files_scanned == 1 else 's'} scanned"
        diagnostics = f"{self.diagnostics} diagnostic{'' if self.diagnostics == 1 else 's'}"
        return f"{head}, {files}, {diagnostics}"


class Format(abc.ABC):
    """One output of ``tollgate audit``, written to a text stream as findings arrive."""

    def __init__(self, stream: TextIO, options: ReportOptions | None = None) -> None:
        self.stream = stream
        self.options = options if options is not None else ReportOptions()
        self.tally = Tally()

    @abc.abstractmethod
    def begin(self) -> None:
        """Called once, before the first finding or diagnostic."""

    def finding(self, finding: Finding) -> None:
        """Report one finding."""
        self.tally.add(finding)
        self._finding(finding)

    def diagnostic(self, diagnostic: Diagnostic) -> None:
        """Report a file that could not be read (in full)."""
        self.tally.diagnostics += 1
        self._diagnostic(diagnostic)

    @abc.abstractmethod
    def end(self, stats: RunStats) -> None:
        """Called once, last: write what was held back and the summary."""

    @abc.abstractmethod
    def _finding(self, finding: Finding) -> None:
        """Write (or hold, within bounds) one finding; it is already counted."""

    @abc.abstractmethod
    def _diagnostic(self, diagnostic: Diagnostic) -> None:
        """Write (or hold) one diagnostic; it is already counted."""

    def rule_info(self, rule: str, severity: Severity) -> RuleInfo:
        """The metadata of ``rule``, or a stand-in built from its id."""
        info = self.options.rules.get(rule)
        if info is not None:
            return info
        return RuleInfo(id=rule, name=rule, summary=rule, default_severity=severity)


class Spool:
    """Text held back until the end of a report: in memory while small, then on disk.

    Diagnostics come before the end of a JSON or SARIF document but must be written after
    the findings; a spool keeps their number from growing memory with the files scanned.
    """

    _MEMORY_LIMIT = 256 * 1024

    def __init__(self) -> None:
        # Imported here: it takes 10 ms, and only the JSON and SARIF reports need it.
        import tempfile

        self._file = tempfile.SpooledTemporaryFile(
            max_size=self._MEMORY_LIMIT, mode="w+", encoding="utf-8", errors="replace"
        )
        self.count = 0

    def add(self, text: str) -> None:
        """Hold ``text``, one item (the caller supplies the separators)."""
        self._file.write(text)
        self.count += 1

    def drain(self, stream: TextIO) -> None:
        """Copy everything held to ``stream`` and release the spool."""
        self._file.seek(0)
        while chunk := self._file.read(64 * 1024):
            stream.write(chunk)
        self._file.close()
