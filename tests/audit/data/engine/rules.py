"""Test-only audit rules, driven by markers written in the YAML under test.

``mark:high`` (optionally ``mark:low:pedantic``) anywhere in a scalar makes :class:`Marker`
report a finding there, with that severity and persona; :class:`OtherMarker` does the same
for ``other:<severity>``. :class:`Broken` raises on files that contain ``boom``, and
:class:`TaintProbe` reports each input the engine says a caller taints.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar

from tollgate.audit.findings import Confidence, Finding, Persona, RuleInfo, Severity
from tollgate.audit.github.model import Action, Workflow
from tollgate.audit.rules import AuditContext, Rule
from tollgate.audit.source import YMapping, YNode, YScalar, YSequence


def scalars(node: YNode, anchor: str = "") -> Iterator[tuple[YScalar, str]]:
    """Every scalar value with its structural address (``jobs.a.steps[0].run``)."""
    if isinstance(node, YMapping):
        for key, value in node.items:
            name = key.value if isinstance(key, YScalar) else "?"
            yield from scalars(value, f"{anchor}.{name}" if anchor else name)
    elif isinstance(node, YSequence):
        for index, item in enumerate(node.items):
            yield from scalars(item, f"{anchor}[{index}]")
    else:
        yield node, anchor


class Marker(Rule):
    info = RuleInfo("marker", "Marker", "Reports mark:<severity>.", Severity.MEDIUM)
    tag: ClassVar[str] = "mark"

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        return self._check(workflow)

    def check_action(self, action: Action, context: AuditContext) -> Iterator[Finding]:
        return self._check(action)

    def _check(self, model: Workflow | Action) -> Iterator[Finding]:
        pattern = re.compile(
            rf"\b{self.tag}:(info|low|medium|high|critical)(?::(regular|pedantic|auditor))?"
        )
        for node, anchor in scalars(model.document.root):
            for match in pattern.finditer(node.value):
                yield Finding(
                    rule=self.info.id,
                    severity=Severity(match[1]),
                    confidence=Confidence.HIGH,
                    message=f"marked {match[0]}",
                    location=model.location(node, match.start(), match.end()),
                    anchor=anchor,
                    persona=Persona(match[2] or "regular"),
                    evidence=match[0],
                )


class OtherMarker(Marker):
    info = RuleInfo("other-marker", "Other marker", "Reports other:<severity>.", Severity.LOW)
    tag = "other"


class Broken(Rule):
    info = RuleInfo("broken", "Broken", "Raises on files that say boom.", Severity.HIGH)

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        if "boom" in workflow.document.text:
            raise RuntimeError("boom went the rule")
        return iter(())


class TaintProbe(Rule):
    info = RuleInfo("taint-probe", "Taint probe", "Reports tainted inputs.", Severity.HIGH)

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        return self._check(workflow, context)

    def check_action(self, action: Action, context: AuditContext) -> Iterator[Finding]:
        return self._check(action, context)

    def _check(self, model: Workflow | Action, context: AuditContext) -> Iterator[Finding]:
        for name in sorted(context.tainted_inputs.get(model.path, ())):
            yield Finding(
                rule=self.info.id,
                severity=Severity.HIGH,
                confidence=Confidence.HIGH,
                message=f"input {name} is tainted",
                location=model.location(model.node),
                anchor=f"inputs.{name}",
                evidence=name,
            )


ALL = (Marker(), OtherMarker(), Broken(), TaintProbe())


def install() -> None:
    """Make these the only registered rules (for a ``tollgate audit`` subprocess)."""
    import tollgate.audit.github.rules  # noqa: F401  (real rules register, then go)
    from tollgate.audit import rules

    rules._REGISTRY.clear()
    for rule in ALL:
        rules.register(type(rule))
