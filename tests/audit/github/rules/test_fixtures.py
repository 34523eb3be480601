"""Every rule against its fixtures: files that must trigger it and look-alikes that must not.

Fixtures live in ``tests/audit/data/rules/<rule-id>/``, one workflow or action file each
(an ``action.yml``/``action.yaml`` anywhere below is read as an action). The file's leading
comment lines say what the rule must report there, and nothing else may be reported by it:

    # expect: <rule-id> line=<N> severity=<level> [confidence=<level>]
    # expect: none                   (a look-alike: the rule stays silent)
    # persona: pedantic              (optional; default auditor, which shows everything)

Only findings of the fixture's own rule are compared, so one file can exercise one rule
without listing every other rule's opinion of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tollgate.audit.findings import Confidence, Diagnostic, Finding, Persona, Severity
from tollgate.audit.github.model import load_action, load_workflow
from tollgate.audit.rules import AuditContext, all_rules

DATA = Path(__file__).resolve().parents[2] / "data" / "rules"
_EXPECT = re.compile(
    r"#\s*expect:\s*(?P<rule>[a-z0-9-]+)\s+line=(?P<line>\d+)\s+severity=(?P<severity>\w+)"
    r"(?:\s+confidence=(?P<confidence>\w+))?"
)


@dataclass(frozen=True)
class Expected:
    line: int
    severity: Severity
    confidence: Confidence | None


def _fixtures() -> list[Path]:
    return sorted(p for p in DATA.rglob("*") if p.suffix in {".yml", ".yaml"})


def _header(path: Path) -> tuple[list[Expected], bool, Persona]:
    expected: list[Expected] = []
    silent = False
    persona = Persona.AUDITOR
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if match := _EXPECT.match(line):
            confidence = match["confidence"]
            expected.append(
                Expected(
                    int(match["line"]),
                    Severity(match["severity"]),
                    Confidence(confidence) if confidence else None,
                )
            )
        elif re.match(r"#\s*expect:\s*none\b", line):
            silent = True
        elif found := re.match(r"#\s*persona:\s*(\w+)", line):
            persona = Persona(found[1])
    return expected, silent, persona


def _findings(path: Path, rule_id: str, persona: Persona) -> list[Finding]:
    rule = all_rules()[rule_id]()
    context = AuditContext(persona=persona)
    display = str(path.relative_to(DATA))
    if path.name in {"action.yml", "action.yaml"}:
        action = load_action(path, display_path=display)
        assert not isinstance(action, Diagnostic), action
        found = rule.check_action(action, context)
    else:
        workflow = load_workflow(path, display_path=display)
        assert not isinstance(workflow, Diagnostic), workflow
        found = rule.check_workflow(workflow, context)
    return [f for f in found if f.persona.rank <= persona.rank]


@pytest.mark.parametrize("path", _fixtures(), ids=lambda p: str(p.relative_to(DATA)))
def test_rule_fixture(path: Path) -> None:
    rule_id = path.relative_to(DATA).parts[0]
    assert rule_id in all_rules(), f"fixture folder {rule_id!r} names no registered rule"
    expected, silent, persona = _header(path)
    assert expected or silent, f"{path} declares no expectation (# expect: ...)"
    found = _findings(path, rule_id, persona)
    got = sorted((f.location.line, f.severity) for f in found)
    want = sorted((e.line, e.severity) for e in expected)
    assert got == want, "\n".join(f"{f.location.line}: {f.severity} {f.message}" for f in found)
    for e in expected:
        if e.confidence is not None:
            matching = [f for f in found if f.location.line == e.line]
            assert any(f.confidence is e.confidence for f in matching), matching
    for finding in found:
        assert finding.rule == rule_id
        assert finding.message.strip()
        assert finding.anchor


def test_every_rule_has_fixtures_and_docs() -> None:
    docs = Path(__file__).resolve().parents[4] / "docs" / "rules"
    for rule_id, rule in all_rules().items():
        folder = DATA / rule_id
        files = list(folder.glob("*.y*ml")) + list(folder.rglob("action.y*ml"))
        assert files, f"rule {rule_id} has no fixtures in {folder}"
        silent = [p for p in files if _header(p)[1]]
        assert silent, f"rule {rule_id} has no look-alike fixture (# expect: none)"
        assert (docs / f"{rule_id}.md").is_file(), f"rule {rule_id} has no docs/rules page"
        assert rule.info.id == rule_id
        assert rule.info.summary
