"""The local platform (and what GitLab shares with it: exports, summaries, annotations)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fakes import jwt
from tollgate.ci import PlatformOptions
from tollgate.ci.gitlab import GitLabPlatform
from tollgate.ci.interface import Annotation, AnnotationLevel
from tollgate.ci.local import LocalPlatform, format_plain_annotation, shell_quote
from tollgate.errors import ConfigError, UsageError
from tollgate.masking.secrets import process_secrets

SECRET = "s3cr3t-Value-0123456789"
PLATFORMS = [LocalPlatform, GitLabPlatform]

NASTY_VALUES = [
    "plain",
    "",
    "it's",
    "'''",
    "'\\''",
    'double "quotes"',
    "two\nlines\n",
    "\n\nleading newlines",
    "trailing newlines\n\n\n",
    "$(touch pwned)",
    "`touch pwned`",
    "${HOME} $HOME $((1+1))",
    "back\\slash\\",
    "tab\tand\rcarriage",
    "-n",
    "--",
    "unicode: é ☃ 𝄞 \u200b",
    "; touch pwned #",
    "*",
    "!history",
    "~",
]


def test_set_output_prints_name_value(capsys: pytest.CaptureFixture[str]) -> None:
    LocalPlatform().set_output("digest", "sha256:abc")
    captured = capsys.readouterr()
    assert captured.out == "digest=sha256:abc\n"
    assert captured.err == ""


@pytest.mark.parametrize("name", ["", "1abc", "a b", "a=b", "a.b", "a<<b", "é"])
def test_set_output_rejects_bad_names(name: str) -> None:
    with pytest.raises(UsageError, match="not a valid output name"):
        LocalPlatform().set_output(name, "v")


@pytest.mark.parametrize("platform_cls", PLATFORMS)
def test_set_output_refuses_secret(
    platform_cls: type[LocalPlatform], capsys: pytest.CaptureFixture[str]
) -> None:
    platform = platform_cls()
    platform.add_mask(SECRET)
    with pytest.raises(UsageError, match="contains a masked secret") as info:
        platform.set_output("leak", f"prefix {SECRET} suffix")
    assert SECRET not in info.value.diagnostics()
    assert SECRET not in capsys.readouterr().out
    assert not Path("tollgate.env").exists()


@pytest.mark.parametrize("platform_cls", PLATFORMS)
def test_add_mask_registers_process_secret(platform_cls: type[LocalPlatform]) -> None:
    platform_cls().add_mask(SECRET)
    assert process_secrets().contains_secret(f"x{SECRET}y")


@pytest.mark.parametrize("platform_cls", PLATFORMS)
@pytest.mark.parametrize("value", ["", "   ", "\n\t"])
def test_add_mask_ignores_blank(platform_cls: type[LocalPlatform], value: str) -> None:
    platform_cls().add_mask(value)
    assert len(process_secrets()) == 0


@pytest.mark.parametrize("platform_cls", PLATFORMS)
def test_add_mask_prints_nothing(
    platform_cls: type[LocalPlatform], capsys: pytest.CaptureFixture[str]
) -> None:
    platform_cls().add_mask(SECRET)
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err


def test_shell_quote() -> None:
    assert shell_quote("it's") == "'it'\\''s'"
    assert shell_quote("") == "''"


@pytest.mark.parametrize("shell", ["bash", "dash"])
@pytest.mark.parametrize("platform_cls", PLATFORMS)
def test_export_env_round_trips_through_eval(
    shell: str,
    platform_cls: type[LocalPlatform],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    platform = platform_cls()
    for index, value in enumerate(NASTY_VALUES):
        platform.export_env(f"V{index}", value, secret=False)
    script = capsys.readouterr().out
    # Print each variable NUL-terminated so newlines in values survive the trip back.
    show = "".join(f'printf "%s\\0" "$V{i}";' for i in range(len(NASTY_VALUES)))
    result = subprocess.run(
        [shell, "-c", f'eval "$1"; {show}', shell, script],
        capture_output=True,
        cwd=tmp_path,
        check=True,
    )
    values = result.stdout.decode().split("\0")[:-1]
    assert values == NASTY_VALUES
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("platform_cls", PLATFORMS)
def test_export_env_through_command_substitution(
    platform_cls: type[LocalPlatform], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``eval "$(tollgate ...)"`` strips trailing newlines of the output, not of values."""
    platform_cls().export_env("V", "x\n\n", secret=False)
    script = capsys.readouterr().out
    result = subprocess.run(
        ["bash", "-c", 'eval "$(printf %s "$1")"; printf %s "$V"', "bash", script],
        capture_output=True,
        check=True,
    )
    assert result.stdout == b"x\n\n"


@pytest.mark.parametrize("platform_cls", PLATFORMS)
def test_export_env_secret_is_masked_first(
    platform_cls: type[LocalPlatform], capsys: pytest.CaptureFixture[str]
) -> None:
    platform_cls().export_env("TOKEN", SECRET, secret=True)
    assert capsys.readouterr().out == f"export TOKEN='{SECRET}'\n"
    assert process_secrets().contains_secret(SECRET)


@pytest.mark.parametrize("platform_cls", PLATFORMS)
def test_export_env_non_secret_is_not_masked(platform_cls: type[LocalPlatform]) -> None:
    platform_cls().export_env("REGION", "eu-west-1", secret=False)
    assert len(process_secrets()) == 0


@pytest.mark.parametrize("name", ["A-B", "1A", "", "A B", "A=B"])
def test_export_env_rejects_bad_names(name: str) -> None:
    with pytest.raises(UsageError, match="not a valid environment variable name"):
        LocalPlatform().export_env(name, "v", secret=False)


def test_export_env_rejects_nul() -> None:
    with pytest.raises(UsageError, match="NUL"):
        LocalPlatform().export_env("A", "a\0b", secret=False)


@pytest.mark.parametrize("platform_cls", PLATFORMS)
def test_summary_appends_to_default_file(platform_cls: type[LocalPlatform]) -> None:
    platform = platform_cls()
    platform.summary("# Title")
    platform.summary("second\n")
    assert Path("tollgate-summary.md").read_text() == "# Title\nsecond\n"


def test_summary_custom_path_and_redaction(tmp_path: Path) -> None:
    path = tmp_path / "out" / "summary.md"
    path.parent.mkdir()
    path.write_text("existing, no newline")
    platform = LocalPlatform(PlatformOptions(summary_path=path))
    platform.add_mask(SECRET)
    platform.summary(f"token: {SECRET}")
    assert path.read_text() == "existing, no newline\ntoken: ***\n"


def test_summary_unwritable_path_is_config_error(tmp_path: Path) -> None:
    platform = LocalPlatform(PlatformOptions(summary_path=tmp_path / "missing" / "s.md"))
    with pytest.raises(ConfigError, match="cannot write the summary file"):
        platform.summary("x")


@pytest.mark.parametrize(
    ("annotation", "line"),
    [
        (
            Annotation(AnnotationLevel.ERROR, "boom", file="a.py", line=3, column=7),
            "a.py:3:7: error: boom",
        ),
        (Annotation(AnnotationLevel.WARNING, "w", file="a.py", line=3), "a.py:3: warning: w"),
        (Annotation(AnnotationLevel.NOTICE, "n", file="a.py", column=7), "a.py: notice: n"),
        (Annotation(AnnotationLevel.ERROR, "no file"), "error: no file"),
        (
            Annotation(AnnotationLevel.ERROR, "two\nlines", file="f", title="Title"),
            "f: error: Title: two lines",
        ),
    ],
)
def test_format_plain_annotation(annotation: Annotation, line: str) -> None:
    assert format_plain_annotation(annotation) == line


@pytest.mark.parametrize("platform_cls", PLATFORMS)
def test_annotate_goes_to_stderr_redacted(
    platform_cls: type[LocalPlatform], capsys: pytest.CaptureFixture[str]
) -> None:
    platform = platform_cls()
    platform.add_mask(SECRET)
    platform.annotate(Annotation(AnnotationLevel.ERROR, f"leaked {SECRET}", file="x.yml", line=1))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "x.yml:1: error: leaked ***\n"


@pytest.mark.parametrize("platform_cls", PLATFORMS)
def test_neutralize_is_identity(platform_cls: type[LocalPlatform]) -> None:
    assert platform_cls().neutralize("::set-output name=a::b") == "::set-output name=a::b"


# id_token


def test_id_token_from_default_env(monkeypatch: pytest.MonkeyPatch) -> None:
    token = jwt.sign({"sub": "me"})
    monkeypatch.setenv("TOLLGATE_ID_TOKEN", token + "\n")
    assert LocalPlatform().id_token("aud") == token
    assert process_secrets().contains_secret(token)


def test_id_token_from_named_env(monkeypatch: pytest.MonkeyPatch) -> None:
    token = jwt.sign({"sub": "me"})
    monkeypatch.setenv("MY_TOKEN", token)
    assert LocalPlatform(PlatformOptions(token_env="MY_TOKEN")).id_token() == token


def test_id_token_from_file(tmp_path: Path) -> None:
    token = jwt.sign({"sub": "me"})
    path = tmp_path / "token.jwt"
    path.write_text(token + "\n")
    assert LocalPlatform(PlatformOptions(token_file=path)).id_token() == token
    assert process_secrets().contains_secret(token)


def test_id_token_missing_explains_both_ways() -> None:
    with pytest.raises(ConfigError, match="TOLLGATE_ID_TOKEN is not set") as info:
        LocalPlatform().id_token()
    hint = info.value.hint or ""
    assert "export TOLLGATE_ID_TOKEN=" in hint
    assert "file" in hint


def test_id_token_missing_file(tmp_path: Path) -> None:
    platform = LocalPlatform(PlatformOptions(token_file=tmp_path / "nope"))
    with pytest.raises(ConfigError, match="does not exist"):
        platform.id_token()


def test_id_token_not_a_jwt_is_masked_and_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLGATE_ID_TOKEN", SECRET)
    with pytest.raises(ConfigError, match="does not hold a JWT") as info:
        LocalPlatform().id_token()
    assert SECRET not in info.value.diagnostics()
    assert process_secrets().contains_secret(SECRET)


def test_id_token_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLGATE_ID_TOKEN", "  ")
    with pytest.raises(ConfigError, match="is empty"):
        LocalPlatform().id_token()


def test_id_token_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_bytes(b"\xff\xfe-binary-secret-bytes")
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        LocalPlatform(PlatformOptions(token_file=path)).id_token()
    assert "binary-secret" not in info.value.diagnostics()
