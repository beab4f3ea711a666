"""Background housekeeping: the OCPP message log is kept for a configurable number of days."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from voltline.services.runtime import Runtime
from voltline.store.ocpp_log import purge_ocpp_log
from voltline.tasks import cancel_and_wait

log = logging.getLogger("voltline.services.maintenance")
PURGE_EVERY_SECONDS = 3600.0


async def purge_expired_log(runtime: Runtime) -> int:
    """Delete message-log rows older than `ocpp_log_retention_days`; returns how many went."""
    cutoff = runtime.clock.now() - timedelta(days=runtime.settings.ocpp_log_retention_days)
    async with runtime.db.write() as conn:
        removed = await purge_ocpp_log(conn, cutoff)
    if removed:
        log.info("removed %d OCPP log entries older than %s", removed, cutoff.isoformat(timespec="seconds"))
    return removed


class Housekeeping:
    """Runs the periodic jobs until stopped."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loop (the first purge runs at once)."""
        self._task = asyncio.create_task(self._run(), name="voltline-housekeeping")

    async def stop(self) -> None:
        """Stop the loop."""
        await cancel_and_wait([self._task])
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await purge_expired_log(self.runtime)
            except Exception:  # task boundary: try again next time
                log.exception("purging the OCPP log failed")
            await self.runtime.clock.sleep(PURGE_EVERY_SECONDS)
