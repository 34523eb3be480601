"""``.tollgate.yml``, path globs, inline ignore comments and baseline files."""

from __future__ import annotations

import json
import os
import stat
import textwrap
from pathlib import Path

import pytest

from tollgate.audit.config import (
    ALL_RULES,
    Baseline,
    BaselineRecorder,
    Config,
    compile_glob,
    find_config,
    load_baseline,
    load_config,
)
from tollgate.audit.findings import Confidence, Finding, Location, Persona, Severity
from tollgate.audit.rules import PinningPolicy
from tollgate.audit.source import Document, load
from tollgate.audit.suppress import InlineIgnores
from tollgate.errors import ConfigError, ExitCode

KNOWN = {"template-injection", "unpinned-uses", "excessive-permissions"}

FULL = """\
persona: pedantic
rules:
  template-injection:
    severity: critical
    ignore: [".github/workflows/legacy/**"]
    options: {shells: [bash, sh]}
  unpinned-uses:
    disable: true
ignore:
  - path: .github/workflows/release.yml
    rules: [excessive-permissions]
    reason: the release job needs them
  - path: vendor/
pinning:
  require-sha: ["*"]
  allow-ref: ["actions/*", "github/codeql-action"]
"""


def config_file(tmp_path: Path, text: str, name: str = ".tollgate.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(tmp_path, text), KNOWN)
    assert caught.value.exit_code == ExitCode.USAGE
    return caught.value.message


def test_a_full_configuration(tmp_path: Path) -> None:
    config = load_config(config_file(tmp_path, FULL), KNOWN)
    assert config.persona is Persona.PEDANTIC
    assert config.root == str(tmp_path)
    assert config.disabled() == {"unpinned-uses"}
    assert config.severities() == {"template-injection": Severity.CRITICAL}
    assert config.rule_options() == {"template-injection": {"shells": ["bash", "sh"]}}
    assert config.pinning == PinningPolicy(("*",), ("actions/*", "github/codeql-action"))
    assert [(e.path, e.rules) for e in config.ignore] == [
        (".github/workflows/release.yml", ("excessive-permissions",)),
        ("vendor/", ()),
    ]


def test_defaults(tmp_path: Path) -> None:
    config = load_config(config_file(tmp_path, "rules: {}\n"), KNOWN)
    assert config.persona is None
    assert config.pinning == PinningPolicy()
    assert load_config(config_file(tmp_path, "# nothing yet\n"), KNOWN).rules == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("persona: loud\n", ".tollgate.yml:1:10: persona: 'loud' is not one of"),
        (
            "rules:\n  template-injection:\n    severity: hgh\n",
            ".tollgate.yml:3:15: rules.template-injection.severity: 'hgh' is not one of",
        ),
        (
            "rules:\n  template-injection:\n    disable: yes\n",
            "rules.template-injection.disable: 'yes' is not of type 'boolean'",
        ),
        (
            "rules:\n  template-injection:\n    ignor: [x]\n",
            ".tollgate.yml:3:5: rules.template-injection.ignor: unknown key 'ignor' "
            "(expected one of: disable, ignore, options, severity)",
        ),
        ("pinnig: {}\n", ".tollgate.yml:1:1: pinnig: unknown key 'pinnig'"),
        ("ignore:\n  - rules: [unpinned-uses]\n", "ignore[0]: 'path' is a required property"),
        ("ignore:\n  - path: ''\n", "ignore[0].path: '' should be non-empty"),
        ("rules:\n  Bad_Id: {}\n", ".tollgate.yml:2:3: rules.Bad_Id: invalid name 'Bad_Id'"),
        (
            "rules:\n  no-such-rule: {disable: true}\n",
            ".tollgate.yml:2:3: rules.no-such-rule: unknown rule id 'no-such-rule'",
        ),
        (
            "ignore:\n  - path: x\n    rules: [unpinned-uses, typo]\n",
            ".tollgate.yml:3:28: ignore[0].rules[1]: unknown rule id 'typo'",
        ),
        ("- a list\n", "(top level): ['a list'] is not of type 'object'"),
        ("rules: [\n", ".tollgate.yml:2:1: invalid YAML"),
    ],
)
def test_errors_name_the_key_and_its_line(tmp_path: Path, text: str, expected: str) -> None:
    message = error_of(tmp_path, text)
    assert expected in message.replace(str(tmp_path) + os.sep, "")


def test_every_error_is_listed_in_file_order(tmp_path: Path) -> None:
    message = error_of(tmp_path, "persona: x\nrules:\n  template-injection: {severity: y}\n")
    assert message.index("persona") < message.index("severity")


def test_a_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yml")


def test_find_config_at_the_root_of_the_first_directory(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    config_file(tmp_path / "b", "{}\n")
    config_file(tmp_path, "{}\n", ".tollgate.yaml")
    workflow = tmp_path / "ci.yml"
    workflow.write_text("on: push\n")
    assert find_config([workflow, tmp_path / "b", tmp_path]) == tmp_path / "b" / ".tollgate.yml"
    assert find_config([tmp_path]) == tmp_path / ".tollgate.yaml"
    assert find_config([tmp_path / "a", tmp_path / "b"]) is None
    assert find_config([workflow]) is None


def test_the_schema_is_shipped_and_valid() -> None:
    from importlib import resources

    import jsonschema

    schema = json.loads(
        (resources.files("tollgate") / "schemas" / "config.schema.json").read_text()
    )
    jsonschema.validators.validator_for(schema).check_schema(schema)


# --- Path globs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("release.yml", ".github/workflows/release.yml", True),
        ("release.yml", "release.yml", True),
        ("release.yml", ".github/workflows/release.yml.bak", False),
        (".github/workflows/*.yml", ".github/workflows/ci.yml", True),
        (".github/workflows/*.yml", "sub/.github/workflows/ci.yml", False),
        ("**/.github/workflows/*.yml", "sub/.github/workflows/ci.yml", True),
        ("**/.github/workflows/*.yml", ".github/workflows/ci.yml", True),
        ("./.github/workflows/legacy-*", ".github/workflows/legacy-build.yml", True),
        ("/.github/workflows/legacy-*", ".github/workflows/legacy-build.yml", True),
        ("vendor/", "vendor/x/action.yml", True),
        ("vendor", "deep/vendor/action.yml", True),
        ("vendor", "vendored/action.yml", False),
        ("actions/**", "actions/a/b/action.yml", True),
        ("ci?.yml", "ci2.yml", True),
        ("ci[0-9].yml", "ci7.yml", True),
        ("ci[!0-9].yml", "ci7.yml", False),
        ("*.yml", "a/b.yml", True),
        ("a/*.yml", "a/b/c.yml", False),
    ],
)
def test_globs(pattern: str, path: str, matches: bool) -> None:
    assert bool(compile_glob(pattern).fullmatch(path)) is matches


def test_path_ignores_are_relative_to_the_configuration(tmp_path: Path) -> None:
    config = Config(
        path=str(tmp_path / ".tollgate.yml"),
        root=str(tmp_path),
        ignore=(),
        rules={},
    )
    assert not config.path_ignores()
    config = load_config(config_file(tmp_path, FULL), KNOWN)
    ignores = config.path_ignores()
    release = tmp_path / ".github/workflows/release.yml"
    # Shown as given on the command line (an absolute path here); matched relative to root.
    assert ignores.for_file(str(release), str(release)) == {"excessive-permissions"}
    legacy = tmp_path / ".github/workflows/legacy/old.yml"
    assert ignores.for_file(str(legacy), str(legacy)) == {"template-injection"}
    vendored = tmp_path / "vendor/thing/action.yml"
    assert ignores.for_file("vendor/thing/action.yml", str(vendored)) == {ALL_RULES}
    other = tmp_path / ".github/workflows/ci.yml"
    assert ignores.for_file(str(other), str(other)) == frozenset()


# --- Inline ignores ---------------------------------------------------------------------------


def document(text: str) -> Document:
    loaded = load("ci.yml", textwrap.dedent(text))
    assert isinstance(loaded, Document)
    return loaded


def test_inline_ignores_are_none_without_a_comment() -> None:
    assert InlineIgnores.scan(document("on: push\nx: tollgate:ignore[a]\n")) is None
    assert InlineIgnores.scan(document("on: push  # tollgate is great\n")) is None


def test_inline_ignore_lines() -> None:
    ignores = InlineIgnores.scan(
        document(
            """\
            # tollgate: ignore[a] file header, alone: covers line 2
            on: push # tollgate:ignore[ b ,c ] reason
            x: y#tollgate:ignore[d]
            z: &anchor |
              # tollgate: ignore[e]
            w: *anchor
            v: {k: 1, # tollgate: ignore[f]
                j: 2}
            """
        )
    )
    assert ignores is not None
    assert dict(ignores.on_line) == {1: {"a"}, 2: {"a", "b", "c"}, 7: {"f"}}
    assert ignores.suppresses("c", 2)
    assert not ignores.suppresses("a", 3)


def test_inline_ignore_on_a_block_scalar_covers_the_block() -> None:
    # A `run: |` block cannot hold a YAML comment: the line that opens it speaks for it.
    ignores = InlineIgnores.scan(
        document(
            """            steps:
              - run: |  # tollgate: ignore[template-injection]
                  echo "${{ github.event.issue.title }}"
                  echo done
              # tollgate: ignore[github-env]
              - run: >
                  echo x >> "$GITHUB_ENV"
              - run: |
                  echo "${{ github.event.issue.body }}"
            """
        )
    )
    assert ignores is not None
    assert all(ignores.suppresses("template-injection", line) for line in (2, 3, 4))
    assert not ignores.suppresses("github-env", 3)
    assert all(ignores.suppresses("github-env", line) for line in (6, 7))
    assert not ignores.suppresses("template-injection", 9)


# --- Baselines --------------------------------------------------------------------------------


def _finding(anchor: str, line: int = 1) -> Finding:
    return Finding(
        rule="template-injection",
        severity=Severity.HIGH,
        confidence=Confidence.HIGH,
        message="m",
        location=Location(".github/workflows/ci.yml", line),
        anchor=anchor,
        evidence="${{ github.event.issue.title }}",
    )


def test_baseline_file_round_trip(tmp_path: Path) -> None:
    recorder = BaselineRecorder()
    for finding in (_finding("a"), _finding("b"), _finding("a", 7)):
        recorder.add(finding)
    path = tmp_path / "baseline.json"
    recorder.write(path)
    data = json.loads(path.read_text())
    assert data["version"] == 1
    assert {e["fingerprint"]: e["count"] for e in data["findings"]} == {
        _finding("a").fingerprint(): 2,
        _finding("b").fingerprint(): 1,
    }
    assert {(e["rule"], e["path"]) for e in data["findings"]} == {
        ("template-injection", ".github/workflows/ci.yml")
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name != "baseline.json"]  # no temp left

    matcher = load_baseline(path).matcher()
    assert matcher.absorbs(_finding("a", 30))
    assert matcher.absorbs(_finding("a", 31))
    assert not matcher.absorbs(_finding("a", 32))  # only two were accepted
    assert matcher.absorbs(_finding("b"))
    assert not matcher.absorbs(_finding("c"))


def test_an_empty_baseline(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    BaselineRecorder().write(path)
    assert load_baseline(path) == Baseline({})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{", "not valid JSON"),
        ("[]", "the top level is not an object"),
        ('{"version": 2, "findings": []}', "version 2"),
        ('{"version": 1}', "'findings' is not a list"),
        ('{"version": 1, "findings": [{"count": 1}]}', "findings[0] has no fingerprint"),
        ('{"version": 1, "findings": [{"fingerprint": "x", "count": 0}]}', "positive integer"),
    ],
)
def test_bad_baselines(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_baseline(path)
    assert expected in caught.value.message
    with pytest.raises(ConfigError, match="cannot read"):
        load_baseline(tmp_path / "missing.json")
