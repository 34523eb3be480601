"""Properties of masking over random secrets, random text and random read boundaries."""

from __future__ import annotations

import itertools

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tollgate.masking.matcher import AhoCorasickMatcher, RegexMatcher
from tollgate.masking.redactor import StreamRedactor, redact_all
from tollgate.masking.secrets import SecretSet

# The replacement is a byte that no generated secret or text contains, so an occurrence
# of a pattern in the output can only be one the redactor missed.
REPLACEMENT = b"\x07"
# A small alphabet makes overlaps, shared prefixes and near-misses likely.
_ALPHABET = "abc:'\"&\n= \xe9"

secret_text = st.text(alphabet=_ALPHABET, min_size=4, max_size=24)
filler = st.binary(max_size=40).map(lambda b: b.replace(REPLACEMENT, b"")) | st.text(
    alphabet=_ALPHABET, max_size=40
).map(str.encode)


@st.composite
def logs(draw: st.DrawFn) -> tuple[SecretSet, bytes, list[int]]:
    secrets = SecretSet()
    for value in draw(st.lists(secret_text, min_size=1, max_size=4)):
        secrets.add(value)
    assume(secrets)
    pieces: list[bytes] = []
    patterns = sorted(secrets.patterns)
    for _ in range(draw(st.integers(1, 8))):
        pieces.append(draw(filler))
        if draw(st.booleans()):
            pieces.append(draw(st.sampled_from(patterns)))
    data = b"".join(pieces)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=10)))
    return secrets, data, cuts


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _stream(secrets: SecretSet, chunks: list[bytes]) -> bytes:
    redactor = StreamRedactor(secrets.matcher(), REPLACEMENT)
    out = [redactor.feed(chunk) for chunk in chunks]
    out.append(redactor.flush())
    return b"".join(out)


@settings(max_examples=300, deadline=None)
@given(logs())
def test_no_secret_or_variant_survives_any_split(case: tuple[SecretSet, bytes, list[int]]) -> None:
    secrets, data, cuts = case
    out = _stream(secrets, _chunks(data, cuts))
    for pattern in secrets.patterns:
        assert pattern not in out


@settings(max_examples=300, deadline=None)
@given(logs())
def test_streaming_equals_one_shot(case: tuple[SecretSet, bytes, list[int]]) -> None:
    secrets, data, cuts = case
    expected = redact_all(secrets.matcher(), data, REPLACEMENT)
    assert _stream(secrets, _chunks(data, cuts)) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(secret_text, min_size=1, max_size=4), st.binary(max_size=300), st.data())
def test_text_without_secrets_passes_through_identical(
    values: list[str], data: bytes, draw: st.DataObject
) -> None:
    secrets = SecretSet()
    for value in values:
        secrets.add(value)
    assume(secrets and not any(p in data for p in secrets.patterns))
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=10)))
    assert _stream(secrets, _chunks(data, cuts)) == data


@settings(max_examples=200, deadline=None)
@given(logs())
def test_hold_back_is_bounded(case: tuple[SecretSet, bytes, list[int]]) -> None:
    secrets, data, cuts = case
    matcher = secrets.matcher()
    redactor = StreamRedactor(matcher, REPLACEMENT)
    for chunk in _chunks(data, cuts):
        redactor.feed(chunk)
        # Only a partial match is held, never the stream so far.
        assert redactor.pending < matcher.max_length


@settings(max_examples=200, deadline=None)
@given(
    # up to 12 bytes: longer than the DFA's 6-byte anchors, so hits are confirmed too
    st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=6),
    st.binary(max_size=60),
)
def test_regex_fallback_covers_the_same_bytes(patterns: list[bytes], data: bytes) -> None:
    fast = AhoCorasickMatcher(patterns)
    slow = RegexMatcher(patterns)
    assert redact_all(fast, data, REPLACEMENT) == redact_all(slow, data, REPLACEMENT)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=6),
    st.binary(max_size=80),
)
def test_split_scan_finds_what_the_serial_scan_finds(patterns: list[bytes], data: bytes) -> None:
    # parallel_threshold=1 scans every haystack as two halves on two threads.
    split = AhoCorasickMatcher(patterns, parallel_threshold=1)
    serial = AhoCorasickMatcher(patterns, parallel_threshold=1 << 62)
    assert sorted(set(split.find(data))) == sorted(set(serial.find(data)))
