"""Start-up cost of tollgate commands, next to a bare Python start.

Every CI step pays this. Prints the median wall time of N runs of each command.
Goal (issue #2): `tollgate --version` under 0.1 s on this machine.

Usage: python bench/startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def median_seconds(argv: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env, check=True
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    tollgate = shutil.which("tollgate") or sys.exit("tollgate is not on PATH: pip install -e .")
    env = {k: v for k, v in os.environ.items() if k not in {"GITHUB_ACTIONS", "GITLAB_CI"}}
    env["STARTUP_SECRET"] = "startup-bench-secret-value"
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -I -S -c pass": [sys.executable, "-I", "-S", "-c", "pass"],
        "tollgate --version": [tollgate, "--version"],
        "tollgate redact (1 secret, empty input)": [
            tollgate,
            "redact",
            "--secret-env",
            "STARTUP_SECRET",
        ],
        "tollgate run -- true (1 secret)": [
            tollgate,
            "run",
            "--secret-env",
            "STARTUP_SECRET",
            "--",
            "true",
        ],
    }
    print(f"start-up bench: median of {args.runs} runs, {os.cpu_count()} CPUs")
    for name, argv in commands.items():
        print(f"{median_seconds(argv, args.runs, env) * 1000:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
