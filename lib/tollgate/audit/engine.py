"""The audit pipeline: discover -> load -> model -> rules -> filters, one file at a time.

:class:`Auditor` yields each file's findings and diagnostics, then a :class:`FileDone`, as
soon as the file is checked, so memory does not grow with the number of files. One file is
checked by :mod:`tollgate.audit.checker` (filters: severity overrides, persona, configured
path ignores, inline ignores); the baseline is applied here, last.

Cross-file taint: a local composite action (``uses: ./path``) or reusable workflow
(``uses: ./.github/workflows/x.yml``) learns which of its inputs a caller fills with
attacker-controlled data through :attr:`AuditContext.tainted_inputs` (keyed by the callee's
path as discovered; input names lower-case). Every file is checked as it is read, while the
``with:`` values of its local calls are noted. Only *callees* (action metadata files, and
workflows with a ``workflow_call`` trigger) wait: their results (not their models) are
held until every caller has been seen, then reported after the other files; the few whose
inputs turn out to be tainted are read and checked again with that knowledge
(:mod:`tollgate.audit.callgraph`).

``jobs > 1`` checks chunks of files in worker processes (:mod:`tollgate.audit.runner`);
results are put back in file order, so the output is the same as with one process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tollgate.audit.callgraph import CallGraph
from tollgate.audit.checker import AuditSettings, Checker, FileResult
from tollgate.audit.config import (
    Baseline,
    BaselineMatcher,
    BaselineRecorder,
    Config,
)
from tollgate.audit.discover import Kind, discover
from tollgate.audit.findings import Diagnostic, Finding, Persona
from tollgate.audit.rules import Rule, all_rules
from tollgate.audit.runner import Runner

__all__ = ["AuditSettings", "Auditor", "FileDone", "default_rules", "run_audit"]


@dataclass(frozen=True)
class FileDone:
    """A file was checked: everything it produced has been yielded before this."""

    path: str
    kind: Kind
    lines: int
    """Lines in the file (0 when it could not be read)."""


def default_rules(config: Config | None = None) -> tuple[Rule, ...]:
    """One instance of every registered rule, minus those the configuration disables."""
    disabled = config.disabled() if config is not None else frozenset()
    return tuple(cls() for rule_id, cls in all_rules().items() if rule_id not in disabled)


class Auditor:
    """Runs the audit over paths; read :attr:`files`, :attr:`lines` and the counts after."""

    def __init__(
        self,
        rules: Iterable[Rule],
        settings: AuditSettings | None = None,
        *,
        jobs: int = 1,
        baseline: Baseline | None = None,
        recorder: BaselineRecorder | None = None,
    ) -> None:
        self.checker = Checker(tuple(rules), settings or AuditSettings())
        self.jobs = max(1, jobs)
        self.baseline = baseline
        self.recorder = recorder
        """Sees every finding that passed the other filters, before the baseline."""
        self.files = 0
        self.lines = 0
        self.suppressed = 0
        """Findings dropped by path or inline ignores."""
        self.baselined = 0
        """Findings dropped because the baseline lists them."""

    def run(
        self, paths: Iterable[str | os.PathLike[str]] = (".",)
    ) -> Iterator[Finding | Diagnostic | FileDone]:
        """Audit ``paths``: each file's diagnostics and findings, then its :class:`FileDone`."""
        matcher = self.baseline.matcher() if self.baseline is not None else None
        calls = CallGraph()
        held: list[FileResult] = []
        with Runner(self.checker, self.jobs) as runner:
            for result in runner.scan(discover(paths)):
                if isinstance(result, Diagnostic):
                    yield result
                    continue
                calls.add(result)
                if result.deferred:
                    held.append(result)
                else:
                    yield from self._emit(result, matcher)
            tainted = calls.solve([result.source for result in held])
            # Most callees get no attacker data: what their first check found stands.
            stale = [result.source for result in held if result.source.path in tainted]
            redone = {result.source.path: result for result in runner.finish(stale, tainted)}
            for result in held:
                yield from self._emit(redone.get(result.source.path, result), matcher)

    def _emit(
        self, result: FileResult, matcher: BaselineMatcher | None
    ) -> Iterator[Finding | Diagnostic | FileDone]:
        self.files += 1
        self.lines += result.lines
        self.suppressed += result.suppressed
        for item in result.items:
            if isinstance(item, Finding):
                if self.recorder is not None:
                    self.recorder.add(item)
                if matcher is not None and matcher.absorbs(item):
                    self.baselined += 1
                    continue
            yield item
        yield FileDone(result.source.path, result.source.kind, result.lines)


def run_audit(
    paths: Iterable[str | os.PathLike[str]] = (".",),
    config: Config | None = None,
    *,
    rules: Iterable[Rule] | None = None,
    persona: Persona | None = None,
    ignores: bool = True,
    jobs: int = 1,
    baseline: Baseline | None = None,
) -> Iterator[Finding | Diagnostic | FileDone]:
    """Audit ``paths`` with every registered rule (or ``rules``), as configured."""
    config = config or Config()
    chosen = default_rules(config) if rules is None else tuple(rules)
    settings = AuditSettings.from_config(config, persona=persona, ignores=ignores)
    return Auditor(chosen, settings, jobs=jobs, baseline=baseline).run(paths)
