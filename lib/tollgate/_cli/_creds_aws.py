"""``tollgate creds aws``: assume an IAM role with the job's OIDC token."""

from __future__ import annotations

import argparse

_OUTPUTS = ("env", "shell", "profile", "credential-process", "json")

NAME = "aws"
SUMMARY = "temporary AWS keys from STS AssumeRoleWithWebIdentity"
DESCRIPTION = (
    "Exchange the job's OIDC token for temporary AWS keys (STS "
    "AssumeRoleWithWebIdentity), optionally chain to further roles and read Secrets "
    "Manager secrets into masked variables."
)
EPILOG = """\
examples:
  # GitHub Actions (permissions: id-token: write): keys for the next steps
  tollgate creds aws --role-arn arn:aws:iam::123456789012:role/deploy --region eu-west-1

  # GitLab CI (id_tokens: AWS_ID_TOKEN: aud: sts.amazonaws.com), in this shell
  eval "$(tollgate creds aws --role-arn ARN --region eu-west-1 --token-env AWS_ID_TOKEN)"

  # two accounts in one job, as named profiles
  tollgate creds aws --role-arn ARN1 --region eu-west-1 --profile build
  tollgate creds aws --role-arn ARN2 --region eu-west-1 --profile prod

  # a secret into a masked variable (SECRET_ID[#JSON_KEY] [| NAME], as for gcp, azure, vault)
  tollgate creds aws --role-arn ARN --region eu-west-1 --secret 'prod/db#password | DB_PASSWORD'

outputs (non-secret): aws-account-id, aws-arn (the assumed role's session ARN),
aws-expiration; on GitLab written as aws_account_id, ... to the dotenv report.

Only throttling, IdP communication errors, "Couldn't retrieve verification key", HTTP 5xx and
network errors are retried; a rejection (AccessDenied, InvalidIdentityToken, ...) fails at once
with exit status 2 and the token's iss/aud/sub. Proxies: HTTPS_PROXY / NO_PROXY; custom CA:
--ca-bundle or AWS_CA_BUNDLE.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``creds aws``."""
    from tollgate._cli import _creds

    role = parser.add_argument_group("role")
    role.add_argument("--role-arn", required=True, metavar="ARN", help="the IAM role to assume")
    role.add_argument(
        "--region",
        default=None,
        metavar="REGION",
        help="the STS region, also exported as AWS_REGION (default: $AWS_REGION)",
    )
    role.add_argument(
        "--session-name",
        default=None,
        metavar="NAME",
        help="role session name (default: GitHubActions-<run id> / GitLab-<project>-<pipeline>)",
    )
    role.add_argument(
        "--duration",
        type=int,
        default=None,
        metavar="SECONDS",
        help="session lifetime, 900-43200 (default 3600; chained roles: at most 3600)",
    )
    role.add_argument(
        "--chain-role-arn",
        action="append",
        default=[],
        metavar="ARN",
        help="then assume this role with the keys obtained so far (repeatable, in order)",
    )
    role.add_argument(
        "--session-policy",
        default=None,
        metavar="FILE",
        help="an IAM policy document (JSON file) that narrows the final session",
    )
    role.add_argument(
        "--managed-policy-arn",
        action="append",
        default=[],
        metavar="ARN",
        help="a managed policy that narrows the final session (repeatable)",
    )
    role.add_argument(
        "--allowed-account-id",
        action="append",
        default=[],
        metavar="ID",
        help="fail unless the final credentials are for this account (repeatable, or a,b)",
    )
    _creds.add_secret_argument(
        role,
        metavar="'SECRET_ID[#KEY] [| NAME]'",
        help_text=(
            "read a Secrets Manager secret (name or ARN; #KEY: one key of a JSON secret) "
            "into masked variable NAME (default: named after the secret and key; "
            "NAME=SECRET_ID[#KEY] works too; repeatable)"
        ),
    )
    network = parser.add_argument_group("network")
    network.add_argument(
        "--sts-endpoint",
        default=None,
        metavar="URL",
        help="STS endpoint URL (default: the regional endpoint, or $AWS_ENDPOINT_URL_STS)",
    )
    _creds.add_network_arguments(
        network,
        ca_bundle="CA certificates to verify AWS with (default: $AWS_CA_BUNDLE, else built in)",
        timeout="give up after this long, all hops and retries included (default 60)",
        max_attempts="attempts per AWS call, the first included (default 5)",
    )
    output = parser.add_argument_group("output")
    _creds.add_output_argument(
        output,
        choices=_OUTPUTS,
        default=None,
        help_text="how the job gets the keys (default: env; profile when --profile is given)",
    )
    output.add_argument(
        "--profile",
        default=None,
        metavar="NAME",
        help="profile name for --output profile (default: default)",
    )
    output.add_argument(
        "--profile-dir",
        default=None,
        metavar="DIR",
        help="where --output profile writes (default: a private directory in the job's temp dir)",
    )


def main(args: argparse.Namespace) -> int:
    """Build the provider from the options, then exchange and emit."""
    from tollgate._cli import _creds
    from tollgate.credentials.aws import AwsProvider, RetryPolicy, SecretRef

    if args.output is None:
        args.output = "profile" if args.profile else "env"
    secrets = [SecretRef.parse(text) for text in args.secret]
    _creds.refuse_impossible_output(args, AwsProvider.name, extra_secrets=bool(secrets))
    provider = AwsProvider(
        args.role_arn,
        region=args.region,
        audience=args.audience,
        session_name=args.session_name,
        duration=args.duration,
        sts_endpoint=args.sts_endpoint,
        chain_role_arns=args.chain_role_arn,
        session_policy=_read_policy(args.session_policy),
        managed_policy_arns=args.managed_policy_arn,
        secrets=secrets,
        allowed_account_ids=[
            account.strip()
            for value in args.allowed_account_id
            for account in value.split(",")
            if account.strip()
        ],
        ca_bundle=args.ca_bundle,
        retry=RetryPolicy(max_attempts=args.max_attempts, budget=args.timeout),
    )
    return _creds.run_exchange(args, provider)


def _read_policy(path: str | None) -> str | None:
    from tollgate.errors import UsageError

    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise UsageError(f"cannot read the session policy {path}: {reason}") from None
