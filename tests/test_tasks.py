"""tasks.answer_within: a timeout on a peer's answer that a late event loop does not trip.

/readyz pings the database with it (store/engine.py): a process busy with a reconnect storm
runs its loop late, and the database's answer then waits in the loop's queue; that is not a
database that failed to answer.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from voltline.tasks import LAG_FACTOR, answer_within


async def answer(value: int, after: float) -> int:
    await asyncio.sleep(after)
    return value


def test_an_answer_in_time_is_returned() -> None:
    assert asyncio.run(answer_within(answer(42, 0.01), 1.0)) == 42


def test_no_answer_within_the_budget_is_a_timeout_and_the_work_is_cancelled() -> None:
    cancelled = []

    async def never() -> int:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return 0

    async def scenario() -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await answer_within(never(), 0.3)
        return time.monotonic() - started

    took = asyncio.run(scenario())
    assert 0.3 <= took < 0.3 * LAG_FACTOR + 0.5  # the budget, or its wall-time bound on a busy machine
    assert cancelled == [True]


def test_a_loop_that_ran_late_does_not_count_against_the_answer() -> None:
    """The answer came after 0.05 s, but the loop was busy for 1.2 s: with asyncio.timeout(0.5) the
    timer and the answer are due in the same loop turn and the timer wins; answer_within returns it."""

    async def scenario() -> int:
        asyncio.get_running_loop().call_later(0.02, time.sleep, 1.2)  # a callback that holds the loop
        return await answer_within(answer(7, 0.05), 0.5)

    assert asyncio.run(scenario()) == 7


def test_a_late_loop_still_ends_the_wait_after_lag_factor_times_the_budget() -> None:
    """The loop runs 0.3 s late at every turn: the wait ends at the first slice past 5 x 0.2 s of wall time."""

    async def scenario() -> float:
        loop = asyncio.get_running_loop()

        waiting = True

        def busy() -> None:  # the loop runs late, again and again, while the wait lasts
            time.sleep(0.3)
            if waiting:
                loop.call_soon(busy)

        loop.call_soon(busy)
        started = time.monotonic()
        try:
            with pytest.raises(TimeoutError):
                await answer_within(answer(0, 3600), 0.2)
            return time.monotonic() - started
        finally:
            waiting = False

    took = asyncio.run(scenario())
    assert 0.2 * LAG_FACTOR <= took < 0.2 * LAG_FACTOR + 3 * 0.3 * 2  # up to a slice of three late turns past it
