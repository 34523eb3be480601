"""Running the checker over files in this process, or in worker processes.

``jobs > 1`` sends chunks of files to worker processes and puts the results back in file
order, with a bounded number of chunks in flight, so the output is the same as with one
process and memory does not grow with the number of files.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from tollgate.audit.checker import Checker, FileResult
from tollgate.audit.discover import SourceFile
from tollgate.audit.findings import Diagnostic
from tollgate.audit.rules import AuditContext

CHUNK_FILES = 16
"""Files per task sent to a worker process."""


class Runner:
    """Runs the checker over files here, or in worker processes with results in order."""

    def __init__(self, checker: Checker, jobs: int) -> None:
        self.checker = checker
        self.jobs = jobs
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Runner:
        if self.jobs > 1:
            self._pool = ProcessPoolExecutor(
                self.jobs, initializer=_init_worker, initargs=(self.checker,)
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def scan(self, found: Iterable[SourceFile | Diagnostic]) -> Iterator[FileResult | Diagnostic]:
        """First pass over ``found``, in order (discovery diagnostics pass through)."""
        if self._pool is None:
            for item in found:
                yield item if isinstance(item, Diagnostic) else self.checker.scan(item)
            return
        yield from self._ordered(found, None)

    def finish(
        self, callees: Sequence[SourceFile], tainted: Mapping[str, frozenset[str]]
    ) -> Iterator[FileResult]:
        """Second pass over the callees some of whose inputs are ``tainted``, in order."""
        context = self.checker.settings.context(tainted)
        if self._pool is None:
            for source in callees:
                yield self.checker.finish(source, context)
            return
        for item in self._ordered(callees, context):
            assert not isinstance(item, Diagnostic)
            yield item

    def _ordered(
        self, found: Iterable[SourceFile | Diagnostic], context: AuditContext | None
    ) -> Iterator[FileResult | Diagnostic]:
        """Chunks out to the workers, results back in order, a bounded number in flight."""
        assert self._pool is not None
        pending: deque[Future[list[FileResult]] | Diagnostic] = deque()
        chunk: list[SourceFile] = []
        limit = self.jobs * 4

        def drain(keep: int) -> Iterator[FileResult | Diagnostic]:
            while len(pending) > keep:
                head = pending.popleft()
                if isinstance(head, Diagnostic):
                    yield head
                else:
                    yield from head.result()

        for item in found:
            if isinstance(item, Diagnostic):
                if chunk:
                    pending.append(self._pool.submit(_work, chunk, context))
                    chunk = []
                pending.append(item)
            else:
                chunk.append(item)
                if len(chunk) >= CHUNK_FILES:
                    pending.append(self._pool.submit(_work, chunk, context))
                    chunk = []
            yield from drain(limit)
        if chunk:
            pending.append(self._pool.submit(_work, chunk, context))
        yield from drain(0)


_WORKER: Checker | None = None


def _init_worker(checker: Checker) -> None:
    global _WORKER
    _WORKER = checker


def _work(chunk: list[SourceFile], context: AuditContext | None) -> list[FileResult]:
    """One task in a worker: the first pass (``context`` None) or the second over callees."""
    checker = _WORKER
    assert checker is not None
    if context is None:
        return [checker.scan(source) for source in chunk]
    return [checker.finish(source, context) for source in chunk]
