"""``tollgate creds gcp``: Google Cloud credentials by workload identity federation."""

from __future__ import annotations

import argparse

NAME = "gcp"
SUMMARY = "Google Cloud access / ID tokens by workload identity federation"
DESCRIPTION = (
    "Exchange the job's OIDC token at Google STS, optionally impersonate a service "
    "account, write an external_account credentials file for Google SDKs and read "
    "Secret Manager secrets into masked variables."
)
EPILOG = """\
examples:
  # GitHub Actions (permissions: id-token: write): impersonate a service account
  tollgate creds gcp \\
    --workload-identity-provider projects/123456789/locations/global/workloadIdentityPools/ci/providers/github \\
    --service-account deployer@my-project.iam.gserviceaccount.com

  # GitLab CI (id_tokens: GCP_ID_TOKEN: aud: https://iam.googleapis.com/projects/...), in this shell
  eval "$(tollgate creds gcp --workload-identity-provider projects/... --token-env GCP_ID_TOKEN)"

  # a Secret Manager secret into a masked variable
  tollgate creds gcp --workload-identity-provider projects/... --secret 'my-project/db-password | DB_PASSWORD'

environment: GOOGLE_APPLICATION_CREDENTIALS, CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE and
GOOGLE_GHA_CREDS_PATH name an external_account credentials file (0600, in $RUNNER_TEMP or a
private temp dir, never the workspace) whose credential source is a file holding the OIDC
token, not the runner's token-request bearer; GOOGLE_CLOUD_PROJECT, CLOUDSDK_CORE_PROJECT,
CLOUDSDK_PROJECT, GCLOUD_PROJECT, GCP_PROJECT (--project, or the service account's project).
secrets (masked): CLOUDSDK_AUTH_ACCESS_TOKEN and GOOGLE_OAUTH_ACCESS_TOKEN (the service
account's token, or the federated token without --service-account), GOOGLE_ID_TOKEN with
--token-format id_token, and one variable per --secret.
outputs (non-secret): project_id, service_account, expires_at, credentials_file_path,
workload_identity_provider.

Token lifetimes: the access token lives --lifetime seconds (default 1 h). Google libraries
using the credentials file can run new exchanges only while the OIDC token in it is valid:
5 minutes on GitHub, the job's timeout on GitLab. Run this step again in longer jobs.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``creds gcp``."""
    from tollgate._cli import _creds

    wif = parser.add_argument_group("identity")
    wif.add_argument(
        "--workload-identity-provider",
        required=True,
        metavar="NAME",
        help="projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER",
    )
    wif.add_argument(
        "--service-account",
        default=None,
        metavar="EMAIL",
        help="impersonate this service account (default: use the federated identity directly)",
    )
    wif.add_argument(
        "--project",
        default=None,
        metavar="ID",
        help="project id to export (default: the service account's project)",
    )
    token = parser.add_argument_group("tokens")
    token.add_argument(
        "--token-format",
        choices=("access_token", "id_token"),
        default="access_token",
        help="what to export: an OAuth access token (default) or a service account ID token",
    )
    token.add_argument(
        "--scope",
        action="append",
        default=None,
        metavar="SCOPE",
        help="OAuth scope (repeatable; default https://www.googleapis.com/auth/cloud-platform)",
    )
    token.add_argument(
        "--lifetime",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="service account access token lifetime (default 3600; more needs an org policy)",
    )
    token.add_argument(
        "--delegate",
        action="append",
        default=[],
        metavar="EMAIL",
        help="delegation chain to the service account, in order (repeatable)",
    )
    token.add_argument(
        "--id-token-audience",
        default=None,
        metavar="AUD",
        help="audience of the ID token (--token-format id_token)",
    )
    token.add_argument(
        "--id-token-include-email",
        action="store_true",
        help="put the service account's email in the ID token",
    )
    _creds.add_secret_argument(
        token,
        metavar="'PROJECT/SECRET[/VERSION] | NAME'",
        help_text="read a Secret Manager secret (default version: latest) into masked variable "
        "NAME (default: the secret's name in upper case); repeatable",
    )
    files = parser.add_argument_group("credentials file")
    files.add_argument(
        "--no-credentials-file",
        dest="credentials_file",
        action="store_false",
        help="do not write the external_account credentials file",
    )
    _creds.add_credentials_dir_argument(files)
    endpoints = parser.add_argument_group("endpoints")
    endpoints.add_argument(
        "--universe",
        default="googleapis.com",
        metavar="DOMAIN",
        help="Google Cloud universe domain (default googleapis.com)",
    )
    endpoints.add_argument("--sts-endpoint", default=None, metavar="URL", help="STS token URL")
    endpoints.add_argument(
        "--iam-endpoint", default=None, metavar="URL", help="IAM Credentials base URL"
    )
    endpoints.add_argument(
        "--secret-manager-endpoint", default=None, metavar="URL", help="Secret Manager base URL"
    )
    endpoints.add_argument(
        "--request-reason",
        default=None,
        metavar="TEXT",
        help="sent as X-Goog-Request-Reason (shows in Cloud Audit Logs)",
    )
    _creds.add_network_arguments(parser.add_argument_group("network"))
    _creds.add_output_argument(parser)


def main(args: argparse.Namespace) -> int:
    """Build the provider from the options, then exchange and emit."""
    from tollgate._cli import _creds
    from tollgate.credentials.gcp import CLOUD_PLATFORM_SCOPE, GcpProvider, parse_secret

    secrets = tuple(parse_secret(spec) for spec in args.secret)
    _creds.refuse_impossible_output(args, GcpProvider.name, extra_secrets=bool(secrets))
    provider = GcpProvider(
        args.workload_identity_provider,
        service_account=args.service_account,
        project=args.project,
        token_audience=args.audience,
        token_format=args.token_format,
        scopes=tuple(args.scope or (CLOUD_PLATFORM_SCOPE,)),
        lifetime=args.lifetime,
        delegates=tuple(args.delegate),
        id_token_audience=args.id_token_audience,
        id_token_include_email=args.id_token_include_email,
        secrets=secrets,
        create_credentials_file=args.credentials_file,
        credentials_dir=args.credentials_dir,
        universe=args.universe,
        sts_endpoint=args.sts_endpoint,
        iam_endpoint=args.iam_endpoint,
        secret_manager_endpoint=args.secret_manager_endpoint,
        request_reason=args.request_reason,
        http=_creds.policy_from_args(args),
    )
    return _creds.run_exchange(args, provider)
