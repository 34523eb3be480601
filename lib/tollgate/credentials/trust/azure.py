"""Azure (Entra) federated identity credentials, plain or flexible.

Accepts one credential (``{"issuer", "subject" | "claimsMatchingExpression", "audiences"}``,
as ``az ad app federated-credential show`` or Microsoft Graph return it), a list of them,
or Graph's ``{"value": [...]}`` list. Each credential is one alternative. Entra compares
``issuer``, ``subject`` and ``audiences`` exactly and case-sensitively (AADSTS700211/2/3,
7002138); a flexible credential's expression uses ``claims['X'] matches 'glob'`` or
``claims['X'] eq 'value'`` terms joined with ``and``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from tollgate.credentials.trust.findings import (
    Alternative,
    Constraint,
    MatchOp,
    Pattern,
    Severity,
    TrustFinding,
    TrustPolicy,
    finding,
    load_json,
    malformed,
)

__all__ = ["parse", "parse_expression"]

DEFAULT_AUDIENCE = "api://AzureADTokenExchange"
_AUDIENCE_HINT = f'set "audiences": ["{DEFAULT_AUDIENCE}"] and request that audience'
_TERM = re.compile(
    r"\s*claims\[\s*'(?P<claim>[^']+)'\s*\]\s+(?P<op>matches|eq)\s+"
    r"'(?P<value>(?:[^'\\]|\\.)*)'\s*",
    re.IGNORECASE,
)
_JOIN = re.compile(r"(and|or)\b", re.IGNORECASE)
_KNOWN_ISSUERS = {
    "token.actions.githubusercontent.com": "https://token.actions.githubusercontent.com",
    "gitlab.com": "https://gitlab.com",
}


def parse(text: str, source: str) -> TrustPolicy:
    """The credential(s) in ``text`` as a :class:`TrustPolicy`."""
    stripped = text.strip()
    if stripped.startswith("claims["):
        clauses = parse_expression(stripped, "claimsMatchingExpression", source)
        alternatives = tuple(Alternative(tuple(c), "claimsMatchingExpression") for c in clauses)
        return TrustPolicy("azure", alternatives)
    document = load_json(stripped, source)
    if isinstance(document, str):
        clauses = parse_expression(document, "claimsMatchingExpression", source)
        alternatives = tuple(Alternative(tuple(c), "claimsMatchingExpression") for c in clauses)
        return TrustPolicy("azure", alternatives)
    base = ""
    if isinstance(document, dict) and isinstance(document.get("value"), list):
        document, base = document["value"], "value"
    if isinstance(document, dict):
        credentials: list[tuple[str, object]] = [(base, document)]
    elif isinstance(document, list):
        credentials = [(f"{base}[{i}]", item) for i, item in enumerate(document)]
    else:
        raise malformed(source, base, "expected a federated identity credential (an object)")
    alternatives_list: list[Alternative] = []
    findings: list[TrustFinding] = []
    for path, credential in credentials:
        alternatives_list.extend(_credential(credential, path, source, findings))
    return TrustPolicy(
        "azure",
        tuple(alternatives_list),
        tuple(findings),
        missing_audience=Severity.HIGH,
        audience_hint=_AUDIENCE_HINT,
    )


def _credential(
    credential: object, path: str, source: str, findings: list[TrustFinding]
) -> list[Alternative]:
    if not isinstance(credential, dict):
        raise malformed(source, path, "expected a federated identity credential (an object)")
    issuer = _text(credential, "issuer", path, source, required=True)
    assert issuer is not None
    findings.extend(_issuer_findings(issuer, _join(path, "issuer")))
    subject = _text(credential, "subject", path, source)
    expression = credential.get("claimsMatchingExpression")
    if subject and expression:
        raise malformed(
            source,
            path,
            "has both subject and claimsMatchingExpression; Entra takes exactly one",
        )
    audiences = _audiences(credential, path, source)
    if subject:
        subject_path = _join(path, "subject")
        sub = Constraint("sub", (Pattern.literal(subject),), subject_path, "subject")
        return [Alternative((sub, *audiences), path or "$", issuer=issuer)]
    if expression is None:
        return [Alternative(audiences, path or "$", issuer=issuer)]
    expression_path = _join(path, "claimsMatchingExpression")
    if isinstance(expression, dict):
        value = expression.get("value")
        expression_path = _join(expression_path, "value")
    else:
        value = expression
    if not isinstance(value, str):
        raise malformed(source, expression_path, "expected the expression text")
    clauses = parse_expression(value, expression_path, source)
    for clause in clauses:
        findings.extend(_matches_findings(clause))
    return [Alternative((*clause, *audiences), path or "$", issuer=issuer) for clause in clauses]


def parse_expression(text: str, path: str, source: str) -> list[list[Constraint]]:
    """A flexible credential's expression as alternatives of constraints (``and`` first)."""
    clauses: list[list[Constraint]] = [[]]
    position = 0
    while True:
        match = _TERM.match(text, position)
        if match is None:
            raise malformed(
                source,
                path,
                f"cannot read the expression at character {position + 1}: expected "
                "claims['NAME'] matches 'VALUE' or claims['NAME'] eq 'VALUE'",
            )
        operator = match.group("op").lower()
        start = match.start() + len(match.group(0)) - len(match.group(0).lstrip()) + 1
        value = re.sub(r"\\(.)", r"\1", match.group("value"))
        glob = operator == "matches"
        clauses[-1].append(
            Constraint(
                match.group("claim"),
                (Pattern.glob(value) if glob else Pattern.literal(value),),
                f"{path} (character {start})",
                operator,
                MatchOp.GLOB if glob else MatchOp.EQUALS,
            )
        )
        position = match.end()
        if position >= len(text):
            return clauses
        join = _JOIN.match(text, position)
        if join is None:
            raise malformed(source, path, f"expected 'and' or 'or' at character {position + 1}")
        if join.group(1).lower() == "or":
            clauses.append([])
        position = join.end()


def _audiences(credential: Mapping[str, object], path: str, source: str) -> tuple[Constraint, ...]:
    value = credential.get("audiences")
    where = _join(path, "audiences")
    if value is None or value == []:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise malformed(source, where, "expected a list of audience strings")
    return (Constraint("aud", tuple(Pattern.literal(str(v)) for v in value), where, "audiences"),)


def _issuer_findings(issuer: str, path: str) -> list[TrustFinding]:
    text = issuer.strip()
    bare = re.sub(r"^[a-z]+://", "", text, flags=re.IGNORECASE).rstrip("/")
    expected = _KNOWN_ISSUERS.get(bare.lower())
    if expected is None:
        if text.endswith("/") or not text.lower().startswith("https://"):
            expected = "https://" + bare
        else:
            return []
    if text == expected:
        return []
    return [
        finding(
            "wrong-issuer",
            f"the issuer {issuer!r} is not what the tokens carry ({expected!r}): Entra "
            "compares it exactly, so this credential never matches (AADSTS700211)",
            path,
            Severity.LOW,
        )
    ]


def _matches_findings(clause: list[Constraint]) -> list[TrustFinding]:
    return [
        finding(
            "stringlike-without-wildcard",
            f"'matches' on {c.claim} with {c.values[0]!r}, which has no wildcard: use 'eq' "
            "(or a plain subject), so a wildcard added later cannot widen the trust unnoticed",
            c.path,
        )
        for c in clause
        if c.op is MatchOp.GLOB and all(p.is_exact for p in c.patterns)
    ]


def _text(
    credential: Mapping[str, object], key: str, path: str, source: str, *, required: bool = False
) -> str | None:
    value = credential.get(key)
    if value is None:
        if required:
            raise malformed(source, _join(path, key), "missing")
        return None
    if not isinstance(value, str):
        raise malformed(source, _join(path, key), "expected a string")
    return value


def _join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key
