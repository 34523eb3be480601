"""``tollgate redact``: a byte-stream filter from stdin to stdout that masks secrets."""

from __future__ import annotations

import argparse

from tollgate._cli._secrets import add_source_arguments


def register(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add the ``redact`` subcommand."""
    parser = subcommands.add_parser(
        "redact",
        parents=[common],
        help="copy stdin to stdout with secrets (and their encoded forms) masked",
        description=(
            "Copy standard input to standard output, replacing every secret and every "
            "encoded form of it. Works on bytes (invalid UTF-8 passes through untouched), "
            "catches secrets split across reads, and releases output as soon as it cannot "
            "be the start of a secret."
        ),
    )
    add_source_arguments(parser, values=True)
    parser.add_argument(
        "--replacement",
        default=None,
        metavar="TEXT",
        help="what a secret becomes (default *** ; [MASKED] on GitLab, as gitlab-runner)",
    )
    # Nothing to clean up at exit (see tollgate._cli.entry).
    parser.set_defaults(handler=main, skip_teardown=True)


def main(args: argparse.Namespace) -> int:
    """Filter stdin to stdout."""
    import logging
    import sys

    from tollgate._cli._secrets import load_secrets, replacement_for
    from tollgate.masking.secrets import process_secrets
    from tollgate.masking.stream import filter_stream

    if not load_secrets(args):
        logging.getLogger(__name__).warning("no secrets given: input passes through unchanged")
    sys.stdout.flush()
    filter_stream(sys.stdin.fileno(), sys.stdout.fileno(), process_secrets(), replacement_for(args))
    return 0
