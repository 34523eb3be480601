"""The CI platform layer: GitHub Actions, GitLab CI and a developer's terminal.

:func:`get_platform` picks the implementation of :class:`~tollgate.ci.interface.Platform`;
the small validators below are shared by the three implementations. Importing this package
is cheap, since ``tollgate redact`` imports it on every CI step just to :func:`detect` the
platform: the interface loads on first use of its names, the implementations (and
``requests``) only when a platform is asked for.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tollgate.errors import UsageError

if TYPE_CHECKING:
    from tollgate.ci.interface import Annotation, AnnotationLevel, Platform, PlatformOptions

__all__ = [
    "PLATFORM_NAMES",
    "Annotation",
    "AnnotationLevel",
    "Platform",
    "PlatformOptions",
    "detect",
    "get_platform",
]

PLATFORM_NAMES = ("github", "gitlab", "local")
"""The names :func:`get_platform` accepts, besides ``auto``."""

_INTERFACE_NAMES = frozenset(("Annotation", "AnnotationLevel", "Platform", "PlatformOptions"))
_OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BASE64URL_PART = r"[A-Za-z0-9_-]+=*"
_JWT = re.compile(rf"{_BASE64URL_PART}\.{_BASE64URL_PART}\.{_BASE64URL_PART}\Z")


def __getattr__(name: str) -> Any:
    """The interface's names, loaded on first use (PEP 562)."""
    if name in _INTERFACE_NAMES:
        from tollgate.ci import interface

        return getattr(interface, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def detect(environ: Mapping[str, str] | None = None) -> str:
    """``github``, ``gitlab`` or ``local``, from the variables each CI system always sets."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_ACTIONS") == "true":
        return "github"
    if env.get("GITLAB_CI") == "true":
        return "gitlab"
    return "local"


def get_platform(
    name: str | None = None,
    *,
    options: PlatformOptions | None = None,
    environ: Mapping[str, str] | None = None,
) -> Platform:
    """The platform called ``name`` (``None`` or ``auto``: the one we are running on)."""
    chosen = detect(environ) if name in (None, "auto") else name
    from tollgate.ci.interface import PlatformOptions

    opts = options or PlatformOptions()
    if chosen == "github":
        from tollgate.ci.github import GitHubPlatform

        return GitHubPlatform(opts, environ=environ)
    if chosen == "gitlab":
        from tollgate.ci.gitlab import GitLabPlatform

        return GitLabPlatform(opts, environ=environ)
    if chosen == "local":
        from tollgate.ci.local import LocalPlatform

        return LocalPlatform(opts, environ=environ)
    raise UsageError(
        f"unknown platform {chosen!r}",
        hint=f"choose one of: auto, {', '.join(PLATFORM_NAMES)}",
    )


# Shared by the implementations.


def validate_output_name(name: str) -> None:
    """Refuse an output name the CI systems would reject or misparse."""
    if not _OUTPUT_NAME.match(name):
        raise UsageError(
            f"{name!r} is not a valid output name",
            hint="use letters, digits, '_' and '-', starting with a letter or '_'",
        )


def is_env_name(name: str) -> bool:
    """Whether a shell could ``export`` ``name``: letters, digits and ``_``, no digit first."""
    return bool(_ENV_NAME.match(name))


def validate_env_name(name: str, context: str = "") -> None:
    """Refuse an environment variable name a shell could not ``export``.

    ``context`` starts the message (``--secret 'x | 1X': ``), naming where the name came from.
    """
    if not is_env_name(name):
        raise UsageError(
            f"{context}{name!r} is not a valid environment variable name",
            hint="use letters, digits and '_', starting with a letter or '_'",
        )


def refuse_secret_output(name: str, value: str) -> None:
    """Refuse to publish an output that holds a secret this process has masked."""
    from tollgate.masking.secrets import process_secrets

    if process_secrets().contains_secret(value):
        raise UsageError(
            f"output {name!r} contains a masked secret; tollgate does not publish secrets "
            "as outputs",
            hint=(
                "GitHub silently drops such an output ('Skip output since it may contain "
                "secret') and GitLab would publish it in clear.\n"
                "Keep the secret in this job, or export it as a secret environment variable."
            ),
        )


def is_jwt(value: str) -> bool:
    """Whether ``value`` has the shape of a JWT: three base64url parts joined by dots."""
    return bool(_JWT.match(value))


def reject_nul(name: str, value: str) -> None:
    """Refuse a value no environment variable or text file of the runner can carry."""
    if "\0" in value:
        raise UsageError(
            f"the value for {name!r} contains a NUL character",
            hint="environment variables and CI files cannot hold NUL; encode the value first",
        )
