"""Waiting on the event loop for work done elsewhere, without blocking it: a job of the
engine thread (`await_future`), or a long blocking call in a thread of its own
(`in_thread`). Plain asyncio: the handlers in `protocol/` and the flows in `requests.py`
share them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from lsp_server.engine.types import Cancelled

T = TypeVar("T")


async def await_future(future: Future[T], on_cancel: Callable[[], None]) -> T:
    """Await a worker future. A job the worker cancelled (superseded, preempted, a model
    reload) raises `Cancelled`; cancelling the awaiting task (the client's
    `$/cancelRequest`) calls `on_cancel` (which cancels the job) and raises
    `CancelledError` as usual."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[T] = loop.create_future()

    def transfer(done: Future[T]) -> None:
        if waiter.done():
            return
        if done.cancelled():
            waiter.set_exception(Cancelled("cancelled"))
        elif (exc := done.exception()) is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(done.result())

    future.add_done_callback(lambda done: loop.call_soon_threadsafe(transfer, done))
    try:
        return await waiter
    except asyncio.CancelledError:
        on_cancel()
        raise


def in_thread(call: Callable[[], T], name: str) -> asyncio.Future[T]:
    """Run a long blocking `call` in a daemon thread of its own. Not the loop's default
    executor: leaving the event loop waits for every job in that one, so a big index build
    would keep a server whose client has gone (EOF, `exit`) alive until it ended."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if not future.done():
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

    def work() -> None:
        try:
            value, error = call(), None
        except BaseException as exc:  # handed to the awaiting coroutine
            value, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, value, error)
        except RuntimeError:  # the loop is closed: nobody awaits it any more
            pass

    threading.Thread(target=work, name=name, daemon=True).start()
    return future
