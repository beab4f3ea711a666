"""The batched writer: meter frames and the OCPP message log, flushed together every ≤ 50 ms.

Receive-path code never writes a row per frame: it enqueues and moves on. The queue is
bounded; when it is full `put_meter_frame` waits (backpressure) instead of dropping. A flush
writes the raw frames (one row per MeterValues frame, samples packed), the derived rows
(latest value per connector/measurand/phase, the transaction's energy register) and the
log entries in one transaction (executemany). `stop()` flushes what is queued.

Derived rows follow R-95 (spec/smart-charging.md §8.3; DESIGN: derived tables only): a
sample replaces the latest value when its timestamp is later or equal. Within one batch the
newest sample per key wins, ties broken by context (Transaction.End > Sample.Periodic >
Sample.Clock > others), then Outlet over other locations, then arrival order. The register
of a transaction only moves forward. A batch that fails is kept and retried; a batch that
fails on its data (a charger deleted meanwhile, a value out of range) is halved until the
bad rows are found, and only those are dropped, with an error in the log.

The same transaction keeps the 15-minute energy rollups (store/rollups.py, R-96..R-98): each
connector's register readings of the batch are walked from its stored baseline and their Wh
added per bucket. A batch with a reading not newer than the newest one already seen for that
connector (out of order, or a duplicate timestamp) is compared with the stored readings read
back from the raw frames before the batch is inserted: the connector's rollups move by the
difference between walking them without and with the batch, so arrival order does not change
the result. Baselines are read with FOR UPDATE on PostgreSQL (SQLite has one writer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Select, Table, bindparam, cast, func, insert, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.clock import Clock
from voltline.domain.meter_values import Sample, naive_utc, register_reading
from voltline.settings import Settings
from voltline.store import rollups
from voltline.store.engine import Database
from voltline.store.meter_values import (
    FRAME_COLUMNS,
    LATEST_COLUMNS,
    REGISTER_KEYS,
    frame_rows,
    latest_rows,
    latest_upsert,
    register_rows,
    register_update,
)
from voltline.store.ocpp_log import LOG_COLUMNS, log_rows
from voltline.store.rollups import REGISTER_COLUMNS, ROLLUP_COLUMNS, Connector, Key
from voltline.store.schema import energy_registers, energy_rollups, meter_frames, meter_latest, ocpp_messages

__all__ = ["LogEntry", "MeterFrame", "MeterWriter", "Sample"]

log = logging.getLogger("voltline.writer")

FLUSH_INTERVAL = 0.05  # seconds; DESIGN: flush every ≤ 50 ms
MAX_QUEUED_FRAMES = 50_000
MAX_QUEUED_LOG_ENTRIES = 50_000
# One write transaction holds at most this many frames (and log entries), so that API writes
# on SQLite's single writer connection never wait long behind a backlog.
MAX_BATCH = 5_000
INLINE_FRAMES = 100
MAX_RETRY_DELAY = 5.0
STOP_ATTEMPTS = 3
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class MeterFrame:
    """One MeterValue element (a timestamp and its samples) of a charger's connector."""

    charger_id: int
    team_id: int | None
    site_id: int | None
    connector_number: int
    transaction_id: int | None
    timestamp: datetime
    samples: tuple[Sample, ...]
    received_at: datetime


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One OCPP frame for the message log."""

    charger_id: int
    direction: str  # "in" (charger -> Voltline) or "out"
    message_type: int  # 2 CALL, 3 CALLRESULT, 4 CALLERROR
    message_id: str
    action: str | None
    payload: str  # the JSON text as sent/received (or a placeholder when the payload is not kept)
    created_at: datetime = field(default_factory=_utcnow)
    team_id: int | None = None  # the charger's team when the frame was logged; None: shown to no team


@dataclass(slots=True)
class _Batch:
    """Frames and log entries written in one transaction."""

    frames: list[MeterFrame]
    logs: list[LogEntry]

    def __len__(self) -> int:
        return len(self.frames) + len(self.logs)

    @staticmethod
    def join(batches: list[_Batch]) -> _Batch:
        """One batch with the rows of all, in order."""
        if len(batches) == 1:
            return batches[0]
        return _Batch([f for b in batches for f in b.frames], [e for b in batches for e in b.logs])

    def halves(self) -> tuple[_Batch, _Batch]:
        """Two batches with half of the rows each (to find the rows a database refuses)."""
        half = len(self) // 2
        f = min(half, len(self.frames))
        g = half - f
        return _Batch(self.frames[:f], self.logs[:g]), _Batch(self.frames[f:], self.logs[g:])


def _describe(batch: _Batch) -> str:
    if batch.frames:
        frame = batch.frames[0]
        return f"meter frame of charger {frame.charger_id} connector {frame.connector_number} at {frame.timestamp}"
    entry = batch.logs[0]
    return f"log entry of charger {entry.charger_id} message {entry.message_id!r}"


Row = tuple[Any, ...]
Stamp = Callable[[datetime], Any]


def sqlite_time(moment: datetime) -> str:
    """A moment as SQLAlchemy's SQLite DateTime stores it (text that sorts by time)."""
    return naive_utc(moment).isoformat(" ", "microseconds")


class RowsStatement:
    """A Core statement compiled once for the dialect and run as executemany on the driver (SQLite).

    The hot path skips SQLAlchemy's per-row parameter processing (measured: most of a flush's
    time on the event loop). Rows are tuples in `keys` order, holding values the driver takes.
    """

    def __init__(self, statement: Any, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql: str = compiled.string
        order = [list(keys).index(name) for name in compiled.positiontup or ()]
        self.order = None if order == list(range(len(keys))) else order

    def arrange(self, row: Row) -> Row:
        """The row's values in the order of the statement's parameters."""
        return row if self.order is None else tuple(row[i] for i in self.order)

    async def run(self, conn: AsyncConnection, rows: Sequence[Row]) -> None:
        """Execute once per row (nothing for no rows)."""
        if rows:
            await conn.exec_driver_sql(self.sql, rows if self.order is None else [self.arrange(r) for r in rows])


class ColumnsStatement(RowsStatement):
    """PostgreSQL: the rows sent as one array per column and unnested by the server, one round trip."""

    async def run(self, conn: AsyncConnection, rows: Sequence[Row]) -> None:
        """Execute once with every row."""
        if rows:
            columns = self.arrange(tuple(list(column) for column in zip(*rows, strict=True)))
            await conn.exec_driver_sql(self.sql, columns)


def unnested(table: Table, names: Sequence[str]) -> Select[Any]:
    """`SELECT * FROM unnest($1::type[], ...)`: one array parameter per column, named after it."""
    arrays = [cast(bindparam(name), ARRAY(table.c[name].type)) for name in names]
    return select(literal_column("*")).select_from(func.unnest(*arrays))


def statements(db: Database) -> tuple[RowsStatement, ...]:
    """Insert frames, upsert latest values, move registers, insert log rows: for this database."""
    dialect = db.writer.dialect
    if db.is_sqlite:
        tid, wh = (bindparam(name, type_=BigInteger) for name in REGISTER_KEYS)
        return (
            RowsStatement(insert(meter_frames), dialect, FRAME_COLUMNS),
            RowsStatement(latest_upsert(sqlite.insert(meter_latest)), dialect, LATEST_COLUMNS),
            RowsStatement(register_update(tid, wh), dialect, REGISTER_KEYS),
            RowsStatement(insert(ocpp_messages), dialect, LOG_COLUMNS),
        )
    arrays = [cast(bindparam(name), ARRAY(BigInteger)) for name in REGISTER_KEYS]
    source = func.unnest(*arrays).table_valued(*REGISTER_KEYS).render_derived()
    latest = postgresql.insert(meter_latest).from_select(LATEST_COLUMNS, unnested(meter_latest, LATEST_COLUMNS))
    return (
        ColumnsStatement(
            insert(meter_frames).from_select(FRAME_COLUMNS, unnested(meter_frames, FRAME_COLUMNS)),
            dialect,
            FRAME_COLUMNS,
        ),
        ColumnsStatement(latest_upsert(latest), dialect, LATEST_COLUMNS),
        ColumnsStatement(register_update(source.c.tid, source.c.wh), dialect, REGISTER_KEYS),
        ColumnsStatement(
            insert(ocpp_messages).from_select(LOG_COLUMNS, unnested(ocpp_messages, LOG_COLUMNS)), dialect, LOG_COLUMNS
        ),
    )


def rollup_statements(db: Database) -> tuple[RowsStatement, RowsStatement]:
    """Add Wh to energy rollups and replace energy registers (store/rollups.py): for this database."""
    dialect = db.writer.dialect
    if db.is_sqlite:
        return (
            RowsStatement(rollups.rollup_upsert(sqlite.insert(energy_rollups)), dialect, ROLLUP_COLUMNS),
            RowsStatement(rollups.register_upsert(sqlite.insert(energy_registers)), dialect, REGISTER_COLUMNS),
        )
    add = postgresql.insert(energy_rollups).from_select(ROLLUP_COLUMNS, unnested(energy_rollups, ROLLUP_COLUMNS))
    put = postgresql.insert(energy_registers).from_select(
        REGISTER_COLUMNS, unnested(energy_registers, REGISTER_COLUMNS)
    )
    return (
        ColumnsStatement(rollups.rollup_upsert(add), dialect, ROLLUP_COLUMNS),
        ColumnsStatement(rollups.register_upsert(put), dialect, REGISTER_COLUMNS),
    )


def storable(frame: MeterFrame) -> bool:
    """False for a frame whose numbers no column can hold (the OCPP schemas leave integers unbounded)."""
    transaction_ok = frame.transaction_id is None or 0 <= frame.transaction_id <= INT64_MAX
    return 0 <= frame.connector_number <= INT32_MAX and 0 < frame.charger_id <= INT32_MAX and transaction_ok


class MeterWriter:
    """Queues meter frames and log entries and writes them in batches on one background task."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        *,
        max_frames: int = MAX_QUEUED_FRAMES,
        max_log_entries: int = MAX_QUEUED_LOG_ENTRIES,
        interval: float = FLUSH_INTERVAL,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.max_frames = max_frames
        self.max_log_entries = max_log_entries
        self.interval = interval
        self.max_batch = max_batch
        self.dropped_log_entries = 0
        self.dropped_frames = 0
        self.written_frames = 0
        self._frames: list[MeterFrame] = []
        self._logs: list[LogEntry] = []
        self._queued = [0, 0]  # frames, log entries ever queued
        self._taken = [0, 0]  # frames, log entries ever taken into a batch
        self._retry: _Batch | None = None
        self._space = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._stamp: Stamp = sqlite_time if db.is_sqlite else naive_utc
        self._statements = statements(db)
        self._rollup_statements = rollup_statements(db)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._sleeping = False
        self._log_overflow = False
        # Told the rows and seconds of each committed batch (voltline/metrics.py, set by the runtime).
        self.observe_batch: Callable[[int, float], None] = lambda _rows, _seconds: None

    @property
    def backlog(self) -> int:
        """Frames queued or waiting for a retry, not yet written."""
        return len(self._frames) + (len(self._retry.frames) if self._retry else 0)

    async def start(self) -> None:
        """Start the flush loop."""
        self._stopping = False
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="voltline-meter-writer")

    async def stop(self) -> None:
        """Stop the flush loop and write everything still queued."""
        self._stopping = True
        if self._task is not None:
            if self._sleeping:
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._drain()

    async def put_meter_frame(self, frame: MeterFrame) -> None:
        """Queue a frame; waits while the queue is full (backpressure), never drops a storable frame."""
        if not storable(frame):
            self.dropped_frames += 1
            log.warning("charger %s: a meter frame with out-of-range numbers is not stored", frame.charger_id)
            return
        while len(self._frames) >= self.max_frames:
            self._space.clear()
            await self._space.wait()
        self._frames.append(frame)
        self._queued[0] += 1

    def log(self, entry: LogEntry) -> None:
        """Queue an OCPP message log row without waiting; over the bound it is counted and dropped."""
        if len(self._logs) >= self.max_log_entries:
            self.dropped_log_entries += 1
            if not self._log_overflow:
                self._log_overflow = True
                log.warning("the OCPP message log queue is full; entries are dropped until it drains")
            return
        self._logs.append(entry)
        self._queued[1] += 1

    async def flush(self) -> None:
        """Write everything queued up to now; raises (keeping the batch for a retry) when the database fails."""
        goal = list(self._queued)
        async with self._flush_lock:
            while self._retry is not None or self._taken[0] < goal[0] or self._taken[1] < goal[1]:
                await self._write(self._retry or self._take())

    def _take(self) -> _Batch:
        frames, logs = self._frames[: self.max_batch], self._logs[: self.max_batch]
        del self._frames[: self.max_batch], self._logs[: self.max_batch]
        self._taken[0] += len(frames)
        self._taken[1] += len(logs)
        self._space.set()
        if self._log_overflow and len(self._logs) < self.max_log_entries:
            self._log_overflow = False
            log.warning("the OCPP message log queue drained; %d entries dropped so far", self.dropped_log_entries)
        return _Batch(frames, logs)

    async def _write(self, batch: _Batch) -> None:
        # Until a part is committed, `_retry` holds exactly the rows not yet written.
        pending = [batch]
        while pending:
            part = pending.pop()
            self._retry = _Batch.join([part, *reversed(pending)])
            try:
                await self._write_batch(part)
            except (IntegrityError, DataError) as error:
                if len(part) > 1:
                    pending.extend(reversed(part.halves()))
                    continue
                self.dropped_frames += len(part.frames)
                log.error("a row the database refuses is dropped (%s): %s", _describe(part), error.orig)
        self._retry = None

    def _rows(self, batch: _Batch) -> tuple[tuple[list[Row], ...], dict[Key, Connector]]:
        frames = batch.frames
        stamp = self._stamp
        values = [register_reading(frame.samples) for frame in frames]  # once per frame, for both uses
        registers = register_rows(frames, values)
        rows = frame_rows(frames, stamp), latest_rows(frames, stamp), registers, log_rows(batch.logs, stamp)
        return rows, rollups.batch_readings(frames, values)

    async def _write_batch(self, batch: _Batch) -> None:
        # STYLE: nothing slow on the event loop; a big batch is shaped in a thread (~20 us a frame).
        inline = len(batch.frames) <= INLINE_FRAMES
        rows, readings = self._rows(batch) if inline else await asyncio.to_thread(self._rows, batch)
        started = time.perf_counter()
        async with self.db.write() as conn:
            if readings:  # before the frames go in: an out-of-order batch compares with what was stored
                await rollups.load(conn, readings, lock=not self.db.is_sqlite)
            for statement, table_rows in zip(self._statements, rows, strict=True):
                await statement.run(conn, table_rows)
            if readings:
                await self._write_rollups(conn, readings, inline)
        self.observe_batch(len(batch), time.perf_counter() - started)
        self.written_frames += len(batch.frames)

    async def _write_rollups(self, conn: AsyncConnection, readings: dict[Key, Connector], inline: bool) -> None:
        stamp = self._stamp
        change = (
            rollups.changes(readings, stamp) if inline else await asyncio.to_thread(rollups.changes, readings, stamp)
        )
        add, put = self._rollup_statements
        await add.run(conn, change.rollups)
        await put.run(conn, change.registers)

    async def _run(self) -> None:
        delay = 0.0
        while not self._stopping:
            started = self.clock.monotonic()
            try:
                await self.flush()
                delay = max(0.0, self.interval - (self.clock.monotonic() - started))
            except Exception:  # task boundary: log, keep the batch, retry after a pause
                log.exception("writing meter values failed; retrying (%d frames waiting)", self.backlog)
                delay = min(max(delay * 2, self.interval), MAX_RETRY_DELAY)
            if self._stopping:
                break
            self._sleeping = True
            try:
                await self.clock.sleep(delay)
            finally:
                self._sleeping = False

    async def _drain(self) -> None:
        failures = 0
        while self._frames or self._logs or self._retry is not None:
            try:
                await self.flush()
            except Exception:  # task boundary: shutting down; try again, then give up loudly
                failures += 1
                log.exception("writing meter values on shutdown failed (attempt %d)", failures)
                if failures >= STOP_ATTEMPTS:
                    log.error("%d meter frames could not be written before shutdown", self.backlog)
                    return
                await self.clock.sleep(self.interval * failures)
