"""``tollgate creds vault``: a Vault token by JWT login, and KV secrets."""

from __future__ import annotations

import argparse

NAME = "vault"
SUMMARY = "a HashiCorp Vault token by JWT login, and KV secrets"
DESCRIPTION = (
    "Log in to HashiCorp Vault's JWT auth method with the job's OIDC token, read KV "
    "v1/v2 secrets into masked variables, and export or revoke the Vault token."
)
EPILOG = """\
examples:
  # GitHub Actions (permissions: id-token: write): two secrets, then revoke the token
  tollgate creds vault --url https://vault.example.com --role ci \\
    --secret 'secret/ci/db password | DB_PASSWORD' \\
    --secret 'secret/ci/api token | API_TOKEN' --revoke

  # GitLab CI (id_tokens: VAULT_ID_TOKEN: aud: https://vault.example.com), in this shell
  eval "$(tollgate creds vault --url https://vault.example.com --role ci \\
    --token-env VAULT_ID_TOKEN --secret 'secret/ci/db * | DB')"

secrets: 'PATH KEY | NAME' reads KEY of the secret at PATH into masked variable NAME (default:
KEY in upper case); 'PATH * | PREFIX' reads every key (PREFIX_KEY). Several may be given in
one --secret, separated by ';' or new lines. Write KV paths as `vault kv get` takes them
(secret/ci/db); KV v1 and v2 are told apart by asking Vault about the mount. Every line of
every value is masked.
environment: VAULT_ADDR, VAULT_NAMESPACE, VAULT_CACERT; secret: VAULT_TOKEN (not with
--no-export-token or --revoke).
outputs (non-secret): policies, expires_at, token_revoked.

The login is retried on HTTP 412 (performance standbys), 429 and 5xx. GitHub's default
audience is https://github.com/<owner>; the role's bound_audiences must contain the aud sent.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``creds vault``."""
    from tollgate._cli import _creds

    vault = parser.add_argument_group("vault")
    vault.add_argument("--url", required=True, metavar="URL", help="Vault's address (https://)")
    vault.add_argument(
        "--role", default=None, metavar="ROLE", help="JWT role (default: the mount's default_role)"
    )
    vault.add_argument(
        "--path",
        default="jwt",
        metavar="MOUNT",
        help="where the JWT auth method is mounted (default jwt)",
    )
    vault.add_argument("--namespace", default=None, metavar="NS", help="Vault Enterprise namespace")
    _creds.add_secret_argument(
        vault,
        metavar="'PATH KEY | NAME'",
        help_text="read KEY of the secret at PATH into masked variable NAME (repeatable)",
    )
    vault.add_argument(
        "--kv-version",
        type=int,
        choices=(1, 2),
        default=None,
        help="skip the mount lookup: every path is on a KV engine of this version, mounted "
        "at the path's first segment",
    )
    token = vault.add_mutually_exclusive_group()
    token.add_argument(
        "--no-export-token",
        dest="export_token",
        action="store_false",
        help="do not export VAULT_TOKEN",
    )
    token.add_argument(
        "--revoke",
        action="store_true",
        help="revoke the Vault token once the secrets are read (and do not export it)",
    )
    _creds.add_network_arguments(parser.add_argument_group("network"))
    _creds.add_output_argument(parser)


def main(args: argparse.Namespace) -> int:
    """Build the provider from the options, then exchange and emit."""
    from tollgate._cli import _creds
    from tollgate.credentials.vault import VaultProvider, parse_secrets

    secrets = parse_secrets(args.secret)
    _creds.refuse_impossible_output(args, VaultProvider.name, extra_secrets=bool(secrets))
    provider = VaultProvider(
        args.url,
        role=args.role,
        auth_path=args.path,
        namespace=args.namespace,
        token_audience=args.audience,
        secrets=secrets,
        kv_version=args.kv_version,
        export_token=args.export_token,
        revoke=args.revoke,
        http=_creds.policy_from_args(args),
    )
    return _creds.run_exchange(args, provider)
