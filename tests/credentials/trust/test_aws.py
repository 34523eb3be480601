"""AWS IAM trust policies: reading them, their operators, and `tollgate trust lint` on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tollgate._cli import main
from tollgate.credentials.trust import lint
from tollgate.credentials.trust.findings import RoleKind, Severity
from tollgate.errors import UsageError

GH = "token.actions.githubusercontent.com"
PROVIDER = f"arn:aws:iam::111122223333:oidc-provider/{GH}"
GOOD_SUB = "repo:octo-org/octo-repo:ref:refs/heads/main"


def statement(condition: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Federated": PROVIDER},
        "Action": "sts:AssumeRoleWithWebIdentity",
    }
    if condition is not None:
        body["Condition"] = condition
    body.update(extra)
    return body


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def good() -> dict[str, Any]:
    return statement({"StringEquals": {f"{GH}:aud": "sts.amazonaws.com", f"{GH}:sub": GOOD_SUB}})


def ids(text: str, **kwargs: Any) -> list[str]:
    return [f.id for f in lint(text, **kwargs).findings]


def test_exact_policy_is_clean_and_detected_as_aws() -> None:
    result = lint(policy(good()))
    assert result.cloud == "aws"
    assert result.findings == ()
    assert result.worst() is None


def test_each_statement_is_a_way_in() -> None:
    wide = statement(
        {"StringEquals": {f"{GH}:aud": "sts.amazonaws.com"}, "StringLike": {f"{GH}:sub": "repo:*"}}
    )
    result = lint(policy(good(), wide))
    assert [(f.id, f.path) for f in result.findings] == [
        ("subject-other-owners", f"Statement[1].Condition.StringLike['{GH}:sub']")
    ]


def test_one_bad_value_in_a_list_is_enough() -> None:
    condition = {
        "StringEquals": {f"{GH}:aud": "sts.amazonaws.com"},
        "StringLike": {f"{GH}:sub": [GOOD_SUB, "repo:*"]},
    }
    assert "subject-other-owners" in ids(policy(statement(condition)))


def test_condition_keys_are_case_insensitive() -> None:
    condition = {
        "StringEquals": {
            "Token.Actions.GitHubUserContent.com:AUD": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:Sub": GOOD_SUB,
        }
    }
    assert ids(policy(statement(condition))) == []


def test_for_any_value_string_like_is_a_string_like() -> None:
    condition = {
        "StringEquals": {f"{GH}:aud": "sts.amazonaws.com"},
        "ForAnyValue:StringLike": {f"{GH}:sub": "repo:octo-org/*"},
    }
    assert "subject-org-wide" in ids(policy(statement(condition)))


def test_for_all_values_is_flagged() -> None:
    condition = {
        "StringEquals": {f"{GH}:aud": "sts.amazonaws.com"},
        "ForAllValues:StringEquals": {f"{GH}:sub": GOOD_SUB},
    }
    assert ids(policy(statement(condition))) == ["condition-fails-open"]


def test_negated_operators_do_not_count_as_restrictions() -> None:
    condition = {
        "StringEquals": {f"{GH}:aud": "sts.amazonaws.com"},
        "StringNotLike": {f"{GH}:sub": "repo:evil/*"},
    }
    assert ids(policy(statement(condition))) == ["no-subject-condition"]


def test_global_condition_keys_are_ignored() -> None:
    condition = {
        "StringEquals": {f"{GH}:aud": "sts.amazonaws.com", f"{GH}:sub": GOOD_SUB},
        "IpAddress": {"aws:SourceIp": "203.0.113.0/24"},
    }
    assert ids(policy(statement(condition))) == []


def test_principal_star_with_web_identity_is_checked() -> None:
    body = statement({"StringEquals": {f"{GH}:aud": "sts.amazonaws.com"}}, Principal="*")
    assert ids(policy(body)) == ["no-subject-condition"]


def test_not_action_that_keeps_web_identity_is_checked() -> None:
    body = statement(None)
    del body["Action"]
    body["NotAction"] = "sts:AssumeRole"
    assert "no-subject-condition" in ids(policy(body))


def test_action_wildcard_is_checked_and_other_actions_are_not() -> None:
    assert "no-subject-condition" in ids(policy(statement(None, Action="sts:*")))
    assert ids(policy(statement(None, Action="sts:AssumeRole"))) == ["no-oidc-trust"]


def test_get_role_output_names_the_role_for_role_kind() -> None:
    condition = {
        "StringEquals": {f"{GH}:aud": "sts.amazonaws.com", f"{GH}:sub": "repo:o/r:pull_request"}
    }
    document = {
        "Role": {
            "RoleName": "release-publisher",
            "AssumeRolePolicyDocument": json.loads(policy(statement(condition))),
        }
    }
    result = lint(json.dumps(document))
    assert result.role_kind is RoleKind.DEPLOY
    assert [(f.id, f.severity) for f in result.findings] == [
        ("pull-request-subject", Severity.HIGH)
    ]
    assert result.findings[0].path.startswith("Role.AssumeRolePolicyDocument.Statement[0]")
    # An explicit kind wins over the name.
    relaxed = lint(json.dumps(document), role_kind=RoleKind.READ_ONLY)
    assert [f.severity for f in relaxed.findings] == [Severity.INFO]


def test_url_encoded_document_from_the_raw_api() -> None:
    document = {"Role": {"RoleName": "ci", "AssumeRolePolicyDocument": quote(policy(good()))}}
    assert lint(json.dumps(document)).findings == ()


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"Version": "2012-10-17"', "not valid JSON"),
        (json.dumps({"Version": "2012-10-17"}), "Statement: missing"),
        (json.dumps({"Statement": "x"}), "Statement: expected a list"),
        (json.dumps({"Statement": [good(), 5]}), "Statement[1]: expected a statement"),
        (json.dumps({"Statement": [{"Effect": "Permit"}]}), "Statement[0].Effect"),
        (json.dumps({"Statement": [statement([])]}), "Statement[0].Condition: expected an object"),
        (
            json.dumps({"Statement": [statement({"StringLike": ["x"]})]}),
            "Statement[0].Condition.StringLike:",
        ),
        (
            json.dumps({"Statement": [statement({"StringEquals": {f"{GH}:sub": {"x": 1}}})]}),
            f"Statement[0].Condition.StringEquals['{GH}:sub']: expected a string",
        ),
        (json.dumps({"Statement": [statement(None, Principal=["x"])]}), "Statement[0].Principal"),
        ('{"Statement": [], "Statement": []}', "'Statement' appears twice"),
        (json.dumps({"Role": {"RoleName": "x"}}), "Role.AssumeRolePolicyDocument: missing"),
    ],
)
def test_malformed_input_names_the_path(text: str, where: str) -> None:
    with pytest.raises(UsageError) as caught:
        lint(text, source="policy.json", cloud="aws")
    assert caught.value.message.startswith("policy.json")
    assert where in caught.value.message


# The command


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["trust", "lint", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_lint_command_exit_statuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = tmp_path / "clean.json"
    clean.write_text(policy(good()))
    open_role = tmp_path / "open.json"
    open_role.write_text(policy(statement({"StringEquals": {f"{GH}:aud": "sts.amazonaws.com"}})))
    broken = tmp_path / "broken.json"
    broken.write_text('{"Statement": [')

    status, out, _ = run([str(clean)], capsys)
    assert status == 0 and "no findings" in out
    status, out, _ = run([str(open_role)], capsys)
    assert status == 1
    assert "CRITICAL  no-subject-condition  at Statement[0]" in out
    status, _, err = run([str(broken)], capsys)
    assert status == 2 and "broken.json: not valid JSON" in err


def test_lint_command_fail_on_ignore_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "like.json"
    path.write_text(
        policy(statement({"StringLike": {f"{GH}:aud": "sts.amazonaws.com", f"{GH}:sub": GOOD_SUB}}))
    )
    assert run([str(path)], capsys)[0] == 0  # low findings only
    assert run([str(path), "--fail-on", "low"], capsys)[0] == 1
    assert (
        run([str(path), "--fail-on", "low", "--ignore", "stringlike-without-wildcard"], capsys)[0]
        == 0
    )
    status, out, _ = run([str(path), "--format", "json"], capsys)
    report = json.loads(out)
    assert status == 0
    assert report[0]["cloud"] == "aws" and report[0]["fails"] is False
    assert {f["id"] for f in report[0]["findings"]} == {"stringlike-without-wildcard"}
    assert set(report[0]["findings"][0]) == {"id", "severity", "path", "message"}
    status, _, err = run([str(path), "--ignore", "no-such-check"], capsys)
    assert status == 2 and "no-such-check" in err


def test_lint_command_reads_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import sys

    stdin = io.TextIOWrapper(io.BytesIO(policy(good()).encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    status, out, _ = run(["-"], capsys)
    assert status == 0 and out.startswith("<stdin>: aws trust: no findings")
