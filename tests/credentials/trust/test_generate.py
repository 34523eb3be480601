"""Generated trust, and the policy table: lint across all three clouds.

Whatever `trust generate` prints must lint clean; the policy table in ``policies/`` holds
real-world-shaped documents, each with a sibling ``<name>.expect.json`` naming the checks
it must (or must not, or exactly) trigger and its exit status at the default threshold.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import jwt
from tollgate._cli import main
from tollgate.credentials.claims import TokenClaims, decode_claims
from tollgate.credentials.trust import generate as g
from tollgate.credentials.trust import lint
from tollgate.credentials.trust.findings import CHECKS, Constraint, RoleKind, Severity
from tollgate.credentials.trust.gcp import parse_condition
from tollgate.errors import UsageError

SPECS = {
    "github-branch": lambda: g.github_spec("octo-org/octo-repo", refs=("main",)),
    "github-tag-and-branches": lambda: g.github_spec(
        "octo-org/octo-repo", refs=("main", "refs/tags/v1.2.3", "release/2026")
    ),
    "github-environment": lambda: g.github_spec(
        "octo-org/octo-repo", environments=("production",), audience="my-audience"
    ),
    "github-immutable": lambda: g.github_spec(
        "octo-org/octo-repo",
        environments=("prod:eu",),
        owner_id="1000",
        repo_id="2000",
        immutable_subject=True,
    ),
    "github-enterprise-issuer": lambda: g.github_spec(
        "octo-org/octo-repo",
        refs=("main",),
        issuer="https://token.actions.githubusercontent.com/octo-enterprise",
    ),
    "gitlab-branch": lambda: g.gitlab_spec("my-group/sub/my-project", refs=("main",)),
    "gitlab-self-managed-tag": lambda: g.gitlab_spec(
        "my-group/my-project",
        refs=("refs/tags/v1",),
        gitlab_url="https://git.example.com/",
        project_id="72",
    ),
}


def kind_for(spec: g.TrustSpec) -> RoleKind:
    # The strictest kind the spec can satisfy: environments make it a production role.
    return RoleKind.PRODUCTION if spec.environments else RoleKind.DEPLOY


@pytest.mark.parametrize("name", sorted(SPECS))
def test_generated_trust_lints_clean(name: str) -> None:
    spec = SPECS[name]()
    outputs = {
        "aws": json.dumps(g.aws_policy(spec)),
        "gcp-cel": g.gcp_condition(spec),
        "gcp-provider": json.dumps(g.gcp_provider(spec)),
        "azure": json.dumps(g.azure_credentials(spec)),
    }
    if spec.platform == "gitlab":
        # GitLab subjects carry no environment: a protected branch is as good as it gets.
        assert not spec.environments
    for label, text in outputs.items():
        result = lint(text, role_kind=kind_for(spec))
        assert result.findings == (), (label, text, result.findings)
        assert result.cloud == label.split("-")[0]


def test_aws_policy_is_valid_json_with_string_equals_on_aud_and_sub(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(
        [
            "trust",
            "generate",
            "aws",
            "--repo",
            "octo-org/octo-repo",
            "--ref",
            "main",
            "--account-id",
            "111122223333",
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    document = json.loads(out)
    (statement,) = document["Statement"]
    assert document["Version"] == "2012-10-17"
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"] == (
        "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
    )
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
        }
    }


def test_generate_command_formats(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trust", "generate", "gcp", "--repo", "o/r", "--environment", "prod"]) == 0
    cel = capsys.readouterr().out
    assert cel == "assertion.repository == 'o/r' && assertion.environment == 'prod'\n"
    assert (
        main(["trust", "generate", "gcp", "--project", "g/p", "--ref", "main", "--format", "json"])
        == 0
    )
    provider = json.loads(capsys.readouterr().out)
    assert provider["oidc"] == {"issuerUri": "https://gitlab.com"}
    assert provider["attributeMapping"]["google.subject"] == "assertion.sub"
    assert main(["trust", "generate", "azure", "--repo", "o/r", "--environment", "prod"]) == 0
    single = json.loads(capsys.readouterr().out)
    assert single["subject"] == "repo:o/r:environment:prod"
    assert single["audiences"] == [g.AZURE_AUDIENCE]
    assert (
        main(["trust", "generate", "azure", "--repo", "o/r", "--ref", "main", "--ref", "dev"]) == 0
    )
    assert [c["subject"] for c in json.loads(capsys.readouterr().out)] == [
        "repo:o/r:ref:refs/heads/main",
        "repo:o/r:ref:refs/heads/dev",
    ]


def test_aws_placeholder_account_is_announced(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trust", "generate", "aws", "--project", "g/p", "--ref", "main"]) == 0
    out, err = capsys.readouterr()
    assert "arn:aws:iam::ACCOUNT_ID:oidc-provider/gitlab.com" in out
    assert "replace ACCOUNT_ID" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["aws", "--repo", "o/r"], "name the ref or environment"),
        (["aws", "--repo", "o/*", "--ref", "main"], "is not OWNER/REPO"),
        (["aws", "--repo", "o/r", "--ref", "main", "--environment", "prod"], "never both"),
        (["aws", "--project", "g/p", "--environment", "prod"], "carries no environment"),
        (["azure", "--project", "g/p", "--environment", "prod"], "carries no environment"),
        (["aws", "--repo", "o/r", "--ref", "refs/pull/1/merge"], "neither refs/heads"),
        (["aws", "--repo", "o/r", "--ref", "feature/*"], "not an exact branch"),
        (["aws", "--repo", "o/r", "--ref", "main", "--account-id", "12"], "12 digits"),
        (["aws", "--repo", "o/r", "--ref", "main", "--format", "cel"], "gcp only"),
        (["gcp", "--repo", "o/r", "--ref", "main", "--account-id", "111122223333"], "aws only"),
        (["aws", "--repo", "o/r", "--ref", "main", "--immutable-subject"], "needs both IDs"),
        (["aws", "--repo", "o/r", "--ref", "main", "--repo-id", "x1"], "must be a number"),
        (["aws", "--project", "g/p", "--ref", "main", "--repo-id", "1"], "for --repo"),
        (["aws", "--repo", "o/r", "--ref", "main", "--gitlab-url", "https://x"], "for --project"),
        (["aws", "--project", "g", "--ref", "main"], "not GROUP/PROJECT"),
        (["aws", "--project", "g/p", "--ref", "main", "--gitlab-url", "http://x"], "https://"),
        (["aws", "--repo", "o/r", "--ref", "main", "--audience", "*"], "not an exact audience"),
    ],
)
def test_generate_refuses_inexact_trust(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["trust", "generate", *args]) == 2
    assert message in capsys.readouterr().err


def test_subjects() -> None:
    spec = g.github_spec(
        "o/r", environments=("prod:eu",), owner_id="1", repo_id="2", immutable_subject=True
    )
    assert spec.subjects() == ("repo:o@1/r@2:environment:prod%3Aeu",)
    gitlab = g.gitlab_spec("g/s/p", refs=("main", "refs/tags/v1"))
    assert gitlab.subjects() == (
        "project_path:g/s/p:ref_type:branch:ref:main",
        "project_path:g/s/p:ref_type:tag:ref:v1",
    )


def test_azure_credential_names_are_valid() -> None:
    spec = g.github_spec("Octo-Org/my.repo_" + "r" * 90, refs=("feature/x.y",))
    (credential,) = g.azure_credentials(spec)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{2,119}", str(credential["name"]))


def test_cel_quotes_values() -> None:
    spec = g.github_spec("o/r", refs=("it's",))
    condition = g.gcp_condition(spec)
    assert condition == r"assertion.repository == 'o/r' && assertion.ref == 'refs/heads/it\'s'"
    ((constraints, _),) = parse_condition(condition, {})
    assert constraints[1].values == ("refs/heads/it's",)


# Conditions for a real token


def github_token_claims(**overrides: Any) -> TokenClaims:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "https://token.actions.githubusercontent.com",
        "sub": "repo:octo-org/octo-repo:environment:production",
        "aud": "sts.amazonaws.com",
        "repository": "octo-org/octo-repo",
        "repository_id": "2000",
        "repository_owner": "octo-org",
        "repository_owner_id": "1000",
        "ref": "refs/heads/main",
        "environment": "production",
        "run_attempt": "1",
        "iat": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return decode_claims(jwt.sign(claims))


def accepts(constraints: list[Constraint], claims: TokenClaims) -> bool:
    for constraint in constraints:
        value = claims.get(constraint.claim)
        if value is None or not any(
            p.matches(value, ignore_case=constraint.ignore_case) for p in constraint.patterns
        ):
            return False
    return True


def test_token_conditions_match_the_token_and_lint_clean() -> None:
    claims = github_token_claims()
    conditions = g.token_conditions(claims)
    aws = conditions["aws"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", **aws}],
    }
    assert lint(json.dumps(policy), role_kind=RoleKind.PRODUCTION).findings == ()
    condition = conditions["gcp"]["attributeCondition"]
    assert isinstance(condition, str)
    alternatives = parse_condition(condition, {})
    assert any(accepts(c, claims) for c, _ in alternatives)
    # ... and a token from a look-alike repository does not get through.
    other = github_token_claims(repository="octo-org/octo-repo-fork", repository_id="3000")
    assert not any(accepts(c, other) for c, _ in alternatives)
    assert conditions["azure"] == {
        "issuer": "https://token.actions.githubusercontent.com",
        "subject": "repo:octo-org/octo-repo:environment:production",
        "audiences": ["sts.amazonaws.com"],
    }
    assert lint(json.dumps(conditions["azure"]), role_kind=RoleKind.PRODUCTION).findings == ()


def test_token_conditions_keep_a_customized_subject_verbatim() -> None:
    sub = "repo:octo-org/octo-repo:environment:production:job_workflow_ref:octo-org/w/.github/workflows/d.yml@refs/heads/main"
    conditions = g.token_conditions(github_token_claims(sub=sub))
    statement = conditions["aws"]["Condition"]
    assert isinstance(statement, dict)
    assert statement["StringEquals"]["token.actions.githubusercontent.com:sub"] == sub


def test_no_conditions_without_sub_or_iss() -> None:
    assert g.token_conditions(TokenClaims(iss="https://x")) == {}
    assert g.spec_from_claims(TokenClaims(sub="x", iss="https://unknown.example")) is None


def test_spec_validation_errors_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        g.github_spec("o/r")
    with pytest.raises(UsageError):
        g.aws_policy(g.github_spec("o/r", refs=("main",)), account_id="abc")


# The policy table

POLICIES = Path(__file__).parent / "policies"
CASES = sorted(p for p in POLICIES.iterdir() if not p.name.endswith(".expect.json"))


def expectation(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.with_name(path.stem + ".expect.json").read_text())
    return data


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_policy_table(path: Path) -> None:
    expect = expectation(path)
    assert expect["description"]
    result = lint(
        path.read_text(), source=path.name, role_kind=RoleKind(expect.get("role", "auto"))
    )
    found = [f.id for f in result.findings]
    assert result.cloud == expect["cloud"]
    if "exactly" in expect:
        assert sorted(found) == sorted(expect["exactly"]), result.findings
    else:
        assert not set(expect["must"]) - set(found), result.findings
        assert not set(expect["must_not"]) & set(found), result.findings
    assert int(result.fails(Severity.MEDIUM)) == expect["exit"], result.findings
    for finding in result.findings:
        assert finding.path and "\n" not in finding.message and len(finding.message) > 40


def test_policy_table_covers_every_check() -> None:
    assert len(CASES) >= 25
    triggered: set[str] = set()
    for path in CASES:
        expect = expectation(path)
        named = expect.get("exactly", []) + expect.get("must", []) + expect.get("must_not", [])
        assert set(named) <= set(CHECKS), path.name
        triggered |= set(expect.get("exactly", expect.get("must", [])))
    assert triggered == set(CHECKS)
