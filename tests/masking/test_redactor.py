"""The streaming redactor: splits, overlaps, adjacency, hold-back and pass-through."""

from __future__ import annotations

import pytest

from tollgate.masking.matcher import AhoCorasickMatcher, Matcher, RegexMatcher
from tollgate.masking.redactor import StreamRedactor, merge_ranges, redact_all

MATCHERS = [AhoCorasickMatcher, RegexMatcher]


def _stream(matcher: Matcher, pieces: list[bytes], replacement: bytes = b"***") -> bytes:
    redactor = StreamRedactor(matcher, replacement)
    out = b"".join(redactor.feed(piece) for piece in pieces)
    return out + redactor.flush()


def _split(marked: str) -> list[bytes]:
    """``a|b`` marks a boundary between two reads, as in gitlab-runner's masker tests."""
    return [part.encode() for part in marked.split("|")]


@pytest.fixture(params=MATCHERS, ids=lambda cls: cls.__name__)
def matcher_class(request: pytest.FixtureRequest) -> type[Matcher]:
    cls: type[Matcher] = request.param
    return cls


# microsoft/azure-pipelines-agent SecretMaskerL0 (same lineage as the GitHub runner).
@pytest.mark.parametrize(
    ("secrets", "log", "expected"),
    [
        ([b"def"], "abcdefg", "abc***g"),
        ([b"def"], "abcdefgdef", "abc***g***"),
        ([b"abc"], "abcabcdef", "***def"),  # adjacent instances merge
        ([b"bcd", b"fgh"], "abcdefghi", "a***e***i"),
        ([b"bcd", b"cde"], "abcdefg", "a***fg"),
        ([b"bcd", b"def"], "abcdefg", "a***g"),  # overlapping secrets: one replacement
        ([b"bcd", b"efg"], "abcdefgh", "a***h"),  # adjacent secrets: one replacement
        ([b"abc"], "", ""),
    ],
)
def test_agent_vectors(
    matcher_class: type[Matcher], secrets: list[bytes], log: str, expected: str
) -> None:
    matcher = matcher_class(secrets)  # type: ignore[call-arg]
    assert redact_all(matcher, log.encode(), b"***") == expected.encode()
    # Every split of the input gives the same result as the whole.
    data = log.encode()
    for cut in range(len(data) + 1):
        assert _stream(matcher, [data[:cut], data[cut:]]) == expected.encode()


# gitlab-runner common/buildlogger/internal/masker/masker_test.go; `|` is a write boundary.
@pytest.mark.parametrize(
    ("secrets", "marked", "expected"),
    [
        ([b"secrets"], "secrets|s", "[MASKED]s"),
        ([b"secrets"], "s|ecrets", "[MASKED]"),
        ([b"secrets"], "ssecrets", "s[MASKED]"),
        ([b"secrets"], "sec|ret|s and more", "[MASKED] and more"),
        ([b"mask", b"prefix_mask"], "prefix_|mask", "[MASKED]"),
        ([b"mask", b"prefix_mask"], "prefix_ma|sk", "[MASKED]"),
        ([b"mask", b"prefix_mask"], "prefix_|other mask", "prefix_other [MASKED]"),
        (
            [b"this is the end", b"en foobar", b"en"],
            "overlap: this is the en| foobar",
            "overlap: this is the [MASKED]",
        ),
        # gitlab-runner#27861: a phrase that is a prefix of a longer one must not leak
        # the longer one's tail.
        ([b"temp4now", b"temp4now111dd"], "x temp4now|111dd y", "x [MASKED] y"),
    ],
)
def test_gitlab_runner_vectors(
    matcher_class: type[Matcher], secrets: list[bytes], marked: str, expected: str
) -> None:
    matcher = matcher_class(secrets)  # type: ignore[call-arg]
    assert _stream(matcher, _split(marked), b"[MASKED]") == expected.encode()


def test_long_secret_split_in_two(matcher_class: type[Matcher]) -> None:
    secret = bytes(range(33, 127)) * 170  # 15,980 bytes
    matcher = matcher_class([secret])  # type: ignore[call-arg]
    data = b"start " + secret + b" end"
    assert _stream(matcher, [data[:8000], data[8000:]]) == b"start *** end"


def test_adjacent_matches_merge_across_reads(matcher_class: type[Matcher]) -> None:
    matcher = matcher_class([b"alpha", b"omega"])  # type: ignore[call-arg]
    assert _stream(matcher, [b"x alpha", b"omega y"]) == b"x *** y"
    assert _stream(matcher, [b"x alpha", b"", b"omega", b"alpha y"]) == b"x *** y"
    assert _stream(matcher, [b"x alpha", b" omega y"]) == b"x *** *** y"


def test_output_is_released_as_soon_as_it_cannot_be_a_secret(
    matcher_class: type[Matcher],
) -> None:
    redactor = StreamRedactor(matcher_class([b"topsecret"]))  # type: ignore[call-arg]
    assert redactor.feed(b"line one\n") == b"line one\n"
    assert redactor.pending == 0
    # A tail that could start the secret is held back ...
    assert redactor.feed(b"value: top") == b"value: "
    assert redactor.pending == 3
    # ... and released as soon as it turns out not to be one.
    assert redactor.feed(b"ic\n") == b"topic\n"
    assert redactor.pending == 0
    assert redactor.feed(b"t") == b""
    assert redactor.flush() == b"t"


def test_invalid_utf8_passes_through(matcher_class: type[Matcher]) -> None:
    matcher = matcher_class([b"s3cret"])  # type: ignore[call-arg]
    data = b"\xff\xfe\x80 s3cret \xc3\x28 \xed\xa0\x80"
    assert _stream(matcher, [data[:5], data[5:]]) == b"\xff\xfe\x80 *** \xc3\x28 \xed\xa0\x80"


def test_merge_ranges() -> None:
    assert merge_ranges([(5, 8), (1, 3), (3, 4), (7, 10), (12, 13)]) == [(1, 4), (5, 10), (12, 13)]
    assert merge_ranges([]) == []


def test_matchers_agree_on_overlapping_matches() -> None:
    patterns = [b"aa", b"aaa", b"ab", b"ba"]
    haystack = b"aaabaaab"
    fast = set(AhoCorasickMatcher(patterns).find(haystack))
    slow = set(RegexMatcher(patterns).find(haystack))
    # Both cover the same bytes; the DFA may report more (all) overlapping matches.
    assert merge_ranges(sorted(fast)) == merge_ranges(sorted(slow)) == [(0, 8)]
    assert slow <= fast


def test_partial_start_finds_longest_proper_prefix() -> None:
    for cls in MATCHERS:
        matcher = cls([b"abcdef", b"cdx"])
        assert matcher.partial_start(b"zzabcd") == 2  # "abcd" could become abcdef
        assert matcher.partial_start(b"zzabcdef") == 8  # a whole match is not pending
        assert matcher.partial_start(b"zzzzc") == 4
        assert matcher.partial_start(b"zzzz") == 4
        assert matcher.partial_start(b"") == 0


def test_a_pattern_cut_off_by_the_end_of_the_data_is_not_reported() -> None:
    # Hits are confirmed by slicing: a slice past the end is shorter than asked for.
    matcher = AhoCorasickMatcher([b"Ojo6", b"Ojo6Og=="])
    assert matcher.find(b"xOjo6") == [(1, 5)]
    assert matcher.find(b"xOjo6Og=") == [(1, 5)]
    assert (1, 9) in matcher.find(b"xOjo6Og==")
    assert redact_all(matcher, b"xOjo6Og==", b"*") == b"x*"


def test_patterns_sharing_an_anchor_are_told_apart() -> None:
    # The DFA holds 6-byte anchors; the full patterns behind one anchor differ later.
    patterns = [b"ABCDEFGH-one", b"ABCDEFGH-two-longer", b"ABCDEFGH", b"CDEFGH-o"]
    matcher = AhoCorasickMatcher(patterns)
    data = b"x ABCDEFGH-two-longer y ABCDEFGH-one z ABCDEFGH-zzz ABCDEFG"
    assert redact_all(matcher, data, b"*") == b"x * y * z *-zzz ABCDEFG"
    assert redact_all(RegexMatcher(patterns), data, b"*") == b"x * y * z *-zzz ABCDEFG"


def test_back_to_back_secrets_do_not_pile_up(matcher_class: type[Matcher]) -> None:
    # `yes $SECRET | tr -d '\n'`: every read ends inside the next occurrence.
    matcher = matcher_class([b"s3cret"])  # type: ignore[call-arg]
    redactor = StreamRedactor(matcher)
    out = [redactor.feed(b"x" + b"s3cret" * 3 + b"s3c")]
    for _ in range(1000):
        out.append(redactor.feed(b"ret" + b"s3cret" * 3 + b"s3c"))
        assert redactor.pending < 6
    out.append(redactor.feed(b"ret end"))
    out.append(redactor.flush())
    assert b"".join(out) == b"x*** end"


def test_masked_bytes_stay_masked_while_held_back() -> None:
    # Found by hypothesis: a read that releases nothing used to forget that the first held
    # byte belonged to a replacement already made, and later released it in clear.
    from tollgate.masking.secrets import SecretSet

    secrets = SecretSet()
    secrets.add(":\nc'")
    secrets.add("::::::::::::::::'''&\"c")
    data = b"\x00\x00\x00\x00OgpjJw==::::::::::::::::\\'\\'\\'\\&\\\"c%3A%3A%3A%3A"
    expected = redact_all(secrets.matcher(), data, b"*")
    assert expected == b"\x00\x00\x00\x00*%3A%3A%3A%3A"
    for first, second in ((39, 40), (38, 40), (39, 41)):
        pieces = [data[:first], data[first:second], data[second:]]
        assert _stream(secrets.matcher(), pieces, b"*") == expected


def test_split_scan_of_a_large_buffer_finds_every_plant() -> None:
    import random

    rng = random.Random(7)
    patterns = [
        bytes(rng.choice(b"abcdefgh") for _ in range(rng.randint(4, 30))) for _ in range(50)
    ]
    data = bytearray(rng.randbytes(1 << 20))
    for _ in range(400):
        at = rng.randrange(len(data) - 40)
        pattern = rng.choice(patterns)
        data[at : at + len(pattern)] = pattern
    # One plant across the middle, where the halves meet.
    middle = len(data) // 2
    data[middle - 3 : middle - 3 + len(patterns[0])] = patterns[0]
    haystack = bytes(data)
    split = AhoCorasickMatcher(patterns)  # 1 MiB is over the threshold
    serial = AhoCorasickMatcher(patterns, parallel_threshold=1 << 62)
    found = sorted(set(split.find(haystack)))
    assert found == sorted(set(serial.find(haystack)))
    assert (middle - 3, middle - 3 + len(patterns[0])) in found
    assert redact_all(split, haystack, b"*") == redact_all(RegexMatcher(patterns), haystack, b"*")


def test_anchors_start_at_the_byte_rarest_in_logs() -> None:
    from tollgate.masking.matcher import anchor_offset

    assert anchor_offset(b"eeeeQeee") == 4  # a capital is rarer in logs than any lower-case
    assert anchor_offset(b"e e e e ") == 0  # ties: the first
    assert anchor_offset(b"eta%") == 0  # no room to move: a head no longer than an anchor
    assert anchor_offset(b"the\x00ok!!") == 3  # an unlisted byte counts as rarest of all
    assert anchor_offset(b"the log\x00") == 4  # the window must fit: \x00 is out of reach


def test_a_pattern_anchored_inside_is_found_whole_and_only_whole() -> None:
    # The anchor of b"aaaaQaaaZ" is "Qaaa", four bytes in: a hit there means the pattern
    # would start four bytes earlier, which must be inside the data and must match.
    matcher = AhoCorasickMatcher([b"aaaaQaaaZ"])
    assert matcher.find(b"QaaaZ") == []  # would start before the data
    assert matcher.find(b"xaaaaQaaaZ") == [(1, 10)]
    assert matcher.find(b"xbaaaQaaaZ") == []  # the anchor, but not the pattern
    assert matcher.find(b"aaaaQaaa") == []  # cut short by the end
    assert redact_all(matcher, b"aaaaQaaaZaaaaQaaaZ!", b"*") == b"*!"


def test_an_error_in_the_worker_reaches_the_caller() -> None:
    from tollgate.masking.matcher import _worker

    def fail() -> int:
        raise ValueError("from the worker")

    result = _worker().start(fail)
    with pytest.raises(ValueError, match="from the worker"):
        result()
    assert _worker().start(lambda: 41 + 1)() == 42  # and the worker goes on
