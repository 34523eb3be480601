"""The forms of a secret that get masked, checked against the GitHub runner's behaviour."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollgate.masking.secrets import SecretSet
from tollgate.masking.variants import MIN_FRAGMENT_LENGTH, _text_forms, is_plain, secret_variants

# actions/runner src/Test/L0/HostContextL0.cs, DefaultSecretMaskers: the secrets ...
RUNNER_SECRETS = [
    "Password123!",
    'Pass"word"123!',
    "Pass word 123!",
    "Pass<word>123!",
    "Pass'word'123!",
    '"Password123!!"',
    '"short"',
]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# ... and what the runner's log shows for each input.
RUNNER_VECTORS = [
    ("123Password123!123", "123***123"),
    ("password123", "password123"),  # matching is case-sensitive
    ('123Pass\\"word\\"123!123', "123***123"),  # command-line argument escape
    ("123Pass%20word%20123%21123", "123***123"),  # URI data escape
    ("123Pass&lt;word&gt;123!123", "123***123"),  # XML escape
    ("123Pass''word''123!123", "123***123"),  # expression string escape
    (_b64(":Password123!"), "OlBh***"),  # base64 with a 1-byte prefix
    (_b64("a:Password123!"), "YTpQ***"),
    (_b64("ab:Password123!"), "YWI6***"),
    (_b64("abc:Password123!"), "YWJjOlBh***"),
    (_b64("abcd:Password123!"), "YWJjZDpQ***"),
    (_b64("abcde:Password123!"), "YWJjZGU6***"),
    ("123Password123!!123", "123***123"),  # surrounding double quotes trimmed
    ("123short123", "123short123"),  # "short" is too short to have its quotes trimmed
    ('123"short"123', "123***123"),
]


@pytest.fixture(scope="module")
def runner_secrets() -> SecretSet:
    secrets = SecretSet()
    for secret in RUNNER_SECRETS:
        secrets.add(secret)
    return secrets


@pytest.mark.parametrize(("log", "expected"), RUNNER_VECTORS)
def test_runner_default_secret_maskers(runner_secrets: SecretSet, log: str, expected: str) -> None:
    assert runner_secrets.redact_text(log) == expected


# actions/runner HostContextL0 SecretSectionMasking: PowerShell colours a secret holding `&`.
@pytest.mark.parametrize(
    ("secret", "log", "expected"),
    [
        ("secret&+secret&secret", "secret&+\x1b[96ms\x1b[0mecret&secret", "***\x1b[96ms\x1b[0m***"),
        ("secret&secret&secret", "secret&secret&\x1b[96ms\x1b[0mecret", "***\x1b[96ms\x1b[0mecret"),
        ("sh&secret", "sh&\x1b[96ms\x1b[0mecret", "sh&\x1b[96ms\x1b[0mecret"),
    ],
)
def test_powershell_sections(secret: str, log: str, expected: str) -> None:
    secrets = SecretSet()
    secrets.add(secret)
    assert secrets.redact_text(log) == expected


def test_multiline_secret_masks_whole_and_each_line() -> None:
    # actions/runner ActionCommandManagerL0 AddMaskWithMultilineValue
    patterns = secret_variants("abcd\rdefg\nghij\r\njklm").patterns
    for line in (b"abcd", b"defg", b"ghij", b"jklm", b"abcd\rdefg\nghij\r\njklm"):
        assert line in patterns


def test_whitespace_only_lines_are_not_registered() -> None:
    patterns = secret_variants("secret-one\n   \n\t\nsecret-two").patterns
    assert b"   " not in patterns
    assert b"\t" not in patterns


def test_beyond_the_runner_base64_with_trailing_newline() -> None:
    # `echo $SECRET | base64` (actions/runner#291): the runner leaves this unmasked.
    secrets = SecretSet()
    secrets.add("hunter2-is-my-password")
    leaked = base64.b64encode(b"hunter2-is-my-password\n").decode()
    assert secrets.redact_text(f"token: {leaked}") == "token: ***"


def test_beyond_the_runner_base64_followed_by_anything() -> None:
    secrets = SecretSet()
    secrets.add("hunter2-is-my-password")
    for prefix in ("", "u:", "us:"):
        encoded = base64.b64encode(f"{prefix}hunter2-is-my-password and more".encode()).decode()
        redacted = secrets.redact_text(encoded)
        assert redacted != encoded
        # What is left visible encodes at most the prefix and what follows the secret.
        visible = redacted.replace("***", "")
        assert len(visible) < len(encoded) - 24


def test_url_safe_and_unpadded_base64() -> None:
    secret = "\xfb\xff-secret-\xfe"  # bytes that encode to '+' and '/' in standard base64
    patterns = secret_variants(secret).patterns
    raw = secret.encode()
    assert base64.urlsafe_b64encode(raw) in patterns
    assert base64.b64encode(raw).rstrip(b"=") in patterns


def test_shell_quoting_forms() -> None:
    patterns = secret_variants("it's a $ecret").patterns
    assert b"it'\\''s a $ecret" in patterns  # inside '...'
    assert b"it\\'s\\ a\\ \\$ecret" in patterns  # printf %q


def test_json_forms_with_and_without_ascii_escapes() -> None:
    secret = 'päss"word\n2'
    patterns = secret_variants(secret).patterns
    assert json.dumps(secret)[1:-1].encode() in patterns
    assert json.dumps(secret, ensure_ascii=False)[1:-1].encode() in patterns


def test_minimum_length_drops_short_forms_and_counts_them() -> None:
    variants = secret_variants("abc", min_length=4)
    assert variants.patterns == frozenset(p for p in variants.patterns if len(p) >= 4)
    assert b"abc" not in variants.patterns
    assert variants.too_short >= 1
    assert b"abc" in secret_variants("abc", min_length=3).patterns


def test_base64_fragments_have_a_floor() -> None:
    for pattern in secret_variants("abcdefg").patterns:
        if pattern not in {base64.b64encode(b"abcdefg"), b"abcdefg"}:
            assert len(pattern) >= 4
    # No fragment shorter than the floor is registered for a short secret.
    whole = {base64.b64encode(d) for d in (b"abcde", b"bcde", b"cde", b"abcde\n")} | {
        base64.urlsafe_b64encode(d) for d in (b"abcde", b"bcde", b"cde", b"abcde\n")
    }
    whole |= {w.rstrip(b"=") for w in whole}
    for pattern in secret_variants("abcde").patterns:
        if pattern.isalnum() and pattern not in whole and pattern != b"abcde":
            assert len(pattern) >= MIN_FRAGMENT_LENGTH


def test_bytes_and_undecodable_values_round_trip() -> None:
    raw = b"s3cr\xff\xfet-value"
    patterns = secret_variants(raw).patterns
    assert raw in patterns
    assert base64.b64encode(raw) in patterns
    as_text = raw.decode("utf-8", "surrogateescape")
    assert secret_variants(as_text).patterns == patterns


@given(st.text())
def test_plain_values_are_their_own_only_text_form(value: str) -> None:
    # secret_variants() skips the text encoders for plain values: sound only if every
    # encoder leaves such a value as it is (and is_plain() finds exactly those values).
    forms = set(_text_forms(value))
    if is_plain(value):
        assert forms == {value}
    else:
        assert len(forms) > 1


@given(st.from_regex(r"[A-Za-z0-9._-]{4,40}", fullmatch=True))
def test_plain_values_get_their_base64_forms(value: str) -> None:
    patterns = secret_variants(value).patterns
    assert value.encode() in patterns
    assert base64.b64encode(value.encode()) in patterns
    assert base64.b64encode(value.encode() + b"\n") in patterns
