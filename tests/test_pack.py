"""The pack's own wrappers: our actions, reusable workflows and GitLab templates.

What users run must be beyond reproach: zizmor finds nothing, every file validates against
its JSON Schema, inputs never reach a script through template expansion, every `uses:` is
pinned by commit SHA, and every dependency by hash. The input-to-argument mapping of each
action step is run here too, against a stand-in for the venv's Python that records its
arguments (no network, no venv).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import SHARED, clean_env, tollgate

ROOT = Path(__file__).resolve().parent.parent
ACTIONS = [ROOT / "action.yml", *sorted(ROOT.glob("actions/*/action.yml"))]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
TEMPLATES = sorted((ROOT / "gitlab-templates").glob("*.yml"))
REQUIREMENTS = sorted((ROOT / "requirements").glob("*.txt"))
SCHEMAS = Path(os.environ.get("TOLLGATE_SCHEMAS", SHARED / "schemas"))

# Values for the GitLab template inputs that have no default, to render the templates.
TEMPLATE_SAMPLES = {
    "provider": "aws",
    "audience": "sts.amazonaws.com",
    "id-token": "STS_AMAZONAWS_COM_ID_TOKEN",
}

_SHA_PINNED = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}")
_VERSION_COMMENT = re.compile(r"#\s*v\d+\.\d+\.\d+\b")
_INTERPOLATION = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: `on:` stays the string "on" (PyYAML's 1.1 makes it True)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@cache
def load(path: Path) -> Any:
    """The YAML document in ``path``."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)


@cache
def load_template(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A GitLab template's two documents: the `spec:` header and the jobs."""
    header, body = yaml.load_all(path.read_text(encoding="utf-8"), Loader=_Loader)
    return header, body


@cache
def validator(name: str) -> jsonschema.Draft7Validator:
    schema = SCHEMAS / name
    if not schema.exists():
        pytest.skip(f"the vendored schema {name} is not in {SCHEMAS} (set TOLLGATE_SCHEMAS)")
    return jsonschema.Draft7Validator(json.loads(schema.read_text(encoding="utf-8")))


def assert_valid(instance: Any, schema: str, what: str) -> None:
    errors = sorted(validator(schema).iter_errors(instance), key=lambda e: list(e.path))
    messages = []
    for error in errors:
        # oneOf/anyOf hide the real problem in their context (jobs are a oneOf)
        leaves = [*error.context] or [error]
        deepest = max(leaves, key=lambda e: len(e.absolute_path))
        where = "/".join(str(p) for p in deepest.absolute_path)
        messages.append(f"{where}: {deepest.message}")
    assert not messages, f"{what} is not valid against {schema}:\n" + "\n".join(messages)


def steps_of(document: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, step) for every step of a workflow or composite action."""
    runs = document.get("runs", {})
    for index, step in enumerate(runs.get("steps", [])):
        yield f"runs.steps[{index}]", step
    for job_id, job in document.get("jobs", {}).items():
        for index, step in enumerate(job.get("steps", [])):
            yield f"jobs.{job_id}.steps[{index}]", step


def gitlab_jobs(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    _, body = load_template(path)
    for name, job in body.items():
        if isinstance(job, dict):
            yield name, job


# (1) zizmor


def _zizmor() -> str:
    found = shutil.which(
        "zizmor", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    if found is None:
        pytest.skip("zizmor is not installed (the dev extra installs it on Python 3.11+)")
    return found


@pytest.mark.parametrize("persona", ["regular", "pedantic"])
def test_zizmor_finds_nothing(persona: str) -> None:
    env = {k: v for k, v in clean_env().items() if k not in {"GH_TOKEN", "GITHUB_TOKEN"}}
    env = {k: v for k, v in env.items() if not k.startswith("ZIZMOR_")}
    inputs = ["action.yml", "actions", ".github/workflows"]
    result = subprocess.run(
        [_zizmor(), "--offline", "--no-config", "--format", "json", "--persona", persona, *inputs],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    try:
        findings = [f for f in json.loads(result.stdout) if not f.get("ignored")]
    except json.JSONDecodeError:
        pytest.fail(f"zizmor exited {result.returncode} without JSON:\n{result.stderr}")
    listing = []
    for finding in findings:
        for location in finding["locations"]:
            path = location["symbolic"]["key"]["Local"]["verbatim_path"]
            row = location["concrete"]["location"]["start_point"]["row"] + 1
            listing.append(f"{path}:{row}: {finding['ident']}: {finding['desc']}")
    assert not listing, "zizmor findings:\n" + "\n".join(listing)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(
    tollgate("audit", "--help").returncode != 0, reason="`tollgate audit` does not exist yet"
)
def test_our_own_audit_finds_nothing() -> None:
    result = tollgate(
        "audit", "--no-config", "--persona", "auditor", "--", "action.yml", "actions", ".github",
        cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


# (2) JSON Schemas


@pytest.mark.parametrize("path", ACTIONS, ids=_rel)
def test_action_matches_schema(path: Path) -> None:
    assert_valid(load(path), "github-action.json", _rel(path))


@pytest.mark.parametrize("path", WORKFLOWS, ids=_rel)
def test_workflow_matches_schema(path: Path) -> None:
    assert_valid(load(path), "github-workflow.json", _rel(path))


@pytest.mark.parametrize("path", TEMPLATES, ids=_rel)
def test_template_header_matches_schema(path: Path) -> None:
    header, _ = load_template(path)
    assert_valid(header, "gitlab-ci.json", f"{_rel(path)} (spec header)")


def _interpolate(node: Any, values: Mapping[str, Any]) -> Any:
    """GitLab's `$[[ inputs.x ]]`: a whole value keeps its type, inside a string it is text."""
    if isinstance(node, dict):
        return {_interpolate(k, values): _interpolate(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(item, values) for item in node]
    if isinstance(node, str):
        whole = _INTERPOLATION.fullmatch(node.strip())
        if whole:
            return values[whole.group(1)]
        return _INTERPOLATION.sub(lambda m: _as_text(values[m.group(1)]), node)
    return node


def _as_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def rendered(path: Path) -> dict[str, Any]:
    """The template's jobs with every input at its default (or a sample value)."""
    header, body = load_template(path)
    values = {
        name: spec.get("default", TEMPLATE_SAMPLES.get(name))
        for name, spec in header["spec"]["inputs"].items()
    }
    result: dict[str, Any] = _interpolate(body, values)
    return result


@pytest.mark.parametrize("path", TEMPLATES, ids=_rel)
def test_template_jobs_match_schema(path: Path) -> None:
    # Typed positions (allow_failure: $[[ inputs.x ]]) only validate once interpolated.
    pipeline = rendered(path)
    # A pipeline of only hidden jobs is not a pipeline: give it one job that extends them.
    hidden = [name for name in pipeline if name.startswith(".")]
    if hidden:
        pipeline["user-job"] = {"extends": hidden, "script": ["true"]}
    assert_valid(pipeline, "gitlab-ci.json", f"{_rel(path)} (jobs, inputs at their defaults)")


@pytest.mark.parametrize("path", TEMPLATES, ids=_rel)
def test_template_inputs_are_described_and_constrained(path: Path) -> None:
    header, body = load_template(path)
    inputs: dict[str, dict[str, Any]] = header["spec"]["inputs"]
    problems = []
    for name, spec in inputs.items():
        if not spec.get("description"):
            problems.append(f"{name}: no description")
        if not {"default", "options", "regex", "type"} & spec.keys():
            problems.append(f"{name}: neither default, options, regex nor type")
        value = spec.get("default", TEMPLATE_SAMPLES.get(name))
        if value is None:
            problems.append(f"{name}: required, and no sample value in TEMPLATE_SAMPLES")
            continue
        if "options" in spec and value not in spec["options"]:
            problems.append(f"{name}: {value!r} is not one of its options")
        if "regex" in spec and not re.search(spec["regex"], str(value)):
            problems.append(f"{name}: {value!r} does not match its regex")
        if spec.get("type") == "boolean" and not isinstance(value, bool):
            problems.append(f"{name}: boolean with a {type(value).__name__} default")
    used = set(_INTERPOLATION.findall(json.dumps(body)))
    problems.extend(f"{name}: declared, never used" for name in inputs.keys() - used)
    problems.extend(f"{name}: used, not declared" for name in used - inputs.keys())
    assert not problems, "\n".join(problems)


# (3) no template expansion inside scripts


@pytest.mark.parametrize("path", ACTIONS + WORKFLOWS, ids=_rel)
def test_no_expressions_in_run(path: Path) -> None:
    # Any ${{ }} in a script is pasted into it before the shell parses it; values must come
    # in through env: instead. Stricter than the three contexts the rule is usually about.
    offending = [
        f"{where}: {line.strip()}"
        for where, step in steps_of(load(path))
        for line in str(step.get("run", "")).splitlines()
        if "${{" in line
    ]
    assert not offending, "expressions inside run:\n" + "\n".join(offending)


@pytest.mark.parametrize("path", TEMPLATES, ids=_rel)
def test_no_interpolation_in_scripts(path: Path) -> None:
    offending = [
        f"{job}.{key}: {line.strip()}"
        for job, definition in gitlab_jobs(path)
        for key in ("before_script", "script", "after_script")
        for entry in definition.get(key, [])
        for line in str(entry).splitlines()
        if "$[[" in line
    ]
    assert not offending, "$[[ ]] inside a script:\n" + "\n".join(offending)


@pytest.mark.parametrize("path", TEMPLATES, ids=_rel)
def test_template_variables_are_quoted_strings(path: Path) -> None:
    # "$[[ inputs.flag ]]" quoted: a boolean input becomes "true", which the scripts compare.
    text = path.read_text(encoding="utf-8")
    unquoted = [
        line.strip() for line in text.splitlines() if re.match(r"\s+TOLLGATE_[A-Z_]+: \$\[\[", line)
    ]
    assert not unquoted, "unquoted input in variables:\n" + "\n".join(unquoted)


# (4) pinned uses:


def _uses(document: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for where, step in steps_of(document):
        if "uses" in step:
            yield where, str(step["uses"])
    for job_id, job in document.get("jobs", {}).items():
        if "uses" in job:
            yield f"jobs.{job_id}", str(job["uses"])


@pytest.mark.parametrize("path", ACTIONS + WORKFLOWS, ids=_rel)
def test_uses_pinned_by_sha_with_version_comment(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    problems = []
    for where, uses in _uses(load(path)):
        if uses.startswith(("./", "$/")):  # this repository (at the same commit)
            continue
        if not _SHA_PINNED.fullmatch(uses):
            problems.append(f"{where}: {uses} is not pinned to a 40-hex commit SHA")
            continue
        line = next(line for line in lines if f"uses: {uses}" in line)
        if not _VERSION_COMMENT.search(line):
            problems.append(f"{where}: {uses} has no `# vX.Y.Z` comment")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", WORKFLOWS, ids=_rel)
def test_workflow_permissions_are_minimal(path: Path) -> None:
    workflow = load(path)
    assert workflow.get("permissions") == {}, "set `permissions: {}` at the top"
    for job_id, job in workflow["jobs"].items():
        assert "permissions" in job, f"job {job_id} grants no permissions explicitly"
        for where, step in steps_of({"jobs": {job_id: job}}):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, where


# (5) hash-pinned requirements


@pytest.mark.parametrize("path", REQUIREMENTS, ids=_rel)
def test_requirements_are_hash_pinned(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert re.search(r"^# This file was autogenerated by uv", text, re.M), "say how it was made"
    assert "--only-binary :all:" in text, "no sdists: their build dependencies have no hashes"
    entries = re.sub(r"\\\n", " ", text).splitlines()
    requirements = [e for e in entries if e.strip() and not e.lstrip().startswith(("#", "-"))]
    assert requirements, "no requirements"
    unpinned = [
        e.split()[0]
        for e in requirements
        if not re.match(r"[A-Za-z0-9_.-]+==\S+", e)
        or not re.search(r"--hash=sha256:[0-9a-f]{64}", e)
    ]
    assert not unpinned, f"requirements without an exact version and a hash: {unpinned}"


# The root action repeats the folder actions (a composite action cannot `uses:` its siblings)


def _steps_by_name(path: Path) -> dict[str, Mapping[str, Any]]:
    return {step["name"]: step for _, step in steps_of(load(path))}


@pytest.mark.parametrize("name", ["audit", "creds", "mask"])
def test_root_action_repeats_the_folder_action(name: str) -> None:
    root, folder = load(ROOT / "action.yml"), load(ROOT / "actions" / name / "action.yml")
    for input_name, spec in folder["inputs"].items():
        assert input_name in root["inputs"], f"input {input_name} missing from action.yml"
        if not spec.get("required"):  # a required input of one command is optional in the root
            assert root["inputs"][input_name].get("default") == spec.get("default"), input_name
    for output_name, spec in folder.get("outputs", {}).items():
        assert root["outputs"][output_name]["value"] == spec["value"], output_name
    root_steps = _steps_by_name(ROOT / "action.yml")
    for step_name, step in _steps_by_name(ROOT / "actions" / name / "action.yml").items():
        if step.get("id") == "setup":
            continue
        twin = root_steps[step_name]
        assert twin["run"] == step["run"], f"{step_name}: run: differs"
        assert twin["env"] == step["env"], f"{step_name}: env: differs"
        assert twin.get("id") == step.get("id"), f"{step_name}: id differs"
        assert f"inputs.command == '{name}'" in twin["if"], f"{step_name}: not gated on {name}"


def test_template_install_blocks_are_identical() -> None:
    def install_block(path: Path) -> str:
        for _, job in gitlab_jobs(path):
            for entry in job.get("before_script", []):
                if 'if [ "$TOLLGATE_INSTALL" = "true" ]' in entry:
                    return str(entry)
        pytest.fail(f"{_rel(path)} has no install block")

    blocks = {_rel(path): install_block(path) for path in TEMPLATES}
    assert len(set(blocks.values())) == 1, f"install blocks differ: {sorted(blocks)}"


# The action steps' input mapping, run with a stand-in for the venv's Python

_RECORDER = """\
import json, os, sys
with open(os.environ["RECORD"], "a", encoding="utf-8") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
"""


def run_step(
    tmp_path: Path, action: str, step_name: str, env: Mapping[str, str], *, real: bool = False
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """Run one step's script as the runner would (bash -e -o pipefail)."""
    step = _steps_by_name(ROOT / action)[step_name]
    record = tmp_path / "argv.jsonl"
    python = sys.executable
    if not real:
        recorder = tmp_path / "python"
        recorder.write_text(f"#!{sys.executable}\n{_RECORDER}", encoding="utf-8")
        recorder.chmod(0o755)
        python = str(recorder)
    full_env = clean_env(
        {
            "GHA_TOLLGATE_VENV_PYTHON": python,
            "RECORD": str(record),
            "RUNNER_TEMP": str(tmp_path),
            "GITHUB_OUTPUT": str(tmp_path / "output"),
            **dict.fromkeys(step.get("env", {}), ""),
            **env,
        }
    )
    full_env["GHA_TOLLGATE_VENV_PYTHON"] = python
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    calls = (
        [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    )
    return result, calls


def test_mask_step_passes_values_by_name(tmp_path: Path) -> None:
    secrets = {"FIRST": "first-secret-value-1", "SECOND": "second-secret-value-2"}
    result, _ = run_step(
        tmp_path,
        "actions/mask/action.yml",
        "Mask",
        {
            "GITHUB_ACTIONS": "true",
            "GHA_TOLLGATE_VALUE": "with-input-secret-3",
            "GHA_TOLLGATE_ENV": "FIRST\n  SECOND ",
            **secrets,
        },
        real=True,
    )
    assert result.returncode == 0, result.stderr
    masks = re.findall(r"^::add-mask::(.*)$", result.stderr, re.M)
    for value in [*secrets.values(), "with-input-secret-3"]:
        assert value in masks
        assert value not in result.stdout


def test_mask_step_with_nothing_to_mask_fails(tmp_path: Path) -> None:
    result, _ = run_step(
        tmp_path, "actions/mask/action.yml", "Mask", {"GITHUB_ACTIONS": "true"}, real=True
    )
    assert result.returncode == 2, result.stderr


def test_creds_step_maps_only_the_inputs_set(tmp_path: Path) -> None:
    result, calls = run_step(
        tmp_path,
        "actions/creds/action.yml",
        "Exchange the OIDC token",
        {
            "GHA_TOLLGATE_PROVIDER": "aws",
            "GHA_TOLLGATE_ROLE_ARN": "arn:aws:iam::123456789012:role/deploy",
            "GHA_TOLLGATE_REGION": "eu-west-1",
            "GHA_TOLLGATE_CHAIN_ROLE_ARN": "arn:aws:iam::1:role/a\narn:aws:iam::2:role/b\n",
            "GHA_TOLLGATE_REVOKE": "false",
        },
    )
    assert result.returncode == 0, result.stderr
    assert calls == [
        [
            "-m", "tollgate", "creds", "aws",
            "--role-arn", "arn:aws:iam::123456789012:role/deploy",
            "--region", "eu-west-1",
            "--chain-role-arn", "arn:aws:iam::1:role/a",
            "--chain-role-arn", "arn:aws:iam::2:role/b",
            "--output", "env",
        ]
    ]  # fmt: skip


def test_creds_step_vault_secrets_and_profile(tmp_path: Path) -> None:
    result, calls = run_step(
        tmp_path,
        "actions/creds/action.yml",
        "Exchange the OIDC token",
        {
            "GHA_TOLLGATE_PROVIDER": "vault",
            "GHA_TOLLGATE_URL": "https://vault.example.com",
            "GHA_TOLLGATE_ROLE": "ci",
            "GHA_TOLLGATE_SECRETS": "kv/data/ci db | DB_PASSWORD\nkv/data/ci key | API_KEY",
            "GHA_TOLLGATE_REVOKE": "true",
            "GHA_TOLLGATE_PROFILE": "deploy",
        },
    )
    assert result.returncode == 0, result.stderr
    assert calls[0][4:] == [
        "--url", "https://vault.example.com",
        "--role", "ci",
        "--secret", "kv/data/ci db | DB_PASSWORD",
        "--secret", "kv/data/ci key | API_KEY",
        "--revoke",
        "--output", "profile", "--profile", "deploy",
    ]  # fmt: skip


def test_audit_steps_put_paths_after_double_dash(tmp_path: Path) -> None:
    env = {
        "GHA_TOLLGATE_PATHS": ".github  --exit-zero\nci.yml",
        "GHA_TOLLGATE_FORMAT": "github",
        "GHA_TOLLGATE_FAIL_ON": "high",
        "GHA_TOLLGATE_EXIT_ZERO": "false",
        "GHA_TOLLGATE_PERSONA": "pedantic",
    }
    result, calls = run_step(tmp_path, "actions/audit/action.yml", "Audit", env)
    assert result.returncode == 0, result.stderr
    assert calls == [
        [
            "-m", "tollgate", "audit", "--format", "github", "--fail-on", "high",
            "--persona", "pedantic", "--", ".github", "--exit-zero", "ci.yml",
        ]
    ]  # fmt: skip
    result, calls = run_step(tmp_path, "actions/audit/action.yml", "Write SARIF", env)
    assert result.returncode == 0, result.stderr
    sarif = tmp_path / "tollgate-audit.sarif"
    assert calls[-1] == [
        "-m", "tollgate", "audit", "--format", "sarif", "--exit-zero", "--persona", "pedantic",
        "--output", str(sarif), "--", ".github", "--exit-zero", "ci.yml",
    ]  # fmt: skip
    assert (tmp_path / "output").read_text() == f"sarif-file={sarif}\n"


@pytest.mark.parametrize(("command", "status"), [("audit", 0), ("AUDIT", 2), ("deploy", 2)])
def test_root_action_checks_the_command_in_code(tmp_path: Path, command: str, status: int) -> None:
    result, _ = run_step(
        tmp_path, "action.yml", "Check the command", {"GHA_TOLLGATE_COMMAND": command}, real=True
    )
    assert result.returncode == status, result.stderr
    if status:
        assert result.stdout.startswith("::error title=tollgate::the command input must be")
        assert result.stdout.count("\n") == 1
