"""One injectable clock for everything that reads the time or waits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime


class Clock:
    """Wall-clock time and sleeping; tests substitute a clock they advance by hand."""

    def now(self) -> datetime:
        """The current moment, naive UTC (as stored)."""
        return datetime.now(UTC).replace(tzinfo=None)

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        """Wait for the given number of seconds."""
        await asyncio.sleep(seconds)
