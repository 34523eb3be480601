"""Runner switches that weaken a job: ``insecure-commands`` (``ACTIONS_ALLOW_UNSECURE_COMMANDS``
re-enables ``set-env``/``add-path`` from log output) and ``debug-logging`` (debug switches
written into the file, which turn every run's log verbose).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from tollgate.audit.findings import Confidence, Finding, Persona, RuleInfo, Severity
from tollgate.audit.github.expressions import OPEN
from tollgate.audit.github.model import Action, Workflow
from tollgate.audit.github.rules._places import Model, env_entries, facts
from tollgate.audit.rules import AuditContext, Rule, register
from tollgate.audit.source import YScalar


@dataclass(frozen=True)
class _Switch:
    """An environment variable set in the file: in an ``env:`` mapping or via ``$GITHUB_ENV``."""

    name: str
    node: YScalar
    anchor: str
    start: int | None = None
    """For a ``$GITHUB_ENV`` write: where the assignment lies in the ``run:`` script."""
    end: int | None = None
    computed: bool = False
    """The value is a ``${{ }}`` expression: it may or may not be on."""


def _switches(model: Model, names: frozenset[str], on: frozenset[str]) -> Iterator[_Switch]:
    """Every place that sets one of ``names`` to one of ``on`` (lower-case values)."""
    for entry in env_entries(model):
        if entry.name.upper() not in names:
            continue
        value = entry.value.value.strip()
        if value.lower() in on:
            yield _Switch(entry.name, entry.value, entry.anchor)
        elif OPEN in value:
            yield _Switch(entry.name, entry.value, entry.anchor, computed=True)
    pattern = _github_env_write(names, on)
    for site in facts(model).runs:
        script = site.script.value
        if "GITHUB_ENV" not in script or not any(name in script for name in names):
            continue
        for match in pattern.finditer(script):
            yield _Switch(
                match["name"],
                site.script,
                site.step.field_anchor("run"),
                match.start("name"),
                match.end(),
            )


@lru_cache(maxsize=8)
def _github_env_write(names: frozenset[str], on: frozenset[str]) -> re.Pattern[str]:
    # `echo "NAME=true" >> "$GITHUB_ENV"` (also `>> $env:GITHUB_ENV` in PowerShell): the
    # write must be on the same line as the redirection to the environment file.
    return re.compile(
        r"(?<![\w$])(?P<name>"
        + "|".join(sorted(names))
        + r")=[\"']?(?:"
        + "|".join(sorted(on))
        + r")\b"
        r"(?=[^\n]*GITHUB_ENV)",
        re.IGNORECASE,
    )


_INSECURE = frozenset(("ACTIONS_ALLOW_UNSECURE_COMMANDS",))
# The runner parses the value with .NET's bool.TryParse: `true` in any case, nothing else.
_TRUE = frozenset(("true",))


@register
class InsecureCommands(Rule):
    """``ACTIONS_ALLOW_UNSECURE_COMMANDS: true``."""

    info = RuleInfo(
        id="insecure-commands",
        name="Insecure workflow commands enabled",
        summary="`ACTIONS_ALLOW_UNSECURE_COMMANDS` re-enables `::set-env::` and `::add-path::`, "
        "so anything that reaches the log (a PR title, a test name) can set variables such "
        "as `LD_PRELOAD` or `PATH` for the rest of the job.",
        default_severity=Severity.HIGH,
        help_uri="docs/rules/insecure-commands.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        return self._check(workflow)

    def check_action(self, action: Action, context: AuditContext) -> Iterator[Finding]:
        return self._check(action)

    def _check(self, model: Model) -> Iterator[Finding]:
        if "ACTIONS_ALLOW_UNSECURE_COMMANDS" not in model.document.text:
            return
        for switch in _switches(model, _INSECURE, _TRUE):
            if switch.computed:
                confidence, persona = Confidence.LOW, Persona.AUDITOR
                message = (
                    "`ACTIONS_ALLOW_UNSECURE_COMMANDS` is computed here and may be `true`, "
                    "which lets log output set environment variables; remove it and write "
                    "to `$GITHUB_ENV`/`$GITHUB_PATH` instead."
                )
            else:
                confidence, persona = Confidence.HIGH, Persona.REGULAR
                message = (
                    "`ACTIONS_ALLOW_UNSECURE_COMMANDS: true` lets anything printed to the log "
                    "set environment variables and PATH; remove it and write to "
                    "`$GITHUB_ENV`/`$GITHUB_PATH` instead."
                )
            yield Finding(
                rule=self.info.id,
                severity=Severity.HIGH,
                confidence=confidence,
                message=message,
                location=model.location(switch.node, switch.start, switch.end),
                anchor=switch.anchor,
                persona=persona,
                evidence=f"{switch.name}={'computed' if switch.computed else 'true'}",
            )


_DEBUG = frozenset(("ACTIONS_STEP_DEBUG", "ACTIONS_RUNNER_DEBUG", "RUNNER_DEBUG"))
# `RUNNER_DEBUG` is what @actions/core's isDebug() reads (`=== '1'`).
_DEBUG_ON = frozenset(("true", "1"))


@register
class DebugLogging(Rule):
    """Debug logging switched on in the file rather than for one re-run."""

    info = RuleInfo(
        id="debug-logging",
        name="Debug logging enabled in the file",
        summary="Debug switches written into a workflow make every run's log verbose; debug "
        "output prints values derived from secrets, which the log masker does not recognise.",
        default_severity=Severity.MEDIUM,
        help_uri="docs/rules/debug-logging.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        return self._check(workflow)

    def check_action(self, action: Action, context: AuditContext) -> Iterator[Finding]:
        return self._check(action)

    def _check(self, model: Model) -> Iterator[Finding]:
        if "_DEBUG" not in model.document.text:
            return
        for switch in _switches(model, _DEBUG, _DEBUG_ON):
            if switch.computed:
                continue  # `${{ inputs.debug }}`: an opt-in per run, which is the fix
            name = switch.name.upper()
            # The runner reads ACTIONS_*_DEBUG from secrets and variables only; in `env:`
            # they reach the actions and tools that check them themselves.
            confidence = Confidence.HIGH if name == "RUNNER_DEBUG" else Confidence.MEDIUM
            yield Finding(
                rule=self.info.id,
                severity=Severity.MEDIUM,
                confidence=confidence,
                message=f"`{switch.name}` turns on debug output for every run, and debug "
                "output can print values derived from secrets that the masker misses; "
                "remove it and re-run a failing job with debug logging when needed.",
                location=model.location(switch.node, switch.start, switch.end),
                anchor=switch.anchor,
                evidence=f"{switch.name}=on",
            )
