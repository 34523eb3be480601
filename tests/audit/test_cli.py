"""``tollgate audit`` as a user runs it: formats, exit codes, configuration, baselines, jobs.

The subprocess registers only the test rules of ``tests/audit/data/engine/rules.py`` (a
``sitecustomize`` on its ``PYTHONPATH`` installs them), so the results do not depend on
which real rules exist.
"""

from __future__ import annotations

import json
import os
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import REPO, tollgate

PLUGIN = Path(__file__).parent / "data" / "engine" / "plugin"
FORMATS = ("text", "json", "sarif", "github", "codequality")

CI = """\
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo mark:medium
      - run: echo other:low
      - run: echo mark:high:pedantic
"""


def audit(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    extra = {"PYTHONPATH": os.pathsep.join((str(PLUGIN), str(REPO)))}
    # The github format writes a job summary: keep it inside the test's directory.
    extra["GITHUB_STEP_SUMMARY"] = str(cwd / "summary.md")
    extra.update(env or {})
    return tollgate("audit", *args, cwd=cwd, env=extra)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text(CI)
    (workflows / "broken.yml").write_text("on: push\njobs: [\n")
    return tmp_path


def platform_args(fmt: str) -> list[str]:
    return ["--platform", "github"] if fmt == "github" else []


@pytest.mark.parametrize("fmt", FORMATS)
def test_exit_codes_in_every_format(repo: Path, fmt: str) -> None:
    def status(*args: str) -> int:
        result = audit("--format", fmt, *platform_args(fmt), *args, cwd=repo)
        assert b"Traceback" not in result.stderr, result.stderr.decode()
        return result.returncode

    assert status() == 1  # any finding fails by default
    assert status("--fail-on", "medium") == 1
    assert status("--fail-on", "high") == 0  # the high one is pedantic: not shown
    assert status("--fail-on", "high", "--persona", "pedantic") == 1
    assert status("--exit-zero", "--persona", "auditor") == 0
    assert status("--fail-on", "critical", "--persona", "auditor") == 0


def test_no_findings_exits_0(tmp_path: Path) -> None:
    (tmp_path / "action.yml").write_text("name: fine\nruns: {using: composite, steps: []}\n")
    result = audit("--format", "sarif", cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["runs"][0]["results"] == []


def test_text_report(repo: Path) -> None:
    result = audit(cwd=repo)
    out = result.stdout.decode()
    assert ".github/workflows/broken.yml:3:1: diagnostic: invalid YAML" in out
    assert ".github/workflows/ci.yml:6:19: medium[high] marker: marked mark:medium" in out
    assert "6 |       - run: echo mark:medium" in out  # the excerpt from the file
    assert "2 findings" in out
    assert "2 files scanned, 1 diagnostic" in out


def test_json_report_to_a_file(repo: Path) -> None:
    out = repo / "reports" / "audit.json"
    out.parent.mkdir()
    result = audit("--format", "json", "-o", str(out), cwd=repo)
    assert result.returncode == 1
    assert result.stdout == b""
    report = json.loads(out.read_text())
    schema_text = (resources.files("tollgate") / "schemas" / "audit-report.schema.json").read_text()
    jsonschema.validate(report, json.loads(schema_text))
    assert [f["rule"] for f in report["findings"]] == ["marker", "other-marker"]
    assert [p.name for p in out.parent.iterdir()] == ["audit.json"]  # no temporary left


def test_jobs_2_gives_the_same_report(repo: Path) -> None:
    workflows = repo / ".github" / "workflows"
    for n in range(60):
        (workflows / f"w{n:02}.yml").write_text(CI.replace("medium", ("low", "high")[n % 2]))
    (workflows / "w33.yml").write_text("on: push\nx: boom mark:high\n")
    one = audit("--format", "json", "--persona", "auditor", cwd=repo)
    two = audit("--format", "json", "--persona", "auditor", "--jobs", "2", cwd=repo)
    assert one.returncode == two.returncode == 1
    assert one.stdout == two.stdout
    report = json.loads(one.stdout)
    assert len(report["findings"]) == 3 * 60 + 1  # w33 holds one marker and a boom
    messages = [d["message"] for d in report["diagnostics"]]
    assert any("rule 'broken' failed" in message for message in messages)


def test_configuration(repo: Path) -> None:
    (repo / ".tollgate.yml").write_text(
        "persona: pedantic\n"
        "rules:\n"
        "  marker: {severity: critical}\n"
        "ignore:\n"
        "  - {path: ci.yml, rules: [other-marker]}\n"
    )
    report = json.loads(audit("--format", "json", cwd=repo).stdout)
    assert [(f["rule"], f["severity"]) for f in report["findings"]] == [
        ("marker", "critical"),
        ("marker", "critical"),
    ]
    report = json.loads(audit("--format", "json", "--no-ignores", cwd=repo).stdout)
    assert len(report["findings"]) == 3
    report = json.loads(audit("--format", "json", "--no-config", cwd=repo).stdout)
    assert [f["severity"] for f in report["findings"]] == ["medium", "low"]


def test_configuration_errors_exit_2(repo: Path) -> None:
    (repo / ".tollgate.yml").write_text("rules:\n  marker:\n    severty: high\n")
    result = audit(cwd=repo)
    assert result.returncode == 2
    assert b".tollgate.yml:3:5: rules.marker.severty: unknown key 'severty'" in result.stderr
    assert b"Traceback" not in result.stderr
    assert audit("--no-config", cwd=repo).returncode == 1
    assert audit("--config", "missing.yml", cwd=repo).returncode == 2
    (repo / ".tollgate.yml").write_text("rules:\n  no-such-rule: {disable: true}\n")
    result = audit(cwd=repo)
    assert result.returncode == 2
    assert b"unknown rule id 'no-such-rule'" in result.stderr


def test_usage_errors_exit_2(repo: Path) -> None:
    assert audit("missing-dir", cwd=repo).returncode == 2
    assert audit("--format", "xml", cwd=repo).returncode == 2
    assert audit("--jobs", "-1", cwd=repo).returncode == 2
    assert audit("--baseline", "missing.json", cwd=repo).returncode == 2


def test_baseline(repo: Path) -> None:
    result = audit("--write-baseline", "baseline.json", cwd=repo)
    assert result.returncode == 0, result.stderr.decode()
    assert b"wrote 2 findings to the baseline baseline.json" in result.stderr
    assert json.loads((repo / "baseline.json").read_text())["version"] == 1

    result = audit("--baseline", "baseline.json", "--format", "sarif", cwd=repo)
    assert result.returncode == 0
    assert json.loads(result.stdout)["runs"][0]["results"] == []
    assert b"2 known findings not reported" in result.stderr

    ci = repo / ".github" / "workflows" / "ci.yml"
    ci.write_text("# moved down\n" + CI + "      - run: echo mark:low\n")
    result = audit("--baseline", "baseline.json", "--format", "json", cwd=repo)
    assert result.returncode == 1
    [new] = json.loads(result.stdout)["findings"]
    assert (new["line"], new["severity"]) == (10, "low")


def test_list_rules(tmp_path: Path) -> None:
    result = audit("--list-rules", cwd=tmp_path)
    assert result.returncode == 0
    lines = result.stdout.decode().splitlines()
    assert lines[0].split() == ["broken", "high", "Broken"]
    assert any(line.startswith("taint-probe ") for line in lines)


def test_audit_does_not_import_requests_or_cloud_sdks(repo: Path) -> None:
    (repo / ".tollgate.yml").write_text("persona: regular\n")
    result = audit(
        "--format", "github", "--platform", "github", cwd=repo, env={"PYTHONPROFILEIMPORTTIME": "1"}
    )
    assert result.returncode == 1
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in result.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert "yaml" in imported  # the profile is really there
    assert not imported & {"requests", "urllib3", "botocore", "boto3", "google", "azure", "hvac"}
