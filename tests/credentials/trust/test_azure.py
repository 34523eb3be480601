"""Azure federated identity credentials: plain, flexible, lists, malformed input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tollgate.credentials.trust import lint
from tollgate.credentials.trust.azure import parse_expression
from tollgate.errors import UsageError

ISSUER = "https://token.actions.githubusercontent.com"
AUD = ["api://AzureADTokenExchange"]


def credential(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "deploy", "issuer": ISSUER, "audiences": AUD}
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


def ids(document: object) -> list[str]:
    return [f.id for f in lint(json.dumps(document)).findings]


def test_exact_credential_list_and_graph_value() -> None:
    good = credential(subject="repo:octo-org/octo-repo:environment:production")
    assert ids(good) == []
    assert ids([good, good]) == []
    assert ids({"value": [good]}) == []
    assert lint(json.dumps(good)).cloud == "azure"


def test_each_credential_is_a_way_in() -> None:
    document = [
        credential(subject="repo:octo-org/octo-repo:environment:production"),
        credential(
            claimsMatchingExpression={
                "value": "claims['sub'] matches 'repo:*'",
                "languageVersion": 1,
            }
        ),
    ]
    result = lint(json.dumps(document))
    assert [(f.id, f.path) for f in result.findings] == [
        ("subject-other-owners", "[1].claimsMatchingExpression.value (character 1)")
    ]


def test_expression_and_or() -> None:
    clauses = parse_expression(
        "claims['sub'] eq 'a' and claims['job_workflow_ref'] matches 'o/w/*' or claims['sub'] eq 'b'",
        "expr",
        "src",
    )
    assert [[(c.claim, c.values, c.operator) for c in clause] for clause in clauses] == [
        [("sub", ("a",), "eq"), ("job_workflow_ref", ("o/w/*",), "matches")],
        [("sub", ("b",), "eq")],
    ]


def test_expression_alone_is_detected_as_azure() -> None:
    result = lint("claims['sub'] matches 'repo:octo-org/octo-repo:environment:*'")
    assert result.cloud == "azure"
    assert [f.id for f in result.findings] == ["subject-any-ref"]


@pytest.mark.parametrize(
    ("issuer", "flagged"),
    [
        (ISSUER, False),
        (ISSUER + "/", True),
        ("token.actions.githubusercontent.com", True),
        ("http://token.actions.githubusercontent.com", True),
        ("https://gitlab.com", False),
        ("https://gitlab.example.com/", True),
        ("https://gitlab.example.com", False),
    ],
)
def test_issuer_is_compared_exactly(issuer: str, flagged: bool) -> None:
    subject = (
        "repo:o/r:environment:production"
        if "github" in issuer
        else "project_path:g/p:ref_type:branch:ref:main"
    )
    found = ids(credential(issuer=issuer, subject=subject))
    assert ("wrong-issuer" in found) is flagged


def test_missing_subject_and_audience_are_findings() -> None:
    assert ids(credential(audiences=None)) == ["no-subject-condition", "no-audience-condition"]


def test_gitlab_subject_under_github_issuer() -> None:
    assert ids(credential(subject="project_path:g/p:ref_type:branch:ref:main")) == ["wrong-issuer"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (credential(issuer=None, subject="repo:o/r:pull_request"), "issuer: missing"),
        (credential(subject=5), "subject: expected a string"),
        (
            credential(subject="x", claimsMatchingExpression={"value": "claims['sub'] eq 'x'"}),
            "exactly one",
        ),
        (
            credential(claimsMatchingExpression={"value": "sub == 'x'"}),
            "character 1: expected claims",
        ),
        (
            credential(claimsMatchingExpression={"value": "claims['sub'] eq 'x' also"}),
            "'and' or 'or'",
        ),
        (
            credential(claimsMatchingExpression={"value": 5}),
            "claimsMatchingExpression.value: expected",
        ),
        (
            credential(subject="x", audiences="api://AzureADTokenExchange"),
            "audiences: expected a list",
        ),
        ([credential(subject="x"), 3], "[1]: expected a federated identity credential"),
    ],
)
def test_malformed_input(document: object, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        lint(json.dumps(document), source="fic.json", cloud="azure")
    assert message in caught.value.message
