"""AWS IAM role trust policies (``AssumeRoleWithWebIdentity`` from a CI OIDC provider).

Accepts the policy document itself, ``aws iam get-role`` output (``Role.RoleName`` then names
the role), or either with the document URL-encoded as the raw IAM API returns it. Each
``Allow`` statement for a federated OIDC provider becomes one alternative; its condition
keys ``<provider>:sub`` and ``<provider>:aud`` become constraints. IAM evaluates no other
claim of a CI token ("Support for custom claims for OIDC is unavailable in AWS", GitHub's
AWS guide); a condition on one fails closed unless ``...IfExists`` lets it pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import unquote

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
    show_values,
)

__all__ = ["parse"]

_PROVIDER_ARN = re.compile(r"arn:aws[a-z-]*:iam::[^:]*:oidc-provider/(?P<provider>.+)\Z")
_WEB_IDENTITY = "sts:assumerolewithwebidentity"
_OIDC_KEYS = frozenset({"sub", "aud", "amr", "azp", "email", "oaud"})
# Prefixes of condition keys that are not claims of the token.
_GLOBAL_PREFIXES = frozenset({"aws", "sts", "iam"})
_AUDIENCE_HINT = (
    'add "StringEquals": {"%s:aud": "sts.amazonaws.com"} (the IAM OIDC provider\'s '
    "client ID list is shared by every role that trusts it)"
)


def parse(text: str, source: str) -> TrustPolicy:
    """The trust policy in ``text`` as a :class:`TrustPolicy` (``UsageError`` if malformed)."""
    document, base, role_name = _policy_document(load_json(text, source), source)
    statements = document.get("Statement")
    if statements is None:
        raise malformed(source, _join(base, "Statement"), "missing: a policy needs statements")
    if isinstance(statements, dict):
        items: list[tuple[str, object]] = [(_join(base, "Statement"), statements)]
    elif isinstance(statements, list):
        items = [(f"{_join(base, 'Statement')}[{i}]", s) for i, s in enumerate(statements)]
    else:
        raise malformed(source, _join(base, "Statement"), "expected a list of statements")
    alternatives: list[Alternative] = []
    findings: list[TrustFinding] = []
    for path, statement in items:
        _statement(statement, path, source, alternatives, findings)
    if not alternatives:
        findings.append(
            finding(
                "no-oidc-trust",
                "no Allow statement lets an OIDC provider call sts:AssumeRoleWithWebIdentity, "
                "so there is no CI trust here to check",
                _join(base, "Statement"),
            )
        )
    provider = next((a.issuer for a in alternatives if a.issuer), "PROVIDER")
    return TrustPolicy(
        cloud="aws",
        alternatives=tuple(alternatives),
        findings=tuple(findings),
        role_name=role_name,
        missing_audience=Severity.MEDIUM,
        audience_hint=_AUDIENCE_HINT % _host(provider),
    )


def _policy_document(document: object, source: str) -> tuple[Mapping[str, object], str, str | None]:
    """The policy, the JSON path it sits at, and the role's name when the input has it."""
    base = ""
    role_name = None
    if isinstance(document, dict) and isinstance(document.get("Role"), dict):
        role = document["Role"]
        name = role.get("RoleName")
        role_name = name if isinstance(name, str) else None
        document = role.get("AssumeRolePolicyDocument")
        base = "Role.AssumeRolePolicyDocument"
        if document is None:
            raise malformed(source, base, "missing")
    elif isinstance(document, dict) and "AssumeRolePolicyDocument" in document:
        document = document["AssumeRolePolicyDocument"]
        base = "AssumeRolePolicyDocument"
    if isinstance(document, str):
        # The raw IAM API returns the document URL-encoded.
        try:
            document = json.loads(unquote(document))
        except json.JSONDecodeError as error:
            raise malformed(source, base, f"not a JSON policy document: {error.msg}") from None
    if not isinstance(document, dict):
        raise malformed(source, base, "expected a policy document (a JSON object)")
    return document, base, role_name


def _statement(
    statement: object,
    path: str,
    source: str,
    alternatives: list[Alternative],
    findings: list[TrustFinding],
) -> None:
    if not isinstance(statement, dict):
        raise malformed(source, path, "expected a statement (a JSON object)")
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise malformed(source, f"{path}.Effect", 'expected "Allow" or "Deny"')
    if effect == "Deny" or not _allows_web_identity(statement, path, source):
        return  # a Deny only narrows; other actions are not OIDC trust
    condition = statement.get("Condition", {})
    if not isinstance(condition, dict):
        raise malformed(source, f"{path}.Condition", "expected an object of operators")
    for operator, block in condition.items():
        if not isinstance(block, dict):
            raise malformed(
                source, f"{path}.Condition.{operator}", "expected an object of condition keys"
            )
    providers = _providers(statement.get("Principal"), f"{path}.Principal", source)
    if not providers:
        return
    for provider in providers:
        constraints = _constraints(condition, provider, f"{path}.Condition", source, findings)
        alternatives.append(
            Alternative(
                tuple(constraints),
                path,
                issuer=f"https://{provider}" if provider != "*" else None,
            )
        )


def _allows_web_identity(statement: Mapping[str, object], path: str, source: str) -> bool:
    if "NotAction" in statement:
        excluded = _strings(statement["NotAction"], f"{path}.NotAction", source)
        return not any(Pattern.glob(a.lower()).matches(_WEB_IDENTITY) for a in excluded)
    if "Action" not in statement:
        raise malformed(source, path, "missing Action")
    actions = _strings(statement["Action"], f"{path}.Action", source)
    return any(Pattern.glob(a.lower()).matches(_WEB_IDENTITY) for a in actions)


def _providers(principal: object, path: str, source: str) -> list[str]:
    """The OIDC providers (host/path) a principal names; ``*`` stands for any."""
    if principal == "*":
        return ["*"]
    if not isinstance(principal, dict):
        raise malformed(source, path, 'expected "*" or an object such as {"Federated": ARN}')
    if principal.get("AWS") == "*":
        return ["*"]
    if "Federated" not in principal:
        return []
    providers = []
    for arn in _strings(principal["Federated"], f"{path}.Federated", source):
        match = _PROVIDER_ARN.match(arn)
        if match:
            providers.append(match.group("provider"))
    return providers


def _constraints(
    condition: Mapping[str, object],
    provider: str,
    path: str,
    source: str,
    findings: list[TrustFinding],
) -> list[Constraint]:
    constraints = []
    for operator, block in condition.items():
        where = f"{path}.{operator}"
        if not isinstance(block, dict):
            raise malformed(source, where, "expected an object of condition keys")
        for key, value in block.items():
            constraint = _constraint(operator, key, value, provider, f"{where}[{key!r}]", source)
            if constraint is None:
                continue
            findings.extend(_operator_findings(operator, constraint, provider))
            if constraint.claim in ("sub", "aud") or constraint.dead:
                constraints.append(constraint)
    return constraints


def _constraint(
    operator: str, key: str, value: object, provider: str, path: str, source: str
) -> Constraint | None:
    prefix, colon, claim = key.rpartition(":")
    if not colon or prefix.lower() in _GLOBAL_PREFIXES:
        return None
    base, if_exists, qualifier = _operator(operator)
    positive = base in ("StringEquals", "StringLike", "StringEqualsIgnoreCase")
    claim = claim.lower()
    same_provider = provider == "*" or prefix.lower() == provider.lower()
    # A positive condition on a key the request never has fails closed (IAM: "If the key
    # ... is not present in the request context, the values do not match"); IfExists and
    # ForAllValues turn that into a pass.
    fails_closed = positive and not if_exists and qualifier != "ForAllValues"
    values = _strings(value, path, source)
    if same_provider and claim in _OIDC_KEYS and claim not in ("sub", "aud"):
        return None  # amr, azp, email: standard claims that say nothing about the repository
    if not same_provider or claim not in _OIDC_KEYS:
        if not (positive or base.startswith("StringNot")):
            return None
        return Constraint(
            claim=f"{prefix}:{claim}",
            patterns=tuple(Pattern.literal(v) for v in values),
            path=path,
            operator=operator,
            dead=fails_closed,
        )
    if not positive:
        return None  # StringNot*, Null, ...: they exclude, they never admit less
    like = base == "StringLike"
    return Constraint(
        claim=claim,
        patterns=tuple(Pattern.glob(v) if like else Pattern.literal(v) for v in values),
        path=path,
        operator=operator,
        op=MatchOp.GLOB if like else MatchOp.EQUALS,
        ignore_case=base == "StringEqualsIgnoreCase",
    )


def _operator(operator: str) -> tuple[str, bool, str]:
    """``ForAnyValue:StringLikeIfExists`` -> (``StringLike``, True, ``ForAnyValue``)."""
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    if if_exists:
        base = base[: -len("IfExists")]
    return base, if_exists, qualifier


def _operator_findings(operator: str, constraint: Constraint, provider: str) -> list[TrustFinding]:
    found = []
    base, if_exists, qualifier = _operator(operator)
    if constraint.claim not in ("sub", "aud"):
        found.extend(_foreign_key_finding(constraint, provider))
        return found
    if base == "StringLike" and all(p.is_exact for p in constraint.patterns):
        found.append(
            finding(
                "stringlike-without-wildcard",
                f"StringLike on {constraint.claim} with {show_values(constraint.values)}, which has "
                "no wildcard: use StringEquals, so that a '*' or '?' added later (or a '?' "
                "already meant literally) cannot widen the trust unnoticed",
                constraint.path,
            )
        )
    if if_exists or qualifier == "ForAllValues":
        found.append(
            finding(
                "condition-fails-open",
                f"{operator} passes when the request has no {constraint.claim} at all "
                f"({'IfExists' if if_exists else 'ForAllValues on an empty set'}); write "
                f"plain {base} for a claim every token carries",
                constraint.path,
            )
        )
    return found


def _foreign_key_finding(constraint: Constraint, provider: str) -> list[TrustFinding]:
    prefix, _, claim = constraint.claim.rpartition(":")
    effect = (
        "this statement never matches (the key is absent, so the condition fails)"
        if constraint.dead
        else "the condition is skipped (it passes when the key is absent)"
    )
    if provider != "*" and prefix.lower() != provider.lower():
        return [
            finding(
                "wrong-issuer",
                f"the condition key {constraint.claim!r} belongs to the OIDC provider "
                f"{prefix!r}, but the statement trusts {provider!r}: {effect}. Use "
                f"'{provider}:sub' and '{provider}:aud', or trust the provider meant.",
                constraint.path,
            )
        ]
    return [
        finding(
            "unsupported-condition-key",
            f"IAM does not evaluate the custom claim {claim!r} of OIDC tokens (only aud, sub "
            f"and a few standard claims), so {effect}. Put the restriction in "
            f"'{prefix}:sub' instead.",
            constraint.path,
        )
    ]


def _strings(value: object, path: str, source: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, (int, float)):
        return [str(value)]
    if isinstance(value, list) and value:
        return [item for v in value for item in _strings(v, path, source)]
    raise malformed(source, path, "expected a string or a non-empty list of strings")


def _join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


def _host(issuer: str) -> str:
    return issuer.removeprefix("https://")
