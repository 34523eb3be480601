"""``.tollgate.yml``: loading, validation, path ignores, and the baseline file.

The configuration is validated against ``tollgate/schemas/config.schema.json``; every error
names the key and its line (``.tollgate.yml:7:7: rules.template-injection.severity: ...``)
and exits 2. Path globs are relative to the configuration file's directory.

A baseline lists the findings a repository has accepted, by line-insensitive fingerprint
(:meth:`~tollgate.audit.findings.Finding.fingerprint`) with a count, so that an audit can
fail only on new findings. It is JSON, written atomically.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from tollgate.audit.findings import Diagnostic, Finding, Persona, Severity
from tollgate.audit.rules import PinningPolicy
from tollgate.audit.source import YMapping, YNode, YScalar, YSequence, load
from tollgate.errors import ConfigError

CONFIG_NAMES = (".tollgate.yml", ".tollgate.yaml")
"""The names looked for at the root of the first directory audited."""
ALL_RULES = "*"
"""In a set of ignored rule ids: every rule."""
BASELINE_VERSION = 1
_MAX_ERRORS = 10


# --- The configuration ----------------------------------------------------------------------


@dataclass(frozen=True)
class RuleConfig:
    """``rules.<id>``."""

    disable: bool = False
    severity: Severity | None = None
    ignore: tuple[str, ...] = ()
    """Path globs where the rule's findings are dropped."""
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class IgnoreEntry:
    """One item of ``ignore:``."""

    path: str
    rules: tuple[str, ...] = ()
    """Rule ids; empty means every rule."""


@dataclass(frozen=True)
class Config:
    """A loaded configuration; ``Config()`` is the empty one (``--no-config``)."""

    path: str | None = None
    """The file it came from."""
    root: str = "."
    """The directory path globs are relative to."""
    persona: Persona | None = None
    rules: Mapping[str, RuleConfig] = field(default_factory=dict)
    ignore: tuple[IgnoreEntry, ...] = ()
    pinning: PinningPolicy = field(default_factory=PinningPolicy)

    def disabled(self) -> frozenset[str]:
        """Ids of the rules not to run."""
        return frozenset(rule for rule, settings in self.rules.items() if settings.disable)

    def severities(self) -> dict[str, Severity]:
        """Severity overrides by rule id."""
        return {rule: s.severity for rule, s in self.rules.items() if s.severity is not None}

    def rule_options(self) -> dict[str, Mapping[str, object]]:
        """``options`` by rule id, for :class:`~tollgate.audit.rules.AuditContext`."""
        return {rule: s.options for rule, s in self.rules.items() if s.options}

    def path_ignores(self) -> PathIgnores:
        """The ``ignore:`` entries and every ``rules.<id>.ignore``, compiled."""
        entries = [
            (compile_glob(entry.path), frozenset(entry.rules) or frozenset((ALL_RULES,)))
            for entry in self.ignore
        ]
        entries.extend(
            (compile_glob(pattern), frozenset((rule,)))
            for rule, settings in self.rules.items()
            for pattern in settings.ignore
        )
        return PathIgnores(os.path.abspath(self.root), tuple(entries))


def find_config(paths: Iterable[str | os.PathLike[str]]) -> Path | None:
    """The configuration file at the root of the first directory in ``paths``, if any."""
    for given in paths:
        directory = Path(given)
        if directory.is_dir():
            for name in CONFIG_NAMES:
                candidate = directory / name
                if candidate.is_file():
                    return candidate
            return None
    return None


def load_config(path: str | os.PathLike[str], known_rules: Collection[str] | None = None) -> Config:
    """Read and validate a configuration file; raises :class:`ConfigError` (exit 2).

    ``known_rules``, when given, are the valid rule ids: any other id is an error (a typo
    would otherwise silently configure nothing).
    """
    shown = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"configuration file {shown} not found")
    document = load(path, display_path=shown)
    if isinstance(document, Diagnostic):
        if document.message.startswith("file is empty"):
            return Config(path=shown, root=os.path.dirname(shown) or ".")
        raise ConfigError(f"{_place(shown, document.line, document.column)}: {document.message}")
    data = to_python(document.root)
    errors = _schema_errors(data, document.root)
    if not errors and known_rules is not None:
        errors = _unknown_rules(data, document.root, frozenset(known_rules))
    if errors:
        errors.sort(key=lambda error: (error[0] or 0, error[1] or 0))
        lines = [f"{_place(shown, line, column)}: {text}" for line, column, text in errors]
        more = len(lines) - _MAX_ERRORS
        lines = lines[:_MAX_ERRORS] + ([f"... and {more} more"] if more > 0 else [])
        raise ConfigError(
            "invalid configuration:\n  " + "\n  ".join(lines),
            hint="the keys are documented in tollgate/schemas/config.schema.json; "
            "`tollgate audit --list-rules` lists the rule ids",
        )
    assert isinstance(data, dict)  # the schema requires a mapping
    return _build(shown, data)


def _build(shown: str, data: dict[str, object]) -> Config:
    rules: dict[str, RuleConfig] = {}
    for rule, raw in _mapping(data.get("rules")).items():
        settings = _mapping(raw)
        severity = settings.get("severity")
        rules[rule] = RuleConfig(
            disable=settings.get("disable") is True,
            severity=Severity(severity) if isinstance(severity, str) else None,
            ignore=_strings(settings.get("ignore")),
            options=_mapping(settings.get("options")),
        )
    ignore = tuple(
        IgnoreEntry(str(entry["path"]), _strings(entry.get("rules")))
        for entry in map(_mapping, _list(data.get("ignore")))
    )
    pinning = _mapping(data.get("pinning"))
    persona = data.get("persona")
    return Config(
        path=shown,
        root=os.path.dirname(shown) or ".",
        persona=Persona(persona) if isinstance(persona, str) else None,
        rules=rules,
        ignore=ignore,
        pinning=PinningPolicy(
            require_sha=_strings(pinning["require-sha"]) if "require-sha" in pinning else ("*",),
            allow_ref=_strings(pinning.get("allow-ref")),
        ),
    )


def _mapping(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _strings(value: object) -> tuple[str, ...]:
    return tuple(str(item) for item in _list(value))


def to_python(node: YNode) -> object:
    """A node tree as plain data (YAML 1.2 core types), for the schema validator."""
    if isinstance(node, YMapping):
        return {
            key.value if isinstance(key, YScalar) else str(to_python(key)): to_python(value)
            for key, value in node.items
        }
    if isinstance(node, YSequence):
        return [to_python(item) for item in node.items]
    tag = node.tag
    if tag.endswith(":null"):
        return None
    if tag.endswith(":bool"):
        return node.as_bool()
    if tag.endswith(":int"):
        try:
            return int(node.value, 10)
        except ValueError:
            return int(node.value, 0)  # 0x and 0o forms
    if tag.endswith(":float"):
        text = node.value.lower().lstrip("+")
        return float(text.replace(".inf", "inf").replace(".nan", "nan"))
    return node.value


class _Validator(Protocol):
    def iter_errors(self, instance: object) -> Iterator[Any]: ...


@lru_cache(maxsize=1)
def _validator() -> _Validator:
    # Imported here: jsonschema takes ~0.2 s to import, paid only when a config file exists.
    from importlib import resources

    import jsonschema  # type: ignore[import-untyped]

    text = (resources.files("tollgate") / "schemas" / "config.schema.json").read_text("utf-8")
    schema = json.loads(text)
    validator: _Validator = jsonschema.validators.validator_for(schema)(schema)
    return validator


def _schema_errors(data: object, root: YNode) -> list[tuple[int | None, int | None, str]]:
    found: list[tuple[int | None, int | None, str]] = []
    for error in _validator().iter_errors(data):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            schema = error.schema if isinstance(error.schema, dict) else {}
            allowed = sorted(schema.get("properties", {}))
            for key in error.instance:
                if key not in allowed:
                    node = _key_node(root, [*path, key])
                    found.append(
                        (
                            *_position(node),
                            f"{_dotted([*path, key])}: unknown key {key!r}"
                            + (f" (expected one of: {', '.join(allowed)})" if allowed else ""),
                        )
                    )
            continue
        if "propertyNames" in error.absolute_schema_path:
            # The error's instance is the offending name; point at that key.
            name = error.instance
            node = _key_node(root, [*path, name])
            found.append((*_position(node), f"{_dotted([*path, name])}: invalid name {name!r}"))
            continue
        node = _value_node(root, path)
        found.append((*_position(node), f"{_dotted(path) or '(top level)'}: {error.message}"))
    return found


def _unknown_rules(
    data: object, root: YNode, known: frozenset[str]
) -> list[tuple[int | None, int | None, str]]:
    found: list[tuple[int | None, int | None, str]] = []
    top = _mapping(data)

    def check(rule: object, path: list[str | int], key: bool) -> None:
        if isinstance(rule, str) and rule not in known:
            node = _key_node(root, path) if key else _value_node(root, path)
            found.append((*_position(node), f"{_dotted(path)}: unknown rule id {rule!r}"))

    for name in _mapping(top.get("rules")):
        check(name, ["rules", name], key=True)
    for i, entry in enumerate(_list(top.get("ignore"))):
        for j, listed in enumerate(_list(_mapping(entry).get("rules"))):
            check(listed, ["ignore", i, "rules", j], key=False)
    return found


def _dotted(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _value_node(root: YNode, path: Iterable[str | int]) -> YNode | None:
    node: YNode | None = root
    for part in path:
        if isinstance(node, YMapping) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, YSequence) and isinstance(part, int) and part < len(node.items):
            node = node.items[part]
        else:
            return node
    return node


def _key_node(root: YNode, path: list[str | int]) -> YNode | None:
    parent = _value_node(root, path[:-1])
    if isinstance(parent, YMapping) and isinstance(path[-1], str):
        return parent.key_node(path[-1]) or parent
    return parent


def _position(node: YNode | None) -> tuple[int | None, int | None]:
    return (None, None) if node is None else (node.line, node.column)


def _place(path: str, line: int | None, column: int | None) -> str:
    if line is None:
        return path
    return f"{path}:{line}" + (f":{column}" if column is not None else "")


# --- Path globs and ignores -----------------------------------------------------------------


def compile_glob(pattern: str) -> re.Pattern[str]:
    """A ``.tollgate.yml`` path glob as a regular expression to ``fullmatch`` a ``/`` path.

    ``*`` and ``?`` stay within a segment, ``**`` spans segments, ``[abc]`` is a class; a
    pattern without ``/`` matches a name at any depth; a match on a directory covers what is
    below it. A leading ``/`` or ``./`` anchors at the configuration's directory.
    """
    text = pattern.strip()
    anchored = "/" in text.rstrip("/")
    text = text.removeprefix("./").lstrip("/").rstrip("/")
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif text.startswith("**", i):
            out.append(".*")
            i += 2
        elif text[i] == "*":
            out.append("[^/]*")
            i += 1
        elif text[i] == "?":
            out.append("[^/]")
            i += 1
        elif text[i] == "[" and (close := text.find("]", i + 2)) > 0:
            body = text[i + 1 : close]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace(r"\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = close + 1
        else:
            out.append(re.escape(text[i]))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"{prefix}{''.join(out)}(?:/.*)?", re.DOTALL)


@dataclass(frozen=True)
class PathIgnores:
    """Compiled path ignores: which rules are silenced in which files."""

    root: str = "."
    """Absolute directory the globs are relative to."""
    entries: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def for_file(self, display_path: str, fs_path: str) -> frozenset[str]:
        """Rule ids silenced in this file (:data:`ALL_RULES` for every rule).

        A glob is tried on the path relative to :attr:`root` and on the path as shown.
        """
        if not self.entries:
            return frozenset()
        candidates = [display_path]
        relative = os.path.relpath(os.path.abspath(fs_path), self.root).replace(os.sep, "/")
        if not relative.startswith("../") and relative != display_path:
            candidates.append(relative)
        silenced: set[str] = set()
        for pattern, rules in self.entries:
            if any(pattern.fullmatch(candidate) for candidate in candidates):
                silenced |= rules
        return frozenset(silenced)


# --- Baselines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """Accepted findings: fingerprint -> how many of them."""

    counts: Mapping[str, int] = field(default_factory=dict)

    def matcher(self) -> BaselineMatcher:
        """A fresh matcher that uses up each entry once per count."""
        return BaselineMatcher(dict(self.counts))


class BaselineMatcher:
    """Consumes baseline entries as findings arrive: two identical findings need two."""

    def __init__(self, remaining: dict[str, int]) -> None:
        self._remaining = remaining

    def absorbs(self, finding: Finding) -> bool:
        """True (and one entry used up) when ``finding`` is in the baseline."""
        fingerprint = finding.fingerprint()
        left = self._remaining.get(fingerprint, 0)
        if left <= 0:
            return False
        self._remaining[fingerprint] = left - 1
        return True


class BaselineRecorder:
    """Collects findings for ``--write-baseline`` (a fingerprint and a label each)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._labels: dict[str, tuple[str, str]] = {}

    def __len__(self) -> int:
        return sum(self._counts.values())

    def add(self, finding: Finding) -> None:
        fingerprint = finding.fingerprint()
        self._counts[fingerprint] += 1
        self._labels.setdefault(fingerprint, (finding.location.path, finding.rule))

    def render(self) -> str:
        """The baseline file's text: entries sorted by path, rule and fingerprint."""
        entries = [
            {"fingerprint": fp, "count": count, "path": path, "rule": rule}
            for fp, count in self._counts.items()
            for path, rule in (self._labels[fp],)
        ]
        entries.sort(key=lambda e: (str(e["path"]), str(e["rule"]), str(e["fingerprint"])))
        document = {"version": BASELINE_VERSION, "tool": "tollgate", "findings": entries}
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the baseline atomically (readers see the old file or the new one)."""
        from tollgate._files import atomic_write

        try:
            atomic_write(path, self.render().encode("utf-8"), mode=0o644)
        except OSError as error:
            raise ConfigError(
                f"cannot write the baseline {os.fspath(path)}: {error.strerror or error}"
            ) from error


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read a baseline file; raises :class:`ConfigError` (exit 2) when it is unusable."""
    shown = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read the baseline {shown}: {error.strerror or error}") from error
    except ValueError as error:
        raise ConfigError(f"the baseline {shown} is not valid JSON: {error}") from error
    problem = _baseline_problem(data)
    if problem:
        raise ConfigError(
            f"the baseline {shown} is not a tollgate baseline: {problem}",
            hint="write a new one with `tollgate audit --write-baseline FILE`",
        )
    counts: Counter[str] = Counter()
    for entry in data["findings"]:
        counts[entry["fingerprint"]] += entry.get("count", 1)
    return Baseline(dict(counts))


def _baseline_problem(data: object) -> str | None:
    if not isinstance(data, dict):
        return "the top level is not an object"
    if data.get("version") != BASELINE_VERSION:
        return f"version {data.get('version')!r} (this tollgate reads version {BASELINE_VERSION})"
    findings = data.get("findings")
    if not isinstance(findings, list):
        return "'findings' is not a list"
    for i, entry in enumerate(findings):
        if not isinstance(entry, dict) or not isinstance(entry.get("fingerprint"), str):
            return f"findings[{i}] has no fingerprint"
        count = entry.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            return f"findings[{i}].count is not a positive integer"
    return None
