"""The parse pool: files read, hashed and parsed in worker processes, results handed back
as they arrive.

``index_file`` is what a worker does for one file (read it safely, skip binaries,
hash it, extract its symbols unless the hash is unchanged). ``ParsePool`` schedules the
files of a build over the workers while the walk still finds more, and hands each
batch's results to the index through two callbacks: ``merge`` (into memory) and
``save`` (to the store, every ``SAVE_EVERY`` files). It knows nothing of the index
itself. A worker that dies (a grammar that crashes) costs the file that killed it,
never the build: its batch is retried file by file in a new pool.
"""

from __future__ import annotations

import concurrent.futures
import gc
import hashlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from context import symbols as sym
from context.languages import has_grammar, query, refine_language
from context.walk import read_regular

log = logging.getLogger(__name__)

# A file to parse: (path, language, the content hash it had when last indexed).
Task = tuple[str, str, "bytes | None"]

# Below this many files to parse, worker processes cost more to start than they save.

# Below this many files to parse, worker processes cost more to start than they save.
PARALLEL_THRESHOLD = 64
# Work handed to a worker at a time: big enough to amortise the round trip, small
# enough to balance the cores and report progress.
BATCH_BYTES = 1 << 20
BATCH_FILES = 64
# Batches out per worker (one parsing, one waiting), and the smallest batch handed out
# at the end of a build (see ParsePool).
IN_FLIGHT_PER_WORKER = 2
MIN_BATCH_BYTES = 64 << 10
# Merged results are written to the store in transactions of about this many files.
SAVE_EVERY = 256
# Parse pools replaced after a worker died, at most, in one build (each death isolates
# the file that caused it); beyond, the files left are skipped, never parsed in-process.
MAX_POOL_RESTARTS = 8
BINARY_SNIFF_BYTES = 8192


@dataclass(slots=True)
class ParseResult:
    """A worker's answer for one file."""

    path: str
    status: str  # "parsed", "same" (content hash unchanged), "skipped", "missing"
    size: int = 0
    mtime_ns: int = 0
    hash: bytes = b""
    language: str = ""
    blob: bytes = b""
    names: tuple[str, ...] = ()
    definitions: int = 0


def content_hash(data: bytes) -> bytes:
    """The content hash stored per file (blake2b, 128 bits)."""
    return hashlib.blake2b(data, digest_size=16).digest()


def index_file(
    path: str,
    language: str,
    previous_hash: bytes | None,
    max_file_size: int,
) -> ParseResult:
    """Read, hash and (unless the hash is unchanged) parse one file. Runs in workers."""
    data, st = read_regular(path, max_file_size)
    if st is None:
        return ParseResult(path, "missing")
    if data is None:  # too big, or not a regular file
        return ParseResult(path, "skipped", st.st_size, st.st_mtime_ns)
    size, mtime_ns = len(data), st.st_mtime_ns
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return ParseResult(path, "skipped", size, mtime_ns)
    digest = content_hash(data)
    if previous_hash is not None and digest == previous_hash:
        return ParseResult(path, "same", size, mtime_ns, digest)
    try:
        language, raw = sym.extract_source(data, language, references=False)
    except Exception:  # a grammar or rule bug must cost one file, not the index
        log.exception("cannot extract symbols from %s", path)
        language, raw = refine_language(language, data), sym.EMPTY
    return ParseResult(
        path,
        "parsed",
        size,
        mtime_ns,
        digest,
        language,
        sym.encode(raw),
        sym.definition_names(raw),
        len(raw[0]),
    )


def _index_batch(tasks: list[Task], max_file_size: int) -> list[ParseResult]:
    return [index_file(path, language, prev, max_file_size) for path, language, prev in tasks]


def _worker_init() -> None:
    """A parse worker makes no garbage cycles worth collecting (parse, extract, return)
    and lives for one build: no cycle collector, whose passes would walk everything
    inherited from the parent and copy the pages they touch."""
    gc.freeze()
    gc.disable()


def _pool_context() -> Any:
    """Processes for parsing: fork from a single-threaded process (fastest), else a
    fork server (forking a threaded process can deadlock in the child)."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["context.parse_pool"])
        return ctx
    return multiprocessing.get_context("spawn")


class ParsePool:
    """Feeds files to parse, in this thread when they are few, else to worker processes;
    hands results to ``merge`` and ``save`` as they arrive.

    Scheduling: at most ``IN_FLIGHT_PER_WORKER`` batches per worker are handed out, the
    rest waits here. While the walk goes on, batches are ``BATCH_BYTES``; once it is over,
    what is left is handed out biggest file first, in batches that shrink with what
    remains (guided self-scheduling), so the workers finish together instead of one
    parsing a last big batch while the other core idles.
    """

    def __init__(
        self,
        merge: Callable[[list[ParseResult]], None],
        save: Callable[[], None],
        *,
        workers: int,
        max_file_size: int,
        progress: Callable[[int, int, str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """``merge(results)`` takes results into the index as they arrive; ``save()``
        writes what was merged so far (every ``SAVE_EVERY`` files). ``workers``: parse
        processes (1 = parse in this thread); it falls to 1 when none can start."""
        self.merge = merge
        self.save = save
        self.workers = workers
        self.max_file_size = max_file_size
        self.progress = progress
        self.cancel = cancel
        self.reused = 0
        self.still_skipped = 0  # unchanged files that stay out (binary, too big)
        self.done = 0
        self.total = 0
        self.queue: list[tuple[Task, int]] = []  # to parse, not handed out; popped at the end
        self.queued_bytes = 0
        self.walked = False
        self.unsaved = 0  # merged results not yet written to the store
        self.executor: concurrent.futures.ProcessPoolExecutor | None = None
        # In flight: the batch, and the pool it went to (a broken pool fails them all).
        self.futures: dict[
            concurrent.futures.Future[list[ParseResult]],
            tuple[list[Task], concurrent.futures.ProcessPoolExecutor],
        ] = {}
        # Files of a batch whose worker died, retried one per batch: the one that kills
        # its worker again is skipped; the parser never runs in this process.
        self.solo: list[Task] = []
        self.solo_future: concurrent.futures.Future[list[ParseResult]] | None = None
        self.isolating = False
        self.restarts = 0

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def reuse(self, path: str, skipped: bool = False) -> None:
        """An unchanged file: nothing to parse (one still skipped counts as skipped)."""
        self.total += 1
        self.done += 1
        if skipped:
            self.still_skipped += 1
            return
        self.reused += 1
        if self.reused % 256 == 0:  # reusing is quick: report now and then
            self._report(path)

    def add(self, task: Task, size: int) -> None:
        self.total += 1
        self.queue.append((task, size))
        self.queued_bytes += size
        if self.executor is None:
            if len(self.queue) >= PARALLEL_THRESHOLD and self.workers > 1:
                self._start()
            return
        self._collect(block=False)
        self._pump()

    def _start(self) -> None:
        # Compile the queries first: forked workers inherit them.
        for language in {t[1] for t, _ in self.queue if has_grammar(t[1])}:
            try:
                query(language)
            except Exception:  # the worker will log it
                pass
        try:
            self.executor = self._pool()
        except (OSError, ValueError) as exc:
            log.warning("cannot start parse workers (%s): parsing in this thread", exc)
            self.workers = 1
            return
        self.queue.sort(key=lambda item: item[1])
        self._pump()

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=_pool_context(), initializer=_worker_init
        )

    def _restart(self, broken: concurrent.futures.ProcessPoolExecutor) -> bool:
        """A worker died: a new pool in place of ``broken`` (once). False when there
        have been too many deaths to go on: what is left is then skipped."""
        if broken is not self.executor:
            return self.executor is not None
        broken.shutdown(wait=False, cancel_futures=True)
        self.restarts += 1
        if self.restarts > MAX_POOL_RESTARTS:
            log.error("parse workers died %d times: skipping the files left", self.restarts)
            self.executor = None
            return False
        try:
            self.executor = self._pool()
        except (OSError, ValueError) as exc:
            log.error("cannot restart parse workers (%s): skipping the files left", exc)
            self.executor = None
            return False
        return True

    def _skip(self, tasks: list[Task], why: str) -> None:
        """Record files as skipped, with their stat: unchanged, they are not tried again."""
        results = []
        for path, _, _ in tasks:
            log.warning("not indexed: %s (%s)", path, why)
            try:
                st = os.stat(path)
            except OSError:
                results.append(ParseResult(path, "missing"))
                continue
            results.append(ParseResult(path, "skipped", st.st_size, st.st_mtime_ns))
        self._merge(results)

    def _pump(self) -> None:
        """Hand batches to the workers while fewer than the allowed number are out.

        After a worker died, the files of its batch are retried one at a time with
        nothing else out, so a file that kills its worker again is known for sure."""
        if self.executor is None or self.solo_future is not None:
            return
        most = self.workers * IN_FLIGHT_PER_WORKER
        while (self.solo or self.queue) and len(self.futures) < most and not self._cancelled():
            if self.solo:
                if self.futures:
                    return  # what is out finishes (or fails) first
                batch = [self.solo.pop()]
                self.isolating = True
            else:
                batch = self._next_batch()
                if not batch:
                    return
            executor = self.executor
            try:
                future = executor.submit(_index_batch, batch, self.max_file_size)
            except RuntimeError:  # the pool broke (a worker died) or was shut down
                self.solo.extend(batch)
                if not self._restart(executor):
                    self._skip_left("the parse workers keep dying")
                    return
                continue
            self.futures[future] = (batch, executor)
            if self.isolating:
                self.isolating = False
                self.solo_future = future
                return

    def _next_batch(self) -> list[Task]:
        if self.walked:
            # Shrinking batches: the remaining work split in 4 per worker.
            share = self.queued_bytes // (4 * self.workers)
            limit = max(MIN_BATCH_BYTES, min(BATCH_BYTES, share))
        else:
            limit = BATCH_BYTES
            if self.queued_bytes < limit and len(self.queue) < BATCH_FILES:
                return []  # wait for a full batch while the walk finds files
        batch: list[Task] = []
        size = 0
        while self.queue and size < limit and len(batch) < BATCH_FILES:
            task, task_size = self.queue.pop()
            batch.append(task)
            size += task_size
        self.queued_bytes -= size
        return batch

    def _skip_left(self, why: str) -> None:
        left = self.solo + [task for task, _ in self.queue]
        self.solo, self.queue, self.queued_bytes = [], [], 0
        for future, (batch, _) in list(self.futures.items()):
            future.cancel()
            left.extend(batch)
        self.futures.clear()
        self._skip(left, why)

    def _collect(self, block: bool) -> None:
        """Merge finished batches (waiting for one when ``block``), refilling the workers
        before merging so that they never wait for this thread."""
        if not self.futures:
            return
        if block:
            done, _ = concurrent.futures.wait(
                self.futures, return_when=concurrent.futures.FIRST_COMPLETED
            )
        else:
            done = {f for f in self.futures if f.done()}
            if not done:
                return
        finished = [(f, *self.futures.pop(f)) for f in done]
        alone = self.solo_future
        if alone in done:
            self.solo_future = None
        self._pump()
        broken = False
        for future, batch, executor in finished:
            if future.cancelled():
                continue
            try:
                results = future.result()
            except concurrent.futures.process.BrokenProcessPool:
                if future is alone:  # it ran alone: this file killed its worker
                    self._skip(batch, "the parser crashed on it")
                else:
                    log.warning("a parse worker died: retrying its %d files one by one", len(batch))
                    self.solo.extend(batch)
                if not broken and not self._restart(executor):
                    self._skip_left("the parse workers keep dying")
                    return
                broken = True
                continue
            self._merge(results)
        if broken:
            self._pump()

    def _merge(self, results: list[ParseResult]) -> None:
        self.merge(results)
        self.done += len(results)
        self.unsaved += len(results)
        if self.unsaved >= SAVE_EVERY:
            self._save()
        if results:
            self._report(results[-1].path)

    def _save(self) -> None:
        """Write what was merged so far (while the workers parse on): a cancelled or
        interrupted build keeps it, and the end of the build has little left to write."""
        self.save()
        self.unsaved = 0

    def _report(self, path: str) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total, path)

    def finish(self) -> None:
        """Parse what is left and wait for the workers (what is merged is saved by the
        caller, with the deletions)."""
        self.walked = True
        if self.executor is None:
            pending, self.queue = self.queue, []
            for task, _ in pending:
                if self._cancelled():
                    break
                self._merge([index_file(*task, self.max_file_size)])
        else:
            try:
                self.queue.sort(key=lambda item: item[1])  # biggest popped first
                self._pump()
                while self.futures:
                    self._collect(block=True)
                    if self._cancelled():
                        for future in self.futures:
                            future.cancel()
                        self._collect(block=False)
                        break
            finally:
                if self.executor is not None:  # (a restart may have replaced it)
                    self.executor.shutdown(wait=True, cancel_futures=True)
                self.executor = None
                self.queue = []
        if self.progress is not None:
            self.progress(self.done, self.total, "")
