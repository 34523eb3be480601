"""Report formats of ``tollgate audit`` and its exit-code rule.

Drive a format like this::

    report = create_format(FormatChoice.SARIF, sys.stdout, ReportOptions(rules=...))
    report.begin()
    for item in audit(...):  # Findings and Diagnostics, as they are produced
        report.finding(item) if isinstance(item, Finding) else report.diagnostic(item)
    report.end(RunStats(files_scanned=n))
    return exit_code(report.tally.max_severity, fail_on, exit_zero)

Each format's module is imported when it is first asked for, so importing this package
costs little whatever the format.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, TextIO

from tollgate.audit.report.decision import DEFAULT_FAIL_ON, exit_code
from tollgate.audit.report.interface import (
    Format,
    FormatChoice,
    ReportOptions,
    RunStats,
    SourceLines,
    Tally,
)

if TYPE_CHECKING:
    from tollgate.audit.report.codequality import CodeQualityFormat
    from tollgate.audit.report.github import GitHubFormat
    from tollgate.audit.report.json import JsonFormat
    from tollgate.audit.report.sarif import SarifFormat
    from tollgate.audit.report.text import TextFormat

FORMATS: dict[FormatChoice, tuple[str, str]] = {
    FormatChoice.TEXT: ("text", "TextFormat"),
    FormatChoice.JSON: ("json", "JsonFormat"),
    FormatChoice.SARIF: ("sarif", "SarifFormat"),
    FormatChoice.GITHUB: ("github", "GitHubFormat"),
    FormatChoice.CODEQUALITY: ("codequality", "CodeQualityFormat"),
}
"""The module and class behind each ``--format`` value."""

_MODULES = {name: module for module, name in FORMATS.values()}


def format_class(choice: FormatChoice | str) -> type[Format]:
    """The class for ``choice``; raises :class:`ValueError` for an unknown name."""
    module, name = FORMATS[FormatChoice(choice)]
    cls: type[Format] = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return cls


def create_format(
    choice: FormatChoice | str, stream: TextIO, options: ReportOptions | None = None
) -> Format:
    """The format for ``choice``, writing to ``stream``.

    Raises :class:`ValueError` for an unknown name, and for ``github`` without
    ``options.platform``.
    """
    return format_class(choice)(stream, options)


def __getattr__(name: str) -> type[Format]:
    """``TextFormat`` and the other classes, imported on first use."""
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls: type[Format] = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return cls


__all__ = [
    "DEFAULT_FAIL_ON",
    "FORMATS",
    "CodeQualityFormat",
    "Format",
    "FormatChoice",
    "GitHubFormat",
    "JsonFormat",
    "ReportOptions",
    "RunStats",
    "SarifFormat",
    "SourceLines",
    "Tally",
    "TextFormat",
    "create_format",
    "exit_code",
    "format_class",
]
