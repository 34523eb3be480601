"""The text format: grouping by file, excerpts with carets, escaping, colour, summary."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pytest

from tests.audit.report import WORKFLOW, FakePlatform, make_finding, render
from tollgate.audit.findings import Diagnostic, Finding, Location, Severity
from tollgate.audit.report import ReportOptions, TextFormat
from tollgate.audit.report.text import underline

SOURCE = [
    "on: issues\n",
    "jobs:\n",
    "  build:\n",
    "    steps:\n",
    "      - run: echo ${{ github.event.issue.title }}\n",
    "\t- run: 日本 ${{ x }}\n",
]


def _text(
    items: Sequence[Finding | Diagnostic], source: list[str] | None = SOURCE, **options: object
) -> str:
    stream = io.StringIO()
    report = TextFormat(
        stream,
        ReportOptions(source_lines=lambda path: source, **options),  # type: ignore[arg-type]
    )
    render(report, items, files_scanned=4)
    return stream.getvalue()


def test_finding_line_has_place_severity_confidence_rule_and_message() -> None:
    out = _text([make_finding(line=5, column=20)])
    assert out.splitlines()[0] == (
        f"{WORKFLOW}:5:20: high[medium] template-injection: "
        "github.event.issue.title is expanded into the script; pass it via env."
    )


def test_caret_underlines_the_column_span() -> None:
    start = SOURCE[4].index("${{") + 1
    end = SOURCE[4].index("}}") + 3  # exclusive, as in SARIF
    out = _text([make_finding(line=5, column=start, end_line=5, end_column=end)]).splitlines()
    source_line, caret_line = out[1], out[2]
    assert source_line == "5 | " + SOURCE[4].rstrip("\n")
    assert caret_line.index("^") == source_line.index("${{")
    assert caret_line.count("^") == len("${{ github.event.issue.title }}")
    assert caret_line.rstrip("^").endswith(" ")


def test_caret_without_end_is_one_character() -> None:
    out = _text([make_finding(line=2, column=3)]).splitlines()
    assert out[2] == "  |   ^"


def test_caret_keeps_tabs_and_counts_wide_characters_twice() -> None:
    column = SOURCE[5].index("$") + 1
    text, carets = underline(SOURCE[5], Location("f", 6, column, 6, column + 8))
    assert carets == "\t" + " " * len("- run: ") + "  " * 2 + " " + "^" * 8
    assert text == SOURCE[5].rstrip("\n")


def test_span_over_several_lines_is_underlined_to_the_end_of_the_first() -> None:
    _, carets = underline("abcdef", Location("f", 1, 3, 4, 2))
    assert carets == "  ^^^^"


def test_column_past_the_end_of_the_line_still_shows_a_caret() -> None:
    _, carets = underline("ab", Location("f", 1, 9))
    assert carets == "  ^"


def test_findings_are_grouped_by_file_and_sorted_by_line_within_it() -> None:
    items = [
        make_finding(path="a.yml", line=5, message="a5"),
        make_finding(path="a.yml", line=2, message="a2"),
        make_finding(path="b.yml", line=1, message="b1"),
        make_finding(path="a.yml", line=1, message="a1-again"),
    ]
    heads = [line for line in _text(items, source=None).splitlines() if ": high[" in line]
    assert [head.split(":")[0] + ":" + head.rsplit(": ", 1)[1] for head in heads] == [
        "a.yml:a2",
        "a.yml:a5",
        "b.yml:b1",
        "a.yml:a1-again",  # not globally sorted: a file that comes back is a new block
    ]
    blocks = _text(items, source=None).split("\n\n")
    assert len(blocks) == 4  # three file blocks and the summary


def test_no_source_means_no_excerpt_and_a_failing_fetch_is_not_fatal() -> None:
    def broken(path: str) -> list[str]:
        raise OSError("gone")

    for fetch in (lambda path: None, broken):
        stream = io.StringIO()
        render(TextFormat(stream, ReportOptions(source_lines=fetch)), [make_finding()])
        assert " | " not in stream.getvalue()


def test_related_locations_are_listed() -> None:
    out = _text([make_finding(related=(Location("x.yml", 1, 1),))])
    assert "  = related: x.yml:1:1" in out.splitlines()


def test_diagnostics_are_shown_in_their_file_block() -> None:
    items = [
        Diagnostic("bad.yml", "mapping values are not allowed here", 3, 7),
        Diagnostic("huge.yml", "file larger than 5 MiB"),
    ]
    lines = _text(items).splitlines()
    assert "bad.yml:3:7: diagnostic: mapping values are not allowed here" in lines
    assert "huge.yml: diagnostic: file larger than 5 MiB" in lines


def test_outside_text_cannot_add_lines_or_escape_sequences() -> None:
    items: list[Finding | Diagnostic] = [
        Diagnostic("evil.yml", "bad value 'x\n::add-mask::y\x1b[2J'", 1, 1),
        make_finding(line=1, message="m\u202eevil"),
    ]
    out = _text(items, source=["run: \x1b]0;title\x07 ok\n"])
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert not any(line.startswith("::") for line in out.splitlines())
    assert "'x\\x0a::add-mask::y\\x1b[2J'" in out
    assert "m\\u202eevil" in out


def test_summary_counts_severities_files_and_diagnostics() -> None:
    items: list[Finding | Diagnostic] = [
        make_finding(severity=Severity.CRITICAL),
        make_finding(severity=Severity.LOW),
        make_finding(severity=Severity.LOW),
        Diagnostic("x.yml", "broken"),
    ]
    last = _text(items).splitlines()[-1]
    assert last == "tollgate audit: 3 findings (1 critical, 2 low), 4 files scanned, 1 diagnostic"


def test_summary_without_findings() -> None:
    assert _text([]).strip() == "tollgate audit: 0 findings, 4 files scanned, 0 diagnostics"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream_class", "no_color", "forced", "coloured"),
    [
        (io.StringIO, None, None, False),
        (_Terminal, None, None, True),
        (_Terminal, "1", None, False),
        (_Terminal, "", None, True),  # no-color.org: an empty NO_COLOR does not count
        (io.StringIO, None, True, True),
        (_Terminal, None, False, False),
    ],
)
def test_colour_only_on_a_terminal_without_no_color(
    monkeypatch: pytest.MonkeyPatch,
    stream_class: type[io.StringIO],
    no_color: str | None,
    forced: bool | None,
    coloured: bool,
) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    stream = stream_class()
    render(TextFormat(stream, ReportOptions(color=forced)), [make_finding()])
    assert ("\x1b[" in stream.getvalue()) is coloured


def test_lines_go_through_the_platform_neutralizer() -> None:
    platform = FakePlatform()
    stream = io.StringIO()
    report = TextFormat(stream, ReportOptions(platform=platform))
    render(report, [make_finding(path="::odd.yml")])
    assert platform.neutralized == len(stream.getvalue().splitlines())
    assert ":\u200b:odd.yml:5:20: high" in stream.getvalue()
