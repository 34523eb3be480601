"""The command line: version, help, exit codes, error reporting and lazy imports."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, clean_env, tollgate
from tollgate import __version__


def test_version() -> None:
    result = tollgate("--version")
    assert result.returncode == 0
    assert result.stdout.decode().strip() == f"tollgate {__version__}"


def test_help_documents_exit_codes_and_commands() -> None:
    result = tollgate("--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    for needle in ("mask", "redact", "run", "exit status", "2  usage", "3  an external service"):
        assert needle in text


def test_usage_error_exits_2_without_traceback() -> None:
    result = tollgate("redact", "--secret-env", "TOLLGATE_TEST_UNSET_VARIABLE")
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "TOLLGATE_TEST_UNSET_VARIABLE is not set" in err
    assert "hint:" in err
    assert "Traceback" not in err


def test_verbose_adds_a_traceback_with_secrets_redacted(tmp_path: pytest.TempPathFactory) -> None:
    secret = "verbose-trace-secret-value"
    missing = f"/nonexistent/{secret}"
    result = tollgate(
        "-v", "redact", "--secret-env", "S", "--secret-file", missing, env={"S": secret}
    )
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "Traceback" in err
    assert secret not in err
    assert "/nonexistent/***" in err


def test_unknown_command_is_a_usage_error() -> None:
    result = tollgate("frobnicate")
    assert result.returncode == 2
    assert b"invalid choice" in result.stderr


def test_bundled_example_from_the_readme() -> None:
    secret = (REPO / "examples/masking/token.txt").read_bytes()
    log = (REPO / "examples/masking/build.log").read_bytes()
    result = tollgate("redact", "--secret-file", "examples/masking/token.txt", stdin=log, cwd=REPO)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert secret not in out
    # Every planted form was masked, the rest of the log is intact.
    assert out.count(b"***") >= 6
    assert b"deploy finished: 3 services updated" in out
    assert b"sha256:9f86d081884c7d65 stay visible" in out
    assert len(out.splitlines()) == len(log.splitlines())


@pytest.mark.parametrize(
    "argv",
    [["--version"], ["redact", "--secret-env", "S"], ["run", "--secret-env", "S", "--", "true"]],
)
def test_commands_import_no_http_yaml_schema_or_cloud_sdk(argv: list[str]) -> None:
    # Start-up is paid by every CI step: these commands must not load heavy modules.
    probe = (
        "import sys\n"
        "from tollgate._cli import main\n"  # entry() would end the process before the check
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'requests', 'urllib3', 'yaml', 'jsonschema', 'botocore', 'boto3', 'http.client',\n"
        "         'shutil'}\n"  # argparse's help formatter imports it: see tollgate._cli._help
        # A named command builds only its own parser, and the platform is detected
        # without loading the CI interface.
        "heavy |= {'tollgate._cli._audit', 'tollgate._cli._creds', 'tollgate.ci.interface'}\n"
        "print(sorted(heavy & set(sys.modules)), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        env=clean_env({"S": "some-secret-value"}),
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.stderr.decode().strip().splitlines()[-1] == "[]", result.stderr


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["redact"], "redact"),
        (["-v", "--platform", "gitlab", "redact", "--secret", "x"], "redact"),
        (["--platform=local", "-vv", "run", "--", "echo"], "run"),
        (["--verbose", "audit", "."], "audit"),
        # Anything argparse might read otherwise gets the full parser.
        (["--plat", "gitlab", "redact"], None),
        (["-vvv", "redact"], None),
        (["--help"], None),
        (["frobnicate"], None),
        ([], None),
    ],
)
def test_the_named_command_is_found_without_parsing(argv: list[str], expected: str | None) -> None:
    from tollgate._cli import _command_named

    assert _command_named(argv) == expected


def test_options_before_the_command_still_apply() -> None:
    result = tollgate(
        "--platform",
        "gitlab",
        "redact",
        "--secret-env",
        "S",
        env={"S": "before-cmd-1"},
        stdin=b"a before-cmd-1 b\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"a [MASKED] b\n"
    verbose = tollgate("-v", "redact", "--secret-env", "TOLLGATE_TEST_UNSET_VARIABLE")
    assert verbose.returncode == 2
    assert b"Traceback" in verbose.stderr
    abbreviated = tollgate(
        "--plat", "gitlab", "redact", "--secret", "abbrev-value", stdin=b"abbrev-value"
    )
    assert abbreviated.stdout == b"[MASKED]"


def test_subcommand_help_is_the_subcommands() -> None:
    result = tollgate("redact", "--help")
    assert result.returncode == 0
    assert result.stdout.decode().startswith("usage: tollgate redact")
    assert "--secret-env" in result.stdout.decode()


def test_bundled_audit_examples_from_the_readme() -> None:
    result = tollgate("audit", "examples/", cwd=REPO)
    assert result.returncode == 1, result.stderr
    out = result.stdout.decode()
    # The headline risks of each example file are found, with their lines.
    for expected in (
        "pr-preview.yml:15:14: critical[high] untrusted-checkout",
        "pr-preview.yml:18:45: high[high] template-injection",
        "triage.yml:15:31: high[high] template-injection",
        "triage.yml:16:62: high[high] github-env",
        "triage.yml:10:9: high[high] unsound-condition",
        "release.yml:14:19: high[high] hardcoded-container-credentials",
        "greet/action.yml:12:28: high[high] template-injection",
    ):
        assert expected in out, expected
    assert "hunter2-not-a-real-password" not in out.split("release.yml:14:19")[1].splitlines()[0]


def test_secret_env_globs_name_every_matching_variable() -> None:
    env = {"DEPLOY_TOKEN": "deploy-token-value-1", "API_TOKEN": "api-token-value-22"}
    log = b"a deploy-token-value-1 b api-token-value-22 c\n"
    result = tollgate("redact", "--secret-env", "*_TOKEN", env=env, stdin=log)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"a *** b *** c\n"
    missing = tollgate("redact", "--secret-env", "NO_SUCH_*", stdin=log)
    assert missing.returncode == 2
    assert b"no environment variable matches 'NO_SUCH_*'" in missing.stderr


def test_help_width_follows_columns_as_shutil_does(monkeypatch: pytest.MonkeyPatch) -> None:
    from tollgate._cli._help import terminal_columns

    monkeypatch.setenv("COLUMNS", "57")
    assert terminal_columns() == 57
    monkeypatch.setenv("COLUMNS", "wide")
    monkeypatch.setattr("os.get_terminal_size", lambda fd: os.terminal_size((91, 20)))
    assert terminal_columns() == 91

    def no_terminal(fd: int) -> os.terminal_size:
        raise OSError("not a terminal")

    monkeypatch.setattr("os.get_terminal_size", no_terminal)
    assert terminal_columns() == 80
    narrow = tollgate("redact", "--help", env={"COLUMNS": "50"}).stdout.decode()
    wide = tollgate("redact", "--help", env={"COLUMNS": "200"}).stdout.decode()
    assert len(narrow.splitlines()) > len(wide.splitlines())
    assert max(len(line) for line in wide.splitlines()) > 100


@pytest.mark.parametrize(
    ("command", "torn_down"),
    [(["redact", "--secret-env", "S"], False), (["mask", "--env", "S"], True)],
)
def test_entry_skips_teardown_only_where_a_command_allows(
    command: list[str], torn_down: bool
) -> None:
    # redact and run exit with os._exit once their streams are flushed; other commands
    # (which may hold temporary files or sessions) exit normally, running atexit hooks.
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('atexit ran\\n'))\n"
        f"sys.argv = ['tollgate', *{command!r}]\n"
        "print('buffered, not yet flushed', end='')\n"
        "from tollgate._cli import entry\n"
        "entry()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        input=b"some input\n",
        capture_output=True,
        env=clean_env({"S": "teardown-secret-1"}),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"buffered, not yet flushed")  # flushed before exiting
    assert (b"atexit ran" in result.stderr) is torn_down
