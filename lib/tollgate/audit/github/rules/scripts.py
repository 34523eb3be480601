"""``unverified-script``: code fetched over the network and run without a check.

``curl https://x/install.sh | sh`` runs whatever the server sends today: a compromised host,
CDN or account (Codecov's bash uploader, 2021) runs with the job's token and secrets. The
scanner splits each ``run:`` script into simple commands (quotes, ``\\`` continuations,
``;``/``&&``/``||``/``|``, comments) rather than matching whole lines, so that ``curl ... |
jq`` or ``python -c "..."`` reading a download as data stays quiet.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from tollgate.audit.findings import Confidence, Finding, RuleInfo, Severity
from tollgate.audit.github.model import Action, Workflow
from tollgate.audit.github.rules._places import Model, facts
from tollgate.audit.rules import AuditContext, Rule, register
from tollgate.audit.source import YScalar

# --- A small shell lexer --------------------------------------------------------------------


class Word(NamedTuple):
    """A shell word (a NamedTuple: a script has hundreds, and it is cheaper to build)."""

    text: str
    """Unquoted text."""
    start: int
    end: int


@dataclass(slots=True)
class Command:
    """A simple command: its words and what ends it."""

    words: list[Word] = field(default_factory=list)
    sep: str = ""
    """``|``, ``&&``, ``||``, ``;``, ``\\n``, ``&``, ``(``, ``)`` or ``""`` at the end."""


_LEXEME = re.compile(
    r"""(?:[ \t\r]|\\\n)*(?:
     (?P<comment>\#[^\n]*)
    |(?P<sep>\|\||&&|[|;\n()&])
    |(?P<word>(?:[^\s;&|()'"\\]|\\[^\n]|'[^']*'?|"(?:[^"\\]|\\.)*"?|(?<=[<>])&)+)
    |(?P<other>.))""",
    re.VERBOSE | re.DOTALL,
)
_QUOTED = re.compile(r"""'([^']*)'?|"((?:[^"\\]|\\.)*)"?|\\(.)""", re.DOTALL)


def _unquote(match: re.Match[str]) -> str:
    single, double, escaped = match.groups()
    if single is not None:
        return single
    if double is not None:
        return double.replace('\\"', '"')
    return str(escaped)


def split_commands(script: str, start: int = 0, end: int | None = None) -> list[Command]:
    """Simple commands of ``script[start:end]`` with their words (offsets into ``script``);
    good enough for POSIX shells and PowerShell one-liners, not a parser (here-documents
    are read as commands, ``$( )`` bodies as separate ones)."""
    commands: list[Command] = []
    current = Command()
    # A `#` starts a comment only where a word could start, which the alternation order and
    # the word pattern (which swallows a `#` inside a word) already ensure.
    for match in _LEXEME.finditer(script, start, len(script) if end is None else end):
        kind = match.lastgroup
        if kind == "word":
            text = match.group(kind)
            if "'" in text or '"' in text or "\\" in text:
                text = _QUOTED.sub(_unquote, text)
            current.words.append(Word(text, match.start(kind), match.end()))
        elif kind == "sep":
            if current.words:
                current.sep = match.group(kind)
                commands.append(current)
            current = Command()
    if current.words:
        commands.append(current)
    return commands


# --- What the words mean -------------------------------------------------------------------

_PREFIX_WORDS = frozenset(("sudo", "env", "time", "exec", "nohup", "then", "do", "else", "!"))
_DOWNLOADERS = frozenset(
    ("curl", "wget", "iwr", "irm", "invoke-webrequest", "invoke-restmethod", "aria2c")
)
_SHELLS = frozenset(
    (
        *("sh", "bash", "zsh", "dash", "ksh", "ash", "fish"),
        *("perl", "ruby", "node", "deno", "bun", "php"),
        *("pwsh", "powershell", "iex", "invoke-expression"),
    )
)
# Flags after which an interpreter's code comes from an argument, so stdin is data.
_CODE_FLAGS = frozenset(("-c", "-e", "-E", "-m", "-r", "-command", "-file", "-encodedcommand"))
_SCRIPT_RUNNERS = _SHELLS | frozenset(("source", ".", "&"))
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def _name(word: str) -> str:
    """``/usr/bin/curl.exe`` -> ``curl``, lower-case."""
    base = word.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return base[:-4] if base.endswith(".exe") else base


def _is_shell(name: str) -> bool:
    return name in _SHELLS or name.startswith("python") or name == "py"


def _program(command: Command) -> int:
    """Index of the word that names the program (after ``sudo -E``, ``env A=b``...)."""
    words = command.words
    i = 0
    while i < len(words):
        text = words[i].text
        if text in _PREFIX_WORDS or _ASSIGNMENT.match(text):
            i += 1
            while i < len(words) and words[i].text.startswith("-") and words[i].text != "-":
                i += 1
            continue
        return i
    return len(words)


def _reads_stdin_code(command: Command, at: int) -> bool:
    """True when the interpreter at ``at`` runs its standard input as code."""
    for word in command.words[at + 1 :]:
        text = word.text
        if text in ("-", "-s", "--"):
            return True
        if text.lower() in _CODE_FLAGS or text.startswith("-c"):
            return False
        if not text.startswith("-"):
            return False  # a script file: stdin is its data
    return True


def _downloaded_file(command: Command, at: int) -> tuple[str, Word] | None:
    """``(file name, URL word)`` when the downloader at ``at`` saves to a file."""
    program = _name(command.words[at].text)
    args = command.words[at + 1 :]
    url = next((w for w in args if "://" in w.text), None)
    if url is None:
        return None
    output: str | None = None
    remote_name = program == "wget"
    for k, word in enumerate(args):
        text = word.text
        following = args[k + 1].text if k + 1 < len(args) else ""
        lowered = text.lower()
        if program in ("curl", "aria2c"):
            if text in ("--output", "-o") or (
                text.startswith("-") and not text.startswith("--") and text.endswith("o")
            ):
                output = following
            elif text.startswith("-o") and len(text) > 2 and not text.startswith("--"):
                output = text[2:]
            elif text == "--remote-name" or (
                text.startswith("-") and not text.startswith("--") and "O" in text
            ):
                remote_name = True
        elif program == "wget":
            if text.startswith("--output-document"):
                output = text.partition("=")[2] or following
            elif text.startswith("-") and not text.startswith("--") and "O" in text:
                tail = text[text.index("O") + 1 :]
                output = tail or following
        elif lowered.startswith("-outf") or lowered == "-o":
            output = following
    if output is None and remote_name:
        output = url.text.split("?", 1)[0].rstrip("/")
    if not output or output == "-" or output.startswith("/dev/"):
        return None
    return _name(output), url


# --- Findings --------------------------------------------------------------------------------

# `bash <(curl ...)`, `sh -c "$(curl ...)"`, `eval "$(wget -O- ...)"`: found from the `<(` or
# `$(` (a literal start keeps the search fast), then the interpreter is checked before it.
_SUBSTITUTION = re.compile(r"(?:<\(|\$\()\s*(?:sudo\s+)?(?:curl|wget)\b[^\n)]*\)?")
_RUNS_SUBSTITUTION = re.compile(
    r"(?:^|[\s;&|(])(?:(?:ba|z|k|da)?sh|source|\.|eval|python[0-9.]*|perl|ruby|node)"
    r"(?:\s+-[A-Za-z]+)*\s+[\"']?$"
)
_POWERSHELL = re.compile(
    r"\b(?:iex|Invoke-Expression)\b[\s(]*(?:&\s*)?(?:(?:iwr|irm|Invoke-WebRequest|Invoke-RestMethod)"
    r"\b|\(?\s*New-Object\s+(?:System\.)?Net\.WebClient\s*\)?\s*\.\s*DownloadString\b)[^\n]*"
    r"|\.DownloadString\([^\n|]*\)\s*\|\s*(?:iex|Invoke-Expression)\b",
    re.IGNORECASE,
)
_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"`)]+", re.IGNORECASE)
# A download named by commit is fixed content: raw files at a SHA, jsDelivr `@<sha>`.
_PINNED_URL = re.compile(
    r"https://(?:raw\.githubusercontent\.com/[^/]+/[^/]+/|github\.com/[^/]+/[^/]+/(?:raw|blob)/"
    r"|cdn\.jsdelivr\.net/gh/[^/@]+/[^/@]+@)[0-9a-f]{40}/"
)
_VERIFY = re.compile(
    r"\b(?:sha(?:224|256|384|512)sum|shasum|b2sum|gpgv|gpg\b[^\n]*--verify|cosign\s+verify"
    r"|minisign\b[^\n]*-V|Get-FileHash|openssl\s+dgst|slsa-verifier|attestation\s+verify)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    url: str
    kind: str
    """``pipe`` (downloaded straight into an interpreter) or ``file`` (saved, then run)."""
    verified: bool = False


_TOOLS = ("curl", "wget", "iwr", "irm", "nvoke-", "DownloadString", "aria2c")


def _names_a_tool(text: str) -> bool:
    # `in`, not a regex alternation or any(): about ten times quicker on text without any.
    return (
        "curl" in text
        or "wget" in text
        or "iwr" in text
        or "irm" in text
        or "nvoke-" in text
        or "DownloadString" in text
        or "aria2c" in text
    )


def _mentions(script: str) -> list[int]:
    """Sorted offsets where a download tool is named as a word (not ``libcurl``)."""
    found: list[int] = []
    for tool in _TOOLS:
        at = script.find(tool)
        while at >= 0:
            if (
                at == 0
                or tool == "nvoke-"
                or not (script[at - 1].isalnum() or script[at - 1] in "-_")
            ):
                found.append(at)
            at = script.find(tool, at + 1)
    found.sort()
    return found


def find_unverified(script: str) -> list[_Hit]:
    """Every download that is executed in ``script`` (offsets into it)."""
    mentions = _mentions(script) if _names_a_tool(script) else []
    if not mentions:
        return []
    hits: list[_Hit] = []
    if "<(" in script or "$(" in script:
        for match in _SUBSTITUTION.finditer(script):
            line_start = script.rfind("\n", 0, match.start()) + 1
            runner = _RUNS_SUBSTITUTION.search(script, line_start, match.start())
            if runner is not None:
                start = runner.start() + (script[runner.start()] in " \t;&|(")
                hits.append(_Hit(start, match.end(), _first_url(match.group()), "pipe"))
    if "iex" in script or "IEX" in script or "Invoke-Expression" in script:
        hits.extend(
            _Hit(match.start(), match.end(), _first_url(match.group()), "pipe")
            for match in _POWERSHELL.finditer(script)
        )
    hits.extend(_from_commands(script, mentions))
    hits.sort(key=lambda hit: hit.start)
    # One finding per place: the regex and command views can see the same text.
    kept: list[_Hit] = []
    for hit in hits:
        if not kept or hit.start >= kept[-1].end:
            kept.append(hit)
    return kept


def _logical_lines(script: str, start: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each line from ``start``, ``\\`` continuations joined."""
    n = len(script)
    while start < n:
        end = script.find("\n", start)
        while end > 0 and script[end - 1] == "\\":
            end = script.find("\n", end + 1)
        if end < 0:
            end = n
        yield start, end
        start = end + 1


def _from_commands(script: str, mentions: list[int]) -> Iterator[_Hit]:
    """Pipes into interpreters, and saved downloads run later. Only lines that name a
    download tool, or a file downloaded earlier, are split into commands (speed)."""
    saved: list[tuple[str, Word, Word]] = []
    start = script.rfind("\n", 0, mentions[0]) + 1
    for line_start, line_end in _logical_lines(script, start):
        index = bisect_left(mentions, line_start)
        fetches = index < len(mentions) and mentions[index] < line_end
        if not fetches:
            if not saved:
                if index == len(mentions):
                    return
                continue
            line = script[line_start:line_end]
            if not any(name in line for name, _, _ in saved):
                continue
        commands = split_commands(script, line_start, line_end)
        for index, command in enumerate(commands):
            at = _program(command)
            if at >= len(command.words):
                continue
            program = _name(command.words[at].text)
            if program in _DOWNLOADERS:
                download = _downloaded_file(command, at)
                if download is not None:
                    saved.append((download[0], download[1], command.words[at]))
                elif command.sep == "|":
                    target = _pipe_target(commands, index)
                    if target is not None:
                        url = next((w.text for w in command.words if "://" in w.text), "")
                        yield _Hit(command.words[at].start, target.end, url, "pipe")
                continue
            if (
                fetches
                and _is_shell(program)
                and any(w.text in ("-c", "-Command") for w in command.words)
            ):
                yield from _inner(command)
            if saved:
                yield from _executes(script, command, at, program, saved)


def _pipe_target(commands: list[Command], index: int) -> Word | None:
    """The interpreter a pipeline from ``commands[index]`` feeds its download to, if any."""
    while commands[index].sep == "|" and index + 1 < len(commands):
        index += 1
        command = commands[index]
        at = _program(command)
        if at < len(command.words) and _is_shell(_name(command.words[at].text)):
            if _reads_stdin_code(command, at):
                return command.words[at]
            return None
    return None


def _inner(command: Command) -> Iterator[_Hit]:
    """``sh -c 'curl ... | sh'``: the argument is a script of its own."""
    for k, word in enumerate(command.words[:-1]):
        if word.text in ("-c", "-Command"):
            body = command.words[k + 1]
            shift = body.start + 1  # past the opening quote, near enough for a location
            for hit in find_unverified(body.text):
                yield _Hit(hit.start + shift, hit.end + shift, hit.url, hit.kind, hit.verified)


def _executes(
    script: str, command: Command, at: int, program: str, saved: list[tuple[str, Word, Word]]
) -> Iterator[_Hit]:
    words = command.words
    target: Word | None = None
    if "/" in words[at].text or "\\" in words[at].text:
        target = words[at]
    elif program in _SCRIPT_RUNNERS or _is_shell(program):
        target = next((w for w in words[at + 1 :] if not w.text.startswith("-")), None)
    if target is None:
        return
    name = _name(target.text)
    for file_name, url, downloader in reversed(saved):
        if file_name == name:
            between = script[url.end : words[at].start]
            yield _Hit(
                downloader.start,
                target.end,
                url.text,
                "file",
                verified=_VERIFY.search(between) is not None,
            )
            return


def _first_url(text: str) -> str:
    match = _URL.search(text)
    return match.group() if match else ""


@register
class UnverifiedScript(Rule):
    """Downloads run without a checksum or signature check."""

    info = RuleInfo(
        id="unverified-script",
        name="Downloaded code run without verification",
        summary="`curl ... | sh` and download-then-run steps execute whatever the server sends "
        "that day, with the job's token and secrets; pin a checksum or signature.",
        default_severity=Severity.MEDIUM,
        help_uri="docs/rules/unverified-script.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        return self._check(workflow)

    def check_action(self, action: Action, context: AuditContext) -> Iterator[Finding]:
        return self._check(action)

    def _check(self, model: Model) -> Iterator[Finding]:
        found = facts(model)
        # One look at all the scripts together first: most files download nothing.
        if not _names_a_tool(found.run_text):
            return
        for site in found.runs:
            for hit in find_unverified(site.script.value):
                yield self._finding(model, site.script, site.step.field_anchor("run"), hit)

    def _finding(self, model: Model, node: YScalar, anchor: str, hit: _Hit) -> Finding:
        url = hit.url
        if hit.verified:
            severity, confidence = Severity.LOW, Confidence.MEDIUM
            message = (
                "A downloaded file is run after a checksum or signature command; make sure "
                "that check fails the step (`set -e`) and names a hash written in this file."
            )
        else:
            if url.lower().startswith("http://"):
                severity = Severity.HIGH
            elif _PINNED_URL.match(url):
                severity = Severity.LOW
            else:
                severity = Severity.MEDIUM
            confidence = Confidence.HIGH if hit.kind == "pipe" else Confidence.MEDIUM
            how = "piped into an interpreter" if hit.kind == "pipe" else "saved and run"
            message = (
                f"Code from `{url or 'the network'}` is {how} without a check: whoever "
                "controls that server runs code here. Download it to a file, verify a pinned "
                "checksum (`sha256sum -c`) or signature, then run it."
            )
        return Finding(
            rule=self.info.id,
            severity=severity,
            confidence=confidence,
            message=message,
            location=model.location(node, hit.start, hit.end),
            anchor=anchor,
            evidence=f"{hit.kind} {url}".strip(),
        )
