"""The rule protocol and the registry every audit rule joins.

A rule looks at one parsed file at a time (a workflow or an action) and yields findings. What
it may need beyond that file comes through :class:`AuditContext`: the configuration (pinning
policy, persona) and facts gathered across all files scanned together, such as which inputs of
a local composite action or reusable workflow receive attacker-controlled values from a caller.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from tollgate.audit.findings import Finding, Persona, RuleInfo

if TYPE_CHECKING:
    from tollgate.audit.github.model import Action, Workflow


@dataclass(frozen=True)
class PinningPolicy:
    """What counts as pinned enough for ``uses:`` (``unpinned-uses``)."""

    require_sha: tuple[str, ...] = ("*",)
    """``owner/repo`` glob patterns (``*`` wildcards) that must be pinned to a full SHA."""
    allow_ref: tuple[str, ...] = ()
    """Patterns that may use a tag or branch instead (e.g. ``actions/*``); wins over the above."""


@dataclass(frozen=True)
class AuditContext:
    """What a rule may know beyond the file it is looking at."""

    persona: Persona = Persona.REGULAR
    pinning: PinningPolicy = field(default_factory=PinningPolicy)
    tainted_inputs: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Local action / reusable workflow path (as discovered) -> names of its inputs that some
    caller scanned in the same run fills with attacker-controlled data."""
    rule_options: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    """Per-rule settings from the configuration file, by rule id."""


class Rule(abc.ABC):
    """One audit rule. Subclasses set :attr:`info` and override the checks they need."""

    info: ClassVar[RuleInfo]

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        """Findings in a workflow file (none by default)."""
        return iter(())

    def check_action(self, action: Action, context: AuditContext) -> Iterator[Finding]:
        """Findings in an action metadata file (none by default)."""
        return iter(())


class FileRule(Rule):
    """A rule that checks workflows and actions the same way, through :meth:`check`."""

    @abc.abstractmethod
    def check(self, model: Workflow | Action, context: AuditContext) -> Iterator[Finding]:
        """Findings in one workflow or action file."""

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        return self.check(workflow, context)

    def check_action(self, action: Action, context: AuditContext) -> Iterator[Finding]:
        return self.check(action, context)


_REGISTRY: dict[str, type[Rule]] = {}


def register(rule: type[Rule]) -> type[Rule]:
    """Class decorator: add a rule to the registry (ids must be unique)."""
    rule_id = rule.info.id
    if rule_id in _REGISTRY and _REGISTRY[rule_id] is not rule:
        raise ValueError(f"two rules share the id {rule_id!r}")
    _REGISTRY[rule_id] = rule
    return rule


def all_rules() -> Mapping[str, type[Rule]]:
    """Every registered rule by id (importing ``tollgate.audit.github.rules`` registers them)."""
    import tollgate.audit.github.rules  # noqa: F401  (registration happens on import)

    return dict(sorted(_REGISTRY.items()))
