"""Background housekeeping: the OCPP message log and the raw meter frames are kept for a configurable number of days.

Raw frames (`VOLTLINE_METER_RETENTION_DAYS`, 0 = for ever) go in arrival order, a chunk per
transaction so that the meter writer never waits long; the 15-minute rollups and the energy
registers derived from them stay (usage and energy history keep working), and so do the latest
values. A frame stamped long before it arrived (an offline queue) goes once every frame that
arrived before it has gone.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from voltline.services.runtime import Runtime
from voltline.store import meter_values
from voltline.store.ocpp_log import purge_ocpp_log
from voltline.tasks import cancel_and_wait

log = logging.getLogger("voltline.services.maintenance")
PURGE_EVERY_SECONDS = 3600.0
FRAMES_PER_DELETE = 10_000  # one transaction; SQLite's one writer is free again between chunks


async def purge_expired_log(runtime: Runtime) -> int:
    """Delete message-log rows older than `ocpp_log_retention_days`; returns how many went."""
    cutoff = runtime.clock.now() - timedelta(days=runtime.settings.ocpp_log_retention_days)
    async with runtime.db.write() as conn:
        removed = await purge_ocpp_log(conn, cutoff)
    if removed:
        log.info("removed %d OCPP log entries older than %s", removed, cutoff.isoformat(timespec="seconds"))
    return removed


async def purge_old_meter_frames(runtime: Runtime) -> int:
    """Delete raw meter frames stamped more than `meter_retention_days` ago (0: keep all); how many went."""
    days = runtime.settings.meter_retention_days
    if days <= 0:
        return 0
    cutoff = runtime.clock.now() - timedelta(days=days)
    async with runtime.db.scan() as conn:
        ids = await meter_values.frame_id_range(conn)
        boundary = await meter_values.first_frame_id_since(conn, cutoff)
    if ids is None:
        return 0
    end = ids[1] + 1 if boundary is None else boundary
    removed = 0
    for start in range(ids[0], end, FRAMES_PER_DELETE):
        async with runtime.db.write() as conn:
            removed += await meter_values.delete_frames_before(conn, cutoff, start, min(start + FRAMES_PER_DELETE, end))
        await asyncio.sleep(0)  # the writer and the handlers get their turn between chunks
    if removed:
        log.info("removed %d meter frames stamped before %s", removed, cutoff.isoformat(timespec="seconds"))
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
            try:
                await purge_old_meter_frames(self.runtime)
            except Exception:  # task boundary: try again next time
                log.exception("purging old meter frames failed")
            await self.runtime.clock.sleep(PURGE_EVERY_SECONDS)
