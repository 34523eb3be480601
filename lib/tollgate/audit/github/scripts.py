"""What a ``run:`` script writes to GitHub's command files, and which variables it reads.

The runner reads ``$GITHUB_ENV``, ``$GITHUB_OUTPUT`` and ``$GITHUB_PATH`` after a step: lines
``NAME=value`` (or ``NAME<<DELIMITER``, the value lines, then ``DELIMITER``) set environment
variables for later steps and the step's outputs; ``$GITHUB_PATH`` lines are prepended to
``PATH``. :func:`command_file_writes` finds these writes in bash, PowerShell and cmd scripts:
``echo "x=$Y" >> "$GITHUB_OUTPUT"``, ``| tee -a``, ``{ ...; } >> ...`` groups, ``cat <<EOF >>``
here-documents, ``Out-File``/``Add-Content``, and the legacy ``::set-output``. It is a scanner
for the shapes people write, not a shell parser: what it cannot read it leaves out.

:func:`variable_refs` lists the ``$NAME`` / ``${NAME}`` / ``$env:NAME`` / ``%NAME%`` reads in a
piece of script, each marked *plain* or not: a read inside ``$(...)`` or backticks, or with a
parameter operator (``${X//[^a-z]/}``, ``${#X}``), may transform the value, so a taint that
passes through it is uncertain.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

TARGETS = ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH")

# `$GITHUB_ENV`, `${GITHUB_ENV}`, `$env:GITHUB_ENV`, `${Env:GITHUB_ENV}`, `%GITHUB_ENV%`,
# `process.env.GITHUB_ENV` (JavaScript), `os.environ["GITHUB_ENV"]` (Python).
_TARGET_RE = re.compile(
    r"(?:\$\{?(?i:env:)?|%|process\.env\.|environ\[['\"]|getenv\(['\"])"
    r"(GITHUB_ENV|GITHUB_OUTPUT|GITHUB_PATH)\b"
)
# What writes to the file named after it (the last one before the target counts).
_WRITE_OP_RE = re.compile(
    r">>?|\btee\b|\bOut-File\b|\bAdd-Content\b|\bSet-Content\b|\bappendFile(?:Sync)?\b"
    r"|\bwriteFile(?:Sync)?\b",
    re.IGNORECASE,
)
# A shell here-document: `<<EOF`, `<< 'EOF'`, `<<-"EOF"` after a space (not `name<<EOF`,
# which is GitHub's own multi-line syntax inside an echoed string).
_HEREDOC_RE = re.compile(r"(?:^|\s)<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
# Where a statement starts within a line: after `;`, `&&`, `||`, `|`, `then`, `do`, `else`.
_SEGMENT_RE = re.compile(r";|&&|\|\||\bthen\b|\bdo\b|\belse\b|(?<![{$])\{\s")
# The command word and its options before the written text.
_COMMAND_RE = re.compile(
    r"""\s*(?:(?:echo|printf|Write-Output|Write-Host|print|cat|\$?\(?)(?:\s+-{1,2}[A-Za-z]+)*\s+)?"""
    r"""[\s"'`(]*""",
    re.IGNORECASE,
)
_NEWLINE_RE = re.compile(r"\n")
_ENTRY_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)(<<|=)")
_LEGACY_OUTPUT_RE = re.compile(r"::set-output\s+name=([A-Za-z0-9_.-]+)::")
_RANDOM_DELIMITER_RE = re.compile(
    r"\$\(|`|\$RANDOM|uuid|openssl\s+rand|/dev/urandom|mktemp|New-Guid|\[guid\]", re.IGNORECASE
)
_VAR_RE = re.compile(
    r"\$\{(?i:env:)?(#?)([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}"  # ${X}, ${#X}, ${X//a/b}, ${env:X}
    r"|\$(?i:env:)?([A-Za-z_][A-Za-z0-9_]*)"  # $X, $env:X
    r"|%([A-Za-z_][A-Za-z0-9_]*)%"  # %X% (cmd)
)
_ASSIGN_RE = re.compile(
    r"^[ \t]*(?:export[ \t]+|local[ \t]+|readonly[ \t]+|declare[ \t]+(?:-\w+[ \t]+)*)?"
    r"(?:\$(?i:env:)?)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*\+?=(?!=)(.*)$",
    re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class FileWrite:
    """One value written to ``$GITHUB_ENV``, ``$GITHUB_OUTPUT`` or ``$GITHUB_PATH``."""

    target: str
    """``GITHUB_ENV``, ``GITHUB_OUTPUT`` or ``GITHUB_PATH``."""
    name: str | None
    """The variable or output set (``None`` for ``$GITHUB_PATH`` and unreadable writes)."""
    value: str
    """The script text that produces the value (and, when unreadable, the whole statement)."""
    start: int
    """Offset of :attr:`value` in the script."""
    target_start: int
    """Offset of the statement's file reference (``$GITHUB_ENV``) in the script."""
    target_end: int
    multiline: bool = False
    """Written with ``NAME<<DELIMITER``: a newline in the value cannot start a new entry."""
    random_delimiter: bool = False
    """... and the delimiter is generated at run time, so the value cannot contain it."""


@dataclass(frozen=True, slots=True)
class VariableRef:
    """A variable read in a piece of script."""

    name: str
    start: int
    end: int
    plain: bool
    """False when read through an operator or a command substitution (it may be changed)."""


def command_file_writes(script: str) -> tuple[FileWrite, ...]:
    """Every write to a command file in ``script``, in order (empty when there is none)."""
    if "GITHUB_" not in script and "set-output" not in script:
        return ()
    found = [m.start() for m in _TARGET_RE.finditer(script)]
    found += [m.start() for m in _LEGACY_OUTPUT_RE.finditer(script)]
    if not found:
        return ()
    lines = _Lines(script)
    writes: list[FileWrite] = []
    done = -1  # the script up to here has been read (a line's targets, a here-document)
    # An open `NAME<<DELIMITER` per file: its value lines may come in later statements.
    pending: dict[str, tuple[str, str, bool]] = {}
    for offset in sorted(found):
        if offset < done:
            continue
        index, last = lines.logical(offset)
        start, end = lines.start(index), lines.end(last)
        done = end
        raw = script[start:end]
        if "::set-output" in raw:
            writes.extend(_legacy_outputs(script, start, end))
        if "GITHUB_" not in raw:
            continue
        text = _mask(raw)
        previous = 0  # where the statement before this target ended
        for target in _TARGET_RE.finditer(text):
            op = _last_write_op(text, previous, target.start())
            if op is None:
                continue
            heredoc = _HEREDOC_RE.search(text)
            if heredoc is not None:
                body, done = _heredoc_body(script, lines, last, heredoc[2])
                statements = [body] if body is not None else []
            else:
                statements = _payload(script, (start, end), op, target, previous)
            previous = target.end()
            writes.extend(
                _entries(
                    script,
                    statements,
                    (target[1], start + target.start(), start + target.end()),
                    pending,
                    raw=heredoc is not None,
                )
            )
            if heredoc is not None:
                break  # the here-document is the line's one write
    return tuple(writes)


def variable_refs(text: str) -> list[VariableRef]:
    """The variables ``text`` reads, with whether each read is plain (see the module doc)."""
    if "$" not in text and "%" not in text:
        return []
    opaque = _opaque_spans(text)
    refs: list[VariableRef] = []
    for match in _VAR_RE.finditer(text):
        if match[2] is not None:
            name = match[2]
            # `${X}` is plain; `${#X}` or `${X:0:3}` / `${X//a/b}` transform it.
            plain = not match[1] and not match[3]
        else:
            name = match[4] or match[5]
            plain = True
        if any(a <= match.start() < b for a, b in opaque):
            plain = False
        refs.append(VariableRef(name, match.start(), match.end(), plain))
    return refs


def assignments(script: str) -> dict[str, list[tuple[str, int]]]:
    """Shell and PowerShell variables the script assigns: name -> ``(value text, offset)``."""
    if "=" not in script:
        return {}
    found: dict[str, list[tuple[str, int]]] = {}
    for match in _ASSIGN_RE.finditer(script):
        found.setdefault(match[1], []).append((match[2], match.start(2)))
    return found


def has_command_substitution(text: str) -> bool:
    """True when ``text`` runs a command for its value (``$(...)``, backticks)."""
    return "$(" in text or "`" in text


# --- Internals ----------------------------------------------------------------------------------


class _Lines:
    """Line positions of a script, and its logical lines (continuations joined)."""

    def __init__(self, script: str) -> None:
        self.script = script
        self.starts = [0, *(m.end() for m in _NEWLINE_RE.finditer(script))]

    def __len__(self) -> int:
        return len(self.starts)

    def start(self, index: int) -> int:
        return self.starts[index]

    def end(self, index: int) -> int:
        """Where line ``index`` ends, its line break excluded."""
        if index + 1 < len(self.starts):
            return self.starts[index + 1] - 1
        return len(self.script)

    def text(self, index: int) -> str:
        return self.script[self.start(index) : self.end(index)]

    def logical(self, offset: int) -> tuple[int, int]:
        """The first and last physical line of the logical line holding ``offset``."""
        first = last = bisect_right(self.starts, offset) - 1
        while first > 0 and _continues(self.text(first - 1).rstrip()):
            first -= 1
        while last + 1 < len(self.starts) and _continues(self.text(last).rstrip()):
            last += 1
        return first, last


def _continues(line: str) -> bool:
    """True when the next line continues this one (``\\``, a pipe, PowerShell's `` ` ``)."""
    if line.endswith("||"):
        return False
    return line.endswith(("\\", "|", " `"))


def _last_write_op(text: str, after: int, before: int) -> re.Match[str] | None:
    op = None
    for match in _WRITE_OP_RE.finditer(text, 0, before):
        if match.start() < after:
            continue
        op = match
    if op is None or re.search(r"[;|&]", text[op.end() : before]):
        return None  # the file is only read, or used by another command
    if op[0] in (">", ">>") and op.start() > 0 and text[op.start() - 1] in "2&":
        return None  # `2>> $GITHUB_ENV`, `&>`: not what the step means to write
    return op


def _payload(
    script: str,
    line: tuple[int, int],
    op: re.Match[str],
    target: re.Match[str],
    previous: int,
) -> list[tuple[int, int]]:
    """The statements whose output the write sends to the file, as script spans."""
    start, end = line
    text = _mask(script[start:end])
    word = op[0].lower()
    if word in ("add-content", "set-content"):
        value = re.search(r"-Value\s+", text[target.end() :], re.IGNORECASE)
        if value is not None:
            return [(start + target.end() + value.end(), end)]
    if word.startswith(("appendfile", "writefile")):
        return [(start + target.end(), end)]
    cut = op.start()
    if word not in (">", ">>"):
        pipe = text.rfind("|", 0, cut)
        if pipe < 0:
            return [(start, start + cut)]
        cut = pipe
    head = text[:cut].rstrip()
    if head.endswith("}"):
        return _group(script, start + len(head) - 1)
    segment = previous
    for match in _SEGMENT_RE.finditer(head, previous):
        segment = match.end()
    return [(start + segment, start + len(head))]


def _group(script: str, close: int) -> list[tuple[int, int]]:
    """The statements of a ``{ ...; } >> file`` group ending at ``close``."""
    depth = 0
    position = close
    floor = max(0, close - 20_000)  # a group is a few lines; do not walk a huge script
    while position > floor:
        position -= 1
        char = script[position]
        if char == "}":
            depth += 1
        elif char == "{" and (position == 0 or script[position - 1] != "$"):
            if depth == 0:
                break
            depth -= 1
    body_start = position + 1
    statements: list[tuple[int, int]] = []
    piece = body_start
    for match in re.finditer(r"[;\n]", script[body_start:close]):
        statements.append((piece, body_start + match.start()))
        piece = body_start + match.end()
    statements.append((piece, close))
    return [(a, b) for a, b in statements if script[a:b].strip()]


def _heredoc_body(
    script: str, lines: _Lines, index: int, delimiter: str
) -> tuple[tuple[int, int] | None, int]:
    """The lines of a here-document after line ``index``, and where the script goes on."""
    for later in range(index + 1, len(lines)):
        if lines.text(later).strip() == delimiter:
            if later == index + 1:
                return None, lines.end(later)
            return (lines.start(index + 1), lines.end(later - 1)), lines.end(later)
    return None, lines.end(index)


def _entries(
    script: str,
    statements: list[tuple[int, int]],
    where: tuple[str, int, int],
    pending: dict[str, tuple[str, str, bool]],
    raw: bool,
) -> list[FileWrite]:
    """Read ``NAME=value`` / ``NAME<<DELIM`` entries out of the written statements;
    ``pending`` holds the open multi-line entry of each file across calls."""
    target, target_start, target_end = where
    found: list[FileWrite] = []
    for span_start, span_end in statements:
        text = script[span_start:span_end]
        # A here-document body holds the file's lines as they are; each echo is one line.
        pieces = _split_lines(text, span_start) if raw else [(text, span_start)]
        for piece, offset in pieces:
            body, body_offset = _strip_command(piece, offset, raw)
            if target in pending:
                name, delimiter, random = pending[target]
                if _bare(body) == _bare(delimiter):
                    del pending[target]
                    continue
                found.append(
                    FileWrite(
                        target,
                        name,
                        body,
                        body_offset,
                        target_start,
                        target_end,
                        multiline=True,
                        random_delimiter=random,
                    )
                )
                continue
            if target == "GITHUB_PATH":
                found.append(FileWrite(target, None, body, body_offset, target_start, target_end))
                continue
            entry = _ENTRY_RE.match(body)
            if entry is None:
                found.append(FileWrite(target, None, body, body_offset, target_start, target_end))
                continue
            value = body[entry.end() :]
            if entry[2] == "<<":
                delimiter = value.strip().strip("\"'")
                random = _is_random(delimiter, script)
                # `{ echo "x<<EOF"; echo "$X"; echo EOF; } >>` or one echo per line.
                pending[target] = (entry[1], delimiter, random)
                continue
            found.append(
                FileWrite(
                    target,
                    entry[1],
                    value,
                    body_offset + entry.end(),
                    target_start,
                    target_end,
                )
            )
    return found


def _bare(text: str) -> str:
    """A delimiter without quotes and variable syntax: ``"${EOF}"`` -> ``EOF``."""
    return text.strip().strip("\"'").replace("${", "").replace("$", "").replace("}", "")


def _is_random(delimiter: str, script: str) -> bool:
    """True when the delimiter is generated at run time (directly or through a variable)."""
    if _RANDOM_DELIMITER_RE.search(delimiter):
        return True
    for ref in variable_refs(delimiter):
        for value, _ in assignments(script).get(ref.name, ()):
            if _RANDOM_DELIMITER_RE.search(value):
                return True
    return False


def _split_lines(text: str, offset: int) -> list[tuple[str, int]]:
    pieces: list[tuple[str, int]] = []
    position = 0
    for line in text.split("\n"):
        pieces.append((line, offset + position))
        position += len(line) + 1
    return pieces


def _strip_command(text: str, offset: int, raw: bool) -> tuple[str, int]:
    """The written text without the command word and leading quotes (``echo "``)."""
    if raw:
        stripped = len(text) - len(text.lstrip())
        return text[stripped:], offset + stripped
    match = _COMMAND_RE.match(text)
    skip = match.end() if match is not None else 0
    return text[skip:], offset + skip


def _legacy_outputs(script: str, start: int, end: int) -> list[FileWrite]:
    text = script[start:end]
    return [
        FileWrite(
            "GITHUB_OUTPUT",
            match[1],
            text[match.end() :],
            start + match.end(),
            start + match.start(),
            start + match.end(),
        )
        for match in _LEGACY_OUTPUT_RE.finditer(text)
    ]


def _mask(text: str) -> str:
    """``text`` with the insides of ``${{ }}`` and ``$( )`` blanked out (same length), so that
    operators there are not taken for the script's own."""
    if "${{" not in text and "$(" not in text:
        return text
    chars = list(text)
    for a, b in _expression_spans(text) + _opaque_spans(text):
        for index in range(a + 2, min(b - 1, len(chars))):
            chars[index] = "_"
    return "".join(chars)


def _expression_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    position = text.find("${{")
    while position >= 0:
        close = text.find("}}", position + 3)
        end = len(text) if close < 0 else close + 2
        spans.append((position, end))
        position = text.find("${{", end)
    return spans


def _opaque_spans(text: str) -> list[tuple[int, int]]:
    """``$(...)`` and backtick spans: a variable read inside runs through a command."""
    spans: list[tuple[int, int]] = []
    position = text.find("$(")
    while position >= 0:
        depth = 0
        end = len(text)
        for index in range(position + 1, len(text)):
            char = text[index]
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    end = index + 1
                    break
        spans.append((position, end))
        position = text.find("$(", position + 2)
    tick = text.find("`")
    while tick >= 0:
        close = text.find("`", tick + 1)
        if close < 0:
            break
        spans.append((tick, close + 1))
        tick = text.find("`", close + 1)
    return spans
