"""The ``tollgate`` command: argparse subcommands over the library.

Start-up is part of every CI step's cost, so this module imports only argparse and os at
the top; each subcommand module imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from tollgate import __version__
from tollgate._cli._help import Parser, RawDescriptionHelpFormatter
from tollgate.errors import ExitCode

_EPILOG = """\
exit status (all commands):
  0  success, gate allowed, or no findings at or above the threshold
  1  findings at or above the threshold, or the gate denied
  2  usage, input or configuration error (the message says what to fix)
  3  an external service failed after retries (the gate treats this as a denial)
  `tollgate run` exits with the wrapped command's status instead: 127 command not
  found, 126 not executable, 128+N killed by signal N.

environment:
  TOLLGATE_LOGLEVEL   log level of tollgate's diagnostics (default INFO; -v means DEBUG)
  TOLLGATE_PLATFORM   default for --platform
"""

_COMMANDS = ("audit", "creds", "mask", "redact", "run", "token", "trust")
"""Subcommands, each registered by ``tollgate._cli._<name>.register``."""

PLATFORM_CHOICES = ("auto", "github", "gitlab", "local")


def _command_named(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs, when that is plain without parsing, else ``None``.

    A CI step pays for every parser it builds: with the command known, only its parser is
    made and only its module imported. Anything unusual (an abbreviated option, an unknown
    word, no command) gets the full parser, and so argparse's usual help and errors.
    """
    args = iter(argv)
    for arg in args:
        if arg == "--platform":
            next(args, None)
        elif not arg.startswith("-"):
            return arg if arg in _COMMANDS else None
        elif arg not in ("-v", "-vv", "--verbose") and not arg.startswith("--platform="):
            return None
    return None


def _commands_needed(argv: Sequence[str]) -> Sequence[str]:
    """The subcommands whose parsers ``argv`` needs: the one it names, or none for a bare
    ``--version`` (argparse prints it and exits before looking for a command), or all."""
    if list(argv) in (["--version"], ["-V"]):
        return ()
    named = _command_named(argv)
    return _COMMANDS if named is None else (named,)


def _parser(commands: Sequence[str] = _COMMANDS) -> argparse.ArgumentParser:
    """The CLI's parser, with the subcommands named (by default all)."""
    # Options every subcommand accepts, also after the subcommand's name. SUPPRESS keeps a
    # subparser from overwriting a value given before the subcommand.
    common = Parser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="debug logging on stderr (-vv: also third-party libraries); tracebacks on errors",
    )
    common.add_argument(
        "--platform",
        choices=PLATFORM_CHOICES,
        default=argparse.SUPPRESS,
        help="the CI system to act for (default: detected from GITHUB_ACTIONS / GITLAB_CI)",
    )

    parser = Parser(
        prog="tollgate",
        description="Security plugin pack for GitHub Actions and GitLab CI.",
        epilog=_EPILOG,
        formatter_class=RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in commands:
        module = importlib.import_module(f"tollgate._cli._{name}")
        module.register(subcommands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    return _run(argv)[0]


def entry() -> NoReturn:
    """The ``tollgate`` command: :func:`main`, then exit.

    Commands that finish with nothing left to clean up (``redact``, ``run``) skip tearing
    the interpreter down: freeing thousands of secret patterns and the matcher costs a
    masking step 10 ms, as much as building them. Streams are flushed first.
    """
    status, skip_teardown = _run(None)
    if skip_teardown:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # noqa: PERF203 - two streams, once
                pass  # the reader has gone: nothing more can reach it anyway
        os._exit(status)
    sys.exit(status)


def _run(argv: Sequence[str] | None) -> tuple[int, bool]:
    """The exit status, and whether the command allows skipping the interpreter's teardown."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = _parser(_commands_needed(arguments)).parse_args(arguments)
    skip_teardown = bool(getattr(args, "skip_teardown", False))
    # Defaults are filled in here, not with set_defaults(): the parent parser's actions are
    # shared by every subparser, and a default set on one would apply to all.
    args.verbose = getattr(args, "verbose", 0)
    requested = getattr(args, "platform", None) or os.environ.get("TOLLGATE_PLATFORM", "auto")
    from tollgate import _logging
    from tollgate.ci import detect

    platform_name: str = detect() if requested == "auto" else requested
    args.platform = platform_name
    _logging.configure(args.verbose, platform_name)
    try:
        status: int = args.handler(args)
    except KeyboardInterrupt:
        return 130, skip_teardown
    except Exception as error:  # the one place where every failure is reported
        return _report(error, verbose=args.verbose), skip_teardown
    return status, skip_teardown


def _report(error: Exception, *, verbose: int) -> int:
    """Print an error without a traceback (unless -v), with secrets redacted."""
    import logging
    import traceback

    from tollgate.errors import Error
    from tollgate.masking.secrets import process_secrets

    logger = logging.getLogger("tollgate")
    if verbose:
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        sys.stderr.write(process_secrets().redact_text(trace))
    if isinstance(error, Error):
        logger.error("%s", error.diagnostics())
        return int(error.exit_code)
    logger.error(
        "internal error: %s: %s\nThis is a bug in tollgate; rerun with -v for a traceback "
        "and report it.",
        type(error).__name__,
        error,
    )
    return int(ExitCode.USAGE)
