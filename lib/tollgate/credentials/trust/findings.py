"""What the trust linter reports, and the cloud-neutral model it reasons about.

Each cloud module turns its input (an IAM trust policy, a CEL condition, a federated
credential) into a :class:`TrustPolicy`: alternatives (ways in), each a conjunction of
:class:`Constraint` on token claims. The shared rules in :mod:`tollgate.credentials.trust`
then ask of every alternative what an attacker's token must look like to get through.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass

from tollgate.audit.findings import Severity
from tollgate.errors import UsageError

__all__ = [
    "CHECKS",
    "Alternative",
    "Constraint",
    "MatchOp",
    "Pattern",
    "RoleKind",
    "Severity",
    "TrustFinding",
    "TrustPolicy",
    "finding",
    "load_json",
    "malformed",
]


@dataclass(frozen=True)
class Check:
    """One rule: its default severity and a short title."""

    severity: Severity
    title: str


CHECKS: dict[str, Check] = {
    "no-subject-condition": Check(
        Severity.CRITICAL, "nothing ties the trust to a repository or project"
    ),
    "subject-other-owners": Check(
        Severity.CRITICAL, "a wildcard or partial match lets other owners' repositories in"
    ),
    "subject-repo-wildcard": Check(
        Severity.MEDIUM, "a wildcard lets other repositories of the same owner in"
    ),
    "subject-org-wide": Check(Severity.LOW, "every repository of the owner is trusted"),
    "subject-any-ref": Check(
        Severity.MEDIUM, "any branch, tag, pull request or environment is trusted"
    ),
    "subject-id-wildcard": Check(
        Severity.LOW, "an immutable subject with a wildcard in place of an ID"
    ),
    "pull-request-subject": Check(Severity.MEDIUM, "pull request runs are trusted"),
    "no-environment": Check(Severity.MEDIUM, "a production role without a deployment environment"),
    "stringlike-without-wildcard": Check(
        Severity.LOW, "a wildcard operator on a value without a wildcard"
    ),
    "no-audience-condition": Check(Severity.MEDIUM, "no condition on the token's audience"),
    "shared-audience": Check(Severity.MEDIUM, "an audience that other services receive too"),
    "wrong-issuer": Check(Severity.MEDIUM, "conditions for another issuer, or a wrong issuer"),
    "condition-fails-open": Check(
        Severity.LOW, "a condition operator that passes when the claim is missing"
    ),
    "unsupported-condition-key": Check(Severity.LOW, "a condition key AWS never sets"),
    "subject-case": Check(Severity.LOW, "upper-case letters in a case-sensitive name match"),
    "subject-malformed": Check(Severity.LOW, "a subject the CI system never issues"),
    "custom-subject": Check(Severity.INFO, "a subject that needs a customized sub template"),
    "condition-not-understood": Check(
        Severity.INFO, "part of a condition tollgate could not analyse"
    ),
    "no-oidc-trust": Check(Severity.INFO, "no CI OIDC trust found to check"),
}
"""Every check id with its default severity; findings may raise or lower it (role kind)."""


@enum.unique
class RoleKind(str, enum.Enum):
    """What the trusted role may do; it decides how bad pull-request and env-less trust is."""

    AUTO = "auto"
    """Infer from the role's name when the input has one (``aws iam get-role`` output)."""
    UNKNOWN = "unknown"
    READ_ONLY = "read-only"
    DEPLOY = "deploy"
    PRODUCTION = "production"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class TrustFinding:
    """One problem in a trust configuration."""

    id: str
    """The check's id (a key of :data:`CHECKS`)."""
    severity: Severity
    message: str
    """What is wrong and how to fix it."""
    path: str
    """Where: a JSON path (``Statement[0].Condition.StringLike``) or ``attributeCondition``."""

    def as_dict(self) -> dict[str, str]:
        """The finding as JSON-ready data."""
        return {
            "id": self.id,
            "severity": self.severity.value,
            "path": self.path,
            "message": self.message,
        }


def finding(check: str, message: str, path: str, severity: Severity | None = None) -> TrustFinding:
    """A finding of ``check`` (its default severity unless ``severity`` is given)."""
    return TrustFinding(check, severity or CHECKS[check].severity, message, path)


def malformed(source: str, path: str, problem: str) -> UsageError:
    """The error for input that is not a trust configuration we can read (exit status 2)."""
    where = f"{source}: {path}" if path else source
    return UsageError(
        f"{where}: {problem}",
        hint="fix the file (or choose the right --cloud) and run the linter again",
    )


def load_json(text: str, source: str) -> object:
    """Parse ``text`` as JSON, refusing duplicate keys (which one would the cloud use?)."""

    def unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
        data: dict[str, object] = {}
        for key, value in pairs:
            if key in data:
                raise _DuplicateKeyError(key)
            data[key] = value
        return data

    try:
        return json.loads(text, object_pairs_hook=unique)
    except _DuplicateKeyError as error:
        raise malformed(
            source, "", f"the key {error.key!r} appears twice in one object; keep one"
        ) from None
    except json.JSONDecodeError as error:
        raise malformed(
            source, "", f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


# Claim patterns

_STAR = "\x00*"
_ONE = "\x00?"


@dataclass(frozen=True)
class Pattern:
    """A claim value pattern: literal chunks and wildcards (``*`` any run, ``?`` one char)."""

    tokens: tuple[str, ...]

    @classmethod
    def literal(cls, value: str) -> Pattern:
        """Exactly ``value`` (``*`` in it is an ordinary character)."""
        return cls((value,) if value else ())

    @classmethod
    def glob(cls, value: str) -> Pattern:
        """``value`` read as IAM ``StringLike`` reads it: ``*`` and ``?`` are wildcards."""
        tokens: list[str] = []
        chunk = ""
        for char in value:
            if char in "*?":
                if chunk:
                    tokens.append(chunk)
                    chunk = ""
                tokens.append(_STAR if char == "*" else _ONE)
            else:
                chunk += char
        if chunk:
            tokens.append(chunk)
        return cls(tuple(tokens))

    @classmethod
    def prefix(cls, value: str) -> Pattern:
        """Anything starting with ``value``."""
        return cls((*cls.literal(value).tokens, _STAR))

    @classmethod
    def suffix(cls, value: str) -> Pattern:
        """Anything ending with ``value``."""
        return cls((_STAR, *cls.literal(value).tokens))

    @classmethod
    def containing(cls, value: str) -> Pattern:
        """Anything containing ``value``."""
        return cls((_STAR, *cls.literal(value).tokens, _STAR))

    @property
    def literal_prefix(self) -> str:
        """The text every matching value starts with (up to the first wildcard)."""
        text = ""
        for token in self.tokens:
            if token in (_STAR, _ONE):
                break
            text += token
        return text

    @property
    def literal_suffix(self) -> str:
        """The text every matching value ends with (after the last wildcard)."""
        text = ""
        for token in reversed(self.tokens):
            if token in (_STAR, _ONE):
                break
            text = token + text
        return text

    @property
    def is_exact(self) -> bool:
        """Whether the pattern matches one value only."""
        return not any(token in (_STAR, _ONE) for token in self.tokens)

    @property
    def matches_everything(self) -> bool:
        """``*`` (or ``**``): any value at all."""
        return bool(self.tokens) and all(token == _STAR for token in self.tokens)

    def without_prefix(self, prefix: str) -> Pattern:
        """The rest of the pattern once ``prefix`` (part of :attr:`literal_prefix`) is cut."""
        assert self.literal_prefix.startswith(prefix)
        tokens = list(self.tokens)
        remaining = len(prefix)
        while remaining and tokens:
            head = tokens[0]
            if len(head) <= remaining:
                remaining -= len(head)
                tokens.pop(0)
            else:
                tokens[0] = head[remaining:]
                remaining = 0
        return Pattern(tuple(tokens))

    def matches(self, value: str, *, ignore_case: bool = False) -> bool:
        """Whether ``value`` matches (for tests and round trips)."""
        parts = []
        for token in self.tokens:
            if token == _STAR:
                parts.append(".*")
            elif token == _ONE:
                parts.append(".")
            else:
                parts.append(re.escape(token))
        flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
        return re.fullmatch("".join(parts), value, flags) is not None

    def __str__(self) -> str:
        return "".join(
            "*" if token == _STAR else "?" if token == _ONE else token for token in self.tokens
        )


@enum.unique
class MatchOp(str, enum.Enum):
    """How a constraint compares a claim with its values."""

    EQUALS = "equals"
    GLOB = "glob"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    CONTAINS = "contains"
    PATTERN = "pattern"
    """Already a :class:`Pattern` (a regular expression translated conservatively)."""


@dataclass(frozen=True)
class Constraint:
    """The claim must match one of ``patterns`` (several values are alternatives)."""

    claim: str
    """The token claim: ``sub``, ``aud``, ``repository``, ``project_path``..."""
    patterns: tuple[Pattern, ...]
    path: str
    """Where it is written, for findings."""
    operator: str
    """The operator as written (``StringLike``, ``==``, ``startsWith``, ``matches``)."""
    op: MatchOp = MatchOp.EQUALS
    ignore_case: bool = False
    dead: bool = False
    """It can never hold (a key this issuer never sends): the alternative fails closed."""

    @property
    def values(self) -> tuple[str, ...]:
        """The patterns as written."""
        return tuple(str(pattern) for pattern in self.patterns)


@dataclass(frozen=True)
class Alternative:
    """One way in: a token gets through when it meets every constraint."""

    constraints: tuple[Constraint, ...]
    path: str
    """Where it starts: ``Statement[0]``, ``[1]``, ``attributeCondition``."""
    issuer: str | None = None
    """The issuer this way in trusts (URL, or IAM provider host/path), if known."""
    opaque: tuple[str, ...] = ()
    """Parts of the condition tollgate could not read (they may restrict further)."""


@dataclass(frozen=True)
class TrustPolicy:
    """A trust configuration in cloud-neutral terms."""

    cloud: str
    """``aws``, ``gcp`` or ``azure``."""
    alternatives: tuple[Alternative, ...]
    findings: tuple[TrustFinding, ...] = ()
    """What the cloud module found on its own (operators, key names, issuer format)."""
    role_name: str | None = None
    """The role's or credential's name, for :attr:`RoleKind.AUTO`."""
    missing_audience: Severity | None = None
    """Severity of an alternative without an ``aud`` condition (``None``: the cloud's default
    audience is specific to this trust, so none is needed)."""
    audience_hint: str = ""
    """How to add an audience condition, for the message."""


def show_values(values: tuple[str, ...]) -> str:
    """A condition's values as a message shows them: one quoted, several as a list."""
    return repr(values[0]) if len(values) == 1 else repr(list(values))
