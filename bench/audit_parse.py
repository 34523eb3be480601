"""Parsing speed of the workflow audit: discover + load + model over a real-world corpus.

Prints files/s and lines/s for discovering the files, loading them (positioned YAML) and
building the GitHub model, one file at a time as the audit reads them; then the extra cost
of finding and parsing every ``${{ }}`` in ``run:`` and ``if:``; the same parse keeping every
model alive (as a tool that reports at the end does: the cycle collector then rescans them);
peak RSS; and how many files had diagnostics.
Goal: faster than zizmor audits (~670 files/s, ~100k lines/s on a 2-core machine).

Usage: python bench/audit_parse.py [PATH] [--repeat 5]
(Wall times on a shared machine vary; the best run shows what the code can do.)
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

from tollgate.audit.discover import Kind, SourceFile, discover
from tollgate.audit.findings import Diagnostic
from tollgate.audit.github import expressions
from tollgate.audit.github.model import Action, Workflow, build_action, build_workflow
from tollgate.audit.source import load

DEFAULT_CORPUS = str(Path(__file__).resolve().parents[2] / "shared" / "corpus" / "github")


def parse_one(item: SourceFile) -> Workflow | Action | Diagnostic:
    document = load(item.fs_path, display_path=item.path)
    if isinstance(document, Diagnostic):
        return document
    return build_workflow(document) if item.kind is Kind.WORKFLOW else build_action(document)


def scan_expressions(model: Workflow | Action) -> tuple[int, int]:
    """Find and parse every ``${{ }}`` in run: and if:; (expressions, failures)."""
    if isinstance(model, Workflow):
        steps = [step for _, step in model.steps()]
        nodes = [job.if_ for job in model.jobs.values()]
    else:
        steps = list(model.all_steps())
        nodes = []
    nodes += [step.run for step in steps] + [step.if_ for step in steps]
    total = failures = 0
    for node in nodes:
        if node is not None:
            for match in expressions.find_expressions(node.value):
                total += 1
                failures += match.error is not None
    return total, failures


class Run:
    """One pass over the corpus."""

    def __init__(self, root: str, keep: bool) -> None:
        expressions.clear_caches()
        self.files = self.expressions = self.failures = 0
        self.diagnostics: list[Diagnostic] = []
        self.kept: list[Workflow | Action] = []
        self.scan = 0.0
        wall, cpu = time.perf_counter(), time.process_time()
        for item in discover([root]):
            if isinstance(item, Diagnostic):
                self.diagnostics.append(item)
                continue
            self.files += 1
            model = parse_one(item)
            if isinstance(model, Diagnostic):
                self.diagnostics.append(model)
                continue
            self.diagnostics.extend(model.diagnostics)
            if keep:
                self.kept.append(model)
                continue
            started = time.perf_counter()
            total, failures = scan_expressions(model)
            self.scan += time.perf_counter() - started
            self.expressions += total
            self.failures += failures
        self.cpu = time.process_time() - cpu
        self.wall = time.perf_counter() - wall - self.scan


def count_lines(root: str) -> int:
    return sum(
        Path(item.fs_path).read_bytes().count(b"\n")
        for item in discover([root])
        if isinstance(item, SourceFile)
    )


def rate(files: int, lines: int, seconds: float) -> str:
    return f"{files / seconds:7.0f} files/s  {lines / seconds:9.0f} lines/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("path", nargs="?", default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not Path(args.path).is_dir():
        sys.exit(f"no corpus at {args.path}")

    runs = [Run(args.path, keep=False) for _ in range(args.repeat)]
    kept = [Run(args.path, keep=True).wall for _ in range(max(1, args.repeat // 2))]
    last = runs[-1]
    files, lines = last.files, count_lines(args.path)
    wall = statistics.median(r.wall for r in runs)
    best = min(r.wall for r in runs)
    cpu = statistics.median(r.cpu for r in runs)
    scan = statistics.median(r.scan for r in runs)
    keep = statistics.median(kept)
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mib = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024

    print(f"corpus: {args.path}: {files} files, {lines} lines; median of {args.repeat} runs")
    print(f"discover+load+model     {wall:6.3f} s ({cpu:.3f} s CPU)  {rate(files, lines, wall)}")
    print(f"  best run              {best:6.3f} s                 {rate(files, lines, best)}")
    print(f"  per CPU second                                {rate(files, lines, cpu)}")
    print(
        f"+ run:/if: expressions  {scan:6.3f} s  ({last.expressions} expressions, "
        f"{last.failures} failed to parse)"
    )
    print(
        f"all of it               {wall + scan:6.3f} s                 {rate(files, lines, wall + scan)}"
    )
    print(f"keeping every model     {keep:6.3f} s                 {rate(files, lines, keep)}")
    print(f"peak RSS                {peak_mib:6.1f} MiB (with every model kept)")
    with_diagnostics = len({d.path for d in last.diagnostics})
    print(
        f"files with diagnostics: {with_diagnostics} of {files} ({len(last.diagnostics)} diagnostics)"
    )
    for diagnostic in last.diagnostics[:20]:
        print(f"  {diagnostic.path}:{diagnostic.line}: {diagnostic.message}")


if __name__ == "__main__":
    main()
