"""GCP workload identity pool providers: the CEL attribute condition and the audiences.

Accepts the condition alone (plain text, or a JSON string) or the provider as
``gcloud iam workload-identity-pools providers describe --format json`` prints it (also a
list of them). The condition is read by a small CEL parser that knows what such conditions
use (``==``, ``!=``, ``in``, ``&&``, ``||``, ``!``, ``startsWith``, ``endsWith``,
``contains``, ``matches``, ``lower``/``upper``); it is turned into alternatives (``||``
branches) of claim constraints. Anything else is kept as an opaque term and reported.
``attribute.X`` and ``google.subject`` are resolved through the attribute mapping.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import product

from tollgate.credentials.trust.findings import (
    Alternative,
    Constraint,
    MatchOp,
    Pattern,
    TrustPolicy,
    load_json,
    malformed,
)

__all__ = ["parse", "parse_condition"]

_MAX_CLAUSES = 256


def parse(text: str, source: str) -> TrustPolicy:
    """The provider or condition in ``text`` as a :class:`TrustPolicy`."""
    stripped = text.strip()
    if not stripped:
        raise malformed(source, "", "the file is empty")
    if stripped[0] not in '{["':
        alternatives = _condition_alternatives(stripped, {}, None, "condition", source)
        return TrustPolicy("gcp", tuple(alternatives))
    document = load_json(stripped, source)
    if isinstance(document, str):
        alternatives = _condition_alternatives(document, {}, None, "condition", source)
        return TrustPolicy("gcp", tuple(alternatives))
    providers: list[tuple[str, object]]
    if isinstance(document, list):
        providers = [(f"[{i}]", item) for i, item in enumerate(document)]
    else:
        providers = [("", document)]
    alternatives = []
    for base, provider in providers:
        alternatives.extend(_provider(provider, base, source))
    return TrustPolicy("gcp", tuple(alternatives))


def _provider(provider: object, base: str, source: str) -> list[Alternative]:
    if not isinstance(provider, dict):
        raise malformed(source, base, "expected a workload identity pool provider (an object)")
    oidc = provider.get("oidc")
    if oidc is None:
        raise malformed(
            source, _join(base, "oidc"), "missing: only OIDC providers can trust CI tokens"
        )
    if not isinstance(oidc, dict):
        raise malformed(source, _join(base, "oidc"), "expected an object")
    issuer = oidc.get("issuerUri")
    if not isinstance(issuer, str):
        raise malformed(source, _join(base, "oidc.issuerUri"), "expected the issuer URL")
    mapping_value = provider.get("attributeMapping", {})
    if not isinstance(mapping_value, dict) or not all(
        isinstance(v, str) for v in mapping_value.values()
    ):
        raise malformed(
            source, _join(base, "attributeMapping"), "expected an object of CEL strings"
        )
    mapping: dict[str, str] = {str(k): str(v) for k, v in mapping_value.items()}
    audiences = _audiences(
        oidc.get("allowedAudiences"), _join(base, "oidc.allowedAudiences"), source
    )
    condition = provider.get("attributeCondition")
    path = _join(base, "attributeCondition")
    if condition is None or condition == "":
        return [Alternative(audiences, path, issuer=issuer)]
    if not isinstance(condition, str):
        raise malformed(source, path, "expected a CEL expression (a string)")
    return [
        Alternative((*alt.constraints, *audiences), alt.path, issuer=issuer, opaque=alt.opaque)
        for alt in _condition_alternatives(condition, mapping, issuer, path, source)
    ]


def _audiences(value: object, path: str, source: str) -> tuple[Constraint, ...]:
    if value is None or value == []:
        return ()  # the default audience is the provider's own resource name: specific enough
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise malformed(source, path, "expected a list of audience strings")
    patterns = tuple(Pattern.literal(str(v)) for v in value)
    return (Constraint("aud", patterns, path, "allowedAudiences"),)


def _condition_alternatives(
    text: str, mapping: Mapping[str, str], issuer: str | None, path: str, source: str
) -> list[Alternative]:
    clauses = parse_condition(text, mapping, path, source)
    return [
        Alternative(tuple(constraints), path, issuer=issuer, opaque=tuple(opaque))
        for constraints, opaque in clauses
    ]


def parse_condition(
    text: str, mapping: Mapping[str, str], path: str = "condition", source: str = "<input>"
) -> list[tuple[list[Constraint], list[str]]]:
    """The condition as alternatives: (constraints that must all hold, unreadable parts)."""
    parser = _Parser(text, path, source)
    node = parser.parse()
    return _Analyser(text, mapping, path).clauses(node)


# Tokens and syntax tree


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
      | (?P<number>\d+(?:\.\d+)?u?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>&&|\|\||==|!=|<=|>=|[!<>()\[\],.?:+\-*/%{}])
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class _Node:
    kind: str
    """``or``, ``and``, ``not``, ``cmp``, ``call``, ``ref``, ``lit``, ``list``, ``other``."""
    start: int
    end: int
    children: tuple[_Node, ...] = ()
    value: object = None
    """``cmp``: the operator; ``call``: the method; ``ref``: the path; ``lit``: the value."""


class _Parser:
    def __init__(self, text: str, path: str, source: str) -> None:
        self.text = text
        self.path = path
        self.source = source
        self.tokens = self._tokenize()
        self.index = 0

    def _tokenize(self) -> list[_Token]:
        tokens = []
        position = 0
        while position < len(self.text):
            if not self.text[position:].strip():
                break
            match = _TOKEN.match(self.text, position)
            if match is None or match.end() == position:
                offset = len(self.text[position:]) - len(self.text[position:].lstrip())
                raise self._error(position + offset, "unexpected character")
            kind = match.lastgroup or "op"
            tokens.append(_Token(kind, match.group(kind), match.start(kind), match.end()))
            position = match.end()
        return tokens

    def _error(self, offset: int, problem: str) -> Exception:
        return malformed(
            self.source,
            self.path,
            f"cannot read the CEL condition at character {offset + 1}: {problem}",
        )

    def _peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self, *texts: str) -> _Token | None:
        token = self._peek()
        if token is not None and token.kind in ("op", "name") and token.text in texts:
            self.index += 1
            return token
        return None

    def _expect(self, text: str) -> _Token:
        token = self._take(text)
        if token is None:
            found = self._peek()
            where = found.start if found else len(self.text)
            raise self._error(where, f"expected {text!r}")
        return token

    def parse(self) -> _Node:
        if not self.tokens:
            raise self._error(0, "the condition is empty")
        node = self._conditional()
        extra = self._peek()
        if extra is not None:
            raise self._error(extra.start, f"unexpected {extra.text!r}")
        return node

    def _conditional(self) -> _Node:
        node = self._binary("||", "or", self._and)
        if self._take("?"):
            self._conditional()
            self._expect(":")
            last = self._conditional()
            return _Node("other", node.start, last.end)
        return node

    def _and(self) -> _Node:
        return self._binary("&&", "and", self._relation)

    def _binary(self, op: str, kind: str, operand: Callable[[], _Node]) -> _Node:
        items = [operand()]
        while self._take(op):
            items.append(operand())
        if len(items) == 1:
            return items[0]
        return _Node(kind, items[0].start, items[-1].end, tuple(items))

    def _relation(self) -> _Node:
        left = self._arithmetic()
        token = self._take("==", "!=", "<", "<=", ">", ">=", "in")
        if token is None:
            return left
        right = self._arithmetic()
        return _Node("cmp", left.start, right.end, (left, right), token.text)

    def _arithmetic(self) -> _Node:
        left = self._unary()
        while self._take("+", "-", "*", "/", "%"):
            right = self._unary()
            left = _Node("other", left.start, right.end)
        return left

    def _unary(self) -> _Node:
        token = self._take("!", "-")
        if token is None:
            return self._member()
        operand = self._unary()
        kind = "not" if token.text == "!" else "other"
        return _Node(kind, token.start, operand.end, (operand,))

    def _member(self) -> _Node:
        node = self._primary()
        while True:
            if self._take("."):
                name = self._peek()
                if name is None or name.kind != "name":
                    raise self._error(name.start if name else len(self.text), "expected a name")
                self.index += 1
                if self._take("("):
                    args = self._arguments(")")
                    end = self.tokens[self.index - 1].end
                    node = _Node("call", node.start, end, (node, *args), name.text)
                elif node.kind == "ref":
                    node = _Node("ref", node.start, name.end, (), (*_path(node), name.text))
                else:
                    node = _Node("other", node.start, name.end)
            elif self._take("["):
                index = self._conditional()
                close = self._expect("]")
                if node.kind == "ref" and index.kind == "lit" and isinstance(index.value, str):
                    node = _Node("ref", node.start, close.end, (), (*_path(node), index.value))
                else:
                    node = _Node("other", node.start, close.end)
            else:
                return node

    def _arguments(self, close: str) -> list[_Node]:
        args: list[_Node] = []
        if self._take(close):
            return args
        while True:
            args.append(self._conditional())
            if self._take(close):
                return args
            self._expect(",")

    def _primary(self) -> _Node:
        token = self._peek()
        if token is None:
            raise self._error(len(self.text), "the condition ends too early")
        self.index += 1
        if token.kind == "string":
            return _Node("lit", token.start, token.end, (), _unquote(token.text))
        if token.kind == "number":
            return _Node("lit", token.start, token.end, (), token.text)
        if token.kind == "name":
            if token.text in ("true", "false"):
                return _Node("lit", token.start, token.end, (), token.text == "true")
            if token.text == "null":
                return _Node("lit", token.start, token.end, (), None)
            if self._take("("):
                self._arguments(")")
                return _Node("other", token.start, self.tokens[self.index - 1].end)
            return _Node("ref", token.start, token.end, (), (token.text,))
        if token.text == "(":
            inner = self._conditional()
            close = self._expect(")")
            return _Node(inner.kind, token.start, close.end, inner.children, inner.value)
        if token.text == "[":
            items = self._arguments("]")
            return _Node("list", token.start, self.tokens[self.index - 1].end, tuple(items))
        if token.text == "{":
            depth = 1
            while depth and self.index < len(self.tokens):
                text = self.tokens[self.index].text
                depth += {"{": 1, "}": -1}.get(text, 0)
                self.index += 1
            return _Node("other", token.start, self.tokens[self.index - 1].end)
        raise self._error(token.start, f"unexpected {token.text!r}")


def _path(node: _Node) -> tuple[str, ...]:
    value = node.value
    assert isinstance(value, tuple)
    return tuple(str(part) for part in value)


def _unquote(text: str) -> str:
    body = text[1:-1]
    out = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            out.append(_ESCAPES.get(body[index + 1], body[index + 1]))
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


# From syntax to constraints

_Clause = tuple[list[Constraint], list[str]]
_METHODS = {
    "startsWith": MatchOp.PREFIX,
    "endsWith": MatchOp.SUFFIX,
    "contains": MatchOp.CONTAINS,
    "matches": MatchOp.PATTERN,
}
_MAPPED = re.compile(r"\s*assertion(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*'([^']+)'\s*\])\s*\Z")


class _Analyser:
    def __init__(self, text: str, mapping: Mapping[str, str], path: str) -> None:
        self.text = text
        self.mapping = mapping
        self.path = path

    def clauses(self, node: _Node) -> list[_Clause]:
        kind = node.kind
        if kind == "or":
            return [clause for child in node.children for clause in self.clauses(child)]
        if kind == "and":
            result: list[_Clause] = [([], [])]
            for child in node.children:
                result = [
                    (a[0] + b[0], a[1] + b[1]) for a, b in product(result, self.clauses(child))
                ]
                if len(result) > _MAX_CLAUSES:
                    return [([], [self._snippet(node)])]
            return result
        if kind == "not":
            return [([], [])]  # a negation only excludes; it never narrows what gets in
        if kind == "lit" and isinstance(node.value, bool):
            return [([], [])] if node.value else []
        if kind == "cmp":
            return self._comparison(node)
        if kind == "call" and node.value in _METHODS:
            return self._method(node)
        return [([], [self._snippet(node)])]

    def _comparison(self, node: _Node) -> list[_Clause]:
        left, right = node.children
        operator = node.value
        if operator == "!=":
            return [([], [])]
        if operator == "==":
            claim, literal = self._claim(left), _string(right)
            if claim is None or literal is None:
                claim, literal = self._claim(right), _string(left)
            if claim is not None and literal is not None:
                name, ignore_case = claim
                pattern = Pattern.literal(literal)
                return [([self._constraint(name, (pattern,), node, "==", ignore_case)], [])]
        if operator == "in":
            claim = self._claim(left)
            values = _strings(right)
            if claim is not None and values is not None:
                name, ignore_case = claim
                patterns = tuple(Pattern.literal(v) for v in values)
                return [([self._constraint(name, patterns, node, "in", ignore_case)], [])]
        return [([], [self._snippet(node)])]

    def _method(self, node: _Node) -> list[_Clause]:
        target, *args = node.children
        claim = self._claim(target)
        argument = _string(args[0]) if len(args) == 1 else None
        if claim is None or argument is None:
            return [([], [self._snippet(node)])]
        name, ignore_case = claim
        op = _METHODS[str(node.value)]
        if op is MatchOp.PREFIX:
            patterns: tuple[Pattern, ...] = (Pattern.prefix(argument),)
        elif op is MatchOp.SUFFIX:
            patterns = (Pattern.suffix(argument),)
        elif op is MatchOp.CONTAINS:
            patterns = (Pattern.containing(argument),)
        else:
            patterns = regex_patterns(argument)
        constraint = self._constraint(name, patterns, node, f".{node.value}()", ignore_case, op)
        return [([constraint], [])]

    def _constraint(
        self,
        claim: str,
        patterns: tuple[Pattern, ...],
        node: _Node,
        operator: str,
        ignore_case: bool,
        op: MatchOp = MatchOp.EQUALS,
    ) -> Constraint:
        where = f"{self.path} (character {node.start + 1}: {self._snippet(node)})"
        return Constraint(claim, patterns, where, operator, op, ignore_case)

    def _claim(self, node: _Node) -> tuple[str, bool] | None:
        """The claim a node reads, and whether it was lower- or upper-cased first."""
        ignore_case = False
        if node.kind == "call" and node.value in ("lower", "upper") and len(node.children) == 1:
            node = node.children[0]
            ignore_case = True
        if node.kind != "ref":
            return None
        path = _path(node)
        if len(path) == 2 and path[0] == "assertion":
            return path[1], ignore_case
        if path in (("google", "subject"),) or (len(path) == 2 and path[0] == "attribute"):
            key = ".".join(path)
            expression = self.mapping.get(key)
            if expression is None:
                # Without the mapping, assume the usual one (attribute.X = assertion.X).
                return ("sub" if key == "google.subject" else path[1]), ignore_case
            match = _MAPPED.match(expression)
            if match:
                return (match.group(1) or match.group(2)), ignore_case
        return None

    def _snippet(self, node: _Node) -> str:
        text = " ".join(self.text[node.start : node.end].split())
        return text if len(text) <= 80 else text[:77] + "..."


def _string(node: _Node) -> str | None:
    return node.value if node.kind == "lit" and isinstance(node.value, str) else None


def _strings(node: _Node) -> list[str] | None:
    if node.kind != "list":
        return None
    values = [_string(child) for child in node.children]
    if not values or any(v is None for v in values):
        return None
    return [v for v in values if v is not None]


# RE2 to patterns, conservatively: whatever the regex admits, the patterns admit too.


def regex_patterns(regex: str) -> tuple[Pattern, ...]:
    """Patterns that cover what ``regex`` matches (CEL ``matches`` is unanchored)."""
    start = "^" if regex.startswith("^") else ""
    end = "$" if regex.endswith("$") and not regex.endswith("\\$") else ""
    body = regex[len(start) : len(regex) - len(end)]
    inner = _unwrap_group(body)
    if inner is not None:
        # ^(a|b)$ is ^a$ or ^b$.
        return tuple(
            pattern
            for branch in _top_level_split(inner)
            for pattern in regex_patterns(start + branch + end)
        )
    return tuple(_regex_pattern(branch) for branch in _top_level_split(regex))


def _unwrap_group(body: str) -> str | None:
    """The inside of ``(...)`` or ``(?:...)`` when that group is all of ``body``."""
    opener = "(?:" if body.startswith("(?:") else "(" if body.startswith("(") else ""
    if not opener or not body.endswith(")") or body.endswith("\\)"):
        return None
    depth = 0
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            index += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0 and index != len(body) - 1:
                return None
        index += 1
    return body[len(opener) : -1]


def _top_level_split(regex: str) -> list[str]:
    branches = []
    depth = 0
    current = ""
    index = 0
    while index < len(regex):
        char = regex[index]
        if char == "\\" and index + 1 < len(regex):
            current += regex[index : index + 2]
            index += 2
            continue
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if char == "|" and depth == 0:
            branches.append(current)
            current = ""
        else:
            current += char
        index += 1
    branches.append(current)
    return branches


def _regex_pattern(regex: str) -> Pattern:
    anchored_start = regex.startswith("^")
    body = regex[1:] if anchored_start else regex
    anchored_end = body.endswith("$") and not body.endswith("\\$")
    if anchored_end:
        body = body[:-1]
    glob = "" if anchored_start else "*"
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            escaped = body[index + 1]
            glob += escaped if not escaped.isalnum() else "?"
            index += 2
        elif char == ".":
            glob += "?"
            index += 1
        elif char == "[":
            close = body.find("]", index + 2)
            glob += "?"
            index = len(body) if close < 0 else close + 1
        elif char in "*+?{":
            # A quantifier: the atom before it may repeat or vanish.
            glob = glob[:-1] + "*" if glob and glob[-1] not in "*" else glob + "*"
            if char == "{":
                close = body.find("}", index)
                index = len(body) if close < 0 else close + 1
            else:
                index += 1
        elif char in "()|":
            # A group: everything from here on is unknown.
            glob += "*"
            break
        else:
            glob += char if char not in "*?" else "?"
            index += 1
    if not anchored_end and not glob.endswith("*"):
        glob += "*"
    return Pattern.glob(glob)


def _join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key
