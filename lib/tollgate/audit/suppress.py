"""Inline ignores: ``# tollgate: ignore[rule-id, other-id] optional reason``.

The comment silences the listed rules on its own line, or on the next line when it stands
alone on its line (so that it does not have to share a ``uses:`` line with Dependabot's
``# v1.2.3`` comment). Only real YAML comments count: a ``#`` inside a scalar (a shell
comment in a ``run: |`` block, a quoted string) is text, which the node positions tell.
Since a block scalar cannot hold a YAML comment, one on the line that opens it
(``run: |  # tollgate: ignore[template-injection]``, or alone on the line above) covers every
line of the block.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass

from tollgate.audit.source import Document, YMapping, YNode, YScalar

_DIRECTIVE = re.compile(r"#[ \t]*tollgate:[ \t]*ignore\[([^\]\r\n]*)\]")
# YAML starts a comment at '#' only at the start of a line or after white space.
_COMMENT_START = frozenset(" \t\r\n\ufeff")


@dataclass(frozen=True)
class InlineIgnores:
    """The ignore comments of one file."""

    on_line: Mapping[int, frozenset[str]]
    """Line -> rule ids silenced there (by a comment on it, or alone on the line above)."""

    @classmethod
    def scan(cls, document: Document) -> InlineIgnores | None:
        """The file's ignore comments; ``None`` when it has none (the common case)."""
        text = document.text
        if "tollgate" not in text:
            return None
        candidates = [
            match
            for match in _DIRECTIVE.finditer(text)
            if match.start() == 0 or text[match.start() - 1] in _COMMENT_START
        ]
        if not candidates:
            return None
        in_scalars = _inside_scalars(document.root, [match.start() for match in candidates], text)
        on_line: dict[int, frozenset[str]] = {}
        for match in candidates:
            if match.start() in in_scalars:
                continue
            rules = frozenset(part.strip() for part in match.group(1).split(",") if part.strip())
            line, column = document.position(match.start())
            alone = not document.line_text(line)[: column - 1].strip()
            for target in (line, line + 1) if alone else (line,):
                on_line[target] = on_line.get(target, frozenset()) | rules
        for block in _block_scalars(document.root, set(on_line)):
            rules = on_line[block.line]
            # The end mark of a block is the start of the line after it.
            last = block.end_line - 1 if block.end_column == 1 else block.end_line
            for covered in range(block.line + 1, last + 1):
                on_line[covered] = on_line.get(covered, frozenset()) | rules
        return cls(on_line) if on_line else None

    def suppresses(self, rule: str, line: int) -> bool:
        """True when ``rule`` is silenced on ``line``."""
        rules = self.on_line.get(line)
        return rules is not None and rule in rules


def _inside_scalars(root: YNode, offsets: list[int], text: str) -> set[int]:
    """Those of ``offsets`` (sorted) that lie inside a scalar's source text.

    A block scalar's span starts at its ``|``/``>`` indicator, but the rest of that header
    line may hold a real comment: only what follows the header is the scalar's text.
    """
    found: set[int] = set()
    seen: set[int] = set()
    stack: list[YNode] = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue  # an alias: the anchored node was already looked at
        seen.add(id(node))
        i = bisect_left(offsets, node.start)
        if i == len(offsets) or offsets[i] >= node.end:
            continue  # no candidate within this node's text: skip its subtree
        if isinstance(node, YScalar):
            if node.is_block:
                header_end = text.find("\n", node.start)
                while i < len(offsets) and offsets[i] < header_end:
                    i += 1
            while i < len(offsets) and offsets[i] < node.end:
                found.add(offsets[i])
                i += 1
        elif isinstance(node, YMapping):
            for key, value in node.items:
                stack.append(key)
                stack.append(value)
        else:
            stack.extend(node.items)
    return found


def _block_scalars(root: YNode, lines: set[int]) -> list[YScalar]:
    """The ``|`` / ``>`` scalars that open on one of ``lines``."""
    found: list[YScalar] = []
    seen: set[int] = set()
    stack: list[YNode] = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, YScalar):
            if node.is_block and node.line in lines:
                found.append(node)
        elif isinstance(node, YMapping):
            stack.extend(value for _, value in node.items)
        else:
            stack.extend(node.items)
    return found
