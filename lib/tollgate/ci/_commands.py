"""GitHub workflow commands: formatting them, and keeping outside text from forming them.

The runner reads every line a step prints (stdout and stderr) and acts on lines that start,
after leading white space, with ``::name ...::`` (``ActionCommand.TryParseV2``). The legacy
``##[name ...]`` form (``ActionCommand.TryParse``) is matched *anywhere* in a line. Escapes
follow ``ActionCommand.cs``: data escapes ``%``, CR and LF; properties also ``:`` and ``,``.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import sys
from collections.abc import Iterator, Mapping
from typing import TextIO

_ZWSP = "\u200b"
# Every character that some reader treats as a line break: the runner's reader splits on
# CR and LF; Python and Unicode add more. Splitting on the superset only neutralizes more.
_LINE_BREAKS = re.compile(r"(\r\n|[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029])")


def escape_data(value: str) -> str:
    """Escape the message part of a command (after the second ``::``)."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_data_bytes(value: bytes) -> bytes:
    """:func:`escape_data` for bytes that need not be valid UTF-8 (mask patterns)."""
    return value.replace(b"%", b"%25").replace(b"\r", b"%0D").replace(b"\n", b"%0A")


def escape_property(value: str) -> str:
    """Escape a property value (``file=``, ``title=``...)."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def format_command(
    name: str, properties: Mapping[str, str | int | None] | None = None, message: str = ""
) -> str:
    """``::name key=value,...::message`` with everything escaped; ``None`` properties omitted."""
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in (properties or {}).items()
        if value is not None
    )
    head = f"{name} {props}" if props else name
    return f"::{head}::{escape_data(message)}"


def neutralize(text: str) -> str:
    """Make ``text`` unable to start a workflow command, changing nothing else visible.

    A zero-width space goes between the first two characters of any line that starts (after
    white space) with ``::``, and inside every ``##[``. The runner trims only white space,
    and U+200B is not white space, so the line no longer parses as a command.
    """
    if "::" not in text and "##[" not in text:
        return text
    parts = _LINE_BREAKS.split(text)
    # Even indexes are lines, odd ones the breaks between them.
    for index in range(0, len(parts), 2):
        parts[index] = _neutralize_line(parts[index])
    return "".join(parts)


def _neutralize_line(line: str) -> str:
    line = line.replace("##[", f"#{_ZWSP}#[")
    body = line.lstrip()
    if body.startswith("::"):
        indent = len(line) - len(body)
        line = f"{line[:indent]}:{_ZWSP}{body[1:]}"
    return line


@contextlib.contextmanager
def stop_commands(stream: TextIO | None = None) -> Iterator[str]:
    """Stop the runner from processing commands until the block ends; yield the resume token.

    The token is random, so text printed inside the block cannot guess it and resume early.
    """
    out = sys.stderr if stream is None else stream
    token = secrets.token_hex(16)
    out.write(f"::stop-commands::{token}\n")
    out.flush()
    try:
        yield token
    finally:
        out.write(f"::{token}::\n")
        out.flush()
