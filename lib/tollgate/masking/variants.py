"""The forms a secret can take in a log, so each one can be masked.

The set starts from what the GitHub runner registers for every secret
(``actions/runner`` ``ValueEncoders.cs``): the value, each of its lines, base64 (also of the
value with its first one and two bytes dropped, so a ``user:`` prefix cannot shift it out of
alignment), JSON, URI and XML escapes, the command-line (``\\"``) and expression (``''``)
escapes, the value without surrounding double quotes and the PowerShell ``&`` sections. It
then goes beyond the runner:

- base64 of the value followed by a newline (``echo $SECRET | base64``, actions/runner#291);
- URL-safe base64, and unpadded base64 (JWTs, URLs);
- base64 fragments that do not depend on what follows the value (the encoded groups made
  only of the secret's own bytes, at each of the three alignments), so ``base64(secret +
  anything)`` is caught too. Only fragments of at least :data:`MIN_FRAGMENT_LENGTH`
  characters are kept: a short fragment masks unrelated text (actions/runner#326);
- shell quoting: ``'\\''`` inside single quotes, and ``printf %q``-style backslashes;
- form encoding (``+`` for spaces) and JSON with non-ASCII escaped.

Variants shorter than the minimum length are not registered, so a two-letter value does not
turn every log into ``***`` (and reveal itself by what it hides, actions/runner#507).
"""

from __future__ import annotations

import re
from binascii import b2a_base64
from collections.abc import Iterator
from typing import NamedTuple

DEFAULT_MIN_LENGTH = 4
"""Variants shorter than this many bytes are not registered (configurable)."""

MIN_FRAGMENT_LENGTH = 8
"""Base64 fragments (forms that are not a whole encoding) must be at least this long."""

_LINE_BREAK = r"\r\n|\r|\n"  # compiled by re on first use: most values have no line break
# Characters `printf %q` escapes with a backslash in bash.
_SHELL_SPECIAL = frozenset(" \t!\"#$&'()*,;<>?[\\]^`{|}~")
# A value made only of these characters is its own JSON, URI, XML and shell escape: its only
# text form is itself. Most tokens and keys are (and skipping the encoders is most of the
# start-up cost of `tollgate redact` with many secrets).
_PLAIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
_URLSAFE = bytes.maketrans(b"+/", b"-_")


class Variants(NamedTuple):
    """The byte patterns to mask for one secret.

    A NamedTuple rather than a frozen dataclass: ``tollgate redact`` builds this at start-up
    on every CI step, and importing ``dataclasses`` (with ``inspect``) costs it 10 ms.
    """

    patterns: frozenset[bytes]
    """Every form of the secret at least the minimum length long."""
    too_short: int
    """How many distinct forms were left out for being shorter than the minimum."""


def secret_variants(value: str | bytes, min_length: int = DEFAULT_MIN_LENGTH) -> Variants:
    """Compute the forms of ``value`` to mask.

    ``value`` may be ``bytes`` (read from a file or ``os.environb``) or ``str``; a ``str``
    carrying surrogate escapes (undecodable bytes from the environment) round-trips exactly.
    """
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
    if is_plain(text):
        # The common case (tokens, keys), kept lean: it runs for every secret at start-up.
        raw = text.encode("ascii")
        forms = _base64_forms(raw)
        forms.append(raw)
        forms += [f for f in _base64_fragments(raw) if len(f) >= MIN_FRAGMENT_LENGTH]
        found = set(forms)
    else:
        found = set()
        for part in _parts(text):
            raw = _to_bytes(part)
            found.update(_to_bytes(form) for form in _text_forms(part))
            found.update(_base64_forms(raw))
            found.update(f for f in _base64_fragments(raw) if len(f) >= MIN_FRAGMENT_LENGTH)
    found.discard(b"")
    floor = max(min_length, 1)
    if min(map(len, found), default=floor) >= floor:
        return Variants(patterns=frozenset(found), too_short=0)
    kept = frozenset(p for p in found if len(p) >= floor)
    return Variants(patterns=kept, too_short=len(found) - len(kept))


def is_plain(value: str) -> bool:
    """Whether ``value`` is made only of characters no text encoding changes (see _PLAIN)."""
    return not value.strip(_PLAIN)


def _to_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _parts(text: str) -> Iterator[str]:
    """The value, then each non-empty trimmed line (the runner masks lines separately)."""
    yield text
    if "\n" in text or "\r" in text:
        stripped = text.strip()
        if stripped != text:
            yield stripped
        for line in re.split(_LINE_BREAK, text):
            line = line.strip()
            if line:
                yield line


def _text_forms(value: str) -> Iterator[str]:
    # Imported here: plain values (see _PLAIN) never need them, and start-up counts.
    import json
    from urllib.parse import quote, quote_plus

    yield value
    # JSON string bodies: Newtonsoft keeps non-ASCII, Python's default escapes it.
    yield json.dumps(value, ensure_ascii=False)[1:-1]
    yield json.dumps(value, ensure_ascii=True)[1:-1]
    raw = _to_bytes(value)
    yield quote(raw, safe="-_.~")  # .NET Uri.EscapeDataString
    yield quote_plus(raw, safe="-_.~")  # HTML forms, query strings
    yield (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )
    yield value.replace('"', '\\"')  # command-line argument escape
    yield value.replace("'", "''")  # workflow expression string literal
    yield value.replace("'", "'\\''")  # inside a single-quoted shell word
    yield "".join("\\" + c if c in _SHELL_SPECIAL else c for c in value)  # printf %q
    if len(value) > 8 and value.startswith('"') and value.endswith('"'):
        yield value[1:-1]
    yield from _powershell_sections(value)


def _powershell_sections(value: str) -> Iterator[str]:
    """PowerShell colours part of an error line that holds ``&``, splitting the secret."""
    if "&" not in value:
        return
    plus = value.find("&+")
    if plus >= 0:
        pre, post = value[: plus + 2], value[plus + 3 :]
    else:
        last = value.rfind("&")
        pre, post = value[: last + 1], value[last + 1 :]
    for section in (pre, post):
        if len(section) >= 6:
            yield section


def _base64_forms(raw: bytes) -> list[bytes]:
    """Whole encodings: of the value at three alignments, and of the value plus newline."""
    # Plain lists and C calls, no generators: this runs for every secret at start-up.
    encoded = [b2a_base64(data, newline=False) for data in (raw, raw[1:], raw[2:], raw + b"\n")]
    encoded += [form.rstrip(b"=") for form in encoded]
    return encoded + [form.translate(_URLSAFE) for form in encoded]


def _base64_fragments(raw: bytes) -> list[bytes]:
    """The encoded groups made only of the value's own bytes, at each alignment."""
    encoded = [
        b2a_base64(raw[shift : shift + (len(raw) - shift) // 3 * 3], newline=False)
        for shift in range(3)
    ]
    return encoded + [form.translate(_URLSAFE) for form in encoded]
