"""The engine's owner thread and its queue, with plain Python functions as jobs."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from typing import Any

import pytest

from lsp_server.engine.types import Cancelled, CancelToken
from lsp_server.engine.worker import EngineWorker, Priority

WAIT = 5.0  # seconds; generous, but a hang fails instead of blocking the suite


@pytest.fixture
def worker() -> Iterator[EngineWorker[Any]]:
    w: EngineWorker[Any] = EngineWorker(name=f"test-engine-{uuid.uuid4().hex[:8]}")
    yield w
    w.shutdown()


class Spinner:
    """A job that runs until released, checking its token like a decode loop."""

    def __init__(self, result: str = "spun") -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.result = result

    def __call__(self, token: CancelToken) -> str:
        self.started.set()
        deadline = time.monotonic() + WAIT
        while not self.release.is_set() and time.monotonic() < deadline:
            token.check()
            time.sleep(0.002)
        return self.result


def recorder(log: list[str], name: str) -> Callable[[CancelToken], str]:
    def job(token: CancelToken) -> str:
        token.check()
        log.append(name)
        return name

    return job


def was_cancelled(future: Future[Any]) -> bool:
    try:
        future.result(timeout=WAIT)
    except (Cancelled, CancelledError):
        return True
    return False


def hold(worker: EngineWorker[Any]) -> Spinner:
    """Occupy the thread with a user job, so the next submissions queue up together."""
    spinner = Spinner("gate")
    worker.submit(spinner, priority=Priority.USER)
    assert spinner.started.wait(WAIT)
    return spinner


def test_result_is_delivered(worker: EngineWorker[Any]) -> None:
    job = worker.submit(lambda token: 6 * 7)
    assert job.future.result(timeout=WAIT) == 42


def test_jobs_run_on_one_thread_that_is_not_the_caller(worker: EngineWorker[Any]) -> None:
    threads = {
        worker.submit(lambda token: threading.get_ident()).future.result(timeout=WAIT)
        for _ in range(5)
    }
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_user_before_prefetch_before_warmup(worker: EngineWorker[Any]) -> None:
    gate = hold(worker)
    order: list[str] = []
    jobs = [
        worker.submit(recorder(order, "warmup"), priority=Priority.WARMUP),
        worker.submit(recorder(order, "prefetch"), priority=Priority.PREFETCH),
        worker.submit(recorder(order, "user-1"), priority=Priority.USER),
        worker.submit(recorder(order, "prefetch-2"), priority=Priority.PREFETCH),
        worker.submit(recorder(order, "user-2"), priority=Priority.USER),
    ]
    gate.release.set()
    for job in jobs:
        job.future.result(timeout=WAIT)
    # first by priority, then in the order they came
    assert order == ["user-1", "user-2", "prefetch", "prefetch-2", "warmup"]


def test_newer_job_with_the_same_key_supersedes_a_queued_one(worker: EngineWorker[Any]) -> None:
    gate = hold(worker)
    ran: list[str] = []
    old = worker.submit(recorder(ran, "old"), key="file:///a.py")
    new = worker.submit(recorder(ran, "new"), key="file:///a.py")
    gate.release.set()
    assert new.future.result(timeout=WAIT) == "new"
    assert was_cancelled(old.future)
    assert old.token.reason == "superseded"
    assert ran == ["new"]  # the old one never ran


def test_newer_job_with_the_same_key_cancels_the_running_one(worker: EngineWorker[Any]) -> None:
    running = Spinner()
    old = worker.submit(running, key="file:///a.py")
    assert running.started.wait(WAIT)
    new = worker.submit(lambda token: "new", key="file:///a.py")
    assert new.future.result(timeout=WAIT) == "new"
    assert was_cancelled(old.future)
    assert old.token.reason == "superseded"


def test_other_keys_are_not_superseded(worker: EngineWorker[Any]) -> None:
    gate = hold(worker)
    ran: list[str] = []
    a = worker.submit(recorder(ran, "a"), key="file:///a.py")
    b = worker.submit(recorder(ran, "b"), key="file:///b.py")
    c = worker.submit(recorder(ran, "c"))  # no key: never superseded
    d = worker.submit(recorder(ran, "d"))
    gate.release.set()
    assert [j.future.result(timeout=WAIT) for j in (a, b, c, d)] == ["a", "b", "c", "d"]


def test_background_job_does_not_supersede_a_user_job_with_its_key(
    worker: EngineWorker[Any],
) -> None:
    gate = hold(worker)
    ran: list[str] = []
    user = worker.submit(recorder(ran, "user"), key="k", priority=Priority.USER)
    background = worker.submit(recorder(ran, "prefetch"), key="k", priority=Priority.PREFETCH)
    gate.release.set()
    assert user.future.result(timeout=WAIT) == "user"
    assert background.future.result(timeout=WAIT) == "prefetch"


def test_user_job_preempts_a_running_warmup(worker: EngineWorker[Any]) -> None:
    warm = Spinner()
    warmup = worker.submit(warm, priority=Priority.WARMUP, key="warm:a.py")
    assert warm.started.wait(WAIT)
    started = time.monotonic()
    user = worker.submit(lambda token: "user", priority=Priority.USER, key="a.py")
    assert user.future.result(timeout=WAIT) == "user"
    assert time.monotonic() - started < WAIT / 2  # did not wait for the warm-up to end
    assert was_cancelled(warmup.future)
    assert warmup.token.reason == "preempted"


def test_prefetch_preempts_warmup_but_not_a_user_job(worker: EngineWorker[Any]) -> None:
    warm = Spinner()
    warmup = worker.submit(warm, priority=Priority.WARMUP)
    assert warm.started.wait(WAIT)
    prefetch = worker.submit(lambda token: "prefetch", priority=Priority.PREFETCH)
    assert prefetch.future.result(timeout=WAIT) == "prefetch"
    assert was_cancelled(warmup.future)

    user = Spinner("user")
    user_job = worker.submit(user, priority=Priority.USER)
    assert user.started.wait(WAIT)
    later = worker.submit(lambda token: "later", priority=Priority.PREFETCH)
    time.sleep(0.05)
    assert not user_job.token.cancelled
    user.release.set()
    assert user_job.future.result(timeout=WAIT) == "user"
    assert later.future.result(timeout=WAIT) == "later"


def test_a_user_job_does_not_preempt_another_user_job(worker: EngineWorker[Any]) -> None:
    first = Spinner("first")
    a = worker.submit(first, priority=Priority.USER)
    assert first.started.wait(WAIT)
    b = worker.submit(lambda token: "second", priority=Priority.USER)
    time.sleep(0.05)
    assert not a.token.cancelled and not b.future.done()
    first.release.set()
    assert a.future.result(timeout=WAIT) == "first"
    assert b.future.result(timeout=WAIT) == "second"


def test_an_exception_reaches_the_caller_and_the_thread_goes_on(
    worker: EngineWorker[Any],
) -> None:
    def broken(token: CancelToken) -> None:
        raise ValueError("bad prompt")

    failed = worker.submit(broken)
    with pytest.raises(ValueError, match="bad prompt"):
        failed.future.result(timeout=WAIT)
    assert worker.submit(lambda token: "still here").future.result(timeout=WAIT) == "still here"


def test_cancelling_a_queued_job_means_it_never_runs(worker: EngineWorker[Any]) -> None:
    gate = hold(worker)
    ran: list[str] = []
    job = worker.submit(recorder(ran, "job"))
    job.cancel("cancelled by the client")
    gate.release.set()
    assert was_cancelled(job.future)
    assert worker.submit(lambda token: "next").future.result(timeout=WAIT) == "next"
    assert ran == []


def test_cancel_all_below_a_priority(worker: EngineWorker[Any]) -> None:
    gate = Spinner("gate")
    user = worker.submit(gate, priority=Priority.USER)
    assert gate.started.wait(WAIT)
    ran: list[str] = []
    prefetch = worker.submit(recorder(ran, "prefetch"), priority=Priority.PREFETCH)
    warmup = worker.submit(recorder(ran, "warmup"), priority=Priority.WARMUP)
    worker.cancel_all(below=Priority.USER)
    assert not user.token.cancelled
    gate.release.set()
    assert user.future.result(timeout=WAIT) == "gate"
    assert was_cancelled(prefetch.future) and was_cancelled(warmup.future)
    assert ran == []


def test_busy(worker: EngineWorker[Any]) -> None:
    assert not worker.busy()
    gate = hold(worker)
    assert worker.busy()
    gate.release.set()
    deadline = time.monotonic() + WAIT
    while worker.busy() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not worker.busy()


def test_shutdown_cancels_everything_and_stops_the_thread() -> None:
    name = f"test-engine-{uuid.uuid4().hex[:8]}"
    worker: EngineWorker[Any] = EngineWorker(name=name)
    running = Spinner()
    current = worker.submit(running)
    assert running.started.wait(WAIT)
    queued = worker.submit(lambda token: "queued")
    worker.shutdown(timeout=WAIT)
    assert was_cancelled(current.future)
    assert was_cancelled(queued.future)
    assert name not in {t.name for t in threading.enumerate()}
    late = worker.submit(lambda token: "late")
    with pytest.raises(RuntimeError, match="shut down"):
        late.future.result(timeout=WAIT)


def test_a_queued_job_cancelled_or_superseded_answers_at_once(
    worker: EngineWorker[Any],
) -> None:
    """Its caller must not wait for the engine to finish what it is doing (a long
    completion) to learn that the job will never run."""
    gate = hold(worker)
    cancelled = worker.submit(lambda token: "a")
    superseded = worker.submit(lambda token: "b", key="file:///a.py")
    newer = worker.submit(lambda token: "c", key="file:///a.py")
    cancelled.cancel("cancelled by the client")
    assert cancelled.future.cancelled() and superseded.future.cancelled()
    assert not gate.release.is_set()  # the engine is still busy
    gate.release.set()
    assert newer.future.result(timeout=WAIT) == "c"
    assert not worker.busy() or worker.submit(lambda token: 1).future.result(timeout=WAIT) == 1
