"""Workflow command formatting and neutralization."""

from __future__ import annotations

import io
import re

import pytest

from tollgate.ci._commands import (
    escape_data,
    escape_data_bytes,
    escape_property,
    format_command,
    neutralize,
    stop_commands,
)

ZWSP = "\u200b"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("100%", "100%25"),
        ("a\rb", "a%0Db"),
        ("a\nb", "a%0Ab"),
        ("a\r\nb", "a%0D%0Ab"),
        ("%0A", "%250A"),
        ("a:b,c", "a:b,c"),
        ("", ""),
    ],
)
def test_escape_data(raw: str, escaped: str) -> None:
    assert escape_data(raw) == escaped
    assert escape_data_bytes(raw.encode()) == escaped.encode()


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a:b", "a%3Ab"),
        ("a,b", "a%2Cb"),
        ("50%:\r\n,", "50%25%3A%0D%0A%2C"),
        ("src/app.py", "src/app.py"),
    ],
)
def test_escape_property(raw: str, escaped: str) -> None:
    assert escape_property(raw) == escaped


def test_escape_data_bytes_keeps_invalid_utf8() -> None:
    assert escape_data_bytes(b"\xff%\n") == b"\xff%25%0A"


def test_format_command_without_properties() -> None:
    assert format_command("add-mask", None, "s3cr3t") == "::add-mask::s3cr3t"


def test_format_command_escapes_and_omits_none() -> None:
    command = format_command(
        "error",
        {"file": "a,b:c.py", "line": 3, "col": None, "title": "T: 100%"},
        "line1\nline2 %",
    )
    assert command == "::error file=a%2Cb%3Ac.py,line=3,title=T%3A 100%25::line1%0Aline2 %25"


def _unescape(value: str) -> str:
    """What the runner does (ActionCommand.Unescape)."""
    return (
        value.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
    )


@pytest.mark.parametrize("text", ["%0A", "a%3Ab", "::x::", "%", "\r\n%25\n"])
def test_escape_round_trips_through_runner_unescape(text: str) -> None:
    assert _unescape(escape_property(text)) == text
    assert _unescape(escape_data(text)) == text


def _is_command(line: str) -> bool:
    """Would the runner treat this line as a command (v2 at the start, v1 anywhere)?"""
    return line.lstrip().startswith("::") or "##[" in line


@pytest.mark.parametrize(
    "text",
    [
        "::set-output name=x::y",
        "  ::add-mask::value",
        "\t::error::boom",
        "##[command]rm -rf /",
        "prefix ##[set-env name=A;]b",
        "ok line\n::stop-commands::abc\nmore",
        "a\r::debug::x",
        "a\r\n  ::warning::x",
        "a\u2028::notice::x",
    ],
)
def test_neutralize_makes_commands_inert(text: str) -> None:
    result = neutralize(text)
    # The runner splits lines on CR and LF.
    for line in re.split(r"\r\n|\r|\n", result):
        assert not _is_command(line), line
    assert result.replace(ZWSP, "") == text


def test_neutralize_exact_insertion() -> None:
    assert neutralize("::set-output name=x::y") == f":{ZWSP}:set-output name=x::y"
    assert neutralize("  ::add-mask::v") == f"  :{ZWSP}:add-mask::v"
    assert neutralize("##[command]x") == f"#{ZWSP}#[command]x"


@pytest.mark.parametrize(
    "text", ["plain text", "a::b", "time 12:30::", "# heading", "[x]", "", "line\nline2"]
)
def test_neutralize_leaves_harmless_text_alone(text: str) -> None:
    assert neutralize(text) == text


def test_stop_commands_writes_random_token() -> None:
    stream = io.StringIO()
    with stop_commands(stream) as token:
        stream.write("::add-mask::not processed\n")
    lines = stream.getvalue().splitlines()
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert lines == [f"::stop-commands::{token}", "::add-mask::not processed", f"::{token}::"]
    with stop_commands(io.StringIO()) as other:
        pass
    assert other != token


def test_stop_commands_resumes_after_exception() -> None:
    stream = io.StringIO()
    with pytest.raises(RuntimeError), stop_commands(stream) as token:
        raise RuntimeError
    assert stream.getvalue().endswith(f"::{token}::\n")


def test_stop_commands_defaults_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with stop_commands() as token:
        pass
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"::stop-commands::{token}" in captured.err
