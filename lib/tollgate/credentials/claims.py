"""Read an OIDC token's header and claims, WITHOUT verifying its signature.

This is for diagnostics only: showing a user what their CI job's token says, and naming
``sub``/``aud``/``iss`` in error messages when a cloud rejects it. Nothing here may be used to
decide whether to trust a token; the cloud that receives it verifies it.

Malformed input raises :class:`~tollgate.errors.ConfigError` with a message that never
repeats any part of the input (it may be a secret that is not a JWT at all).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Literal

from tollgate.errors import ConfigError

__all__ = [
    "TokenClaims",
    "decode_claims",
    "describe",
    "describe_claims",
    "expiry_warning",
    "format_duration",
    "platform_of",
    "token_claims",
    "token_expires_at",
    "token_expiry",
]

PlatformName = Literal["github", "gitlab", "other"]

MAX_TOKEN_LENGTH = 64 * 1024
"""Longer input is refused before decoding: CI tokens are 1-3 KB."""

_STANDARD = ("iss", "sub", "aud", "exp", "iat", "nbf")
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*=*\Z")
_NOT_PRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_DESCRIBE_LIMIT = 200

# Claims only one CI system issues (oidc-anchors.md section 7).
_GITHUB_CLAIMS = frozenset(
    {"repository", "repository_owner", "job_workflow_ref", "workflow_ref", "run_attempt"}
)
_GITLAB_CLAIMS = frozenset(
    {"project_path", "namespace_path", "pipeline_source", "ci_config_ref_uri", "user_login"}
)
_GITHUB_ISSUER = re.compile(
    r"https://(token\.actions\.githubusercontent\.com(/[^/]+)?"
    r"|token\.actions\.[a-z0-9-]+\.ghe\.com|[^/]+/_services/token)/?\Z"
)


def _empty() -> Mapping[str, object]:
    return MappingProxyType({})


@dataclass(frozen=True)
class TokenClaims:
    """The claims of a JWT, decoded without verification (see the module docstring)."""

    iss: str | None = None
    sub: str | None = None
    aud: tuple[str, ...] = ()
    """Always a tuple: a JWT's ``aud`` may be one string or a list."""
    exp: int | None = None
    iat: int | None = None
    nbf: int | None = None
    custom: Mapping[str, object] = field(default_factory=_empty)
    """Every other claim (GitHub's ``repository``, GitLab's ``project_path``, ``jti``...)."""
    header: Mapping[str, object] = field(default_factory=_empty)
    """The JOSE header (``alg``, ``kid``, ``typ``...)."""

    @property
    def platform(self) -> PlatformName:
        """``github``, ``gitlab`` or ``other``: see :func:`platform_of`."""
        return platform_of(self)

    def get(self, name: str) -> str | None:
        """Claim ``name`` as text (numbers and booleans too), or ``None`` if absent or null."""
        if name in _STANDARD:
            value = self.as_dict().get(name)
        else:
            value = self.custom.get(name)
        if value is None or isinstance(value, (dict, list)):
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def as_dict(self) -> dict[str, object]:
        """All claims as in the token (``aud`` as a string when it held one value)."""
        data: dict[str, object] = {}
        if self.iss is not None:
            data["iss"] = self.iss
        if self.sub is not None:
            data["sub"] = self.sub
        if self.aud:
            data["aud"] = self.aud[0] if len(self.aud) == 1 else list(self.aud)
        for name in ("exp", "iat", "nbf"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        data.update(self.custom)
        return data

    @property
    def expires_at(self) -> datetime | None:
        """``exp`` as an aware UTC datetime."""
        return _datetime(self.exp)

    @property
    def issued_at(self) -> datetime | None:
        """``iat`` as an aware UTC datetime."""
        return _datetime(self.iat)

    @property
    def not_before(self) -> datetime | None:
        """``nbf`` as an aware UTC datetime."""
        return _datetime(self.nbf)

    @property
    def lifetime(self) -> int | None:
        """Seconds from ``iat`` to ``exp``, when both are present."""
        if self.exp is None or self.iat is None:
            return None
        return self.exp - self.iat

    def seconds_left(self, now: float | None = None) -> float | None:
        """Seconds until ``exp`` (negative once expired); ``None`` without ``exp``."""
        if self.exp is None:
            return None
        return self.exp - (time.time() if now is None else now)

    def is_expired(self, now: float | None = None, *, leeway: float = 0.0) -> bool:
        """Whether ``exp`` has passed (less ``leeway`` seconds of clock skew)."""
        left = self.seconds_left(now)
        return left is not None and left + leeway <= 0

    def is_not_yet_valid(self, now: float | None = None, *, leeway: float = 0.0) -> bool:
        """Whether ``nbf`` is still in the future (a clock behind the issuer's)."""
        if self.nbf is None:
            return False
        return self.nbf - leeway > (time.time() if now is None else now)

    def describe(self) -> str:
        """One line for error messages: ``sub='...' aud='...' iss='...'``."""
        aud: str
        if not self.aud:
            aud = "<none>"
        elif len(self.aud) == 1:
            aud = _quote(self.aud[0])
        else:
            aud = "[" + ", ".join(_quote(value) for value in self.aud) + "]"
        sub = _quote(self.sub) if self.sub is not None else "<none>"
        iss = _quote(self.iss) if self.iss is not None else "<none>"
        return f"sub={sub} aud={aud} iss={iss}"


def describe(claims: TokenClaims) -> str:
    """:meth:`TokenClaims.describe` as a function."""
    return claims.describe()


def decode_claims(token: str) -> TokenClaims:
    """The header and claims of a compact JWS, WITHOUT verifying its signature.

    Raises :class:`ConfigError` when ``token`` is not a JWT or its parts are not JSON objects
    with well-typed registered claims; the message never contains any part of ``token``.
    """
    text = token.strip()
    if not text:
        raise _malformed("the token is empty")
    if len(text) > MAX_TOKEN_LENGTH:
        raise _malformed(f"the token is {len(text)} characters long, far longer than any JWT")
    parts = text.split(".")
    if len(parts) == 5:
        raise _malformed("the token is an encrypted JWT (JWE, five parts); its claims are sealed")
    if len(parts) != 3:
        raise _malformed(
            f"a JWT has three parts separated by dots; the token has {len(parts)}",
        )
    header = _json_object(parts[0], "header")
    payload = _json_object(parts[1], "payload")
    return _claims_from(header, payload)


def platform_of(claims: TokenClaims) -> PlatformName:
    """Which CI system issued the token, from ``iss``, the ``sub`` format and claim names."""
    iss = claims.iss or ""
    sub = claims.sub or ""
    if _GITHUB_ISSUER.match(iss) or sub.startswith("repo:"):
        return "github"
    if sub.startswith("project_path:") or _GITLAB_CLAIMS & claims.custom.keys():
        return "gitlab"
    if _GITHUB_CLAIMS & claims.custom.keys():
        return "github"
    return "other"


def expiry_warning(
    claims: TokenClaims, now: float | None = None, *, soon: float = 60.0
) -> str | None:
    """A sentence about the token's validity window worth showing, or ``None``."""
    moment = time.time() if now is None else now
    left = claims.seconds_left(moment)
    if claims.is_not_yet_valid(moment):
        assert claims.nbf is not None
        return (
            f"the token is not valid for another {format_duration(claims.nbf - moment)} "
            "(nbf is in the future): this machine's clock is behind the issuer's"
        )
    if left is None:
        return "the token has no exp claim: clouds reject tokens without an expiry"
    if left <= 0:
        return (
            f"the token expired {format_duration(-left)} ago: request a new one right "
            "before each exchange"
        )
    if left <= soon:
        return (
            f"the token expires in {format_duration(left)}: an exchange that starts later "
            "fails (AADSTS700024 on Azure, ExpiredTokenException on AWS)"
        )
    return None


def format_duration(seconds: float) -> str:
    """``4m 59s``, ``2h 3m``, ``12s``: a duration for people."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


# The claims of a token already sent, for the providers' error messages (claims are not
# secret; the token is). None of these raises: a token a service refused may be no JWT at all.


def token_claims(token: str) -> dict[str, Any]:
    """The claims of ``token`` as :meth:`TokenClaims.as_dict` gives them; ``{}`` when it is
    not a readable JWT."""
    try:
        return decode_claims(token).as_dict()
    except ConfigError:
        return {}


def token_expires_at(token: str) -> datetime | None:
    """``token``'s ``exp`` as an aware UTC datetime; ``None`` without one or for a non-JWT."""
    try:
        return decode_claims(token).expires_at
    except ConfigError:
        return None


def token_expiry(token: str) -> str:
    """``2024-01-01T00:05:00Z`` from the token's ``exp``, or ``its exp`` when it has none."""
    from tollgate.credentials._common import format_time

    moment = token_expires_at(token)
    return "its exp" if moment is None else format_time(moment)


def describe_claims(
    claims: Mapping[str, object], present: Iterable[str] = (), required: Iterable[str] = ()
) -> str:
    """Lines ``  name: value``: iss, sub, aud and ``required`` always, ``present`` if set,
    then ``exp`` with how long ago it passed or how long is left."""
    from tollgate._http import clean_text
    from tollgate.credentials._common import format_time

    lines: list[str] = []
    seen: set[str] = set()
    wanted = [(name, True) for name in ("iss", "sub", "aud", *required)]
    wanted += [(name, False) for name in present]
    for name, always in wanted:
        if name in seen or (name not in claims and not always):
            continue
        seen.add(name)
        if name not in claims:
            lines.append(f"  {name}: (not in the token)")
            continue
        value = claims[name]
        shown = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"  {name}: {clean_text(str(shown), _DESCRIBE_LIMIT)}")
    expiry = _datetime(_number(claims.get("exp")))
    if expiry is not None:
        left = expiry.timestamp() - time.time()
        state = (
            f"expired {format_duration(-left)} ago"
            if left < 0
            else f"expires in {format_duration(left)}"
        )
        lines.append(f"  exp: {format_time(expiry)} ({state})")
    return "\n".join(lines)


# Decoding


def _malformed(problem: str) -> ConfigError:
    return ConfigError(
        f"cannot read the OIDC token: {problem}",
        hint=(
            "Pass the token itself (three base64url parts joined by dots, starting with "
            "'eyJ'), not a file name, a JSON response or a quoted string."
        ),
    )


def _json_object(segment: str, what: str) -> dict[str, object]:
    if not segment:
        raise _malformed(f"its {what} is empty")
    if not _SEGMENT.match(segment):
        raise _malformed(f"its {what} is not base64url (it has characters outside A-Z a-z 0-9 - _)")
    try:
        raw = base64.urlsafe_b64decode(segment.rstrip("=") + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        # binascii's messages quote nothing of the input, but say no more than needed.
        raise _malformed(f"its {what} is not valid base64url") from None
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _malformed(f"its {what} does not decode to UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise _malformed(f"its {what} is not JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(value, dict):
        raise _malformed(f"its {what} is JSON but not an object")
    return value


def _claims_from(header: dict[str, object], payload: dict[str, object]) -> TokenClaims:
    iss = _text_claim(payload, "iss")
    sub = _text_claim(payload, "sub")
    aud = _audience(payload.get("aud"))
    times = {name: _time_claim(payload, name) for name in ("exp", "iat", "nbf")}
    custom = {key: value for key, value in payload.items() if key not in _STANDARD}
    return TokenClaims(
        iss=iss,
        sub=sub,
        aud=aud,
        exp=times["exp"],
        iat=times["iat"],
        nbf=times["nbf"],
        custom=MappingProxyType(custom),
        header=MappingProxyType(dict(header)),
    )


def _text_claim(payload: Mapping[str, object], name: str) -> str | None:
    value = payload.get(name)
    if value is None or isinstance(value, str):
        return value
    raise _malformed(f"its {name!r} claim is a {_json_type(value)}, not a string")


def _audience(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(item for item in value if isinstance(item, str))
    raise _malformed("its 'aud' claim is neither a string nor a list of strings")


def _time_claim(payload: Mapping[str, object], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    # bool is an int in Python but never a NumericDate.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _malformed(f"its {name!r} claim is a {_json_type(value)}, not a number of seconds")
    if value != value or value in (float("inf"), float("-inf")):
        raise _malformed(f"its {name!r} claim is not a finite number")
    return int(value)


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null"


# Formatting


def _number(value: object) -> int | None:
    """A NumericDate claim's value, or ``None`` when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return int(value)
    except (OverflowError, ValueError):  # infinity, NaN
        return None


def _datetime(value: int | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _quote(value: str) -> str:
    """``value`` quoted on one line: control characters escaped, long values cut."""
    text = _NOT_PRINTABLE.sub(_escape, value)
    if len(text) > _DESCRIBE_LIMIT:
        text = text[: _DESCRIBE_LIMIT - 3] + "..."
    return "'" + text.replace("'", "\\'") + "'"
