"""Privileged triggers and secrets: what the fixture headers cannot say (related locations,
anchors, messages, one finding per workflow, the shell-command reader)."""

from __future__ import annotations

import textwrap

import pytest

from tollgate.audit.findings import Confidence, Finding, Persona, Severity
from tollgate.audit.github.model import Workflow, load_workflow
from tollgate.audit.github.rules import _scan
from tollgate.audit.github.rules._untrusted import pr_checkouts, run_command
from tollgate.audit.github.rules.secrets import SecretsInUntrustedJob, SecretsOutsideEnv
from tollgate.audit.github.rules.triggers import (
    ArtifactPoisoning,
    DangerousTriggers,
    UntrustedCheckout,
)
from tollgate.audit.rules import AuditContext, Rule, all_rules

MINE = (
    "dangerous-triggers",
    "untrusted-checkout",
    "artifact-poisoning",
    "secrets-inherit",
    "overprovisioned-secrets",
    "unredacted-secrets",
    "secrets-outside-env",
    "secrets-in-untrusted-job",
)


def workflow(text: str) -> Workflow:
    result = load_workflow(".github/workflows/t.yml", textwrap.dedent(text))
    assert isinstance(result, Workflow), result
    return result


def run(rule: Rule, text: str, persona: Persona = Persona.AUDITOR) -> list[Finding]:
    return list(rule.check_workflow(workflow(text), AuditContext(persona=persona)))


PWN = """\
on:
  issue_comment:
  pull_request_target:
jobs:
  build:
    if: github.event.pull_request.author_association == 'MEMBER'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: |
          echo building
          npm ci
        env:
          NPM_TOKEN: ${{ secrets.NPM_TOKEN }}
"""


def test_rule_metadata() -> None:
    for rule_id in MINE:
        info = all_rules()[rule_id].info
        assert info.help_uri == f"docs/rules/{rule_id}.md"
        assert info.summary.endswith(".")


def test_untrusted_checkout_points_at_the_run_and_relates_trigger_and_checkout() -> None:
    (finding,) = run(UntrustedCheckout(), PWN)
    assert (finding.severity, finding.confidence) == (Severity.CRITICAL, Confidence.LOW)
    assert finding.location.line == 12
    assert finding.anchor == "jobs.build.steps[1].run"
    assert finding.evidence == "${{ github.event.pull_request.head.sha }}"
    # The trigger that supplies the PR head (not issue_comment), then the checkout.
    assert [loc.line for loc in finding.related] == [3, 11]
    assert "npm ci" in finding.message
    assert "author_association MEMBER" in finding.message


def test_dangerous_triggers_reports_once_at_the_worst_trigger() -> None:
    (finding,) = run(DangerousTriggers(), PWN)
    assert finding.location.line == 3
    assert finding.anchor == "on.pull_request_target"
    assert finding.severity is Severity.HIGH
    assert "(also: issue_comment)" in finding.message
    assert finding.confidence is Confidence.LOW  # the author_association gate


def test_secrets_in_untrusted_job_names_the_secrets() -> None:
    (finding,) = run(SecretsInUntrustedJob(), PWN)
    assert finding.evidence == "secrets.NPM_TOKEN"
    assert finding.location.line == 16
    assert finding.related[0].line == 12


def test_gh_pr_checkout_is_a_checkout_only_for_privileged_events() -> None:
    text = """\
    on: [pull_request_target, pull_request_review]
    jobs:
      j:
        runs-on: ubuntu-latest
        steps:
          - if: github.event_name == 'pull_request_review'
            run: gh pr checkout 1
    """
    wf = workflow(text)
    job = wf.jobs["j"]
    assert pr_checkouts(wf, job, frozenset({"pull_request_target"})) == []


def test_env_variable_in_a_git_command() -> None:
    text = """\
    on: pull_request_target
    jobs:
      j:
        runs-on: ubuntu-latest
        env:
          HEAD: ${{ github.event.pull_request.head.sha }}
        steps:
          - uses: actions/checkout@v4
          - run: |
              git fetch origin "$HEAD"
              git checkout "$HEAD"
          - run: make
    """
    (finding,) = run(UntrustedCheckout(), text)
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence == 'git fetch origin "$HEAD"'
    assert finding.related[-1].line == 9


def test_artifact_poisoning_relates_the_download() -> None:
    text = """\
    on:
      workflow_run:
        workflows: [CI]
        types: [completed]
    jobs:
      j:
        runs-on: ubuntu-latest
        steps:
          - uses: actions/download-artifact@v4
            with:
              run-id: ${{ github.event.workflow_run.id }}
          - run: source ./env.sh
    """
    (finding,) = run(ArtifactPoisoning(), text)
    assert finding.location.line == 12
    assert [loc.line for loc in finding.related] == [2, 11]
    assert finding.evidence == "run-id: ${{ github.event.workflow_run.id }}"


def test_secrets_outside_env_is_for_auditors_only() -> None:
    text = """\
    on: push
    jobs:
      j:
        runs-on: ubuntu-latest
        steps:
          - run: ./deploy.sh
            env:
              A: ${{ secrets.A }}
              B: ${{ secrets.B }}
    """
    assert run(SecretsOutsideEnv(), text, Persona.REGULAR) == []
    (finding,) = run(SecretsOutsideEnv(), text)
    assert finding.evidence == "secrets.A, secrets.B"
    assert finding.anchor == "jobs.j"
    assert finding.persona is Persona.AUDITOR


# --- The secrets scan -------------------------------------------------------------------------


def test_scan_anchors_and_jobs() -> None:
    wf = workflow(
        """\
        on:
          workflow_call:
            secrets:
              TOKEN:
                required: true
        env:
          SHARED: ${{ secrets.SHARED }}
        jobs:
          j:
            runs-on: ubuntu-latest
            steps:
              - run: echo "${{ secrets.TOKEN }} ${{ secrets['other'] }} ${{ github.token }}"
              - env:
                  X: ${{ secrets.GITHUB_TOKEN }}
                run: true
        """
    )
    scan = _scan.scan(wf)
    assert [(u.name, u.site.anchor, u.site.job_id) for u in scan.secrets] == [
        ("SHARED", "env.SHARED", None),
        ("TOKEN", "jobs.j.steps[0].run", "j"),
        ("other", "jobs.j.steps[0].run", "j"),
    ]
    assert [u.name for u in scan.job_secrets(wf.jobs["j"])] == ["SHARED", "TOKEN", "other"]
    assert _scan.scan(wf) is scan  # kept for the next rule


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("x: ${{ toJSON(secrets) }}", True),
        ("x: ${{ secrets[matrix.name] }}", True),
        ("x: ${{ secrets.* }}", True),
        ("x: ${{ secrets.NAME }}", False),
        ("x: my_secrets_file", False),
    ],
)
def test_whole_context_hint(text: str, hint: bool) -> None:
    wf = workflow(f"on: push\nenv:\n  {text}\njobs: {{}}\n")
    assert _scan.whole_context_hint(wf) is hint


# --- Shell commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "path", "found"),
    [
        ("npm ci", "", "npm ci"),
        ("FOO=1 sudo ./build.sh --all", "", "./build.sh"),
        ("if true; then make; fi", "", "make"),
        ("for i in 1 2; do pytest; done", "", "pytest"),
        ("echo start \\\n  && yarn install", "", "yarn install"),
        ("pip install -r requirements.txt", "", "pip install -r"),
        ('uv pip install -e ".[test]"', "", "uv pip install -e"),
        ("python setup.py build", "", "python setup.py"),
        (". ./env.sh", "", ". ./env.sh"),
        # Not code from the working directory.
        ("pip install ruff", "", None),
        ("git diff -- ./src", "", None),
        ("PR=`cat ./NR`", "", None),
        ("echo source of truth", "", None),
        ('echo "\\`x\\`. Rebase or not"', "", None),
        ("# make test", "", None),
        # With a directory: only what runs from it.
        ("cd pr && npm ci", "pr", "npm ci"),
        ("make -C pr", "pr", "make"),
        ("npm ci --prefix pr", "pr", "npm ci"),
        ("python pr/tools/gen.py", "pr", "python pr/tools/gen.py"),
        ("pip install ./pr", "pr", "pip install ./"),
        ("python base/check.py pr/", "pr", None),
        ("uv run smokeshow upload pr", "pr", None),
        ("npm ci", "pr", None),
    ],
)
def test_run_command(script: str, path: str, found: str | None) -> None:
    assert run_command(script, path) == found


def test_inside_the_directory_a_program_from_elsewhere_is_not_its_code() -> None:
    assert run_command("python ../tools/unpack.py ../assets", "pr", inside=True) is None
    assert run_command("npm test", "pr", inside=True) == "npm test"
