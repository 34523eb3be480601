"""``tollgate run``: run a command with its output masked (GitLab's missing runtime masking)."""

from __future__ import annotations

import argparse

from tollgate._cli._secrets import add_source_arguments


def register(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add the ``run`` subcommand."""
    parser = subcommands.add_parser(
        "run",
        parents=[common],
        help="run a command with secrets masked in its stdout and stderr",
        description=(
            "Run CMD with its stdout and stderr passed through the redactor, forward "
            "signals to it, and exit with its exit status (127: not found, 126: not "
            "executable, 128+N: killed by signal N)."
        ),
    )
    add_source_arguments(parser, values=False)
    parser.add_argument(
        "--replacement",
        default=None,
        metavar="TEXT",
        help="what a secret becomes (default *** ; [MASKED] on GitLab, as gitlab-runner)",
    )
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    # Nothing to clean up at exit (see tollgate._cli.entry).
    parser.set_defaults(handler=main, skip_teardown=True)


def main(args: argparse.Namespace) -> int:
    """Run the command; return its exit status."""
    import logging
    import sys

    from tollgate._cli._secrets import load_secrets, replacement_for
    from tollgate.errors import UsageError
    from tollgate.masking.process import run_redacted
    from tollgate.masking.secrets import process_secrets

    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError(
            "no command to run", hint="tollgate run --secret-env NAME -- CMD [ARGS...]"
        )
    if not load_secrets(args):
        logging.getLogger(__name__).warning("no secrets given: output passes through unchanged")
    sys.stdout.flush()
    sys.stderr.flush()
    return run_redacted(
        argv,
        process_secrets(),
        replacement=replacement_for(args),
        stdout=sys.stdout.fileno(),
        stderr=sys.stderr.fileno(),
    )
