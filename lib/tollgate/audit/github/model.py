"""The GitHub Actions model: workflows, jobs, steps and action metadata, with their nodes.

Built from a :class:`~tollgate.audit.source.Document` by :func:`build_workflow` and
:func:`build_action`. Every object keeps the YAML node(s) it came from, so that a rule can
make a :class:`~tollgate.audit.findings.Location` (``workflow.location(node)``) and an
``anchor``: a structural address such as ``jobs.build.steps[2]`` that survives line moves
(add ``.run``, ``.with.script``... for a field).

The builders are tolerant: unknown keys are ignored; a value of the wrong type adds a
:class:`~tollgate.audit.findings.Diagnostic` and that part is left out; nothing raises on
real-world input.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from tollgate.audit.findings import Diagnostic, Location
from tollgate.audit.github.expressions import (
    OPEN,
    Condition,
    ExpressionMatch,
    find_expressions,
    parse_condition,
)
from tollgate.audit.source import Document, YMapping, YNode, YScalar, YSequence, load

_logger = logging.getLogger(__name__)

_SHA1_RE = re.compile(r"[0-9a-f]{40}")
_SHA256_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_WORKFLOW_PATH_RE = re.compile(r"\.github/workflows/[^/]+\.ya?ml")

_EMPTY: Mapping[str, YScalar] = {}
_STEP_SCALARS = frozenset(
    (
        "id",
        "name",
        "if",
        "uses",
        "run",
        "shell",
        "working-directory",
        "continue-on-error",
        "timeout-minutes",
        "background",
    )
)


# --- References: uses: and images -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A container image reference: ``registry/name:tag@sha256:...``."""

    raw: str
    name: str
    """Everything before the tag and digest (registry and path included)."""
    tag: str | None
    digest: str | None

    @property
    def is_digest_pinned(self) -> bool:
        """True when a ``@sha256:`` digest fixes the image."""
        return self.digest is not None and _SHA256_DIGEST_RE.fullmatch(self.digest) is not None

    @property
    def is_expression(self) -> bool:
        """True when the reference is computed (``${{ matrix.image }}``)."""
        return OPEN in self.raw


def parse_image(raw: str) -> ImageRef:
    """Split an image reference; a ``:`` before the last ``/`` is a registry port."""
    text = raw.strip()
    name, _, digest = text.partition("@")
    tag: str | None = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1 :]
    return ImageRef(raw, name, tag or None, digest or None)


@dataclass(frozen=True, slots=True)
class Uses:
    """A parsed ``uses:`` value.

    ``kind`` is ``repository`` (``owner/repo[/path]@ref``; :attr:`ref` is ``None`` when the
    ``@ref`` is missing), ``local`` (``./path``), ``self`` (``$/path``, this repository at
    this commit), ``docker`` (``docker://image``) or ``invalid`` (anything else, including
    expressions, which GitHub does not allow here).
    """

    raw: str
    kind: str
    node: YScalar
    owner: str | None = None
    repo: str | None = None
    path: str | None = None
    """The path inside the repository (``repository``, ``local``, ``self``)."""
    ref: str | None = None
    image: ImageRef | None = None

    @property
    def slug(self) -> str | None:
        """``owner/repo`` (lower-case: GitHub names are case-insensitive), if remote."""
        if self.owner is None or self.repo is None:
            return None
        return f"{self.owner}/{self.repo}".lower()

    @property
    def is_local(self) -> bool:
        return self.kind in ("local", "self")

    @property
    def repo_path(self) -> str | None:
        """For ``./x`` and ``$/x``: the path inside this repository, normalized
        (``.github/actions/setup``), to match against discovered files; else ``None``."""
        if not self.is_local or self.path is None:
            return None
        normalized = posixpath.normpath(self.path.strip())
        return "" if normalized == "." else normalized

    @property
    def is_sha_pinned(self) -> bool:
        """True when a remote action is pinned to a full commit SHA."""
        return self.ref is not None and _SHA1_RE.fullmatch(self.ref) is not None

    @property
    def is_reusable_workflow(self) -> bool:
        """True when this calls a reusable workflow (``.github/workflows/*.yml``)."""
        return self.path is not None and _WORKFLOW_PATH_RE.search(self.path) is not None


def parse_uses(node: YScalar) -> Uses:
    """Parse a ``uses:`` scalar."""
    raw = node.value.strip()
    if raw.startswith("docker://"):
        return Uses(raw, "docker", node, image=parse_image(raw[len("docker://") :]))
    if OPEN in raw:
        return Uses(raw, "invalid", node)
    if raw.startswith("./") or raw == ".":
        return Uses(raw, "local", node, path=raw)
    if raw.startswith("$/"):
        path, _, ref = raw[2:].partition("@")
        return Uses(raw, "self", node, path=path, ref=ref or None)
    target, at, ref = raw.partition("@")
    parts = target.split("/")
    if len(parts) < 2 or not parts[0] or not parts[1] or (at and not ref):
        return Uses(raw, "invalid", node)
    subpath = "/".join(parts[2:]) or None
    return Uses(raw, "repository", node, parts[0], parts[1], subpath, ref or None)


# --- Small shared pieces --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Permissions:
    """A ``permissions:`` block, normalized.

    ``kind``: ``absent`` (not written: the repository default applies), ``read-all``,
    ``write-all``, ``none`` (``{}``), ``scopes`` (a mapping) or ``invalid``.
    """

    kind: str
    node: YNode | None = None
    scopes: Mapping[str, str] = field(default_factory=dict)
    """Scope -> ``read``/``write``/``none`` as written (lower-case), for ``scopes``."""
    scope_nodes: Mapping[str, YScalar] = field(default_factory=dict)
    """Scope -> its value node, for locations."""

    @property
    def is_absent(self) -> bool:
        return self.kind == "absent"

    def level(self, scope: str) -> str | None:
        """The access ``scope`` gets (``read``/``write``/``none``); ``None`` when unknown
        (absent or invalid: it depends on the repository's default)."""
        if self.kind == "read-all":
            return "read"
        if self.kind == "write-all":
            return "write"
        if self.kind == "none":
            return "none"
        if self.kind == "scopes":
            return self.scopes.get(scope, "none")
        return None

    def writable(self) -> tuple[str, ...]:
        """The scopes granted ``write`` (``("*",)`` for ``write-all``)."""
        if self.kind == "write-all":
            return ("*",)
        return tuple(scope for scope, level in self.scopes.items() if level == "write")


ABSENT_PERMISSIONS = Permissions("absent")


@dataclass(frozen=True, slots=True)
class Defaults:
    """``defaults: run:``."""

    node: YMapping
    shell: YScalar | None = None
    working_directory: YScalar | None = None


@dataclass(frozen=True, slots=True)
class Concurrency:
    """``concurrency:`` as a group string or a mapping."""

    node: YNode
    group: YScalar | None = None
    cancel_in_progress: YScalar | None = None


@dataclass(frozen=True, slots=True)
class Environment:
    """A job's ``environment:`` (string or mapping form)."""

    node: YNode
    name: str | None
    """``None`` when the mapping has no name; may hold an expression."""
    name_node: YScalar | None = None
    url: YScalar | None = None


@dataclass(frozen=True, slots=True)
class Container:
    """A job ``container:`` or one of its ``services:``."""

    node: YNode
    image: ImageRef | None
    image_node: YScalar | None
    credentials: YMapping | None = None
    """``username``/``password`` nodes: literals here are hard-coded credentials."""
    env: Mapping[str, YScalar] = field(default_factory=dict)
    options: YScalar | None = None


@dataclass(frozen=True, slots=True)
class Input:
    """An input of ``workflow_dispatch``, ``workflow_call`` or an action."""

    name: str
    key: YScalar
    node: YNode
    description: YScalar | None = None
    required: bool | None = None
    default: YScalar | None = None
    type: str | None = None
    """``string``, ``boolean``, ``choice``, ``number``, ``environment``... when declared."""


@dataclass(frozen=True, slots=True)
class Output:
    """An output of a job, a reusable workflow or an action."""

    name: str
    key: YScalar
    node: YNode
    value: YScalar | None = None
    description: YScalar | None = None


@dataclass(frozen=True, slots=True)
class Trigger:
    """One event in ``on:``."""

    event: str
    node: YScalar
    """The event's name as written (a key, a list item or the whole ``on:`` string)."""
    config: YNode | None = None
    """Its settings when it has any: a mapping (``branches``, ``types``, ``inputs``...), or
    for ``schedule`` the list of ``cron`` entries."""
    inputs: Mapping[str, Input] = field(default_factory=dict)
    """Declared inputs (``workflow_dispatch``, ``workflow_call``)."""

    @property
    def settings(self) -> YMapping | None:
        """:attr:`config` when it is a mapping."""
        return self.config if isinstance(self.config, YMapping) else None

    def types(self) -> tuple[str, ...]:
        """The activity ``types:`` filter (empty when all types trigger)."""
        settings = self.settings
        return () if settings is None else tuple(_strings(settings.get("types")))


# --- Steps, jobs, workflows, actions --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a job or a composite action."""

    index: int
    """Position in its list (0-based), as in the anchor."""
    anchor: str
    node: YMapping
    job_id: str | None = None
    """The job it belongs to (``None`` in an action)."""
    id: YScalar | None = None
    name: YScalar | None = None
    if_: YScalar | None = None
    uses: Uses | None = None
    run: YScalar | None = None
    shell: YScalar | None = None
    with_: Mapping[str, YScalar] = field(default_factory=dict)
    env: Mapping[str, YScalar] = field(default_factory=dict)
    working_directory: YScalar | None = None
    continue_on_error: YScalar | None = None
    timeout_minutes: YScalar | None = None
    background: YScalar | None = None
    parallel: tuple[Step, ...] = ()
    """The steps of a ``parallel:`` group (this step then has neither ``run`` nor ``uses``)."""

    @property
    def label(self) -> str:
        """A human name: ``name``, else ``id``, else ``uses``, else the anchor."""
        for node in (self.name, self.id):
            if node is not None and node.value:
                return node.value
        if self.uses is not None:
            return self.uses.raw
        return self.anchor

    def field_anchor(self, key: str) -> str:
        """The anchor of one of the step's fields: ``jobs.build.steps[2].run``."""
        return f"{self.anchor}.{key}"


@dataclass(frozen=True, slots=True)
class Job:
    """One job: a normal job (``steps``) or a reusable-workflow call (``uses``)."""

    id: str
    key: YScalar
    node: YMapping
    anchor: str
    name: YScalar | None = None
    runs_on: YNode | None = None
    permissions: Permissions = ABSENT_PERMISSIONS
    environment: Environment | None = None
    if_: YScalar | None = None
    needs: tuple[str, ...] = ()
    needs_node: YNode | None = None
    outputs: Mapping[str, YScalar] = field(default_factory=dict)
    env: Mapping[str, YScalar] = field(default_factory=dict)
    defaults: Defaults | None = None
    steps: tuple[Step, ...] = ()
    """Top-level steps as written; :meth:`all_steps` also yields ``parallel:`` members."""
    container: Container | None = None
    services: Mapping[str, Container] = field(default_factory=dict)
    strategy: YMapping | None = None
    concurrency: Concurrency | None = None
    timeout_minutes: YScalar | None = None
    continue_on_error: YScalar | None = None
    uses: Uses | None = None
    """The reusable workflow this job calls."""
    with_: Mapping[str, YScalar] = field(default_factory=dict)
    secrets: Mapping[str, YScalar] = field(default_factory=dict)
    secrets_inherit: bool = False
    """``secrets: inherit``."""
    secrets_node: YNode | None = None

    @property
    def is_reusable_call(self) -> bool:
        return self.uses is not None

    @property
    def matrix(self) -> YNode | None:
        """``strategy.matrix`` (a mapping, or an expression scalar)."""
        return None if self.strategy is None else self.strategy.get("matrix")

    def all_steps(self) -> Iterator[Step]:
        """Every step in order, ``parallel:`` groups and then their members included."""
        return _all_steps(self.steps)


def _all_steps(steps: tuple[Step, ...]) -> Iterator[Step]:
    for step in steps:
        yield step
        if step.parallel:
            yield from _all_steps(step.parallel)


class _Located:
    """Shared by :class:`Workflow` and :class:`Action`: locations in their document."""

    __slots__ = ()
    document: Document
    path: str

    def location(self, node: YNode, start: int | None = None, end: int | None = None) -> Location:
        """Where ``node`` is, or ``node.value[start:end]`` for a scalar."""
        return self.document.location(node, start, end)

    def expression_location(self, node: YScalar, match: ExpressionMatch) -> Location:
        """Where a ``${{ }}`` found in ``node.value`` is."""
        return self.document.location(node, match.start, match.end)


@dataclass(frozen=True)
class Workflow(_Located):
    """A workflow file (``.github/workflows/*.yml``)."""

    path: str
    document: Document
    node: YMapping
    name: YScalar | None = None
    run_name: YScalar | None = None
    on_node: YNode | None = None
    triggers: Mapping[str, Trigger] = field(default_factory=dict)
    """Event name -> trigger, in the order written, whatever form ``on:`` takes."""
    permissions: Permissions = ABSENT_PERMISSIONS
    env: Mapping[str, YScalar] = field(default_factory=dict)
    defaults: Defaults | None = None
    concurrency: Concurrency | None = None
    jobs: Mapping[str, Job] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()
    """The document's diagnostics and the model's (wrong types, skipped parts)."""

    def has_trigger(self, *events: str) -> bool:
        """True when any of ``events`` triggers the workflow."""
        return any(event in self.triggers for event in events)

    def steps(self) -> Iterator[tuple[Job, Step]]:
        """Every step of every job (``parallel:`` members included), with its job."""
        for job in self.jobs.values():
            for step in job.all_steps():
                yield job, step

    def shell(self, job: Job, step: Step) -> str | None:
        """The shell a ``run:`` step uses as written (step, then job, then workflow
        ``defaults``); ``None`` means the runner's default (bash, or pwsh on Windows)."""
        for node in (
            step.shell,
            job.defaults.shell if job.defaults else None,
            self.defaults.shell if self.defaults else None,
        ):
            if node is not None and node.value:
                return node.value
        return None


@dataclass(frozen=True)
class Action(_Located):
    """An action's metadata file (``action.yml``)."""

    path: str
    document: Document
    node: YMapping
    name: YScalar | None = None
    description: YScalar | None = None
    author: YScalar | None = None
    inputs: Mapping[str, Input] = field(default_factory=dict)
    outputs: Mapping[str, Output] = field(default_factory=dict)
    runs: YMapping | None = None
    using: str | None = None
    """``runs.using`` lower-case: ``composite``, ``docker``, ``node20``..."""
    steps: tuple[Step, ...] = ()
    """``runs.steps`` of a composite action."""
    image: YScalar | None = None
    """``runs.image`` of a docker action (``Dockerfile`` or ``docker://...``)."""
    image_ref: ImageRef | None = None
    """:attr:`image` parsed, when it is a ``docker://`` reference."""
    env: Mapping[str, YScalar] = field(default_factory=dict)
    """``runs.env`` of a docker action."""
    args: YSequence | None = None
    main: YScalar | None = None
    pre: YScalar | None = None
    post: YScalar | None = None
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def is_composite(self) -> bool:
        return self.using == "composite"

    @property
    def is_docker(self) -> bool:
        return self.using == "docker"

    @property
    def is_javascript(self) -> bool:
        return self.using is not None and self.using.startswith("node")

    def all_steps(self) -> Iterator[Step]:
        """Every step of a composite action, ``parallel:`` members included."""
        return _all_steps(self.steps)


# --- Helpers for rules ----------------------------------------------------------------------


def expressions(node: YScalar | None) -> tuple[ExpressionMatch, ...]:
    """Every ``${{ }}`` in a scalar's value (empty for ``None``); cached per text."""
    if node is None:
        return ()
    return find_expressions(node.value)


def condition(node: YScalar | None) -> Condition | None:
    """How GitHub reads an ``if:`` node (``None`` when there is no ``if:``)."""
    if node is None:
        return None
    return parse_condition(node.value)


# --- Building -------------------------------------------------------------------------------


def load_workflow(
    path: str | os.PathLike[str], text: str | None = None, *, display_path: str | None = None
) -> Workflow | Diagnostic:
    """Load and model a workflow file."""
    doc = load(path, text, display_path=display_path)
    return doc if isinstance(doc, Diagnostic) else build_workflow(doc)


def load_action(
    path: str | os.PathLike[str], text: str | None = None, *, display_path: str | None = None
) -> Action | Diagnostic:
    """Load and model an action metadata file."""
    doc = load(path, text, display_path=display_path)
    return doc if isinstance(doc, Diagnostic) else build_action(doc)


def build_workflow(doc: Document) -> Workflow | Diagnostic:
    """Model a workflow; a :class:`Diagnostic` when its top level is not a mapping."""
    root = doc.root
    if not isinstance(root, YMapping):
        return _not_a_mapping(doc, "workflow")
    b = _Builder(doc)
    return Workflow(
        path=doc.path,
        document=doc,
        node=root,
        name=b.scalar(root, "name", ""),
        run_name=b.scalar(root, "run-name", ""),
        on_node=root.get("on"),
        triggers=b.triggers(root.get("on")),
        permissions=b.permissions(root.get("permissions"), "permissions"),
        env=b.scalar_map(root.get("env"), "env"),
        defaults=b.defaults(root.get("defaults"), "defaults"),
        concurrency=b.concurrency(root.get("concurrency"), "concurrency"),
        jobs=b.jobs(root.get("jobs")),
        diagnostics=(*doc.diagnostics, *b.diagnostics),
    )


def build_action(doc: Document) -> Action | Diagnostic:
    """Model an action's metadata; a :class:`Diagnostic` when it is not a mapping."""
    root = doc.root
    if not isinstance(root, YMapping):
        return _not_a_mapping(doc, "action metadata file")
    b = _Builder(doc)
    runs = b.mapping(root.get("runs"), "runs")
    using_node = b.scalar(runs, "using", "runs") if runs is not None else None
    using = using_node.value.strip().lower() if using_node is not None else None
    steps: tuple[Step, ...] = ()
    image: YScalar | None = None
    env: Mapping[str, YScalar] = _EMPTY
    args: YSequence | None = None
    main = pre = post = None
    if runs is not None:
        if using == "composite":
            steps = b.steps(runs.get("steps"), "runs.steps", None)
        image = b.scalar(runs, "image", "runs")
        env = b.scalar_map(runs.get("env"), "runs.env")
        args = b.sequence(runs.get("args"), "runs.args")
        main = b.scalar(runs, "main", "runs")
        pre = b.scalar(runs, "pre", "runs")
        post = b.scalar(runs, "post", "runs")
    image_ref = None
    if image is not None and image.value.startswith("docker://"):
        image_ref = parse_image(image.value[len("docker://") :])
    return Action(
        path=doc.path,
        document=doc,
        node=root,
        name=b.scalar(root, "name", ""),
        description=b.scalar(root, "description", ""),
        author=b.scalar(root, "author", ""),
        inputs=b.inputs(root.get("inputs"), "inputs"),
        outputs=b.outputs(root.get("outputs"), "outputs"),
        runs=runs,
        using=using,
        steps=steps,
        image=image,
        image_ref=image_ref,
        env=env,
        args=args,
        main=main,
        pre=pre,
        post=post,
        diagnostics=(*doc.diagnostics, *b.diagnostics),
    )


def _not_a_mapping(doc: Document, what: str) -> Diagnostic:
    root = doc.root
    kind = "a list" if isinstance(root, YSequence) else "a single value"
    return Diagnostic(
        doc.path, f"not a {what}: the top level is {kind}, not a mapping", root.line, root.column
    )


def _strings(node: YNode | None) -> Iterator[str]:
    """The text of a scalar, or of each scalar item of a sequence."""
    if isinstance(node, YScalar):
        if not node.is_null:
            yield node.value
    elif isinstance(node, YSequence):
        for item in node.items:
            if isinstance(item, YScalar) and not item.is_null:
                yield item.value


def _type_name(node: YNode) -> str:
    if isinstance(node, YMapping):
        return "a mapping"
    if isinstance(node, YSequence):
        return "a list"
    return "a scalar"


class _Builder:
    """Reads parts of the tree with the expected types, recording what it had to skip."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.diagnostics: list[Diagnostic] = []

    # Typed access ---------------------------------------------------------------------------

    def wrong(self, node: YNode, where: str, expected: str) -> None:
        self.diagnostics.append(
            Diagnostic(
                self.doc.path,
                f"{where}: expected {expected}, found {_type_name(node)}; ignored",
                node.line,
                node.column,
            )
        )

    def mapping(self, node: YNode | None, where: str) -> YMapping | None:
        if node is None or isinstance(node, YMapping):
            return node
        if isinstance(node, YScalar) and node.is_null:
            return None
        self.wrong(node, where, "a mapping")
        return None

    def sequence(self, node: YNode | None, where: str) -> YSequence | None:
        if node is None or isinstance(node, YSequence):
            return node
        if isinstance(node, YScalar) and node.is_null:
            return None
        self.wrong(node, where, "a list")
        return None

    def scalar(self, parent: YMapping, key: str, prefix: str) -> YScalar | None:
        """The scalar under ``key``; ``prefix`` is the parent's address, for a diagnostic."""
        node = parent.get(key)
        if node is None or isinstance(node, YScalar):
            return node
        self.wrong(node, f"{prefix}.{key}" if prefix else key, "a scalar")
        return None

    def scalar_map(self, node: YNode | None, where: str) -> Mapping[str, YScalar]:
        """A mapping of names to scalars (``env``, ``with``, ``outputs``, ``secrets``)."""
        if node is None:
            return _EMPTY
        if isinstance(node, YScalar):
            # `env: ${{ fromJSON(...) }}` is a whole-mapping expression: nothing to list.
            if not node.is_null and OPEN not in node.value:
                self.wrong(node, where, "a mapping")
            return _EMPTY
        if not isinstance(node, YMapping):
            self.wrong(node, where, "a mapping")
            return _EMPTY
        result: dict[str, YScalar] = {}
        for key, (_, value) in node.index.items():
            if isinstance(value, YScalar):
                result[key] = value
            else:
                self.wrong(value, f"{where}.{key}", "a scalar")
        return result

    # Shared pieces ----------------------------------------------------------------------------

    def permissions(self, node: YNode | None, where: str) -> Permissions:
        if node is None:
            return ABSENT_PERMISSIONS
        if isinstance(node, YScalar):
            text = node.value.strip().lower()
            if text in ("read-all", "write-all"):
                return Permissions(text, node)
            self.diagnostics.append(
                Diagnostic(
                    self.doc.path,
                    f"{where}: expected read-all, write-all or a mapping, found {node.value!r}",
                    node.line,
                    node.column,
                )
            )
            return Permissions("invalid", node)
        if not isinstance(node, YMapping):
            self.wrong(node, where, "a mapping")
            return Permissions("invalid", node)
        if not node.items:
            return Permissions("none", node)
        scopes: dict[str, str] = {}
        scope_nodes: dict[str, YScalar] = {}
        for key, value in node.str_items():
            if isinstance(value, YScalar):
                scopes[key.lower()] = value.value.strip().lower()
                scope_nodes[key.lower()] = value
            else:
                self.wrong(value, f"{where}.{key}", "read, write or none")
        return Permissions("scopes", node, scopes, scope_nodes)

    def defaults(self, node: YNode | None, where: str) -> Defaults | None:
        mapping = self.mapping(node, where)
        if mapping is None:
            return None
        run = self.mapping(mapping.get("run"), f"{where}.run")
        if run is None:
            return Defaults(mapping)
        return Defaults(
            mapping,
            self.scalar(run, "shell", f"{where}.run"),
            self.scalar(run, "working-directory", f"{where}.run"),
        )

    def concurrency(self, node: YNode | None, where: str) -> Concurrency | None:
        if node is None:
            return None
        if isinstance(node, YScalar):
            return None if node.is_null else Concurrency(node, node)
        if isinstance(node, YMapping):
            return Concurrency(
                node,
                self.scalar(node, "group", where),
                self.scalar(node, "cancel-in-progress", where),
            )
        self.wrong(node, where, "a string or a mapping")
        return None

    def inputs(self, node: YNode | None, where: str) -> Mapping[str, Input]:
        mapping = self.mapping(node, where)
        if mapping is None:
            return {}
        result: dict[str, Input] = {}
        for key, value in mapping.items:
            if not isinstance(key, YScalar):
                continue
            spec = value if isinstance(value, YMapping) else None
            if spec is None and not (isinstance(value, YScalar) and value.is_null):
                self.wrong(value, f"{where}.{key.value}", "a mapping")
            required = None
            input_type = None
            default = description = None
            if spec is not None:
                required_node = self.scalar(spec, "required", f"{where}.{key.value}")
                required = required_node.as_bool() if required_node is not None else None
                type_node = self.scalar(spec, "type", f"{where}.{key.value}")
                input_type = type_node.value.strip().lower() if type_node is not None else None
                default = self.scalar(spec, "default", f"{where}.{key.value}")
                description = self.scalar(spec, "description", f"{where}.{key.value}")
            result[key.value] = Input(
                key.value, key, value, description, required, default, input_type
            )
        return result

    def outputs(self, node: YNode | None, where: str) -> Mapping[str, Output]:
        mapping = self.mapping(node, where)
        if mapping is None:
            return {}
        result: dict[str, Output] = {}
        for key, value in mapping.items:
            if not isinstance(key, YScalar):
                continue
            if isinstance(value, YMapping):
                result[key.value] = Output(
                    key.value,
                    key,
                    value,
                    self.scalar(value, "value", f"{where}.{key.value}"),
                    self.scalar(value, "description", f"{where}.{key.value}"),
                )
            elif isinstance(value, YScalar):
                result[key.value] = Output(key.value, key, value, value)
            else:
                self.wrong(value, f"{where}.{key.value}", "a mapping")
        return result

    # Workflow parts ---------------------------------------------------------------------------

    def triggers(self, node: YNode | None) -> Mapping[str, Trigger]:
        if node is None:
            return {}
        result: dict[str, Trigger] = {}
        if isinstance(node, YScalar):
            if not node.is_null:
                result[node.value] = Trigger(node.value, node)
        elif isinstance(node, YSequence):
            for item in node.items:
                if isinstance(item, YScalar) and not item.is_null:
                    result[item.value] = Trigger(item.value, item)
                else:
                    self.wrong(item, "on", "an event name")
        else:
            for key, value in node.items:
                if not isinstance(key, YScalar):
                    continue
                config = None if isinstance(value, YScalar) and value.is_null else value
                inputs: Mapping[str, Input] = {}
                if key.value in ("workflow_dispatch", "workflow_call"):
                    settings = self.mapping(config, f"on.{key.value}")
                    if settings is not None:
                        inputs = self.inputs(settings.get("inputs"), f"on.{key.value}.inputs")
                result[key.value] = Trigger(key.value, key, config, inputs)
        return result

    def jobs(self, node: YNode | None) -> Mapping[str, Job]:
        mapping = self.mapping(node, "jobs")
        if mapping is None:
            return {}
        result: dict[str, Job] = {}
        for key, value in mapping.items:
            if not isinstance(key, YScalar):
                continue
            if not isinstance(value, YMapping):
                self.wrong(value, f"jobs.{key.value}", "a mapping")
                continue
            result[key.value] = self.job(key, value)
        return result

    def job(self, key: YScalar, node: YMapping) -> Job:
        job_id = key.value
        anchor = f"jobs.{job_id}"
        uses_node = self.scalar(node, "uses", anchor)
        secrets_node = node.get("secrets")
        inherit = isinstance(secrets_node, YScalar) and secrets_node.value.strip() == "inherit"
        needs_node = node.get("needs")
        if needs_node is not None and not isinstance(needs_node, (YScalar, YSequence)):
            self.wrong(needs_node, f"{anchor}.needs", "a job id or a list")
        services = self.mapping(node.get("services"), f"{anchor}.services")
        return Job(
            id=job_id,
            key=key,
            node=node,
            anchor=anchor,
            name=self.scalar(node, "name", anchor),
            runs_on=node.get("runs-on"),
            permissions=self.permissions(node.get("permissions"), f"{anchor}.permissions"),
            environment=self.environment(node.get("environment"), f"{anchor}.environment"),
            if_=self.scalar(node, "if", anchor),
            needs=tuple(_strings(needs_node)),
            needs_node=needs_node,
            outputs=self.scalar_map(node.get("outputs"), f"{anchor}.outputs"),
            env=self.scalar_map(node.get("env"), f"{anchor}.env"),
            defaults=self.defaults(node.get("defaults"), f"{anchor}.defaults"),
            steps=self.steps(node.get("steps"), f"{anchor}.steps", job_id),
            container=self.container(node.get("container"), f"{anchor}.container"),
            services={
                name: container
                for name, value in (services.str_items() if services is not None else ())
                if (container := self.container(value, f"{anchor}.services.{name}")) is not None
            },
            strategy=self.mapping(node.get("strategy"), f"{anchor}.strategy"),
            concurrency=self.concurrency(node.get("concurrency"), f"{anchor}.concurrency"),
            timeout_minutes=self.scalar(node, "timeout-minutes", anchor),
            continue_on_error=self.scalar(node, "continue-on-error", anchor),
            uses=parse_uses(uses_node) if uses_node is not None else None,
            with_=self.scalar_map(node.get("with"), f"{anchor}.with"),
            secrets=_EMPTY if inherit else self.scalar_map(secrets_node, f"{anchor}.secrets"),
            secrets_inherit=inherit,
            secrets_node=secrets_node,
        )

    def environment(self, node: YNode | None, where: str) -> Environment | None:
        if node is None:
            return None
        if isinstance(node, YScalar):
            return None if node.is_null else Environment(node, node.value, node)
        if isinstance(node, YMapping):
            name = self.scalar(node, "name", where)
            return Environment(
                node,
                name.value if name is not None and not name.is_null else None,
                name,
                self.scalar(node, "url", where),
            )
        self.wrong(node, where, "a name or a mapping")
        return None

    def container(self, node: YNode | None, where: str) -> Container | None:
        if node is None:
            return None
        if isinstance(node, YScalar):
            if node.is_null:
                return None
            return Container(node, parse_image(node.value), node)
        if not isinstance(node, YMapping):
            self.wrong(node, where, "an image or a mapping")
            return None
        image_node = self.scalar(node, "image", where)
        image = parse_image(image_node.value) if image_node and not image_node.is_null else None
        return Container(
            node,
            image,
            image_node,
            self.mapping(node.get("credentials"), f"{where}.credentials"),
            self.scalar_map(node.get("env"), f"{where}.env"),
            self.scalar(node, "options", where),
        )

    # Steps --------------------------------------------------------------------------------

    def steps(self, node: YNode | None, where: str, job_id: str | None) -> tuple[Step, ...]:
        sequence = self.sequence(node, where)
        if sequence is None:
            return ()
        steps: list[Step] = []
        for index, item in enumerate(sequence.items):
            anchor = f"{where}[{index}]"
            if isinstance(item, YMapping):
                steps.append(self.step(index, anchor, item, job_id))
            else:
                self.wrong(item, anchor, "a mapping")
        return tuple(steps)

    def step(self, index: int, anchor: str, node: YMapping, job_id: str | None) -> Step:
        # One pass over the keys present (a step has a handful) rather than a lookup per
        # field: this runs for every step of every file.
        fields: dict[str, YScalar] = {}
        for key, (_, value) in node.index.items():
            if key in _STEP_SCALARS:
                if isinstance(value, YScalar):
                    fields[key] = value
                else:
                    self.wrong(value, f"{anchor}.{key}", "a scalar")
        uses_node = fields.get("uses")
        parallel: tuple[Step, ...] = ()
        if "parallel" in node:
            parallel = self.steps(node.get("parallel"), f"{anchor}.parallel", job_id)
        with_node = node.get("with")
        env_node = node.get("env")
        return Step(
            index=index,
            anchor=anchor,
            node=node,
            job_id=job_id,
            id=fields.get("id"),
            name=fields.get("name"),
            if_=fields.get("if"),
            uses=parse_uses(uses_node) if uses_node is not None else None,
            run=fields.get("run"),
            shell=fields.get("shell"),
            with_=_EMPTY if with_node is None else self.scalar_map(with_node, f"{anchor}.with"),
            env=_EMPTY if env_node is None else self.scalar_map(env_node, f"{anchor}.env"),
            working_directory=fields.get("working-directory"),
            continue_on_error=fields.get("continue-on-error"),
            timeout_minutes=fields.get("timeout-minutes"),
            background=fields.get("background"),
            parallel=parallel,
        )
