"""The text format: one block per file, each finding with the offending line underlined.

``path:line:col: severity[confidence] rule: message`` is the shape editors and CI problem
matchers recognise. Findings are held per file only, so a file's findings come out in line
order however the rules produced them, and memory is bounded by the largest file.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import TextIO

from tollgate.audit.findings import Diagnostic, Finding, Location, Severity
from tollgate.audit.report.interface import Format, ReportOptions, RunStats

# Characters that could act on a terminal or a CI log rather than be read: C0/C1 controls
# (escape sequences, carriage returns that overwrite a line, newlines that start a line CI
# reads as a command), bidirectional overrides ("Trojan Source") and lone surrogates. Tabs
# are harmless and keep excerpts aligned.
_UNSAFE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)

_STYLE = {
    Severity.CRITICAL: "1;35",
    Severity.HIGH: "1;31",
    Severity.MEDIUM: "33",
    Severity.LOW: "36",
    Severity.INFO: "2",
}


_NOT_TAB = re.compile("[^\t]")


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every character that could act on a terminal or log shown as an escape."""
    # isprintable() is false for everything _UNSAFE matches: the common case stays in C.
    if text.isprintable():
        return text
    return _UNSAFE.sub(lambda match: _escape(match.group()), text)


def _is_narrow(text: str) -> bool:
    """Whether every character of ``text`` takes one cell (or is a tab)."""
    return text.isascii() and (text.isprintable() or not _UNSAFE.search(text))


def _width(char: str) -> int:
    """Terminal cells ``char`` takes once made printable."""
    if _UNSAFE.match(char):
        return len(_escape(char))
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _cells(text: str) -> int:
    """Terminal cells ``text`` takes once made printable (a tab counts one)."""
    return len(text) if _is_narrow(text) else sum(_width(char) for char in text)


def _blank(text: str) -> str:
    """Whitespace as wide as ``text`` on screen, keeping its tabs so a caret lines up."""
    if _is_narrow(text):
        return _NOT_TAB.sub(" ", text)
    return "".join(char if char == "\t" else " " * _width(char) for char in text)


def underline(source: str, location: Location) -> tuple[str, str]:
    """The printable source line and the caret line under ``location``'s span on it.

    Columns are 1-based code points; ``end_column`` is exclusive, as in SARIF. A span that
    runs past this line is underlined to its end; a missing end gets one caret.
    """
    source = source.rstrip("\r\n")
    start = min(max(location.column, 1) - 1, len(source))
    if location.end_line is not None and location.end_line > location.line:
        stop = len(source)
    elif location.end_column is not None:
        stop = min(location.end_column - 1, len(source))
    else:
        stop = start + 1
    carets = max(_cells(source[start:stop]), 1)
    return printable(source), _blank(source[:start]) + "^" * carets


def wants_color(stream: TextIO) -> bool:
    """Colour only for a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class TextFormat(Format):
    """Human-readable report, grouped by file, with a closing summary line."""

    def __init__(self, stream: TextIO, options: ReportOptions | None = None) -> None:
        super().__init__(stream, options)
        self._color = wants_color(stream) if self.options.color is None else self.options.color
        # A CI log may read a quoted line as a command (GitHub's "::" and "##["): the
        # platform knows how to make text inert there, on top of printable().
        platform = self.options.platform
        self._neutralize: Callable[[str], str] | None = (
            platform.neutralize if platform is not None else None
        )
        self._path: str | None = None
        self._findings: list[Finding] = []
        self._diagnostics: list[Diagnostic] = []

    def begin(self) -> None:
        """Nothing comes before the first file's block."""

    def _finding(self, finding: Finding) -> None:
        self._switch_to(finding.location.path)
        self._findings.append(finding)

    def _diagnostic(self, diagnostic: Diagnostic) -> None:
        self._switch_to(diagnostic.path)
        self._diagnostics.append(diagnostic)

    def end(self, stats: RunStats) -> None:
        self._flush()
        self._emit([f"tollgate audit: {self.tally.describe(stats.files_scanned)}"])
        self.stream.flush()

    def _switch_to(self, path: str) -> None:
        if path != self._path:
            self._flush()
            self._path = path

    def _flush(self) -> None:
        """Write the current file's block, in one piece, and forget it."""
        if self._path is None:
            return
        block = [self._diagnostic_line(diagnostic) for diagnostic in self._diagnostics]
        if self._findings:
            lines = self._source(self._path)
            self._findings.sort(
                key=lambda f: (f.location.line, f.location.column, -f.severity.rank, f.rule)
            )
            for finding in self._findings:
                self._add_finding(block, finding, lines)
        block.append("")
        self._emit(block)
        self._path = None
        self._findings = []
        self._diagnostics = []

    def _source(self, path: str) -> Sequence[str] | None:
        fetch = self.options.source_lines
        if fetch is None:
            return None
        try:
            return fetch(path)
        except (OSError, ValueError):
            # An excerpt is a nicety: a file that vanished or does not decode loses only it.
            return None

    def _add_finding(self, block: list[str], finding: Finding, lines: Sequence[str] | None) -> None:
        where = finding.location
        # .value, not the enum: str-enum formatting is slow, and this runs per finding.
        severity, style = finding.severity.value, _STYLE[finding.severity]
        block.append(
            f"{self._paint(self._place(where), '1')}: {self._paint(severity, style)}"
            f"[{finding.confidence.value}] {printable(finding.rule)}: "
            f"{printable(finding.message)}"
        )
        gutter = " " * len(str(where.line))
        if lines is not None and 1 <= where.line <= len(lines):
            text, carets = underline(lines[where.line - 1], where)
            block.append(f"{where.line} | {text}")
            block.append(f"{gutter} | {self._paint(carets, style)}")
        block.extend(f"{gutter} = related: {self._place(related)}" for related in finding.related)

    def _diagnostic_line(self, diagnostic: Diagnostic) -> str:
        place = printable(diagnostic.path)
        if diagnostic.line is not None:
            place += f":{diagnostic.line}"
            if diagnostic.column is not None:
                place += f":{diagnostic.column}"
        label = self._paint("diagnostic", "1;33")
        return f"{self._paint(place, '1')}: {label}: {printable(diagnostic.message)}"

    @staticmethod
    def _place(location: Location) -> str:
        return f"{printable(location.path)}:{location.line}:{location.column}"

    def _paint(self, text: str, style: str) -> str:
        return f"\x1b[{style}m{text}\x1b[0m" if self._color else text

    def _emit(self, lines: list[str]) -> None:
        if self._neutralize is not None:
            lines = [self._neutralize(line) for line in lines]
        self.stream.write("\n".join(lines) + "\n")
