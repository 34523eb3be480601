"""YAML with positions: the node tree every audit rule reads.

:func:`load` turns one file into a :class:`Document` (a tree of :class:`YScalar`,
:class:`YMapping` and :class:`YSequence`, each with 1-based line/column and character
offsets), or into a :class:`~tollgate.audit.findings.Diagnostic` when the file cannot be
read: not UTF-8, too large, empty, malformed, or built to exhaust memory.

The tree is built from libyaml's event stream (``yaml.CSafeLoader``; the pure-Python
``yaml.SafeLoader`` where libyaml is missing), not from ``yaml.compose``: the Cython composer
recurses on the C stack and crashes the interpreter on deeply nested input, and scalars are
not resolved with YAML 1.1 rules, so ``on:`` stays the string ``"on"``. Aliases share the
anchored node (an alias bomb costs one node per anchor, and its expanded size is capped);
merge keys (``<<``) are applied; a duplicate key keeps the last value and adds a diagnostic.
"""

from __future__ import annotations

import logging
import os
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeAlias

import yaml

from tollgate.audit.findings import Diagnostic, Location

_logger = logging.getLogger(__name__)

_Loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]
try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader

MAX_BYTES = 5 * 1024 * 1024
"""Files larger than this are not parsed (a workflow is a few KiB; 5 MiB is generous)."""
MAX_NODES = 500_000
"""Distinct nodes one file may hold."""
MAX_DEPTH = 128
"""Nesting depth of collections; real CI files stay under 15."""
MAX_EXPANDED = 1_000_000
"""Nodes one file would hold with every alias expanded; bounds any walk over the tree."""

STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
BOOL_TAG = "tag:yaml.org,2002:bool"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"

# YAML 1.2 core schema, which is what GitHub's parser follows (`on`, `yes`, `off` are strings).
_NULL_VALUES = frozenset(("", "~", "null", "Null", "NULL"))
_TRUE_VALUES = frozenset(("true", "True", "TRUE"))
_FALSE_VALUES = frozenset(("false", "False", "FALSE"))
_INT_RE = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_RE = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
# The line breaks libyaml counts (YAML 1.1 also breaks on NEL, LS and PS).
_LINE_BREAK_RE = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


# The node classes are plain slotted dataclasses, not frozen ones: a frozen dataclass costs
# about seven times more to build, and a file holds thousands of nodes. Never mutate them;
# an aliased node is shared by every place that refers to it.


@dataclass(slots=True, eq=False)
class YScalar:
    """A scalar: its text exactly as YAML reads it, before any typing."""

    value: str
    style: str
    """``""`` plain, ``"'"`` / ``'"'`` quoted, ``"|"`` literal block, ``">"`` folded block."""
    line: int
    column: int
    end_line: int
    end_column: int
    start: int
    """Character offset in the document text where the scalar (or its block header) begins."""
    end: int
    explicit_tag: str | None = None
    anchor: str | None = None

    @property
    def tag(self) -> str:
        """The resolved tag (YAML 1.2 core schema for plain scalars)."""
        if self.explicit_tag is not None:
            return self.explicit_tag
        if self.style:
            return STR_TAG
        value = self.value
        if value in _NULL_VALUES:
            return NULL_TAG
        if value in _TRUE_VALUES or value in _FALSE_VALUES:
            return BOOL_TAG
        if _INT_RE.fullmatch(value):
            return INT_TAG
        if _FLOAT_RE.fullmatch(value):
            return FLOAT_TAG
        return STR_TAG

    @property
    def is_null(self) -> bool:
        """True for an empty value, ``~`` or ``null`` written plain."""
        return self.tag == NULL_TAG

    @property
    def is_block(self) -> bool:
        """True for ``|`` and ``>`` block scalars."""
        return self.style in ("|", ">")

    def as_bool(self) -> bool | None:
        """``True``/``False`` for a YAML boolean, else ``None`` (``yes`` is a string)."""
        if self.tag != BOOL_TAG:
            return None
        return self.value in _TRUE_VALUES


@dataclass(slots=True, eq=False)
class YSequence:
    """A sequence of nodes."""

    items: tuple[YNode, ...]
    line: int
    column: int
    end_line: int
    end_column: int
    start: int
    end: int
    flow: bool = False
    explicit_tag: str | None = None
    anchor: str | None = None

    @property
    def tag(self) -> str:
        return self.explicit_tag if self.explicit_tag is not None else SEQ_TAG

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[YNode]:
        return iter(self.items)


@dataclass(slots=True, eq=False)
class YMapping:
    """A mapping: ordered pairs of key and value nodes, looked up by scalar key text."""

    items: tuple[tuple[YNode, YNode], ...]
    """Pairs in document order (merged pairs first), after duplicates and merges."""
    line: int
    column: int
    end_line: int
    end_column: int
    start: int
    end: int
    flow: bool = False
    explicit_tag: str | None = None
    anchor: str | None = None
    index: dict[str, tuple[YNode, YNode]] = field(default_factory=dict, repr=False)
    """Scalar key text -> its pair (the same tuple as in :attr:`items`)."""

    @property
    def tag(self) -> str:
        return self.explicit_tag if self.explicit_tag is not None else MAP_TAG

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, key: object) -> bool:
        return key in self.index

    def keys(self) -> Iterator[str]:
        """Scalar keys, in order."""
        return iter(self.index)

    def get(self, key: str) -> YNode | None:
        """The value under ``key``, or ``None`` when absent."""
        pair = self.index.get(key)
        return None if pair is None else pair[1]

    def key_node(self, key: str) -> YScalar | None:
        """The key's own node (for a location that points at ``key:``)."""
        pair = self.index.get(key)
        if pair is None or not isinstance(pair[0], YScalar):
            return None
        return pair[0]

    def scalar(self, key: str) -> YScalar | None:
        """The value under ``key`` if it is a scalar, else ``None``."""
        value = self.get(key)
        return value if isinstance(value, YScalar) else None

    def mapping(self, key: str) -> YMapping | None:
        """The value under ``key`` if it is a mapping, else ``None``."""
        value = self.get(key)
        return value if isinstance(value, YMapping) else None

    def sequence(self, key: str) -> YSequence | None:
        """The value under ``key`` if it is a sequence, else ``None``."""
        value = self.get(key)
        return value if isinstance(value, YSequence) else None

    def text(self, key: str) -> str | None:
        """The scalar text under ``key`` (``None`` when absent, null or not a scalar)."""
        value = self.get(key)
        if isinstance(value, YScalar) and not value.is_null:
            return value.value
        return None

    def str_items(self) -> Iterator[tuple[str, YNode]]:
        """``(key text, value)`` for every scalar key, in order."""
        for key, pair in self.index.items():
            yield key, pair[1]


YNode: TypeAlias = YScalar | YMapping | YSequence


@dataclass(frozen=True)
class Document:
    """One parsed file: its root node, its text (for snippets and positions), diagnostics."""

    path: str
    text: str
    root: YNode
    diagnostics: tuple[Diagnostic, ...] = ()
    """Problems that did not stop the parse (duplicate keys, extra documents)."""

    @cached_property
    def line_starts(self) -> tuple[int, ...]:
        """Character offset where each line starts (index 0 is line 1)."""
        return (0, *(m.end() for m in _LINE_BREAK_RE.finditer(self.text)))

    @cached_property
    def lines(self) -> tuple[str, ...]:
        """The text split into lines, numbered as YAML numbers them (index 0 is line 1)."""
        return tuple(_LINE_BREAK_RE.split(self.text))

    def line_text(self, line: int) -> str:
        """Line ``line`` (1-based) without its break; ``""`` when out of range."""
        lines = self.lines
        return lines[line - 1] if 1 <= line <= len(lines) else ""

    def position(self, offset: int) -> tuple[int, int]:
        """1-based line and column of character ``offset`` in the text."""
        starts = self.line_starts
        index = bisect_right(starts, offset) - 1
        return index + 1, offset - starts[index] + 1

    def scalar_offset(self, node: YScalar, offset: int) -> int:
        """Where character ``offset`` of ``node.value`` lies in the document text.

        Exact for plain scalars, quoted scalars without escapes and literal (``|``) blocks;
        best effort (an alignment of value and source) for folded blocks and escapes.
        """
        return _scalar_offset(self, node, offset)

    def scalar_position(self, node: YScalar, offset: int) -> tuple[int, int]:
        """1-based line and column of character ``offset`` of ``node.value``."""
        return self.position(self.scalar_offset(node, offset))

    def location(self, node: YNode, start: int | None = None, end: int | None = None) -> Location:
        """A :class:`Location` for ``node``, or for ``node.value[start:end]`` of a scalar."""
        if start is None or not isinstance(node, YScalar):
            return Location(self.path, node.line, node.column, node.end_line, node.end_column)
        line, column = self.scalar_position(node, start)
        if end is None:
            return Location(self.path, line, column)
        # The end is exclusive: locate the last character, then step past it.
        end_line, end_column = self.scalar_position(node, max(start, end - 1))
        return Location(self.path, line, column, end_line, end_column + (end > start))


def load(
    path: str | os.PathLike[str],
    text: str | None = None,
    *,
    display_path: str | None = None,
    max_bytes: int = MAX_BYTES,
) -> Document | Diagnostic:
    """Parse one YAML file; never raises for bad content.

    ``text`` skips reading the file (the path is then only a name). ``display_path`` is the
    path shown in locations (default: ``path`` with ``/`` separators). Only the first YAML
    document is read; more add a diagnostic.
    """
    shown = display_path if display_path is not None else os.fspath(path).replace(os.sep, "/")
    if text is None:
        read = _read_text(path, shown, max_bytes)
        if isinstance(read, Diagnostic):
            return read
        text = read
    else:
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as error:
            return Diagnostic(shown, f"text is not valid Unicode (character {error.start})")
        if size > max_bytes:
            return Diagnostic(shown, f"file is {size} bytes, over the {max_bytes}-byte limit")
    if text.startswith("\ufeff"):
        text = text[1:]
    return _Builder(shown, text).build()


def _read_text(path: str | os.PathLike[str], shown: str, max_bytes: int) -> str | Diagnostic:
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                return Diagnostic(shown, f"file is {size} bytes, over the {max_bytes}-byte limit")
            # Read one byte more than allowed: a file that grew (or a pipe) is still caught.
            data = handle.read(max_bytes + 1)
    except OSError as error:
        return Diagnostic(shown, f"cannot read file: {error.strerror or error}")
    if len(data) > max_bytes:
        return Diagnostic(shown, f"file is over the {max_bytes}-byte limit")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        line_start = data.rfind(b"\n", 0, error.start) + 1
        # Columns count characters: decode what precedes the bad byte on its line.
        column = len(data[line_start : error.start].decode("utf-8", "replace")) + 1
        return Diagnostic(
            shown, f"file is not valid UTF-8 (byte {error.start})", line=line, column=column
        )


class _AbortError(Exception):
    """Stops a build: the file is rejected with this diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class _Frame:
    """A collection being built."""

    __slots__ = ("anchor", "event", "is_map", "items", "size")

    def __init__(self, is_map: bool, event: Any) -> None:
        self.is_map = is_map
        self.event = event
        self.anchor: str | None = event.anchor
        self.items: list[YNode] = []
        self.size = 1


_ScalarEvent = yaml.ScalarEvent
_MappingStartEvent = yaml.MappingStartEvent
_SequenceStartEvent = yaml.SequenceStartEvent
_MappingEndEvent = yaml.MappingEndEvent
_SequenceEndEvent = yaml.SequenceEndEvent


class _Builder:
    """Builds the node tree from parser events, with the limits applied as it goes."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.diagnostics: list[Diagnostic] = []
        self.anchors: dict[str, tuple[YNode, int]] = {}

    def build(self) -> Document | Diagnostic:
        loader = _Loader(self.text)
        try:
            root = self._document(loader)
        except _AbortError as abort:
            return abort.diagnostic
        except yaml.MarkedYAMLError as error:
            return self._yaml_error(error)
        except yaml.YAMLError as error:
            return self._reader_error(error)
        finally:
            loader.dispose()
        if root is None or (isinstance(root, YScalar) and root.is_null):
            return Diagnostic(self.path, "file is empty (no YAML content)")
        return Document(self.path, self.text, root, tuple(self.diagnostics))

    def _document(self, loader: yaml.SafeLoader | yaml.CSafeLoader) -> YNode | None:
        event = loader.get_event()  # StreamStart
        event = loader.get_event()
        if isinstance(event, yaml.StreamEndEvent) or event is None:
            return None
        root = self._node(loader)
        loader.get_event()  # DocumentEnd
        try:
            following = loader.get_event()
        except yaml.YAMLError as error:
            # What follows the first document is malformed; it would be ignored anyway.
            mark = getattr(error, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            self._extra_document(line)
        else:
            if isinstance(following, yaml.DocumentStartEvent):
                start = following.start_mark
                self._extra_document(start.line + 1 if start is not None else None)
        return root

    def _extra_document(self, line: int | None) -> None:
        self.diagnostics.append(
            Diagnostic(
                self.path,
                "more than one YAML document; only the first is read",
                line=line,
                column=None if line is None else 1,
            )
        )

    def _node(self, loader: yaml.SafeLoader | yaml.CSafeLoader) -> YNode:
        """Build one complete node (scalar, alias or collection) from the event stream.

        This loop runs once per event of every file: it is written for speed (locals, no
        helper calls on the scalar path) and keeps its own stack, so depth costs no recursion.
        """
        stack: list[_Frame] = []
        top: _Frame | None = None
        get_event = loader.get_event
        anchors = self.anchors
        nodes = 0
        scalar_event = _ScalarEvent
        while True:
            # Any: the stubs type events loosely; inside a document every event has marks.
            event: Any = get_event()
            kind = type(event)
            node: YNode
            size = 1
            if kind is scalar_event:
                start, end = event.start_mark, event.end_mark
                tag = event.tag
                node = YScalar(
                    event.value,
                    event.style or "",
                    start.line + 1,
                    start.column + 1,
                    end.line + 1,
                    end.column + 1,
                    start.index,
                    end.index,
                    None if tag is None or tag == "!" else tag,
                    event.anchor,
                )
                if event.anchor is not None:
                    anchors[event.anchor] = (node, 1)
            elif kind is _MappingStartEvent or kind is _SequenceStartEvent:
                if len(stack) >= MAX_DEPTH:
                    raise self._abort(
                        f"nesting is deeper than {MAX_DEPTH} levels; not parsed", event
                    )
                top = _Frame(kind is _MappingStartEvent, event)
                stack.append(top)
                continue
            elif kind is _MappingEndEvent or kind is _SequenceEndEvent:
                frame = stack.pop()
                top = stack[-1] if stack else None
                node = self._collection(frame, event)
                size = frame.size
                if frame.anchor is not None:
                    anchors[frame.anchor] = (node, size)
            elif kind is yaml.AliasEvent:
                target = anchors.get(event.anchor)
                if target is None:
                    open_anchors = {f.anchor for f in stack}
                    why = "refers to itself" if event.anchor in open_anchors else "is not defined"
                    raise self._abort(f"alias *{event.anchor} {why}", event)
                node, size = target
                nodes -= 1  # shared, not a new node
            else:  # pragma: no cover - the parser only emits the events above here
                raise self._abort(f"unexpected YAML event {kind.__name__}", event)
            nodes += 1
            if nodes > MAX_NODES:
                raise self._abort(f"more than {MAX_NODES} YAML nodes; not parsed", event)
            if top is None:
                return node
            top.items.append(node)
            top.size += size
            if top.size > MAX_EXPANDED:
                raise self._abort(
                    f"aliases expand to more than {MAX_EXPANDED} nodes (an alias bomb?); "
                    "not parsed",
                    event,
                )

    def _collection(self, frame: _Frame, end_event: Any) -> YNode:
        start_event = frame.event
        start, end = start_event.start_mark, end_event.end_mark
        tag = start_event.tag
        tag = None if tag is None or tag == "!" else tag
        flow = bool(start_event.flow_style)
        if not frame.is_map:
            return YSequence(
                tuple(frame.items),
                start.line + 1,
                start.column + 1,
                end.line + 1,
                end.column + 1,
                start.index,
                end.index,
                flow,
                tag,
                frame.anchor,
            )
        pairs, index = self._pairs(frame.items)
        return YMapping(
            tuple(pairs),
            start.line + 1,
            start.column + 1,
            end.line + 1,
            end.column + 1,
            start.index,
            end.index,
            flow,
            tag,
            frame.anchor,
            index,
        )

    def _pairs(
        self, flat: list[YNode]
    ) -> tuple[list[tuple[YNode, YNode]], dict[str, tuple[YNode, YNode]]]:
        """Pair keys with values; apply merge keys; keep the last of duplicate keys."""
        pairs = list(zip(flat[0::2], flat[1::2], strict=False))
        index: dict[str, tuple[YNode, YNode]] = {}
        for pair in pairs:
            key = pair[0]
            if key.__class__ is YScalar:
                index[key.value] = pair
        if len(index) == len(pairs) and "<<" not in index:
            return pairs, index  # the common case: distinct scalar keys, no merge
        return self._slow_pairs(pairs)

    def _slow_pairs(
        self, flat_pairs: list[tuple[YNode, YNode]]
    ) -> tuple[list[tuple[YNode, YNode]], dict[str, tuple[YNode, YNode]]]:
        pairs: list[tuple[YNode, YNode]] = []
        index: dict[str, tuple[YNode, YNode]] = {}
        merges: list[YNode] = []
        for pair in flat_pairs:
            key, value = pair
            if isinstance(key, YScalar):
                text = key.value
                if text == "<<" and not key.style:
                    merges.append(value)
                    continue
                previous = index.get(text)
                if previous is not None:
                    self._duplicate(key, previous[0])
                    pairs.remove(previous)
                    del index[text]  # re-added below, in the position of the last one
                index[text] = pair
            pairs.append(pair)
        if merges:
            pairs = self._merged(merges, index) + pairs
            # Rebuilt so that the index follows the pairs' order (merged keys first).
            index = {p[0].value: p for p in pairs if isinstance(p[0], YScalar)}
        return pairs, index

    def _merged(
        self, merges: list[YNode], explicit: dict[str, tuple[YNode, YNode]]
    ) -> list[tuple[YNode, YNode]]:
        """The pairs that ``<<`` brings in: explicit keys win, then earlier sources."""
        sources: list[YMapping] = []
        for value in merges:
            candidates = value.items if isinstance(value, YSequence) else (value,)
            for candidate in candidates:
                if isinstance(candidate, YMapping):
                    sources.append(candidate)
                else:
                    self.diagnostics.append(
                        Diagnostic(
                            self.path,
                            "merge key (<<) value is not a mapping; ignored",
                            line=candidate.line,
                            column=candidate.column,
                        )
                    )
        seen = set(explicit)
        merged: list[tuple[YNode, YNode]] = []
        for source in sources:
            for pair in source.items:
                key = pair[0]
                if isinstance(key, YScalar):
                    if key.value in seen:
                        continue
                    seen.add(key.value)
                merged.append(pair)
        return merged

    def _duplicate(self, key: YScalar, first: YNode) -> None:
        self.diagnostics.append(
            Diagnostic(
                self.path,
                f"duplicate key {key.value!r} (first at line {first.line}); the last one is "
                "used, and GitHub rejects the file",
                line=key.line,
                column=key.column,
            )
        )

    def _abort(self, message: str, event: Any) -> _AbortError:
        mark = event.start_mark
        return _AbortError(
            Diagnostic(self.path, message, line=mark.line + 1, column=mark.column + 1)
        )

    def _yaml_error(self, error: yaml.MarkedYAMLError) -> Diagnostic:
        parts = [p for p in (error.context, error.problem) if p]
        message = "invalid YAML: " + ("; ".join(parts) if parts else str(error))
        mark = error.problem_mark or error.context_mark
        if mark is None:
            return Diagnostic(self.path, message)
        return Diagnostic(self.path, message, line=mark.line + 1, column=mark.column + 1)

    def _reader_error(self, error: yaml.YAMLError) -> Diagnostic:
        position = getattr(error, "position", None)
        reason = getattr(error, "reason", None) or str(error)
        if isinstance(position, int) and 0 <= position <= len(self.text):
            line = self.text.count("\n", 0, position) + 1
            column = position - (self.text.rfind("\n", 0, position) + 1) + 1
            return Diagnostic(self.path, f"invalid YAML: {reason}", line=line, column=column)
        return Diagnostic(self.path, f"invalid YAML: {reason}")


def _scalar_offset(doc: Document, node: YScalar, offset: int) -> int:
    value = node.value
    offset = max(0, min(offset, len(value)))
    text = doc.text
    style = node.style
    if style == "|":
        found = _literal_offset(doc, node, offset)
        if found is not None:
            return found
    elif node.line == node.end_line and style != ">":
        # One line, no folding: exact unless an escape sits before the offset.
        body = node.start + (1 if style else 0)
        if (
            not style
            or (style == "'" and "'" not in value[:offset])
            or (style == '"' and "\\" not in text[body : body + offset])
        ):
            return body + offset
    return _aligned_offset(text, node, offset)


def _literal_offset(doc: Document, node: YScalar, offset: int) -> int | None:
    """Exact offset inside a ``|`` block: value lines are source lines minus indentation."""
    value = node.value
    lines_before = value.count("\n", 0, offset)
    line_start = value.rfind("\n", 0, offset) + 1
    column = offset - line_start
    line_end = value.find("\n", line_start)
    piece = value[line_start : line_end if line_end >= 0 else len(value)]
    indent = _block_indent(doc, node)
    if indent is None:
        return None
    source_line = node.line + 1 + lines_before
    starts = doc.line_starts
    if source_line > len(starts):
        return None
    source = doc.line_text(source_line)
    if piece and source[indent : indent + len(piece)] != piece:
        return None  # tabs, odd indentation: let the alignment find it
    return starts[source_line - 1] + indent + column


def _block_indent(doc: Document, node: YScalar) -> int | None:
    """The indentation of a block scalar's content (its first non-blank line)."""
    for line in range(node.line + 1, node.end_line + 1):
        source = doc.line_text(line)
        stripped = source.lstrip(" ")
        if stripped:
            return len(source) - len(stripped)
    return None


def _aligned_offset(text: str, node: YScalar, offset: int) -> int:
    """Best effort: walk the source and the value together, skipping what YAML dropped."""
    value = node.value
    position = node.start
    end = max(node.end, position)
    if node.is_block:
        # Skip the header line (`>-`, `|2` and a comment).
        newline = _LINE_BREAK_RE.search(text, position, end)
        position = newline.end() if newline else position
    elif node.style:
        position += 1
    for i in range(offset + 1 if offset < len(value) else offset):
        char = value[i]
        if position < end and text[position] == char:
            if i < offset:
                position += 1
            continue
        found = text.find(char, position, end)
        if found < 0:
            continue  # an escape or a fold produced it: stay put
        position = found + 1 if i < offset else found
    return min(position, len(text))
