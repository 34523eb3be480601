"""GitLab CI: ID token variables and the dotenv report."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.fakes import jwt
from tollgate._files import atomic_write
from tollgate.ci import PlatformOptions
from tollgate.ci import gitlab as gitlab_module
from tollgate.ci.gitlab import DOTENV_LIMIT, GitLabPlatform, audience_variable
from tollgate.errors import ConfigError, UsageError
from tollgate.masking.secrets import process_secrets

SECRET = "glpat-0123456789abcdefghij"


def gitlab_token(audience: str) -> str:
    return jwt.sign(
        {
            "iss": "https://gitlab.example.com",
            "sub": "project_path:group/project:ref_type:branch:ref:main",
            "aud": audience,
            "project_path": "group/project",
            "ref_protected": "true",
        }
    )


# Token variables


@pytest.mark.parametrize(
    ("audience", "variable"),
    [
        ("sigstore", "SIGSTORE_ID_TOKEN"),
        ("sts.amazonaws.com", "STS_AMAZONAWS_COM_ID_TOKEN"),
        ("http://test.audience", "HTTP___TEST_AUDIENCE_ID_TOKEN"),
        ("https://vault.example.com:8200", "HTTPS___VAULT_EXAMPLE_COM_8200_ID_TOKEN"),
        ("1password", "_PASSWORD_ID_TOKEN"),
        ("my-aud_v2", "MY_AUD_V2_ID_TOKEN"),
        ("caf\u00e9", "CAF__ID_TOKEN"),
    ],
)
def test_audience_variable_follows_id_convention(audience: str, variable: str) -> None:
    assert audience_variable(audience) == variable


def test_id_token_from_audience_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    token = gitlab_token("sigstore")
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", token)
    assert GitLabPlatform().id_token("sigstore") == token
    assert process_secrets().contains_secret(token)


def test_id_token_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    token = gitlab_token("https://vault.example.com")
    monkeypatch.setenv("VAULT_ID_TOKEN", token)
    monkeypatch.setenv("HTTPS___VAULT_EXAMPLE_COM_ID_TOKEN", "not-this-one")
    platform = GitLabPlatform(PlatformOptions(token_env="VAULT_ID_TOKEN"))
    assert platform.id_token("https://vault.example.com") == token
    assert platform.id_token() == token


def test_id_token_file(tmp_path: Path) -> None:
    token = gitlab_token("sigstore")
    path = tmp_path / "id_token"
    path.write_text(token)
    assert GitLabPlatform(PlatformOptions(token_file=path)).id_token("sigstore") == token


def test_missing_variable_shows_id_tokens_yaml() -> None:
    audience = "https://vault.example.com"
    with pytest.raises(ConfigError, match=r"\$HTTPS___VAULT_EXAMPLE_COM_ID_TOKEN") as info:
        GitLabPlatform().id_token(audience)
    hint = info.value.hint or ""
    assert "id_tokens:" in hint
    # The YAML in the hint is valid and declares exactly the variable we looked for.
    snippet = hint.split("\n\n")[1]
    job = yaml.safe_load(snippet)
    assert job == {
        "your-job": {"id_tokens": {"HTTPS___VAULT_EXAMPLE_COM_ID_TOKEN": {"aud": audience}}}
    }


@pytest.mark.parametrize("audience", ["a: b", "x #y", "trailing:", "'q'", "[list]"])
def test_missing_variable_yaml_quotes_awkward_audiences(audience: str) -> None:
    with pytest.raises(ConfigError) as info:
        GitLabPlatform().id_token(audience)
    job = yaml.safe_load((info.value.hint or "").split("\n\n")[1])
    (entry,) = job["your-job"]["id_tokens"].values()
    assert entry == {"aud": audience}


def test_missing_named_variable() -> None:
    platform = GitLabPlatform(PlatformOptions(token_env="VAULT_ID_TOKEN"))
    with pytest.raises(ConfigError, match=r"\$VAULT_ID_TOKEN") as info:
        platform.id_token()
    assert "VAULT_ID_TOKEN:" in (info.value.hint or "")


def test_no_audience_and_no_variable() -> None:
    with pytest.raises(ConfigError, match="needs an audience"):
        GitLabPlatform().id_token()


def test_empty_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", "")
    with pytest.raises(ConfigError, match=r"\$SIGSTORE_ID_TOKEN is empty"):
        GitLabPlatform().id_token("sigstore")


@pytest.mark.parametrize("value", [SECRET, "a.b", "a.b.c.d", "a.b.c d", '{"value": 1}'])
def test_not_a_jwt(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", value)
    with pytest.raises(ConfigError, match="does not hold a JWT") as info:
        GitLabPlatform().id_token("sigstore")
    assert value not in info.value.diagnostics()
    assert "id_tokens" in (info.value.hint or "")


# Dotenv report


def test_set_output_writes_dotenv(caplog: pytest.LogCaptureFixture) -> None:
    platform = GitLabPlatform()
    with caplog.at_level("INFO", logger="tollgate"):
        platform.set_output("IMAGE_DIGEST", "sha256:abc")
        platform.set_output("url", "https://example.com/a?b=c=d")
    assert Path("tollgate.env").read_text() == (
        "IMAGE_DIGEST=sha256:abc\nurl=https://example.com/a?b=c=d\n"
    )
    assert "artifacts: reports: dotenv:" in caplog.text
    assert caplog.text.count("artifacts: reports") == 1


def test_set_output_merges_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "build.env"
    path.write_text("OTHER=1\nDIGEST=old\n\nLAST=x\nDIGEST=older\n")
    GitLabPlatform(PlatformOptions(dotenv_path=path)).set_output("DIGEST", "new")
    assert path.read_text() == "OTHER=1\nDIGEST=new\nLAST=x\n"


def test_set_output_keeps_values_with_spaces_inside() -> None:
    GitLabPlatform().set_output("MSG", "hello world")
    assert Path("tollgate.env").read_text() == "MSG=hello world\n"


@pytest.mark.parametrize("value", ["a\nb", "a\r\nb", "a\r", "\n"])
def test_set_output_refuses_multiline(value: str) -> None:
    with pytest.raises(UsageError, match="multi-line"):
        GitLabPlatform().set_output("X", value)
    assert not Path("tollgate.env").exists()


@pytest.mark.parametrize("value", [" a", "a ", "\ta"])
def test_set_output_refuses_surrounding_whitespace(value: str) -> None:
    with pytest.raises(UsageError, match="white space"):
        GitLabPlatform().set_output("X", value)


def test_set_output_refuses_dash_in_name() -> None:
    with pytest.raises(UsageError, match="letters, digits and '_'"):
        GitLabPlatform().set_output("image-digest", "x")


def test_set_output_refuses_secret_and_keeps_file() -> None:
    Path("tollgate.env").write_text("A=1\n")
    platform = GitLabPlatform()
    platform.add_mask(SECRET)
    with pytest.raises(UsageError, match="masked secret") as info:
        platform.set_output("B", SECRET)
    assert SECRET not in info.value.diagnostics()
    assert Path("tollgate.env").read_text() == "A=1\n"


def test_set_output_5kb_limit_names_the_output() -> None:
    platform = GitLabPlatform()
    platform.set_output("FIRST", "a" * 3000)
    # "SECOND=" + value + "\n" would make the file exactly the limit: allowed.
    exact = DOTENV_LIMIT - len("FIRST=" + "a" * 3000 + "\n") - len("SECOND=\n")
    platform.set_output("SECOND", "b" * exact)
    assert Path("tollgate.env").stat().st_size == DOTENV_LIMIT
    before = Path("tollgate.env").read_bytes()
    with pytest.raises(UsageError, match=r"output 'THIRD' would make .* 5128 bytes") as info:
        platform.set_output("THIRD", "c")
    assert "5120" in info.value.message
    assert Path("tollgate.env").read_bytes() == before


def test_set_output_replacing_can_shrink_under_limit() -> None:
    platform = GitLabPlatform()
    platform.set_output("BIG", "x" * 5000)
    platform.set_output("BIG", "small")
    assert Path("tollgate.env").read_text() == "BIG=small\n"


def test_set_output_counts_bytes_not_characters() -> None:
    with pytest.raises(UsageError, match="limit"):
        GitLabPlatform().set_output("U", "\u00e9" * 2600)  # 5200 bytes, 2600 characters


def test_set_output_failure_leaves_old_file(monkeypatch: pytest.MonkeyPatch) -> None:
    Path("tollgate.env").write_text("A=1\n")

    def failing_write(path: object, data: bytes, mode: int = 0o600) -> None:
        # Fail after the temporary file is written, at the rename.
        def boom(*args: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr("tollgate._files.os.replace", boom)
        atomic_write(path, data, mode)  # type: ignore[arg-type]

    monkeypatch.setattr("tollgate._files.atomic_write", failing_write)
    with pytest.raises(ConfigError, match="No space left on device"):
        GitLabPlatform().set_output("B", "2")
    assert Path("tollgate.env").read_text() == "A=1\n"
    assert sorted(p.name for p in Path().iterdir()) == ["tollgate.env"]


def test_dotenv_file_is_readable_by_other_jobs() -> None:
    GitLabPlatform().set_output("A", "1")
    assert Path("tollgate.env").stat().st_mode & 0o777 == 0o644


def test_module_constant_is_gitlabs_limit() -> None:
    assert gitlab_module.DOTENV_LIMIT == 5 * 1024
