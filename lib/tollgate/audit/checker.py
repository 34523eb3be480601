"""Checking one file: load, model, run the rules, apply the filters.

The filters run in this order: severity overrides, persona, configured path ignores, inline
ignores (the baseline is applied by the :class:`~tollgate.audit.engine.Auditor`, across
files). A :class:`Checker` is picklable, so worker processes get a copy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from tollgate.audit.callgraph import Call, local_calls
from tollgate.audit.config import (
    ALL_RULES,
    Config,
    PathIgnores,
)
from tollgate.audit.discover import Kind, SourceFile
from tollgate.audit.findings import Diagnostic, Finding, Persona, Severity
from tollgate.audit.github.model import (
    Action,
    Workflow,
    build_action,
    build_workflow,
)
from tollgate.audit.rules import AuditContext, PinningPolicy, Rule
from tollgate.audit.source import Document, load
from tollgate.audit.suppress import InlineIgnores

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditSettings:
    """What the per-file pipeline needs besides the rules (picklable, for workers)."""

    persona: Persona = Persona.REGULAR
    pinning: PinningPolicy = field(default_factory=PinningPolicy)
    rule_options: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    severity: Mapping[str, Severity] = field(default_factory=dict)
    """Severity overrides by rule id."""
    path_ignores: PathIgnores = field(default_factory=PathIgnores)
    inline_ignores: bool = True

    @classmethod
    def from_config(
        cls, config: Config, *, persona: Persona | None = None, ignores: bool = True
    ) -> AuditSettings:
        """Settings from a configuration; ``persona`` wins over the configured one, and
        ``ignores=False`` (``--no-ignores``) drops path and inline ignores."""
        return cls(
            persona=persona or config.persona or Persona.REGULAR,
            pinning=config.pinning,
            rule_options=config.rule_options(),
            severity=config.severities(),
            path_ignores=config.path_ignores() if ignores else PathIgnores(),
            inline_ignores=ignores,
        )

    def context(self, tainted_inputs: Mapping[str, frozenset[str]] | None = None) -> AuditContext:
        """The rules' context, with ``tainted_inputs`` (callee path -> input names)."""
        return AuditContext(
            persona=self.persona,
            pinning=self.pinning,
            tainted_inputs=tainted_inputs or {},
            rule_options=self.rule_options,
        )


@dataclass(frozen=True)
class FileResult:
    """What checking one file gave: its findings and diagnostics, and what the engine needs."""

    source: SourceFile
    items: tuple[Finding | Diagnostic, ...] = ()
    lines: int = 0
    suppressed: int = 0
    calls: tuple[Call, ...] = ()
    deferred: bool = False
    """A callee, checked without taint: it waits for the end, when the taint of its inputs
    is known, and is checked again if some are tainted."""


class Checker:
    """Checks one file at a time; picklable, so that worker processes get a copy."""

    def __init__(self, rules: tuple[Rule, ...], settings: AuditSettings) -> None:
        self.rules = rules
        self.settings = settings
        self._context = settings.context()

    def __getstate__(self) -> dict[str, object]:
        return {"rules": self.rules, "settings": self.settings}

    def __setstate__(self, state: dict[str, object]) -> None:
        rules, settings = state["rules"], state["settings"]
        assert isinstance(rules, tuple) and isinstance(settings, AuditSettings)
        self.__init__(rules, settings)  # type: ignore[misc]

    def scan(self, source: SourceFile) -> FileResult:
        """First pass: check the file as if no input were tainted; note its local calls."""
        model = self._model(source)
        if isinstance(model, FileResult):
            return model
        result = self._check(source, model, self._context)
        return replace(result, calls=tuple(local_calls(model, source)), deferred=_is_callee(model))

    def finish(self, source: SourceFile, context: AuditContext) -> FileResult:
        """Second pass, for a callee some of whose inputs are tainted."""
        model = self._model(source)
        if isinstance(model, FileResult):
            return model  # it changed since the first pass; report what it is now
        return self._check(source, model, context)

    def _model(self, source: SourceFile) -> Workflow | Action | FileResult:
        try:
            document = load(source.fs_path, display_path=source.path)
            if isinstance(document, Diagnostic):
                return FileResult(source, (document,))
            build = build_action if source.kind is Kind.ACTION else build_workflow
            model = build(document)
        except Exception as error:  # a bug in the reader must not end the run
            _logger.debug("reading %s failed", source.path, exc_info=True)
            message = f"internal error reading this file: {type(error).__name__}: {error}"
            return FileResult(source, (Diagnostic(source.path, message),))
        if isinstance(model, Diagnostic):
            return FileResult(source, (model,), _line_count(document))
        return model

    def _check(
        self, source: SourceFile, model: Workflow | Action, context: AuditContext
    ) -> FileResult:
        settings = self.settings
        silenced = settings.path_ignores.for_file(source.path, source.fs_path)
        diagnostics: list[Diagnostic] = list(model.diagnostics)
        findings: list[Finding] = []
        if ALL_RULES not in silenced:
            for rule in self.rules:
                if rule.info.id not in silenced:
                    self._run_rule(rule, model, context, findings, diagnostics)
        kept, suppressed = self._filter(findings, model.document, silenced)
        kept.sort(key=_finding_order)
        diagnostics.sort(key=lambda d: (d.line or 0, d.column or 0))
        lines = _line_count(model.document)
        return FileResult(source, (*diagnostics, *kept), lines, suppressed)

    @staticmethod
    def _run_rule(
        rule: Rule,
        model: Workflow | Action,
        context: AuditContext,
        findings: list[Finding],
        diagnostics: list[Diagnostic],
    ) -> None:
        try:
            if isinstance(model, Workflow):
                produced = rule.check_workflow(model, context)
            else:
                produced = rule.check_action(model, context)
            # extend() keeps what the rule yielded before it failed: each finding stands alone.
            findings.extend(produced)
        except Exception as error:  # one broken rule costs its findings, not the run
            _logger.debug("rule %s failed on %s", rule.info.id, model.path, exc_info=True)
            diagnostics.append(
                Diagnostic(
                    model.path,
                    f"rule {rule.info.id!r} failed on this file ({type(error).__name__}: "
                    f"{error}); its findings here may be incomplete",
                )
            )

    def _filter(
        self, findings: list[Finding], document: Document, silenced: frozenset[str]
    ) -> tuple[list[Finding], int]:
        settings = self.settings
        persona = settings.persona.rank
        overrides = settings.severity
        inline: InlineIgnores | None = None
        if findings and settings.inline_ignores:
            inline = InlineIgnores.scan(document)
        kept: list[Finding] = []
        suppressed = 0
        for finding in findings:
            override = overrides.get(finding.rule)
            if override is not None and override is not finding.severity:
                finding = replace(finding, severity=override)
            if finding.persona.rank > persona:
                continue
            if finding.rule in silenced or (
                inline is not None
                and finding.location.path == document.path
                and inline.suppresses(finding.rule, finding.location.line)
            ):
                suppressed += 1
                continue
            kept.append(finding)
        return kept, suppressed


def _finding_order(finding: Finding) -> tuple[int, int, str, str]:
    where = finding.location
    return where.line, where.column, finding.rule, finding.message


def _line_count(document: Document) -> int:
    text = document.text
    return text.count("\n") + (not text.endswith("\n"))


def _is_callee(model: Workflow | Action) -> bool:
    return isinstance(model, Action) or "workflow_call" in model.triggers
