"""Test launcher: ``python _launcher.py -- CMD ARGS...`` runs CMD through ``run_redacted``.

Stands in for ``tollgate run`` in tests that need a separate process (signals, latency,
memory). The secret comes from ``$TOLLGATE_TEST_SECRET``; when ``$TOLLGATE_TEST_MAXRSS`` names
a file, the launcher writes its peak resident set size (KiB) there before exiting.
"""

from __future__ import annotations

import os
import resource
import sys

from tollgate.masking.process import run_redacted
from tollgate.masking.secrets import SecretSet


def main() -> int:
    """Run the command after ``--``; return its exit status."""
    secrets = SecretSet()
    secrets.add(os.environ["TOLLGATE_TEST_SECRET"], label="TOLLGATE_TEST_SECRET")
    argv = sys.argv[sys.argv.index("--") + 1 :]
    status = run_redacted(
        argv,
        secrets,
        replacement=b"***",
        stdout=sys.stdout.buffer,
        stderr=sys.stderr.buffer,
    )
    maxrss_file = os.environ.get("TOLLGATE_TEST_MAXRSS")
    if maxrss_file:
        with open(maxrss_file, "w") as f:
            f.write(str(_peak_rss_kib()))
    return status


def _peak_rss_kib() -> int:
    """This program's peak resident set size.

    ``VmHWM`` counts this program's memory only; ``ru_maxrss`` on Linux also remembers the
    memory of the process that forked us (a big pytest run) as it was before the exec.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    sys.exit(main())
