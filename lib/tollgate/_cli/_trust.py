"""``tollgate trust lint|generate``: check or write the cloud side of OIDC trust."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tollgate._cli._help import RawDescriptionHelpFormatter

if TYPE_CHECKING:
    from tollgate.credentials.trust import LintResult
    from tollgate.credentials.trust.findings import Severity
    from tollgate.credentials.trust.generate import TrustSpec

_SEVERITIES = ("info", "low", "medium", "high", "critical")
_ROLES = ("auto", "unknown", "read-only", "deploy", "production")
_CLOUDS = ("aws", "gcp", "azure")

_LINT_EPILOG = """\
what it reads (detected from the content, or --cloud):
  aws    an IAM role trust policy, or `aws iam get-role` output
  gcp    a CEL attribute condition, or `gcloud iam workload-identity-pools providers
         describe --format json` output
  azure  a federated identity credential (or a list, or Graph's {"value": [...]}),
         or a claimsMatchingExpression

exit status: 1 when a finding is at or above --fail-on, 0 otherwise, 2 on malformed
input (the message names the JSON path). `tollgate trust checks` lists the checks.
"""


def register(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add ``trust`` with its ``lint``, ``generate`` and ``checks`` actions."""
    parser = subcommands.add_parser(
        "trust",
        parents=[common],
        help="lint or generate OIDC trust policies (AWS, GCP, Azure)",
        description=(
            "Check who an AWS IAM trust policy, a GCP workload identity provider or an Azure "
            "federated identity credential lets in, or write one that lets in exactly one "
            "repository's ref or environment."
        ),
    )
    actions = parser.add_subparsers(dest="trust_action", metavar="ACTION", required=True)
    _register_lint(actions, common)
    _register_generate(actions, common)
    checks = actions.add_parser(
        "checks", parents=[common], help="list the lint checks with their default severity"
    )
    checks.set_defaults(handler=checks_main)


def _register_lint(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    lint = actions.add_parser(
        "lint",
        parents=[common],
        help="find what lets the wrong repository in",
        description=(
            "Flag trust that lets the wrong repository in: no subject condition, wildcards "
            "that match other owners or repositories, any-ref and pull request subjects, "
            "missing or shared audiences, conditions for the wrong issuer, subjects that "
            "GitHub or GitLab never issue, and case-sensitivity traps."
        ),
        epilog=_LINT_EPILOG,
        formatter_class=RawDescriptionHelpFormatter,
    )
    lint.add_argument("files", nargs="+", metavar="FILE", help="the file to check ('-': stdin)")
    lint.add_argument("--cloud", choices=("auto", *_CLOUDS), default="auto")
    lint.add_argument(
        "--role",
        choices=_ROLES,
        default="auto",
        help=(
            "what the role may do; decides how bad pull request and environment-less trust "
            "is (auto: from the role's name in `aws iam get-role` output)"
        ),
    )
    lint.add_argument(
        "--fail-on",
        choices=_SEVERITIES,
        default="medium",
        help="exit 1 when a finding is at or above this severity (default: medium)",
    )
    lint.add_argument("--format", choices=("text", "json"), default="text")
    lint.add_argument(
        "--ignore", action="append", default=[], metavar="ID", help="skip a check (repeatable)"
    )
    lint.set_defaults(handler=lint_main)


def _register_generate(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    generate = actions.add_parser(
        "generate",
        parents=[common],
        help="print least-privilege trust for one repository",
        description=(
            "Print trust that lets in exactly one repository's ref(s) or environment(s) with "
            "one audience: an IAM trust policy (aws), a CEL attribute condition or provider "
            "settings (gcp), or federated identity credentials (azure)."
        ),
    )
    generate.add_argument("cloud", choices=_CLOUDS)
    who = generate.add_mutually_exclusive_group(required=True)
    who.add_argument("--repo", metavar="OWNER/REPO", help="a GitHub repository")
    who.add_argument("--project", metavar="GROUP/PROJECT", help="a GitLab project")
    generate.add_argument(
        "--ref",
        action="append",
        default=[],
        metavar="REF",
        help="a branch (main) or full ref (refs/tags/v1); repeatable",
    )
    generate.add_argument(
        "--environment", action="append", default=[], metavar="NAME", help="repeatable"
    )
    generate.add_argument(
        "--audience",
        default=None,
        metavar="AUD",
        help="default: sts.amazonaws.com (aws), the provider's name (gcp), "
        "api://AzureADTokenExchange (azure)",
    )
    generate.add_argument("--gitlab-url", default=None, metavar="URL", help="default gitlab.com")
    generate.add_argument(
        "--issuer", default=None, metavar="URL", help="GitHub's issuer (GHEC, GHE.com, GHES)"
    )
    generate.add_argument("--account-id", default=None, metavar="ID", help="aws: the account")
    generate.add_argument("--owner-id", default=None, metavar="ID", help="GitHub owner's ID")
    generate.add_argument("--repo-id", default=None, metavar="ID", help="GitHub repository ID")
    generate.add_argument("--project-id", default=None, metavar="ID", help="GitLab project ID")
    generate.add_argument(
        "--immutable-subject",
        action="store_true",
        help="write repo:OWNER@ID/REPO@ID:... (needs --owner-id and --repo-id)",
    )
    generate.add_argument(
        "--format",
        choices=("json", "cel"),
        default=None,
        help="gcp: cel (default, the attribute condition) or json (provider settings)",
    )
    generate.set_defaults(handler=generate_main)


def lint_main(args: argparse.Namespace) -> int:
    """Lint every file; exit 1 when a finding reaches ``--fail-on``."""
    import dataclasses
    import json

    from tollgate.ci import get_platform
    from tollgate.ci.local import write_stdout
    from tollgate.credentials.trust import lint
    from tollgate.credentials.trust.findings import CHECKS, RoleKind, Severity
    from tollgate.errors import UsageError

    unknown = sorted(set(args.ignore) - set(CHECKS))
    if unknown:
        raise UsageError(
            f"unknown check id(s) for --ignore: {', '.join(unknown)}",
            hint="`tollgate trust checks` lists them",
        )
    threshold = Severity(args.fail_on)
    results = []
    for name in args.files:
        result = lint(
            _read(name),
            source="<stdin>" if name == "-" else name,
            cloud=None if args.cloud == "auto" else args.cloud,
            role_kind=RoleKind(args.role),
        )
        kept = tuple(f for f in result.findings if f.id not in args.ignore)
        results.append(dataclasses.replace(result, findings=kept))
    if args.format == "json":
        text = json.dumps([_result_json(r, threshold) for r in results], indent=2) + "\n"
    else:
        text = "".join(_result_text(r, threshold) for r in results)
    write_stdout(get_platform(args.platform).neutralize(text))
    return 1 if any(r.fails(threshold) for r in results) else 0


def generate_main(args: argparse.Namespace) -> int:
    """Print the trust for one repository."""
    import json
    import logging

    from tollgate.ci.local import write_stdout
    from tollgate.credentials.trust import generate as g

    spec = _spec(args)
    fmt = args.format or ("cel" if args.cloud == "gcp" else "json")
    if fmt == "cel" and args.cloud != "gcp":
        raise _usage("--format cel is for gcp only")
    if args.account_id and args.cloud != "aws":
        raise _usage("--account-id is for aws only")
    output: object
    if args.cloud == "aws":
        output = g.aws_policy(spec, account_id=args.account_id)
        if args.account_id is None:
            logging.getLogger("tollgate").info(
                "replace %s in the policy with your account's ID (or pass --account-id)",
                g.ACCOUNT_PLACEHOLDER,
            )
    elif args.cloud == "gcp":
        output = g.gcp_condition(spec) if fmt == "cel" else g.gcp_provider(spec)
    else:
        credentials = g.azure_credentials(spec)
        output = credentials[0] if len(credentials) == 1 else credentials
    text = output if isinstance(output, str) else json.dumps(output, indent=2)
    write_stdout(text + "\n")
    return 0


def checks_main(args: argparse.Namespace) -> int:
    """List the checks."""
    from tollgate.ci.local import write_stdout
    from tollgate.credentials.trust.findings import CHECKS

    width = max(len(name) for name in CHECKS)
    lines = [
        f"{name.ljust(width)}  {check.severity.value:<8}  {check.title}"
        for name, check in CHECKS.items()
    ]
    write_stdout("\n".join(lines) + "\n")
    return 0


def _spec(args: argparse.Namespace) -> TrustSpec:
    from tollgate.credentials.trust import generate as g

    if args.repo is not None:
        if args.gitlab_url or args.project_id:
            raise _usage("--gitlab-url and --project-id are for --project (GitLab)")
        return g.github_spec(
            args.repo,
            refs=tuple(args.ref),
            environments=tuple(args.environment),
            audience=args.audience,
            owner_id=args.owner_id,
            repo_id=args.repo_id,
            immutable_subject=args.immutable_subject,
            issuer=args.issuer,
        )
    if args.issuer or args.owner_id or args.repo_id or args.immutable_subject:
        raise _usage(
            "--issuer, --owner-id, --repo-id and --immutable-subject are for --repo (GitHub)"
        )
    return g.gitlab_spec(
        args.project,
        refs=tuple(args.ref),
        environments=tuple(args.environment),
        audience=args.audience,
        gitlab_url=args.gitlab_url,
        project_id=args.project_id,
    )


def _usage(message: str) -> Exception:
    from tollgate.errors import UsageError

    return UsageError(message, hint="see `tollgate trust generate --help`")


def _read(name: str) -> str:
    import sys

    from tollgate.errors import UsageError

    try:
        if name == "-":
            return sys.stdin.buffer.read().decode("utf-8")
        with open(name, "rb") as handle:
            return handle.read().decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{name}: not UTF-8 text") from None
    except OSError as error:
        raise UsageError(f"cannot read {name}: {error.strerror}") from None


def _result_json(result: LintResult, threshold: Severity) -> dict[str, object]:
    return {
        "file": result.source,
        "cloud": result.cloud,
        "role": result.role_kind.value,
        "fails": result.fails(threshold),
        "findings": [f.as_dict() for f in result.findings],
    }


def _result_text(result: LintResult, threshold: Severity) -> str:
    import textwrap

    if not result.findings:
        return f"{result.source}: {result.cloud} trust: no findings\n"
    failing = sum(f.severity.rank >= threshold.rank for f in result.findings)
    lines = [
        f"{result.source}: {result.cloud} trust (role: {result.role_kind.value}): "
        f"{len(result.findings)} finding(s), {failing} at or above {threshold.value}"
    ]
    for f in result.findings:
        lines.append(f"  {f.severity.value.upper():<8}  {f.id}  at {f.path}")
        lines.extend(
            textwrap.wrap(f.message, width=96, initial_indent="    ", subsequent_indent="    ")
        )
    return "\n".join(lines) + "\n"
