"""``tollgate creds PROVIDER``: exchange the job's OIDC token for cloud credentials.

Each provider has its own module (``_creds_aws.py``, ...): its ``NAME``, ``SUMMARY``,
``DESCRIPTION`` and ``EPILOG``, ``add_arguments(parser)`` for its options and ``main(args)``
to run it. The parsers, the options the providers share and the exchange-then-emit flow live
here.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tollgate._cli import _creds_aws, _creds_azure, _creds_gcp, _creds_vault
from tollgate._cli._help import RawDescriptionHelpFormatter

if TYPE_CHECKING:
    from tollgate._http import HttpPolicy
    from tollgate.credentials.interface import Provider

# Provider CLI modules, in the order `tollgate creds --help` lists them.
PROVIDERS = (_creds_aws, _creds_gcp, _creds_azure, _creds_vault)


def register(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add ``creds`` and one sub-subcommand per provider."""
    parser = subcommands.add_parser(
        "creds",
        parents=[common],
        help="exchange the job's OIDC token for short-lived cloud credentials",
        description=(
            "Exchange the CI job's OIDC token for short-lived credentials. Every secret part "
            "is masked before anything else happens; non-secret facts become step outputs."
        ),
    )
    providers = parser.add_subparsers(dest="provider", metavar="PROVIDER", required=True)
    shared = argparse.ArgumentParser(add_help=False)
    add_common_arguments(shared)
    for module in PROVIDERS:
        provider = providers.add_parser(
            module.NAME,
            parents=[common, shared],
            help=module.SUMMARY,
            description=module.DESCRIPTION,
            epilog=module.EPILOG,
            formatter_class=RawDescriptionHelpFormatter,
        )
        provider.set_defaults(handler=module.main)
        module.add_arguments(provider)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every provider takes: token source, audience, output mode."""
    group = parser.add_argument_group("OIDC token")
    group.add_argument(
        "--audience",
        default=None,
        metavar="AUD",
        help="the token's audience (default: the provider's documented default)",
    )
    group.add_argument(
        "--token-file",
        default=None,
        metavar="PATH",
        help="read the OIDC token from this file instead of the CI system",
    )
    group.add_argument(
        "--token-env",
        default=None,
        metavar="NAME",
        help="read the OIDC token from this variable (GitLab default: <AUDIENCE>_ID_TOKEN)",
    )


def add_network_arguments(
    group: argparse._ActionsContainer,
    *,
    ca_bundle: str = "CA certificates to trust (default: $REQUESTS_CA_BUNDLE, else the system's)",
    timeout: str = (
        "stop retrying after this long (default 60); one attempt waits at most a third "
        "of it, up to 30 s"
    ),
    max_attempts: str = (
        "attempts per request, the first included (default 5); retried: network errors, "
        "timeouts, HTTP 429 and 5xx. Proxies: HTTPS_PROXY / NO_PROXY"
    ),
) -> None:
    """``--ca-bundle``, ``--timeout`` and ``--max-attempts``, with the providers' own help.

    The defaults describe the HTTP providers (gcp, azure, vault: :func:`policy_from_args`);
    ``creds aws`` words them for botocore.
    """
    group.add_argument("--ca-bundle", default=None, metavar="PATH", help=ca_bundle)
    group.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help=timeout)
    group.add_argument("--max-attempts", type=int, default=5, metavar="N", help=max_attempts)


def add_output_argument(
    group: argparse._ActionsContainer,
    *,
    choices: tuple[str, ...] = ("env", "shell", "json"),
    default: str | None = "env",
    help_text: str = (
        "env: export to later steps (default); shell: print export lines; json: print JSON"
    ),
) -> None:
    """``--output``: how the job gets the credentials."""
    group.add_argument("--output", choices=choices, default=default, help=help_text)


def add_secret_argument(group: argparse._ActionsContainer, *, metavar: str, help_text: str) -> None:
    """``--secret`` (repeatable): a secret of the provider's store into a masked variable."""
    group.add_argument("--secret", action="append", default=[], metavar=metavar, help=help_text)


def add_credentials_dir_argument(group: argparse._ActionsContainer) -> None:
    """``--credentials-dir``: where files for later steps go."""
    group.add_argument(
        "--credentials-dir",
        default=None,
        metavar="DIR",
        help="where to write it (default: $RUNNER_TEMP, else a new private temp dir)",
    )


def policy_from_args(args: argparse.Namespace) -> HttpPolicy:
    """The HTTP policy for ``--ca-bundle``, ``--timeout`` and ``--max-attempts``."""
    from tollgate._http import DEFAULT_POLICY, HttpPolicy
    from tollgate.errors import UsageError

    if args.max_attempts < 1 or args.timeout <= 0:
        raise UsageError("--max-attempts must be at least 1 and --timeout more than 0")
    # A hung attempt must leave time for the next ones.
    per_attempt = min(DEFAULT_POLICY.read_timeout, args.timeout / 3)
    return HttpPolicy(
        retries=args.max_attempts - 1,
        budget=args.timeout,
        read_timeout=per_attempt,
        connect_timeout=min(DEFAULT_POLICY.connect_timeout, per_attempt),
        ca_bundle=args.ca_bundle,
    )


def refuse_impossible_output(
    args: argparse.Namespace, provider: str, *, extra_secrets: bool
) -> None:
    """Refuse an ``--output`` that cannot carry ``provider``'s credentials, before anyone is
    asked for a token. ``extra_secrets``: the options name secrets to fetch too."""
    from tollgate.credentials.emit import check_output, output_mode

    check_output(provider, output_mode(args), args.platform, extra_secrets=extra_secrets)


def run_exchange(args: argparse.Namespace, provider: Provider) -> int:
    """Get a token, exchange it with ``provider``, and hand the credentials to the job."""
    from tollgate.ci import PlatformOptions, get_platform
    from tollgate.credentials.emit import emit

    platform = get_platform(
        args.platform,
        options=PlatformOptions(token_file=args.token_file, token_env=args.token_env),
    )
    credentials = provider.exchange(platform.id_token)
    emit(credentials, platform, args)
    return 0
