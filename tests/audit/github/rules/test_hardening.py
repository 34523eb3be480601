"""excessive-permissions, artipacked, self-hosted-runner and cache-poisoning: what the fixture
headers cannot say (anchors, personas, messages, version comments, OIDC consumers)."""

from __future__ import annotations

import textwrap

import pytest

from tollgate.audit.findings import Confidence, Finding, Persona, Severity
from tollgate.audit.github.model import Action, Workflow, load_action, load_workflow
from tollgate.audit.github.rules.artipacked import Artipacked
from tollgate.audit.github.rules.cache import CachePoisoning
from tollgate.audit.github.rules.permissions import ExcessivePermissions
from tollgate.audit.github.rules.runners import SelfHostedRunner
from tollgate.audit.rules import AuditContext, Rule


def workflow(text: str) -> Workflow:
    result = load_workflow(".github/workflows/t.yml", textwrap.dedent(text))
    assert isinstance(result, Workflow), result
    return result


def run(rule: Rule, text: str, persona: Persona = Persona.AUDITOR) -> list[Finding]:
    return list(rule.check_workflow(workflow(text), AuditContext(persona=persona)))


def one_job(steps: str, permissions: str = "id-token: write") -> str:
    return (
        "on: push\npermissions: {}\njobs:\n  j:\n    runs-on: ubuntu-latest\n"
        f"    permissions:\n      {permissions}\n    steps:\n"
        + textwrap.indent(textwrap.dedent(steps), "      ")
    )


# --- excessive-permissions --------------------------------------------------------------------


@pytest.mark.parametrize(
    "steps",
    [
        "- uses: google-github-actions/auth@v2\n  with:\n    workload_identity_provider: x\n",
        "- uses: codecov/codecov-action@v5\n  with:\n    use_oidc: true\n",
        "- run: npm publish --provenance\n",
        "- run: uv publish\n",
        "- run: tollgate creds aws --role-arn arn:aws:iam::1:role/x\n",
        "- uses: octo-org/tollgate/actions/creds@v1\n",
        "- uses: actions/github-script@v7\n  with:\n    script: await core.getIDToken()\n",
        "- uses: sigstore/cosign-installer@v3\n",
        "- uses: Azure/login@v2\n",
    ],
)
def test_oidc_consumers(steps: str) -> None:
    assert run(ExcessivePermissions(), one_job(steps)) == []


def test_unused_id_token_confidence_depends_on_what_else_runs() -> None:
    (plain,) = run(ExcessivePermissions(), one_job("- uses: actions/checkout@v4\n- run: make\n"))
    assert (plain.confidence, plain.persona) == (Confidence.MEDIUM, Persona.REGULAR)
    assert plain.anchor == "jobs.j.permissions.id-token"
    # A third-party action might request the token: low, pedantic.
    (unknown,) = run(ExcessivePermissions(), one_job("- uses: some-org/deploy@v1\n"))
    assert (unknown.confidence, unknown.persona) == (Confidence.LOW, Persona.PEDANTIC)


def test_write_all_does_not_also_report_its_id_token() -> None:
    text = "on: push\npermissions: write-all\njobs:\n  j:\n    runs-on: x\n    steps:\n      - run: make\n"
    (finding,) = run(ExcessivePermissions(), text)
    assert (finding.severity, finding.anchor) == (Severity.HIGH, "permissions")


def test_shared_writes_are_regular_under_a_privileged_trigger() -> None:
    text = """\
    on: pull_request_target
    permissions:
      contents: read
      pull-requests: write
    jobs:
      a:
        runs-on: ubuntu-latest
        steps:
          - run: make a
      b:
        runs-on: ubuntu-latest
        steps:
          - run: make b
    """
    (finding,) = run(ExcessivePermissions(), text)
    assert (finding.persona, finding.location.line) == (Persona.REGULAR, 4)
    assert "a, b" in finding.message


# --- artipacked ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uses", "severity"),
    [
        ("actions/checkout@v4", Severity.HIGH),
        ("actions/checkout@v6.0.1", Severity.INFO),
        # A SHA pin: the version comes from the comment after it.
        ("actions/checkout@8e8c483db84b4bee98b60c0593521ed34d9990e8 # v6.0.1", Severity.INFO),
        ("actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2", Severity.HIGH),
    ],
)
def test_checkout_version_decides_whether_git_config_holds_the_token(
    uses: str, severity: Severity
) -> None:
    text = f"""\
    on: push
    jobs:
      j:
        runs-on: ubuntu-latest
        steps:
          - uses: {uses}
          - uses: actions/upload-artifact@v3
            with:
              path: .
    """
    (finding,) = run(Artipacked(), text)
    assert finding.severity is severity


def test_upload_relates_the_upload_step() -> None:
    text = """\
    on: push
    jobs:
      j:
        runs-on: ubuntu-latest
        steps:
          - uses: actions/checkout@v4
            with:
              path: src
          - uses: actions/upload-artifact@v4.3.0
            with:
              path: |
                src
                !src/tests
    """
    (finding,) = run(Artipacked(), text)
    assert (finding.severity, finding.confidence) == (Severity.HIGH, Confidence.HIGH)
    assert finding.anchor == "jobs.j.steps[0]"
    assert [loc.line for loc in finding.related] == [9]


def test_regular_persona_skips_plain_checkouts() -> None:
    text = "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: actions/checkout@v4\n"
    assert run(Artipacked(), text, Persona.REGULAR) == []
    (finding,) = run(Artipacked(), text, Persona.PEDANTIC)
    assert finding.persona is Persona.PEDANTIC


def test_composite_action() -> None:
    action = load_action(
        "action.yml",
        "name: a\nruns:\n  using: composite\n  steps:\n    - uses: actions/checkout@v4\n",
    )
    assert isinstance(action, Action)
    (finding,) = Artipacked().check_action(action, AuditContext())
    assert finding.anchor == "runs.steps[0]"


# --- self-hosted-runner -----------------------------------------------------------------------


def test_runner_label_from_an_expression() -> None:
    text = """\
    on: pull_request
    jobs:
      j:
        runs-on: ${{ github.repository == 'octo/app' && 'self-hosted' || 'ubuntu-latest' }}
        steps:
          - run: make
    """
    (finding,) = run(SelfHostedRunner(), text)
    assert finding.severity is Severity.HIGH
    assert finding.evidence == "self-hosted, ubuntu-latest"
    assert finding.anchor == "jobs.j.runs-on"


def test_regular_persona_only_hears_about_pull_request_reach() -> None:
    text = "on: push\njobs:\n  j:\n    runs-on: self-hosted\n    steps:\n      - run: make\n"
    assert run(SelfHostedRunner(), text, Persona.REGULAR) == []


# --- cache-poisoning --------------------------------------------------------------------------


def test_setup_node_v5_caches_by_default() -> None:
    text = """\
    on:
      push:
        tags: ['v*']
    jobs:
      publish:
        runs-on: ubuntu-latest
        steps:
          - uses: actions/setup-node@v5
          - run: npm publish
    """
    (finding,) = run(CachePoisoning(), text)
    assert "package-manager-cache" in finding.evidence
    assert finding.related[0].line == 9


def test_publishing_command_inside_a_retry_action() -> None:
    text = """\
    on: push
    jobs:
      release:
        runs-on: ubuntu-latest
        steps:
          - uses: actions/setup-go@v5
          - uses: nick-invision/retry@v3
            with:
              command: docker push ghcr.io/octo/app:latest
    """
    (finding,) = run(CachePoisoning(), text)
    assert finding.anchor == "jobs.release.steps[0]"


@pytest.mark.parametrize(
    ("runs_on", "expected"),
    [
        # The labels of a list belong to one runner: RunsOn's marker makes it a hosted service.
        ("[runs-on, runner=2cpu-linux-x64, image=ubuntu24-full-x64]", Severity.INFO),
        # An expression picks one of several runners: the worst counts.
        ("${{ matrix.os }}", Severity.LOW),
        ("macos-${{ matrix.version }}", None),
        ('${{ fromJSON(\'["self-hosted", "linux"]\') }}', Severity.LOW),
    ],
)
def test_runner_label_sets(runs_on: str, expected: Severity | None) -> None:
    text = f"""\
    on: push
    jobs:
      j:
        strategy:
          matrix:
            os: [ubuntu-latest, big-box]
            version: ['14', '15']
        runs-on: {runs_on}
        steps:
          - run: make
    """
    findings = run(SelfHostedRunner(), text)
    assert [f.severity for f in findings] == ([expected] if expected else [])
