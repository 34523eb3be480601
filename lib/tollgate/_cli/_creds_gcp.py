"""``tollgate creds gcp``: Google Cloud credentials by workload identity federation."""

from __future__ import annotations

import argparse

_OUTPUTS = ("env", "shell", "json")

_EPILOG = """\
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


def register(
    providers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    """Add ``creds gcp``."""
    parser = providers.add_parser(
        "gcp",
        parents=parents,
        help="Google Cloud access / ID tokens by workload identity federation",
        description=(
            "Exchange the job's OIDC token at Google STS, optionally impersonate a service "
            "account, write an external_account credentials file for Google SDKs and read "
            "Secret Manager secrets into masked variables."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    token.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="'PROJECT/SECRET[/VERSION] | NAME'",
        help="read a Secret Manager secret (default version: latest) into masked variable "
        "NAME (default: the secret's name in upper case); repeatable",
    )
    files = parser.add_argument_group("credentials file")
    files.add_argument(
        "--no-credentials-file",
        dest="credentials_file",
        action="store_false",
        help="do not write the external_account credentials file",
    )
    files.add_argument(
        "--credentials-dir",
        default=None,
        metavar="DIR",
        help="where to write it (default: $RUNNER_TEMP, else a new private temp dir)",
    )
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
    add_network_arguments(parser)
    parser.add_argument(
        "--output",
        choices=_OUTPUTS,
        default="env",
        help="env: export to later steps (default); shell: print export lines; json: print JSON",
    )
    parser.set_defaults(handler=main)


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """``--ca-bundle``, ``--timeout``, ``--max-attempts``: the names ``creds aws`` uses.

    Shared by the gcp, azure and vault subcommands; read by
    ``tollgate.credentials._http.policy_from_args`` (kept out of that module so building the
    parser does not import it).
    """
    group = parser.add_argument_group("network")
    group.add_argument(
        "--ca-bundle",
        default=None,
        metavar="PATH",
        help="CA certificates to trust (default: $REQUESTS_CA_BUNDLE, else the system's)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="stop retrying after this long (default 60); one attempt waits at most a third "
        "of it, up to 30 s",
    )
    group.add_argument(
        "--max-attempts",
        type=int,
        default=5,
        metavar="N",
        help="attempts per request, the first included (default 5); retried: network errors, "
        "timeouts, HTTP 429 and 5xx. Proxies: HTTPS_PROXY / NO_PROXY",
    )


def main(args: argparse.Namespace) -> int:
    """Build the provider from the options, then exchange and emit."""
    from tollgate._cli._creds import run_exchange
    from tollgate.credentials._http import policy_from_args
    from tollgate.credentials.emit import check_output, output_mode
    from tollgate.credentials.gcp import CLOUD_PLATFORM_SCOPE, GcpProvider, parse_secret

    secrets = tuple(parse_secret(spec) for spec in args.secret)
    check_output("gcp", output_mode(args), args.platform, extra_secrets=bool(secrets))
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
        http=policy_from_args(args),
    )
    return run_exchange(args, provider)
