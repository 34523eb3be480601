"""The exit code: 1 when a finding reached the threshold, unless --exit-zero; every combination."""

from __future__ import annotations

import itertools

import pytest

from tollgate.audit.findings import Severity
from tollgate.audit.report import DEFAULT_FAIL_ON, exit_code

# Written out, not derived from Severity.rank, so the test checks the order too.
ORDER = ["info", "low", "medium", "high", "critical"]


@pytest.mark.parametrize(
    ("seen", "fail_on", "exit_zero"),
    list(itertools.product([None, *Severity], [None, *Severity], [False, True])),
)
def test_every_combination(
    seen: Severity | None, fail_on: Severity | None, exit_zero: bool
) -> None:
    if exit_zero or seen is None:
        expected = 0
    elif fail_on is None:
        expected = 1  # by default any reported finding fails
    else:
        expected = int(ORDER.index(seen.value) >= ORDER.index(fail_on.value))
    assert exit_code(seen, fail_on, exit_zero) == expected


def test_a_few_cases_in_words() -> None:
    assert DEFAULT_FAIL_ON is Severity.INFO
    assert exit_code(Severity.INFO, None, False) == 1
    assert exit_code(Severity.MEDIUM, Severity.HIGH, False) == 0
    assert exit_code(Severity.HIGH, Severity.HIGH, False) == 1
    assert exit_code(Severity.CRITICAL, Severity.HIGH, False) == 1
    assert exit_code(Severity.CRITICAL, Severity.INFO, True) == 0
    assert exit_code(None, Severity.INFO, False) == 0
    assert isinstance(exit_code(Severity.LOW, None, False), int)
