"""The one thread that owns the llama context, and the queue in front of it.

Jobs run one at a time, highest priority first (user requests, then prefetch, then
warm-up). A job submitted with a `key` supersedes the queued or running jobs with the
same key (a newer completion for the same document), and a user request preempts a
running background job at its next cancellation check. Callers get a
`concurrent.futures.Future`; asyncio code awaits it with `asyncio.wrap_future`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Generic, TypeVar

from lsp_server.engine.types import Cancelled, CancelToken

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class Priority(IntEnum):
    USER = 0
    PREFETCH = 1
    WARMUP = 2


@dataclass(order=True)
class _Entry:
    priority: int
    seq: int
    job: Job[Any] = field(compare=False)


class Job(Generic[R]):
    """A unit of work for the owner thread, with its cancel token and result future."""

    def __init__(
        self,
        fn: Callable[[CancelToken], R],
        priority: Priority,
        key: str | None,
        deadline: float | None,
    ) -> None:
        self.fn = fn
        self.priority = priority
        self.key = key
        self.token = CancelToken(deadline, int(priority))
        self.future: Future[R] = Future()
        self._worker: EngineWorker[Any] | None = None

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop it: a running job at its next check; a queued one at once (its future is
        cancelled now, not when the engine gets to it)."""
        self.token.cancel(reason)
        if self._worker is not None:
            self._worker._drop(self)


class EngineWorker(Generic[T]):
    """Runs jobs on a single daemon thread that owns a resource of type T."""

    def __init__(self, name: str = "qwen-lsp-engine") -> None:
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._running: Job[Any] | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(
        self,
        fn: Callable[[CancelToken], R],
        *,
        priority: Priority = Priority.USER,
        key: str | None = None,
        timeout_s: float | None = None,
    ) -> Job[R]:
        """Queue `fn(token)`; it raises `Cancelled` when cancelled (the future is then cancelled)."""
        deadline = time.monotonic() + timeout_s if timeout_s else None
        job: Job[R] = Job(fn, priority, key, deadline)
        job._worker = self
        with self._cv:
            if self._stopped:
                job.future.set_exception(RuntimeError("the engine has shut down"))
                return job
            if key is not None:
                for entry in list(self._heap):  # cancelling takes it out of the heap
                    if entry.job.key == key and entry.job.priority >= priority:
                        entry.job.cancel("superseded")
                running = self._running
                if running is not None and running.key == key and running.priority >= priority:
                    running.cancel("superseded")
            running = self._running
            if running is not None and running.priority > priority:
                running.cancel("preempted")
            heapq.heappush(self._heap, _Entry(int(priority), next(self._seq), job))
            self._cv.notify()
        return job

    def cancel_all(self, *, below: Priority | None = None) -> None:
        """Cancel queued and running jobs (only those of lower priority than `below`)."""
        with self._cv:
            jobs = [e.job for e in self._heap] + ([self._running] if self._running else [])
            for job in jobs:
                if below is None or job.priority > below:
                    job.cancel("cancelled")

    def _drop(self, job: Job[Any]) -> None:
        """Take a cancelled job out of the queue and cancel its future (no-op once the
        loop has taken it: the loop reports it)."""
        with self._cv:
            for i, entry in enumerate(self._heap):
                if entry.job is job:
                    self._heap[i] = self._heap[-1]
                    self._heap.pop()
                    heapq.heapify(self._heap)
                    job.future.cancel()
                    return

    def busy(self) -> bool:
        with self._cv:
            return self._running is not None or bool(self._heap)

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._stopped = True
            for entry in list(self._heap):
                entry.job.cancel("shutdown")
            if self._running is not None:
                self._running.cancel("shutdown")
            self._cv.notify_all()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._heap and not self._stopped:
                    self._cv.wait()
                if not self._heap:
                    return
                job = heapq.heappop(self._heap).job
                self._running = job
            try:
                if job.token.cancelled:
                    raise Cancelled(job.token.reason)
                if not job.future.set_running_or_notify_cancel():
                    continue
                job.future.set_result(job.fn(job.token))
            except Cancelled:
                if not job.future.cancel():
                    _set_cancelled(job.future)
            except BaseException as exc:  # reported to the caller, never kills the thread
                if not job.future.done():
                    job.future.set_exception(exc)
            finally:
                with self._cv:
                    self._running = None


def _set_cancelled(future: Future[Any]) -> None:
    """A running future cannot be cancelled: report it through a `Cancelled` exception."""
    if not future.done():
        future.set_exception(Cancelled("cancelled"))
