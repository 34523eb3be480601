"""``tollgate creds PROVIDER``: exchange the job's OIDC token for cloud credentials.

Each provider has its own module (``_creds_aws.py``, ...) with ``register(subcommands,
common)`` adding its subcommand and options; the options every provider shares and the
exchange-then-emit flow live here.
"""

from __future__ import annotations

import argparse

from tollgate._cli import _creds_aws, _creds_azure, _creds_gcp, _creds_vault

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
        module.register(providers, [common, shared])


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


def run_exchange(args: argparse.Namespace, provider: object) -> int:
    """Get a token, exchange it with ``provider``, and hand the credentials to the job."""
    from tollgate.ci import PlatformOptions, get_platform
    from tollgate.credentials.emit import emit
    from tollgate.credentials.interface import Provider

    assert isinstance(provider, Provider)
    platform = get_platform(
        args.platform,
        options=PlatformOptions(token_file=args.token_file, token_env=args.token_env),
    )
    credentials = provider.exchange(platform.id_token)
    emit(credentials, platform, args)
    return 0
