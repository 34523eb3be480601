"""Credentials written into the file: ``hardcoded-container-credentials`` (registry passwords
of job containers and services) and ``hardcoded-secret`` (well-known token shapes anywhere in
the text, comments included).

Evidence is always redacted (:func:`~._places.redact`): a finding must not republish the
secret in a SARIF upload, a PR annotation or a baseline file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tollgate.audit.findings import Confidence, Finding, Location, RuleInfo, Severity
from tollgate.audit.github.expressions import OPEN
from tollgate.audit.github.model import Action, Workflow
from tollgate.audit.github.rules._places import Model, anchor_at, redact
from tollgate.audit.rules import AuditContext, Rule, register

# --- hardcoded-container-credentials -------------------------------------------------------

# `password: $REGISTRY_PASSWORD` is not expanded by GitHub: a broken value, not a leak.
_SHELL_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")


@register
class HardcodedContainerCredentials(Rule):
    """A literal ``password:`` in a job container's or service's ``credentials:``."""

    info = RuleInfo(
        id="hardcoded-container-credentials",
        name="Hard-coded container registry password",
        summary="A literal registry password in `container:`/`services:` `credentials:` is "
        "readable by everyone who can read the repository, forks and history included.",
        default_severity=Severity.HIGH,
        help_uri="docs/rules/hardcoded-container-credentials.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        for job in workflow.jobs.values():
            places = [(job.container, f"{job.anchor}.container")]
            places.extend(
                (service, f"{job.anchor}.services.{name}") for name, service in job.services.items()
            )
            for container, anchor in places:
                if container is None or container.credentials is None:
                    continue
                password = container.credentials.scalar("password")
                if password is None or password.is_null:
                    continue
                value = password.value.strip()
                if not value or OPEN in value or _SHELL_VARIABLE.fullmatch(value):
                    continue
                yield Finding(
                    rule=self.info.id,
                    severity=Severity.HIGH,
                    confidence=Confidence.HIGH,
                    message="This registry password is written in the workflow: change it, "
                    "then pass it as a secret (`password: ${{ secrets.REGISTRY_PASSWORD }}`).",
                    location=workflow.location(password),
                    anchor=f"{anchor}.credentials.password",
                    evidence=f"password {redact(value)}",
                )


# --- hardcoded-secret ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """A token family: what it is called, and its full regex, matched at a prefix hit."""

    kind: str
    regex: re.Pattern[str]
    boundary: bool = True
    """The character before the prefix must not be a letter, digit or ``_``."""


_PRIVATE_KEY = _Shape(
    "private key",
    # Matched from the hit back to `-----BEGIN` (see _private_key).
    re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |PGP |DSA )?PRIVATE KEY(?: BLOCK)?-----"),
    boundary=False,
)
_FAMILIES: tuple[tuple[tuple[str, ...], _Shape], ...] = (
    (
        ("AKIA", "ASIA"),
        _Shape("AWS access key id", re.compile(r"A[KS]IA[0-9A-Z]{16}(?![0-9A-Za-z])")),
    ),
    (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        _Shape("GitHub token", re.compile(r"gh[pousr]_[A-Za-z0-9]{36}(?![A-Za-z0-9_])")),
    ),
    (
        ("github_pat_",),
        _Shape("GitHub fine-grained token", re.compile(r"github_pat_[A-Za-z0-9_]{82}(?!\w)")),
    ),
    (("glpat-",), _Shape("GitLab token", re.compile(r"glpat-[0-9A-Za-z_-]{20,}"))),
    (
        ("xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-"),
        _Shape("Slack token", re.compile(r"xox[abprs]-(?=[0-9A-Za-z-]*[0-9])[0-9A-Za-z-]{10,}")),
    ),
    (
        ("hooks.slack.com/",),
        _Shape(
            "Slack webhook URL",
            re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,}"),
            boundary=False,
        ),
    ),
    (("AIza",), _Shape("Google API key", re.compile(r"AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"))),
    (("npm_",), _Shape("npm token", re.compile(r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9_])"))),
    (
        ("pypi-AgEI",),
        _Shape("PyPI token", re.compile(r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}")),
    ),
    (("PRIVATE KEY-----", "PRIVATE KEY BLOCK-----"), _PRIVATE_KEY),
)
# Prefix -> its family: what the Aho-Corasick automaton looks for.
_SHAPES = {prefix: shape for prefixes, shape in _FAMILIES for prefix in prefixes}
_PREFIXES = tuple(_SHAPES)
# Documentation values and stand-ins: a real token is random and never spells these.
_PLACEHOLDER = re.compile(
    r"example|sample|dummy|fake|placeholder|redacted|your|changeme|xxxx|1234567|abcdefg",
    re.IGNORECASE,
)
_KEY_MATERIAL = re.compile(r"[A-Za-z0-9+/=]{40,}")
# An AWS secret access key: 40 characters of base64 (a lower-case hex SHA is not one).
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_PAIR_WINDOW = 400
"""Characters either side of a key id searched for its secret key (a few lines)."""


def _prefix_finder() -> Callable[[str], list[tuple[int, int]]]:
    """``text -> [(prefix index, start)]``: Aho-Corasick where installed (about 400 MB/s on
    workflow text), else one regex (about 50 MB/s)."""
    try:
        import ahocorasick_rs
    except ImportError:
        regex = re.compile("|".join(re.escape(p) for p in _PREFIXES))
        index = {p: i for i, p in enumerate(_PREFIXES)}
        return lambda text: [(index[m.group()], m.start()) for m in regex.finditer(text)]
    # Over bytes: a third quicker than over str, encoding included. The prefixes are ASCII,
    # so byte offsets are character offsets unless the text has other characters before.
    automaton = ahocorasick_rs.BytesAhoCorasick([p.encode("ascii") for p in _PREFIXES])

    def find(text: str) -> list[tuple[int, int]]:
        data = text.encode("utf-8", "surrogatepass")
        hits = automaton.find_matches_as_indexes(data)
        if not hits or text.isascii():
            return [(i, start) for i, start, _ in hits]
        return [(i, len(data[:start].decode("utf-8", "surrogatepass"))) for i, start, _ in hits]

    return find


_find_prefixes = _prefix_finder()


@dataclass(frozen=True)
class _Hit:
    kind: str
    start: int
    end: int
    value: str
    severity: Severity
    evidence: str
    note: str = ""


@register
class HardcodedSecret(Rule):
    """Well-known token shapes (cloud keys, forge tokens, webhooks, private keys) in the text."""

    info = RuleInfo(
        id="hardcoded-secret",
        name="Hard-coded secret",
        summary="A token, key or webhook URL written in a workflow or action is public to "
        "everyone who can read the repository, and stays in its history after removal.",
        default_severity=Severity.HIGH,
        help_uri="docs/rules/hardcoded-secret.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        return self._check(workflow)

    def check_action(self, action: Action, context: AuditContext) -> Iterator[Finding]:
        return self._check(action)

    def _check(self, model: Model) -> Iterator[Finding]:
        document = model.document
        text = document.text
        hits = _find_prefixes(text)
        if not hits:
            return
        seen_end = -1
        for index, start in hits:
            if start < seen_end:
                continue  # inside a token already reported (a webhook's path, a key block)
            prefix = _PREFIXES[index]
            hit = _confirm(text, prefix, start)
            if hit is None or _placeholder(hit.value, prefix) or _in_expression(text, start):
                continue
            seen_end = hit.end
            line, column = document.position(hit.start)
            end_line, end_column = document.position(hit.end)
            yield Finding(
                rule=self.info.id,
                severity=hit.severity,
                confidence=Confidence.HIGH,
                message=f"{hit.kind[0].upper()}{hit.kind[1:]} {hit.evidence} is written in "
                f"this file{hit.note}: revoke it now (it stays in the history), then pass it "
                "as a secret (`${{ secrets.NAME }}`).",
                location=Location(document.path, line, column, end_line, end_column),
                anchor=anchor_at(document.root, hit.start),
                evidence=f"{hit.kind} {hit.evidence}",
            )


def _confirm(text: str, prefix: str, start: int) -> _Hit | None:
    shape = _SHAPES[prefix]
    if shape is _PRIVATE_KEY:
        return _private_key(text, start)
    if shape.boundary and start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        return None
    match = shape.regex.match(text, start)
    if match is None:
        return None
    value = match.group()
    hit = _Hit(shape.kind, start, match.end(), value, Severity.HIGH, redact(value))
    if shape.kind == "AWS access key id":
        return _aws_pair(text, hit)
    return hit


def _aws_pair(text: str, hit: _Hit) -> _Hit:
    """A key id is half a credential: high with its secret key nearby, medium alone."""
    window_start = max(0, hit.start - _AWS_PAIR_WINDOW)
    window = text[window_start : hit.end + _AWS_PAIR_WINDOW]
    for match in _AWS_SECRET.finditer(window):
        secret = match.group()
        mixed = any(c.isupper() for c in secret) and any(c.islower() for c in secret)
        if mixed and any(c.isdigit() for c in secret) and not _placeholder(secret):
            return _Hit(
                "AWS access key pair",
                hit.start,
                hit.end,
                hit.value,
                Severity.HIGH,
                f"{hit.evidence} with secret key {redact(secret)}",
            )
    return _Hit(
        hit.kind,
        hit.start,
        hit.end,
        hit.value,
        Severity.MEDIUM,
        hit.evidence,
        " (its secret key may be elsewhere in the repository)",
    )


def _private_key(text: str, hit_start: int) -> _Hit | None:
    header_start = text.rfind("-----BEGIN ", max(0, hit_start - 20), hit_start)
    if header_start < 0:
        return None
    header = _PRIVATE_KEY.regex.match(text, header_start)
    if header is None:
        return None
    # Key material must follow: `-----BEGIN ...-----` then `${{ secrets.KEY }}` or `$KEY` is a
    # template that assembles a key from a secret, not a key.
    end_marker = text.find("-----END", header.end())
    body = text[header.end() : end_marker if end_marker >= 0 else header.end() + 400]
    material = "".join(_KEY_MATERIAL.findall(body))
    if len(material) < 64 or OPEN in body:
        return None
    # `-----BEGIN RSA PRIVATE KEY-----` -> `RSA private key`; PKCS#8 has no algorithm.
    algorithm = header.group()[len("-----BEGIN ") :].split("PRIVATE KEY")[0].strip()
    end = end_marker if end_marker >= 0 else header.end() + len(body)
    return _Hit(
        f"{algorithm} private key".lstrip(),
        header_start,
        end,
        material,
        Severity.HIGH,
        f"({len(material)} chars of key material)",
    )


def _placeholder(value: str, prefix: str = "") -> bool:
    """Documentation values (``AKIAIOSFODNN7EXAMPLE``, ``xoxb-your-token``), bodies of one or
    two characters repeated (``ghp_000...``): no real token looks like these."""
    body = value[len(prefix) :] if value.startswith(prefix) else value
    return len(set(body)) <= 2 or _PLACEHOLDER.search(value) is not None


def _in_expression(text: str, offset: int) -> bool:
    """True when ``offset`` is inside a ``${{ }}`` on its line (a literal in an expression
    is a comparison or a default, handled by whoever wrote it)."""
    line_start = text.rfind("\n", 0, offset) + 1
    opened = text.rfind(OPEN, line_start, offset)
    return opened >= 0 and text.find("}}", opened, offset) < 0
