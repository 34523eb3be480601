"""Speed and memory of ``tollgate audit`` next to zizmor, on the same files in the same run.

Both tools get the corpus's files (``../shared/corpus/github`` beside the checkout: workflows and actions of
75 public repositories) named explicitly on the command line, offline, without a
configuration, JSON output; files zizmor refuses to load (it stops the whole run on one) are
left out for both, and listed. Each command runs as its own process, started by a small
launcher (``python -I -S``) that reads its peak RSS with ``os.wait4``: a child forked from
this (larger) process would report this process's memory as its own floor. The launcher's
floor is shown (``/bin/true`` through it).

Prints wall and CPU time, files/s and lines/s, peak RSS and findings of: zizmor, ``tollgate
audit``, ``tollgate audit --jobs 2`` (peak RSS: the largest single process), and the
engine in this process (no start-up). Goal: faster than zizmor, no more peak memory.

Usage: python bench/audit.py [CORPUS] [--repeat 3] [--zizmor PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tollgate.audit.discover import SourceFile, discover
from tollgate.audit.engine import Auditor, FileDone, default_rules
from tollgate.audit.findings import Finding

DEFAULT_CORPUS = str(Path(__file__).resolve().parents[2] / "shared" / "corpus" / "github")

# Runs each batch of a command in turn; prints wall, CPU and peak RSS (KiB) of each child.
LAUNCHER = r"""
import json, os, sys, time
spec = json.load(sys.stdin)
devnull = os.open(os.devnull, os.O_RDONLY)
results = []
for i, argv in enumerate(spec["batches"]):
    out = os.open(f"{spec['output']}.{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(f"{spec['output']}.{i}.err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(spec["cwd"])
            os.dup2(devnull, 0)
            os.dup2(out, 1)
            os.dup2(err, 2)
            os.execvpe(argv[0], argv, spec["env"])
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    os.close(out)
    os.close(err)
    results.append({
        "wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "maxrss": usage.ru_maxrss,
        "status": os.waitstatus_to_exitcode(status),
    })
json.dump(results, sys.stdout)
"""

_CI_VARIABLES = ("GITHUB_ACTIONS", "GITLAB_CI", "GITHUB_STEP_SUMMARY", "TOLLGATE_PLATFORM")


@dataclass(frozen=True)
class Measure:
    wall: float
    cpu: float
    peak_kib: int
    findings: int


def launch(batches: list[list[str]], cwd: str, output: str) -> list[dict[str, float]]:
    """Run ``batches`` one after another from a fresh launcher; their usage figures."""
    env = {k: v for k, v in os.environ.items() if k not in _CI_VARIABLES}
    spec = {"batches": batches, "cwd": cwd, "env": env, "output": output}
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", LAUNCHER],
        input=json.dumps(spec).encode(),
        capture_output=True,
        check=True,
    )
    results: list[dict[str, float]] = json.loads(done.stdout)
    return results


def batches(command: list[str], files: list[str]) -> list[list[str]]:
    """``command`` with ``files`` appended, split so no argument list is too long."""
    budget = min(os.sysconf("SC_ARG_MAX") // 4, 1 << 20)  # leave room for the environment
    out: list[list[str]] = []
    current: list[str] = []
    size = sum(len(part) + 1 for part in command)
    used = size
    for name in files:
        if current and used + len(name) + 1 > budget:
            out.append(command + current)
            current, used = [], size
        current.append(name)
        used += len(name) + 1
    out.append(command + current)
    return out


def measure(
    command: list[str],
    files: list[str],
    cwd: str,
    ok: set[int],
    count: str,
    repeat: int,
) -> Measure:
    """Median wall and CPU, median peak RSS and the findings of ``repeat`` runs."""
    runs: list[tuple[float, float, int]] = []
    findings = 0
    with tempfile.TemporaryDirectory() as scratch:
        output = os.path.join(scratch, "out")
        split = batches(command, files)
        for _ in range(repeat):
            results = launch(split, cwd, output)
            for i, result in enumerate(results):
                if result["status"] not in ok:
                    error = Path(f"{output}.{i}.err").read_text(errors="replace")[-2000:]
                    sys.exit(f"{command[0]} failed ({result['status']}):\n{error}")
            runs.append(
                (
                    sum(r["wall"] for r in results),
                    sum(r["cpu"] for r in results),
                    int(max(r["maxrss"] for r in results)),
                )
            )
            findings = sum(
                count_findings(Path(f"{output}.{i}").read_text(), count)
                for i in range(len(results))
            )
    return Measure(
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        int(statistics.median(r[2] for r in runs)),
        findings,
    )


def count_findings(text: str, kind: str) -> int:
    data = json.loads(text) if text.strip() else []
    if kind == "zizmor":
        return len(data)
    return len(data["findings"])


def zizmor_loadable(zizmor: str, files: list[str], cwd: str) -> tuple[list[str], list[str]]:
    """Files zizmor accepts, and those it stops on (left out of the comparison)."""
    left_out: list[str] = []
    kept = list(files)
    for _ in range(100):
        failed: list[str] = []
        for argv in batches([zizmor, "--offline", "--no-config", "--format", "json"], kept):
            done = subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
            if done.returncode == 1:
                match = re.search(r"failed to load file://(\S+) as", done.stderr.decode())
                if match is None:
                    sys.exit(f"zizmor failed:\n{done.stderr.decode()[-2000:]}")
                failed.append(match.group(1))
        if not failed:
            return kept, left_out
        left_out.extend(failed)
        kept = [name for name in kept if name not in failed]
    sys.exit("zizmor refuses too many files")


def in_process(files: list[str], cwd: str, repeat: int) -> tuple[float, float, int, int]:
    """The engine alone, in this process: (wall, CPU, files, findings), median wall."""
    walls: list[tuple[float, float, int, int]] = []
    old = os.getcwd()
    os.chdir(cwd)
    try:
        for _ in range(repeat):
            auditor = Auditor(default_rules())
            wall, cpu = time.perf_counter(), time.process_time()
            done = found = 0
            for item in auditor.run(files):
                done += isinstance(item, FileDone)
                found += isinstance(item, Finding)
            walls.append((time.perf_counter() - wall, time.process_time() - cpu, done, found))
    finally:
        os.chdir(old)
    return sorted(walls)[len(walls) // 2]


def row(name: str, m: Measure, files: int, lines: int, floor: int) -> str:
    return (
        f"{name:<24} {m.wall:6.2f} s {m.cpu:6.2f} s {files / m.wall:7.0f} {lines / m.wall:9.0f} "
        f"{m.peak_kib / 1024:7.1f} MiB ({(m.peak_kib - floor) / 1024:5.1f}) {m.findings:8d}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--zizmor", default=shutil.which("zizmor"))
    args = parser.parse_args()
    corpus = os.path.abspath(args.corpus)
    if not os.path.isdir(corpus):
        sys.exit(f"no corpus at {corpus}")
    if not args.zizmor:
        sys.exit("zizmor is not on PATH (pip install -e '.[dev]')")

    os.chdir(corpus)
    found = [item for item in discover(["."]) if isinstance(item, SourceFile)]
    files, left_out = zizmor_loadable(args.zizmor, [item.path for item in found], corpus)
    lines = sum(Path(name).read_bytes().count(b"\n") for name in files)
    version = subprocess.run([args.zizmor, "--version"], capture_output=True, text=True)
    floor = launch([["true"]], corpus, os.path.join(tempfile.gettempdir(), "bench-audit-true"))
    floor_kib = int(floor[0]["maxrss"])

    zizmor = [args.zizmor, "--offline", "--no-config", "--format", "json"]
    ours = [sys.executable, "-m", "tollgate", "audit", "--no-config", "--format", "json"]
    results = {
        version.stdout.strip() or "zizmor": measure(
            zizmor, files, corpus, {0, *range(10, 15)}, "zizmor", args.repeat
        ),
        "tollgate audit": measure(ours, files, corpus, {0, 1}, "tollgate", args.repeat),
        "tollgate audit --jobs 2": measure(
            [*ours, "--jobs", "2"], files, corpus, {0, 1}, "tollgate", args.repeat
        ),
    }
    engine_wall, engine_cpu, engine_files, engine_findings = in_process(files, corpus, args.repeat)

    print(
        f"corpus: {corpus}: {len(files)} files, {lines} lines; median of {args.repeat} runs; "
        f"{os.cpu_count()} CPUs; {len(default_rules())} rules registered"
    )
    for name in left_out:
        print(f"  left out (zizmor cannot load it): {name}")
    print(f"launcher floor (/bin/true through it): {floor_kib / 1024:.1f} MiB peak RSS")
    print(
        f"{'':<24} {'wall':>8} {'CPU':>8} {'files/s':>7} {'lines/s':>9} "
        f"{'peak RSS (- floor)':>21} {'findings':>8}"
    )
    for name, m in results.items():
        print(row(name, m, len(files), lines, floor_kib))
    print(
        f"{'engine, in process':<24} {engine_wall:6.2f} s {engine_cpu:6.2f} s "
        f"{engine_files / engine_wall:7.0f} {lines / engine_wall:9.0f} {'':>21} "
        f"{engine_findings:8d}"
    )
    z, one, two = results.values()
    print(
        f"speed-up over zizmor (wall): {z.wall / one.wall:.2f}x, {z.wall / two.wall:.2f}x "
        f"with --jobs 2; peak RSS: {one.peak_kib / z.peak_kib:.2f}x, "
        f"{two.peak_kib / z.peak_kib:.2f}x of zizmor's"
    )


if __name__ == "__main__":
    main()
