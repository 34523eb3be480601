"""What the audit reports: findings, diagnostics, and the vocabulary they use.

A :class:`Finding` is one risk at one place; a :class:`Diagnostic` is a file the audit could
not read (malformed YAML, not UTF-8, too large): the run goes on and reports it.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field


@enum.unique
class Severity(str, enum.Enum):
    """How bad a finding is if it is real."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> int:
        """0 (info) to 4 (critical), for comparisons and thresholds."""
        return _SEVERITY_ORDER.index(self)

    @property
    def security_severity(self) -> str:
        """GitHub code scanning's ``security-severity`` score (0.0-10.0) for this level."""
        return {"info": "0.0", "low": "3.0", "medium": "5.5", "high": "8.0", "critical": "9.5"}[
            self.value
        ]


_SEVERITY_ORDER = list(Severity)


@enum.unique
class Confidence(str, enum.Enum):
    """How sure the audit is that the finding is real (lowered by gates it can see)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> int:
        """0 (low) to 2 (high)."""
        return list(Confidence).index(self)


@enum.unique
class Persona(str, enum.Enum):
    """How much the user wants to hear (zizmor's personas).

    ``regular``: what is likely exploitable; ``pedantic``: also hygiene and hardening;
    ``auditor``: everything, including what needs a human to judge.
    """

    REGULAR = "regular"
    PEDANTIC = "pedantic"
    AUDITOR = "auditor"

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> int:
        """0 (regular) to 2 (auditor)."""
        return list(Persona).index(self)


@dataclass(frozen=True)
class Location:
    """A place in a file: 1-based line and column, as editors and SARIF count them."""

    path: str
    """The file's path as given or discovered, with ``/`` separators."""
    line: int
    column: int = 1
    end_line: int | None = None
    end_column: int | None = None


@dataclass(frozen=True)
class Finding:
    """One risk at one place."""

    rule: str
    """The rule's id, e.g. ``template-injection``."""
    severity: Severity
    confidence: Confidence
    message: str
    """What is wrong here and how to fix it, in one or two sentences."""
    location: Location
    anchor: str
    """A structural address that survives line moves (``jobs.build.steps[2].run``); with the
    rule, the path and :attr:`evidence` it makes the fingerprint for baselines."""
    persona: Persona = Persona.REGULAR
    """The least talkative persona that shows this finding."""
    evidence: str = ""
    """The offending text (an expression, an action reference), for the fingerprint and
    the reports; never a secret value."""
    related: tuple[Location, ...] = field(default=())
    """Other places that explain the finding (the trigger, the checkout, the taint source)."""

    def fingerprint(self) -> str:
        """A line-insensitive identity: the same risk keeps it when the file is edited above."""
        key = "\0".join((self.rule, self.location.path, self.anchor, self.evidence))
        return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]


@dataclass(frozen=True)
class Diagnostic:
    """A file the audit could not read, or read only in part; the run goes on."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True)
class RuleInfo:
    """What a rule is, for ``--list-rules``, SARIF rule metadata and the docs."""

    id: str
    name: str
    """A short title: ``Template injection``."""
    summary: str
    """One sentence: what the rule looks for and why it matters."""
    default_severity: Severity
    help_uri: str = ""
    """Where the rule's page lives (``docs/rules/<id>.md`` in the repository)."""
