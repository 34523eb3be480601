"""``tollgate creds azure``: Entra ID tokens by workload identity federation, no az CLI."""

from __future__ import annotations

import argparse

NAME = "azure"
SUMMARY = "Microsoft Entra ID access tokens by workload identity federation"
DESCRIPTION = (
    "Send the job's OIDC token to Microsoft Entra ID as a federated client assertion "
    "(no az CLI needed), export what the Azure SDKs need, and read Key Vault secrets "
    "into masked variables. Default token audience: api://AzureADTokenExchange."
)
EPILOG = """\
examples:
  # GitHub Actions (permissions: id-token: write)
  tollgate creds azure --client-id 00000000-0000-0000-0000-000000000000 \\
    --tenant-id 11111111-1111-1111-1111-111111111111 \\
    --subscription-id 22222222-2222-2222-2222-222222222222

  # GitLab CI (id_tokens: AZURE_ID_TOKEN: aud: api://AzureADTokenExchange), in this shell
  eval "$(tollgate creds azure --client-id ... --tenant-id ... --token-env AZURE_ID_TOKEN)"

  # a Key Vault secret into a masked variable
  tollgate creds azure --client-id ... --tenant-id ... --secret 'my-vault/db-password | DB_PASSWORD'

  # the az CLI, logged in without a stored secret:
  az login --service-principal -u "$AZURE_CLIENT_ID" -t "$AZURE_TENANT_ID" \\
    --federated-token "$(cat "$AZURE_FEDERATED_TOKEN_FILE")"

environment: AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_SUBSCRIPTION_ID, AZURE_AUTHORITY_HOST
and AZURE_FEDERATED_TOKEN_FILE (a 0600 file holding a fresh OIDC token, in $RUNNER_TEMP or a
private temp dir): azure-identity's WorkloadIdentityCredential / DefaultAzureCredential get
tokens for any resource from these by themselves, until that OIDC token expires (5 minutes
after this step on GitHub; the job's timeout on GitLab). Run this step again when later
steps need longer.
secrets (masked): AZURE_ACCESS_TOKEN (an access token for --scope, about 1 h) and one
variable per --secret.
outputs (non-secret): client_id, tenant_id, subscription_id, expires_at, federated_token_file.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``creds azure``."""
    from tollgate._cli import _creds

    app = parser.add_argument_group("identity")
    app.add_argument("--client-id", required=True, metavar="GUID", help="the app's (client) id")
    app.add_argument("--tenant-id", required=True, metavar="GUID", help="the directory (tenant) id")
    app.add_argument(
        "--subscription-id", default=None, metavar="GUID", help="subscription to export"
    )
    app.add_argument(
        "--authority-host",
        default="https://login.microsoftonline.com",
        metavar="URL",
        help="Entra ID authority (default https://login.microsoftonline.com; national clouds "
        "differ)",
    )
    app.add_argument(
        "--scope",
        default="https://management.azure.com/.default",
        metavar="SCOPE",
        help="resource of AZURE_ACCESS_TOKEN (default https://management.azure.com/.default)",
    )
    _creds.add_secret_argument(
        app,
        metavar="'VAULT/SECRET[/VERSION] | NAME'",
        help_text="read a Key Vault secret (or give its https://... identifier) into masked "
        "variable NAME (default: the secret's name in upper case); repeatable",
    )
    app.add_argument(
        "--key-vault-suffix",
        default="vault.azure.net",
        metavar="DOMAIN",
        help="DNS suffix of VAULT names (default vault.azure.net)",
    )
    app.add_argument(
        "--key-vault-scope",
        default=None,
        metavar="SCOPE",
        help="scope of the Key Vault token (default https://<suffix>/.default)",
    )
    files = parser.add_argument_group("federated token file")
    files.add_argument(
        "--no-token-file",
        dest="token_file_out",
        action="store_false",
        help="do not write AZURE_FEDERATED_TOKEN_FILE",
    )
    _creds.add_credentials_dir_argument(files)
    _creds.add_network_arguments(parser.add_argument_group("network"))
    _creds.add_output_argument(parser)


def main(args: argparse.Namespace) -> int:
    """Build the provider from the options, then exchange and emit."""
    from tollgate._cli import _creds
    from tollgate.credentials.azure import DEFAULT_AUDIENCE, AzureProvider, parse_secret

    suffix = args.key_vault_suffix.strip().strip(".")
    secrets = tuple(parse_secret(spec, suffix) for spec in args.secret)
    _creds.refuse_impossible_output(args, AzureProvider.name, extra_secrets=bool(secrets))
    provider = AzureProvider(
        args.client_id,
        args.tenant_id,
        subscription_id=args.subscription_id,
        token_audience=args.audience or DEFAULT_AUDIENCE,
        authority_host=args.authority_host,
        scope=args.scope,
        secrets=secrets,
        key_vault_scope=args.key_vault_scope or f"https://{suffix}/.default",
        token_file=args.token_file_out,
        credentials_dir=args.credentials_dir,
        http=_creds.policy_from_args(args),
    )
    return _creds.run_exchange(args, provider)
