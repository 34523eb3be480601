"""Fixtures for the credential tests: the providers talk to loopback fakes and mask secrets."""

from __future__ import annotations

import pytest

from tests.helpers import isolate


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy and no secret from outside the test (modules that isolate more override it)."""
    isolate(monkeypatch)
