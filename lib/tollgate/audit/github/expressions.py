"""GitHub Actions expressions: find ``${{ }}`` in text, parse them, and ask what flows where.

The grammar and its corner cases follow GitHub's own parser (actions/languageservices,
``expressions/src/lexer.ts`` and ``parser.ts``): ``!`` binds tighter than ``< <= > >=``,
which bind tighter than ``== !=``, then ``&&``, then ``||``; numbers may be signed, hex,
octal or have an exponent; ``'strings'`` escape ``'`` as ``''``; identifiers may contain
``-``; function names are case-insensitive. Unknown functions and contexts are accepted
(rules decide what they mean). Every failure raises :class:`ExpressionError`.

Offsets in the tree are character offsets in the string given to :func:`parse`; for a
:class:`ExpressionMatch`, add :attr:`ExpressionMatch.inner_start` to place them in the
enclosing text.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeAlias

_logger = logging.getLogger(__name__)

MAX_DEPTH = 50
"""How deeply an expression may nest (GitHub's own limit); keeps every walk shallow."""

OPEN = "${{"
CLOSE = "}}"

FUNCTIONS: Mapping[str, tuple[int, int | None]] = {
    "contains": (2, 2),
    "startswith": (2, 2),
    "endswith": (2, 2),
    "format": (1, None),
    "join": (1, 2),
    "tojson": (1, 1),
    "fromjson": (1, 1),
    "hashfiles": (1, None),
    "success": (0, 0),
    "always": (0, 0),
    "cancelled": (0, 0),
    "failure": (0, 0),
    "case": (3, None),
}
"""Known functions (lower-case) and their (min, max) argument counts; ``None``: no maximum."""

CONTEXTS = frozenset(
    (
        "github",
        "env",
        "vars",
        "job",
        "jobs",
        "steps",
        "runner",
        "secrets",
        "strategy",
        "matrix",
        "needs",
        "inputs",
    )
)
"""The context names GitHub defines (lower-case)."""

# Functions whose result carries none of their arguments' content.
_OPAQUE_FUNCTIONS = frozenset(
    ("contains", "startswith", "endswith", "success", "always", "cancelled", "failure", "hashfiles")
)


class ExpressionError(ValueError):
    """An expression that cannot be parsed; :attr:`offset` is where the problem starts."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at offset {offset})")
        self.message = message
        self.offset = offset

    def shifted(self, by: int) -> ExpressionError:
        """The same error with its offset moved by ``by`` (into an enclosing text)."""
        return ExpressionError(self.message, self.offset + by)


# --- The tree -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    """``null``, ``true``/``false``, a number (always a float, as GitHub has) or a string."""

    value: bool | float | str | None
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Context:
    """A context name at the root of an access: ``github`` in ``github.event``."""

    name: str
    """As written; compare with ``.lower()`` (contexts are case-insensitive)."""
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Property:
    """``target.name``."""

    target: Expr
    name: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Index:
    """``target[index]``."""

    target: Expr
    index: Expr
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Wildcard:
    """``target.*`` or ``target[*]``: every element (an object filter)."""

    target: Expr
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Call:
    """``name(args...)``."""

    name: str
    """Lower-case (function names are case-insensitive); :attr:`written` keeps the case."""
    args: tuple[Expr, ...]
    start: int
    end: int
    written: str = ""


@dataclass(frozen=True, slots=True)
class Not:
    """``!operand``."""

    operand: Expr
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right`` with ``op`` one of ``== != < <= > >=``."""

    op: str
    left: Expr
    right: Expr
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Logical:
    """``a && b && ...`` or ``a || b || ...`` (n-ary, as GitHub evaluates it)."""

    op: str
    operands: tuple[Expr, ...]
    start: int
    end: int


Expr: TypeAlias = Literal | Context | Property | Index | Wildcard | Call | Not | Compare | Logical


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``expr``."""
    if isinstance(expr, (Property, Wildcard)):
        return (expr.target,)
    if isinstance(expr, Index):
        return (expr.target, expr.index)
    if isinstance(expr, Call):
        return expr.args
    if isinstance(expr, Not):
        return (expr.operand,)
    if isinstance(expr, Compare):
        return (expr.left, expr.right)
    if isinstance(expr, Logical):
        return expr.operands
    return ()


def walk(expr: Expr) -> Iterator[Expr]:
    """Every node of the tree, parents before children, left to right."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


# --- Lexer ----------------------------------------------------------------------------------

_IDENT = "ident"
_NUMBER = "number"
_STRING = "string"
_KEYWORD = "keyword"
_EOF = "eof"

# One pass of one regular expression splits the source; GitHub ends a word at these
# characters and at whitespace, and lets a number contain ".". A "." is a property access
# after a value and the start of a number (".5") anywhere else, which the code decides.
_TOKEN_RE = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[()\[\],*!<>])"
    r"|(?P<string>'(?:[^']|'')*')"
    r"|(?P<dot>\.)"
    r"|(?P<number>[-+0-9][^\s()\[\],!<>=&|]*)"
    r"|(?P<word>[^\s()\[\],.!<>=&|]+)"
)
_NUMBER_WORD_RE = re.compile(r"[^\s()\[\],!<>=&|]+")
_LEGAL_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_DECIMAL_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_RADIX_RE = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")
_AFTER_VALUE = frozenset((_IDENT, "]", ")", "*"))
_KEYWORDS: dict[str, tuple[str, bool | float | None]] = {
    "true": (_KEYWORD, True),
    "false": (_KEYWORD, False),
    "null": (_KEYWORD, None),
    "NaN": (_NUMBER, math.nan),
    "Infinity": (_NUMBER, math.inf),
}

# A token is a plain tuple, (kind, text, value, start, end): there are many and they live
# only while one expression is parsed. ``kind`` is an operator's own text or a word kind.
_Token: TypeAlias = tuple[str, str, "bool | float | str | None", int, int]


def _number(text: str, start: int) -> float:
    """A numeric literal as JavaScript's ``Number()`` reads it (GitHub's semantics)."""
    body = text.lstrip("+-")
    sign = -1.0 if text.startswith("-") else 1.0
    if body == "Infinity":
        return sign * math.inf
    if _DECIMAL_RE.fullmatch(text):
        return float(text)
    if _RADIX_RE.fullmatch(text):
        return float(int(text, 0))
    raise ExpressionError(f"unexpected symbol {text!r}", start)


def tokenize(source: str) -> list[_Token]:
    """Split ``source`` into ``(kind, text, value, start, end)`` tokens, ending with ``eof``."""
    tokens: list[_Token] = []
    append = tokens.append
    match = _TOKEN_RE.match
    previous = _EOF
    position = 0
    length = len(source)
    while position < length:
        found = match(source, position)
        if found is None:
            if source[position] == "'":
                raise ExpressionError("unterminated string", position)
            # A lone "=", "&" or "|".
            raise ExpressionError(f"unexpected symbol {source[position]!r}", position)
        group = found.lastgroup
        end = found.end()
        if group == "space":
            position = end
            continue
        text = found.group()
        token: _Token
        if group == "op":
            token = (text, text, None, position, end)
        elif group == "string":
            token = (_STRING, text, text[1:-1].replace("''", "'"), position, end)
        elif group == "dot" and previous in _AFTER_VALUE:
            token = (".", ".", None, position, end)
        elif group == "word":
            token = _word(text, position, end, previous)
        else:  # a number, or a "." that starts one
            if group == "dot":
                more = _NUMBER_WORD_RE.match(source, position)
                end = more.end() if more else end
                text = source[position:end]
            token = (_NUMBER, text, _number(text, position), position, end)
        append(token)
        previous = token[0]
        position = end
    append((_EOF, "", None, length, length))
    return tokens


def _word(word: str, start: int, end: int, previous: str) -> _Token:
    if previous != ".":
        keyword = _KEYWORDS.get(word)
        if keyword is not None:
            return (keyword[0], word, keyword[1], start, end)
    if word[0] == "'":
        raise ExpressionError("unterminated string", start)
    if not _LEGAL_IDENT_RE.fullmatch(word):
        raise ExpressionError(f"unexpected symbol {word!r}", start)
    return (_IDENT, word, word, start, end)


# --- Parser ---------------------------------------------------------------------------------

# Binding power of the binary operators: `||` < `&&` < `== !=` < `< <= > >=` (then `!`).
_BINARY = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4}
_LOGICAL = frozenset(("||", "&&"))


class _Parser:
    """Precedence climbing over the token list; ``depth`` bounds nesting (and recursion)."""

    __slots__ = ("depth", "position", "tokens")

    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.position = 0
        self.depth = 0

    def parse(self) -> Expr:
        if self.tokens[0][0] == _EOF:
            raise ExpressionError("an expression was expected", 0)
        expr = self.expression(1)
        token = self.tokens[self.position]
        if token[0] != _EOF:
            raise self.unexpected(token)
        return expr

    def unexpected(self, token: _Token) -> ExpressionError:
        if token[0] == _EOF:
            return ExpressionError("unexpected end of expression", token[3])
        return ExpressionError(f"unexpected symbol {token[1]!r}", token[3])

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            start = self.tokens[self.position][3]
            raise ExpressionError(f"expression nests more than {MAX_DEPTH} levels", start)

    def expect(self, kind: str) -> _Token:
        token = self.tokens[self.position]
        if token[0] != kind:
            raise self.unexpected(token)
        self.position += 1
        return token

    def expression(self, floor: int) -> Expr:
        """Operands joined by binary operators that bind at least as tightly as ``floor``."""
        self.enter()
        entered = 1
        tokens = self.tokens
        left = self.unary()
        while True:
            op = tokens[self.position][0]
            power = _BINARY.get(op)
            if power is None or power < floor:
                break
            if op in _LOGICAL:
                operands = [left]
                while tokens[self.position][0] == op:
                    self.position += 1
                    operands.append(self.expression(power + 1))
                left = Logical(op, tuple(operands), left.start, operands[-1].end)
            else:
                self.position += 1
                right = self.expression(power + 1)
                left = Compare(op, left, right, left.start, right.end)
            self.enter()  # each link nests the tree one level deeper
            entered += 1
        self.depth -= entered
        return left

    def unary(self) -> Expr:
        token = self.tokens[self.position]
        if token[0] != "!":
            return self.postfix()
        self.position += 1
        self.enter()
        operand = self.unary()
        self.depth -= 1
        return Not(operand, token[3], operand.end)

    def postfix(self) -> Expr:
        """An operand and its ``.name`` / ``[index]`` / ``.*`` accesses."""
        expr = self.primary()
        if isinstance(expr, Literal) and self.tokens[self.position - 1][0] != ")":
            return expr  # GitHub allows access on a group, `('a')[0]`, not on a bare literal
        tokens = self.tokens
        entered = 0
        while True:
            kind = tokens[self.position][0]
            if kind == ".":
                self.position += 1
                self.enter()
                entered += 1
                token = tokens[self.position]
                if token[0] == _IDENT:
                    expr = Property(expr, token[1], expr.start, token[4])
                elif token[0] == "*":
                    expr = Wildcard(expr, expr.start, token[4])
                else:
                    raise self.unexpected(token)
                self.position += 1
            elif kind == "[":
                self.position += 1
                self.enter()
                entered += 1
                if tokens[self.position][0] == "*":
                    self.position += 1
                    close = self.expect("]")
                    expr = Wildcard(expr, expr.start, close[4])
                else:
                    index = self.expression(1)
                    close = self.expect("]")
                    expr = Index(expr, index, expr.start, close[4])
            else:
                self.depth -= entered
                return expr

    def primary(self) -> Expr:
        token = self.tokens[self.position]
        kind = token[0]
        self.position += 1
        if kind == _IDENT:
            if self.tokens[self.position][0] != "(":
                return Context(token[1], token[3], token[4])
            return self.call(token)
        if kind == _KEYWORD or kind == _NUMBER or kind == _STRING:
            return Literal(token[2], token[3], token[4])
        if kind == "(":
            inner = self.expression(1)
            self.expect(")")
            return inner
        self.position -= 1
        raise self.unexpected(token)

    def call(self, name: _Token) -> Expr:
        self.position += 1  # "("
        args: list[Expr] = []
        tokens = self.tokens
        while tokens[self.position][0] != ")":
            args.append(self.expression(1))
            if tokens[self.position][0] != ")":
                self.expect(",")
        close = tokens[self.position]
        self.position += 1
        return Call(name[1].lower(), tuple(args), name[3], close[4], name[1])


def parse(source: str) -> Expr:
    """Parse one expression (the text between ``${{`` and ``}}``, or a bare ``if:``).

    Raises :class:`ExpressionError` for anything that is not a valid expression.
    """
    result = _parse_cached(source)
    if isinstance(result, ExpressionError):
        raise ExpressionError(result.message, result.offset)
    return result


@lru_cache(maxsize=8192)
def _parse_cached(source: str) -> Expr | ExpressionError:
    # Workflows repeat the same expressions (`matrix.os`, `github.token`) many times.
    try:
        return _Parser(source).parse()
    except ExpressionError as error:
        return error
    except RecursionError:
        # MAX_DEPTH keeps the parser far from the limit; this guards a caller already deep.
        return ExpressionError("expression nests too deeply", 0)


def clear_caches() -> None:
    """Forget cached parses (for benchmarks that must measure cold parsing)."""
    _parse_cached.cache_clear()
    _find_cached.cache_clear()


# --- Finding ${{ }} in text -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExpressionMatch:
    """One ``${{ ... }}`` in a string, parsed."""

    start: int
    """Offset of ``${{`` in the text."""
    end: int
    """Offset just past ``}}`` (the text's length when unterminated)."""
    source: str
    """The text between the braces, untrimmed (tree offsets are relative to it)."""
    expr: Expr | None
    error: ExpressionError | None
    """Why it did not parse, with an offset in the enclosing text."""
    closed: bool = True
    """False when no ``}}`` closes it (it then runs to the end of the text)."""

    @property
    def inner_start(self) -> int:
        """Offset in the text of :attr:`source`'s first character."""
        return self.start + len(OPEN)

    @property
    def text(self) -> str:
        """The whole ``${{ ... }}`` as written."""
        return f"{OPEN}{self.source}{CLOSE if self.closed else ''}"

    def span(self, node: Expr) -> tuple[int, int]:
        """Where ``node`` (a part of :attr:`expr`) lies in the enclosing text."""
        return self.inner_start + node.start, self.inner_start + node.end


_UNTERMINATED = "the expression is not closed: '${{' without a matching '}}'"


def find_expressions(text: str) -> tuple[ExpressionMatch, ...]:
    """Every ``${{ ... }}`` in ``text``, in order, each parsed (or with its error).

    As GitHub does, a ``}}`` inside a ``'string'`` does not close the expression; an
    unterminated one is returned with an error and ends the search.
    """
    if OPEN not in text:
        return ()
    return _find_cached(text)


@lru_cache(maxsize=4096)
def _find_cached(text: str) -> tuple[ExpressionMatch, ...]:
    matches: list[ExpressionMatch] = []
    start = text.find(OPEN)
    while start >= 0:
        close = _closing(text, start + len(OPEN))
        if close < 0:
            source = text[start + len(OPEN) :]
            matches.append(
                ExpressionMatch(
                    start, len(text), source, None, ExpressionError(_UNTERMINATED, start), False
                )
            )
            break
        source = text[start + len(OPEN) : close]
        inner = start + len(OPEN)
        result = _parse_cached(source)
        if isinstance(result, ExpressionError):
            matches.append(ExpressionMatch(start, close + 2, source, None, result.shifted(inner)))
        else:
            matches.append(ExpressionMatch(start, close + 2, source, result, None))
        start = text.find(OPEN, close + 2)
    return tuple(matches)


def _closing(text: str, position: int) -> int:
    """Offset of the ``}}`` that closes an expression whose body starts at ``position``."""
    in_string = False
    length = len(text)
    while position < length:
        # Jump to the next character that matters instead of stepping one by one.
        if in_string:
            quote = text.find("'", position)
            if quote < 0:
                return -1
            in_string = False
            position = quote + 1
            continue
        quote = text.find("'", position)
        brace = text.find(CLOSE, position)
        if brace < 0:
            return -1
        if 0 <= quote < brace:
            in_string = True
            position = quote + 1
            continue
        return brace
    return -1


# --- What flows where -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContextRef:
    """A path into a context, such as ``github.event.issue.title``."""

    path: str
    """Lower-case and dotted; ``*`` stands for any index (``a[0]``, ``a[x]``, ``a.*``)."""
    parts: tuple[str, ...]
    node: Expr
    """The whole access in the tree (its ``start``/``end`` locate it)."""

    @property
    def context(self) -> str:
        """The context name, lower-case: ``github``, ``inputs``, ``steps``..."""
        return self.parts[0]

    @property
    def start(self) -> int:
        return self.node.start

    @property
    def end(self) -> int:
        return self.node.end

    def within(self, prefix: str) -> bool:
        """True when the path is ``prefix`` or lies under it (``github.event`` covers
        ``github.event.issue.title``); ``*`` in ``prefix`` matches any one part."""
        wanted = prefix.lower().split(".")
        return len(self.parts) >= len(wanted) and _parts_match(self.parts, wanted)

    def matches(self, pattern: str) -> bool:
        """True when the path is exactly ``pattern``, where ``*`` matches any one part."""
        wanted = pattern.lower().split(".")
        return len(self.parts) == len(wanted) and _parts_match(self.parts, wanted)


def _parts_match(parts: tuple[str, ...], wanted: list[str]) -> bool:
    return all(w == "*" or w == p for p, w in zip(parts, wanted, strict=False))


def _access_chain(expr: Expr) -> tuple[Expr, list[str], list[Expr]]:
    """Walk down ``a.b[c].*``: the root, the parts (outermost last), the index expressions."""
    parts: list[str] = []
    indexes: list[Expr] = []
    node = expr
    while True:
        if isinstance(node, Property):
            parts.append(node.name.lower())
            node = node.target
        elif isinstance(node, Wildcard):
            parts.append("*")
            node = node.target
        elif isinstance(node, Index):
            key = node.index
            if isinstance(key, Literal) and isinstance(key.value, str):
                parts.append(key.value.lower())
            else:
                parts.append("*")
                indexes.append(key)
            node = node.target
        else:
            parts.reverse()
            return node, parts, indexes


def _ref(expr: Expr) -> tuple[ContextRef | None, Expr, list[Expr]]:
    root, parts, indexes = _access_chain(expr)
    if isinstance(root, Context):
        all_parts = (root.name.lower(), *parts)
        return ContextRef(".".join(all_parts), all_parts, expr), root, indexes
    return None, root, indexes


def flows(expr: Expr) -> list[ContextRef]:
    """The context paths whose content can reach the value of ``expr``.

    ``a || b`` gives both; ``a && b`` only ``b`` (a falsy ``a`` is empty); comparisons,
    ``!``, ``contains``/``startsWith``/``endsWith``, status functions and ``hashFiles``
    give nothing (their value is a boolean or a hash); ``format``, ``join``, ``toJSON``,
    ``fromJSON`` and unknown functions pass on all their arguments; ``case`` its values;
    ``fromJSON(x).y`` passes on ``x``. Index expressions (``a[x]``) only select, so ``x``
    does not flow.
    """
    found: list[ContextRef] = []
    _flows(expr, found)
    return found


def _flows(expr: Expr, found: list[ContextRef]) -> None:
    if isinstance(expr, (Context, Property, Index, Wildcard)):
        ref, root, _ = _ref(expr)
        if ref is not None:
            found.append(ref)
        elif root is not expr:
            _flows(root, found)  # `fromJSON(x).y`, `(a || b)[0]`: the value comes from the root
    elif isinstance(expr, Logical):
        operands = expr.operands if expr.op == "||" else expr.operands[-1:]
        for operand in operands:
            _flows(operand, found)
    elif isinstance(expr, Call):
        if expr.name in _OPAQUE_FUNCTIONS:
            return
        args = expr.args
        if expr.name == "case":
            args = tuple(args[1::2]) + (args[-1:] if len(args) % 2 else ())
        for arg in args:
            _flows(arg, found)
    # Literal, Not and Compare values carry no context content.


def references(expr: Expr) -> list[ContextRef]:
    """Every context path used anywhere in ``expr`` (for conditions), in source order.

    An access is reported once, at its full length (``github.event.issue.title``, not also
    ``github.event``); paths used inside an index (``a[matrix.key]``) are reported too.
    """
    found: list[ContextRef] = []
    _references(expr, found)
    found.sort(key=lambda ref: ref.start)
    return found


def _references(expr: Expr, found: list[ContextRef]) -> None:
    if isinstance(expr, (Context, Property, Index, Wildcard)):
        ref, root, indexes = _ref(expr)
        if ref is not None:
            found.append(ref)
        elif root is not expr:
            _references(root, found)
        for index in indexes:
            _references(index, found)
        return
    for child in children(expr):
        _references(child, found)


def calls(expr: Expr, name: str | None = None) -> list[Call]:
    """Every function call in ``expr`` (only those named ``name``, case-insensitive)."""
    wanted = name.lower() if name is not None else None
    return [
        node
        for node in walk(expr)
        if isinstance(node, Call) and (wanted is None or node.name == wanted)
    ]


# --- Conditions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    """How GitHub reads an ``if:`` value.

    ``bare``: the whole text is the expression (``if: github.event_name == 'push'``);
    ``wrapped``: the text is exactly one ``${{ ... }}``; ``template``: text around or between
    expressions (``if: |`` blocks with a trailing newline, ``${{ a }} && ${{ b }}``) makes a
    non-empty string, so the condition is always true; ``empty``: no condition.
    """

    kind: str
    expr: Expr | None
    offset: int
    """Where the expression's text starts in the ``if:`` value (tree offsets add to it)."""
    matches: tuple[ExpressionMatch, ...] = ()
    error: ExpressionError | None = None
    """Why the condition did not parse, with an offset in the ``if:`` value."""

    @property
    def always_true(self) -> bool:
        """True for a ``template`` condition: GitHub evaluates it as a non-empty string."""
        return self.kind == "template"

    def span(self, node: Expr) -> tuple[int, int]:
        """Where ``node`` (a part of :attr:`expr`) lies in the ``if:`` value."""
        return self.offset + node.start, self.offset + node.end


def parse_condition(text: str) -> Condition:
    """Read an ``if:`` value the way GitHub does; never raises."""
    if not text.strip():
        return Condition("empty", None, 0)
    if OPEN not in text:
        result = _parse_cached(text)
        if isinstance(result, ExpressionError):
            return Condition("bare", None, 0, (), result)
        return Condition("bare", result, 0)
    matches = find_expressions(text)
    first = matches[0]
    if len(matches) == 1 and first.start == 0 and first.end == len(text) and first.closed:
        return Condition("wrapped", first.expr, first.inner_start, matches, first.error)
    error = next((m.error for m in matches if m.error is not None), None)
    return Condition("template", None, 0, matches, error)
