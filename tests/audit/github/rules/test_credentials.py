"""hardcoded-secret and hardcoded-container-credentials: shapes, placeholders, redaction.

Token values are assembled at run time from harmless parts, so that no token-shaped string
sits in the source for secret scanners (and push protection) to trip on.
"""

from __future__ import annotations

import sys
from dataclasses import astuple

import pytest

from tollgate.audit.findings import Confidence, Finding, Severity
from tollgate.audit.github.model import Action, Workflow, load_action, load_workflow
from tollgate.audit.github.rules import credentials
from tollgate.audit.github.rules._places import redact
from tollgate.audit.github.rules.credentials import HardcodedContainerCredentials, HardcodedSecret
from tollgate.audit.rules import AuditContext

SEED = "Zq8Wv4Lm2Np6"


def body(length: int, seed: str = SEED) -> str:
    return (seed * (length // len(seed) + 1))[:length]


def workflow(text: str) -> Workflow:
    result = load_workflow(".github/workflows/t.yml", text)
    assert isinstance(result, Workflow), result
    return result


def secret_findings(text: str) -> list[Finding]:
    return list(HardcodedSecret().check_workflow(workflow(text), AuditContext()))


def in_env(value: str) -> str:
    return (
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n"
        f"      - run: make\n        env:\n          VALUE: '{value}'\n"
    )


def assert_never_shown(finding: Finding, value: str) -> None:
    """The secret is in no field of the finding (nor in part: a 12-character slice)."""
    shown = repr(astuple(finding))
    assert value not in shown
    for start in range(0, len(value) - 12, 4):
        assert value[start : start + 12] not in shown, value[start : start + 12]


AWS_ID = "AK" + "IA" + "QZ7RT4WX9KLM2NPV"
AWS_SECRET = body(40, "Hq3Zr8Tw2Ly6Mp4Kd9Vb/Nc5Xf+")

TOKENS = {
    "GitHub token": "gh" + "p_" + body(36),
    "GitHub token (app)": "gh" + "s_" + body(36, "Rt5Yh7Ub3Kc9"),
    "GitHub fine-grained token": "github_" + "pat_" + body(22) + "_" + body(59),
    "GitLab token": "gl" + "pat-" + body(20),
    "Slack token": "xo" + "xb-" + "2741983-8421907431-" + body(24),
    "Slack webhook URL": "https://hooks." + "slack.com/services/T0A1B2C3D/B4E5F6G7H/" + body(24),
    "Google API key": "AI" + "za" + body(35, "Sy7Qp3Rt9Wk2Lm5Nx8"),
    "npm token": "np" + "m_" + body(36, "Hb6Jd2Fs8Qk4"),
    "PyPI token": "pypi-" + "AgEIcHlwaS5vcmc" + body(60, "CJDk3Lm9Qw2Er7Ty"),
}


@pytest.mark.parametrize("kind", sorted(TOKENS))
def test_each_shape_is_found_and_redacted(kind: str) -> None:
    value = TOKENS[kind]
    [finding] = secret_findings(in_env(value))
    assert finding.evidence.startswith(kind.split(" (")[0])
    assert (finding.severity, finding.confidence) == (Severity.HIGH, Confidence.HIGH)
    assert finding.anchor == "jobs.j.steps[0].env.VALUE"
    assert finding.location.line == 8
    assert_never_shown(finding, value)


def test_aws_key_pair_is_high_and_both_halves_are_redacted() -> None:
    text = (
        "on: push\nenv:\n"
        f"  AWS_ACCESS_KEY_ID: {AWS_ID}\n  AWS_SECRET_ACCESS_KEY: {AWS_SECRET}\n"
        "jobs: {}\n"
    )
    [finding] = secret_findings(text)
    assert finding.severity is Severity.HIGH
    assert "pair" in finding.evidence and "secret key" in finding.evidence
    assert finding.location.line == 3 and finding.location.column == 22
    assert_never_shown(finding, AWS_ID)
    assert_never_shown(finding, AWS_SECRET)


def test_aws_key_id_alone_is_medium() -> None:
    [finding] = secret_findings(in_env(AWS_ID))
    assert finding.severity is Severity.MEDIUM
    assert_never_shown(finding, AWS_ID)


def test_private_key_needs_material() -> None:
    begin = "-----BEGIN " + "RSA PRIVATE KEY-----"
    end = "-----END " + "RSA PRIVATE KEY-----"
    material = [body(64, "VGhpcyBpcyBub3QgYSBrZXk"), body(64, "bm90IGEga2V5IGF0IGFsbA")]
    block = "\n".join(f"          {line}" for line in (begin, *material, end))
    text = (
        f"on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - run: |\n{block}\n"
    )
    [finding] = secret_findings(text)
    assert finding.evidence == "RSA private key (128 chars of key material)"
    assert finding.message.startswith("RSA private key (128 chars of key material) is written")
    assert finding.anchor == "jobs.j.steps[0].run"
    assert finding.location.line == 7
    for line in material:
        assert_never_shown(finding, line)
    template = (
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n"
        f"      - run: printf '%s\\n' '{begin}' \"${{{{ secrets.KEY }}}}\" '{end}'\n"
    )
    assert secret_findings(template) == []


@pytest.mark.parametrize(
    "value",
    [
        "AK" + "IAIOSFODNN7EXAMPLE",
        "gh" + "p_" + "x" * 36,
        "gh" + "p_" + "0" * 36,
        "gh" + "p_" + "01" * 18,
        "gh" + "p_" + body(20) + "example" + body(9),
        "xo" + "xb-your-token-here-1",
        "np" + "m_config_cache_directory_for_this_build",
        "gl" + "pat-short",
        "https://hooks." + "slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "${{ secrets.GH_TOKEN }}",
    ],
)
def test_placeholders_and_lookalikes_are_quiet(value: str) -> None:
    assert secret_findings(in_env(value)) == []


def test_a_token_inside_an_expression_is_quiet() -> None:
    token = TOKENS["GitHub token"]
    text = f"on: push\njobs:\n  j:\n    if: ${{{{ github.token != '{token}' }}}}\n    steps: []\n"
    assert secret_findings(text) == []


def test_boundaries() -> None:
    token = TOKENS["GitHub token"]
    assert secret_findings(in_env("x" + token)) == []
    assert secret_findings(in_env(token + "A")) == []
    assert len(secret_findings(in_env(f"{token} {TOKENS['npm token']}"))) == 2


def test_a_comment_is_anchored_to_the_file() -> None:
    token = TOKENS["GitLab token"]
    [finding] = secret_findings(f"# old: {token}\non: push\njobs: {{}}\n")
    assert finding.anchor == "(file)"
    assert (finding.location.line, finding.location.column) == (1, 8)


def test_actions_are_scanned() -> None:
    token = TOKENS["npm token"]
    action = load_action(
        "action.yml",
        "name: a\ndescription: d\nruns:\n  using: composite\n  steps:\n"
        f"    - run: npm publish\n      shell: bash\n      env:\n        T: {token}\n",
    )
    assert isinstance(action, Action)
    [finding] = HardcodedSecret().check_action(action, AuditContext())
    assert finding.anchor == "runs.steps[0].env.T"


def test_prefix_finder_without_ahocorasick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ahocorasick_rs", None)  # makes the import fail
    find = credentials._prefix_finder()
    text = in_env(TOKENS["GitHub token"])
    assert [credentials._PREFIXES[i] for i, _ in find(text)] == ["ghp_"]
    assert find("nothing here") == []


def test_redact() -> None:
    assert redact("AKIAQZ7RT4WX9KLM2NPV") == "AKIA…PV (20 chars)"
    assert redact("short-secret") == "… (12 chars)"


# --- hardcoded-container-credentials ---------------------------------------------------------


def container(password: str) -> Workflow:
    return workflow(
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    container:\n"
        "      image: registry.example.com/a:1\n      credentials:\n"
        f"        username: robot\n        password: {password}\n    steps: [{{run: make}}]\n"
    )


def test_literal_password() -> None:
    value = "correct-horse-battery-staple"
    [finding] = HardcodedContainerCredentials().check_workflow(container(value), AuditContext())
    assert (finding.severity, finding.confidence) == (Severity.HIGH, Confidence.HIGH)
    assert finding.anchor == "jobs.j.container.credentials.password"
    assert finding.location.line == 9
    assert finding.evidence == "password corr…le (28 chars)"
    assert_never_shown(finding, value)


@pytest.mark.parametrize(
    "password", ["${{ secrets.REGISTRY_PASSWORD }}", "$REGISTRY_PASSWORD", "${PASS}", "''"]
)
def test_not_literal_passwords(password: str) -> None:
    wf = container(password)
    assert list(HardcodedContainerCredentials().check_workflow(wf, AuditContext())) == []


def test_offsets_after_non_ascii_text() -> None:
    token = TOKENS["GitHub token"]
    [finding] = secret_findings(f"name: déploiement ✓\non: push\nenv:\n  T: {token}\njobs: {{}}\n")
    assert (finding.location.line, finding.location.column) == (4, 6)
    assert finding.anchor == "env.T"
