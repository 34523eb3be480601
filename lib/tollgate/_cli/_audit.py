"""``tollgate audit``: report what an attacker could use in GitHub Actions workflows."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, TextIO

from tollgate._cli._help import RawDescriptionHelpFormatter

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from tollgate.audit.config import Config
    from tollgate.audit.findings import RuleInfo

_DESCRIPTION = """\
Read the workflows (.github/workflows/*.yml) and action metadata (action.yml) under
each PATH (a checkout, a folder, or files; default: the current directory) and report
what an attacker could use: template injection, dangerous triggers, unpinned actions,
excessive permissions and more. A file that cannot be read is reported as a
diagnostic and the audit goes on."""

_EPILOG = """\
configuration:
  .tollgate.yml at the root of the first directory given (or --config FILE): rules
  (disable, severity, ignore, options), ignore (path globs and rules), pinning
  (require-sha, allow-ref) and persona; see tollgate/schemas/config.schema.json.

inline ignores:
  A YAML comment on the finding's line, or alone on the line above, silences it:
    # tollgate: ignore[rule-id, other-id] why this is fine

exit status:
  0  no finding at or above --fail-on (or --exit-zero, or --write-baseline)
  1  findings at or above --fail-on (default: any finding), in every format
  2  usage or configuration error"""

_FORMATS = ("text", "json", "sarif", "github", "codequality")
_SEVERITIES = ("info", "low", "medium", "high", "critical")
_PERSONAS = ("regular", "pedantic", "auditor")


def register(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add the ``audit`` subcommand."""
    parser = subcommands.add_parser(
        "audit",
        parents=[common],
        help="audit GitHub Actions workflows and actions for what an attacker could use",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", default=["."], metavar="PATH")
    output = parser.add_argument_group("output")
    output.add_argument(
        "--format",
        choices=_FORMATS,
        default="text",
        help="report format (default: text; github adds annotations and a job summary)",
    )
    output.add_argument(
        "-o", "--output", metavar="FILE", help="write the report to FILE (atomically)"
    )
    output.add_argument(
        "--fail-on",
        choices=_SEVERITIES,
        default=None,
        metavar="SEVERITY",
        help="exit 1 when a finding is at or above SEVERITY (default: any finding); "
        f"one of {', '.join(_SEVERITIES)}",
    )
    output.add_argument(
        "--exit-zero", action="store_true", help="exit 0 whatever is found (not on errors)"
    )
    output.add_argument(
        "--persona",
        choices=_PERSONAS,
        default=None,
        help="how much to report: regular (likely exploitable; default), pedantic (also "
        "hygiene), auditor (everything)",
    )
    output.add_argument(
        "--list-rules", action="store_true", help="list the rules and their ids, then exit"
    )
    settings = parser.add_argument_group("configuration")
    which = settings.add_mutually_exclusive_group()
    which.add_argument("--config", metavar="FILE", help="read settings from FILE")
    which.add_argument("--no-config", action="store_true", help="ignore .tollgate.yml")
    settings.add_argument(
        "--no-ignores",
        action="store_true",
        help="report what configured and inline ignores would silence",
    )
    settings.add_argument(
        "--baseline",
        metavar="FILE",
        help="do not report the findings recorded in FILE (by --write-baseline)",
    )
    settings.add_argument(
        "--write-baseline",
        metavar="FILE",
        help="record every current finding in FILE (for --baseline) and exit 0",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=1,
        metavar="N",
        help="worker processes for large trees (0: one per CPU; default 1)",
    )
    parser.set_defaults(handler=main)


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value or os.cpu_count() or 1


def main(args: argparse.Namespace) -> int:
    """Run the audit and write the report; return the exit status."""
    import logging

    from tollgate.audit.config import Baseline, BaselineRecorder, load_baseline
    from tollgate.audit.engine import Auditor, AuditSettings, FileDone, default_rules
    from tollgate.audit.findings import Finding, Persona, Severity
    from tollgate.audit.report import ReportOptions, RunStats, create_format, exit_code
    from tollgate.audit.rules import all_rules
    from tollgate.errors import UsageError

    logger = logging.getLogger("tollgate.audit")
    registered = all_rules()
    infos = {rule_id: cls.info for rule_id, cls in registered.items()}
    if args.list_rules:
        _list_rules(infos, sys.stdout)
        return 0
    missing = [path for path in args.paths if not os.path.exists(path)]
    if missing:
        raise UsageError(f"no such file or directory: {', '.join(missing)}")
    config = _config(args, frozenset(registered))
    settings = AuditSettings.from_config(
        config,
        persona=Persona(args.persona) if args.persona else None,
        ignores=not args.no_ignores,
    )
    baseline: Baseline | None = load_baseline(args.baseline) if args.baseline else None
    recorder = BaselineRecorder() if args.write_baseline else None
    auditor = Auditor(
        default_rules(config), settings, jobs=args.jobs, baseline=baseline, recorder=recorder
    )
    platform = None
    if args.format == "github":
        from tollgate.ci import get_platform

        platform = get_platform(args.platform)
    options = ReportOptions(rules=infos, source_lines=_SourceLines(), platform=platform)
    with _Output(args.output) as stream:
        report = create_format(args.format, stream, options)
        report.begin()
        for item in auditor.run(args.paths):
            if isinstance(item, Finding):
                report.finding(item)
            elif isinstance(item, FileDone):
                continue
            else:
                report.diagnostic(item)
        report.end(RunStats(files_scanned=auditor.files))
    if auditor.baselined:
        logger.info("%d known findings not reported (in the baseline)", auditor.baselined)
    if auditor.files == 0:
        logger.warning("no workflow or action file found under %s", ", ".join(args.paths))
    if recorder is not None:
        recorder.write(args.write_baseline)
        logger.info("wrote %d findings to the baseline %s", len(recorder), args.write_baseline)
        return 0
    fail_on = Severity(args.fail_on) if args.fail_on else None
    return exit_code(report.tally.max_severity, fail_on, args.exit_zero)


def _config(args: argparse.Namespace, known: frozenset[str]) -> Config:
    from tollgate.audit.config import Config, find_config, load_config

    if args.no_config:
        return Config()
    path = args.config or find_config(args.paths)
    return Config() if path is None else load_config(path, known)


def _list_rules(infos: Mapping[str, RuleInfo], stream: TextIO) -> None:
    if not infos:
        stream.write("no rules are registered\n")
        return
    width = max(len(rule_id) for rule_id in infos)
    for rule_id, info in infos.items():
        stream.write(f"{rule_id:<{width}}  {info.default_severity.value:<8}  {info.name}\n")
        stream.write(f"{'':<{width}}  {'':<8}  {info.summary}\n")


class _SourceLines:
    """A file's lines for the text report's excerpts, numbered as YAML numbers them."""

    def __init__(self) -> None:
        self._path: str | None = None
        self._lines: Sequence[str] = ()

    def __call__(self, path: str) -> Sequence[str] | None:
        import re

        if path != self._path:
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
            self._lines = re.split("\r\n|[\r\n\x85\u2028\u2029]", text.removeprefix("\ufeff"))
            self._path = path
        return self._lines


class _Output:
    """``-o FILE``: a temporary file beside FILE, renamed over it when the report is
    complete (a reader never sees half a report); without FILE, standard output."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._temp: str | None = None
        self._stream: TextIO = sys.stdout

    def __enter__(self) -> TextIO:
        if self.path is None:
            return sys.stdout
        import tempfile

        from tollgate.errors import UsageError

        directory = os.path.dirname(os.path.abspath(self.path))
        name = os.path.basename(self.path)
        try:
            fd, self._temp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
        except OSError as error:
            raise UsageError(
                f"cannot write the report to {self.path}: {error.strerror or error}"
            ) from error
        os.fchmod(fd, 0o644)
        self._stream = open(fd, "w", encoding="utf-8", newline="")
        return self._stream

    def __exit__(self, kind: object, *rest: object) -> None:
        if self.path is None:
            sys.stdout.flush()
            return
        assert self._temp is not None
        try:
            if kind is None:
                self._stream.flush()
                os.fsync(self._stream.fileno())
            self._stream.close()
            if kind is None:
                os.replace(self._temp, self.path)
                self._temp = None
        finally:
            if self._temp is not None:
                os.unlink(self._temp)
