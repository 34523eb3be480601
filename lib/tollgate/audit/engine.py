"""The audit pipeline: discover -> load -> model -> rules -> filters, one file at a time.

:class:`Auditor` yields each file's findings and diagnostics, then a :class:`FileDone`, as
soon as the file is checked, so memory does not grow with the number of files. The filters
run in this order: severity overrides, persona, configured path ignores, inline ignores,
the baseline.

Cross-file taint: a local composite action (``uses: ./path``) or reusable workflow
(``uses: ./.github/workflows/x.yml``) learns which of its inputs a caller fills with
attacker-controlled data through :attr:`AuditContext.tainted_inputs` (keyed by the callee's
path as discovered; input names lower-case). Every file is checked as it is read, while the
``with:`` values of its local calls are noted. Only *callees* (action metadata files, and
workflows with a ``workflow_call`` trigger) wait: their results (not their models) are
held until every caller has been seen, then reported after the other files; the few whose
inputs turn out to be tainted are read and checked again with that knowledge. A callee that
passes its own tainted input on (``with: {x: ${{ inputs.y }}}``) taints its callees too.

``jobs > 1`` checks chunks of files in worker processes; results are put back in file
order, so the output is the same as with one process.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache

from tollgate.audit.config import (
    ALL_RULES,
    Baseline,
    BaselineMatcher,
    BaselineRecorder,
    Config,
    PathIgnores,
)
from tollgate.audit.discover import Kind, SourceFile, discover
from tollgate.audit.findings import Diagnostic, Finding, Persona, Severity
from tollgate.audit.github.expressions import flows
from tollgate.audit.github.model import (
    Action,
    Step,
    Workflow,
    build_action,
    build_workflow,
    expressions,
)
from tollgate.audit.rules import AuditContext, PinningPolicy, Rule, all_rules
from tollgate.audit.source import Document, YScalar, load
from tollgate.audit.suppress import InlineIgnores

_logger = logging.getLogger(__name__)

CHUNK_FILES = 16
"""Files per task sent to a worker process."""


@dataclass(frozen=True)
class FileDone:
    """A file was checked: everything it produced has been yielded before this."""

    path: str
    kind: Kind
    lines: int
    """Lines in the file (0 when it could not be read)."""


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
        return AuditContext(
            persona=self.persona,
            pinning=self.pinning,
            tainted_inputs=tainted_inputs or {},
            rule_options=self.rule_options,
        )


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
        self.checker = _Checker(tuple(rules), settings or AuditSettings())
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
        calls = _CallGraph()
        held: list[_FileResult] = []
        with _Runner(self.checker, self.jobs) as runner:
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
        self, result: _FileResult, matcher: BaselineMatcher | None
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


# --- One file ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """A local ``uses:`` with a ``with:`` value that may carry attacker data."""

    target: str
    """The callee's key: an action's directory or a workflow's file, absolute."""
    input: str
    """The input's name, lower-case (the ``inputs`` context ignores case)."""
    direct: bool
    """The value flows an attacker-controlled context."""
    via: frozenset[str]
    """The caller's own inputs the value flows (taint passed on by a callee)."""


@dataclass(frozen=True)
class _FileResult:
    source: SourceFile
    items: tuple[Finding | Diagnostic, ...] = ()
    lines: int = 0
    suppressed: int = 0
    calls: tuple[_Call, ...] = ()
    deferred: bool = False
    """A callee, checked without taint: it waits for the end, when the taint of its inputs
    is known, and is checked again if some are tainted."""


class _Checker:
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

    def scan(self, source: SourceFile) -> _FileResult:
        """First pass: check the file as if no input were tainted; note its local calls."""
        model = self._model(source)
        if isinstance(model, _FileResult):
            return model
        result = self._check(source, model, self._context)
        return replace(result, calls=tuple(_calls(model, source)), deferred=_is_callee(model))

    def finish(self, source: SourceFile, context: AuditContext) -> _FileResult:
        """Second pass, for a callee some of whose inputs are tainted."""
        model = self._model(source)
        if isinstance(model, _FileResult):
            return model  # it changed since the first pass; report what it is now
        return self._check(source, model, context)

    def _model(self, source: SourceFile) -> Workflow | Action | _FileResult:
        try:
            document = load(source.fs_path, display_path=source.path)
            if isinstance(document, Diagnostic):
                return _FileResult(source, (document,))
            build = build_action if source.kind is Kind.ACTION else build_workflow
            model = build(document)
        except Exception as error:  # a bug in the reader must not end the run
            _logger.debug("reading %s failed", source.path, exc_info=True)
            message = f"internal error reading this file: {type(error).__name__}: {error}"
            return _FileResult(source, (Diagnostic(source.path, message),))
        if isinstance(model, Diagnostic):
            return _FileResult(source, (model,), _line_count(document))
        return model

    def _check(
        self, source: SourceFile, model: Workflow | Action, context: AuditContext
    ) -> _FileResult:
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
        return _FileResult(source, (*diagnostics, *kept), lines, suppressed)

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


# --- Cross-file taint ------------------------------------------------------------------------


def _calls(model: Workflow | Action, source: SourceFile) -> Iterator[_Call]:
    """The local calls of a file whose ``with:`` values carry attacker data or inputs."""
    local = list(_local_uses(model))
    if not local:
        return
    root = _repository_root(source.fs_path, source.relative)
    for path, values in local:
        target = os.path.normpath(os.path.join(root, path))
        for name, node in values.items():
            direct, via = _value_taint(node)
            if direct or via:
                yield _Call(target, name.lower(), direct, via)


def _local_uses(model: Workflow | Action) -> Iterator[tuple[str, Mapping[str, YScalar]]]:
    """``(path, with)`` of every local ``uses:`` (steps and reusable-workflow jobs)."""
    steps: Iterable[Step]
    if isinstance(model, Workflow):
        for job in model.jobs.values():
            if job.uses is not None and job.uses.is_local and job.with_:
                yield job.uses.path or ".", job.with_
        steps = (step for _, step in model.steps())
    else:
        steps = model.all_steps()
    for step in steps:
        if step.uses is not None and step.uses.is_local and step.with_:
            yield step.uses.path or ".", step.with_


def _value_taint(node: YScalar) -> tuple[bool, frozenset[str]]:
    """Whether a value flows attacker data, and which of the file's own inputs it flows."""
    direct = False
    via: set[str] = set()
    attacker_controlled = _attacker_check()
    for match in expressions(node):
        if match.expr is None:
            continue
        for ref in flows(match.expr):
            if ref.context == "inputs" and len(ref.parts) > 1:
                via.add(ref.parts[1])
            elif attacker_controlled(ref.path):
                direct = True
    return direct, frozenset(via)


def _callee_key(source: SourceFile) -> str:
    """What a local ``uses:`` names: an action's directory, a workflow's file."""
    path = os.path.abspath(source.fs_path)
    return os.path.dirname(path) if source.kind is Kind.ACTION else path


def _repository_root(fs_path: str, relative: str) -> str:
    """The directory ``uses: ./x`` is relative to (GitHub: the checked-out repository)."""
    path = os.path.abspath(fs_path)
    directory = os.path.dirname(path)
    parent = os.path.dirname(directory)
    if os.path.basename(directory) == "workflows" and os.path.basename(parent) == ".github":
        return os.path.dirname(parent)
    marked = _marked_ancestor(directory)
    if marked is not None:
        return marked
    # Nothing marks a repository: take the directory the file was found under.
    suffix = relative.replace("/", os.sep)
    if not path.endswith(suffix):
        return directory
    return path[: -len(suffix)].rstrip(os.sep) or os.sep


@lru_cache(maxsize=1024)
def _marked_ancestor(directory: str) -> str | None:
    """The nearest directory at or above ``directory`` holding ``.github`` or ``.git``."""
    if os.path.isdir(os.path.join(directory, ".github")) or os.path.exists(
        os.path.join(directory, ".git")
    ):
        return directory
    parent = os.path.dirname(directory)
    return None if parent == directory else _marked_ancestor(parent)


class _CallGraph:
    """Local calls seen so far; :meth:`solve` gives each callee its tainted inputs."""

    def __init__(self) -> None:
        self.tainted: dict[str, set[str]] = {}
        self.passed_on: list[tuple[str, _Call]] = []
        """(caller key, call) for calls of callees that pass their own inputs on."""

    def add(self, result: _FileResult) -> None:
        caller = _callee_key(result.source) if result.deferred else None
        for call in result.calls:
            if call.direct:
                self.tainted.setdefault(call.target, set()).add(call.input)
            elif caller is not None:
                # Only a callee's `inputs` come from a caller; a workflow_dispatch input
                # needs write access to set, so it is not attacker data.
                self.passed_on.append((caller, call))

    def solve(self, callees: Sequence[SourceFile]) -> dict[str, frozenset[str]]:
        """Display path of each callee -> its tainted input names (a fixed point)."""
        changed = True
        while changed:
            changed = False
            for caller, call in self.passed_on:
                names = self.tainted.get(call.target)
                if names is not None and call.input in names:
                    continue
                if call.via & self.tainted.get(caller, set()):
                    self.tainted.setdefault(call.target, set()).add(call.input)
                    changed = True
        result: dict[str, frozenset[str]] = {}
        for source in callees:
            names = self.tainted.get(_callee_key(source))
            if names:
                result[source.path] = frozenset(names)
        return result


@lru_cache(maxsize=1)
def _attacker_check() -> Callable[[str], bool]:
    """``tollgate.audit.github.taint.is_attacker_controlled`` when it exists, else ours."""
    try:
        module = importlib.import_module("tollgate.audit.github.taint")
    except ImportError:
        return _is_attacker_controlled
    check: Callable[[str], bool] = module.is_attacker_controlled
    return check


def _by_event_key(paths: Iterable[str]) -> dict[str, tuple[tuple[str, ...], ...]]:
    grouped: dict[str, tuple[tuple[str, ...], ...]] = {}
    for path in paths:
        key, *rest = path.split(".")
        grouped[key] = (*grouped.get(key, ()), tuple(rest))
    return grouped


# Context paths under `github.event` an outsider can set (zizmor's list, GitHub's guidance
# on untrusted input), by the key under `github.event`.
_ATTACKER_EVENT_PATHS = _by_event_key(
    (
        "issue.title",
        "issue.body",
        "pull_request.title",
        "pull_request.body",
        "pull_request.head.ref",
        "pull_request.head.label",
        "pull_request.head.repo.default_branch",
        "pull_request.head.repo.description",
        "pull_request.head.repo.homepage",
        "comment.body",
        "review.body",
        "review_comment.body",
        "discussion.title",
        "discussion.body",
        "pages.*.page_name",
        "commits.*.message",
        "commits.*.author.email",
        "commits.*.author.name",
        "head_commit.message",
        "head_commit.author.email",
        "head_commit.author.name",
        "head_commit.committer.email",
        "head_commit.committer.name",
        "workflow_run.head_branch",
        "workflow_run.display_title",
        "workflow_run.head_commit.message",
        "workflow_run.head_commit.author.email",
        "workflow_run.head_commit.author.name",
        "workflow_run.pull_requests.*.head.ref",
    )
)


def _is_attacker_controlled(path: str) -> bool:
    """True when ``path`` is, lies under, or contains an attacker-controlled value
    (``toJSON(github.event.pull_request)`` carries the title)."""
    parts = path.lower().split(".")
    if parts[0] != "github":
        return False
    if len(parts) < 3:
        # `github`, `github.event` (whole objects), `github.head_ref`.
        return len(parts) == 1 or parts[1] in ("event", "head_ref", "*")
    if parts[1] not in ("event", "*"):
        return False
    keys = _ATTACKER_EVENT_PATHS if parts[2] == "*" else {parts[2]: ()}
    rest = parts[3:]
    return any(
        all(w == "*" or p == "*" or w == p for w, p in zip(known, rest, strict=False))
        for key in keys
        for known in _ATTACKER_EVENT_PATHS.get(key, ())
    )


# --- Running in one process or many ----------------------------------------------------------


class _Runner:
    """Runs the checker over files here, or in worker processes with results in order."""

    def __init__(self, checker: _Checker, jobs: int) -> None:
        self.checker = checker
        self.jobs = jobs
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Runner:
        if self.jobs > 1:
            self._pool = ProcessPoolExecutor(
                self.jobs, initializer=_init_worker, initargs=(self.checker,)
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def scan(self, found: Iterable[SourceFile | Diagnostic]) -> Iterator[_FileResult | Diagnostic]:
        if self._pool is None:
            for item in found:
                yield item if isinstance(item, Diagnostic) else self.checker.scan(item)
            return
        yield from self._ordered(found, None)

    def finish(
        self, callees: Sequence[SourceFile], tainted: Mapping[str, frozenset[str]]
    ) -> Iterator[_FileResult]:
        context = self.checker.settings.context(tainted)
        if self._pool is None:
            for source in callees:
                yield self.checker.finish(source, context)
            return
        for item in self._ordered(callees, context):
            assert not isinstance(item, Diagnostic)
            yield item

    def _ordered(
        self, found: Iterable[SourceFile | Diagnostic], context: AuditContext | None
    ) -> Iterator[_FileResult | Diagnostic]:
        """Chunks out to the workers, results back in order, a bounded number in flight."""
        assert self._pool is not None
        pending: deque[Future[list[_FileResult]] | Diagnostic] = deque()
        chunk: list[SourceFile] = []
        limit = self.jobs * 4

        def drain(keep: int) -> Iterator[_FileResult | Diagnostic]:
            while len(pending) > keep:
                head = pending.popleft()
                if isinstance(head, Diagnostic):
                    yield head
                else:
                    yield from head.result()

        for item in found:
            if isinstance(item, Diagnostic):
                if chunk:
                    pending.append(self._pool.submit(_work, chunk, context))
                    chunk = []
                pending.append(item)
            else:
                chunk.append(item)
                if len(chunk) >= CHUNK_FILES:
                    pending.append(self._pool.submit(_work, chunk, context))
                    chunk = []
            yield from drain(limit)
        if chunk:
            pending.append(self._pool.submit(_work, chunk, context))
        yield from drain(0)


_WORKER: _Checker | None = None


def _init_worker(checker: _Checker) -> None:
    global _WORKER
    _WORKER = checker


def _work(chunk: list[SourceFile], context: AuditContext | None) -> list[_FileResult]:
    """One task in a worker: the first pass (``context`` None) or the second over callees."""
    checker = _WORKER
    assert checker is not None
    if context is None:
        return [checker.scan(source) for source in chunk]
    return [checker.finish(source, context) for source in chunk]
