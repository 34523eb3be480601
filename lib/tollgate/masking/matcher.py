"""Finding every occurrence of many byte patterns at once.

The redactor needs *all* matches, overlapping ones included: with secrets ``bcd`` and ``def``
in ``abcdefg`` a leftmost-first search reports only ``bcd`` and leaves ``ef`` in the log.
The default matcher is ahocorasick-rs's DFA in overlapping mode (350-450 MB/s on log-like text
with 10,000 patterns on a 2-core machine); where its wheel is missing, a regular expression with one
look-ahead per start position gives the same answers, slower.
"""

from __future__ import annotations

import bisect
import logging
import os
import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol, TypeAlias

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

_logger = logging.getLogger(__name__)

ANCHOR_LENGTH = 4
"""How many leading bytes of each pattern the DFA holds (see :class:`AhoCorasickMatcher`).

Four keeps the DFA small: for 1,000 secrets it builds in 0.011 s, against 0.015 s for six
and 0.024 s for eight bytes, and scans no slower. The price is chance hits, each confirmed
in Python in under a microsecond: over random base64, 4,000 anchors hit about once per
4,000 bytes (measured: the scan is no slower); over ordinary log text, far less. At least 3
(the partial-match pre-filters are built from the anchors)."""

PARALLEL_THRESHOLD = 256 * 1024
"""Haystacks at least this long are scanned as two halves on two cores."""

_CPUS = os.cpu_count() or 1
_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """One worker thread for the second half of large scans, made on first use."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            from concurrent.futures import ThreadPoolExecutor

            _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tollgate-match")
        return _EXECUTOR


Haystack: TypeAlias = "bytes | memoryview"
"""What a matcher searches: bytes, or a view of a buffer a stream reads into."""


class Matcher(Protocol):
    """A compiled set of byte patterns."""

    max_length: int
    """The length of the longest pattern."""

    def find(self, haystack: Haystack) -> list[tuple[int, int]]:
        """Every ``(start, end)`` where a pattern occurs, overlapping occurrences included.

        For each start position, at least the longest pattern starting there is reported.
        Order is unspecified.
        """
        ...

    def partial_start(self, haystack: Haystack) -> int:
        """Where the longest suffix of ``haystack`` that could grow into a match begins.

        That is the smallest ``i`` such that ``haystack[i:]`` is a proper prefix of a
        pattern; ``len(haystack)`` when no suffix is. A stream redactor holds back exactly
        ``haystack[i:]``, and lets everything before it go.
        """
        ...


class _PrefixIndex:
    """Answers "is this a proper prefix of some pattern?" with a sorted list and bisect."""

    def __init__(self, patterns: frozenset[bytes], heads: Iterable[bytes] | None = None) -> None:
        """``heads``: a prefix of each pattern, whole or at least 3 bytes long (the DFA's
        anchors), so the pre-filters are built from fewer items than the patterns."""
        self._patterns = patterns
        self._sorted_list: list[bytes] | None = None
        self.max_length = max(map(len, patterns), default=0)
        # Cheap pre-filters: most positions of a log start no pattern at all. A head of 2 or
        # more bytes stands for patterns longer than 1 byte, of 3 or more for longer than 2.
        heads = patterns if heads is None else heads
        self._first = frozenset(h[:1] for h in heads if len(h) > 1)
        self._first2 = frozenset(h[:2] for h in heads if len(h) > 2)

    @property
    def _sorted(self) -> list[bytes]:
        # Sorted on first use: most streams never end inside something that starts a secret.
        if self._sorted_list is None:
            self._sorted_list = sorted(self._patterns)
        return self._sorted_list

    def extending(self, prefix: bytes) -> list[bytes]:
        """Every pattern that starts with ``prefix`` (a contiguous run of the sorted list)."""
        ordered = self._sorted
        start = end = bisect.bisect_left(ordered, prefix)
        while end < len(ordered) and ordered[end].startswith(prefix):
            end += 1
        return ordered[start:end]

    def partial_start(self, haystack: Haystack) -> int:
        # Only the last max_length - 1 bytes can start a partial match: work on a copy of
        # them, as bytes (a memoryview slice is not hashable).
        offset = max(0, len(haystack) - self.max_length + 1)
        end = bytes(haystack[offset:])
        n = len(end)
        for i in range(n):
            tail_length = n - i
            if tail_length == 1:
                if end[i:] in self._first:
                    return offset + i
                continue
            if end[i : i + 2] not in self._first2:
                continue
            tail = end[i:]
            ordered = self._sorted
            j = bisect.bisect_right(ordered, tail)
            # Patterns that extend `tail` sort right after it (and `tail` itself, a whole
            # pattern, is not a *proper* prefix: the match is reported by find()).
            if j < len(ordered) and ordered[j].startswith(tail):
                return offset + i
        return offset + n


class AhoCorasickMatcher:
    """ahocorasick-rs's DFA over short anchors, searched in overlapping mode.

    The DFA holds only the first :data:`ANCHOR_LENGTH` bytes of each pattern, and each
    anchor hit is confirmed against the full patterns that start with it. That keeps the DFA
    small and quick to build (1,000 secrets: 9,700 patterns, 4,000 anchors, 0.02 s instead
    of 0.2 s) at the same scanning speed. Prefixes rather than suffixes, because the
    variants of one secret share beginnings (base64 of the value, of the value and a
    newline, padded or not): suffix anchors would be 2.5 times as many. The price: secrets
    that share a beginning with common text (``https://...``) are confirmed at each
    occurrence of it, in well under a microsecond each.
    """

    def __init__(
        self, patterns: Iterable[bytes], parallel_threshold: int = PARALLEL_THRESHOLD
    ) -> None:
        import ahocorasick_rs

        self._patterns = frozenset(patterns)
        if not self._patterns:
            raise ValueError("a matcher needs at least one pattern")
        self._anchors = list({pattern[:ANCHOR_LENGTH] for pattern in self._patterns})
        # Anchor index -> lengths of the patterns behind it, longest first; worked out on the
        # anchor's first hit. Nothing per pattern is built up front: in a fresh process that
        # cost more than the DFA itself, and most anchors never hit.
        self._lengths: dict[int, tuple[int, ...]] = {}
        self._automaton = ahocorasick_rs.BytesAhoCorasick(
            self._anchors, implementation=ahocorasick_rs.Implementation.DFA
        )
        self._prefixes = _PrefixIndex(self._patterns, heads=self._anchors)
        self.max_length = self._prefixes.max_length
        self.parallel_threshold = parallel_threshold

    def find(self, haystack: Haystack) -> list[tuple[int, int]]:
        if len(haystack) >= self.parallel_threshold and _CPUS > 1:
            hits = self._anchor_hits_in_halves(haystack)
        else:
            hits = self._automaton.find_matches_as_indexes(haystack, overlapping=True)
        return self._confirm(haystack, hits)

    def _anchor_hits_in_halves(self, haystack: Haystack) -> list[tuple[int, int, int]]:
        """Anchor hits of both halves, one half on a worker thread.

        The DFA releases the GIL while it scans, so the halves run on two cores. The first
        half reaches one anchor length past the middle, so an anchor that straddles it is
        found there; the second half reports only anchors starting at or after the middle.
        """
        middle = len(haystack) // 2
        view = memoryview(haystack)
        second = _executor().submit(
            self._automaton.find_matches_as_indexes, view[middle:], overlapping=True
        )
        first = self._automaton.find_matches_as_indexes(
            view[: middle + ANCHOR_LENGTH - 1], overlapping=True
        )
        hits = [hit for hit in first if hit[1] < middle]
        hits.extend((index, start + middle, end + middle) for index, start, end in second.result())
        return hits

    def _confirm(
        self, haystack: Haystack, hits: Iterable[tuple[int, int, int]]
    ) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        patterns = self._patterns
        known = self._lengths
        size = len(haystack)
        for index, start, _ in hits:
            lengths = known.get(index) or self._lengths_behind(index)
            # Every pattern behind the anchor starts with it, so a slice of one of their
            # lengths that is a pattern at all is one of them. Longest first; a slice cut
            # short by the end of the haystack is not that long.
            for length in lengths:
                if start + length <= size and bytes(haystack[start : start + length]) in patterns:
                    found.append((start, start + length))
                    break
        return found

    def _lengths_behind(self, index: int) -> tuple[int, ...]:
        anchor = self._anchors[index]
        if len(anchor) < ANCHOR_LENGTH:
            lengths = {len(anchor)}  # a short pattern is its own anchor
        else:
            lengths = {len(p) for p in self._prefixes.extending(anchor)}
        result = self._lengths[index] = tuple(sorted(lengths, reverse=True))
        return result

    def partial_start(self, haystack: Haystack) -> int:
        return self._prefixes.partial_start(haystack)


class RegexMatcher:
    """Pure-Python fallback: ``(?=(longest|...|shortest))`` reports a match at every start."""

    def __init__(self, patterns: Iterable[bytes]) -> None:
        unique = sorted(set(patterns), key=lambda p: (-len(p), p))
        if not unique:
            raise ValueError("a matcher needs at least one pattern")
        alternatives = b"|".join(re.escape(p) for p in unique)
        self._regex = re.compile(b"(?=(" + alternatives + b"))", re.DOTALL)
        self._prefixes = _PrefixIndex(frozenset(unique))
        self.max_length = self._prefixes.max_length

    def find(self, haystack: Haystack) -> list[tuple[int, int]]:
        return [m.span(1) for m in self._regex.finditer(haystack)]

    def partial_start(self, haystack: Haystack) -> int:
        return self._prefixes.partial_start(haystack)


def build_matcher(patterns: Iterable[bytes]) -> Matcher:
    """The fastest matcher available here for ``patterns``."""
    try:
        return AhoCorasickMatcher(patterns)
    except ImportError:
        _logger.debug("ahocorasick-rs is not installed; using the slower regex matcher")
        return RegexMatcher(patterns)
