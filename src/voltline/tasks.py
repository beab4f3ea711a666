"""Background tasks of a process: stopping them, and waiting for an event or a timer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterable
from typing import Any


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
