"""The contract every credential provider follows.

A provider takes a :data:`TokenSource` (the CI platform's ``id_token``), exchanges the job's
OIDC token with its cloud, and returns :class:`Credentials`: secret values (masked before
anything else happens), plain environment, and non-secret facts for step outputs.
``tollgate.credentials.emit`` then hands them to the job in the requested output mode.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

TokenSource = Callable[[str | None], str]
"""Returns a fresh OIDC token (a JWT) for an audience; ``Platform.id_token`` is one.

Providers call it for every exchange instead of holding one token: GitHub tokens expire
after five minutes, and a long job (Azure's repeated token requests) needs a new one.
"""


@enum.unique
class OutputMode(str, enum.Enum):
    """How credentials reach the rest of the job."""

    ENV = "env"
    """Export to later steps (GitHub ``$GITHUB_ENV``; elsewhere as ``shell``)."""
    SHELL = "shell"
    """Print ``export NAME='value'`` lines for ``eval "$(tollgate creds ...)"``."""
    JSON = "json"
    """Print one JSON object on stdout (for programs; holds secrets)."""
    PROFILE = "profile"
    """Write a named profile to a config file under the job's temp dir (AWS)."""
    CREDENTIAL_PROCESS = "credential-process"
    """Print the JSON an AWS SDK's ``credential_process`` expects."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Credentials:
    """What one exchange produced."""

    provider: str
    """``aws``, ``gcp``, ``azure`` or ``vault``."""
    secrets: Mapping[str, str]
    """Environment name -> secret value (keys, session tokens, access tokens)."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Environment name -> non-secret value the SDKs need (region, tenant, file paths)."""
    facts: Mapping[str, str] = field(default_factory=dict)
    """Output name -> non-secret fact (account, ARN, expiry, project)."""
    expires_at: datetime | None = None
    """When the credentials stop working (timezone-aware), if the cloud said."""


class Provider(abc.ABC):
    """One cloud's OIDC exchange. Options are constructor arguments."""

    name: ClassVar[str]
    """``aws``, ``gcp``, ``azure`` or ``vault``."""

    @property
    @abc.abstractmethod
    def audience(self) -> str | None:
        """The ``aud`` to request the CI token for (None: the platform's default)."""

    @abc.abstractmethod
    def exchange(self, token_source: TokenSource) -> Credentials:
        """Exchange a CI token for credentials.

        Raises :class:`tollgate.errors.ConfigError` when the cloud rejects the token or the
        setup (naming the claims that were sent: ``sub``, ``aud``, ``iss``, never the token)
        and :class:`tollgate.errors.ExternalError` when the cloud fails after retries.
        """
