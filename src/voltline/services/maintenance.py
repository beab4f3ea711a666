"""Background housekeeping: the OCPP message log, raw meter frames and the audit log are kept a set number of days.

Raw frames (`VOLTLINE_METER_RETENTION_DAYS`, 0 = for ever) go in arrival order, a chunk per
transaction so that the meter writer never waits long; the 15-minute rollups and the energy
registers derived from them stay (usage and energy history keep working), and so do the latest
values. A frame stamped long before it arrived (an offline queue) goes once every frame that
arrived before it has gone.

The audit log (`VOLTLINE_AUDIT_RETENTION_DAYS`, 0 = for ever, the default) goes the same way,
oldest first, in chunks of rows.

Diagnostics upload requests whose one-time token expired before a file came are forgotten
(services/diagnostics.py); the files and their requests stay.

Reservations past their `expires_at` are marked expired every `RESERVATION_SWEEP_SECONDS`, in
a loop of their own so that an hour's purge never delays them (services/reservations.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.services import diagnostics, reservations
from voltline.services.runtime import Runtime
from voltline.store import audit, meter_values
from voltline.store.ocpp_log import purge_ocpp_log
from voltline.tasks import cancel_and_wait

log = logging.getLogger("voltline.services.maintenance")
PURGE_EVERY_SECONDS = 3600.0
FRAMES_PER_DELETE = 10_000  # one transaction; SQLite's one writer is free again between chunks
AUDIT_ROWS_PER_DELETE = 10_000  # likewise
RESERVATION_SWEEP_SECONDS = 5.0


async def purge_expired_log(runtime: Runtime) -> int:
    """Delete message-log rows older than `ocpp_log_retention_days`; returns how many went."""
    cutoff = runtime.clock.now() - timedelta(days=runtime.settings.ocpp_log_retention_days)
    async with runtime.db.write() as conn:
        removed = await purge_ocpp_log(conn, cutoff)
    if removed:
        log.info("removed %d OCPP log entries older than %s", removed, cutoff.isoformat(timespec="seconds"))
    return removed


@dataclass(frozen=True)
class Oldest:
    """A table whose rows come in time order, as the store reads and deletes its oldest ones."""

    what: str  # for the log: "<what> before <cutoff>"
    id_range: Callable[[AsyncConnection], Awaitable[tuple[int, int] | None]]
    first_id_since: Callable[[AsyncConnection, datetime], Awaitable[int | None]]
    delete_before: Callable[[AsyncConnection, datetime, int, int], Awaitable[int]]


METER_FRAMES = Oldest(
    "meter frames stamped",
    meter_values.frame_id_range,
    meter_values.first_frame_id_since,
    meter_values.delete_frames_before,
)
AUDIT_ROWS = Oldest(
    "audit log rows recorded", audit.audit_id_range, audit.first_audit_id_since, audit.delete_audit_rows_before
)


async def purge_old_meter_frames(runtime: Runtime) -> int:
    """Delete raw meter frames stamped more than `meter_retention_days` ago (0: keep all); how many went."""
    return await _purge(runtime, runtime.settings.meter_retention_days, METER_FRAMES, FRAMES_PER_DELETE)


async def purge_old_audit_rows(runtime: Runtime) -> int:
    """Delete audit rows recorded more than `audit_retention_days` ago (0: keep all); how many went."""
    return await _purge(runtime, runtime.settings.audit_retention_days, AUDIT_ROWS, AUDIT_ROWS_PER_DELETE)


async def _purge(runtime: Runtime, days: int, table: Oldest, per_delete: int) -> int:
    """Delete the rows older than `days` (0: none) in id order, `per_delete` ids per write transaction."""
    if days <= 0:
        return 0
    cutoff = runtime.clock.now() - timedelta(days=days)
    async with runtime.db.scan() as conn:
        ids = await table.id_range(conn)
        boundary = await table.first_id_since(conn, cutoff)
    if ids is None:
        return 0
    end = ids[1] + 1 if boundary is None else boundary
    removed = 0
    for start in range(ids[0], end, per_delete):
        async with runtime.db.write() as conn:
            removed += await table.delete_before(conn, cutoff, start, min(start + per_delete, end))
        await asyncio.sleep(0)  # the writer and the handlers get their turn between chunks
    if removed:
        log.info("removed %d %s before %s", removed, table.what, cutoff.isoformat(timespec="seconds"))
    return removed


class Housekeeping:
    """Runs the periodic jobs until stopped."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._task: asyncio.Task[None] | None = None
        self._expiry: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loops (the first purge and the first reservation sweep run at once)."""
        self._task = asyncio.create_task(self._run(), name="voltline-housekeeping")
        self._expiry = asyncio.create_task(self._expire(), name="voltline-reservation-expiry")

    async def stop(self) -> None:
        """Stop the loops."""
        await cancel_and_wait([self._task, self._expiry])
        self._task = self._expiry = None

    async def _expire(self) -> None:
        while True:
            try:
                await reservations.expire_reservations(self.runtime)
            except Exception:  # task boundary: try again next time
                log.exception("expiring reservations failed")
            await self.runtime.clock.sleep(RESERVATION_SWEEP_SECONDS)

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
            try:
                await purge_old_audit_rows(self.runtime)
            except Exception:  # task boundary: try again next time
                log.exception("purging old audit log rows failed")
            try:
                await diagnostics.purge_expired_requests(self.runtime)
            except Exception:  # task boundary: try again next time
                log.exception("purging expired diagnostics upload requests failed")
            await self.runtime.clock.sleep(PURGE_EVERY_SECONDS)
