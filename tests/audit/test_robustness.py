"""Every rule over the real-world corpus and over generated workflows: findings and
diagnostics only, never a crash (a rule that raises becomes a "failed on this file" diagnostic,
which these tests count as a failure)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SHARED
from tollgate.audit.engine import Auditor, AuditSettings, FileDone, default_rules
from tollgate.audit.findings import Diagnostic, Finding, Persona

CORPUS = SHARED / "corpus" / "github"


def _audit(path: Path) -> tuple[list[Finding], list[Diagnostic], int]:
    auditor = Auditor(default_rules(), AuditSettings(persona=Persona.AUDITOR))
    findings: list[Finding] = []
    diagnostics: list[Diagnostic] = []
    done = 0
    for item in auditor.run([str(path)]):
        if isinstance(item, Finding):
            findings.append(item)
        elif isinstance(item, Diagnostic):
            diagnostics.append(item)
        else:
            assert isinstance(item, FileDone)
            done += 1
    return findings, diagnostics, done


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the shared corpus is not at {CORPUS}")
def test_the_whole_corpus_is_audited_without_a_crash() -> None:
    findings, diagnostics, done = _audit(CORPUS)
    assert done >= 1500
    crashes = [d for d in diagnostics if "failed on this file" in d.message]
    assert not crashes, "\n".join(f"{d.path}: {d.message}" for d in crashes[:20])
    assert not diagnostics, diagnostics[:5]
    assert len({f.rule for f in findings}) >= 15  # the rules do speak on real files


_KEYS = st.sampled_from(
    [
        "on",
        "jobs",
        "steps",
        "uses",
        "run",
        "with",
        "env",
        "permissions",
        "if",
        "needs",
        "outputs",
        "container",
        "services",
        "image",
        "credentials",
        "password",
        "runs-on",
        "environment",
        "secrets",
        "strategy",
        "matrix",
        "shell",
        "id",
        "name",
        "inputs",
        "workflow_call",
        "pull_request_target",
        "types",
        "ref",
        "persist-credentials",
        "path",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(
        [
            "actions/checkout@v4",
            "./local",
            "docker://alpine",
            "${{ github.event.issue.title }}",
            "echo ${{ inputs.x }} >> $GITHUB_ENV",
            "write-all",
            "read",
            "write",
            "ubuntu-latest",
            "self-hosted",
            "${{ secrets.X }}",
            "${{ toJSON(secrets) }}",
            "${{",
            "}}",
            "|",
            "curl https://x | sh",
            "${{ github.head_ref }}",
            "${{ steps.a.outputs.b }}",
        ]
    ),
    st.text(max_size=20),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=st.dictionaries(_KEYS, _VALUES, max_size=6), as_action=st.booleans())
def test_generated_files_give_findings_and_diagnostics_only(
    document: dict[str, object], as_action: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if as_action:
            target = root / "action.yml"
        else:
            target = root / ".github" / "workflows" / "fuzz.yml"
            target.parent.mkdir(parents=True)
        target.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        _, diagnostics, done = _audit(root)
    assert done + len(diagnostics) >= 1
    crashes = [d for d in diagnostics if "failed on this file" in d.message]
    assert not crashes, crashes
