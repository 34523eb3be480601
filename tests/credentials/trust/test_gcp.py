"""GCP workload identity providers: the CEL reader, regexes, mapping, malformed input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tollgate.credentials.trust import lint
from tollgate.credentials.trust.findings import Pattern
from tollgate.credentials.trust.gcp import parse_condition, regex_patterns
from tollgate.errors import UsageError

GOOD = "assertion.repository == 'octo-org/octo-repo' && assertion.ref == 'refs/heads/main'"


def clauses(text: str, mapping: dict[str, str] | None = None) -> list[list[tuple[str, list[str]]]]:
    """Each alternative as (claim, values) pairs; opaque parts as ('?', [text])."""
    result = []
    for constraints, opaque in parse_condition(text, mapping or {}):
        items = [(c.claim, list(c.values)) for c in constraints]
        items += [("?", [text]) for text in opaque]
        result.append(items)
    return result


def provider(condition: str | None, **oidc: Any) -> str:
    body: dict[str, Any] = {
        "name": "projects/1/locations/global/workloadIdentityPools/p/providers/gh",
        "attributeMapping": {"google.subject": "assertion.sub"},
        "oidc": {"issuerUri": "https://token.actions.githubusercontent.com", **oidc},
    }
    if condition is not None:
        body["attributeCondition"] = condition
    return json.dumps(body)


def test_and_binds_tighter_than_or() -> None:
    text = "assertion.a == '1' || assertion.b == '2' && assertion.c == '3'"
    assert clauses(text) == [[("a", ["1"])], [("b", ["2"]), ("c", ["3"])]]


def test_parentheses_distribute() -> None:
    text = "(assertion.a == '1' || assertion.a == '2') && assertion.c == '3'"
    assert clauses(text) == [[("a", ["1"]), ("c", ["3"])], [("a", ["2"]), ("c", ["3"])]]


def test_in_list_literal_on_either_side_and_string_quotes() -> None:
    text = "assertion.repository in [\"o/a\", 'o/b'] && 'refs/heads/main' == assertion[\"ref\"]"
    assert clauses(text) == [[("repository", ["o/a", "o/b"]), ("ref", ["refs/heads/main"])]]


def test_string_escapes() -> None:
    assert clauses(r"assertion.ref == 'it\'s'") == [[("ref", ["it's"])]]


def test_negations_and_inequalities_never_narrow() -> None:
    assert clauses("!(assertion.repository != 'o/r')") == [[]]
    assert clauses("assertion.repository != 'evil/x'") == [[]]
    assert "no-subject-condition" in [
        f.id for f in lint("!(assertion.repository != 'o/r')").findings
    ]


def test_boolean_literals() -> None:
    assert clauses("false || assertion.repository == 'o/r'") == [[("repository", ["o/r"])]]
    assert clauses("true && assertion.repository == 'o/r'") == [[("repository", ["o/r"])]]


def test_unknown_constructs_are_kept_as_opaque_terms() -> None:
    text = "assertion.repository == 'o/r' && (assertion.x ? true : false) && size(assertion.y) > 2"
    assert clauses(text) == [
        [
            ("repository", ["o/r"]),
            ("?", ["(assertion.x ? true : false)"]),
            ("?", ["size(assertion.y) > 2"]),
        ]
    ]


def test_attributes_resolve_through_the_mapping() -> None:
    mapping = {"google.subject": "assertion.sub", "attribute.repo": "assertion['repository']"}
    assert clauses("attribute.repo == 'o/r'", mapping) == [[("repository", ["o/r"])]]
    assert clauses("google.subject == 'repo:o/r:pull_request'", mapping) == [
        [("sub", ["repo:o/r:pull_request"])]
    ]
    # A computed mapping cannot be resolved: the term is opaque.
    computed = {"attribute.repo": "assertion.repository_owner + '/' + assertion.x"}
    assert clauses("attribute.repo == 'o/r'", computed) == [[("?", ["attribute.repo == 'o/r'"])]]
    # Without a mapping, attribute.X is assumed to be assertion.X.
    assert clauses("attribute.repository_owner == 'o'") == [[("repository_owner", ["o"])]]


def test_methods_become_patterns() -> None:
    parsed = parse_condition(
        "assertion.a.startsWith('x/') && assertion.b.endsWith('/y') && assertion.c.contains('z')"
        " && assertion.d.lower() == 'w'",
        {},
    )
    ((constraints, opaque),) = parsed
    assert [str(c.patterns[0]) for c in constraints] == ["x/*", "*/y", "*z*", "w"]
    assert [c.ignore_case for c in constraints] == [False, False, False, True]
    assert opaque == []


@pytest.mark.parametrize(
    ("regex", "globs"),
    [
        ("^octo-org/octo-repo$", ["octo-org/octo-repo"]),
        ("octo-org/octo-repo", ["*octo-org/octo-repo*"]),
        ("^octo-org/.*$", ["octo-org/*"]),
        (r"^octo-org/api\.v2$", ["octo-org/api.v2"]),
        ("^octo-org/(api|web)$", ["octo-org/*"]),
        ("^(octo-org/api|octo-org/web)$", ["octo-org/api", "octo-org/web"]),
        ("^(?:a/b)$", ["a/b"]),
        ("^octo-org/[a-z]+$", ["octo-org/*"]),
        ("^octo-org/app-?x$", ["octo-org/app*x"]),
        ("^a/b$|^c/d$", ["a/b", "c/d"]),
    ],
)
def test_regexes_become_covering_patterns(regex: str, globs: list[str]) -> None:
    assert [str(p) for p in regex_patterns(regex)] == globs


def test_covering_patterns_really_cover() -> None:
    # Whatever the regex matches, the pattern matches too (conservative).
    for regex, samples in [
        ("^octo-org/[a-z]+$", ["octo-org/api"]),
        ("^octo-org/app-?x$", ["octo-org/appx", "octo-org/app-x"]),
        ("org/repo", ["evil-org/repo-fork"]),
    ]:
        patterns = regex_patterns(regex)
        for sample in samples:
            assert any(p.matches(sample) for p in patterns), (regex, sample)
    assert not Pattern.glob("octo-org/api").matches("octo-org/api-evil")


def test_cel_only_and_json_string_inputs() -> None:
    assert lint(GOOD).cloud == "gcp"
    assert lint(GOOD).findings == ()
    assert lint(json.dumps(GOOD)).findings == ()


def test_provider_list_and_audiences() -> None:
    document = [
        json.loads(provider(GOOD)),
        json.loads(provider(GOOD, allowedAudiences=["sigstore"])),
    ]
    result = lint(json.dumps(document))
    assert [(f.id, f.path) for f in result.findings] == [
        ("shared-audience", "[1].oidc.allowedAudiences")
    ]


def test_gitlab_provider_by_issuer() -> None:
    text = json.dumps(
        {
            "attributeCondition": "assertion.namespace_path == 'my-group'",
            "oidc": {"issuerUri": "https://gitlab.example.com"},
        }
    )
    assert [f.id for f in lint(text).findings] == ["subject-any-ref", "subject-org-wide"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("assertion.repository ==", "character 24: the condition ends too early"),
        ("assertion.repository == 'o/r", "character 25: unexpected character"),
        ("assertion.repository # 'x'", "character 22: unexpected character"),
        ("(assertion.repository == 'o/r'", "expected ')'"),
        ("assertion.repository == 'o/r' 'x'", "character 31: unexpected \"'x'\""),
        (provider(None).replace('"oidc"', '"saml"'), "oidc: missing"),
        (provider(5), "attributeCondition: expected a CEL expression"),  # type: ignore[arg-type]
        (provider(GOOD, allowedAudiences="x"), "oidc.allowedAudiences: expected a list"),
        (provider(GOOD, issuerUri=None), "oidc.issuerUri"),
    ],
)
def test_malformed_input(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        lint(text, source="provider", cloud="gcp")
    assert message in caught.value.message
    assert caught.value.message.startswith("provider")
