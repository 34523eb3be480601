"""The exit code of ``tollgate audit``: the same rule in every format, SARIF included.

By default any finding that was reported fails the run (as zizmor does): what the user did
not want to see is already filtered out by persona, ignores and baselines. ``--fail-on
SEVERITY`` raises the bar; ``--exit-zero`` never fails on findings. Unlike zizmor, SARIF
output does not exit 0 on findings, so a code-scanning upload needs no separate gate step
(the wrapper runs the upload with ``if: always()``).
"""

from __future__ import annotations

from tollgate.audit.findings import Severity
from tollgate.errors import ExitCode

DEFAULT_FAIL_ON = Severity.INFO
"""Without ``--fail-on``, every reported finding counts."""


def exit_code(max_severity_seen: Severity | None, fail_on: Severity | None, exit_zero: bool) -> int:
    """``0`` when nothing reached ``fail_on`` (or ``exit_zero``), else ``1``.

    ``max_severity_seen`` is ``None`` when there was no finding. Diagnostics (unreadable
    files) do not change the code: the run reports them and goes on.
    """
    if exit_zero or max_severity_seen is None:
        return ExitCode.OK
    threshold = fail_on if fail_on is not None else DEFAULT_FAIL_ON
    return ExitCode.FINDINGS if max_severity_seen.rank >= threshold.rank else ExitCode.OK
