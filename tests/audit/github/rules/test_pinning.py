"""unpinned-uses and unpinned-images: grading, the pinning policy, matrix and expression images."""

from __future__ import annotations

import pytest

from tollgate.audit.findings import Confidence, Finding, Persona, Severity
from tollgate.audit.github.model import Action, Workflow, load_action, load_workflow
from tollgate.audit.github.rules.pinning import UnpinnedImages, UnpinnedUses, needs_pin
from tollgate.audit.rules import AuditContext, PinningPolicy

SHA = "9f2c1b7e4d3a5f6e8b0c1d2e3f4a5b6c7d8e9f01"
DIGEST = "sha256:" + "77726ef6b57ddf65bb551896826ec38bc3e53f75cdde31354fbffb4f25238ebd"


def workflow(text: str) -> Workflow:
    result = load_workflow(".github/workflows/t.yml", text)
    assert isinstance(result, Workflow), result
    return result


def steps(*uses: str) -> Workflow:
    lines = "".join(f"      - uses: {u}\n" for u in uses)
    return workflow(f"on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n{lines}")


def uses_findings(wf: Workflow, policy: PinningPolicy | None = None) -> list[Finding]:
    context = AuditContext(pinning=policy or PinningPolicy())
    return list(UnpinnedUses().check_workflow(wf, context))


def image_findings(wf: Workflow) -> list[Finding]:
    return list(UnpinnedImages().check_workflow(wf, AuditContext(persona=Persona.AUDITOR)))


# --- unpinned-uses: grading ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "severity"),
    [
        ("someorg/tool@main", Severity.HIGH),
        ("someorg/tool@stable", Severity.HIGH),
        ("someorg/tool", Severity.HIGH),
        ("someorg/tool@v1", Severity.MEDIUM),
        ("someorg/tool@v1.2.3", Severity.MEDIUM),
        ("someorg/tool@release/v1", Severity.MEDIUM),
        ("someorg/tool@a1b2c3d", Severity.MEDIUM),
        ("actions/checkout@v4", Severity.LOW),
        ("github/codeql-action/init@v3", Severity.LOW),
        ("actions/checkout@main", Severity.MEDIUM),
        ("someorg/wf/.github/workflows/x.yml@main", Severity.HIGH),
        ("docker://alpine", Severity.HIGH),
        ("docker://alpine:latest", Severity.HIGH),
        ("docker://alpine:3.20", Severity.MEDIUM),
    ],
)
def test_grades(ref: str, severity: Severity) -> None:
    [finding] = uses_findings(steps(ref))
    assert finding.severity is severity
    assert finding.confidence is Confidence.HIGH
    assert finding.persona is Persona.REGULAR
    assert finding.evidence == ref
    assert finding.anchor == "jobs.j.steps[0].uses"
    assert finding.location.line == 6
    assert "SHA" in finding.message or "digest" in finding.message


@pytest.mark.parametrize(
    "ref",
    [
        f"someorg/tool@{SHA}",
        f"someorg/tool@{SHA.upper()}",
        "./.github/actions/setup",
        "$/.github/actions/setup",
        f"docker://alpine@{DIGEST}",
        f"docker://alpine:3.20@{DIGEST}",
        "${{ matrix.action }}",
    ],
)
def test_pinned_and_local_refs_are_quiet(ref: str) -> None:
    assert uses_findings(steps(ref)) == []


def test_reusable_workflow_call_is_anchored_on_the_job() -> None:
    wf = workflow("on: push\njobs:\n  call:\n    uses: someorg/wf/.github/workflows/r.yml@v1\n")
    [finding] = uses_findings(wf)
    assert finding.anchor == "jobs.call.uses"
    assert finding.location.line == 4 and finding.location.column == 11


def test_composite_action_steps() -> None:
    action = load_action(
        "action.yml",
        "name: a\ndescription: d\nruns:\n  using: composite\n  steps:\n"
        "    - uses: someorg/tool@v2\n    - uses: ./inner\n",
    )
    assert isinstance(action, Action)
    [finding] = UnpinnedUses().check_action(action, AuditContext())
    assert finding.anchor == "runs.steps[0].uses"
    assert finding.severity is Severity.MEDIUM


def test_slsa_generator_tag_is_an_auditor_note() -> None:
    wf = workflow(
        "on: push\njobs:\n  p:\n    uses: slsa-framework/slsa-github-generator/"
        ".github/workflows/generator_generic_slsa3.yml@v2.1.0\n"
    )
    [finding] = uses_findings(wf)
    assert (finding.severity, finding.persona) == (Severity.INFO, Persona.AUDITOR)


# --- unpinned-uses: the policy ---------------------------------------------------------------


def test_allow_ref_lets_actions_tags_through() -> None:
    wf = steps("actions/checkout@v4", "actions/cache/save@v4", "someorg/tool@v1")
    found = uses_findings(wf, PinningPolicy(allow_ref=("actions/*",)))
    assert [f.evidence for f in found] == ["someorg/tool@v1"]


def test_require_sha_only_for_some_owners() -> None:
    wf = steps("myorg/deploy@v1", "someorg/tool@v1", "MyOrg/Other@main")
    found = uses_findings(wf, PinningPolicy(require_sha=("myorg/*",)))
    assert [f.evidence for f in found] == ["myorg/deploy@v1", "MyOrg/Other@main"]


def test_allow_ref_wins_over_require_sha() -> None:
    policy = PinningPolicy(require_sha=("*",), allow_ref=("someorg/tool",))
    assert uses_findings(steps("someorg/tool@v1", "someorg/other@v1"), policy)[0].evidence == (
        "someorg/other@v1"
    )


def test_patterns_match_subpaths_and_image_names() -> None:
    policy = PinningPolicy(allow_ref=("github/codeql-action/*", "ghcr.io/myorg/*"))
    wf = steps(
        "github/codeql-action/init@v3",
        "docker://ghcr.io/myorg/tool:1.0",
        "docker://ghcr.io/other/tool:1.0",
    )
    assert [f.evidence for f in uses_findings(wf, policy)] == ["docker://ghcr.io/other/tool:1.0"]


def test_empty_require_sha_reports_nothing() -> None:
    assert uses_findings(steps("someorg/tool@main"), PinningPolicy(require_sha=())) == []


@pytest.mark.parametrize(
    ("names", "expected"),
    [(("actions/checkout",), False), (("someorg/x",), True), (("ACTIONS/x",), False)],
)
def test_needs_pin(names: tuple[str, ...], expected: bool) -> None:
    policy = PinningPolicy(allow_ref=("Actions/*",))
    assert needs_pin(policy, *(n.lower() for n in names)) is expected


# --- unpinned-images -------------------------------------------------------------------------


def job(container: str, extra: str = "") -> Workflow:
    return workflow(
        f"on: push\njobs:\n  t:\n{extra}    runs-on: ubuntu-latest\n"
        f"    container: {container}\n    steps:\n      - run: make\n"
    )


@pytest.mark.parametrize(
    ("image", "severity", "persona"),
    [
        ("node", Severity.HIGH, Persona.REGULAR),
        ("node:latest", Severity.HIGH, Persona.REGULAR),
        ("registry.example.com:5000/team/node", Severity.HIGH, Persona.REGULAR),
        ("node:20", Severity.MEDIUM, Persona.PEDANTIC),
        ("registry.example.com:5000/team/node:20", Severity.MEDIUM, Persona.PEDANTIC),
        ("ghcr.io/${{ github.repository_owner }}/node:latest", Severity.HIGH, Persona.REGULAR),
        ("${{ inputs.image }}", Severity.INFO, Persona.AUDITOR),
        ("ghcr.io/o/node:${{ inputs.tag }}", Severity.INFO, Persona.AUDITOR),
    ],
)
def test_image_grades(image: str, severity: Severity, persona: Persona) -> None:
    [finding] = image_findings(job(image))
    assert (finding.severity, finding.persona) == (severity, persona)
    assert finding.anchor == "jobs.t.container"


@pytest.mark.parametrize(
    "image",
    [f"node@{DIGEST}", f"node:20@{DIGEST}", f"${{{{ env.REGISTRY }}}}/node@{DIGEST}", "''"],
)
def test_pinned_images_are_quiet(image: str) -> None:
    assert image_findings(job(image)) == []


def test_matrix_values_are_reported_on_the_image_line() -> None:
    wf = job(
        "${{ matrix.cfg.image }}",
        "    strategy:\n      matrix:\n        cfg:\n          - {image: 'alpine:latest'}\n"
        f"          - {{image: 'alpine@{DIGEST}'}}\n"
        "        include:\n          - cfg: {image: 'debian:12'}\n",
    )
    found = image_findings(wf)
    assert [(f.evidence, f.severity) for f in found] == [
        ("alpine:latest", Severity.HIGH),
        ("debian:12", Severity.MEDIUM),
    ]
    assert {f.location.line for f in found} == {12}
    assert [f.related[0].line for f in found] == [7, 10]
    assert len({f.fingerprint() for f in found}) == 2


def test_unresolvable_matrix_is_info() -> None:
    wf = job("${{ matrix.image }}", "    strategy:\n      matrix: ${{ fromJSON(inputs.m) }}\n")
    [finding] = image_findings(wf)
    assert finding.severity is Severity.INFO


def test_expression_literals_are_medium_confidence() -> None:
    wf = job(
        "${{ inputs.gpu && 'ghcr.io/o/cuda:latest' || 'ghcr.io/o/cpu:1.2' }}",
    )
    [finding] = image_findings(wf)
    assert (finding.severity, finding.confidence) == (Severity.HIGH, Confidence.MEDIUM)
    assert finding.evidence == "ghcr.io/o/cuda:latest"


def test_comparison_operands_are_not_images() -> None:
    wf = job(
        "${{ inputs.image == 'pytorch/builder' && format('pytorch/builder:{0}', inputs.v) "
        "|| inputs.image }}"
    )
    [finding] = image_findings(wf)
    assert finding.severity is Severity.INFO


def test_services_and_docker_actions() -> None:
    wf = workflow(
        "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    services:\n"
        "      redis:\n        image: redis\n      db: postgres:16\n    steps: [{run: make}]\n"
    )
    found = image_findings(wf)
    assert [(f.anchor, f.severity) for f in found] == [
        ("jobs.t.services.redis.image", Severity.HIGH),
        ("jobs.t.services.db", Severity.MEDIUM),
    ]
    action = load_action(
        "action.yml", "name: a\ndescription: d\nruns:\n  using: docker\n  image: docker://alpine\n"
    )
    assert isinstance(action, Action)
    [finding] = UnpinnedImages().check_action(action, AuditContext())
    assert (finding.anchor, finding.severity) == ("runs.image", Severity.HIGH)
