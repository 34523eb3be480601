"""Streaming: memory stays bounded however many findings go through a format.

Two measures. ``tracemalloc`` gives the peak in bytes, but slows allocation-heavy code down
ten times, so it runs on a few thousand findings and compares the peak with what holding
them would take and with the peak of a tenth as many. For the full 100,000 findings,
``sys.getallocatedblocks()`` (free to read) shows whether objects pile up: keeping even one
small object per finding would add 90,000 blocks between the 10,000th and the last.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc

import pytest

from tests.audit.report import RULES, FakePlatform, Sink, many_findings, render
from tollgate.audit.report import Format, FormatChoice, ReportOptions, RunStats, create_format

SOURCE = ["on: push\n", *(f"      - run: echo {n}\n" for n in range(12))]
TRACED = 2000
FULL = 100_000


def _options() -> ReportOptions:
    return ReportOptions(rules=RULES, source_lines=lambda path: SOURCE, platform=FakePlatform())


@pytest.fixture(scope="module")
def holding() -> int:
    """Bytes that keeping ``TRACED`` findings would take, measured on a thousand."""
    sample = 1000
    tracemalloc.start()
    try:
        held = list(many_findings(sample))
        size = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(held) == sample
    return size * TRACED // sample


def _traced_peak(choice: FormatChoice, count: int) -> int:
    sink = Sink()
    report = create_format(choice, sink, _options())  # type: ignore[arg-type]
    tracemalloc.start()
    try:
        render(report, many_findings(count), files_scanned=count // 10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.tally.findings == count
    assert sink.lines > count // 10  # it wrote as it went
    return peak


@pytest.mark.parametrize("choice", list(FormatChoice))
def test_peak_bytes_stay_flat(choice: FormatChoice, holding: int) -> None:
    small = _traced_peak(choice, TRACED // 10)
    peak = _traced_peak(choice, TRACED)
    assert holding > 512 * 1024  # the comparisons below mean something
    # (github keeps its 100 most severe findings for the job summary, by design)
    assert peak < holding / 5, f"peak {peak} bytes; holding the findings takes {holding}"
    assert peak < small + 48 * 1024, f"peak {peak} bytes for {TRACED}, {small} for a tenth"


def test_100000_findings_pile_nothing_up() -> None:
    choices = [FormatChoice.TEXT, FormatChoice.JSON, FormatChoice.CODEQUALITY, FormatChoice.SARIF]
    sinks = [Sink() for _ in choices]
    reports: list[Format] = [
        create_format(choice, sink, _options())  # type: ignore[arg-type]
        for choice, sink in zip(choices, sinks, strict=True)
    ]
    for report in reports:
        report.begin()
    blocks_at = {}
    for number, finding in enumerate(many_findings(FULL), start=1):
        for report in reports:
            report.finding(finding)
        if number in (FULL // 10, FULL):
            gc.collect()
            blocks_at[number] = sys.getallocatedblocks()
    for report in reports:
        report.end(RunStats(files_scanned=FULL // 10))
    growth = blocks_at[FULL] - blocks_at[FULL // 10]
    assert growth < 2000, f"{growth} more memory blocks after {FULL} findings than after 10%"
    assert all(report.tally.findings == FULL for report in reports)
    assert all(sink.lines > FULL // 10 for sink in sinks)
