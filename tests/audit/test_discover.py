"""Which files the audit reads under the paths it is given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tollgate.audit.discover import Kind, SourceFile, classify, discover
from tollgate.audit.findings import Diagnostic


def make(root: Path, *paths: str) -> None:
    for path in paths:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("name: x\n", encoding="utf-8")


def found(*paths: str | Path) -> list[tuple[str, str]]:
    result = []
    for item in discover(paths) if paths else discover():
        assert isinstance(item, SourceFile), item
        result.append((item.path, str(item.kind)))
    return result


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    make(
        tmp_path,
        ".github/workflows/ci.yml",
        ".github/workflows/release.yaml",
        ".github/workflows/notes.md",
        ".github/workflows/nested/deep.yml",
        ".github/dependabot.yml",
        ".github/actions/setup/action.yml",
        "action.yaml",
        "sub/project/.github/workflows/sub.yml",
        "tools/action.yml",
        "docs/workflow.yml",
        "node_modules/pkg/action.yml",
        "vendor/x/action.yml",
        "third_party/y/action.yml",
        ".venv/lib/action.yml",
        "venv/action.yml",
        "lib/site-packages/z/action.yml",
        ".git/action.yml",
    )
    return tmp_path


def test_walk_finds_workflows_and_actions_in_order(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(checkout)
    assert found() == [
        (".github/actions/setup/action.yml", "action"),
        (".github/workflows/ci.yml", "workflow"),
        (".github/workflows/release.yaml", "workflow"),
        ("action.yaml", "action"),
        ("sub/project/.github/workflows/sub.yml", "workflow"),
        ("tools/action.yml", "action"),
    ]


def test_paths_are_reported_under_the_argument_as_given(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(checkout.parent)
    items = [i for i in discover([checkout.name]) if isinstance(i, SourceFile)]
    assert items[0].path == f"{checkout.name}/.github/actions/setup/action.yml"
    assert items[0].relative == ".github/actions/setup/action.yml"
    assert os.path.isfile(items[0].fs_path)
    monkeypatch.chdir(checkout)
    (item,) = (i for i in discover(["./tools"]) if isinstance(i, SourceFile))
    assert item.path == "tools/action.yml" and item.relative == "action.yml"


def test_walking_the_workflows_folder_itself(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(checkout / ".github" / "workflows")
    assert found(".") == [("ci.yml", "workflow"), ("release.yaml", "workflow")]


def test_explicit_files_are_always_taken(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(checkout)
    assert found(
        "docs/workflow.yml", "node_modules/pkg/action.yml", ".github/workflows/notes.md"
    ) == [
        ("docs/workflow.yml", "workflow"),
        ("node_modules/pkg/action.yml", "action"),
        (".github/workflows/notes.md", "workflow"),
    ]


def test_duplicates_are_reported_once(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(checkout)
    assert found(".github/workflows/ci.yml", ".", "./.github/workflows/ci.yml")[:2] == [
        (".github/workflows/ci.yml", "workflow"),
        (".github/actions/setup/action.yml", "action"),
    ]
    assert len(found(".", ".")) == 6


def test_missing_path_is_a_diagnostic(tmp_path: Path) -> None:
    (item,) = discover([tmp_path / "nope"])
    assert isinstance(item, Diagnostic) and "no such file" in item.message


def test_default_is_the_current_directory(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(checkout)
    assert [i.path for i in discover() if isinstance(i, SourceFile)][1] == (
        ".github/workflows/ci.yml"
    )


def test_symlinked_directories_are_not_followed(tmp_path: Path) -> None:
    make(tmp_path, "real/action.yml")
    try:
        (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    except OSError:
        pytest.skip("no symlinks here")
    assert [i.relative for i in discover([tmp_path]) if isinstance(i, SourceFile)] == [
        "real/action.yml"
    ]


def test_directory_named_like_a_workflow_is_skipped(tmp_path: Path) -> None:
    make(tmp_path, ".github/workflows/dir.yml/inner.txt", ".github/workflows/ok.yml")
    assert [i.relative for i in discover([tmp_path]) if isinstance(i, SourceFile)] == [
        ".github/workflows/ok.yml"
    ]


def test_classify(tmp_path: Path) -> None:
    assert classify(tmp_path / ".github" / "workflows" / "a.yml") is Kind.WORKFLOW
    assert classify(tmp_path / "x" / "action.yaml") is Kind.ACTION
    assert classify(tmp_path / "x" / "a.yml") is None
    assert classify(tmp_path / ".github" / "workflows" / "a.json") is None


def test_tool_copies_of_the_checkout_are_skipped(tmp_path: Path) -> None:
    for root in (tmp_path, tmp_path / ".gitlab-ci-local" / "builds" / "job"):
        workflows = root / ".github" / "workflows"
        workflows.mkdir(parents=True)
        (workflows / "ci.yml").write_text("on: push\njobs: {}\n")
    found = [f.path for f in discover([str(tmp_path)]) if not isinstance(f, Diagnostic)]
    assert found == [f"{tmp_path}/.github/workflows/ci.yml"]
