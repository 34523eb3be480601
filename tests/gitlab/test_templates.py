"""Our GitLab templates, run offline with gitlab-ci-local in a throwaway git repository.

gitlab-ci-local (pinned in tests/gitlab/package.json, installed with
`npm ci --ignore-scripts --prefix tests/gitlab`) runs the jobs in a local shell. The templates
are included with `include: local` and `install: false`, so the jobs use the tollgate of this
test run's venv: nothing is downloaded. Where a test is about a template's wiring rather than
tollgate itself, a stand-in `tollgate` records the arguments it was given.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import SHARED, clean_env, tollgate

ROOT = Path(__file__).resolve().parents[2]
GCL = ROOT / "tests" / "gitlab" / "node_modules" / "gitlab-ci-local" / "dist" / "index.js"
SCHEMA = Path(os.environ.get("TOLLGATE_SCHEMAS", SHARED / "schemas")) / "gitlab-ci.json"
SECRET = "s3cr3t-Value-that-must-not-leak"
MIN_NODE = (20, 19)  # gitlab-ci-local 4.73's dependencies (yargs, globby) need it

# A stand-in for `tollgate`: records its arguments; `creds` prints an export line and
# `audit --output FILE` writes an empty Code Quality report.
_STANDIN = """\
import json, os, sys
args = sys.argv[1:]
with open(os.environ["TOLLGATE_STANDIN_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(args) + "\\n")
if args[:1] == ["creds"]:
    print("export TOLLGATE_STANDIN_EXPORT='exported by creds'")
if "--output" in args and args[:1] == ["audit"]:
    with open(args[args.index("--output") + 1], "w", encoding="utf-8") as report:
        report.write("[]\\n")
"""


def _missing_tools() -> str | None:
    """Why gitlab-ci-local cannot run here, or None."""
    for tool in ("node", "git", "rsync"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (gitlab-ci-local needs node, git and rsync)"
    version = subprocess.run(
        ["node", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    found = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if found < MIN_NODE:
        return f"node {version} is too old for gitlab-ci-local 4.73.0 (needs 20.19 or later)"
    if not GCL.exists():
        return "gitlab-ci-local is not installed: npm ci --ignore-scripts --prefix tests/gitlab"
    return None


pytestmark = [
    pytest.mark.skipif(_missing_tools() is not None, reason=str(_missing_tools())),
    pytest.mark.slow,
]


@dataclass(frozen=True)
class Pipeline:
    """The result of one gitlab-ci-local run in a repository."""

    repo: Path
    result: subprocess.CompletedProcess[str]

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr

    def log(self, job: str) -> str:
        return (self.repo / ".gitlab-ci-local" / "output" / f"{job}.log").read_text()

    def expanded(self) -> dict[str, Any]:
        text = (self.repo / ".gitlab-ci-local" / "expanded-gitlab-ci.yml").read_text()
        expanded: dict[str, Any] = yaml.safe_load(text)
        return expanded


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=tollgate tests", "-c", "user.email=tests@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def run_pipeline(
    tmp_path: Path,
    pipeline: Mapping[str, Any],
    *gcl_args: str,
    path: Sequence[Path] = (),
    files: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Pipeline:
    """Commit our templates and `pipeline` as .gitlab-ci.yml to a new repository; run it."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "gitlab-templates", repo / "gitlab-templates")
    (repo / ".gitlab-ci.yml").write_text(yaml.safe_dump(dict(pipeline), sort_keys=False))
    (repo / ".gitignore").write_text(".gitlab-ci-local/\n")
    for name, content in (files or {}).items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(content)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "remote", "add", "origin", "https://gitlab.example.invalid/group/project.git")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "pipeline under test")
    # origin/HEAD, so that gitlab-ci-local does not look for the default branch
    _git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    _git(repo, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    search = [*map(str, path), str(Path(sys.executable).parent), os.environ["PATH"]]
    result = subprocess.run(
        [shutil.which("node") or "node", str(GCL), "--no-color", "--home", str(home), *gcl_args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=clean_env({"PATH": os.pathsep.join(search), "HOME": str(home), **(env or {})}),
        timeout=120,
        check=False,
    )
    return Pipeline(repo, result)


@pytest.fixture
def standin(tmp_path: Path) -> tuple[Path, Path]:
    """(directory with a recording `tollgate`, its log file)."""
    bin_dir = tmp_path / "standin"
    bin_dir.mkdir()
    script = bin_dir / "tollgate"
    script.write_text(f"#!{sys.executable}\n{_STANDIN}")
    script.chmod(0o755)
    return bin_dir, tmp_path / "standin.jsonl"


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


# run.yml


def test_run_template_masks_a_secret_in_the_job_log(tmp_path: Path) -> None:
    pipeline = {
        "include": [{"local": "gitlab-templates/run.yml", "inputs": {"install": False}}],
        "leaky": {
            "extends": ".tollgate",
            "script": [
                "tollgate run --secret-env DEPLOY_TOKEN -- "
                """sh -c 'echo "token=$DEPLOY_TOKEN"; printf %s "$DEPLOY_TOKEN" | base64'"""
            ],
        },
    }
    # The secret is a CI variable of the run, never a file in the repository.
    done = run_pipeline(tmp_path, pipeline, "--variable", f"DEPLOY_TOKEN={SECRET}")
    assert done.result.returncode == 0, done.output
    log = done.log("leaky")
    assert "token=[MASKED]" in log
    assert log.count("[MASKED]") == 2, log
    assert SECRET not in log
    assert base64.b64encode(SECRET.encode()).decode() not in log
    assert SECRET not in done.output


def test_run_template_without_tollgate_on_path_says_so(tmp_path: Path) -> None:
    pipeline = {
        "include": [{"local": "gitlab-templates/run.yml", "inputs": {"install": False}}],
        "job": {"extends": ".tollgate", "script": ["true"]},
    }
    # only what gitlab-ci-local and the job's shell need
    tools = {str(Path(shutil.which(tool) or tool).parent) for tool in ("git", "rsync", "bash")}
    if str(Path(sys.executable).parent) in tools:
        pytest.skip("git, rsync or bash is in the venv, next to tollgate")
    done = run_pipeline(tmp_path, pipeline, env={"PATH": os.pathsep.join(sorted(tools))})
    assert done.result.returncode != 0
    assert "no tollgate command on PATH" in done.log("job")


# creds.yml


def test_creds_template_exchanges_with_the_named_id_token(
    tmp_path: Path, standin: tuple[Path, Path]
) -> None:
    bin_dir, log = standin
    vault = {
        "install": False,
        "provider": "vault",
        "audience": "https://vault.example.com",
        "id-token": "HTTPS___VAULT_EXAMPLE_COM_ID_TOKEN",
        "vault-url": "https://vault.example.com:8200",
        "vault-role": "ci",
        "secrets": "kv/data/ci db | DB_PASSWORD\nkv/data/ci key | API_KEY; kv/x y | Z",
    }
    # the same template again, for another cloud, under another job name
    aws = {
        "install": False,
        "job-name": ".aws",
        "provider": "aws",
        "audience": "sts.amazonaws.com",
        "id-token": "STS_AMAZONAWS_COM_ID_TOKEN",
        "role-arn": "arn:aws:iam::123456789012:role/deploy",
        "region": "eu-west-1",
        "chain-role-arns": "arn:aws:iam::1:role/a arn:aws:iam::2:role/b",
    }
    pipeline = {
        "include": [
            {"local": "gitlab-templates/creds.yml", "inputs": vault},
            {"local": "gitlab-templates/creds.yml", "inputs": aws},
        ],
        "deploy": {
            "extends": ".tollgate-creds",
            "script": ['echo "exported: $TOLLGATE_STANDIN_EXPORT"'],
        },
        "deploy-aws": {"extends": ".aws", "needs": ["deploy"], "script": ["true"]},
    }
    done = run_pipeline(
        tmp_path,
        pipeline,
        # gitlab-ci-local mints no ID tokens: stand in for the one id_tokens: declares
        "--variable",
        "HTTPS___VAULT_EXAMPLE_COM_ID_TOKEN=e30.e30.sig",
        path=[bin_dir],
        env={"TOLLGATE_STANDIN_LOG": str(log)},
    )
    assert done.result.returncode == 0, done.output
    vault_call, aws_call = (args for args in calls(log) if args[0] == "creds")
    assert vault_call == [
        "creds", "vault", "--output", "shell",
        "--audience", "https://vault.example.com",
        "--token-env", "HTTPS___VAULT_EXAMPLE_COM_ID_TOKEN",
        "--url", "https://vault.example.com:8200", "--role", "ci", "--path", "jwt", "--revoke",
        "--secret", "kv/data/ci db | DB_PASSWORD",
        "--secret", "kv/data/ci key | API_KEY",
        "--secret", "kv/x y | Z",
    ]  # fmt: skip
    assert aws_call == [
        "creds", "aws", "--output", "shell",
        "--audience", "sts.amazonaws.com",
        "--token-env", "STS_AMAZONAWS_COM_ID_TOKEN",
        "--role-arn", "arn:aws:iam::123456789012:role/deploy",
        "--region", "eu-west-1",
        "--chain-role-arn", "arn:aws:iam::1:role/a",
        "--chain-role-arn", "arn:aws:iam::2:role/b",
    ]  # fmt: skip
    assert "exported: exported by creds" in done.log("deploy")
    expanded = done.expanded()
    assert expanded["deploy"]["id_tokens"] == {
        "HTTPS___VAULT_EXAMPLE_COM_ID_TOKEN": {"aud": "https://vault.example.com"}
    }
    assert expanded["deploy-aws"]["id_tokens"] == {
        "STS_AMAZONAWS_COM_ID_TOKEN": {"aud": "sts.amazonaws.com"}
    }


# audit.yml


def test_audit_template_writes_the_report_then_gates(
    tmp_path: Path, standin: tuple[Path, Path]
) -> None:
    bin_dir, log = standin
    pipeline = {
        "include": [
            {
                "local": "gitlab-templates/audit.yml",
                "inputs": {"install": False, "paths": ".gitlab-ci.yml gitlab-templates"},
            }
        ]
    }
    done = run_pipeline(
        tmp_path,
        pipeline,
        "--force-shell-executor",  # the job names an image; there is no Docker here
        path=[bin_dir],
        env={"TOLLGATE_STANDIN_LOG": str(log)},
    )
    assert done.result.returncode == 0, done.output
    paths = ["--persona", "regular", "--", ".gitlab-ci.yml", "gitlab-templates"]
    assert calls(log)[1:] == [
        ["audit", "--format", "codequality", "--exit-zero", "--output", "gl-code-quality-report.json", *paths],
        ["audit", "--format", "text", "--fail-on", "info", *paths],
    ]  # fmt: skip
    assert json.loads((done.repo / "gl-code-quality-report.json").read_text()) == []
    job = done.expanded()["tollgate-audit"]
    assert job["artifacts"]["reports"]["codequality"] == "gl-code-quality-report.json"


def _audit_available() -> bool:
    return tollgate("audit", "--help").returncode == 0


@pytest.mark.skipif(not _audit_available(), reason="`tollgate audit` does not exist yet")
def test_audit_template_with_the_real_audit_writes_code_quality(tmp_path: Path) -> None:
    workflow = """\
on: pull_request_target
permissions: write-all
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
"""
    pipeline = {
        "include": [
            {
                "local": "gitlab-templates/audit.yml",
                "inputs": {"install": False, "allow-failure": True},
            }
        ]
    }
    done = run_pipeline(
        tmp_path,
        pipeline,
        "--force-shell-executor",
        files={".github/workflows/greet.yml": workflow},
    )
    report = json.loads((done.repo / "gl-code-quality-report.json").read_text())
    assert isinstance(report, list), report
    for issue in report:
        assert {"description", "check_name", "fingerprint", "severity", "location"} <= issue.keys()
        assert issue["severity"] in {"info", "minor", "major", "critical", "blocker"}
        assert issue["location"]["path"] == ".github/workflows/greet.yml"
    # findings fail the job (fail-on: info), and allow-failure keeps the pipeline going
    assert done.result.returncode == 0, done.output
    if report:
        assert re.search(r"WARN\s+tollgate-audit", done.output), done.output


# inputs are validated when the pipeline is created


@pytest.mark.parametrize(
    ("template", "inputs", "message"),
    [
        (
            "creds.yml",
            {"provider": "ibm", "audience": "a", "id-token": "A_ID_TOKEN"},
            "`ibm` cannot be used because it is not in the list of allowed options",
        ),
        ("audit.yml", {"fail-on": "catastrophic"}, "not in the list of allowed options"),
        ("run.yml", {"ref": "main"}, "does not match required regex"),
        (
            "creds.yml",
            {"provider": "aws", "audience": "a", "id-token": "lowercase_id_token"},
            "does not match required regex",
        ),
        ("creds.yml", {"provider": "aws"}, "required value has not been provided"),
    ],
)
def test_bad_inputs_fail_the_pipeline(
    tmp_path: Path, template: str, inputs: dict[str, Any], message: str
) -> None:
    pipeline = {"include": [{"local": f"gitlab-templates/{template}", "inputs": inputs}]}
    done = run_pipeline(tmp_path, pipeline, "--list")
    assert done.result.returncode != 0, done.output
    assert message in done.output


# the pipeline GitLab would see, against GitLab's schema


def test_expanded_pipeline_matches_gitlab_schema(tmp_path: Path) -> None:
    if not SCHEMA.exists():
        pytest.skip(f"the vendored schema is not at {SCHEMA} (set TOLLGATE_SCHEMAS)")
    creds_inputs = {
        "provider": "aws",
        "audience": "sts.amazonaws.com",
        "id-token": "STS_AMAZONAWS_COM_ID_TOKEN",
        "role-arn": "arn:aws:iam::123456789012:role/deploy",
    }
    pipeline = {
        "include": [
            {"local": "gitlab-templates/run.yml"},
            {"local": "gitlab-templates/creds.yml", "inputs": creds_inputs},
            {"local": "gitlab-templates/audit.yml", "inputs": {"allow-failure": True}},
        ],
        "deploy": {"extends": [".tollgate", ".tollgate-creds"], "script": ["./deploy.sh"]},
    }
    done = run_pipeline(tmp_path, pipeline, "--preview")
    assert done.result.returncode == 0, done.output
    expanded = done.expanded()
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(expanded)]
    assert not errors, "\n".join(errors)
    assert expanded["tollgate-audit"]["allow_failure"] is True
    assert expanded["deploy"]["id_tokens"]["STS_AMAZONAWS_COM_ID_TOKEN"]["aud"] == (
        "sts.amazonaws.com"
    )
