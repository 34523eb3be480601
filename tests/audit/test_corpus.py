"""The real-world corpus: every file loads and models, and run: expressions parse.

The corpus (``../shared/corpus/github`` beside the checkout, or ``$TOLLGATE_CORPUS``) is 1,519 workflow and
action files from 75 public repositories; the test is skipped where it is absent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import SHARED
from tollgate.audit.discover import Kind, SourceFile, discover
from tollgate.audit.findings import Diagnostic
from tollgate.audit.github.model import (
    Action,
    Workflow,
    build_action,
    build_workflow,
    condition,
    expressions,
)
from tollgate.audit.source import YMapping, YNode, YSequence, load

CORPUS = Path(os.environ.get("TOLLGATE_CORPUS", SHARED / "corpus" / "github"))

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")


@dataclass
class Results:
    files: list[SourceFile] = field(default_factory=list)
    models: list[Workflow | Action] = field(default_factory=list)
    rejected: list[Diagnostic] = field(default_factory=list)
    """Files that did not become a model."""
    partial: list[Diagnostic] = field(default_factory=list)
    """Diagnostics of files that did."""


@pytest.fixture(scope="module")
def corpus() -> Results:
    results = Results()
    for item in discover([CORPUS]):
        assert isinstance(item, SourceFile), item
        results.files.append(item)
        document = load(item.fs_path, display_path=item.path)
        if isinstance(document, Diagnostic):
            results.rejected.append(document)
            continue
        model = build_workflow(document) if item.kind is Kind.WORKFLOW else build_action(document)
        if isinstance(model, Diagnostic):
            results.rejected.append(model)
            continue
        results.models.append(model)
        results.partial.extend(model.diagnostics)
    return results


def test_discovers_the_whole_corpus(corpus: Results) -> None:
    # README: 1,519 files, 1,368 workflows and 151 action files (one workflow folder holds
    # an action.yml, which counts as an action here).
    assert len(corpus.files) == 1519
    kinds = [f.kind for f in corpus.files]
    assert kinds.count(Kind.ACTION) >= 151


def test_every_file_loads_and_models(corpus: Results) -> None:
    for diagnostic in corpus.rejected + corpus.partial:
        print(f"{diagnostic.path}:{diagnostic.line}:{diagnostic.column}: {diagnostic.message}")
    assert len(corpus.models) + len(corpus.rejected) == len(corpus.files)
    assert len(corpus.rejected) <= len(corpus.files) // 100
    with_diagnostics = {d.path for d in corpus.partial}
    assert len(with_diagnostics) <= len(corpus.files) // 50


def test_every_run_expression_parses(corpus: Results) -> None:
    total = 0
    failures: list[str] = []
    for model in corpus.models:
        steps = [s for _, s in model.steps()] if isinstance(model, Workflow) else model.all_steps()
        for step in steps:
            for match in expressions(step.run):
                total += 1
                if match.error is not None:
                    assert step.run is not None
                    where = model.location(step.run, match.error.offset)
                    failures.append(
                        f"{where.path}:{where.line}:{where.column}: {match.text!r}: "
                        f"{match.error.message}"
                    )
    print(f"{total} expressions in run:, {len(failures)} failures")
    for failure in failures:
        print(failure)
    assert total > 2000
    assert len(failures) <= total // 1000


def test_every_expression_position_points_at_its_text(corpus: Results) -> None:
    # Every `${{ }}` in every scalar of the corpus (plain, quoted, `|` and `>` blocks): the
    # mapped start must show `${{` in the source line and the mapped end its closing `}`.
    total = 0
    wrong: list[str] = []
    for model in corpus.models:
        document = model.document
        stack: list[YNode] = [document.root]
        seen: set[int] = set()
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, YSequence):
                stack.extend(node.items)
            elif isinstance(node, YMapping):
                for key, value in node.items:
                    stack.extend((key, value))
            else:
                for match in expressions(node):
                    total += 1
                    line, column = document.scalar_position(node, match.start)
                    end_line, end_column = document.scalar_position(node, match.end - 1)
                    starts = document.line_text(line)[column - 1 :].startswith("${{")
                    ends = not match.closed or document.line_text(end_line)[end_column - 1] == "}"
                    if not (starts and ends):
                        wrong.append(f"{model.path}:{line}:{column} ({node.style!r})")
    print(f"{total} expressions, {len(wrong)} misplaced")
    for item in wrong[:50]:
        print(item)
    assert total > 15000
    assert wrong == []


def test_every_condition_reads(corpus: Results) -> None:
    errors: list[str] = []
    total = 0
    for model in corpus.models:
        if not isinstance(model, Workflow):
            continue
        nodes = [job.if_ for job in model.jobs.values()]
        nodes += [step.if_ for _, step in model.steps()]
        for node in nodes:
            read = condition(node)
            if read is None:
                continue
            total += 1
            if read.error is not None:
                errors.append(f"{model.path}:{node.line if node else '?'}: {read.error.message}")
    print(f"{total} conditions, {len(errors)} errors")
    for error in errors:
        print(error)
    assert total > 1000
    assert len(errors) <= total // 1000


def test_known_shapes(corpus: Results) -> None:
    by_path = {model.path.split("github/", 1)[-1]: model for model in corpus.models}
    uv_ci = by_path["astral-sh__uv/.github/workflows/ci.yml"]
    assert isinstance(uv_ci, Workflow)
    self_calls = [
        j.uses for j in uv_ci.jobs.values() if j.uses is not None and j.uses.kind == "self"
    ]
    assert len(self_calls) >= 5
    vue = by_path["vuejs__core/.github/workflows/test.yml"]
    assert isinstance(vue, Workflow)
    assert any(step.parallel for _, step in vue.steps())
    assert any(".parallel[" in step.anchor for _, step in vue.steps())
