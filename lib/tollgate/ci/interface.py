"""The CI platform interface: one abstract class, three implementations.

Everything tollgate hands to a CI system (tokens in, masks, outputs, environment, summaries,
annotations out) goes through a :class:`Platform`, so the capabilities never test for
``GITHUB_ACTIONS`` themselves.
"""

from __future__ import annotations

import abc
import enum
import os
from dataclasses import dataclass
from typing import ClassVar


@enum.unique
class AnnotationLevel(str, enum.Enum):
    """Severity of an annotation, named as GitHub's workflow commands name them."""

    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Annotation:
    """A message attached to a place in a file (a finding, a failed check)."""

    level: AnnotationLevel
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None
    title: str | None = None


@dataclass(frozen=True)
class PlatformOptions:
    """Where a platform finds its token and puts the files it writes (all optional)."""

    token_file: str | os.PathLike[str] | None = None
    """Read the OIDC token from this file (GitLab, local)."""
    token_env: str | None = None
    """Name of the environment variable holding the OIDC token (GitLab, local)."""
    dotenv_path: str | os.PathLike[str] | None = None
    """GitLab dotenv report for outputs (default ``tollgate.env``)."""
    summary_path: str | os.PathLike[str] | None = None
    """Markdown summary file off GitHub (default ``tollgate-summary.md``)."""

    def __post_init__(self) -> None:
        if self.token_env is not None:
            from tollgate.ci import validate_env_name

            validate_env_name(self.token_env)


class Platform(abc.ABC):
    """What tollgate needs from the CI system it runs in."""

    name: ClassVar[str]
    """``github``, ``gitlab`` or ``local``."""

    @abc.abstractmethod
    def id_token(self, audience: str | None = None) -> str:
        """Return the job's OIDC token (a JWT) for ``audience``.

        The token is masked (:meth:`add_mask`) before it is returned. Raises
        :class:`tollgate.errors.ConfigError` when the job cannot get one (with the exact
        setting to change) and :class:`tollgate.errors.ExternalError` when the issuer fails.
        """

    @abc.abstractmethod
    def add_mask(self, value: str) -> None:
        """Keep ``value`` and its encoded forms out of the job log from now on."""

    @abc.abstractmethod
    def set_output(self, name: str, value: str) -> None:
        """Publish a non-secret step output. Refuses values that contain a masked secret."""

    @abc.abstractmethod
    def export_env(self, name: str, value: str, *, secret: bool) -> None:
        """Make ``name=value`` visible to the job's later steps (masked first when secret)."""

    @abc.abstractmethod
    def summary(self, markdown: str) -> None:
        """Append Markdown to the job's summary."""

    @abc.abstractmethod
    def annotate(self, annotation: Annotation) -> None:
        """Attach a message to a file location in the CI system's UI, or print it."""

    def neutralize(self, text: str) -> str:
        """Make text that came from outside (a claim, a file, a server's error) inert.

        Only GitHub interprets lines of a log as commands; elsewhere text is returned as is.
        """
        return text
