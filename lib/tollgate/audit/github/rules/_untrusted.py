"""Pull-request code in privileged jobs: who checks it out, who then runs it, and who pulls
in another run's artifacts.

Shared by ``dangerous-triggers``, ``untrusted-checkout``, ``artifact-poisoning``,
``artipacked`` and ``secrets-in-untrusted-job``. Everything here is a heuristic over the
workflow text: it errs towards seeing a checkout of pull-request code (the rules then grade
by what follows), and towards *not* seeing an execution unless a command that runs project
code (a build, an install, a test run, a local script or action) comes after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from tollgate.audit.github.expressions import find_expressions, flows
from tollgate.audit.github.gates import job_events, step_events
from tollgate.audit.github.model import Job, Step, Workflow, expressions
from tollgate.audit.source import YScalar

PRIVILEGED_EVENTS = ("pull_request_target", "workflow_run", "issue_comment")
"""Events that run with the base repository's secrets and token (writable unless the
workflow says otherwise) at a time an outsider chooses, on a pull request an outsider may
have written."""

# Context paths that name pull-request code, and the privileged events whose payload has them.
_PR_PATHS: tuple[tuple[str, frozenset[str]], ...] = (
    ("github.event.pull_request.head.", frozenset(("pull_request_target",))),
    ("github.event.pull_request.merge_commit_sha", frozenset(("pull_request_target",))),
    ("github.head_ref", frozenset(("pull_request_target",))),
    ("github.event.workflow_run.head_", frozenset(("workflow_run",))),
    ("github.event.workflow_run.pull_requests", frozenset(("workflow_run",))),
)
# Numbers that name a pull request inside `refs/pull/<n>/...`.
_PR_NUMBERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("github.event.pull_request.number", frozenset(("pull_request_target",))),
    ("github.event.number", frozenset(("pull_request_target",))),
    ("github.event.issue.number", frozenset(("issue_comment",))),
    ("github.event.workflow_run.pull_requests", frozenset(("workflow_run",))),
)
_ALL = frozenset(PRIVILEGED_EVENTS)


def privileged_jobs(workflow: Workflow) -> Iterator[tuple[Job, frozenset[str]]]:
    """Each job that a privileged trigger can start, with those triggers."""
    if not workflow.has_trigger(*PRIVILEGED_EVENTS):
        return
    for job in workflow.jobs.values():
        events = job_events(workflow, job) & _ALL
        if events:
            yield job, events


_INDIRECT = ("steps.", "needs.", "env.", "inputs.")
_BASE_NAME_RE = re.compile(r"\.[\w-]*(?:base|default|main|master|target)[\w-]*$")

_PR_FETCH_RE = re.compile(
    r"\b(?:gh|hub)\s+pr\s+checkout\b|\bgit\s+(?:-C\s+\S+\s+)?fetch\b[^\n]*\bpull/", re.IGNORECASE
)
_GIT_MOVE_RE = re.compile(
    r"\bgit\s+(?:-C\s+\S+\s+)?(?:checkout|switch|fetch|pull|clone|reset|merge|rebase|worktree\s+add)\b"
)
_VAR_RE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")

# Commands that run code from the current directory: builds, installs (lifecycle scripts,
# setup.py, Gemfiles), test runners (conftest.py, package.json scripts), local scripts.
# Matched at the start of a command (see _commands), so `git diff ./x` is not `./x`.
_EXEC_RE = re.compile(
    r"""(?:
        (?:npm|pnpm|yarn|bun)\s+(?:install|i|ci|add|run|run-script|test|t|build|exec|x|start|
            rebuild|pack|publish|dlx)\b
      | (?:pnpm|yarn)\s*$
      | npx\s+\S
      | (?:pip3?|uv\s+pip|python3?(?:\.\d+)?\s+-m\s+pip)\s+install\b.*?
            (?:\s\.(?:\[|\s|$)|\s-e\s|--editable|\s-r\s|--requirement|\s\./|\s"\.)
      | python3?(?:\.\d+)?\s+(?:-m\s+(?:build|pytest|tox|nox|unittest|pip\s+wheel)\b|
            (?!-)[\w./-]+\.py\b)
      | (?:pytest|tox|nox|hatch\s+(?:run|build|test)|poetry\s+(?:install|run|build)|
         uv\s+(?:sync|run|build)|pdm\s+(?:install|run|build)|maturin\s+(?:build|develop))\b
      | (?:make|cmake|ninja|meson|bazel|bazelisk|scons|just|rake)\b
      | \.{1,2}/[\w.-][\w./-]*
      | (?:bash|sh|zsh|pwsh|powershell)\s+(?:-\w+\s+)*(?!-)[\w./${}-]+\.(?:sh|ps1|bash)\b
      | (?:source|\.)\s+(?:[\w.-]+/[\w./-]+|[\w./-]+\.(?:sh|bash|env))
      | node\s+(?!-)[\w./-]+
      | deno\s+(?:run|task)\b
      | (?:mvn|\./mvnw|mvnw|gradle|\./gradlew|gradlew|sbt|ant)\b
      | cargo\s+(?:build|test|run|bench|check|clippy|install\s+--path|xtask|make)\b
      | go\s+(?:build|test|generate|run|install|vet)\b
      | (?:bundle\s+(?:install|exec)|gem\s+build)\b
      | composer\s+(?:install|update|run|run-script)\b
      | docker(?:-compose|\s+compose|\s+build|\s+buildx\s+build)\b
      | pre-commit\s+run\b
      | terraform\s+(?:init|plan|apply)\b
      | dotnet\s+(?:build|test|run|restore|pack|publish)\b
      | (?:ruby|perl|php|Rscript)\s+(?!-)[\w./-]+
    )""",
    re.VERBOSE,
)
# Where one shell command ends and the next begins.
_COMMAND_SPLIT_RE = re.compile(r"\n|;|&&|\|\||\||\$\(|(?<!\\)`|\b(?:then|do|else)\b")
# What may stand before the command itself: `sudo`, `time`, `VAR=value`, `!`, `(`...
_COMMAND_PREFIX_RE = re.compile(
    r"(?:\s+|[!({&]|(?:sudo|time|exec|env|nohup|command|if|elif|while|until)\s|"
    r"[A-Za-z_][A-Za-z0-9_]*=(?:\"[^\"]*\"|'[^']*'|\S*)\s)*"
)


def _commands(script: str) -> Iterator[str]:
    """The commands of a shell script, each without what stands before its name."""
    for piece in _COMMAND_SPLIT_RE.split(script.replace("\\\n", " ")):
        start = _COMMAND_PREFIX_RE.match(piece)
        command = piece[start.end() :] if start else piece
        if command and not command.startswith("#"):
            yield command


_VARIABLE_PREFIX_RE = re.compile(r"^(?:\$\{\{[^}]*\}\}|\$\{?\w+\}?)/")
_CD_RE = re.compile(r"(?:cd|pushd)\s+(\S+)")
_DIR_OPTIONS = frozenset(
    (
        "-C",
        "--prefix",
        "--cwd",
        "--dir",
        "--directory",
        "--project",
        "--manifest-path",
        "--working-directory",
        "-f",
        "--file",
        "--root",
    )
)
_INTERPRETERS = frozenset(
    (
        "python",
        "python3",
        "node",
        "bash",
        "sh",
        "zsh",
        "pwsh",
        "powershell",
        "source",
        ".",
        "ruby",
        "perl",
        "php",
        "Rscript",
        "deno",
    )
)


def run_command(script: str, path: str = "", *, inside: bool = False) -> str | None:
    """The first command of ``script`` that runs code from the working directory or, with
    ``path``, from that directory (entered with ``cd``, or named as the program or target;
    ``inside``: the script starts there)."""
    for command in _commands(script):
        if path:
            cd = _CD_RE.match(command)
            if cd is not None:
                inside = _under(cd.group(1), path)
                continue
        match = _EXEC_RE.match(command)
        if match is None:
            continue
        if not path or (inside and not _elsewhere(command)) or _targets(command, path):
            return match.group(0).strip()
    return None


def _elsewhere(command: str) -> bool:
    """True for an interpreter running a program from outside the working directory
    (``python ../tools/x.py``, ``bash /opt/x.sh``): the directory's files are its data."""
    tokens = command.split()
    name = tokens[0].rsplit("/", 1)[-1]
    if name not in _INTERPRETERS and not name.startswith("python"):
        return False
    program = next((t for t in tokens[1:] if not t.startswith("-")), "")
    return program.strip("'\"").startswith(("../", "/", "$", "~"))


def _targets(command: str, path: str) -> bool:
    """Whether ``command`` runs something from ``path``: the program an interpreter runs,
    the package an installer installs, or the directory a build tool is pointed at
    (``make -C path``, ``npm ci --prefix path``, ``go test ./path/...``). A path that is
    only an argument (``smokeshow upload path``) is data, not code."""
    tokens = command.split()
    name = tokens[0].rsplit("/", 1)[-1]
    if tokens[0].startswith(("./", "../")):
        return _under(tokens[0], path)
    installs = "pip" in tokens[:3] or name in ("pip", "pip3", "docker")
    if (name in _INTERPRETERS or name.startswith("python")) and not installs:
        program = next((t for t in tokens[1:] if not t.startswith("-")), "")
        return _under(program, path)
    if installs:
        return any(_under(token, path) for token in tokens[1:])
    return any(
        _under(token, path)
        and (token.startswith("./") or (index > 0 and tokens[index] in _DIR_OPTIONS))
        for index, token in enumerate(tokens[1:])
    )


def _under(token: str, path: str) -> bool:
    """Whether a path argument lies in ``path`` (relative to the workspace)."""
    # `${{ github.workspace }}/x`, `$RUNNER_TEMP/x`: the directory a variable names is
    # left to the caller (the path it is compared with is the last part of a download dir).
    text = _VARIABLE_PREFIX_RE.sub("", token.strip("'\""))
    text = text.removeprefix("./").rstrip("/")
    return text == path or text.startswith(f"{path}/")


EXECUTING_ACTIONS: Mapping[str, str] = {
    # owner/repo[/path] -> what it runs from the checkout
    "github/codeql-action/autobuild": "the project's build",
    "cypress-io/github-action": "npm install and the test scripts",
    "bahmutov/npm-install": "npm install (lifecycle scripts)",
    "borales/actions-yarn": "yarn",
    "pre-commit/action": "the repository's pre-commit hooks",
    "goreleaser/goreleaser-action": "the repository's .goreleaser.yml hooks",
    "pypa/cibuildwheel": "the package build",
    "pyo3/maturin-action": "the package build",
    "gradle/gradle-build-action": "the Gradle build",
    "gradle/actions/dependency-submission": "the Gradle build",
}
"""Actions that run code or configuration from the checked-out tree."""


@dataclass(frozen=True)
class PrCheckout:
    """A step that puts pull-request code on the runner."""

    step: Step
    node: YScalar
    """The value that selects the code (``ref:``, ``repository:`` or the ``run:`` script)."""
    anchor: str
    evidence: str
    path: str
    """Where it lands relative to the workspace (``""``: the workspace itself)."""
    certain: bool
    """False when the ref comes from a step output or a variable (probably the PR head)."""
    events: frozenset[str]
    """The privileged events for which it is pull-request code."""


@dataclass(frozen=True)
class Execution:
    """A step that runs code from a checkout or a download."""

    step: Step
    node: YScalar
    anchor: str
    evidence: str


@dataclass(frozen=True)
class ArtifactDownload:
    """A step that downloads artifacts of another workflow run."""

    step: Step
    node: YScalar
    anchor: str
    evidence: str
    path: str
    """Where the files land: ``""`` for the workspace, else the directory as written."""


# --- Checkouts of pull-request code -----------------------------------------------------------


def pr_checkouts(workflow: Workflow, job: Job, events: frozenset[str]) -> list[PrCheckout]:
    """Steps of ``job`` that check out pull-request code under one of ``events``."""
    found: list[PrCheckout] = []
    for step in job.all_steps():
        if step.uses is None and step.run is None:
            continue
        # A step whose `if:` tests github.event_name may not run for these events.
        reach = events & step_events(workflow, job, step)
        checkout = _checkout_step(workflow, job, step, reach) if reach else None
        if checkout is not None and checkout.events:
            found.append(checkout)
    return found


def _checkout_step(
    workflow: Workflow, job: Job, step: Step, events: frozenset[str]
) -> PrCheckout | None:
    uses = step.uses
    if uses is not None and uses.slug == "actions/checkout":
        path = _clean_path(step.with_.get("path"))
        for key in ("repository", "ref"):
            node = step.with_.get(key)
            if node is None:
                continue
            hit = _pr_value(workflow, job, step, node, events, in_pull_ref=key == "ref")
            if hit is not None:
                evidence, certain, seen = hit
                return PrCheckout(
                    step, node, step.field_anchor(f"with.{key}"), evidence, path, certain, seen
                )
        return None
    run = step.run
    if run is None:
        return None
    text = run.value
    if "git" not in text and "pr checkout" not in text:
        return None
    fetch = _PR_FETCH_RE.search(text)
    if fetch is not None:
        return PrCheckout(
            step, run, step.field_anchor("run"), fetch.group(0), "", True, events & _ALL
        )
    if _GIT_MOVE_RE.search(text) is None:
        return None
    for line in text.splitlines():
        move = _GIT_MOVE_RE.search(line)
        if move is None:
            continue
        hit = _pr_line(workflow, job, step, line, events)
        if hit is not None:
            return PrCheckout(step, run, step.field_anchor("run"), line.strip(), "", hit[1], hit[2])
    return None


def _pr_value(
    workflow: Workflow,
    job: Job,
    step: Step,
    node: YScalar,
    events: frozenset[str],
    *,
    in_pull_ref: bool,
) -> tuple[str, bool, frozenset[str]] | None:
    """Whether a ``ref:``/``repository:`` value names PR code: (evidence, certain, events)."""
    text = node.value
    pull_ref = in_pull_ref and "pull/" in text
    for match in expressions(node):
        if match.expr is None:
            continue
        for ref in flows(match.expr):
            seen = _pr_events(ref.path, pull_ref) & events
            if seen:
                return match.text, True, seen
            if ref.path.startswith(_INDIRECT):
                resolved = _resolve_env(workflow, job, step, ref.path)
                if resolved is not None:
                    hit = _pr_value(workflow, job, step, resolved, events, in_pull_ref=in_pull_ref)
                    if hit is not None:
                        return hit
                    continue
                if not ref.path.startswith("inputs.") and not _BASE_NAME_RE.search(ref.path):
                    # A ref computed by an earlier step of a privileged job is, in practice,
                    # the pull request's head (xt0rted/pull-request-comment-branch, gh api),
                    # unless its name says otherwise (`outputs.base_sha`).
                    return match.text, False, events & _ALL
    return None


def _pr_line(
    workflow: Workflow, job: Job, step: Step, line: str, events: frozenset[str]
) -> tuple[str, bool, frozenset[str]] | None:
    """A git command line that names PR code inline or through an ``env:`` variable."""
    pull_ref = "pull/" in line
    for match in find_expressions(line):
        if match.expr is None:
            continue
        for ref in flows(match.expr):
            seen = _pr_events(ref.path, pull_ref) & events
            if seen:
                return line, True, seen
    for name in _VAR_RE.findall(line):
        node = step.env.get(name) or job.env.get(name) or workflow.env.get(name)
        if node is not None:
            hit = _pr_value(workflow, job, step, node, events, in_pull_ref=pull_ref)
            if hit is not None:
                return hit
    return None


def _pr_events(path: str, pull_ref: bool) -> frozenset[str]:
    for prefix, events in _PR_PATHS:
        if path.startswith(prefix):
            return events
    if pull_ref:
        for prefix, events in _PR_NUMBERS:
            if path.startswith(prefix):
                return events
    return frozenset()


def _resolve_env(workflow: Workflow, job: Job, step: Step, path: str) -> YScalar | None:
    if not path.startswith("env."):
        return None
    name = path[len("env.") :]
    for env in (step.env, job.env, workflow.env):
        for key, value in env.items():
            if key.lower() == name:
                return value
    return None


def _clean_path(node: YScalar | None) -> str:
    if node is None:
        return ""
    text = node.value.strip()
    if "github.workspace" in text:
        text = text.split("}}", 1)[-1]
    text = text.strip().removeprefix("./").strip("/")
    return "" if text in ("", ".") else text


# --- Executions -------------------------------------------------------------------------------


def execution_after(workflow: Workflow, job: Job, after: Step, path: str) -> Execution | None:
    """The first step after ``after`` that runs code from ``path`` (``""``: the workspace;
    else a directory that the command or its ``working-directory`` must name)."""
    started = False
    for step in job.all_steps():
        if started:
            found = execution(workflow, job, step, path)
            if found is not None:
                return found
        elif step is after:
            started = True
    return None


def execution(workflow: Workflow, job: Job, step: Step, path: str) -> Execution | None:
    """Whether ``step`` runs code from ``path`` (see :func:`execution_after`)."""
    uses = step.uses
    if uses is not None:
        return _action_execution(step, path)
    run = step.run
    if run is None:
        return None
    inside = bool(path) and _under(_working_directory(workflow, job, step), path)
    command = run_command(run.value, path, inside=inside)
    if command is None:
        return None
    return Execution(step, run, step.field_anchor("run"), command)


def _action_execution(step: Step, path: str) -> Execution | None:
    uses = step.uses
    assert uses is not None
    if uses.kind == "local":
        # `./x` resolves in the workspace: it runs checked-out code when that is where the
        # checkout went.
        local = uses.repo_path or ""
        if path == "" or local == path or local.startswith(f"{path}/"):
            return Execution(step, uses.node, step.field_anchor("uses"), uses.raw)
        return None
    slug = uses.slug
    if slug is None or path:
        return None
    full = f"{slug}/{uses.path.lower()}" if uses.path else slug
    if full in EXECUTING_ACTIONS or slug in EXECUTING_ACTIONS:
        return Execution(step, uses.node, step.field_anchor("uses"), uses.raw)
    if slug == "ruby/setup-ruby" and _truthy(step.with_.get("bundler-cache")):
        return Execution(step, uses.node, step.field_anchor("uses"), "bundler-cache: true")
    if slug == "docker/build-push-action":
        # Without `context:` it builds the commit from git, not the workspace.
        context = step.with_.get("context")
        if context is not None and "://" not in context.value:
            anchor = step.field_anchor("with.context")
            return Execution(step, context, anchor, f"docker build {context.value}")
    return None


def _working_directory(workflow: Workflow, job: Job, step: Step) -> str:
    for node in (
        step.working_directory,
        job.defaults.working_directory if job.defaults else None,
        workflow.defaults.working_directory if workflow.defaults else None,
    ):
        if node is not None:
            return node.value
    return ""


def _truthy(node: YScalar | None) -> bool:
    return node is not None and node.value.strip().lower() == "true"


# --- Artifacts of another run -----------------------------------------------------------------


_GH_RUN_DOWNLOAD_RE = re.compile(r"\bgh\s+run\s+download\b[^\n]*")
_DIR_OPTION_RE = re.compile(r"(?:-D|--dir)[\s=]+(\S+)")


def artifact_downloads(job: Job) -> list[ArtifactDownload]:
    """Steps of ``job`` that download artifacts of another run (under ``workflow_run``, the
    triggering one)."""
    found: list[ArtifactDownload] = []
    for step in job.all_steps():
        uses = step.uses
        if uses is not None and uses.slug is not None:
            download = _action_download(step, uses.slug)
            if download is not None:
                found.append(download)
        elif step.run is not None:
            match = _GH_RUN_DOWNLOAD_RE.search(step.run.value)
            if match is not None:
                target = _DIR_OPTION_RE.search(match.group(0))
                found.append(
                    ArtifactDownload(
                        step,
                        step.run,
                        step.field_anchor("run"),
                        match.group(0).strip(),
                        _download_path(target.group(1) if target else ""),
                    )
                )
    return found


def _action_download(step: Step, slug: str) -> ArtifactDownload | None:
    uses = step.uses
    assert uses is not None
    path_node = step.with_.get("path")
    path = _download_path(path_node.value if path_node is not None else "")
    if slug == "actions/download-artifact":
        node = step.with_.get("run-id")
        if node is None:
            return None  # this run's own artifacts
        evidence = f"run-id: {node.value}"
        return ArtifactDownload(step, node, step.field_anchor("with.run-id"), evidence, path)
    if slug == "dawidd6/action-download-artifact":
        return ArtifactDownload(step, uses.node, step.field_anchor("uses"), uses.raw, path)
    if slug == "actions/github-script":
        script = step.with_.get("script")
        if script is not None and "downloadArtifact" in script.value:
            elsewhere = "RUNNER_TEMP" in script.value or "'/tmp" in script.value
            return ArtifactDownload(
                step,
                script,
                step.field_anchor("with.script"),
                "github.rest.actions.downloadArtifact",
                "/tmp" if elsewhere else "",
            )
    return None


def _download_path(text: str) -> str:
    """``""`` for the workspace, else the directory as written."""
    text = text.strip().strip("'\"")
    if "github.workspace" in text or "GITHUB_WORKSPACE" in text:
        text = re.sub(r"\$\{\{[^}]*\}\}|\$\{?GITHUB_WORKSPACE\}?", "", text)
    text = text.removeprefix("./").strip("/") if not text.startswith("/") else text
    return "" if text in ("", ".") else text


def outside_workspace(path: str) -> bool:
    """True for a download directory outside the workspace (``/tmp``, ``runner.temp``...)."""
    return path.startswith(("/", "~", "$")) or "runner.temp" in path or "RUNNER_TEMP" in path


_ENV_FILE_RE = re.compile(r"\$\{?GITHUB_(?:ENV|PATH)\b")
_READS_FILE_RE = re.compile(
    r"\$\(\s*<|\bcat\s|\bjq\b|\bhead\s|\btail\s|\bread\s|\bunzip\b|<\s*[\w.$/{}-]+\s*$",
    re.MULTILINE,
)


def consumption_after(workflow: Workflow, job: Job, download: ArtifactDownload) -> Execution | None:
    """The first later step that runs what was downloaded, or copies file content into
    ``$GITHUB_ENV``/``$GITHUB_PATH`` (which can set ``LD_PRELOAD``, ``NODE_OPTIONS``, ``PATH``
    for every later step)."""
    started = False
    fresh: list[str] = []  # directories checked out after the download: not its files
    for step in job.all_steps():
        if not started:
            started = step is download.step
            continue
        uses = step.uses
        if uses is not None and uses.slug == "actions/checkout":
            path = _clean_path(step.with_.get("path"))
            if not path and not download.path:
                return None  # the checkout empties the workspace, downloaded files included
            fresh.append(path)
            continue
        if step.run is not None and _ENV_FILE_RE.search(step.run.value):
            for line in step.run.value.splitlines():
                if _ENV_FILE_RE.search(line) and _READS_FILE_RE.search(line):
                    return Execution(step, step.run, step.field_anchor("run"), line.strip())
        found = execution(workflow, job, step, _mention_key(download.path))
        if found is not None and not _only_fresh(workflow, job, step, fresh):
            return found
    return None


def _only_fresh(workflow: Workflow, job: Job, step: Step, fresh: list[str]) -> bool:
    """True when ``step`` runs code from a directory checked out after the download."""
    if not fresh:
        return False
    text = step.run.value if step.run is not None else ""
    directory = _working_directory(workflow, job, step)
    return any(
        path and (_under(directory, path) or run_command(text, path) is not None) for path in fresh
    )


def _mention_key(path: str) -> str:
    """What a command names to use a download directory: the workspace (``""``) or the
    directory's last part (``${{ runner.temp }}/pr`` is used as ``.../pr``)."""
    if not path:
        return ""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return last if last and "}}" not in last and "$" not in last else path
