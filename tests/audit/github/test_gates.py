"""Gates in front of outsider-triggered jobs, and the events that reach a job."""

from __future__ import annotations

import textwrap

import pytest

from tollgate.audit.findings import Confidence
from tollgate.audit.github.gates import (
    Gate,
    GateKind,
    describe,
    gated_confidence,
    job_events,
    job_gates,
    step_events,
)
from tollgate.audit.github.model import Workflow, load_workflow


def workflow(text: str) -> Workflow:
    result = load_workflow(".github/workflows/t.yml", textwrap.dedent(text))
    assert isinstance(result, Workflow), result
    return result


def gates_of(condition: str, on: str = "pull_request_target") -> tuple[Gate, ...]:
    wf = workflow(
        f"""\
        on: {on}
        jobs:
          j:
            if: {condition}
            runs-on: ubuntu-latest
            steps:
              - run: make
        """
    )
    return job_gates(wf, wf.jobs["j"])


def kinds(gates: tuple[Gate, ...]) -> list[tuple[GateKind, bool]]:
    return [(gate.kind, gate.strong) for gate in gates]


# --- Conditions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            "github.event.pull_request.author_association == 'OWNER'",
            [(GateKind.AUTHOR_ASSOCIATION, True)],
        ),
        (
            '${{ contains(fromJSON(\'["OWNER", "MEMBER"]\'), '
            "github.event.comment.author_association) }}",
            [(GateKind.AUTHOR_ASSOCIATION, True)],
        ),
        (
            "contains('OWNER,MEMBER,COLLABORATOR', github.event.comment.author_association)",
            [(GateKind.AUTHOR_ASSOCIATION, True)],
        ),
        # The author is not the commenter who triggers issue_comment.
        (
            "github.event.issue.author_association == 'MEMBER'",
            [(GateKind.AUTHOR_ASSOCIATION, False)],
        ),
        (
            "github.event.pull_request.head.repo.full_name == github.repository",
            [(GateKind.SAME_REPOSITORY, True)],
        ),
        (
            "github.repository == github.event.pull_request.head.repo.full_name",
            [(GateKind.SAME_REPOSITORY, True)],
        ),
        ("${{ !github.event.pull_request.head.repo.fork }}", [(GateKind.SAME_REPOSITORY, True)]),
        ("github.event.pull_request.head.repo.fork == false", [(GateKind.SAME_REPOSITORY, True)]),
        ("github.event.pull_request.merged == true", [(GateKind.MERGED, True)]),
        ("github.event.pull_request.merged", [(GateKind.MERGED, True)]),
        ("github.event.label.name == 'safe to test'", [(GateKind.LABEL, True)]),
        # A label on the pull request stays while its author pushes more commits.
        (
            "contains(github.event.pull_request.labels.*.name, 'safe to test')",
            [(GateKind.LABEL, False)],
        ),
        ("github.event.workflow_run.event == 'push'", [(GateKind.NOT_PULL_REQUEST, True)]),
        ("github.event.workflow_run.event != 'pull_request'", [(GateKind.NOT_PULL_REQUEST, True)]),
        ("github.actor == 'octocat'", [(GateKind.ACTOR, True)]),
        ("github.actor == 'dependabot[bot]'", [(GateKind.ACTOR, False)]),
        ("github.event.pull_request.user.login == 'dependabot[bot]'", [(GateKind.ACTOR, True)]),
    ],
)
def test_condition_gates(condition: str, expected: list[tuple[GateKind, bool]]) -> None:
    assert kinds(gates_of(condition)) == expected


@pytest.mark.parametrize(
    "condition",
    [
        # Not gates: they let outsiders through.
        "github.event.pull_request.author_association != 'NONE'",
        "github.event.pull_request.author_association == 'CONTRIBUTOR'",
        'contains(fromJSON(\'["OWNER", "CONTRIBUTOR"]\'), github.event.comment.author_association)',
        "github.event.pull_request.head.repo.full_name != github.repository",
        "github.repository == 'octo-org/app'",
        "${{ !contains(github.event.pull_request.labels.*.name, 'skip') }}",
        "github.event.workflow_run.event == 'pull_request'",
        "github.event.workflow_run.conclusion == 'success'",
        "contains(github.event.comment.body, '/test')",
        # `a || gate` does not imply the gate.
        "github.event_name == 'push' || github.event.comment.author_association == 'OWNER'",
        # Text around the expression makes the condition always true.
        "${{ github.event.comment.author_association == 'OWNER' }} && true",
    ],
)
def test_not_gates(condition: str) -> None:
    assert gates_of(condition) == ()


def test_and_keeps_each_gate_and_or_needs_all() -> None:
    both = gates_of(
        "github.event.pull_request.head.repo.full_name == github.repository && "
        "github.event.pull_request.author_association == 'MEMBER'"
    )
    assert kinds(both) == [(GateKind.SAME_REPOSITORY, True), (GateKind.AUTHOR_ASSOCIATION, True)]
    either = gates_of(
        "github.event.comment.author_association == 'OWNER' || "
        "github.event.comment.author_association == 'MEMBER'"
    )
    assert kinds(either) == [(GateKind.AUTHOR_ASSOCIATION, True)] * 2
    # One weak branch makes the whole disjunction weak.
    mixed = gates_of(
        "github.event.comment.author_association == 'OWNER' || "
        "contains(github.event.issue.labels.*.name, 'ok')"
    )
    assert [gate.strong for gate in mixed] == [False, False]


def test_gate_messages_and_locations() -> None:
    (gate,) = gates_of("github.event.pull_request.author_association == 'OWNER'")
    assert gate.what == "job j's if: requires author_association OWNER"
    assert gate.anchor == "jobs.j.if"
    assert gate.location.line == 4
    text = describe((gate,))
    assert "requires author_association OWNER" in text and "confidence is lowered" in text
    assert describe(()) == ""


# --- Triggers, environments, permission checks, needs -----------------------------------------


def test_maintainer_only_trigger_types() -> None:
    wf = workflow(
        """\
        on:
          pull_request_target:
            types: [labeled]
        jobs:
          j:
            if: contains(github.event.pull_request.labels.*.name, 'ok')
            runs-on: ubuntu-latest
            steps:
              - run: make
        """
    )
    gates = job_gates(wf, wf.jobs["j"])
    assert kinds(gates) == [(GateKind.MAINTAINER_ACTIVITY, True), (GateKind.LABEL, True)]
    assert gates[0].anchor == "on.pull_request_target.types"


def test_trigger_types_count_only_when_every_event_has_them() -> None:
    wf = workflow(
        """\
        on:
          pull_request_target:
            types: [labeled]
          issue_comment:
        jobs:
          j:
            runs-on: ubuntu-latest
            steps:
              - run: make
        """
    )
    assert job_gates(wf, wf.jobs["j"]) == ()
    only = job_gates(wf, wf.jobs["j"], events=["pull_request_target"])
    assert kinds(only) == [(GateKind.MAINTAINER_ACTIVITY, True)]


def test_environment_is_a_weak_gate() -> None:
    wf = workflow(
        """\
        on: pull_request_target
        jobs:
          j:
            environment: external
            runs-on: ubuntu-latest
            steps:
              - run: make
        """
    )
    (gate,) = job_gates(wf, wf.jobs["j"])
    assert (gate.kind, gate.strong, gate.anchor) == (
        GateKind.ENVIRONMENT,
        False,
        "jobs.j.environment",
    )


def test_permission_check_steps_before_the_step() -> None:
    wf = workflow(
        """\
        on: issue_comment
        jobs:
          j:
            runs-on: ubuntu-latest
            steps:
              - run: make early
              - uses: prince-chrismc/check-actor-permissions-action@v3
                with:
                  permission: write
              - run: make test
              - uses: actions-cool/check-user-permission@v2
        """
    )
    job = wf.jobs["j"]
    early, check, test, _ = job.steps
    assert job_gates(wf, job, step=early) == ()
    assert kinds(job_gates(wf, job, step=test)) == [(GateKind.ACTOR_PERMISSION, True)]
    # The whole job: every check counts, the one that only sets an output is weak.
    assert kinds(job_gates(wf, job)) == [
        (GateKind.ACTOR_PERMISSION, True),
        (GateKind.ACTOR_PERMISSION, False),
    ]
    assert check.uses is not None


def test_continue_on_error_makes_a_failing_check_weak() -> None:
    wf = workflow(
        """\
        on: issue_comment
        jobs:
          j:
            runs-on: ubuntu-latest
            steps:
              - uses: prince-chrismc/check-actor-permissions-action@v3
                continue-on-error: true
        """
    )
    assert kinds(job_gates(wf, wf.jobs["j"])) == [(GateKind.ACTOR_PERMISSION, False)]


def test_api_permission_checks_in_scripts_are_weak() -> None:
    wf = workflow(
        """\
        on: issue_comment
        jobs:
          j:
            runs-on: ubuntu-latest
            steps:
              - run: gh api "repos/$REPO/collaborators/$ACTOR/permission" --jq .permission
              - uses: actions/github-script@v7
                with:
                  script: await github.rest.repos.getCollaboratorPermissionLevel({})
        """
    )
    assert kinds(job_gates(wf, wf.jobs["j"])) == [(GateKind.ACTOR_PERMISSION, False)] * 2


def test_needed_jobs_gate_unless_the_job_runs_anyway() -> None:
    wf = workflow(
        """\
        on: issue_comment
        jobs:
          authorize:
            if: github.event.comment.author_association == 'MEMBER'
            runs-on: ubuntu-latest
            steps:
              - run: true
          build:
            needs: authorize
            runs-on: ubuntu-latest
            steps:
              - run: make
          report:
            needs: build
            if: always()
            runs-on: ubuntu-latest
            steps:
              - run: make report
        """
    )
    (gate,) = job_gates(wf, wf.jobs["build"])
    assert gate.anchor == "jobs.authorize.if"
    assert "job authorize's if:" in gate.what
    assert job_gates(wf, wf.jobs["report"]) == ()


def test_step_if_gates_the_step() -> None:
    wf = workflow(
        """\
        on: pull_request_target
        jobs:
          j:
            runs-on: ubuntu-latest
            steps:
              - name: Build
                if: github.event.pull_request.head.repo.full_name == github.repository
                run: make
        """
    )
    job = wf.jobs["j"]
    (gate,) = job_gates(wf, job, step=job.steps[0])
    assert gate.what == "step 'Build''s if: excludes forks"
    assert gate.anchor == "jobs.j.steps[0].if"


# --- Confidence -------------------------------------------------------------------------------


def test_gated_confidence() -> None:
    strong = gates_of("github.event.pull_request.merged")
    weak = gates_of("contains(github.event.pull_request.labels.*.name, 'ok')")
    assert gated_confidence(Confidence.HIGH, ()) is Confidence.HIGH
    assert gated_confidence(Confidence.HIGH, strong) is Confidence.LOW
    assert gated_confidence(Confidence.HIGH, weak) is Confidence.MEDIUM
    assert gated_confidence(Confidence.MEDIUM, weak) is Confidence.LOW
    assert gated_confidence(Confidence.LOW, weak) is Confidence.LOW


# --- Events -----------------------------------------------------------------------------------


EVENTS_WORKFLOW = """\
on: [push, pull_request, pull_request_target, issue_comment]
jobs:
  push-only:
    if: github.event_name == 'push'
    runs-on: ubuntu-latest
    steps:
      - run: make
  not-target:
    if: ${{ github.event_name != 'pull_request_target' && github.ref == 'refs/heads/main' }}
    runs-on: ubuntu-latest
    steps:
      - run: make
  listed:
    if: contains(fromJSON('["push", "issue_comment"]'), github.event_name)
    runs-on: ubuntu-latest
    steps:
      - run: make
  negated:
    if: "!(github.event_name == 'push' || github.event_name == 'pull_request')"
    runs-on: ubuntu-latest
    steps:
      - run: make
  unknown:
    if: github.event.comment.body == '/go'
    runs-on: ubuntu-latest
    steps:
      - run: make
  after-push-only:
    needs: push-only
    runs-on: ubuntu-latest
    steps:
      - run: make
  always-after:
    needs: push-only
    if: always()
    runs-on: ubuntu-latest
    steps:
      - if: github.event_name == 'issue_comment'
        run: make
"""


@pytest.mark.parametrize(
    ("job", "events"),
    [
        ("push-only", {"push"}),
        ("not-target", {"push", "pull_request", "issue_comment"}),
        ("listed", {"push", "issue_comment"}),
        ("negated", {"pull_request_target", "issue_comment"}),
        ("unknown", {"push", "pull_request", "pull_request_target", "issue_comment"}),
        ("after-push-only", {"push"}),
        ("always-after", {"push", "pull_request", "pull_request_target", "issue_comment"}),
    ],
)
def test_job_events(job: str, events: set[str]) -> None:
    wf = workflow(EVENTS_WORKFLOW)
    assert job_events(wf, wf.jobs[job]) == events


def test_step_events() -> None:
    wf = workflow(EVENTS_WORKFLOW)
    job = wf.jobs["always-after"]
    assert step_events(wf, job, job.steps[0]) == {"issue_comment"}
