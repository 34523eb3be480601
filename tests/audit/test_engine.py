"""The audit pipeline: streaming, filters, baselines, broken rules, workers, cross-file taint.

The rules are test-only (``tests/audit/data/engine/rules.py``), passed to the engine
explicitly: they report ``mark:<severity>`` written in the YAML under test.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from tests.audit.data.engine.rules import ALL, Broken, Marker, OtherMarker, TaintProbe
from tollgate.audit.config import (
    Baseline,
    BaselineRecorder,
    Config,
    load_baseline,
    load_config,
)
from tollgate.audit.discover import Kind
from tollgate.audit.engine import Auditor, AuditSettings, FileDone, run_audit
from tollgate.audit.findings import Diagnostic, Finding, Persona, Severity
from tollgate.audit.rules import Rule

Item = Finding | Diagnostic | FileDone

CI = """\
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo mark:high
      - run: echo mark:low:pedantic
      - run: echo mark:info:auditor
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def audit(
    paths: Iterable[Path | str],
    rules: Sequence[Rule] = ALL,
    settings: AuditSettings | None = None,
    *,
    jobs: int = 1,
    baseline: Baseline | None = None,
    recorder: BaselineRecorder | None = None,
) -> list[Item]:
    auditor = Auditor(rules, settings, jobs=jobs, baseline=baseline, recorder=recorder)
    return list(auditor.run([str(path) for path in paths]))


def findings(items: Iterable[Item]) -> list[tuple[str, int, str, Severity]]:
    """(file name, line, rule, severity) of each finding."""
    return [
        (Path(item.location.path).name, item.location.line, item.rule, item.severity)
        for item in items
        if isinstance(item, Finding)
    ]


def diagnostics(items: Iterable[Item]) -> list[Diagnostic]:
    return [item for item in items if isinstance(item, Diagnostic)]


# --- Reading files ----------------------------------------------------------------------------


def test_a_malformed_file_is_one_diagnostic_and_the_others_are_audited(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".github/workflows/a.yml": CI,
            ".github/workflows/b.yml": "on: push\njobs: [unclosed\n",
            ".github/workflows/c.yml": CI,
        },
    )
    items = audit([tmp_path], [Marker()])
    [diagnostic] = diagnostics(items)
    assert diagnostic.path.endswith(".github/workflows/b.yml")
    assert diagnostic.line is not None
    assert [f[:3] for f in findings(items)] == [("a.yml", 6, "marker"), ("c.yml", 6, "marker")]
    done = [item.path.rsplit("/", 1)[-1] for item in items if isinstance(item, FileDone)]
    assert done == ["a.yml", "b.yml", "c.yml"]


def test_each_file_s_items_come_before_its_file_done(tmp_path: Path) -> None:
    write(tmp_path, {".github/workflows/a.yml": CI, ".github/workflows/b.yml": CI})
    items = audit([tmp_path], [Marker()], AuditSettings(persona=Persona.AUDITOR))
    paths = [
        item.location.path if isinstance(item, Finding) else item.path
        for item in items
        if not isinstance(item, Diagnostic)
    ]
    a, b = (str(tmp_path / ".github/workflows" / name) for name in ("a.yml", "b.yml"))
    assert paths == [a, a, a, a, b, b, b, b]
    assert isinstance(items[3], FileDone)
    assert items[3].kind is Kind.WORKFLOW
    assert items[3].lines == 8


def test_a_missing_path_is_a_diagnostic(tmp_path: Path) -> None:
    items = audit([tmp_path / "nothing-here"])
    assert [d.message for d in diagnostics(items)] == ["no such file or directory"]


# --- Filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "lines"),
    [(Persona.REGULAR, [6]), (Persona.PEDANTIC, [6, 7]), (Persona.AUDITOR, [6, 7, 8])],
)
def test_persona_chooses_how_much_is_said(
    tmp_path: Path, persona: Persona, lines: list[int]
) -> None:
    write(tmp_path, {".github/workflows/ci.yml": CI})
    items = audit([tmp_path], [Marker()], AuditSettings(persona=persona))
    assert [line for _, line, _, _ in findings(items)] == lines


def test_severity_override(tmp_path: Path) -> None:
    write(tmp_path, {".github/workflows/ci.yml": "on: push\nx: mark:high other:high\n"})
    settings = AuditSettings(severity={"marker": Severity.LOW})
    items = audit([tmp_path], [Marker(), OtherMarker()], settings)
    assert {(rule, severity) for _, _, rule, severity in findings(items)} == {
        ("marker", Severity.LOW),
        ("other-marker", Severity.HIGH),
    }


def _config(root: Path, text: str) -> Config:
    (root / ".tollgate.yml").write_text(textwrap.dedent(text), encoding="utf-8")
    return load_config(root / ".tollgate.yml", {"marker", "other-marker", "broken"})


def test_config_ignores_by_path_glob_and_rule(tmp_path: Path) -> None:
    line = "on: push\nx: mark:high other:high\n"
    write(
        tmp_path,
        {
            ".github/workflows/release.yml": line,
            ".github/workflows/legacy-a.yml": line,
            ".github/workflows/ci.yml": line,
            "vendored/action.yml": line,
        },
    )
    config = _config(
        tmp_path,
        """\
        rules:
          other-marker:
            ignore: [release.yml]
        ignore:
          - path: .github/workflows/legacy-*.yml
            rules: [marker]
          - path: vendored
        """,
    )
    items = audit([tmp_path], [Marker(), OtherMarker()], AuditSettings.from_config(config))
    assert sorted((name, rule) for name, _, rule, _ in findings(items)) == [
        ("ci.yml", "marker"),
        ("ci.yml", "other-marker"),
        ("legacy-a.yml", "other-marker"),
        ("release.yml", "marker"),
    ]
    everything = AuditSettings.from_config(config, ignores=False)
    assert len(findings(audit([tmp_path], [Marker(), OtherMarker()], everything))) == 8


def test_config_persona_and_its_override(tmp_path: Path) -> None:
    write(tmp_path, {".github/workflows/ci.yml": CI})
    config = _config(tmp_path, "persona: pedantic\n")
    assert len(findings(audit([tmp_path], [Marker()], AuditSettings.from_config(config)))) == 2
    settings = AuditSettings.from_config(config, persona=Persona.REGULAR)
    assert len(findings(audit([tmp_path], [Marker()], settings))) == 1


INLINE = """\
on: push
jobs:
  build:
    steps:
      - run: echo mark:high  # tollgate: ignore[marker] on its own line
      # tollgate: ignore[other-marker, marker] alone on the line above
      - run: echo mark:high other:high
      - run: echo mark:medium other:medium # tollgate: ignore[other-marker]
      - run: echo mark:low
      - run: |
          # tollgate: ignore[marker] is a shell comment here, not YAML
          echo mark:critical
      - name: "# tollgate: ignore[marker] in a string"
        run: echo mark:info
"""


def test_inline_ignores(tmp_path: Path) -> None:
    write(tmp_path, {".github/workflows/ci.yml": INLINE})
    items = audit([tmp_path], [Marker(), OtherMarker()])
    assert [(line, rule) for _, line, rule, _ in findings(items)] == [
        (8, "marker"),  # only other-marker is silenced on its line
        (9, "marker"),  # a trailing comment on the line above does not reach here
        (12, "marker"),  # the comment inside the block scalar is shell, not YAML
        (14, "marker"),  # nor is one inside a quoted string
    ]
    assert len(findings(audit([tmp_path], [Marker(), OtherMarker()], _no_ignores()))) == 8


def _no_ignores() -> AuditSettings:
    return AuditSettings.from_config(Config(), ignores=False)


def test_suppressed_findings_are_counted(tmp_path: Path) -> None:
    write(tmp_path, {".github/workflows/ci.yml": INLINE})
    auditor = Auditor([Marker(), OtherMarker()])
    list(auditor.run([str(tmp_path)]))
    assert auditor.suppressed == 4
    assert (auditor.files, auditor.lines) == (1, 14)


# --- Baselines --------------------------------------------------------------------------------


def test_baseline_round_trip(tmp_path: Path) -> None:
    repo = write(
        tmp_path / "repo",
        {".github/workflows/ci.yml": CI, ".github/workflows/two.yml": "x: mark:high mark:high\n"},
    )
    baseline_file = tmp_path / "baseline.json"
    recorder = BaselineRecorder()
    first = audit([repo], [Marker()], recorder=recorder)
    assert len(findings(first)) == 3
    recorder.write(baseline_file)
    baseline = load_baseline(baseline_file)
    assert sorted(baseline.counts.values()) == [1, 2]  # identical findings are counted

    assert findings(audit([repo], [Marker()], baseline=baseline)) == []

    # Lines move: the fingerprints do not.
    ci = repo / ".github/workflows/ci.yml"
    ci.write_text("# a comment\n\n" + CI.replace("on: push", "on: [push]"), encoding="utf-8")
    auditor = Auditor([Marker()], baseline=baseline)
    assert findings(auditor.run([str(repo)])) == []
    assert auditor.baselined == 3

    # A new finding, and a third copy of a finding listed twice: only they are reported.
    ci.write_text(ci.read_text() + "      - run: echo mark:critical\n", encoding="utf-8")
    (repo / ".github/workflows/two.yml").write_text("x: mark:high mark:high mark:high\n")
    assert [
        (name, sev) for name, _, _, sev in findings(audit([repo], [Marker()], baseline=baseline))
    ] == [
        ("ci.yml", Severity.CRITICAL),
        ("two.yml", Severity.HIGH),
    ]


def test_the_baseline_sees_findings_after_the_other_filters(tmp_path: Path) -> None:
    write(tmp_path, {".github/workflows/ci.yml": INLINE})
    recorder = BaselineRecorder()
    audit([tmp_path], [Marker(), OtherMarker()], recorder=recorder)
    assert len(recorder) == 4


# --- Rules that fail, workers -----------------------------------------------------------------


def test_a_rule_that_raises_becomes_a_diagnostic(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".github/workflows/a.yml": "on: push\nx: boom mark:high\n",
            ".github/workflows/b.yml": "on: push\nx: mark:high\n",
        },
    )
    items = audit([tmp_path], [Broken(), Marker()])
    [diagnostic] = diagnostics(items)
    assert diagnostic.path.endswith("a.yml")
    assert "'broken'" in diagnostic.message
    assert "RuntimeError: boom went the rule" in diagnostic.message
    assert "Traceback" not in diagnostic.message
    assert [name for name, *_ in findings(items)] == ["a.yml", "b.yml"]


def _tree(root: Path) -> Path:
    files = {
        f".github/workflows/w{n:02}.yml": CI.replace("high", "medium" if n % 3 else "high")
        for n in range(40)
    }
    files[".github/workflows/w17.yml"] = "on: push\njobs: [\n"
    files[".github/workflows/w23.yml"] = "on: push\nx: boom\n"
    files[".github/workflows/reusable.yml"] = REUSABLE
    files[".github/actions/greet/action.yml"] = GREET
    files[".github/workflows/caller.yml"] = CALLER
    return write(root, files)


def test_jobs_2_gives_the_same_output_as_jobs_1(tmp_path: Path) -> None:
    _tree(tmp_path)
    settings = AuditSettings(persona=Persona.AUDITOR)
    one = audit([tmp_path, tmp_path / "missing"], ALL, settings, jobs=1)
    two = audit([tmp_path, tmp_path / "missing"], ALL, settings, jobs=2)
    assert one == two
    assert len(diagnostics(one)) == 3
    assert sum(isinstance(item, FileDone) for item in one) == 43


# --- Cross-file taint -------------------------------------------------------------------------

GREET = """\
name: greet
inputs:
  who: {}
  greeting: {}
runs:
  using: composite
  steps:
    - run: echo "${{ inputs.greeting }} ${{ inputs.who }}"
      shell: bash
"""

CALLER = """\
on: pull_request_target
jobs:
  hello:
    runs-on: ubuntu-latest
    steps:
      - uses: ./.github/actions/greet
        with:
          who: ${{ github.event.pull_request.title }}
          greeting: ${{ github.event.pull_request.number }}
"""

REUSABLE = """\
on:
  workflow_call:
    inputs:
      title: {type: string}
jobs:
  pass-on:
    runs-on: ubuntu-latest
    steps:
      - uses: ./.github/actions/relay
        with:
          Message: ${{ inputs.title }}
"""

RELAY = """\
inputs:
  message: {}
runs:
  using: composite
  steps:
    - run: echo "${{ inputs.message }}"
      shell: bash
"""

CALLS_REUSABLE = """\
on: issues
jobs:
  call:
    uses: ./.github/workflows/reusable.yml
    with:
      title: ${{ format('{0}!', github.event.issue.title) }}
"""


def _taint(items: Iterable[Item]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for item in items:
        if isinstance(item, Finding) and item.rule == "taint-probe":
            found.setdefault(item.location.path.split("/.github/")[-1], []).append(item.evidence)
    return found


def test_cross_file_taint_reaches_a_local_composite_action(tmp_path: Path) -> None:
    write(
        tmp_path,
        {".github/actions/greet/action.yml": GREET, ".github/workflows/caller.yml": CALLER},
    )
    items = audit([tmp_path], [TaintProbe()])
    assert _taint(items) == {"actions/greet/action.yml": ["who"]}  # not the number


def test_taint_passes_through_a_reusable_workflow_to_its_action(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".github/actions/relay/action.yml": RELAY,
            ".github/workflows/reusable.yml": REUSABLE,
            ".github/workflows/z-caller.yml": CALLS_REUSABLE,
        },
    )
    for jobs in (1, 2):
        items = audit([tmp_path], [TaintProbe()], jobs=jobs)
        assert _taint(items) == {
            "actions/relay/action.yml": ["message"],  # input names are lower-case
            "workflows/reusable.yml": ["title"],
        }


def test_no_taint_without_an_attacker_controlled_caller(tmp_path: Path) -> None:
    safe = CALLS_REUSABLE.replace("github.event.issue.title", "github.event.issue.number")
    write(
        tmp_path,
        {
            ".github/actions/relay/action.yml": RELAY,
            ".github/workflows/reusable.yml": REUSABLE,
            ".github/workflows/caller.yml": safe,
        },
    )
    assert _taint(audit([tmp_path], [TaintProbe()])) == {}


def test_callees_are_reported_after_the_other_files(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".github/actions/greet/action.yml": GREET + "# mark:high\ndescription: mark:high\n",
            ".github/workflows/caller.yml": CALLER + "# mark:high\n",
            ".github/workflows/plain.yml": CI,
        },
    )
    items = audit([tmp_path], [Marker(), TaintProbe()])
    order = [item.path.split("/.github/")[-1] for item in items if isinstance(item, FileDone)]
    assert order == ["workflows/caller.yml", "workflows/plain.yml", "actions/greet/action.yml"]
    assert [(name, rule) for name, _, rule, _ in findings(items)] == [
        ("plain.yml", "marker"),
        ("action.yml", "taint-probe"),
        ("action.yml", "marker"),
    ]


def test_run_audit_uses_the_configuration(tmp_path: Path) -> None:
    write(tmp_path, {".github/workflows/ci.yml": CI})
    config = _config(tmp_path, "rules: {marker: {severity: critical}}\npersona: auditor\n")
    items = list(run_audit([tmp_path], config, rules=[Marker()]))
    assert [sev for *_, sev in findings(items)] == [Severity.CRITICAL] * 3
