"""The GitHub Actions expression parser, ``${{ }}`` finder, flows and conditions."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollgate.audit.github.expressions import (
    Call,
    Compare,
    Context,
    Expr,
    ExpressionError,
    Index,
    Literal,
    Logical,
    Not,
    Property,
    Wildcard,
    calls,
    find_expressions,
    flows,
    parse,
    parse_condition,
    references,
    tokenize,
    walk,
)


def show(expr: Expr) -> str:
    """A compact, fully parenthesized rendering, to check structure and precedence."""
    if isinstance(expr, Literal):
        return repr(expr.value)
    if isinstance(expr, Context):
        return expr.name
    if isinstance(expr, Property):
        return f"{show(expr.target)}.{expr.name}"
    if isinstance(expr, Index):
        return f"{show(expr.target)}[{show(expr.index)}]"
    if isinstance(expr, Wildcard):
        return f"{show(expr.target)}.*"
    if isinstance(expr, Call):
        return f"{expr.name}({', '.join(show(a) for a in expr.args)})"
    if isinstance(expr, Not):
        return f"!{show(expr.operand)}"
    if isinstance(expr, Compare):
        return f"({show(expr.left)} {expr.op} {show(expr.right)})"
    return "(" + f" {expr.op} ".join(show(o) for o in expr.operands) + ")"


# --- Literals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("null", None),
        ("true", True),
        ("false", False),
        ("42", 42.0),
        ("-1", -1.0),
        ("+2.5", 2.5),
        ("1.", 1.0),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("2.5E-1", 0.25),
        ("0x1F", 31.0),
        ("0o17", 15.0),
        ("0b101", 5.0),
        ("Infinity", math.inf),
        ("-Infinity", -math.inf),
        ("'hello'", "hello"),
        ("'it''s'", "it's"),
        ("''''''", "''"),
        ("''", ""),
        ("'}}'", "}}"),
    ],
)
def test_literals(source: str, value: object) -> None:
    expr = parse(source)
    assert isinstance(expr, Literal)
    assert expr.value == value and type(expr.value) is type(value)
    assert (expr.start, expr.end) == (0, len(source))


def test_nan_literal() -> None:
    expr = parse("NaN")
    assert isinstance(expr, Literal) and isinstance(expr.value, float) and math.isnan(expr.value)


def test_keywords_are_case_sensitive_and_plain_names_after_a_dot() -> None:
    assert isinstance(parse("True"), Context)
    expr = parse("a.true")
    assert isinstance(expr, Property) and expr.name == "true"


# --- Structure and precedence ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "shape"),
    [
        ("a || b && c", "(a || (b && c))"),
        ("a && b || c && d", "((a && b) || (c && d))"),
        ("a || b || c", "(a || b || c)"),
        ("a == b && c != d", "((a == b) && (c != d))"),
        ("a < b == c >= d", "((a < b) == (c >= d))"),
        ("!a == b", "(!a == b)"),
        ("!!a", "!!a"),
        ("!(a == b)", "!(a == b)"),
        ("(a || b) && c", "((a || b) && c)"),
        ("a == b == c", "((a == b) == c)"),
        ("github.event.issue.title", "github.event.issue.title"),
        ("a['b'].c[0]", "a['b'].c[0.0]"),
        ("a.*.b", "a.*.b"),
        ("a[*].b", "a.*.b"),
        ("a[b.c]", "a[b.c]"),
        ("steps.my-step.outputs.x", "steps.my-step.outputs.x"),
        ("fromJSON(x).y[0]", "fromjson(x).y[0.0]"),
        ("('abc')[0]", "'abc'[0.0]"),
        ("(a || b).c", "(a || b).c"),
        ("format('{0} {1}', a, b)", "format('{0} {1}', a, b)"),
        ("success()", "success()"),
        ("f(a,)", "f(a)"),
        ("contains(a, 'x') && !startsWith(b, 'y')", "(contains(a, 'x') && !startswith(b, 'y'))"),
        ("  a  ", "a"),
        ("a\n||\tb", "(a || b)"),
    ],
)
def test_structure(source: str, shape: str) -> None:
    assert show(parse(source)) == shape


def test_function_names_are_case_insensitive() -> None:
    expr = parse("toJSON(github)")
    assert isinstance(expr, Call) and expr.name == "tojson" and expr.written == "toJSON"
    assert show(parse("STARTSWITH(a, b)")) == "startswith(a, b)"


def test_offsets_point_into_the_source() -> None:
    source = "format('{0}', github.head_ref) == x"
    expr = parse(source)
    for node in walk(expr):
        text = source[node.start : node.end]
        assert text and text == text.strip(), (node, text)
    assert isinstance(expr, Compare) and source[expr.left.start : expr.left.end].startswith(
        "format("
    )


def test_tokenize_marks_positions() -> None:
    kinds = [(t[0], t[3], t[4]) for t in tokenize("a.b >= 'x'")]
    assert kinds == [
        ("ident", 0, 1),
        (".", 1, 2),
        ("ident", 2, 3),
        (">=", 4, 6),
        ("string", 7, 10),
        ("eof", 10, 10),
    ]


# --- Errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "offset"),
    [
        ("", 0),
        ("   ", 0),
        ("a ==", 4),
        ("a = b", 2),
        ("a & b", 2),
        ("a | b", 2),
        ("'unterminated", 0),
        ("x == 'open", 5),
        ("1.2.3", 0),
        ("0xZZ", 0),
        ("a.", 2),
        ("a.1", 2),
        ("f(a b)", 4),
        ("a[1", 3),
        ("(a", 2),
        ("a)", 1),
        ("a*b", 0),
        ("#x", 0),
        ("'a'.b", 3),
        ("1 2", 2),
        ("a[]", 2),
        ("-", 0),
    ],
)
def test_syntax_errors_carry_the_offset(source: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(source)
    assert caught.value.offset == offset
    assert isinstance(caught.value, ValueError)


def test_nesting_limit_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="nests"):
        parse("(" * 80 + "a" + ")" * 80)
    with pytest.raises(ExpressionError, match="nests"):
        parse("!" * 80 + "a")
    with pytest.raises(ExpressionError, match="nests"):
        parse(" == ".join(["a"] * 80))
    assert show(parse("(" * 10 + "a" + ")" * 10)) == "a"


def test_long_flat_logical_chain_is_fine() -> None:
    expr = parse(" || ".join(f"a{i}" for i in range(2000)))
    assert isinstance(expr, Logical) and len(expr.operands) == 2000
    assert len(flows(expr)) == 2000


# --- Finding ${{ }} --------------------------------------------------------------------------


def test_find_expressions_with_offsets() -> None:
    text = "echo ${{ github.head_ref }} > ${{matrix.os}}"
    first, second = find_expressions(text)
    assert text[first.start : first.end] == "${{ github.head_ref }}"
    assert text[second.start : second.end] == "${{matrix.os}}"
    assert first.source == " github.head_ref " and first.inner_start == first.start + 3
    assert first.expr is not None
    start, end = first.span(first.expr)
    assert text[start:end] == "github.head_ref"
    assert first.text == "${{ github.head_ref }}"


def test_closing_braces_inside_a_string_do_not_end_the_expression() -> None:
    text = "${{ format('{{0}} }}', x) }} tail"
    (match,) = find_expressions(text)
    assert match.error is None and match.end == text.index(" tail")
    assert isinstance(match.expr, Call)
    first = match.expr.args[0]
    assert isinstance(first, Literal) and first.value == "{{0}} }}"


def test_escaped_quote_inside_a_string() -> None:
    (match,) = find_expressions("${{ 'it''s }}' }}")
    assert match.error is None and isinstance(match.expr, Literal)
    assert match.expr.value == "it's }}"


def test_unterminated_expression_is_an_error_item() -> None:
    text = "a ${{ x }} b ${{ 'never }}"
    first, second = find_expressions(text)
    assert first.error is None
    assert second.error is not None and second.error.offset == text.index("${{ 'never")
    assert not second.closed and second.end == len(text) and second.expr is None


def test_invalid_expression_error_offset_is_in_the_text() -> None:
    text = "run ${{ a == }}"
    (match,) = find_expressions(text)
    assert match.expr is None and match.error is not None
    assert match.error.offset == len("run ${{ a == ")


def test_empty_expression_is_an_error() -> None:
    (match,) = find_expressions("${{ }}")
    assert match.error is not None and "expected" in match.error.message


def test_no_expressions() -> None:
    assert find_expressions("plain text, $ {{ not }} one") == ()


# --- Flows ------------------------------------------------------------------------------------


def flow_paths(source: str) -> list[str]:
    return [ref.path for ref in flows(parse(source))]


@pytest.mark.parametrize(
    ("source", "paths"),
    [
        ("github.event.issue.title", ["github.event.issue.title"]),
        ("github.event.issue.title || 'x'", ["github.event.issue.title"]),
        ("'x' || github.event.issue.body", ["github.event.issue.body"]),
        ("format('{0}', github.head_ref)", ["github.head_ref"]),
        ("format(github.event.comment.body)", ["github.event.comment.body"]),
        ("toJSON(github.event)", ["github.event"]),
        ("fromJSON(steps.meta.outputs.json).title", ["steps.meta.outputs.json"]),
        ("fromJSON(x)[0]", ["x"]),
        ("join(github.event.commits.*.message, ', ')", ["github.event.commits.*.message"]),
        ("join(a, github.head_ref)", ["a", "github.head_ref"]),
        ("cond && github.head_ref || 'main'", ["github.head_ref"]),
        ("github.head_ref && 'yes'", []),
        ("github.event.issue.title == 'x'", []),
        ("github.event.issue.title != 'x'", []),
        ("github.event.pull_request.number > 3", []),
        ("contains(github.event.issue.title, 'x')", []),
        ("startsWith(github.head_ref, 'x')", []),
        ("endsWith(github.head_ref, 'x')", []),
        ("!github.event.issue.title", []),
        ("hashFiles(github.event.issue.title)", []),
        ("success() || failure()", []),
        ("case(a == 'x', github.head_ref, inputs.other)", ["github.head_ref", "inputs.other"]),
        ("unknownFn(github.head_ref)", ["github.head_ref"]),
        ("github.event.commits[0].message", ["github.event.commits.*.message"]),
        ("github.event['pull_request']['title']", ["github.event.pull_request.title"]),
        ("env[github.head_ref]", ["env.*"]),
        ("(github.head_ref || a).b", ["github.head_ref", "a"]),
        ("GitHub.Event.Issue.Title", ["github.event.issue.title"]),
        ("'literal'", []),
    ],
)
def test_flows(source: str, paths: list[str]) -> None:
    assert flow_paths(source) == paths


def test_flow_refs_locate_their_access() -> None:
    source = "format('{0}', github.head_ref)"
    (ref,) = flows(parse(source))
    assert source[ref.start : ref.end] == "github.head_ref"
    assert ref.context == "github" and ref.parts == ("github", "head_ref")


def test_within_and_matches() -> None:
    (ref,) = flows(parse("github.event.issue.title"))
    assert ref.within("github.event") and ref.within("github.event.issue.title")
    assert ref.within("GITHUB.event.*") and not ref.within("github.head_ref")
    assert ref.matches("github.event.*.title") and not ref.matches("github.event")
    assert not ref.within("github.event.issue.title.more")


# --- References (for conditions) -----------------------------------------------------------------


def test_references_include_compared_and_tested_paths() -> None:
    source = "github.actor == 'bot' && contains(github.event.pull_request.labels.*.name, 'ok')"
    assert [r.path for r in references(parse(source))] == [
        "github.actor",
        "github.event.pull_request.labels.*.name",
    ]


def test_references_include_index_expressions_once() -> None:
    refs = references(parse("matrix.config[inputs.which].name && !env.X"))
    assert [r.path for r in refs] == ["matrix.config.*.name", "inputs.which", "env.x"]


def test_calls_helper() -> None:
    expr = parse("contains(a, b) || Contains(c, d) && startsWith(e, f)")
    assert len(calls(expr, "contains")) == 2 and len(calls(expr)) == 3


# --- Conditions ------------------------------------------------------------------------------------


def test_bare_condition() -> None:
    condition = parse_condition("github.event_name == 'push'")
    assert condition.kind == "bare" and condition.expr is not None and condition.offset == 0
    assert not condition.always_true


def test_wrapped_condition() -> None:
    text = "${{ github.actor == 'x' }}"
    condition = parse_condition(text)
    assert condition.kind == "wrapped" and isinstance(condition.expr, Compare)
    assert condition.offset == 3
    start, end = condition.span(condition.expr.left)
    assert text[start:end] == "github.actor"


def test_block_scalar_condition_is_always_true() -> None:
    condition = parse_condition("${{ github.actor == 'x' }}\n")
    assert condition.kind == "template" and condition.always_true
    assert len(condition.matches) == 1


def test_two_expressions_make_a_template() -> None:
    assert parse_condition("${{ a }} && ${{ b }}").always_true


def test_condition_errors_do_not_raise() -> None:
    bare = parse_condition("a ==")
    assert bare.kind == "bare" and bare.expr is None and bare.error is not None
    wrapped = parse_condition("${{ a == }}")
    assert wrapped.kind == "wrapped" and wrapped.error is not None
    assert parse_condition("  ").kind == "empty"


# --- Fuzzing: results or ExpressionError, nothing else -----------------------------------------

_PIECES = st.sampled_from(
    [
        "github",
        "event",
        "a-b",
        "_x",
        ".",
        "*",
        "[",
        "]",
        "(",
        ")",
        ",",
        "!",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "&&",
        "||",
        "=",
        "&",
        "|",
        "'",
        "''",
        "'s'",
        "1",
        "-2.5e3",
        "0x1f",
        ".5",
        "true",
        "null",
        "NaN",
        "format",
        "contains",
        "fromJSON",
        " ",
        "\n",
        "${{",
        "}}",
        "é",
    ]
)


def _exercise(expr: Expr) -> None:
    for node in walk(expr):
        assert 0 <= node.start <= node.end
    flows(expr)
    references(expr)


@settings(max_examples=600, deadline=None)
@given(st.lists(_PIECES, max_size=25).map("".join))
def test_fuzz_parse_token_soup(source: str) -> None:
    try:
        expr = parse(source)
    except ExpressionError as error:
        assert 0 <= error.offset <= len(source)
        return
    _exercise(expr)
    for node in walk(expr):
        assert node.end <= len(source)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_fuzz_parse_any_text(source: str) -> None:
    try:
        _exercise(parse(source))
    except ExpressionError as error:
        assert 0 <= error.offset <= len(source)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES | st.text(max_size=5), max_size=30).map("".join))
def test_fuzz_find_and_conditions(text: str) -> None:
    for match in find_expressions(text):
        assert 0 <= match.start < match.end <= len(text)
        assert (match.expr is None) != (match.error is None)
        if match.error is not None:
            assert match.start <= match.error.offset <= len(text)
        else:
            assert match.expr is not None
            _exercise(match.expr)
    condition = parse_condition(text)
    assert condition.kind in ("bare", "wrapped", "template", "empty")
