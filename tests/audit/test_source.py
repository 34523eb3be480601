"""The positioned YAML loader: positions, anchors, merges, limits and bad files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tollgate.audit import source
from tollgate.audit.findings import Diagnostic
from tollgate.audit.source import Document, YMapping, YScalar, YSequence, load


def doc(text: str) -> Document:
    result = load("t.yml", text)
    assert isinstance(result, Document), result
    return result


def root(text: str) -> YMapping:
    node = doc(text).root
    assert isinstance(node, YMapping)
    return node


def at(document: Document, line: int, column: int, length: int) -> str:
    """The source text at a 1-based position."""
    return document.line_text(line)[column - 1 : column - 1 + length]


# --- Positions -----------------------------------------------------------------------------

WORKFLOW = """\
name: ci
on:
  issues:
    types: [opened]
jobs:
  triage:
    runs-on: ubuntu-latest
    steps:
      - name: Greet
        run: |
          echo "thanks"
          echo "${{ github.event.issue.title }}" > title.txt
      - run: echo ${{ github.head_ref }} and ${{ matrix.os }}
      - run: "quoted ${{ inputs.x }}"
      - run: >-
          folded ${{ env.A }}
          next ${{ env.B }}
"""


def steps_of(document: Document) -> YSequence:
    jobs = document.root
    assert isinstance(jobs, YMapping)
    triage = jobs.mapping("jobs")
    assert triage is not None
    job = triage.mapping("triage")
    assert job is not None
    steps = job.sequence("steps")
    assert steps is not None
    return steps


def expression_positions(document: Document, node: YScalar) -> list[tuple[int, int]]:
    value = node.value
    return [
        document.scalar_position(node, i) for i in range(len(value)) if value.startswith("${{", i)
    ]


def test_node_positions_are_one_based_lines_and_columns() -> None:
    document = doc(WORKFLOW)
    top = document.root
    assert isinstance(top, YMapping)
    name = top.key_node("name")
    assert name is not None and (name.line, name.column) == (1, 1)
    value = top.scalar("name")
    assert value is not None and (value.line, value.column, value.end_column) == (1, 7, 9)
    steps = steps_of(document)
    assert (steps.line, steps.column) == (9, 7)
    first = steps.items[0]
    assert isinstance(first, YMapping) and (first.line, first.column) == (9, 9)


def test_expression_position_in_a_literal_run_block() -> None:
    document = doc(WORKFLOW)
    first = steps_of(document).items[0]
    assert isinstance(first, YMapping)
    run = first.scalar("run")
    assert run is not None and run.style == "|" and run.is_block
    assert expression_positions(document, run) == [(12, 17)]
    assert at(document, 12, 17, 31) == "${{ github.event.issue.title }}"


def test_expression_positions_in_plain_quoted_and_folded_scalars() -> None:
    document = doc(WORKFLOW)
    steps = steps_of(document).items
    plain, quoted, folded = (s.scalar("run") for s in steps[1:4] if isinstance(s, YMapping))
    assert plain is not None and quoted is not None and folded is not None
    assert expression_positions(document, plain) == [(13, 19), (13, 46)]
    assert expression_positions(document, quoted) == [(14, 22)]
    assert folded.value == "folded ${{ env.A }} next ${{ env.B }}"
    assert expression_positions(document, folded) == [(16, 18), (17, 16)]
    for line, column in expression_positions(document, folded):
        assert at(document, line, column, 3) == "${{"


def test_location_covers_a_slice_of_a_scalar() -> None:
    document = doc(WORKFLOW)
    first = steps_of(document).items[0]
    assert isinstance(first, YMapping)
    run = first.scalar("run")
    assert run is not None
    start = run.value.index("${{")
    end = run.value.index("}}") + 2
    location = document.location(run, start, end)
    assert (location.line, location.column, location.end_line) == (12, 17, 12)
    assert location.end_column == 17 + (end - start)
    assert document.location(run).line == 10  # the whole block starts at its `|`


def test_positions_count_characters_not_bytes() -> None:
    document = doc("a: é€😀 ${{ x }}\nb: |\n  héllo ${{ y }}\n")
    top = document.root
    assert isinstance(top, YMapping)
    a, b = top.scalar("a"), top.scalar("b")
    assert a is not None and b is not None
    assert expression_positions(document, a) == [(1, 8)]
    assert expression_positions(document, b) == [(3, 9)]


def test_literal_block_with_indentation_indicator_and_blank_lines() -> None:
    document = doc("run: |2\n    indented\n\n  x ${{ a }}\n")
    top = document.root
    assert isinstance(top, YMapping)
    run = top.scalar("run")
    assert run is not None and run.value == "  indented\n\nx ${{ a }}\n"
    assert expression_positions(document, run) == [(4, 5)]


def test_multiline_plain_and_double_quoted_with_escapes() -> None:
    document = doc("a: one\n  two ${{ x }}\nb: \"t\\tab ${{ y }}\"\nc: 'it''s ${{ z }}'\n")
    top = document.root
    assert isinstance(top, YMapping)
    for key, expected in (("a", (2, 7)), ("b", (3, 11)), ("c", (4, 11))):
        node = top.scalar(key)
        assert node is not None
        assert expression_positions(document, node) == [expected], key


def test_position_and_line_text_helpers() -> None:
    document = doc("a: 1\r\nb: 2\rc: 3\n")
    assert document.lines[:3] == ("a: 1", "b: 2", "c: 3")
    assert document.position(document.text.index("c")) == (3, 1)
    top = document.root
    assert isinstance(top, YMapping)
    c = top.key_node("c")
    assert c is not None and c.line == 3


# --- Scalars, keys and `on:` ------------------------------------------------------------------


def test_on_stays_a_string_key_and_values_stay_text() -> None:
    top = root("on: push\nyes: no\nx: 010\ny: true\nz: ~\n")
    assert list(top.keys()) == ["on", "yes", "x", "y", "z"]
    on = top.scalar("on")
    assert on is not None and on.value == "push" and on.tag == source.STR_TAG
    no = top.scalar("yes")
    assert no is not None and no.as_bool() is None  # YAML 1.2: `no` is a string
    y = top.scalar("y")
    assert y is not None and y.as_bool() is True and y.tag == source.BOOL_TAG
    x = top.scalar("x")
    assert x is not None and x.value == "010" and x.tag == source.INT_TAG
    z = top.scalar("z")
    assert z is not None and z.is_null


def test_scalar_style_and_explicit_tags() -> None:
    top = root("a: 'q'\nb: \"d\"\nc: |\n  x\nd: >\n  y\ne: !!str 1\nf: !reference [x, y]\n")
    styles = {key: node.style for key, node in top.str_items() if isinstance(node, YScalar)}
    assert styles == {"a": "'", "b": '"', "c": "|", "d": ">", "e": ""}
    e = top.scalar("e")
    assert e is not None and e.tag == source.STR_TAG
    f = top.sequence("f")
    assert f is not None and f.tag == "!reference" and f.flow


def test_mapping_helpers() -> None:
    top = root("m: {a: 1}\ns: [1]\nv: x\nn:\n")
    assert "m" in top and "zz" not in top and len(top) == 4
    assert top.mapping("m") is not None and top.mapping("s") is None
    assert top.sequence("s") is not None and top.sequence("v") is None
    assert top.text("v") == "x" and top.text("n") is None and top.text("m") is None
    assert top.get("missing") is None and top.key_node("missing") is None


# --- Anchors, aliases, merges, duplicates --------------------------------------------------------


def test_aliases_share_the_anchored_node() -> None:
    top = root("base: &b\n  image: x\none: *b\ntwo: *b\n")
    assert top.get("one") is top.get("base") is top.get("two")
    base = top.mapping("base")
    assert base is not None and base.anchor == "b"


def test_merge_keys_explicit_keys_win_then_earlier_sources() -> None:
    top = root(
        "a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nm:\n  <<: [*a, *b]\n  x: 3\nn:\n  x: 4\n  <<: *a\n"
    )
    m = top.mapping("m")
    assert m is not None
    assert {k: v.value for k, v in m.str_items() if isinstance(v, YScalar)} == {
        "x": "3",
        "y": "1",
        "z": "2",
    }
    assert "<<" not in m
    n = top.mapping("n")
    assert n is not None
    x = n.scalar("x")
    assert x is not None and x.value == "4" and x.line == 7


def test_quoted_merge_key_is_an_ordinary_key() -> None:
    top = root("'<<': 1\n")
    assert top.text("<<") == "1"


def test_merge_of_a_scalar_is_a_diagnostic() -> None:
    document = doc("m:\n  <<: 1\n  x: 2\n")
    assert any("merge key" in d.message for d in document.diagnostics)


def test_duplicate_keys_keep_the_last_and_report() -> None:
    document = doc("a: 1\nb: 2\na: 3\n")
    top = document.root
    assert isinstance(top, YMapping)
    assert top.text("a") == "3"
    assert [k for k, _ in top.str_items()] == ["b", "a"]
    (diagnostic,) = document.diagnostics
    assert diagnostic.line == 3 and "duplicate key 'a'" in diagnostic.message


def test_alias_bomb_is_rejected_fast() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghij":
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
        previous = name
    started = time.perf_counter()
    result = load("bomb.yml", "\n".join(lines) + "\n")
    assert time.perf_counter() - started < 1.0
    assert isinstance(result, Diagnostic) and "alias" in result.message
    assert result.line is not None


def test_small_alias_fan_out_is_kept() -> None:
    lines = ['a: &a ["lol","lol"]', "b: &b [*a, *a]", "c: [*b, *b]"]
    top = root("\n".join(lines))
    c = top.sequence("c")
    assert c is not None and c.items[0] is top.get("b")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: *nope\n", "alias *nope is not defined"),
        ("a: &x [1, *x]\n", "alias *x refers to itself"),
    ],
)
def test_bad_aliases(text: str, message: str) -> None:
    result = load("t.yml", text)
    assert isinstance(result, Diagnostic) and message in result.message


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "- " * 100_000 + "x"])
def test_deep_nesting_is_rejected_without_crashing(text: str) -> None:
    # libyaml's own composer would overflow the C stack here and kill the interpreter.
    started = time.perf_counter()
    result = load("deep.yml", text)
    assert time.perf_counter() - started < 1.0
    assert isinstance(result, Diagnostic) and "nesting" in result.message


def test_node_count_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "MAX_NODES", 50)
    assert isinstance(load("t.yml", "[" + ", ".join(["1"] * 10) + "]"), Document)
    result = load("t.yml", "[" + ", ".join(["1"] * 100) + "]")
    assert isinstance(result, Diagnostic) and "nodes" in result.message


# --- Files the audit cannot read ---------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "~\n"])
def test_empty_file_is_a_diagnostic(text: str) -> None:
    result = load("empty.yml", text)
    assert isinstance(result, Diagnostic) and "empty" in result.message


def test_top_level_list_loads() -> None:
    top = doc("- a\n- b\n").root
    assert isinstance(top, YSequence) and [i.value for i in top if isinstance(i, YScalar)] == [
        "a",
        "b",
    ]


def test_syntax_error_has_a_position() -> None:
    result = load("bad.yml", "a: 1\nb: [1, 2\nc: 3\n")
    assert isinstance(result, Diagnostic)
    assert result.message.startswith("invalid YAML") and result.line is not None


def test_tab_indentation_is_a_diagnostic() -> None:
    result = load("bad.yml", "a:\n\tb: 1\n")
    assert isinstance(result, Diagnostic) and result.line == 2


def test_control_character_is_a_diagnostic() -> None:
    result = load("bad.yml", "a: b\x01\n")
    assert isinstance(result, Diagnostic) and (result.line, result.column) == (1, 5)


def test_second_document_is_reported_and_ignored() -> None:
    document = doc("a: 1\n---\nb: 2\n")
    top = document.root
    assert isinstance(top, YMapping) and list(top.keys()) == ["a"]
    (diagnostic,) = document.diagnostics
    assert "more than one YAML document" in diagnostic.message and diagnostic.line == 2


def test_malformed_second_document_only_adds_a_diagnostic() -> None:
    document = doc("a: 1\n---\n[b\n")
    assert any("more than one" in d.message for d in document.diagnostics)


def test_byte_order_mark_is_dropped() -> None:
    top = root("\ufeffname: x\n")
    name = top.key_node("name")
    assert name is not None and (name.line, name.column) == (1, 1)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes(b"name: ok\nrun: \xc3\xa9t\xc3\xa9 caf\xe9\n")
    result = load(path)
    assert isinstance(result, Diagnostic)
    assert "UTF-8" in result.message and (result.line, result.column) == (2, 13)
    assert result.path == str(path).replace("\\", "/")


def test_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yml"
    path.write_bytes(b"a: " + b"x" * 2000 + b"\n")
    result = load(path, max_bytes=1000)
    assert isinstance(result, Diagnostic) and "limit" in result.message
    assert isinstance(load(path, max_bytes=10_000), Document)
    big_text = "a: " + "x" * 2000
    assert isinstance(load("t.yml", big_text, max_bytes=1000), Diagnostic)


def test_default_size_limit_is_five_mebibytes() -> None:
    assert source.MAX_BYTES == 5 * 1024 * 1024
    text = "a: " + "x" * source.MAX_BYTES
    result = load("t.yml", text)
    assert isinstance(result, Diagnostic) and "limit" in result.message


def test_unreadable_path_is_a_diagnostic(tmp_path: Path) -> None:
    result = load(tmp_path / "missing.yml")
    assert isinstance(result, Diagnostic) and "cannot read" in result.message


def test_display_path_is_used_in_locations(tmp_path: Path) -> None:
    path = tmp_path / "w.yml"
    path.write_text("a: b\n", encoding="utf-8")
    document = load(path, display_path=".github/workflows/w.yml")
    assert isinstance(document, Document)
    assert document.location(document.root).path == ".github/workflows/w.yml"


def test_lone_surrogate_in_text_is_a_diagnostic() -> None:
    result = load("t.yml", "a: \ud800\n")
    assert isinstance(result, Diagnostic) and "Unicode" in result.message


# --- Fuzzing: only documents or diagnostics, never another exception ----------------------------

_SEED = """\
on:
  push:
    branches: [main]
  pull_request_target:
jobs:
  a: &job
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "${{ github.event.issue.title }}"
      - uses: actions/checkout@v4
        with: {ref: "${{ github.head_ref }}"}
  b:
    <<: *job
    if: ${{ always() }}
"""

_YAML_PIECES = st.sampled_from(
    [
        ":",
        "- ",
        "? ",
        "&a ",
        "*a",
        "<<: ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "'",
        '"',
        "|",
        ">-",
        "#",
        "\n",
        "\n  ",
        "\t",
        "!!str ",
        "---\n",
        "...\n",
        "%YAML 1.2\n",
        "${{ x }}",
        "key",
        "é",
        "\x00",
        "\ufeff",
    ]
)


@st.composite
def mutated_yaml(draw: st.DrawFn) -> str:
    text = _SEED
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:position] + draw(_YAML_PIECES) + text[position:]
        else:
            end = draw(st.integers(position, min(len(text), position + 20)))
            text = text[:position] + text[end:]
    return text


def _check_document(result: Document | Diagnostic) -> None:
    if isinstance(result, Diagnostic):
        assert result.message
        return
    # Every scalar's positions must map back into the text.
    stack = [result.root]
    seen = 0
    while stack and seen < 2000:
        node = stack.pop()
        seen += 1
        if isinstance(node, YScalar):
            for offset in (0, len(node.value) // 2, len(node.value)):
                line, column = result.scalar_position(node, offset)
                assert 1 <= line <= len(result.lines) and column >= 1
        elif isinstance(node, YSequence):
            stack.extend(node.items)
        else:
            for key, value in node.items:
                stack.extend((key, value))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_yaml())
def test_fuzz_mutated_yaml(text: str) -> None:
    _check_document(load("fuzz.yml", text))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=200))
def test_fuzz_random_text(text: str) -> None:
    _check_document(load("fuzz.yml", text))
