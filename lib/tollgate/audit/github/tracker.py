"""How values travel inside one workflow or action file.

A :class:`Tracker` answers "where can the value of this reference come from?" following
``env:`` (workflow, job, step, and ``$GITHUB_ENV`` writes of earlier steps), step outputs
(``$GITHUB_OUTPUT`` writes, the legacy ``::set-output``, ``actions/github-script``'s
``core.setOutput`` and ``return``, and :data:`~tollgate.audit.github.taint.ACTION_OUTPUTS`),
job outputs through ``needs``, ``matrix`` values, shell variables the script assigns, and
``inputs`` (tainted by a caller per :attr:`AuditContext.tainted_inputs`, ``workflow_dispatch``
free text, or unknown).

The file is a small graph of these names; the tracker solves it lazily, from the references
that sinks use, memoizing each node (a cycle adds nothing), so a file costs what its sinks
reference. :func:`tracker_for` shares one tracker between the rules that check the same file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from tollgate.audit.findings import Location
from tollgate.audit.github.expressions import (
    ContextRef,
    ExpressionMatch,
    Property,
    find_expressions,
    flows,
)
from tollgate.audit.github.model import Action, Job, Step, Workflow
from tollgate.audit.github.scripts import (
    FileWrite,
    assignments,
    command_file_writes,
    has_command_substitution,
    variable_refs,
)
from tollgate.audit.github.taint import (
    ACTION_OUTPUTS,
    SAFE,
    Control,
    Place,
    Taint,
    classify,
    from_source,
    unknown,
    worst,
)
from tollgate.audit.source import YMapping, YNode, YScalar, YSequence

# Default variables of the runner that repeat a context (the rest are SAFE).
_DEFAULT_VARIABLES = {
    "GITHUB_HEAD_REF": "github.head_ref",
    "GITHUB_REF": "github.ref",
    "GITHUB_REF_NAME": "github.ref_name",
    "GITHUB_BASE_REF": "github.base_ref",
}
_SAFE_VARIABLES = frozenset(
    (
        "HOME",
        "PATH",
        "PWD",
        "USER",
        "SHELL",
        "TMPDIR",
        "TEMP",
        "TMP",
        "RANDOM",
        "HOSTNAME",
        "OSTYPE",
        "ImageOS",
        "ImageVersion",
        "CI",
        "LANG",
        "JAVA_HOME",
        "ANDROID_HOME",
        "ANDROID_SDK_ROOT",
        "ANDROID_NDK_HOME",
        "VCPKG_INSTALLATION_ROOT",
        "pythonLocation",
        "Python_ROOT_DIR",
    )
)


def _output_listed(name: str, patterns: tuple[str, ...]) -> bool:
    """True when ``name`` is one of ``patterns`` (``*``: all of the step's outputs)."""
    return name == "*" or any(
        name == p or (p.startswith("*") and name.endswith(p[1:])) for p in patterns
    )


STEP, JOB, WORKFLOW = 2, 1, 0
"""Env levels: which ``env:`` maps a value sees (a step's own, its job's, the workflow's)."""

_SAFE_CONTEXTS = frozenset(("secrets", "runner", "job", "strategy"))
_SAFE_TYPES = frozenset(("boolean", "number", "choice", "environment"))
_PAYLOAD_RE = re.compile(r"(?:context|github\.context)\.payload((?:\.[A-Za-z_]\w*|\[\d+\])+)")
_JQ_PATH_RE = re.compile(r"""(?<![\w$])\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d*\])*)""")
_JS_CALL_RE = re.compile(
    r"core\.(setOutput|exportVariable|addPath)\(\s*(?:(['\"`])([\w.-]+)\2\s*,\s*)?(.*)"
)
_JS_RETURN_RE = re.compile(r"^\s*return\s+(.+)$", re.MULTILINE)
_JS_LITERAL_RE = re.compile(r"""\s*(?:(['"`])[^'"`$]*\1|[\d.]+|true|false|null)?\s*\)?\s*;?\s*""")
_MAX_DEPTH = 12

_Key = tuple[object, ...]


class Tracker:
    """Resolves the provenance of values in one workflow or action (cheap, lazy, memoized).

    ``tainted_inputs``: the file's inputs some caller fills with attacker data (lower-case),
    from :attr:`AuditContext.tainted_inputs`.
    """

    def __init__(self, model: Workflow | Action, tainted_inputs: Iterable[str] = ()) -> None:
        self.model = model
        self.workflow = model if isinstance(model, Workflow) else None
        self.tainted_inputs = frozenset(name.lower() for name in tainted_inputs)
        self._memo: dict[_Key, Taint] = {}
        self._busy: set[_Key] = set()
        self._ordered: dict[int, tuple[Step, ...]] = {}
        self._writes: dict[int, tuple[FileWrite, ...]] = {}
        self._assigned: dict[int, dict[str, list[tuple[str, int]]]] = {}
        self._env_index: dict[int, dict[str | None, list[tuple[int, Step, FileWrite]]]] = {}
        self._positions: dict[int, dict[int, int]] = {}

    # Entry points ------------------------------------------------------------------------------

    def match(
        self, match: ExpressionMatch, job: Job | None, step: Step | None, level: int = STEP
    ) -> tuple[ContextRef, Taint] | None:
        """The worst reference an expression's value flows from, with its taint."""
        if match.expr is None:
            return None
        found: tuple[ContextRef, Taint] | None = None
        for ref in flows(match.expr):
            taint = self.reference(ref, job, step, level)
            if found is None or taint.rank > found[1].rank:
                found = (ref, taint)
        return found

    def scalar(self, node: YScalar, job: Job | None, step: Step | None, level: int = STEP) -> Taint:
        """The worst taint among the expressions of a scalar (:data:`SAFE` for a literal)."""
        result = SAFE
        for match in find_expressions(node.value):
            found = self.match(match, job, step, level)
            if found is not None and found[1].rank > result.rank:
                result = found[1]
        return result

    def reference(
        self, ref: ContextRef, job: Job | None, step: Step | None, level: int = STEP
    ) -> Taint:
        """Where the value of one context reference can come from."""
        context = ref.context
        parts = ref.parts
        if context == "github":
            if len(parts) > 3 and parts[1] == "event" and parts[2] == "inputs" and parts[3] != "*":
                return self.input(parts[3], dispatch=True, hop=ref.path)
            return from_source(ref.path, classify(ref.path))
        if context in _SAFE_CONTEXTS:
            return SAFE
        if context == "vars":
            return Taint(Control.WRITER, ref.path, "repository or organization admins")
        name = parts[1] if len(parts) > 1 else "*"
        if len(parts) == 2 and isinstance(ref.node, Property):
            name = ref.node.name  # as written: env names are shown to the user
        if context == "env":
            if name == "*":
                return unknown(ref.path, "the whole environment")
            return self.env(name, job, step, level)
        if context == "inputs":
            return self.input(name.lower())
        if context == "matrix":
            return self.matrix(job, name.lower())
        if context == "steps":
            if len(parts) >= 3 and parts[2] in ("outcome", "conclusion"):
                return SAFE
            if len(parts) >= 4 and parts[2] == "outputs" and "*" not in parts[1:4]:
                return self.step_output(job, parts[1], parts[3])
            if len(parts) == 3 and parts[2] == "outputs" and parts[1] != "*":
                return self.step_output(job, parts[1], "*")  # toJSON(steps.x.outputs)
            return unknown(ref.path, "step outputs")
        if context in ("needs", "jobs"):
            if len(parts) >= 3 and parts[2] == "result":
                return SAFE
            if len(parts) >= 4 and parts[2] == "outputs" and "*" not in parts[1:4]:
                return self.job_output(parts[1], parts[3], context)
            return unknown(ref.path, "job outputs")
        return unknown(ref.path, "a context this file does not set")

    def write_value(self, step: Step, write: FileWrite, job: Job | None) -> Taint:
        """Where the value a step writes to a command file can come from."""
        key: _Key = ("write", id(step), write.start)
        return self._memoized(key, lambda: self._write_value(step, write, job))

    def writes(self, step: Step) -> tuple[FileWrite, ...]:
        """The command-file writes of a step (its script, or github-script's ``core`` calls)."""
        cached = self._writes.get(id(step))
        if cached is None:
            cached = _step_writes(step)
            self._writes[id(step)] = cached
        return cached

    def locations(self, taint: Taint) -> tuple[Location, ...]:
        """Where the hops of ``taint`` were set, as locations for a finding."""
        return tuple(self.model.location(node, offset) for node, offset in taint.related)

    # Contexts ----------------------------------------------------------------------------------

    def env(self, name: str, job: Job | None, step: Step | None, level: int) -> Taint:
        key: _Key = ("env", id(job), id(step), level, name.lower())
        return self._memoized(key, lambda: self._env(name, job, step, level))

    def _env(self, name: str, job: Job | None, step: Step | None, level: int) -> Taint:
        if level >= STEP and step is not None:
            node = _lookup(step.env, name)
            if node is not None:
                hop = f"env.{_key(step.env, name)}"
                return self.scalar(node, job, step, JOB).via(hop, _place(node))
        maps: list[tuple[Mapping[str, YScalar], Job | None]] = []
        if level >= JOB and job is not None:
            maps.append((job.env, job))
        if self.workflow is not None:
            maps.append((self.workflow.env, None))
        hop = f"env.{next((_key(m, name) for m, _ in maps if _lookup(m, name)), name)}"
        found: list[Taint] = []
        defined = False
        if step is not None:
            for earlier, write in self._env_writes(job, step, name):
                defined = True
                where = _place(earlier.run or earlier.node, write.start)
                taint = self.write_value(earlier, write, job)
                found.append(taint.via(hop, where, certain=write.name is not None))
        for mapping, scope in maps:
            node = _lookup(mapping, name)
            if node is not None:
                defined = True
                found.append(self.scalar(node, scope, None, WORKFLOW).via(hop, _place(node)))
        if not defined:
            return unknown(hop, "an environment variable this file does not set")
        return worst(found)

    def input(self, name: str, *, dispatch: bool = False, hop: str = "") -> Taint:
        """Where ``inputs.<name>`` comes from (``dispatch``: ``github.event.inputs.<name>``,
        which only ``workflow_dispatch`` sets)."""
        hop = hop or f"inputs.{name}"
        if name in self.tainted_inputs and not dispatch:
            return Taint(
                Control.ATTACKER, hop, "a caller that passes attacker-controlled data", events=None
            )
        if self.workflow is None:
            return Taint(Control.UNKNOWN, hop, "the action's caller", events=None)
        triggers = self.workflow.triggers
        events = ("workflow_dispatch",) if dispatch else ("workflow_dispatch", "workflow_call")
        declared = [
            trigger.inputs[key]
            for event in events
            if (trigger := triggers.get(event)) is not None
            for key in trigger.inputs
            if key.lower() == name
        ]
        if declared and all(item.type in _SAFE_TYPES for item in declared):
            return SAFE  # GitHub checks booleans, numbers, choices and environment names
        if not dispatch and ("workflow_call" in triggers or not triggers):
            return Taint(Control.UNKNOWN, hop, "the reusable workflow's caller", events=None)
        return Taint(Control.WRITER, hop, "anyone who can run the workflow (write access)")

    def matrix(self, job: Job | None, key: str) -> Taint:
        if job is None or job.strategy is None:
            return SAFE
        return self._memoized(("matrix", id(job), key), lambda: self._matrix(job, key))

    def _matrix(self, job: Job, key: str) -> Taint:
        hop = f"matrix.{key}"
        matrix = job.matrix
        if isinstance(matrix, YScalar):
            return self.scalar(matrix, job, None, JOB).via(hop, _place(matrix))
        if not isinstance(matrix, YMapping):
            return SAFE
        found: list[tuple[Taint, YScalar]] = []
        for name, value in matrix.str_items():
            if name.lower() == key:
                found.extend(self._matrix_values(value, job, None))
            elif name in ("include", "exclude"):
                found.extend(self._matrix_values(value, job, key))
        return worst(taint.via(hop, _place(node)) for taint, node in found)

    def _matrix_values(self, node: YNode, job: Job, key: str | None) -> list[tuple[Taint, YScalar]]:
        """The values of a matrix entry (``key``: pick that key from ``include`` mappings)."""
        found: list[tuple[Taint, YScalar]] = []
        if isinstance(node, YScalar):
            if key is None:
                found.append((self.scalar(node, job, None, JOB), node))
        elif isinstance(node, YSequence):
            for item in node.items:
                if key is not None and isinstance(item, YMapping):
                    value = next((v for n, v in item.str_items() if n.lower() == key), None)
                    if value is not None:
                        found.extend(self._matrix_values(value, job, None))
                elif key is None:
                    found.extend(self._matrix_values(item, job, None))
        return found

    def step_output(self, job: Job | None, step_id: str, name: str) -> Taint:
        key: _Key = ("output", id(job), step_id, name)
        return self._memoized(key, lambda: self._step_output(job, step_id, name))

    def _step_output(self, job: Job | None, step_id: str, name: str) -> Taint:
        hop = f"steps.{step_id}.outputs.{name}"
        target = next(
            (s for s in self._steps(job) if s.id is not None and s.id.value.lower() == step_id),
            None,
        )
        if target is None:
            return unknown(hop, "a step this file does not define")
        where = _place(target.id or target.node)
        uses = target.uses
        if uses is not None and uses.slug is not None and uses.slug != "actions/github-script":
            return _action_output(target, uses.slug, name, hop).via(hop, where)
        if uses is not None and uses.slug is None:
            return unknown(hop, f"an output of {uses.raw}").via(hop, where)
        found: list[Taint] = []
        written = False
        for write in self.writes(target):
            if write.target != "GITHUB_OUTPUT":
                continue
            if write.name is not None and name != "*" and write.name.lower() != name:
                continue
            written = True
            taint = self.write_value(target, write, job)
            where = self._write_location(target, write)
            found.append(taint.via(hop, where, certain=write.name is not None))
        if uses is not None and name == "result":
            written = True
            found.append(self._js_return(target, job).via(hop, where, certain=False))
        if not written:
            return unknown(hop, "a step output this file does not write")
        return worst(found)

    def job_output(self, job_id: str, name: str, context: str) -> Taint:
        key: _Key = ("job-output", job_id, name)
        return self._memoized(key, lambda: self._job_output(job_id, name, context))

    def _job_output(self, job_id: str, name: str, context: str) -> Taint:
        hop = f"{context}.{job_id}.outputs.{name}"
        if self.workflow is None:
            return unknown(hop, "a job")
        job = next((j for j_id, j in self.workflow.jobs.items() if j_id.lower() == job_id), None)
        if job is None or job.uses is not None:
            return unknown(hop, "a job this file does not define")
        node = _lookup(job.outputs, name)
        if node is None:
            return unknown(hop, "a job output this file does not define")
        return self.scalar(node, job, None, JOB).via(hop, _place(node))

    # Script values ------------------------------------------------------------------------------

    def _write_value(self, step: Step, write: FileWrite, job: Job | None) -> Taint:
        if _is_github_script(step):
            return self._js_value(write.value, step, job)
        return self.shell_value(write.value, step, job)

    def shell_value(self, text: str, step: Step, job: Job | None, depth: int = 0) -> Taint:
        """Where a piece of ``step``'s script (a written value) can come from."""
        found: list[Taint] = []
        for match in find_expressions(text):
            flow = self.match(match, job, step)
            if flow is not None:
                found.append(flow[1])
        bare = _without_expressions(text)
        piped = "|" in bare
        script = step.run.value if step.run is not None else ""
        for ref in variable_refs(bare):
            taint = self.variable(ref.name, step, job, depth)
            if taint.control is Control.ATTACKER and _validated(script, ref.name):
                # `[[ "$X" =~ ^[a-z0-9-]+$ ]] || exit 1`: the script vouches for it.
                taint = replace(taint, control=Control.UNKNOWN, who=f"{taint.who}, checked")
            found.append(taint if ref.plain and not piped else taint.uncertain())
        if "GITHUB_EVENT_PATH" in text or "github.event_path" in text:
            found.extend(_event_file_reads(text))
        if has_command_substitution(text) and not any(t.control for t in found):
            found.append(unknown("$(...)", "the output of a command"))
        return worst(found)

    def variable(self, name: str, step: Step, job: Job | None, depth: int = 0) -> Taint:
        """Where a shell variable read in ``step``'s script can come from."""
        key: _Key = ("var", id(step), name)
        return self._memoized(key, lambda: self._variable(name, step, job, depth))

    def _variable(self, name: str, step: Step, job: Job | None, depth: int) -> Taint:
        assigned = self._assignments(step).get(name)
        if assigned and depth < 3:
            return worst(self.shell_value(value, step, job, depth + 1) for value, _ in assigned)
        if _lookup(step.env, name) is not None or self._defined_env(name, job, step):
            return self.env(name, job, step, STEP)
        context = _DEFAULT_VARIABLES.get(name)
        if context is not None:
            return from_source(context, classify(context)).via(f"${name}")
        if name in _SAFE_VARIABLES or name.startswith(("GITHUB_", "RUNNER_")):
            return SAFE
        return unknown(f"${name}", "a shell variable this file does not set")

    def _js_value(self, text: str, step: Step, job: Job | None) -> Taint:
        found: list[Taint] = []
        for match in find_expressions(text):
            flow = self.match(match, job, step)
            if flow is not None:
                found.append(flow[1])
        for payload in _PAYLOAD_RE.finditer(text):
            path = "github.event" + re.sub(r"\[\d+\]", ".*", payload[1]).lower()
            found.append(from_source(path, classify(path)).uncertain())
        found.extend(
            self.env(env[1], job, step, STEP).uncertain()
            for env in re.finditer(r"process\.env\.([A-Za-z_]\w*)", text)
        )
        if not any(t.control for t in found) and not _JS_LITERAL_RE.fullmatch(text):
            found.append(unknown("a JavaScript value", "the script"))
        return worst(found)

    def _js_return(self, step: Step, job: Job | None) -> Taint:
        script = step.with_.get("script")
        if script is None:
            return unknown("result", "the script")
        values = [m[1] for m in _JS_RETURN_RE.finditer(script.value)]
        if not values:
            return SAFE
        return worst(self._js_value(value, step, job) for value in values)

    # Helpers -----------------------------------------------------------------------------------

    def _memoized(self, key: _Key, compute: Callable[[], Taint]) -> Taint:
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        if key in self._busy or len(self._busy) > _MAX_DEPTH:
            return SAFE  # a cycle (or a chain deeper than any real one): nothing new there
        self._busy.add(key)
        try:
            result = compute()
        finally:
            self._busy.discard(key)
        self._memo[key] = result
        return result

    def _assignments(self, step: Step) -> dict[str, list[tuple[str, int]]]:
        found = self._assigned.get(id(step))
        if found is None:
            found = assignments(step.run.value) if step.run is not None else {}
            self._assigned[id(step)] = found
        return found

    def _steps(self, job: Job | None) -> tuple[Step, ...]:
        steps = self._ordered.get(id(job))
        if steps is None:
            if job is not None:
                steps = tuple(job.all_steps())
            elif isinstance(self.model, Action):
                steps = tuple(self.model.all_steps())
            else:
                steps = ()
            self._ordered[id(job)] = steps
        return steps

    def _env_writes(self, job: Job | None, step: Step, name: str) -> list[tuple[Step, FileWrite]]:
        """``$GITHUB_ENV`` writes of ``name`` (or of an unreadable name) before ``step``."""
        index = self._env_index.get(id(job))
        if index is None:
            index = self._index_env_writes(job)
        here = self._positions[id(job)].get(id(step), len(self._steps(job)))
        return [
            (earlier, write)
            for key in (name.lower(), None)
            for at, earlier, write in index.get(key, ())
            if at < here
        ]

    def _index_env_writes(
        self, job: Job | None
    ) -> dict[str | None, list[tuple[int, Step, FileWrite]]]:
        index: dict[str | None, list[tuple[int, Step, FileWrite]]] = {}
        positions: dict[int, int] = {}
        for at, step in enumerate(self._steps(job)):
            positions[id(step)] = at
            for write in self.writes(step):
                if write.target == "GITHUB_ENV":
                    key = write.name.lower() if write.name is not None else None
                    index.setdefault(key, []).append((at, step, write))
        self._env_index[id(job)] = index
        self._positions[id(job)] = positions
        return index

    def _defined_env(self, name: str, job: Job | None, step: Step) -> bool:
        if job is not None and _lookup(job.env, name) is not None:
            return True
        if self.workflow is not None and _lookup(self.workflow.env, name) is not None:
            return True
        return any(w.name is not None for _, w in self._env_writes(job, step, name))

    def _write_location(self, step: Step, write: FileWrite) -> Place:
        node = step.run if step.run is not None else step.with_.get("script")
        if node is None:
            return _place(step.node)
        return _place(node, write.start)


def _key(mapping: Mapping[str, YScalar], name: str) -> str:
    """The key of ``mapping`` that ``name`` finds, as written (``name`` when absent)."""
    if name in mapping:
        return name
    wanted = name.lower()
    return next((key for key in mapping if key.lower() == wanted), name)


def _lookup(mapping: Mapping[str, YScalar], name: str) -> YScalar | None:
    """``mapping[name]`` with GitHub's case-insensitive context lookup."""
    node = mapping.get(name)
    if node is not None:
        return node
    wanted = name.lower()
    for key, value in mapping.items():
        if key.lower() == wanted:
            return value
    return None


def _is_github_script(step: Step) -> bool:
    return step.uses is not None and step.uses.slug == "actions/github-script"


def _step_writes(step: Step) -> tuple[FileWrite, ...]:
    if step.run is not None:
        return command_file_writes(step.run.value)
    script = step.with_.get("script") if _is_github_script(step) else None
    if script is None:
        return ()
    return _js_writes(script.value)


def _js_writes(script: str) -> tuple[FileWrite, ...]:
    """``core.setOutput``/``exportVariable``/``addPath`` calls of a github-script."""
    if "core." not in script:
        return command_file_writes(script)
    targets = {
        "setOutput": "GITHUB_OUTPUT",
        "exportVariable": "GITHUB_ENV",
        "addPath": "GITHUB_PATH",
    }
    calls = (
        # @actions/core writes `name<<ghadelimiter_<uuid>`: the value cannot add entries.
        FileWrite(targets[m[1]], m[3], m[4], m.start(4), m.start(), m.start(4), True, True)
        for m in _JS_CALL_RE.finditer(script)
    )
    return (*command_file_writes(script), *calls)


def _action_output(step: Step, slug: str, name: str, hop: str) -> Taint:
    known = ACTION_OUTPUTS.get(slug)
    if known is None or not _output_listed(name, known.outputs):
        return unknown(hop, f"an output of {slug}")
    certain = True
    json = False
    if slug == "tj-actions/changed-files":
        safe_output = step.with_.get("safe_output")
        certain = safe_output is not None and safe_output.value.strip().lower() == "false"
        as_json = step.with_.get("json")
        json = as_json is not None and as_json.value.strip().lower() == "true"
    elif slug == "dorny/paths-filter":
        listing = step.with_.get("list-files")
        mode = listing.value.strip().lower() if listing is not None else "none"
        if mode == "none":
            return SAFE
        certain = mode in ("json", "csv")
        json = mode == "json"
    return Taint(
        Control.ATTACKER,
        f"{slug} output {name}",
        known.who,
        certain=certain,
        json=json,
        events=known.events,
    )


def _event_file_reads(text: str) -> list[Taint]:
    """``jq .pull_request.title "$GITHUB_EVENT_PATH"``: the event payload, read from its file."""
    found: list[Taint] = []
    for match in _JQ_PATH_RE.finditer(text):
        path = "github.event." + re.sub(r"\[\d*\]", ".*", match[1]).lower()
        source = classify(path)
        if source is not None and source.control is Control.ATTACKER:
            found.append(from_source(path, source).uncertain())
    return found


def _validated(script: str, name: str) -> bool:
    """True when the script tests the variable against a regular expression (``=~``)."""
    if "=~" not in script and "-match" not in script:
        return False
    return re.search(rf"\$\{{?{re.escape(name)}\}}?\"?\s*(?:=~|-match)", script) is not None


def _without_expressions(text: str) -> str:
    """``text`` with each ``${{ }}`` blanked out (same length)."""
    if "${{" not in text:
        return text
    return re.sub(r"\$\{\{.*?\}\}", lambda m: " " * len(m[0]), text, flags=re.DOTALL)


_LAST: list[tuple[Workflow | Action, frozenset[str], Tracker]] = []


def tracker_for(model: Workflow | Action, tainted_inputs: Iterable[str] = ()) -> Tracker:
    """The :class:`Tracker` of ``model``, shared by the rules that check it one after the other
    (one slot: the engine checks one file at a time)."""
    names = frozenset(name.lower() for name in tainted_inputs)
    if _LAST and _LAST[0][0] is model and _LAST[0][1] == names:
        return _LAST[0][2]
    tracker = Tracker(model, names)
    _LAST[:] = [(model, names, tracker)]
    return tracker


def _place(node: YNode, offset: int | None = None) -> Place:
    return (node, offset)
