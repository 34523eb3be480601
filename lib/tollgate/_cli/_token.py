"""``tollgate token``: show what the job's OIDC token says, to write trust conditions from.

The token itself is never printed: only its claims (decoded without verifying the
signature), the trust condition each cloud would need to accept exactly this token, and
warnings about its expiry and subject.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tollgate.credentials.claims import TokenClaims

_PERSONAL = ("user_email", "user_identities")
"""GitLab claims that identify a person; job logs are widely readable."""


def register(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add the ``token`` subcommand."""
    parser = subcommands.add_parser(
        "token",
        parents=[common],
        help="show the claims of the job's OIDC token and the trust conditions they match",
        description=(
            "Fetch the job's OIDC token through the CI platform (GitHub's token endpoint, "
            "GitLab's id_tokens variable, or a file) and print its claims, decoded without "
            "verifying the signature, never the token itself. For AWS, GCP, Azure and Vault "
            "it shows the trust condition that accepts exactly this token, and it warns about "
            "the token's expiry and subject format."
        ),
    )
    parser.add_argument(
        "--audience",
        default=None,
        metavar="AUD",
        help="the audience to request (GitHub) or whose <AUD>_ID_TOKEN to read (GitLab)",
    )
    parser.add_argument(
        "--token-file", default=None, metavar="PATH", help="read the token from this file"
    )
    parser.add_argument(
        "--token-env", default=None, metavar="NAME", help="read the token from this variable"
    )
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="a table for people (default) or JSON for programs",
    )
    parser.add_argument(
        "--show-personal",
        action="store_true",
        help="also show GitLab's user_email and user_identities claims",
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Fetch the token, print its claims and trust conditions."""
    import json
    import time

    from tollgate.ci import PlatformOptions, get_platform
    from tollgate.ci.local import write_stdout
    from tollgate.credentials.claims import decode_claims

    platform = get_platform(
        args.platform,
        options=PlatformOptions(token_file=args.token_file, token_env=args.token_env),
    )
    claims = decode_claims(platform.id_token(args.audience))
    report = build_report(claims, now=time.time(), show_personal=args.show_personal)
    if args.format == "json":
        text = json.dumps(report, indent=2) + "\n"
    else:
        text = render_table(report)
    # Claims come from outside (branch names, workflow names): keep them inert on GitHub.
    write_stdout(platform.neutralize(text))
    return 0


def build_report(claims: TokenClaims, *, now: float, show_personal: bool) -> dict[str, object]:
    """Everything ``token`` shows, as JSON-ready data."""
    from tollgate.credentials.trust.generate import token_conditions

    shown = claims.as_dict()
    hidden = [] if show_personal else [name for name in _PERSONAL if name in shown]
    for name in hidden:
        del shown[name]
    left = claims.seconds_left(now)
    return {
        "platform": claims.platform,
        "header": {k: v for k, v in claims.header.items() if k in ("alg", "kid", "typ", "x5t")},
        "claims": shown,
        "hidden_claims": hidden,
        "expires_at": _iso(claims.exp),
        "expires_in": None if left is None else int(left),
        "lifetime": claims.lifetime,
        "trust": token_conditions(claims),
        "warnings": warnings(claims, now),
    }


def warnings(claims: TokenClaims, now: float) -> list[str]:
    """What is worth knowing before writing a trust condition from this token."""
    import re

    from tollgate.credentials.claims import expiry_warning
    from tollgate.credentials.trust.generate import GCP_SUBJECT_LIMIT

    found = []
    expiry = expiry_warning(claims, now)
    if expiry:
        found.append(expiry)
    sub = claims.sub or ""
    platform = claims.platform
    if platform == "gitlab":
        found.append(
            "GitLab ID tokens are fixed for the job (exp is the job's timeout) and cannot be "
            "requested again: exchange it early in the job"
        )
    if not sub:
        found.append("the token has no sub claim: no cloud can match it to a trust condition")
    found.extend(
        f"aud {audience!r} is GitHub's default audience, which every action gets when it "
        "names none: request your cloud's audience (--audience sts.amazonaws.com, "
        "api://AzureADTokenExchange) and trust only that"
        for audience in claims.aud
        if re.fullmatch(r"https://github\.com/[^/]+", audience)
    )
    if platform == "github":
        found.extend(_github_subject_notes(sub))
    if sub != sub.lower() and platform in ("github", "gitlab"):
        found.append(
            "the subject has upper-case letters: IAM, Entra and CEL compare case-sensitively, "
            "so copy it exactly as shown"
        )
    if len(sub.encode("utf-8")) > GCP_SUBJECT_LIMIT:
        found.append(
            f"the subject is {len(sub.encode('utf-8'))} bytes long: GCP refuses a "
            f"google.subject over {GCP_SUBJECT_LIMIT} bytes, so map google.subject to a "
            "shorter claim (assertion.repository_id, say)"
        )
    return found


def _github_subject_notes(sub: str) -> list[str]:
    import re

    notes = []
    if re.match(r"repo:[^/:]+@\d+/[^/:]+@\d+:", sub):
        notes.append(
            "this repository issues immutable subjects (repo:OWNER@ID/REPO@ID:...): trust "
            "conditions written with names only never match it"
        )
    if sub.endswith(":pull_request"):
        notes.append(
            "this is a pull request run: do not let such subjects assume roles that deploy or write"
        )
    context = re.sub(r"^repo:[^:]+:", "", sub)
    if sub.startswith("repo:") and not re.fullmatch(
        r"(ref:[^:]+|environment:[^:]+|pull_request)", context
    ):
        notes.append(
            "the subject was customized (include_claim_keys): conditions must follow the "
            "same template"
        )
    if not sub.startswith("repo:") and sub:
        notes.append(
            "the subject does not start with repo:OWNER/REPO (a customized template without "
            "repo): make sure the trust still names the repository somewhere"
        )
    return notes


def render_table(report: dict[str, object]) -> str:
    """The report as aligned text for a terminal or job log."""
    lines = [
        "OIDC token claims (decoded without verifying the signature; the token is not shown)",
        "",
    ]
    claims = report["claims"]
    assert isinstance(claims, dict)
    rows: list[tuple[str, str]] = [("platform", str(report["platform"]))]
    header = report["header"]
    if isinstance(header, dict) and header:
        rows.append(("(header)", " ".join(f"{k}={_cell(v)}" for k, v in header.items())))
    rows.extend(
        (name, _claim_cell(name, claims[name], report)) for name in _STANDARD if name in claims
    )
    rows.extend((name, _cell(claims[name])) for name in sorted(claims) if name not in _STANDARD)
    hidden = report["hidden_claims"]
    if isinstance(hidden, list):
        rows.extend(
            (str(name), "(hidden: personal data; --show-personal shows it)") for name in hidden
        )
    lines.extend(_rows(rows, indent=2))
    trust = report["trust"]
    if isinstance(trust, dict) and trust:
        lines += ["", "Trust conditions this token matches", ""]
        lines.extend(_trust_lines(trust))
    notes = report["warnings"]
    if isinstance(notes, list) and notes:
        lines += ["", "Warnings", ""]
        lines.extend(f"  - {note}" for note in notes)
    return "\n".join(lines) + "\n"


_STANDARD = ("iss", "sub", "aud", "exp", "iat", "nbf")
_TITLES = {
    "aws": "AWS IAM role trust policy",
    "gcp": "GCP workload identity provider",
    "azure": "Azure federated identity credential",
    "vault": "Vault JWT auth role",
}


def _trust_lines(trust: dict[str, object]) -> list[str]:
    lines = []
    for cloud, title in _TITLES.items():
        section = trust.get(cloud)
        if not isinstance(section, dict):
            continue
        lines.append(f"  {title}")
        rows: list[tuple[str, str]] = []
        for key, value in section.items():
            if key == "Condition" and isinstance(value, dict):
                for operator, block in value.items():
                    if isinstance(block, dict):
                        rows.extend(
                            (f"{operator} {name}", _cell(item)) for name, item in block.items()
                        )
            elif key == "Principal" and isinstance(value, dict):
                rows.extend((f"Principal.{k}", _cell(v)) for k, v in value.items())
            else:
                rows.append((key, _cell(value)))
        lines.extend(_rows(rows, indent=4))
    return lines


def _rows(rows: list[tuple[str, str]], *, indent: int) -> list[str]:
    width = max((len(name) for name, _ in rows), default=0)
    return [f"{' ' * indent}{name.ljust(width)}  {value}".rstrip() for name, value in rows]


def _claim_cell(name: str, value: object, report: dict[str, object]) -> str:
    text = _cell(value)
    if name in ("exp", "iat", "nbf") and isinstance(value, int):
        iso = _iso(value)
        text = f"{value} ({iso})" if iso else text
        left = report.get("expires_in")
        if name == "exp" and isinstance(left, int):
            from tollgate.credentials.claims import format_duration

            when = f"in {format_duration(left)}" if left > 0 else f"{format_duration(-left)} ago"
            text = f"{text}, {'expires' if left > 0 else 'expired'} {when}"
    return text


def _cell(value: object) -> str:
    """A claim value on one line: strings as they are (control characters escaped)."""
    import json
    import re

    if isinstance(value, str):
        return re.sub(r"[\x00-\x1f\x7f\u2028\u2029]", lambda m: repr(m.group())[1:-1], value)
    return json.dumps(value)


def _iso(value: int | None) -> str | None:
    from datetime import datetime, timezone

    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return None
