"""``use-trusted-publishing``: packages uploaded with a long-lived registry token where the
registry accepts the job's OIDC identity instead (trusted publishing).

PyPI (2023), RubyGems.org (2023), npm (2025), crates.io (2025) and nuget.org (2025) exchange a
GitHub OIDC token for a short-lived upload token bound to one repository and workflow. A
stored token works from anywhere until someone revokes it: a compromised step, dependency or
log leak in any job that sees it can publish a malicious release.

Only tokens that come from ``secrets.*`` (or an action's ``inputs.*``) count: a token from a
step output is usually the OIDC exchange itself (``rust-lang/crates-io-auth-action``,
``NuGet/login``), and ``GITHUB_TOKEN`` means GitHub Packages, which has no trusted publishing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from tollgate.audit.findings import Confidence, Finding, Persona, RuleInfo, Severity
from tollgate.audit.github.model import Action, Permissions, Step, Workflow
from tollgate.audit.github.rules._places import Model, facts
from tollgate.audit.rules import AuditContext, Rule, register
from tollgate.audit.source import YScalar

# An option's value: a whole `${{ }}` (it may hold spaces), or a shell word.
_VALUE = r"(?P<value>\$\{\{.*?\}\}|\S+)"


@dataclass(frozen=True)
class _Registry:
    """A registry with trusted publishing: how a run: step publishes to it, and with what."""

    name: str
    hints: tuple[str, ...]
    """Substrings one of which the script must hold before the regexes run (speed)."""
    command: re.Pattern[str]
    token_env: frozenset[str]
    token_flag: re.Pattern[str] | None
    """A command-line option that passes the token (its value is checked for a secret)."""
    home: str
    """The public registry's host: another URL in the script means a private index."""
    elsewhere: re.Pattern[str]
    """Options that name the target registry (URL or name)."""


_REGISTRIES = (
    _Registry(
        "PyPI",
        ("twine", " publish", "maturin"),
        re.compile(
            r"\b(?:twine\s+upload|uv\s+publish|poetry\s+publish|hatch\s+publish|pdm\s+publish"
            r"|flit\s+publish|maturin\s+(?:publish|upload))\b"
        ),
        frozenset(
            (
                "TWINE_PASSWORD",
                "UV_PUBLISH_TOKEN",
                "UV_PUBLISH_PASSWORD",
                "POETRY_PYPI_TOKEN_PYPI",
                "POETRY_HTTP_BASIC_PYPI_PASSWORD",
                "HATCH_INDEX_AUTH",
                "PDM_PUBLISH_PASSWORD",
                "FLIT_PASSWORD",
                "MATURIN_PYPI_TOKEN",
                "MATURIN_PASSWORD",
            )
        ),
        re.compile(r"(?:\s-p|--password|--token|\s-t|pypi-token\.pypi)[\s=]+" + _VALUE),
        "pypi.org",
        re.compile(r"(?:--repository-url|--publish-url|--index|--repository|\s-r)[\s=]+" + _VALUE),
    ),
    _Registry(
        "npm",
        (" publish",),
        re.compile(r"\b(?:npm|pnpm|yarn(?:\s+npm)?|lerna|changeset)\s+publish\b"),
        frozenset(("NODE_AUTH_TOKEN", "NPM_TOKEN", "NPM_AUTH_TOKEN", "YARN_NPM_AUTH_TOKEN")),
        re.compile(r"_authToken=" + _VALUE),
        "registry.npmjs.org",
        re.compile(r"--registry[\s=]+" + _VALUE),
    ),
    _Registry(
        "RubyGems.org",
        ("gem push", "rake release"),
        re.compile(r"\b(?:gem\s+push|rake\s+release)\b"),
        frozenset(("GEM_HOST_API_KEY",)),
        re.compile(r":rubygems_api_key:\s*" + _VALUE),
        "rubygems.org",
        re.compile(r"--host[\s=]+" + _VALUE),
    ),
    _Registry(
        "crates.io",
        (" publish", "cargo release"),
        re.compile(r"\bcargo\s+(?:publish|release|workspaces\s+publish|ws\s+publish)\b"),
        frozenset(("CARGO_REGISTRY_TOKEN",)),
        re.compile(r"(?:--token|cargo\s+login)[\s=]+" + _VALUE),
        "crates-io",
        re.compile(r"--registry[\s=]+" + _VALUE),
    ),
    _Registry(
        "nuget.org",
        ("nuget", "NuGet"),
        re.compile(r"\b(?:dotnet\s+nuget|nuget(?:\.exe)?)\s+push\b", re.IGNORECASE),
        frozenset(("NUGET_API_KEY", "NUGET_AUTH_TOKEN")),
        re.compile(r"(?:--api-key|\s-k|-ApiKey)[\s=]+" + _VALUE, re.IGNORECASE),
        "nuget.org",
        re.compile(r"(?:--source|\s-s|-Source)[\s=]+" + _VALUE, re.IGNORECASE),
    ),
)
_ACTIONS = frozenset(
    (
        "pypa/gh-action-pypi-publish",
        "js-devtools/npm-publish",
        "katyo/publish-crates",
        "changesets/action",
        "release-plz/action",
        "pyo3/maturin-action",
    )
)
# PyPI and TestPyPI by URL (`https://upload.pypi.org/legacy/`) or by index name (`-r pypi`).
_PUBLIC_PYPI = re.compile(r"(?:pypi|testpypi|https://(?:upload\.|test\.)?pypi\.org(?:/.*)?)")
_SHELL_VARIABLE = re.compile(r"\$\{?(?:env:)?([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class _Publish:
    registry: str
    node: YScalar
    anchor: str
    token: str
    """How the token is passed (``TWINE_PASSWORD``, ``with.password``), for the evidence."""
    confidence: Confidence
    start: int | None = None
    end: int | None = None
    oidc_ready: bool = False
    """npm only: the job already has ``id-token: write`` or ``--provenance``."""


def _long_lived(value: str, in_action: bool) -> bool:
    """True when a token value comes from a stored secret (or an action's caller)."""
    lowered = value.lower()
    if "secrets." in lowered or "secrets[" in lowered:
        return "secrets.github_token" not in lowered
    return in_action and "inputs." in lowered


@register
class UseTrustedPublishing(Rule):
    """A release uploaded with a stored token where the registry offers trusted publishing."""

    info = RuleInfo(
        id="use-trusted-publishing",
        name="Long-lived registry token where trusted publishing exists",
        summary="Publishing to PyPI, npm, RubyGems.org, crates.io or nuget.org with a stored "
        "token instead of the job's OIDC identity leaves a credential that works from "
        "anywhere until revoked.",
        default_severity=Severity.LOW,
        help_uri="docs/rules/use-trusted-publishing.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        if not _worth_a_look(workflow):
            return
        for job in workflow.jobs.values():
            steps = tuple(job.all_steps())
            candidates = [step for step in steps if _candidate(step)]
            if not candidates:
                continue
            base = {**workflow.env, **job.env}
            oidc = _id_token(job.permissions) or (
                job.permissions.is_absent and _id_token(workflow.permissions)
            )
            for step in candidates:
                found = _step(step, steps, base, oidc, in_action=False)
                yield from (self._finding(workflow, p) for p in found)

    def check_action(self, action: Action, context: AuditContext) -> Iterator[Finding]:
        if not _worth_a_look(action):
            return
        steps = tuple(action.all_steps())
        for step in steps:
            if _candidate(step):
                found = _step(step, steps, {}, False, in_action=True)
                yield from (self._finding(action, p) for p in found)

    def _finding(self, model: Model, found: _Publish) -> Finding:
        if found.oidc_ready:
            severity, persona = Severity.INFO, Persona.PEDANTIC
            message = (
                f"This npm publish still authenticates with a stored token ({found.token}) "
                "although the job can mint OIDC tokens; configure a trusted publisher on "
                "npmjs.com and drop the token."
            )
        else:
            severity, persona = Severity.LOW, Persona.REGULAR
            message = (
                f"This uploads to {found.registry} with a long-lived token ({found.token}); "
                f"configure trusted publishing on {found.registry} (`id-token: write`) and "
                "remove the token, which then cannot leak."
            )
        return Finding(
            rule=self.info.id,
            severity=severity,
            confidence=found.confidence,
            message=message,
            location=model.location(found.node, found.start, found.end),
            anchor=found.anchor,
            persona=persona,
            evidence=f"{found.registry} {found.token}",
        )


def _worth_a_look(model: Model) -> bool:
    """A known publishing action, or a script that names a publishing tool (cheap)."""
    found = facts(model)
    return _names_a_tool(found.run_text) or any(site.uses.slug in _ACTIONS for site in found.uses)


def _names_a_tool(text: str) -> bool:
    # `in` chains, not any() over a tuple: this runs on every script.
    # Every `<tool> publish` command holds " publish"; the others are named below.
    return (
        " publish" in text
        or "twine" in text
        or "maturin" in text
        or "gem push" in text
        or "rake release" in text
        or "cargo release" in text
        or "nuget" in text
        or "NuGet" in text
    )


def _candidate(step: Step) -> bool:
    """A known publishing action, or a script naming a publishing tool."""
    if step.uses is not None:
        return step.uses.slug in _ACTIONS
    return step.run is not None and _names_a_tool(step.run.value)


def _id_token(permissions: Permissions) -> bool:
    return permissions.level("id-token") == "write"


def _step(
    step: Step,
    siblings: tuple[Step, ...],
    base_env: Mapping[str, YScalar],
    oidc: bool,
    *,
    in_action: bool,
) -> Iterator[_Publish]:
    env = {**base_env, **step.env} if step.env else base_env
    if step.uses is not None and step.uses.slug is not None:
        yield from _action_step(step, step.uses.slug, env, in_action)
    elif step.run is not None:
        yield from _run_step(step, env, oidc, in_action, siblings)


def _token_env(
    step: Step, env: Mapping[str, YScalar], names: frozenset[str], in_action: bool
) -> tuple[str, YScalar, Confidence] | None:
    """The first of ``names`` set from a secret: ``(name, value node, confidence)``."""
    for name in sorted(names):
        value = env.get(name)
        if value is not None and _long_lived(value.value, in_action):
            # A token set for the whole job may serve another step; on the step it is this one's.
            own = step.env.get(name) is value
            return name, value, Confidence.HIGH if own else Confidence.MEDIUM
    return None


def _action_step(
    step: Step, slug: str, env: Mapping[str, YScalar], in_action: bool
) -> Iterator[_Publish]:
    with_ = step.with_
    if slug == "pypa/gh-action-pypi-publish":
        password = with_.get("password")
        target = with_.get("repository-url") or with_.get("repository_url")
        if password is None or not _long_lived(password.value, in_action):
            return
        if target is not None and not _public_pypi(target.value):
            return  # a private index: no trusted publishing there
        yield _Publish(
            "PyPI", password, step.field_anchor("with.password"), "with.password", Confidence.HIGH
        )
    elif slug == "js-devtools/npm-publish":
        token = with_.get("token")
        target = with_.get("registry")
        if token is None or not _long_lived(token.value, in_action):
            return
        if target is not None and "registry.npmjs.org" not in target.value:
            return
        yield _Publish("npm", token, step.field_anchor("with.token"), "with.token", Confidence.HIGH)
    elif slug == "katyo/publish-crates":
        token = with_.get("registry-token")
        if token is not None and _long_lived(token.value, in_action):
            anchor = step.field_anchor("with.registry-token")
            yield _Publish("crates.io", token, anchor, "with.registry-token", Confidence.HIGH)
    else:
        # Actions that run a publish command for you and take the token from the environment.
        name, names, wanted = {
            "changesets/action": ("npm", ("NPM_TOKEN", "NODE_AUTH_TOKEN"), "publish"),
            "release-plz/action": ("crates.io", ("CARGO_REGISTRY_TOKEN",), None),
            "pyo3/maturin-action": ("PyPI", ("MATURIN_PYPI_TOKEN", "MATURIN_PASSWORD"), None),
        }.get(slug, ("", (), None))
        if not name or (wanted is not None and wanted not in with_):
            return
        if slug == "pyo3/maturin-action":
            command = with_.get("command")
            if command is None or command.value.strip() not in ("upload", "publish"):
                return
        found = _token_env(step, env, frozenset(names), in_action)
        if found is not None:
            # What the action runs is out of sight: medium at best.
            variable, node, _ = found
            own = step.env.get(variable) is node
            anchor = step.field_anchor(f"env.{variable}") if own else step.anchor
            yield _Publish(name, node, anchor, variable, Confidence.MEDIUM)


def _run_step(
    step: Step,
    env: Mapping[str, YScalar],
    oidc: bool,
    in_action: bool,
    siblings: tuple[Step, ...],
) -> Iterator[_Publish]:
    assert step.run is not None
    script = step.run.value
    for registry in _REGISTRIES:
        if not any(hint in script for hint in registry.hints):
            continue
        command = registry.command.search(script)
        if command is None or _elsewhere(registry, script, env, siblings):
            continue
        from_env = _token_env(step, env, registry.token_env, in_action)
        how: str | None = None
        confidence = Confidence.HIGH
        if from_env is not None:
            how, _, confidence = from_env
        elif registry.token_flag is not None:
            for flag in registry.token_flag.finditer(script):
                value = flag["value"].strip("'\"")
                variable = _SHELL_VARIABLE.match(value)
                source = env.get(variable.group(1)) if variable else None
                if _long_lived(value, in_action) or (
                    source is not None and _long_lived(source.value, in_action)
                ):
                    how = flag.group().split()[0].strip() or "a command-line token"
                    break
        if how is None:
            continue
        ready = registry.name == "npm" and (
            oidc or "--provenance" in script or _truthy(env.get("NPM_CONFIG_PROVENANCE"))
        )
        yield _Publish(
            registry.name,
            step.run,
            step.field_anchor("run"),
            how,
            confidence,
            command.start(),
            command.end(),
            oidc_ready=ready,
        )


def _elsewhere(
    registry: _Registry, script: str, env: Mapping[str, YScalar], siblings: tuple[Step, ...]
) -> bool:
    """True when the upload targets a private registry (no trusted publishing there)."""
    targets = [m["value"] for m in registry.elsewhere.finditer(script)]
    if registry.name == "PyPI":
        targets.extend(
            env[name].value
            for name in ("TWINE_REPOSITORY_URL", "TWINE_REPOSITORY", "UV_PUBLISH_URL")
            if name in env
        )
        return not all(_public_pypi(target) for target in targets)
    if registry.name == "npm":
        if "NPM_CONFIG_REGISTRY" in env:
            targets.append(env["NPM_CONFIG_REGISTRY"].value)
        for sibling in siblings:
            if sibling.uses is not None and sibling.uses.slug == "actions/setup-node":
                url = sibling.with_.get("registry-url")
                if url is not None:
                    targets.append(url.value)
    if registry.name == "crates.io":
        return any(t.strip("'\"") not in ("crates-io", "crates.io") for t in targets)
    return any(registry.home not in t.lower() for t in targets)


def _public_pypi(target: str) -> bool:
    return _PUBLIC_PYPI.fullmatch(target.strip("'\"").lower()) is not None


def _truthy(node: YScalar | None) -> bool:
    return node is not None and node.value.strip().lower() in ("true", "1")
