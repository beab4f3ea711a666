"""Background tasks of a process: stopping them, waiting for an event or a timer, and timing out on an answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
SLICE_SECONDS = 0.1  # answer_within counts time in slices this long
LAG_FACTOR = 5  # answer_within gives up after this many times its budget of wall time, however late the loop ran


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any] | None]) -> None:
    """Cancel the tasks (None is skipped), then wait until each has ended."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_event_or(event: asyncio.Event, timer: Awaitable[Any]) -> bool:
    """Wait until `event` is set or `timer` (a clock sleep) ends, whichever is first; True when the event is set."""
    if event.is_set():
        if asyncio.iscoroutine(timer):
            timer.close()  # never started: nothing to wait for
        return True
    waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(timer)]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    return event.is_set()


async def answer_within(work: Coroutine[Any, Any, T], seconds: float) -> T:
    """`work`'s result if it comes within `seconds` of the answerer's time; TimeoutError if not.

    Time counts in slices of SLICE_SECONDS; a slice the event loop itself overran (a process
    busy with a reconnect storm, or starved of the CPU) counts as SLICE_SECONDS only, so a late
    loop is not taken for a slow peer (a database that answered long ago waits in the loop's
    queue). However late the loop runs, the wait ends with the first slice past LAG_FACTOR x `seconds`
    of wall time.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    started, charged = loop.time(), 0.0
    try:
        while True:
            before = loop.time()
            done, _ = await asyncio.wait({task}, timeout=SLICE_SECONDS)
            if done:
                return task.result()
            now = loop.time()
            charged += min(now - before, SLICE_SECONDS)
            if charged >= seconds or now - started >= seconds * LAG_FACTOR:
                raise TimeoutError(f"no answer within {seconds:g} s")
    finally:
        abandon(task)


def abandon(task: asyncio.Future[Any]) -> None:
    """Cancel `task` without waiting for it to end (a driver call may not end at once, or at all).

    Its outcome, when it comes, is read and dropped, so asyncio does not log it as never retrieved.
    """
    if not task.done():
        task.cancel()
    task.add_done_callback(_drop_outcome)


def _drop_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
