"""The injection and condition rules where the fixture files cannot reach: a context with
tainted inputs (cross-file taint), personas, messages, locations."""

from __future__ import annotations

from pathlib import Path

from tollgate.audit.findings import Confidence, Diagnostic, Finding, Persona, Severity
from tollgate.audit.github.model import Action, Workflow, load_action, load_workflow
from tollgate.audit.github.rules.conditions import BotConditions, UnsoundContains
from tollgate.audit.github.rules.injection import (
    CODE_INPUTS,
    GithubEnv,
    TemplateInjection,
    env_name,
    read_variable,
)
from tollgate.audit.rules import AuditContext, all_rules

WORKFLOW_PATH = ".github/workflows/w.yml"
ACTION_PATH = ".github/actions/greet/action.yml"


def workflow(text: str) -> Workflow:
    model = load_workflow("w.yml", text, display_path=WORKFLOW_PATH)
    assert not isinstance(model, Diagnostic), model
    return model


def action(text: str) -> Action:
    model = load_action("action.yml", text, display_path=ACTION_PATH)
    assert not isinstance(model, Diagnostic), model
    return model


def injections(model: Workflow | Action, context: AuditContext) -> list[Finding]:
    rule = TemplateInjection()
    if isinstance(model, Action):
        return list(rule.check_action(model, context))
    return list(rule.check_workflow(model, context))


GREET = """\
name: greet
inputs:
  who: {}
  greeting: {}
runs:
  using: composite
  steps:
    - shell: bash
      run: |
        echo "${{ inputs.greeting }}, ${{ inputs.who }}"
        echo "WHO=${{ inputs.who }}" >> "$GITHUB_ENV"
"""


def test_a_tainted_input_of_a_composite_action_is_an_injection() -> None:
    model = action(GREET)
    tainted = AuditContext(tainted_inputs={ACTION_PATH: frozenset({"who"})})
    found = injections(model, tainted)
    assert [(f.location.line, f.severity, f.confidence, f.persona) for f in found] == [
        (10, Severity.HIGH, Confidence.HIGH, Persona.REGULAR),
        (11, Severity.HIGH, Confidence.HIGH, Persona.REGULAR),
    ]
    assert all(f.evidence == "inputs.who" for f in found)
    assert "a caller that passes attacker-controlled data" in found[0].message
    # Without a tainting caller the same inputs are only pedantic.
    assert injections(model, AuditContext()) == []
    pedantic = injections(model, AuditContext(persona=Persona.PEDANTIC))
    assert {(f.severity, f.confidence) for f in pedantic} == {(Severity.MEDIUM, Confidence.LOW)}
    assert len(pedantic) == 3  # greeting and who twice


def test_a_tainted_input_written_to_github_env() -> None:
    model = action(GREET)
    tainted = AuditContext(tainted_inputs={ACTION_PATH: frozenset({"who"})})
    (finding,) = GithubEnv().check_action(model, tainted)
    assert (finding.severity, finding.confidence) == (Severity.HIGH, Confidence.HIGH)
    assert finding.anchor == "runs.steps[0].run"
    assert finding.evidence == "GITHUB_ENV WHO"


REUSABLE = """\
on:
  workflow_call:
    inputs:
      title: {type: string}
jobs:
  use:
    runs-on: ubuntu-latest
    steps:
      - run: ./notify "${{ inputs.title }}"
"""


def test_a_tainted_input_of_a_reusable_workflow() -> None:
    model = workflow(REUSABLE)
    context = AuditContext(tainted_inputs={WORKFLOW_PATH: frozenset({"title"})})
    (finding,) = injections(model, context)
    assert (finding.severity, finding.confidence) == (Severity.HIGH, Confidence.HIGH)
    assert finding.anchor == "jobs.use.steps[0].run"
    # Another file's taint does not count.
    other = AuditContext(tainted_inputs={"elsewhere.yml": frozenset({"title"})})
    assert injections(model, other) == []


def test_message_names_the_expression_and_the_fix() -> None:
    model = workflow(
        """\
on: issues
jobs:
  triage:
    runs-on: windows-latest
    steps:
      - shell: pwsh
        run: Write-Host "${{ github.event.issue.title }}"
      - run: echo "${{ github.event.issue.body }}"
"""
    )
    pwsh, bash = injections(model, AuditContext())
    assert "`${{ github.event.issue.title }}`" in pwsh.message
    assert "the issue's author" in pwsh.message
    assert "ISSUE_TITLE: ${{ github.event.issue.title }}" in pwsh.message
    assert "$env:ISSUE_TITLE" in pwsh.message
    assert '"$ISSUE_BODY"' in bash.message
    # The location is the context inside the expression, on its line.
    line = model.document.line_text(pwsh.location.line)
    assert pwsh.location.end_column is not None
    assert line[pwsh.location.column - 1 : pwsh.location.end_column - 1] == (
        "github.event.issue.title"
    )


def test_env_chain_message_tells_to_read_the_variable() -> None:
    model = workflow(
        """\
on: pull_request_target
jobs:
  greet:
    runs-on: ubuntu-latest
    env:
      Title: ${{ github.event.pull_request.title }}
    steps:
      - run: echo "${{ env.title }}"
"""
    )
    (finding,) = injections(model, AuditContext())
    assert 'read it as "$Title" instead' in finding.message
    assert [location.line for location in finding.related] == [6]


def test_gates_lower_the_confidence() -> None:
    model = workflow(
        """\
on: issue_comment
jobs:
  run:
    if: github.event.comment.author_association == 'OWNER'
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{ github.event.comment.body }}"
"""
    )
    (finding,) = injections(model, AuditContext())
    assert finding.severity is Severity.HIGH
    assert finding.confidence is Confidence.LOW
    assert "Gated" in finding.message


def test_personas_filter_what_is_reported() -> None:
    model = workflow(
        """\
on:
  workflow_dispatch:
    inputs:
      version: {}
jobs:
  release:
    runs-on: ubuntu-latest
    steps:
      - run: ./release "${{ inputs.version }}" "${{ github.ref_name }}"
"""
    )
    assert injections(model, AuditContext()) == []
    (pedantic,) = injections(model, AuditContext(persona=Persona.PEDANTIC))
    assert pedantic.evidence == "inputs.version"
    auditor = injections(model, AuditContext(persona=Persona.AUDITOR))
    assert [f.evidence for f in auditor] == ["inputs.version", "github.ref_name"]
    assert auditor[1].persona is Persona.AUDITOR


def test_unsound_contains_uses_the_taint_of_the_needle() -> None:
    model = workflow(
        """\
on: pull_request_target
jobs:
  j:
    runs-on: ubuntu-latest
    env:
      BRANCH: ${{ github.head_ref }}
    steps:
      - if: contains('main develop', env.BRANCH)
        run: echo ok
"""
    )
    (finding,) = UnsoundContains().check_workflow(model, AuditContext())
    assert (finding.severity, finding.confidence) == (Severity.HIGH, Confidence.HIGH)
    assert """contains(fromJSON('["main", "develop"]'), env.BRANCH)""" in finding.message


def test_bot_conditions_in_a_reusable_workflow_and_an_action() -> None:
    reusable = workflow(
        """\
on: workflow_call
jobs:
  j:
    if: github.actor == 'dependabot[bot]'
    runs-on: ubuntu-latest
    steps:
      - run: echo ok
"""
    )
    (finding,) = BotConditions().check_workflow(reusable, AuditContext())
    assert (finding.severity, finding.confidence) == (Severity.MEDIUM, Confidence.MEDIUM)
    composite = action(
        """\
runs:
  using: composite
  steps:
    - if: github.actor == 'dependabot[bot]'
      run: echo ok
      shell: bash
"""
    )
    assert list(BotConditions().check_action(composite, AuditContext())) == []
    (pedantic,) = BotConditions().check_action(composite, AuditContext(persona=Persona.PEDANTIC))
    assert pedantic.persona is Persona.PEDANTIC


def test_rule_metadata() -> None:
    rules = all_rules()
    for rule_id in (
        "template-injection",
        "github-env",
        "unsound-condition",
        "unsound-contains",
        "bot-conditions",
    ):
        info = rules[rule_id].info
        assert info.help_uri == f"docs/rules/{rule_id}.md"
        assert info.name and info.summary.endswith(".")


def test_helpers() -> None:
    assert env_name("github.event.issue.title") == "ISSUE_TITLE"
    assert env_name("github.head_ref") == "HEAD_REF"
    assert env_name("github.event.commits.*.message") == "COMMITS_MESSAGE"
    assert env_name("steps.x-y.outputs.file-list") == "OUTPUTS_FILE_LIST"
    assert read_variable("X", "bash") == '"$X"'
    assert read_variable("X", "python") == 'os.environ["X"]'
    assert read_variable("X", "cmd") == "%X%"
    assert read_variable("X", "js") == "process.env.X"
    assert all(slug == slug.lower() for slug in CODE_INPUTS)


def test_the_engine_passes_a_callers_taint_to_the_action(tmp_path: Path) -> None:
    from tollgate.audit.engine import Auditor

    files = {
        ".github/actions/greet/action.yml": GREET,
        ".github/workflows/caller.yml": """\
on: pull_request_target
jobs:
  hello:
    runs-on: ubuntu-latest
    steps:
      - uses: ./.github/actions/greet
        with:
          who: ${{ github.event.pull_request.title }}
          greeting: hi
""",
    }
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    items = Auditor([TemplateInjection(), GithubEnv()]).run([str(tmp_path)])
    found = sorted(
        (item.rule, item.location.line, item.severity)
        for item in items
        if isinstance(item, Finding)
    )
    assert found == [
        ("github-env", 11, Severity.HIGH),
        ("template-injection", 10, Severity.HIGH),
        ("template-injection", 11, Severity.HIGH),
    ]
