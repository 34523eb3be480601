"""``tollgate mask``: have the CI system mask secret values and their encoded forms."""

from __future__ import annotations

import argparse
import sys

from tollgate._cli._secrets import from_env


def register(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add the ``mask`` subcommand."""
    parser = subcommands.add_parser(
        "mask",
        parents=[common],
        help="mask secret values and their encoded forms in the job log",
        description=(
            "On GitHub, emit ::add-mask:: for a secret and every encoded form of it (base64 "
            "at three alignments and with a trailing newline, URL-safe base64, JSON, URI, XML "
            "and shell escapes, each line of a multi-line value), never echoing the value "
            "anywhere else. GitLab has no runtime masking: wrap the job's script with "
            "`tollgate run` instead."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("values", nargs="*", default=[], metavar="VALUE", help="secret values")
    source.add_argument(
        "--stdin",
        action="store_true",
        help="read one secret from standard input (one trailing newline is dropped)",
    )
    source.add_argument(
        "--env", nargs="+", default=[], metavar="NAME", help="environment variables to mask"
    )
    parser.add_argument(
        "--min-length",
        type=int,
        default=None,
        metavar="N",
        help="do not mask forms shorter than N bytes (default 4)",
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Mask every value named by ``args`` on the current platform."""
    import logging

    from tollgate.ci import get_platform
    from tollgate.errors import UsageError
    from tollgate.masking.secrets import process_secrets

    logger = logging.getLogger(__name__)
    secrets: list[tuple[str, str]] = []
    if args.stdin:
        data = sys.stdin.buffer.read()
        if data.endswith(b"\r\n"):
            data = data[:-2]
        elif data.endswith(b"\n"):
            data = data[:-1]
        secrets.append(("standard input", data.decode("utf-8", "surrogateescape")))
    secrets.extend((f"${name}", from_env(name)) for name in args.env)
    secrets.extend((f"value #{i}", value) for i, value in enumerate(args.values, start=1))
    if not secrets:
        raise UsageError("nothing to mask", hint="give VALUE..., --stdin or --env NAME...")
    if args.min_length is not None:
        process_secrets().min_length = args.min_length
    platform = get_platform(args.platform)
    for label, value in secrets:
        if not value.strip():
            logger.warning("%s is empty: nothing to mask", label)
            continue
        platform.add_mask(value)
        logger.debug("masked %s", label)
    if platform.name != "github":
        logger.warning(
            "%s has no runtime log masking that tollgate can drive: wrap the job's script "
            "with `tollgate run --secret-env NAME -- CMD` to mask its output",
            "GitLab CI" if platform.name == "gitlab" else "a local terminal",
        )
    return 0
