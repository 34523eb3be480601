"""The set of secrets this process knows about, and redaction with it.

On GitLab and on a developer's terminal nothing masks a job log for us, so
``Platform.add_mask`` puts the value here; tollgate's own diagnostics, logs and error texts
pass through :meth:`SecretSet.redact_text` before they are printed, on every platform.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from tollgate.masking.variants import DEFAULT_MIN_LENGTH, secret_variants

if TYPE_CHECKING:
    from tollgate.masking.matcher import Matcher

_logger = logging.getLogger(__name__)

DEFAULT_REPLACEMENT = b"***"
GITLAB_REPLACEMENT = b"[MASKED]"


class SecretSet:
    """A growing set of secrets, kept as the byte patterns of all their variants."""

    def __init__(self, min_length: int = DEFAULT_MIN_LENGTH) -> None:
        self.min_length = min_length
        self._patterns: set[bytes] = set()
        self._lock = threading.Lock()
        self._matcher: Matcher | None = None

    def add(self, value: str | bytes, *, label: str = "a secret") -> int:
        """Register ``value`` and its variants; return how many new patterns that added.

        ``label`` names the secret in diagnostics (an environment variable's name, say):
        the value itself is never logged.
        """
        if not value:
            return 0
        variants = secret_variants(value, self.min_length)
        if variants.too_short:
            if not variants.patterns:
                _logger.warning(
                    "%s is shorter than %d bytes and will not be masked "
                    "(masking it would hide every occurrence of those characters)",
                    label,
                    self.min_length,
                )
            else:
                _logger.info(
                    "%d encoded form(s) of %s are shorter than %d bytes and are not masked",
                    variants.too_short,
                    label,
                    self.min_length,
                )
        with self._lock:
            before = len(self._patterns)
            self._patterns |= variants.patterns
            added = len(self._patterns) - before
            if added:
                self._matcher = None
        return added

    @property
    def patterns(self) -> frozenset[bytes]:
        """Every byte pattern currently masked."""
        with self._lock:
            return frozenset(self._patterns)

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def __len__(self) -> int:
        return len(self._patterns)

    def matcher(self) -> Matcher:
        """A compiled matcher for the current patterns (rebuilt only when they change)."""
        from tollgate.masking.matcher import build_matcher

        with self._lock:
            if self._matcher is None:
                self._matcher = build_matcher(self._patterns)
            return self._matcher

    def redact(self, data: bytes, replacement: bytes = DEFAULT_REPLACEMENT) -> bytes:
        """``data`` with every secret variant replaced (overlaps merged into one)."""
        if not self._patterns or not data:
            return data
        from tollgate.masking.redactor import redact_all

        return redact_all(self.matcher(), data, replacement)

    def redact_text(self, text: str, replacement: str = "***") -> str:
        """:meth:`redact` for text (undecodable bytes survive via surrogate escapes)."""
        if not self._patterns or not text:
            return text
        raw = text.encode("utf-8", "surrogateescape")
        return self.redact(raw, replacement.encode()).decode("utf-8", "surrogateescape")

    def contains_secret(self, text: str | bytes) -> bool:
        """Whether any registered variant occurs in ``text``."""
        if not self._patterns or not text:
            return False
        raw = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        return bool(self.matcher().find(raw))


_PROCESS_SECRETS = SecretSet()


def process_secrets() -> SecretSet:
    """The secrets of this process: everything ``add_mask`` has seen."""
    return _PROCESS_SECRETS
