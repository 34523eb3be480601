"""insecure-commands, debug-logging and use-trusted-publishing beyond their fixtures."""

from __future__ import annotations

import pytest

from tollgate.audit.findings import Confidence, Finding, Persona, Severity
from tollgate.audit.github.model import Workflow, load_workflow
from tollgate.audit.github.rules.hygiene import DebugLogging, InsecureCommands
from tollgate.audit.github.rules.publishing import UseTrustedPublishing
from tollgate.audit.rules import AuditContext, Rule


def findings(rule: Rule, text: str) -> list[Finding]:
    wf = load_workflow(".github/workflows/t.yml", text)
    assert isinstance(wf, Workflow), wf
    return list(rule.check_workflow(wf, AuditContext()))


def step_env(name: str, value: str) -> str:
    return (
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n"
        f"      - run: make\n        env:\n          {name}: {value}\n"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", 1), ("'True'", 1), (" TRUE", 1), ("false", 0), ("'1'", 0), ("yes", 0)],
)
def test_insecure_commands_values(value: str, expected: int) -> None:
    found = findings(InsecureCommands(), step_env("ACTIONS_ALLOW_UNSECURE_COMMANDS", value))
    assert len(found) == expected
    if found:
        assert found[0].anchor == "jobs.j.steps[0].env.ACTIONS_ALLOW_UNSECURE_COMMANDS"
        assert found[0].evidence == "ACTIONS_ALLOW_UNSECURE_COMMANDS=true"


def test_insecure_commands_in_container_env_and_github_env() -> None:
    text = (
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    container:\n"
        "      image: alpine:3\n      env:\n        ACTIONS_ALLOW_UNSECURE_COMMANDS: true\n"
        "    steps:\n      - run: |\n"
        '          echo "ACTIONS_ALLOW_UNSECURE_COMMANDS=true" >> $env:GITHUB_ENV\n'
    )
    found = findings(InsecureCommands(), text)
    assert [(f.anchor, f.location.line, f.location.column) for f in found] == [
        ("jobs.j.container.env.ACTIONS_ALLOW_UNSECURE_COMMANDS", 8, 42),
        ("jobs.j.steps[0].run", 11, 17),
    ]


def test_insecure_commands_computed_is_auditor() -> None:
    [finding] = findings(
        InsecureCommands(), step_env("ACTIONS_ALLOW_UNSECURE_COMMANDS", "${{ inputs.x }}")
    )
    assert (finding.confidence, finding.persona) == (Confidence.LOW, Persona.AUDITOR)


@pytest.mark.parametrize(
    ("name", "value", "confidence"),
    [
        ("RUNNER_DEBUG", "1", Confidence.HIGH),
        ("ACTIONS_STEP_DEBUG", "true", Confidence.MEDIUM),
        ("ACTIONS_RUNNER_DEBUG", "'1'", Confidence.MEDIUM),
    ],
)
def test_debug_logging(name: str, value: str, confidence: Confidence) -> None:
    [finding] = findings(DebugLogging(), step_env(name, value))
    assert (finding.severity, finding.confidence) == (Severity.MEDIUM, confidence)


@pytest.mark.parametrize("value", ["false", "0", "''", "${{ inputs.debug }}"])
def test_debug_logging_off_or_opt_in(value: str) -> None:
    assert findings(DebugLogging(), step_env("RUNNER_DEBUG", value)) == []


def publish_job(steps: str, permissions: str = "") -> str:
    return f"on: push\n{permissions}jobs:\n  p:\n    runs-on: ubuntu-latest\n    steps:\n{steps}"


@pytest.mark.parametrize(
    ("steps", "registry"),
    [
        (
            "      - run: uv publish --token ${{ secrets.PYPI_TOKEN }}\n",
            "PyPI",
        ),
        (
            "      - run: poetry publish --build\n        env:\n"
            "          POETRY_PYPI_TOKEN_PYPI: ${{ secrets.PYPI }}\n",
            "PyPI",
        ),
        (
            '      - run: cargo publish --token "$TOKEN"\n        env:\n'
            "          TOKEN: ${{ secrets.CRATES }}\n",
            "crates.io",
        ),
        (
            "      - run: bundle exec rake release\n        env:\n"
            "          GEM_HOST_API_KEY: ${{ secrets.RUBYGEMS }}\n",
            "RubyGems.org",
        ),
        (
            "      - run: nuget push a.nupkg -ApiKey ${{ secrets.NUGET }}\n",
            "nuget.org",
        ),
        (
            "      - uses: JS-DevTools/npm-publish@v3\n        with:\n"
            "          token: ${{ secrets.NPM_TOKEN }}\n",
            "npm",
        ),
    ],
)
def test_publishing_with_tokens(steps: str, registry: str) -> None:
    [finding] = findings(UseTrustedPublishing(), publish_job(steps))
    assert finding.evidence.startswith(registry)
    assert (finding.severity, finding.persona) == (Severity.LOW, Persona.REGULAR)
    assert "trusted publishing" in finding.message


@pytest.mark.parametrize(
    "steps",
    [
        "      - run: twine upload -r internal dist/*\n        env:\n"
        "          TWINE_PASSWORD: ${{ secrets.T }}\n",
        "      - run: uv publish --publish-url https://pypi.internal.example/upload "
        "--token ${{ secrets.T }}\n",
        "      - run: npm publish --registry https://npm.internal.example/\n        env:\n"
        "          NODE_AUTH_TOKEN: ${{ secrets.T }}\n",
        "      - run: npm publish\n        env:\n          NODE_AUTH_TOKEN: ${{ secrets.GITHUB_TOKEN }}\n",
        "      - run: twine upload dist/*\n",
        "      - run: echo publish docs\n        env:\n          NPM_TOKEN: ${{ secrets.T }}\n",
    ],
)
def test_publishing_without_long_lived_public_tokens(steps: str) -> None:
    assert findings(UseTrustedPublishing(), publish_job(steps)) == []


def test_npm_with_oidc_is_pedantic_info() -> None:
    steps = "      - run: npm publish\n        env:\n          NODE_AUTH_TOKEN: ${{ secrets.T }}\n"
    permissions = "permissions:\n  id-token: write\n"
    [finding] = findings(UseTrustedPublishing(), publish_job(steps, permissions))
    assert (finding.severity, finding.persona) == (Severity.INFO, Persona.PEDANTIC)
