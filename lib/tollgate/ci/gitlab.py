"""GitLab CI: ID tokens from ``id_tokens:`` variables, outputs as a dotenv report.

GitLab has no runtime masking command and no step summary, so masks, exports, summaries and
annotations work as on a terminal (:class:`~tollgate.ci.local.LocalPlatform`). What differs:

- the OIDC token is a variable the job declared under ``id_tokens:``; there is no endpoint
  to mint one for another audience;
- outputs go to a dotenv file that the job declares under ``artifacts: reports: dotenv:``,
  parsed by GitLab (``Ci::ParseDotenvArtifactService``): at most 5 KB, one ``KEY=value``
  per line, keys of ``[A-Za-z0-9_]``, values stripped of surrounding white space, no
  multi-line values, no empty lines, no comments.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import ClassVar

from tollgate.ci import refuse_secret_output, reject_nul, validate_output_name
from tollgate.ci.local import LocalPlatform
from tollgate.errors import ConfigError, UsageError

_logger = logging.getLogger(__name__)

DEFAULT_DOTENV_PATH = "tollgate.env"
DOTENV_LIMIT = 5 * 1024
"""GitLab rejects a dotenv report larger than this many bytes (``5.kilobytes``)."""

# The convention of the PyPI `id` package: upper-case the audience, replace every character
# outside [A-Z0-9_] (and a leading digit) with "_", append "_ID_TOKEN".
_NOT_IN_VARIABLE = re.compile(r"[^A-Z0-9_]|^[^A-Z_]")
_DOTENV_KEY = re.compile(r"[A-Za-z0-9_]+\Z")
_PLAIN_YAML = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~:/@%+=-]*\Z")


def audience_variable(audience: str) -> str:
    """The variable GitLab users name for ``audience``: ``sigstore`` -> ``SIGSTORE_ID_TOKEN``."""
    return _NOT_IN_VARIABLE.sub("_", audience.upper()) + "_ID_TOKEN"


class GitLabPlatform(LocalPlatform):
    """GitLab CI, detected by ``GITLAB_CI=true``."""

    name: ClassVar[str] = "gitlab"
    _told_about_dotenv = False

    def id_token(self, audience: str | None = None) -> str:
        """The job's ID token for ``audience``, from its ``id_tokens:`` variable or a file."""
        if self.options.token_file is not None:
            return self._token_from_file(Path(self.options.token_file))
        variable = self.options.token_env
        if variable is None:
            if not audience:
                raise ConfigError(
                    "tollgate needs an audience to find the job's ID token on GitLab CI",
                    hint=(
                        "give the audience (the token is then read from <AUDIENCE>_ID_TOKEN) "
                        "or the name of the variable that holds the token"
                    ),
                )
            variable = audience_variable(audience)
        value = self.environ.get(variable)
        if value is None:
            raise ConfigError(
                f"this GitLab job has no ID token in ${variable}",
                hint=_id_tokens_hint(variable, audience),
            )
        return self._checked_token(
            value,
            f"${variable}",
            hint=(
                "GitLab sets the variable from the job's id_tokens: entry; make sure no "
                "variables: entry or earlier command overwrites it"
            ),
        )

    def set_output(self, name: str, value: str) -> None:
        """Add or replace ``NAME=value`` in the dotenv report file (written atomically)."""
        validate_output_name(name)
        if not _DOTENV_KEY.match(name):
            raise UsageError(
                f"{name!r} cannot be a GitLab dotenv variable: keys hold only letters, "
                "digits and '_'",
                hint="name the output with '_' instead of '-'",
            )
        reject_nul(name, value)
        refuse_secret_output(name, value)
        if "\n" in value or "\r" in value:
            raise UsageError(
                f"the value of output {name!r} has several lines; GitLab dotenv reports "
                "cannot hold multi-line values",
                hint="encode it on one line first (base64 or JSON, say)",
            )
        if value != value.strip():
            raise UsageError(
                f"the value of output {name!r} starts or ends with white space, which GitLab "
                "strips from dotenv values",
                hint="trim or encode the value first",
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(
                f"the value of output {name!r} is not valid UTF-8, which GitLab requires"
            ) from None
        path = Path(self.options.dotenv_path or DEFAULT_DOTENV_PATH)
        lines = _merge(_read_dotenv(path), name, f"{name}={value}")
        data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
        if len(data) > DOTENV_LIMIT:
            raise UsageError(
                f"output {name!r} would make {path} {len(data)} bytes long, over GitLab's "
                f"limit of {DOTENV_LIMIT} bytes for a dotenv report",
                hint=(
                    "GitLab rejects the whole report when it is too large. Pass big values "
                    "to later jobs as an ordinary artifact file instead."
                ),
            )
        from tollgate._files import atomic_write

        try:
            atomic_write(path, data, mode=0o644)
        except OSError as error:
            raise ConfigError(
                f"cannot write the dotenv report {path}: {error.strerror}",
                hint="choose a writable dotenv path",
            ) from None
        if not self._told_about_dotenv:
            self._told_about_dotenv = True
            _logger.info(
                "outputs are written to %s; to pass them to later jobs, declare it in this "
                "job under artifacts: reports: dotenv: %s",
                path,
                path,
            )


def _id_tokens_hint(variable: str, audience: str | None) -> str:
    aud = _yaml_scalar(audience) if audience else "<the audience your service expects>"
    return (
        "Declare the token in the job (GitLab 15.7 or later):\n"
        "\n"
        "  your-job:\n"
        "    id_tokens:\n"
        f"      {variable}:\n"
        f"        aud: {aud}\n"
        "\n"
        "(CI_JOB_JWT and CI_JOB_JWT_V2 were removed in GitLab 17.0.)"
    )


def _yaml_scalar(text: str) -> str:
    """``text`` as a YAML scalar: plain when that is safe, double-quoted (JSON) otherwise."""
    if _PLAIN_YAML.match(text) and not text.endswith(":"):
        return text
    return json.dumps(text)


def _read_dotenv(path: Path) -> list[str]:
    """The lines of an existing report, without the empty ones GitLab would reject."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as error:
        raise ConfigError(f"cannot read the dotenv report {path}: {error.strerror}") from None
    lines = raw.decode("utf-8", "surrogateescape").split("\n")
    return [line.rstrip("\r") for line in lines if line.strip()]


def _merge(lines: list[str], name: str, entry: str) -> list[str]:
    """Replace the first ``name=`` line with ``entry`` (dropping later ones) or append it."""
    merged: list[str] = []
    placed = False
    for line in lines:
        key, equals, _ = line.partition("=")
        if equals and key.strip() == name:
            if not placed:
                merged.append(entry)
                placed = True
            continue
        merged.append(line)
    if not placed:
        merged.append(entry)
    return merged
