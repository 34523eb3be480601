"""tollgate: a security plugin pack for GitHub Actions and GitLab CI.

The package is a library first; the ``tollgate`` command and the CI wrappers are thin
layers over it. Importing ``tollgate`` is deliberately cheap: subpackages load on use.
"""

__version__ = "0.1.0"
