"""Who controls a value (taint.py: the table, the grading) and how it travels inside a file
(tracker.py, and the script scanner it uses)."""

from __future__ import annotations

import pytest

from tollgate.audit.findings import Diagnostic
from tollgate.audit.github.expressions import find_expressions
from tollgate.audit.github.model import Action, Job, Step, Workflow, load_action, load_workflow
from tollgate.audit.github.scripts import assignments, command_file_writes, variable_refs
from tollgate.audit.github.taint import (
    SAFE,
    Control,
    Reach,
    Taint,
    classify,
    is_attacker_controlled,
    reach,
    worst,
)
from tollgate.audit.github.tracker import Tracker, tracker_for


def workflow(text: str) -> Workflow:
    model = load_workflow("w.yml", text, display_path=".github/workflows/w.yml")
    assert not isinstance(model, Diagnostic), model
    return model


def action(text: str) -> Action:
    model = load_action("action.yml", text, display_path="a/action.yml")
    assert not isinstance(model, Diagnostic), model
    return model


def step_named(model: Workflow, name: str) -> tuple[Job, Step]:
    for job, step in model.steps():
        if step.name is not None and step.name.value == name:
            return job, step
    raise AssertionError(name)


def taint_of(model: Workflow, step_name: str, tainted: tuple[str, ...] = ()) -> Taint:
    """The worst taint among the expressions of a named step's run:."""
    job, step = step_named(model, step_name)
    tracker = Tracker(model, tainted)
    assert step.run is not None
    found = [tracker.match(m, job, step) for m in find_expressions(step.run.value)]
    return worst(t for _, t in filter(None, found))


# --- The table --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "github.event.issue.title",
        "github.event.issue.body",
        "github.event.pull_request.title",
        "github.event.pull_request.head.ref",
        "github.event.pull_request.head.label",
        "github.event.pull_request.head.repo.default_branch",
        "github.head_ref",
        "github.event.comment.body",
        "github.event.review.body",
        "github.event.review_comment.body",
        "github.event.discussion.title",
        "github.event.pages.*.page_name",
        "github.event.commits.*.message",
        "github.event.commits.*.author.email",
        "github.event.head_commit.committer.name",
        "github.event.workflow_run.head_branch",
        "github.event.workflow_run.display_title",
        "github.event.workflow_run.pull_requests.*.head.ref",
        "github.event.changes.body.from",
        # Objects that contain such values (toJSON(...)) and object filters.
        "github",
        "github.event",
        "github.event.pull_request",
        "github.event.pull_request.head",
        "github.event.*.body",
        "github.event.commits",
    ],
)
def test_attacker_controlled(path: str) -> None:
    assert is_attacker_controlled(path)
    assert is_attacker_controlled(path.upper().replace("*", "*"))  # contexts ignore case


@pytest.mark.parametrize(
    "path",
    [
        "github.event.issue.number",
        "github.event.pull_request.number",
        "github.event.pull_request.head.sha",
        # Logins and repository names: GitHub restricts their characters.
        "github.actor",
        "github.triggering_actor",
        "github.event.pull_request.user.login",
        "github.event.pull_request.head.repo.full_name",
        "github.event.pull_request.base",
        "github.repository",
        # Set with write access, not by outsiders.
        "github.ref",
        "github.ref_name",
        "github.event.pull_request.base.ref",
        "github.event.inputs.version",
        "github.event.release.body",
        # Other contexts.
        "env.title",
        "secrets.token",
        "steps.x.outputs.y",
    ],
)
def test_not_attacker_controlled(path: str) -> None:
    assert not is_attacker_controlled(path)


def test_classify_says_who_and_when() -> None:
    title = classify("github.event.issue.title")
    assert title is not None and title.control is Control.ATTACKER
    assert title.events == {"issues", "issue_comment"}
    assert "issue" in title.who
    ref = classify("github.ref_name")
    assert ref is not None and ref.control is Control.WRITER
    assert classify("github.sha") is None
    whole = classify("github.event.pull_request")
    assert whole is not None and "pull_request_target" in whole.events


# --- Grading by trigger -----------------------------------------------------------------------

ATTACKER_TITLE = Taint(
    Control.ATTACKER, "github.event.issue.title", "x", events=frozenset({"issues"})
)


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        ("issues", Reach.PRIVILEGED),
        ("[push, issues]", Reach.PRIVILEGED),
        ("workflow_call", Reach.CALLER),
        ("push", None),  # no trigger carries an issue
    ],
)
def test_reach(on: str, expected: Reach | None) -> None:
    model = workflow(f"on: {on}\njobs: {{}}\n")
    assert reach(model, ATTACKER_TITLE) is expected


def test_reach_of_pull_request_and_push() -> None:
    branch = Taint(Control.ATTACKER, "github.head_ref", "x", events=frozenset({"pull_request"}))
    assert reach(workflow("on: pull_request\njobs: {}\n"), branch) is Reach.FORK
    message = Taint(Control.ATTACKER, "m", "x", events=frozenset({"push"}))
    assert reach(workflow("on: push\njobs: {}\n"), message) is Reach.MERGED
    caller = Taint(Control.ATTACKER, "inputs.x", "x", events=None)
    assert reach(workflow("on: push\njobs: {}\n"), caller) is Reach.PRIVILEGED
    assert reach(None, ATTACKER_TITLE) is Reach.CALLER  # an action
    # The job's own events, when narrowed by an event_name test.
    both = workflow("on: [issues, pull_request]\njobs: {}\n")
    assert reach(both, ATTACKER_TITLE, events=["pull_request"]) is None


# --- Propagation --------------------------------------------------------------------------------

CHAINS = """\
on:
  pull_request_target:
  workflow_dispatch:
    inputs:
      note: {}
      flag: {type: boolean}
env:
  WF_TITLE: ${{ github.event.pull_request.title }}
  FIXED: hello
jobs:
  first:
    runs-on: ubuntu-latest
    env:
      JOB_REF: ${{ github.head_ref }}
    outputs:
      title: ${{ steps.write.outputs.title }}
      number: ${{ steps.write.outputs.number }}
    steps:
      - id: write
        name: write
        env:
          BODY: ${{ github.event.pull_request.body }}
        run: |
          echo "title=$WF_TITLE" >> "$GITHUB_OUTPUT"
          echo "number=${{ github.event.pull_request.number }}" >> "$GITHUB_OUTPUT"
          echo "body=${BODY}" >> "$GITHUB_OUTPUT"
          echo "short=${BODY:0:10}" >> "$GITHUB_OUTPUT"
          echo "FROM_ENV=$BODY" >> "$GITHUB_ENV"
          echo "PLAIN=yes" >> "$GITHUB_ENV"
      - name: env-workflow
        run: echo "${{ env.WF_TITLE }}"
      - name: env-job
        run: echo "${{ env.JOB_REF }}"
      - name: env-fixed
        run: echo "${{ env.FIXED }} ${{ env.PLAIN }}"
      - name: env-dynamic
        run: echo "${{ env.FROM_ENV }}"
      - name: env-unset
        run: echo "${{ env.NOWHERE }}"
      - name: output
        run: echo "${{ steps.write.outputs.body }}"
      - name: output-sliced
        run: echo "${{ steps.write.outputs.short }}"
      - name: output-number
        run: echo "${{ steps.write.outputs.number }}"
      - name: inputs
        run: echo "${{ inputs.note }} ${{ github.event.inputs.note }}"
      - name: inputs-typed
        run: echo "${{ inputs.flag }}"
  second:
    needs: first
    runs-on: ubuntu-latest
    strategy:
      matrix:
        title: ["${{ needs.first.outputs.title }}"]
        os: [ubuntu-latest]
    steps:
      - name: needs
        run: echo "${{ needs.first.outputs.title }}"
      - name: needs-number
        run: echo "${{ needs.first.outputs.number }} ${{ needs.first.result }}"
      - name: matrix
        run: echo "${{ matrix.title }}"
      - name: matrix-literal
        run: echo "${{ matrix.os }}"
"""


@pytest.mark.parametrize(
    ("step", "control", "origin", "chain", "certain"),
    [
        (
            "env-workflow",
            Control.ATTACKER,
            "github.event.pull_request.title",
            ("env.WF_TITLE",),
            True,
        ),
        ("env-job", Control.ATTACKER, "github.head_ref", ("env.JOB_REF",), True),
        ("env-fixed", Control.SAFE, "", (), True),
        ("env-dynamic", Control.ATTACKER, "github.event.pull_request.body", None, True),
        ("env-unset", Control.UNKNOWN, "env.NOWHERE", (), True),
        ("output", Control.ATTACKER, "github.event.pull_request.body", None, True),
        ("output-sliced", Control.ATTACKER, "github.event.pull_request.body", None, False),
        ("output-number", Control.SAFE, "", (), True),
        ("inputs", Control.WRITER, "inputs.note", (), True),
        ("inputs-typed", Control.SAFE, "", (), True),
        ("needs", Control.ATTACKER, "github.event.pull_request.title", None, True),
        ("needs-number", Control.SAFE, "", (), True),
        ("matrix", Control.ATTACKER, "github.event.pull_request.title", None, True),
        ("matrix-literal", Control.SAFE, "", (), True),
    ],
)
def test_propagation(
    step: str, control: Control, origin: str, chain: tuple[str, ...] | None, certain: bool
) -> None:
    found = taint_of(workflow(CHAINS), step)
    assert found.control is control
    assert found.origin == origin
    assert found.certain is certain
    if chain is not None:
        assert found.chain == chain


def test_chains_name_every_hop_and_where_it_was_set() -> None:
    model = workflow(CHAINS)
    found = taint_of(model, "needs")
    assert found.chain == (
        "needs.first.outputs.title",
        "steps.write.outputs.title",
        "env.WF_TITLE",
    )
    tracker = Tracker(model)
    lines = [location.line for location in tracker.locations(found)]
    assert lines == [16, 24, 8]  # the job output, the write, the env entry


def test_tainted_inputs_of_a_reusable_workflow() -> None:
    text = """\
on:
  workflow_call:
    inputs:
      title: {type: string}
      count: {type: number}
jobs:
  use:
    runs-on: ubuntu-latest
    steps:
      - name: title
        run: echo "${{ inputs.title }}"
      - name: count
        run: echo "${{ inputs.count }}"
"""
    model = workflow(text)
    assert taint_of(model, "title").control is Control.UNKNOWN
    tainted = taint_of(model, "title", ("Title",))  # names are matched without case
    assert tainted.control is Control.ATTACKER and tainted.events is None
    assert taint_of(model, "count", ("count",)).control is Control.ATTACKER  # the caller said so


def test_inputs_of_a_composite_action() -> None:
    model = action(
        """\
inputs:
  who: {}
runs:
  using: composite
  steps:
    - run: echo "${{ inputs.who }}"
      shell: bash
"""
    )
    step = model.steps[0]
    assert step.run is not None
    (match,) = find_expressions(step.run.value)
    unknown = Tracker(model).match(match, None, step)
    assert unknown is not None and unknown[1].control is Control.UNKNOWN
    tainted = Tracker(model, ["who"]).match(match, None, step)
    assert tainted is not None and tainted[1].control is Control.ATTACKER


def test_known_action_outputs() -> None:
    text = """\
on: pull_request_target
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - {id: tj, uses: tj-actions/changed-files@v46, with: {safe_output: false}}
      - {id: tj2, uses: tj-actions/changed-files@v46}
      - {id: dorny, uses: dorny/paths-filter@v3, with: {list-files: json, filters: x}}
      - {id: quiet, uses: dorny/paths-filter@v3, with: {filters: x}}
      - {id: branch, uses: xt0rted/pull-request-comment-branch@v2}
      - {id: other, uses: some/action@v1}
      - {name: tj, run: 'echo ${{ steps.tj.outputs.all_changed_files }}'}
      - {name: tj2, run: 'echo ${{ steps.tj2.outputs.any_changed }}'}
      - {name: tj3, run: 'echo ${{ steps.tj2.outputs.added_files }}'}
      - {name: dorny, run: 'echo ${{ steps.dorny.outputs.src_files }}'}
      - {name: quiet, run: 'echo ${{ steps.quiet.outputs.src_files }}'}
      - {name: branch, run: 'echo ${{ steps.branch.outputs.head_ref }}'}
      - {name: other, run: 'echo ${{ steps.other.outputs.x }}'}
"""
    model = workflow(text)
    tj = taint_of(model, "tj")
    assert tj.control is Control.ATTACKER and tj.certain
    assert taint_of(model, "tj2").control is Control.UNKNOWN  # not a file list
    escaped = taint_of(model, "tj3")
    assert escaped.control is Control.ATTACKER and not escaped.certain
    dorny = taint_of(model, "dorny")
    assert dorny.control is Control.ATTACKER and dorny.json
    assert taint_of(model, "quiet") == SAFE  # no list-files: no file names
    assert taint_of(model, "branch").control is Control.ATTACKER
    assert taint_of(model, "other").control is Control.UNKNOWN


def test_script_values() -> None:
    text = """\
on: issue_comment
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - id: a
        env:
          BODY: ${{ github.event.comment.body }}
        run: |
          FIRST=$(echo "$BODY" | head -1)
          CLEAN="${BODY//[^a-z]/}"
          CHECKED="$BODY"
          [[ "$CHECKED" =~ ^[a-z]+$ ]] || exit 1
          TITLE=$(jq -r .issue.title "$GITHUB_EVENT_PATH")
          echo "first=$FIRST" >> "$GITHUB_OUTPUT"
          echo "clean=$CLEAN" >> "$GITHUB_OUTPUT"
          echo "checked=$CHECKED" >> "$GITHUB_OUTPUT"
          echo "title=$TITLE" >> "$GITHUB_OUTPUT"
          echo "home=$HOME" >> "$GITHUB_OUTPUT"
          echo "head=$GITHUB_HEAD_REF" >> "$GITHUB_OUTPUT"
      - id: js
        uses: actions/github-script@v7
        with:
          script: |
            core.setOutput('title', context.payload.issue.title)
            core.setOutput('number', 42)
            return context.payload.comment.body
      - {name: first, run: 'echo ${{ steps.a.outputs.first }}'}
      - {name: clean, run: 'echo ${{ steps.a.outputs.clean }}'}
      - {name: checked, run: 'echo ${{ steps.a.outputs.checked }}'}
      - {name: title, run: 'echo ${{ steps.a.outputs.title }}'}
      - {name: home, run: 'echo ${{ steps.a.outputs.home }}'}
      - {name: head, run: 'echo ${{ steps.a.outputs.head }}'}
      - {name: js-title, run: 'echo ${{ steps.js.outputs.title }}'}
      - {name: js-number, run: 'echo ${{ steps.js.outputs.number }}'}
      - {name: js-result, run: 'echo ${{ steps.js.outputs.result }}'}
"""
    model = workflow(text)
    first = taint_of(model, "first")
    assert first.control is Control.ATTACKER and not first.certain  # through a command
    clean = taint_of(model, "clean")
    assert clean.control is Control.ATTACKER and not clean.certain  # through ${X//..}
    assert taint_of(model, "checked").control is Control.UNKNOWN  # =~ vouches for it
    title = taint_of(model, "title")
    assert title.origin == "github.event.issue.title" and not title.certain
    assert taint_of(model, "home") == SAFE
    assert taint_of(model, "head").origin == "github.head_ref"
    assert taint_of(model, "js-title").control is Control.ATTACKER
    assert taint_of(model, "js-number") == SAFE
    assert taint_of(model, "js-result").origin == "github.event.comment.body"


def test_cycles_and_unknown_steps_end() -> None:
    text = """\
on: issues
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - id: loop
        run: |
          X="$X more"
          echo "x=$X" >> $GITHUB_OUTPUT
      - {name: loop, run: 'echo ${{ steps.loop.outputs.x }} ${{ steps.missing.outputs.y }}'}
"""
    found = taint_of(workflow(text), "loop")
    assert found.control is Control.UNKNOWN  # the missing step; the loop adds nothing


def test_tracker_is_shared_by_rules_checking_the_same_file() -> None:
    model = workflow(CHAINS)
    first = tracker_for(model, ["a"])
    assert tracker_for(model, ["A"]) is first
    assert tracker_for(model, []) is not first
    assert tracker_for(workflow(CHAINS), []) is not tracker_for(model, [])


# --- Scripts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ('echo "title=$T" >> $GITHUB_OUTPUT', [("GITHUB_OUTPUT", "title", '$T"')]),
        ('echo "A=1" >> "$GITHUB_ENV"', [("GITHUB_ENV", "A", '1"')]),
        ('echo "A=1" >>"${GITHUB_ENV}"', [("GITHUB_ENV", "A", '1"')]),
        ('echo "$HOME/bin" >> $GITHUB_PATH', [("GITHUB_PATH", None, '$HOME/bin"')]),
        ('echo "V=$v" | tee -a "$GITHUB_ENV"', [("GITHUB_ENV", "V", '$v"')]),
        ('"V=$v" | Out-File -FilePath $env:GITHUB_ENV -Append', [("GITHUB_ENV", "V", '$v"')]),
        ("echo V=%X% >> %GITHUB_ENV%", [("GITHUB_ENV", "V", "%X%")]),
        ('Add-Content -Path $env:GITHUB_ENV -Value "V=$y"', [("GITHUB_ENV", "V", '$y"')]),
        (
            '{ echo "a=$A"; echo "b=$B"; } >> "$GITHUB_OUTPUT"',
            [("GITHUB_OUTPUT", "a", '$A"'), ("GITHUB_OUTPUT", "b", '$B"')],
        ),
        (
            "cat <<EOF >> $GITHUB_ENV\nA=$X\nB=2\nEOF\n",
            [("GITHUB_ENV", "A", "$X"), ("GITHUB_ENV", "B", "2")],
        ),
        (
            'echo "b<<EOF" >> $GITHUB_OUTPUT\necho "$B" >> $GITHUB_OUTPUT\necho EOF >> $GITHUB_OUTPUT',
            [("GITHUB_OUTPUT", "b", '$B"')],
        ),
        ('echo "::set-output name=v::${{ x }}"', [("GITHUB_OUTPUT", "v", '${{ x }}"')]),
        ('if [ -n "$X" ]; then echo "v=$X" >> $GITHUB_OUTPUT; fi', [("GITHUB_OUTPUT", "v", '$X"')]),
        ('echo "x=${{ a || b }}" >> $GITHUB_OUTPUT', [("GITHUB_OUTPUT", "x", '${{ a || b }}"')]),
        ('cat "$GITHUB_ENV"', []),
        ("test -f $GITHUB_PATH && echo yes", []),
        ("echo oops 2>> $GITHUB_ENV", []),
        ("echo plain", []),
    ],
)
def test_command_file_writes(script: str, expected: list[tuple[str, str | None, str]]) -> None:
    found = command_file_writes(script)
    assert [(w.target, w.name, w.value) for w in found] == expected
    for write in found:
        assert script[write.start :].startswith(write.value)
        assert (
            "GITHUB_" in script[write.target_start : write.target_end]
            or "set-output" in (script[write.target_start : write.target_end])
        )


def test_multiline_writes_with_a_random_delimiter() -> None:
    script = (
        "D=$(openssl rand -hex 8)\n"
        'echo "body<<$D" >> $GITHUB_ENV\n'
        'echo "$BODY" >> $GITHUB_ENV\n'
        'echo "$D" >> $GITHUB_ENV\n'
        'echo "after=1" >> $GITHUB_ENV\n'
    )
    body, after = command_file_writes(script)
    assert (body.name, body.multiline, body.random_delimiter) == ("body", True, True)
    assert (after.name, after.multiline) == ("after", False)
    fixed = command_file_writes('{ echo "b<<EOF"; echo "$B"; echo EOF; } >> $GITHUB_ENV')
    assert [(w.multiline, w.random_delimiter) for w in fixed] == [(True, False)]


def test_variable_refs() -> None:
    refs = variable_refs("a $X ${Y} ${#Z} ${W//a/b} $(echo $Q) `echo $R` $env:S %T%")
    assert [(r.name, r.plain) for r in refs] == [
        ("X", True),
        ("Y", True),
        ("Z", False),
        ("W", False),
        ("Q", False),
        ("R", False),
        ("S", True),
        ("T", True),
    ]


def test_assignments() -> None:
    found = assignments('A=1\nexport B="$A"\n  local C=$(x)\nD+=more\n$E = "ps"\nif [ a == b ]')
    assert {name: [v for v, _ in values] for name, values in found.items()} == {
        "A": ["1"],
        "B": ['"$A"'],
        "C": ["$(x)"],
        "D": ["more"],
        "E": [' "ps"'],
    }
