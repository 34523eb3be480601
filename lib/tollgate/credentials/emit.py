"""Hand credentials to the job: masks first, then the chosen output mode, then the facts.

Every secret value is masked before anything else is written. Then, by
:class:`~tollgate.credentials.interface.OutputMode`:

- ``env``: ``Platform.export_env`` (GitHub: ``$GITHUB_ENV``; GitLab and local: ``export``
  lines on stdout for ``eval "$(tollgate creds ...)"``);
- ``shell``: ``export NAME='value'`` lines on stdout, on every platform;
- ``json``: one object on stdout: ``{"provider", "secrets", "environment", "facts",
  "expires_at"}``;
- ``profile`` (AWS): a named profile in ``config`` / ``credentials`` files (0600, written
  atomically, other profiles kept) in a private directory under the job's temp dir, and
  ``AWS_CONFIG_FILE`` / ``AWS_SHARED_CREDENTIALS_FILE`` / ``AWS_PROFILE`` exported;
- ``credential-process`` (AWS): exactly the JSON an AWS SDK's ``credential_process`` reads.

Facts become step outputs (GitLab: ``-`` in names becomes ``_``, as dotenv keys require).
On a terminal (``local``) outputs would be ``name=value`` lines mixed into stdout, which is
data in every mode there, so facts are logged on stderr instead. A one-line summary, with no
secret in it, goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import stat
import sys
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from tollgate.ci import reject_nul, validate_env_name
from tollgate.ci.interface import Platform
from tollgate.credentials._common import format_time
from tollgate.credentials.interface import Credentials, OutputMode
from tollgate.errors import ConfigError, UsageError

_logger = logging.getLogger(__name__)

AWS_PROFILE_KEYS = {
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_SESSION_TOKEN": "aws_session_token",
}
"""Environment name -> key in an AWS shared credentials file."""
AWS_ONLY_MODES = frozenset({OutputMode.PROFILE, OutputMode.CREDENTIAL_PROCESS})
DEFAULT_PROFILE = "default"
PROFILE_DIR_NAME = "tollgate-aws"

_REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
_PROFILE_NAME = re.compile(r"[\w+=,.@-]{1,64}\Z", re.ASCII)
# Modes that put secret values on stdout on this platform (and so must not reach a terminal).
_STDOUT_SECRET_MODES = frozenset({OutputMode.SHELL, OutputMode.JSON, OutputMode.CREDENTIAL_PROCESS})


def emit(credentials: Credentials, platform: Platform, args: argparse.Namespace) -> None:
    """Mask, deliver in ``args.output`` mode, publish facts, and log a summary."""
    mode = output_mode(args)
    # Masks first: from here on every line of the log (ours, the SDK's, the job's) is covered.
    for value in credentials.secrets.values():
        platform.add_mask(value)
    other = set(credentials.secrets) - set(AWS_PROFILE_KEYS)
    check_output(credentials.provider, mode, platform.name, extra_secrets=bool(other))
    if mode is OutputMode.ENV:
        where = _export(credentials, platform)
    elif mode is OutputMode.SHELL:
        _write_stdout(_shell_lines({**credentials.secrets, **credentials.environment}))
        where = "printed as export lines on stdout"
    elif mode is OutputMode.JSON:
        _write_stdout(json.dumps(_json_document(credentials)) + "\n")
        where = "printed as JSON on stdout"
    elif mode is OutputMode.PROFILE:
        where = _profile(credentials, platform, args)
    else:
        _write_stdout(json.dumps(credential_process_document(credentials)) + "\n")
        where = "printed for credential_process"
    _publish_facts(credentials, platform)
    _logger.info("%s", _summary(credentials, platform, where))


def output_mode(args: argparse.Namespace) -> OutputMode:
    """``args.output`` as an :class:`OutputMode` (``env`` when unset)."""
    value = getattr(args, "output", None) or OutputMode.ENV
    try:
        return OutputMode(value)
    except ValueError:
        choices = ", ".join(mode.value for mode in OutputMode)
        raise UsageError(
            f"unknown output mode {value!r}", hint=f"choose one of: {choices}"
        ) from None


def check_output(
    provider: str, mode: OutputMode, platform_name: str, *, extra_secrets: bool = False
) -> None:
    """Refuse a mode that cannot carry these credentials, before anything is exchanged.

    ``extra_secrets``: the credentials hold secrets besides AWS keys (fetched secrets).
    """
    if mode in AWS_ONLY_MODES and provider != "aws":
        raise UsageError(f"--output {mode} is for AWS credentials only, not {provider}")
    if mode is OutputMode.CREDENTIAL_PROCESS and extra_secrets:
        raise UsageError(
            "--output credential-process prints AWS keys only; it cannot carry other secrets",
            hint="fetch secrets in a separate call with --output env, shell or json",
        )
    on_stdout = mode in _STDOUT_SECRET_MODES or (
        mode is OutputMode.ENV and platform_name != "github"
    )
    if on_stdout and _stdout_is_terminal():
        raise UsageError(
            f"--output {mode} prints secrets on stdout, which is a terminal",
            hint=(
                "capture the output instead of showing it, e.g.\n"
                '  eval "$(tollgate creds ...)"\n'
                "or redirect it to a file or another program"
            ),
        )


def credential_process_document(credentials: Credentials) -> dict[str, object]:
    """What an AWS SDK's ``credential_process`` expects (``Version`` 1)."""
    secrets = _aws_keys(credentials)
    document: dict[str, object] = {
        "Version": 1,
        "AccessKeyId": secrets["AWS_ACCESS_KEY_ID"],
        "SecretAccessKey": secrets["AWS_SECRET_ACCESS_KEY"],
        "SessionToken": secrets["AWS_SESSION_TOKEN"],
    }
    if credentials.expires_at is not None:
        document["Expiration"] = format_time(credentials.expires_at)
    return document


def profile_directory(platform: Platform, args: argparse.Namespace) -> Path:
    """Where ``--output profile`` writes: ``args.profile_dir``, or a private directory under
    the job's temp dir (GitHub ``$RUNNER_TEMP``, emptied after every job; elsewhere the
    system temp dir, one directory per GitLab job or per local user)."""
    explicit = getattr(args, "profile_dir", None)
    if explicit:
        return Path(explicit)
    environ = _environ(platform)
    runner_temp = environ.get("RUNNER_TEMP")
    if platform.name == "github" and runner_temp:
        return Path(runner_temp) / PROFILE_DIR_NAME
    base = Path(tempfile.gettempdir())
    job = environ.get("CI_JOB_ID")
    if platform.name == "gitlab" and job:
        return base / f"{PROFILE_DIR_NAME}-job{job}"
    return base / f"{PROFILE_DIR_NAME}-{_uid()}"


# Modes


def _export(credentials: Credentials, platform: Platform) -> str:
    for name, value in credentials.secrets.items():
        platform.export_env(name, value, secret=True)
    for name, value in credentials.environment.items():
        platform.export_env(name, value, secret=False)
    if platform.name == "github":
        return "exported to later steps ($GITHUB_ENV)"
    return "printed as export lines on stdout"


def _shell_lines(variables: Mapping[str, str]) -> str:
    from tollgate.ci.local import shell_quote

    lines = []
    for name, value in variables.items():
        validate_env_name(name)
        reject_nul(name, value)
        lines.append(f"export {name}={shell_quote(value)}\n")
    return "".join(lines)


def _json_document(credentials: Credentials) -> dict[str, object]:
    expires = credentials.expires_at
    return {
        "provider": credentials.provider,
        "secrets": dict(credentials.secrets),
        "environment": dict(credentials.environment),
        "facts": dict(credentials.facts),
        "expires_at": None if expires is None else format_time(expires),
    }


def _profile(credentials: Credentials, platform: Platform, args: argparse.Namespace) -> str:
    profile = getattr(args, "profile", None) or DEFAULT_PROFILE
    if not _PROFILE_NAME.match(profile):
        raise UsageError(
            f"{profile!r} is not a usable profile name",
            hint="use up to 64 letters, digits and + = , . @ _ -",
        )
    directory = profile_directory(platform, args)
    _private_directory(directory, default=not getattr(args, "profile_dir", None))
    keys = _aws_keys(credentials)
    credentials_file = directory / "credentials"
    config_file = directory / "config"
    _update_ini(
        credentials_file, profile, {AWS_PROFILE_KEYS[name]: keys[name] for name in AWS_PROFILE_KEYS}
    )
    region = credentials.environment.get("AWS_REGION")
    section = profile if profile == DEFAULT_PROFILE else f"profile {profile}"
    _update_ini(config_file, section, {"region": region} if region else {})
    if _environ(platform).get("AWS_ACCESS_KEY_ID"):
        _logger.warning(
            "AWS_ACCESS_KEY_ID is set in this job: AWS SDKs prefer it to AWS_PROFILE, so "
            "unset it (and AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) to use the profile"
        )
    for name, value in credentials.secrets.items():
        if name not in AWS_PROFILE_KEYS:
            platform.export_env(name, value, secret=True)
    for name, value in credentials.environment.items():
        # A region in the environment would override every profile's own region.
        if name not in _REGION_VARIABLES:
            platform.export_env(name, value, secret=False)
    platform.export_env("AWS_CONFIG_FILE", str(config_file), secret=False)
    platform.export_env("AWS_SHARED_CREDENTIALS_FILE", str(credentials_file), secret=False)
    platform.export_env("AWS_PROFILE", profile, secret=False)
    return f"written to profile {profile!r} in {credentials_file}"


def _private_directory(path: Path, *, default: bool) -> None:
    """Create ``path`` (0700) or make sure an existing one is ours and closed to others."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(path)
    except OSError as error:
        raise ConfigError(
            f"cannot create the profile directory {path}: {error.strerror}",
            hint="choose a writable directory (--profile-dir)",
        ) from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{path} is not a directory (a symbolic link?); refusing to write there")
    if info.st_uid != _uid():
        raise ConfigError(
            f"{path} belongs to another user; refusing to write credentials there",
            hint="choose a directory of your own (--profile-dir)",
        )
    if info.st_mode & 0o022 and not default:
        raise ConfigError(
            f"{path} is writable by other users; refusing to write credentials there",
            hint="choose a private directory (--profile-dir)",
        )
    if info.st_mode & 0o077 and default:
        os.chmod(path, 0o700)


def _update_ini(path: Path, section: str, values: Mapping[str, str]) -> None:
    """Replace ``section`` of an INI file (keeping the others), atomically, 0600."""
    import configparser
    import io

    from tollgate._files import atomic_write

    parser = configparser.RawConfigParser(default_section="\0")
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError, configparser.Error) as error:
        raise ConfigError(
            f"cannot read {path}: {type(error).__name__}",
            hint="remove the file, or choose another profile directory (--profile-dir)",
        ) from None
    if parser.has_section(section):
        parser.remove_section(section)
    parser.add_section(section)
    for key, value in values.items():
        if "\n" in value or "\r" in value:
            raise UsageError(f"the value for {key} spans several lines; it cannot go in {path}")
        parser.set(section, key, value)
    text = io.StringIO()
    parser.write(text)
    try:
        atomic_write(path, text.getvalue().encode("utf-8"), mode=0o600)
    except OSError as error:
        raise ConfigError(f"cannot write {path}: {error.strerror}") from None


# Facts and summary


def _publish_facts(credentials: Credentials, platform: Platform) -> None:
    if platform.name == "local":
        return  # logged in the summary instead: stdout is data here
    for name, value in credentials.facts.items():
        # GitLab dotenv keys hold letters, digits and '_' only.
        platform.set_output(name.replace("-", "_") if platform.name == "gitlab" else name, value)


def _summary(credentials: Credentials, platform: Platform, where: str) -> str:
    names = ", ".join([*credentials.secrets, *credentials.environment])
    text = f"{credentials.provider}: {names} {where}"
    if credentials.expires_at is not None:
        left = (credentials.expires_at - datetime.now(timezone.utc)).total_seconds()
        text += f"; they expire at {format_time(credentials.expires_at)} (in {left / 60:.0f} min)"
    if platform.name == "local" and credentials.facts:
        text += "; " + ", ".join(f"{key}={value}" for key, value in credentials.facts.items())
    return text


# Helpers


def _aws_keys(credentials: Credentials) -> Mapping[str, str]:
    missing = [name for name in AWS_PROFILE_KEYS if not credentials.secrets.get(name)]
    if credentials.provider != "aws" or missing:
        raise UsageError(f"these {credentials.provider} credentials hold no AWS keys")
    return credentials.secrets


def _write_stdout(text: str) -> None:
    from tollgate.ci.local import write_stdout

    write_stdout(text)


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _environ(platform: Platform) -> Mapping[str, str]:
    environ = getattr(platform, "environ", None)
    return environ if isinstance(environ, Mapping) else os.environ


def _uid() -> int:
    getuid = getattr(os, "getuid", None)
    return int(getuid()) if getuid is not None else 0
