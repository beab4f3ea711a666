"""A clock the test moves forward, and a live server that runs on it (DESIGN: one injectable clock)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import LiveServer
from voltline.app import create_app
from voltline.clock import Clock


class SteppedClock(Clock):
    """Real time plus an offset the test moves forward; a sleep ends when its deadline passes on this clock."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.sleeping: list[float] = []  # the lengths of the sleeps under way
        self._moved: asyncio.Event | None = None

    def now(self) -> datetime:
        """Wall-clock time, moved forward by the offset."""
        return super().now() + timedelta(seconds=self.offset)

    def monotonic(self) -> float:
        """Loop time, moved forward by the offset."""
        return super().monotonic() + self.offset

    async def sleep(self, seconds: float) -> None:
        """Wait until this clock has moved `seconds` on, by real time or by `advance`."""
        deadline = self.monotonic() + seconds
        self.sleeping.append(seconds)
        try:
            while (left := deadline - self.monotonic()) > 0:
                moved = self._moved = self._moved or asyncio.Event()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(moved.wait(), left)
        finally:
            self.sleeping.remove(seconds)

    async def advance(self, seconds: float) -> None:
        """Move the clock on (call it on the loop the sleepers run on)."""
        self.offset += seconds
        moved, self._moved = self._moved, None
        if moved is not None:
            moved.set()


class FollowingClock(Clock):
    """The time of another clock, for a peer on another event loop (a simulated charger): sleeps are real."""

    def __init__(self, leader: Clock) -> None:
        self.leader = leader

    def now(self) -> datetime:
        """The leader's time."""
        return self.leader.now()


class ClockedServer(LiveServer):
    """A live server whose app runs on the given clock: `create_app(settings, clock=...)`."""

    def __init__(self, *args: Any, clock: SteppedClock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock

    def start(self) -> None:
        """Start with the clock (LiveServer.start makes its app with the `create_app` of tests.conftest)."""
        from tests import conftest

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(conftest, "create_app", functools.partial(create_app, clock=self.clock))
            super().start()
