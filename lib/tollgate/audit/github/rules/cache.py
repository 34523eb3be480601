"""``cache-poisoning``: a job that publishes restores a cache that someone else may have
written.

GitHub Actions caches are shared by branch scope: a run on a tag or a release branch
restores entries written on the default branch. Any code that runs on the default branch
(a ``pull_request_target`` or ``issue_comment`` job that runs an outsider's code, an
injection, a compromised dependency) can write entries under the keys a release restores,
and the release then builds from poisoned tools or dependencies. The rule looks at the jobs
that publish (and the jobs whose output they publish), not at every job of a release
workflow, and leaves out restores whose key no other run can produce in advance (a key
with ``github.sha`` or ``github.run_id`` and no ``restore-keys``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from tollgate.audit.findings import Confidence, Finding, Persona, RuleInfo, Severity
from tollgate.audit.github.model import Job, Step, Workflow
from tollgate.audit.github.rules._scan import lowered_text
from tollgate.audit.github.rules._untrusted import PRIVILEGED_EVENTS
from tollgate.audit.rules import AuditContext, Rule, register
from tollgate.audit.source import YNode, YScalar

# Cache-aware actions: slug -> (input, restores when the input is absent, values that turn
# the cache off). `None` input: always restores.
CACHE_ACTIONS: Mapping[str, tuple[str | None, bool, frozenset[str]]] = {
    "actions/cache": (None, True, frozenset()),
    "actions/cache/restore": (None, True, frozenset()),
    "actions/setup-node": ("cache", False, frozenset(("", "false"))),
    "actions/setup-python": ("cache", False, frozenset(("", "false"))),
    "actions/setup-java": ("cache", False, frozenset(("", "false"))),
    "actions/setup-go": ("cache", True, frozenset(("false",))),
    "actions/setup-dotnet": ("cache", False, frozenset(("", "false"))),
    "astral-sh/setup-uv": ("enable-cache", False, frozenset(("", "false", "auto"))),
    "swatinem/rust-cache": (None, True, frozenset()),
    "ruby/setup-ruby": ("bundler-cache", False, frozenset(("", "false"))),
    "pyo3/maturin-action": ("sccache", False, frozenset(("", "false"))),
    "mlugg/setup-zig": ("use-cache", True, frozenset(("false",))),
    "oven-sh/setup-bun": ("no-cache", True, frozenset(("true",))),
    "determinatesystems/magic-nix-cache-action": ("use-gha-cache", True, frozenset(("false",))),
    "graalvm/setup-graalvm": ("cache", False, frozenset(("", "false"))),
    "gradle/actions/setup-gradle": ("cache-disabled", True, frozenset(("true",))),
    "gradle/gradle-build-action": ("cache-disabled", True, frozenset(("true",))),
    "actions-rust-lang/setup-rust-toolchain": ("cache", True, frozenset(("false",))),
    "mozilla-actions/sccache-action": (None, True, frozenset()),
    "nix-community/cache-nix-action": (None, True, frozenset()),
    "jdx/mise-action": ("cache", True, frozenset(("false",))),
    "ramsey/composer-install": ("ignore-cache", True, frozenset(("true", "yes", "1"))),
    "awalsh128/cache-apt-pkgs-action": (None, True, frozenset()),
}
"""Actions that restore GitHub Actions caches, and the input that turns it on or off."""

PUBLISH_ACTIONS = frozenset(
    (
        "pypa/gh-action-pypi-publish",
        "rubygems/release-gem",
        "jreleaser/release-action",
        "goreleaser/goreleaser-action",
        "softprops/action-gh-release",
        "ncipollo/release-action",
        "svenstaro/upload-release-action",
        "actions/create-release",
        "actions/upload-release-asset",
        "redhat-actions/push-to-registry",
        "js-devtools/npm-publish",
        "cloudflare/wrangler-action",
        "actions/deploy-pages",
        "peaceiris/actions-gh-pages",
        "jamesives/github-pages-deploy-action",
        "actions/attest-build-provenance",
        "actions/attest",
    )
)
"""Actions that publish a package, a release, an image or a site."""

_PUBLISH_RUN_RE = re.compile(
    r"\b(?:npm|pnpm|yarn(?:\s+npm)?)\s+publish\b|\btwine\s+upload\b|"
    r"\b(?:uv|poetry|flit|hatch|pdm)\s+publish\b|\bmaturin\s+(?:publish|upload)\b|"
    r"\bcargo\s+publish\b|\bgem\s+push\b|\bdocker\s+(?:image\s+)?push\b|"
    r"\bdocker\s+buildx\s+(?:build|bake)\b[^\n]*--push\b|\bgh\s+release\s+(?:create|upload)\b|"
    r"\bmvn\b[^\n]*\bdeploy\b|\bgradlew?\b[^\n]*\bpublish\w*\b|\b(?:dotnet\s+)?nuget\s+push\b|"
    r"\bgoreleaser\s+release\b|\b(?:vsce|ovsx)\s+publish\b|\bhelm\s+push\b|\bcrane\s+push\b|"
    r"\bcosign\s+(?:sign|attest)\b|\bko\s+(?:build|publish|apply)\b",
)
_PUBLISH_WORDS = ("publish", "upload", "push", "deploy", "release", "cosign", "ko ")
# Words that every publishing action or command above contains (in the lower-cased text),
# tested as substrings: one regular expression over the whole file costs more than the rule.
_PUBLISH_HINTS = (
    "publish",
    "twine upload",
    "maturin upload",
    "upload-release",
    "deploy",
    "release",
    "cosign",
    "attest",
    "gh-pages",
    "wrangler",
    "build-push",
    "push-to-registry",
    "--push",
)
_KO_RE = re.compile(r"\bko (?:build|publish|apply)\b")
_UPLOAD_ACTIONS = frozenset(("actions/upload-artifact", "actions/upload-pages-artifact"))
# A key with one of these cannot be produced by an earlier run on another ref.
_UNIQUE_KEY_RE = re.compile(r"github\.(?:sha|run_id|run_number|run_attempt)\b|\bGITHUB_SHA\b")
_DEFAULT_BRANCH_WRITERS = frozenset((*PRIVILEGED_EVENTS, "issues", "discussion_comment"))


@dataclass(frozen=True)
class _Restore:
    step: Step
    node: YScalar
    why: str


@register
class CachePoisoning(Rule):
    """A publishing job restores a cache that another workflow may have written."""

    info = RuleInfo(
        id="cache-poisoning",
        name="Cache poisoning",
        summary="A job that publishes (or builds what is published) restores a GitHub Actions "
        "cache, which any code running on the default branch could have poisoned.",
        default_severity=Severity.HIGH,
        help_uri="docs/rules/cache-poisoning.md",
    )

    def check_workflow(self, workflow: Workflow, context: AuditContext) -> Iterator[Finding]:
        release = _release_trigger(workflow)
        if release is None and not _may_publish(lowered_text(workflow)):
            return  # nothing here publishes: spare the per-step work
        restores = {job.id: _restores(job) for job in workflow.jobs.values()}
        if not any(restores.values()):
            return
        publishers = {job.id: p for job in workflow.jobs.values() if (p := _publish_step(job))}
        if not publishers and release is None:
            return
        feeding = _feeding(workflow, set(publishers))
        # A privileged trigger in this very file runs on the default branch: a writer is here.
        writer = sorted(set(workflow.triggers) & _DEFAULT_BRANCH_WRITERS)
        for job in workflow.jobs.values():
            for restore in restores[job.id]:
                if job.id in publishers:
                    publish = publishers[job.id]
                    how = f"publishes ({_label(publish)})"
                elif job.id in feeding:
                    publish = publishers[feeding[job.id]]
                    how = f"builds what job {feeding[job.id]} publishes"
                elif not publishers:
                    publish = None
                    how = f"runs on {release}"
                else:
                    continue
                confidence = Confidence.MEDIUM if writer else Confidence.LOW
                also = (
                    f" This workflow also runs on {', '.join(writer)}, in the default branch's "
                    "cache scope."
                    if writer
                    else ""
                )
                related = (workflow.location(publish.node),) if publish is not None else ()
                yield Finding(
                    rule=self.info.id,
                    severity=Severity.HIGH if publishers else Severity.MEDIUM,
                    confidence=confidence,
                    message=(
                        f"Job {job.id} {how} and restores a cache ({restore.why}) that any "
                        "run on the default branch can write first; build releases without "
                        f"caches (or with `lookup-only`/a key unique to this run).{also}"
                    ),
                    location=workflow.location(restore.node),
                    anchor=restore.step.anchor,
                    persona=Persona.REGULAR if publishers else Persona.PEDANTIC,
                    evidence=restore.why,
                    related=related,
                )


def _restores(job: Job) -> list[_Restore]:
    found: list[_Restore] = []
    for step in job.all_steps():
        uses = step.uses
        if uses is None or uses.slug is None:
            continue
        slug = uses.slug
        full = f"{slug}/{uses.path.lower()}" if uses.path else slug
        if full == "docker/build-push-action" or slug == "docker/build-push-action":
            cache_from = step.with_.get("cache-from")
            if cache_from is not None and "type=gha" in cache_from.value:
                found.append(_Restore(step, cache_from, "cache-from: type=gha"))
            continue
        spec = CACHE_ACTIONS.get(full) or CACHE_ACTIONS.get(slug)
        if spec is None or full == "actions/cache/save":
            continue
        key, default_on, off_values = spec
        if slug == "actions/cache" or full == "actions/cache/restore":
            lookup = step.with_.get("lookup-only")
            if lookup is not None and lookup.value.strip().lower() == "true":
                continue
            if not _guessable_key(step):
                continue
            found.append(_Restore(step, uses.node, uses.raw))
            continue
        if key is None:
            found.append(_Restore(step, uses.node, uses.raw))
            continue
        node = step.with_.get(key)
        if slug == "actions/setup-node" and node is None and _node_auto_cache(step):
            found.append(
                _Restore(step, uses.node, f"{uses.raw}, package-manager-cache on by default")
            )
            continue
        if node is None:
            if default_on:
                found.append(_Restore(step, uses.node, f"{uses.raw}, cache on by default"))
            continue
        if node.value.strip().lower() not in off_values:
            found.append(_Restore(step, node, f"{key}: {node.value.strip()}"))
    return found


def _node_auto_cache(step: Step) -> bool:
    """setup-node v5+ caches npm by default (`package-manager-cache`) when package.json names
    npm as its package manager, which cannot be seen from here."""
    uses = step.uses
    assert uses is not None
    flag = step.with_.get("package-manager-cache")
    if flag is not None:
        return flag.value.strip().lower() != "false"
    match = re.fullmatch(r"v?(\d+)(?:\.\d+)*", uses.ref or "")
    return match is not None and int(match.group(1)) >= 5


def _guessable_key(step: Step) -> bool:
    """False for an ``actions/cache`` key that only this run can produce."""
    key = step.with_.get("key")
    if key is None or "restore-keys" in step.with_:
        return True
    return _UNIQUE_KEY_RE.search(key.value) is None


def _publish_step(job: Job) -> Step | None:
    for step in job.all_steps():
        uses = step.uses
        if uses is not None and uses.slug is not None:
            if uses.slug in PUBLISH_ACTIONS:
                return step
            if uses.slug == "docker/build-push-action":
                push = step.with_.get("push")
                if push is not None and push.value.strip().lower() not in ("false", ""):
                    return step
            if uses.slug == "changesets/action" and "publish" in step.with_:
                return step
            # Retry and wrapper actions take the command as an input.
            command = step.with_.get("command") or step.with_.get("run")
            if command is not None and _might_publish(command.value):
                return step
        elif step.run is not None and _might_publish(step.run.value):
            return step
    return None


def _may_publish(lowered: str) -> bool:
    """A cheap test on the whole file before looking at its steps."""
    if any(word in lowered for word in _PUBLISH_HINTS):
        return True
    # `docker push`, `gem push`: a letter before the space (`on: push` has a colon).
    position = lowered.find(" push")
    while position > 0:
        if lowered[position - 1].isalpha():
            return True
        position = lowered.find(" push", position + 5)
    return "ko " in lowered and _KO_RE.search(lowered) is not None


def _might_publish(script: str) -> bool:
    # The words every publishing command has, before the (slower) full pattern.
    if not any(word in script for word in _PUBLISH_WORDS):
        return False
    for match in _PUBLISH_RUN_RE.finditer(script):
        end = script.find("\n", match.end())
        line = script[match.start() : end if end >= 0 else len(script)]
        if "--dry-run" not in line and "--dryrun" not in line:
            return True
    return False


def _feeding(workflow: Workflow, publishers: set[str]) -> dict[str, str]:
    """Jobs that a publishing job needs (transitively) and that upload artifacts -> that
    publishing job. A needed job that uploads nothing (tests, a gate) cannot change what
    is published."""
    fed: dict[str, str] = {}
    seen: set[str] = set()
    for name in publishers:
        stack = list(workflow.jobs[name].needs)
        while stack:
            needed = stack.pop()
            if needed in seen or needed in publishers or needed not in workflow.jobs:
                continue
            seen.add(needed)
            job = workflow.jobs[needed]
            if _uploads(job):
                fed[needed] = name
            stack.extend(job.needs)
    return fed


def _uploads(job: Job) -> bool:
    return any(
        step.uses is not None and step.uses.slug in _UPLOAD_ACTIONS for step in job.all_steps()
    )


def _release_trigger(workflow: Workflow) -> str | None:
    """``release``, or ``push`` of tags, when the workflow has one."""
    if "release" in workflow.triggers:
        return "release"
    push = workflow.triggers.get("push")
    if push is not None and push.settings is not None:
        tags: YNode | None = push.settings.get("tags")
        if tags is not None:
            return "tag pushes"
    return None


def _label(step: Step) -> str:
    if step.uses is not None:
        return step.uses.raw
    run = step.run.value if step.run is not None else ""
    match = _PUBLISH_RUN_RE.search(run)
    return match.group(0) if match else step.label
