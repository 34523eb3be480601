"""GitHub Actions audit rules. Each module registers its rules on import."""

from tollgate.audit.github.rules import (
    artipacked,  # noqa: F401
    cache,  # noqa: F401
    conditions,  # noqa: F401
    credentials,  # noqa: F401
    hygiene,  # noqa: F401
    injection,  # noqa: F401
    permissions,  # noqa: F401
    pinning,  # noqa: F401
    publishing,  # noqa: F401
    runners,  # noqa: F401
    scripts,  # noqa: F401
    secrets,  # noqa: F401
    triggers,  # noqa: F401
)
