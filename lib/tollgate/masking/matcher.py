"""Finding every occurrence of many byte patterns at once.

The redactor needs *all* matches, overlapping ones included: with secrets ``bcd`` and ``def``
in ``abcdefg`` a leftmost-first search reports only ``bcd`` and leaves ``ef`` in the log.
The default matcher is ahocorasick-rs's DFA in overlapping mode over short anchors (1,000
secrets, 9,700 patterns: about 470 MB/s of log-like text on one core, 600-730 on two); where
its wheel is missing, a regular expression with one look-ahead per start position gives the
same answers, slower.
"""

from __future__ import annotations

import bisect
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeAlias, TypeVar, cast

_logger = logging.getLogger(__name__)

ANCHOR_LENGTH = 4
"""How many bytes of each pattern the DFA holds (see :class:`AhoCorasickMatcher`).

Four keeps the DFA small: for 1,000 secrets it builds in 0.011 s, against 0.015 s for six
and 0.024 s for eight bytes. The price is chance hits, each confirmed in Python in under a
microsecond: over random base64, 4,000 anchors hit about once per 4,000 bytes (measured: the
scan is no slower); over ordinary log text, far less."""

HEAD_LENGTH = 8
"""Anchors are taken from within each pattern's first this many bytes.

The variants of one secret at one base64 alignment (padded or not, with a trailing newline
or not, the fragment) share at least their first 8 bytes, so they share one anchor."""

# Bytes by how common they are in CI logs, most common first: English letter frequencies,
# the punctuation of paths, timestamps and key=value pairs, digits, then capitals. Bytes not
# listed (other punctuation, control and non-ASCII bytes) count as rarer than all of them.
_COMMON_IN_LOGS = (
    b" etaoinsrhldcumfpgwybvkxjqz.-/:_=0123456789\n,'\"()[]{}<>ETAOINSRHLDCUMFPGWYBVKXJQZ"
)
_RANK = bytes(
    len(_COMMON_IN_LOGS) - _COMMON_IN_LOGS.index(b) if b in _COMMON_IN_LOGS else 0
    for b in range(256)
)
"""Per byte: higher is more common in logs (0: rarest), for :func:`anchor_offset`."""


def anchor_offset(head: bytes) -> int:
    """Where in ``head`` its anchor starts: at the byte rarest in logs (the first such).

    The DFA leaves its start state only where a log has an anchor's first byte; a DFA that
    mostly stays in its start state stays in the CPU cache. On log-like text this scans 1,000
    secrets 1.3 to 1.7 times as fast as anchoring each pattern at its first byte.
    """
    last = len(head) - ANCHOR_LENGTH
    if last <= 0:
        return 0
    ranks = head[: last + 1].translate(_RANK)
    return ranks.index(min(ranks))


PARALLEL_THRESHOLD = 256 * 1024
"""Haystacks at least this long are scanned as two halves on two cores."""

_CPUS = os.cpu_count() or 1
_T = TypeVar("_T")


class _Worker:
    """One daemon thread that runs the jobs handed to it: the second halves of large scans.

    Not a ThreadPoolExecutor: importing concurrent.futures and starting its pool cost 5 ms
    of a masking step, and its threads are joined at exit, where a daemon is not.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], queue.SimpleQueue[Any]]]
        self._jobs = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="tollgate-match", daemon=True).start()

    def _serve(self) -> None:
        while True:
            job, reply = self._jobs.get()
            try:
                reply.put((True, job()))
            except BaseException as error:  # handed to the caller, who raises it
                reply.put((False, error))

    def start(self, job: Callable[[], _T]) -> Callable[[], _T]:
        """Run ``job`` on the worker; return a function that waits for its result."""
        reply: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self._jobs.put((job, reply))

        def result() -> _T:
            done, value = reply.get()
            if done:
                return cast("_T", value)
            raise value

        return result


_WORKER: _Worker | None = None
_WORKER_LOCK = threading.Lock()


def _worker() -> _Worker:
    """The worker thread, started on first use."""
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = _Worker()
        return _WORKER


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
        """``heads``: a prefix of each pattern, whole or at least 3 bytes long (the matcher's
        :data:`HEAD_LENGTH`-byte heads), so the pre-filters are built from fewer items."""
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

    The DFA holds only an :data:`ANCHOR_LENGTH`-byte window of each pattern's first
    :data:`HEAD_LENGTH` bytes (see :func:`anchor_offset`), and each anchor hit is confirmed
    against the full patterns it stands for. That keeps the DFA small and quick to build
    (1,000 secrets: 9,700 patterns, 4,000 anchors, 0.01 s instead of 0.2 s). Within the head,
    not at the end: the variants of one secret share beginnings (base64 of the value, of the
    value and a newline, padded or not), so suffix anchors would be 2.5 times as many. The
    price: secrets that share a beginning with common text (``https://...``) may be confirmed
    at each occurrence of it, in well under a microsecond each.
    """

    def __init__(
        self, patterns: Iterable[bytes], parallel_threshold: int = PARALLEL_THRESHOLD
    ) -> None:
        import ahocorasick_rs

        self._patterns = frozenset(patterns)
        if not self._patterns:
            raise ValueError("a matcher needs at least one pattern")
        heads = {pattern[:HEAD_LENGTH] for pattern in self._patterns}
        self._offsets = {head: anchor_offset(head) for head in heads}
        anchors = {head[k : k + ANCHOR_LENGTH] for head, k in self._offsets.items()}
        self._anchors = list(anchors)
        # Anchor index -> (offset of the anchor in the pattern, the patterns' lengths longest
        # first) for the patterns behind it, worked out when the first anchor is hit. Nothing
        # per pattern is built up front: in a fresh process that cost more than the DFA, and
        # most logs hit no anchor.
        self._candidates: dict[int, tuple[tuple[int, tuple[int, ...]], ...]] = {}
        self._heads_by_anchor: dict[bytes, list[bytes]] | None = None
        self._automaton = ahocorasick_rs.BytesAhoCorasick(
            self._anchors, implementation=ahocorasick_rs.Implementation.DFA
        )
        self._prefixes = _PrefixIndex(self._patterns, heads=heads)
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
        second = _worker().start(
            lambda: self._automaton.find_matches_as_indexes(view[middle:], overlapping=True)
        )
        first = self._automaton.find_matches_as_indexes(
            view[: middle + ANCHOR_LENGTH - 1], overlapping=True
        )
        hits = [hit for hit in first if hit[1] < middle]
        hits.extend((index, start + middle, end + middle) for index, start, end in second())
        return hits

    def _confirm(
        self, haystack: Haystack, hits: Iterable[tuple[int, int, int]]
    ) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        patterns = self._patterns
        known = self._candidates
        size = len(haystack)
        for index, at, _ in hits:
            for offset, lengths in known.get(index) or self._candidates_of(index):
                # A slice of one of these lengths, placed so the anchor sits at its offset,
                # that is a pattern at all is one of the patterns behind the anchor. Longest
                # first; a slice cut short by either end of the haystack is not a match.
                start = at - offset
                if start < 0:
                    continue
                for length in lengths:
                    end = start + length
                    if end <= size and bytes(haystack[start:end]) in patterns:
                        found.append((start, end))
                        break
        return found

    def _candidates_of(self, index: int) -> tuple[tuple[int, tuple[int, ...]], ...]:
        if self._heads_by_anchor is None:
            heads_by_anchor: dict[bytes, list[bytes]] = {}
            for head, k in self._offsets.items():
                heads_by_anchor.setdefault(head[k : k + ANCHOR_LENGTH], []).append(head)
            self._heads_by_anchor = heads_by_anchor
        by_offset: dict[int, set[int]] = {}
        for head in self._heads_by_anchor[self._anchors[index]]:
            lengths = by_offset.setdefault(self._offsets[head], set())
            if len(head) < HEAD_LENGTH:
                lengths.add(len(head))  # a short pattern is its own head
            else:
                # The patterns behind a head are a run of the sorted patterns.
                lengths.update(map(len, self._prefixes.extending(head)))
        result = self._candidates[index] = tuple(
            (k, tuple(sorted(lengths, reverse=True))) for k, lengths in sorted(by_offset.items())
        )
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
