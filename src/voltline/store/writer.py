"""The batched writer: meter frames and the OCPP message log, written with group commit.

DESIGN "Durability": a charger's MeterValues are answered only after they committed. Handlers
queue frames with `put_meter_frames` and get a future that resolves once every one of them is
in a committed transaction; they await it before answering. The flush loop starts a flush as
soon as the previous commit returned, with everything queued by then (up to `max_batch`
frames): a lone frame waits for one commit, and under load batches grow by themselves. There
is no fixed interval while frames are queued. The queue is bounded; when it is full
`put_meter_frames` waits (backpressure) and nobody is answered early.

The OCPP message log is best-effort: its entries go into the same flushes, but nobody waits for
them, and entries queued without a frame wait at most `interval` (50 ms) for one to come along.
A crash loses the log entries still queued, never an answered frame.

A flush writes the raw frames (one row per MeterValues frame, samples packed), the derived rows
(latest value per connector/measurand/phase, the transaction's energy register) and the log
entries in one transaction (executemany). `stop()` flushes what is queued.

Replays (DESIGN "Durability"): a charger sends again what it got no answer for. A frame
identical to a stored one (same charger, connector, timestamp and samples: its key, with a
digest of the samples) is inserted with ON CONFLICT DO NOTHING, and an identical frame later in
the same batch is left out. When fewer rows went in than were sent, the frames that were new
are found (store/batches.py) and only they feed the derived rows, so latest values,
registers and rollups never count a frame twice.

Derived rows follow R-95 (spec/smart-charging.md §8.3; DESIGN: derived tables only): a
sample replaces the latest value when its timestamp is later or equal. Within one batch the
newest sample per key wins, ties broken by context (Transaction.End > Sample.Periodic >
Sample.Clock > others), then Outlet over other locations, then arrival order. The register
of a transaction only moves forward. A batch that fails is kept and retried (its frames' futures
wait); a batch that fails on its data (a charger deleted meanwhile, a value out of range) is
halved until the bad rows are found, and only those are dropped, with an error in the log.

The same transaction keeps the 15-minute energy rollups (store/rollups.py, R-96..R-98): each
connector's register readings of the batch are walked from its stored baseline and their Wh
added per bucket. A batch with a reading not newer than the newest one already seen for that
connector (out of order, or a duplicate timestamp) is compared with the stored readings read
back from the raw frames (leaving out the batch's own rows, inserted just before): the
connector's rollups move by the difference between walking them without and with the batch, so
arrival order does not change the result. Baselines are read with FOR UPDATE on PostgreSQL (SQLite has one writer).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.clock import Clock
from voltline.domain.frames import LogEntry, MeterFrame
from voltline.domain.meter_values import naive_utc
from voltline.errors import StoreUnavailableError
from voltline.store import rollups
from voltline.store.batches import (
    Row,
    Shaped,
    Stamp,
    fresh_frame_keys,
    rollup_statements,
    shape,
    sqlite_time,
    statements,
)
from voltline.store.engine import Database
from voltline.store.ocpp_log import log_rows
from voltline.store.rollups import Connector, Key
from voltline.tasks import cancel_and_wait

__all__ = ["MeterWriter"]

log = logging.getLogger("voltline.writer")

FLUSH_INTERVAL = 0.05  # seconds a log entry waits for a frame to share its flush (nobody waits for the log)
MAX_QUEUED_FRAMES = 50_000
MAX_QUEUED_LOG_ENTRIES = 50_000
# One write transaction holds at most this many frames (and log entries), so that API writes
# on SQLite's single writer connection never wait long behind a backlog.
MAX_BATCH = 5_000
INLINE_FRAMES = 100
RETRY_DELAY = 0.05  # seconds before the first retry of a failed flush, doubling up to MAX_RETRY_DELAY
MAX_RETRY_DELAY = 1.0
# Seconds between checks for held answers past their deadline: a tenth of the hold, within these bounds.
MIN_EXPIRY_PERIOD = 0.05
MAX_EXPIRY_PERIOD = 1.0
STOP_ATTEMPTS = 3
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


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


def storable(frame: MeterFrame) -> bool:
    """False for a frame whose numbers no column can hold (the OCPP schemas leave integers unbounded)."""
    transaction_ok = frame.transaction_id is None or 0 <= frame.transaction_id <= INT64_MAX
    return 0 <= frame.connector_number <= INT32_MAX and 0 < frame.charger_id <= INT32_MAX and transaction_ok


class MeterWriter:
    """Queues meter frames and log entries and writes them with group commit on one background task."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        hold_seconds: float = 20.0,
        max_frames: int = MAX_QUEUED_FRAMES,
        max_log_entries: int = MAX_QUEUED_LOG_ENTRIES,
        interval: float = FLUSH_INTERVAL,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.db = db
        self.clock = clock
        self.hold_seconds = hold_seconds  # DESIGN "Durability": how long an answer may be held
        self.max_frames = max_frames
        self.max_log_entries = max_log_entries
        self.interval = interval
        self.max_batch = max_batch
        self.dropped_log_entries = 0
        self.dropped_frames = 0
        self.written_frames = 0
        # Monotonic time of the first flush of the current run of failures (None: the last one committed).
        self.failing_since: float | None = None
        self._frames: list[MeterFrame] = []
        self._logs: list[LogEntry] = []
        self._queued = [0, 0]  # frames, log entries ever queued
        self._taken = [0, 0]  # frames, log entries ever taken into a batch
        self._settled = 0  # frames ever committed or dropped, in queue order
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()  # (last frame's number, future)
        self._deadlines: deque[tuple[float, asyncio.Future[None]]] = deque()  # (hold deadline, future)
        self._retry: _Batch | None = None
        self._space = asyncio.Event()
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._stamp: Stamp = sqlite_time if db.is_sqlite else naive_utc
        self._statements = statements(db)
        self._rollup_statements = rollup_statements(db)
        self._baselines = rollups.BaselineQueries.of(db)
        self._task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._stopping = False
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
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._expire_loop(), name="voltline-meter-writer-hold")

    async def stop(self) -> None:
        """Stop the flush loop and write everything still queued."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._drain()
        await cancel_and_wait([self._watchdog])
        self._watchdog = None

    async def put_meter_frame(self, frame: MeterFrame) -> asyncio.Future[None]:
        """Queue one frame (see `put_meter_frames`)."""
        return await self.put_meter_frames((frame,))

    async def put_meter_frames(self, frames: Iterable[MeterFrame], deadline: float = math.inf) -> asyncio.Future[None]:
        """Queue frames, waiting while the queue is full; the future resolves once all of them committed.

        `deadline` (clock.monotonic) bounds the wait (DESIGN: answers are held, bounded): past it, the
        wait for space and the future raise StoreUnavailableError. The frames stay queued and are
        written when the database takes writes again (a replay of them is stored once).
        """
        queued = False
        for frame in frames:
            if not storable(frame):
                # No column can hold these numbers, so no retry would ever store the frame: it is
                # refused like bad input (counted, logged) and the charger is still answered.
                self.dropped_frames += 1
                log.warning("charger %s: a meter frame with out-of-range numbers is not stored", frame.charger_id)
                continue
            while len(self._frames) >= self.max_frames:
                self._space.clear()
                await self._wait_for_space(deadline)
            self._frames.append(frame)
            self._queued[0] += 1
            self._wake.set()
            queued = True
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if queued:
            self._waiters.append((self._queued[0], done))
            if deadline < math.inf:
                self._deadlines.append((deadline, done))
        else:
            done.set_result(None)
        return done

    async def _wait_for_space(self, deadline: float) -> None:
        if deadline == math.inf:
            await self._space.wait()
            return
        left = deadline - self.clock.monotonic()
        if left > 0:
            space = asyncio.ensure_future(self._space.wait())
            sleeper = asyncio.ensure_future(self.clock.sleep(left))
            try:
                await asyncio.wait({space, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await cancel_and_wait([space, sleeper])
            if self._space.is_set():
                return
        raise StoreUnavailableError(f"the meter queue stayed full ({self.backlog} frames waiting)")

    async def _expire_loop(self) -> None:
        """Fail the futures of frames still not committed at their hold deadline."""
        period = min(MAX_EXPIRY_PERIOD, max(MIN_EXPIRY_PERIOD, self.hold_seconds / 10))
        deadlines = self._deadlines
        while True:
            await self.clock.sleep(period)
            now = self.clock.monotonic()
            while deadlines and (deadlines[0][1].done() or deadlines[0][0] <= now):
                done = deadlines.popleft()[1]
                if not done.done():
                    done.set_exception(StoreUnavailableError(f"not committed in time ({self.backlog} frames waiting)"))

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

    async def flush_once(self) -> None:
        """Write the batch waiting for a retry, or else one batch of what is queued (group commit)."""
        async with self._flush_lock:
            if self._retry is not None or self._frames or self._logs:
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
        # Until a part is committed, `_retry` holds exactly the rows not yet written. Parts commit
        # in queue order, so `_settle` can count frames and answer each waiter once its last frame is in.
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
                # One row the database refuses on its content (e.g. its charger was deleted): no
                # retry would store it, so it is dropped, logged and counted, and its charger answered.
                self.dropped_frames += len(part.frames)
                log.error("a row the database refuses is dropped (%s): %s", _describe(part), error.orig)
            self._settle(len(part.frames))
        self._retry = None

    def _settle(self, frames: int) -> None:
        self._settled += frames
        waiters = self._waiters
        while waiters and waiters[0][0] <= self._settled:
            done = waiters.popleft()[1]
            if not done.done():
                done.set_result(None)

    def _fail_waiters(self, error: BaseException) -> None:
        while self._waiters:
            done = self._waiters.popleft()[1]
            if not done.done():
                done.set_exception(error)

    async def _write_batch(self, batch: _Batch) -> None:
        # STYLE: nothing slow on the event loop; a big batch is shaped in a thread (~20 us a frame).
        inline = len(batch.frames) <= INLINE_FRAMES
        stamp = self._stamp
        shaped = shape(batch.frames, stamp) if inline else await asyncio.to_thread(shape, batch.frames, stamp)
        logs = log_rows(batch.logs, stamp)
        # SQLite runs the whole transaction in a worker thread (Database.write_batch): no hop within it.
        in_thread = inline or self.db.is_sqlite
        started = time.perf_counter()
        self.written_frames += await self.db.write_batch(lambda conn: self._transaction(conn, shaped, logs, in_thread))
        self.observe_batch(len(batch), time.perf_counter() - started)

    async def _transaction(self, conn: AsyncConnection, shaped: Shaped, logs: list[Row], inline: bool) -> int:
        """A batch's statements in its write transaction; the number of frames that were new."""
        frames_insert, latest, registers, log_insert = self._statements
        inserted = await frames_insert.run(conn, shaped.rows)
        if inserted < len(shaped.rows):  # a replay: derived rows come from the new frames only
            fresh = await fresh_frame_keys(conn, self.db, inserted, shaped.keys)
            shaped = shape([f for f, key in zip(shaped.frames, shaped.keys, strict=True) if key in fresh], self._stamp)
        if shaped.readings:  # an out-of-order batch compares with the readings stored before it
            await rollups.load(conn, shaped.readings, self._baselines)
        await latest.run(conn, shaped.latest)
        await registers.run(conn, shaped.registers)
        await log_insert.run(conn, logs)
        if shaped.readings:
            await self._write_rollups(conn, shaped.readings, inline)
        return len(shaped.frames)

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
            if self._retry is None and not self._frames:
                await self._idle()
                continue
            await asyncio.sleep(0)  # let handlers that are ready queue their frames into this batch
            try:
                await self.flush_once()
            except Exception:  # task boundary: log, keep the batch, retry after a pause
                delay = min(max(delay * 2, RETRY_DELAY), MAX_RETRY_DELAY)
                self._failed()
                await self.clock.sleep(delay)
            else:
                delay = 0.0
                self._recovered()

    async def _idle(self) -> None:
        """Wait for a frame; log entries alone are written after `interval` (nobody waits for them)."""
        self._wake.clear()
        if not self._logs:
            await self._wake.wait()
            return
        linger = asyncio.ensure_future(self.clock.sleep(self.interval))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({linger, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait([linger, woken])
        if self._logs and not self._stopping:
            try:
                await self.flush_once()
            except Exception:  # task boundary: the log is best-effort; the entries stay queued for the next flush
                self._failed()
                await self.clock.sleep(RETRY_DELAY)

    def _failed(self) -> None:
        if self.failing_since is None:
            self.failing_since = self.clock.monotonic()
            log.exception("writing meter values failed; retrying until it works (%d frames waiting)", self.backlog)
        else:
            log.debug("writing meter values failed again (%d frames waiting)", self.backlog, exc_info=True)

    def _recovered(self) -> None:
        if self.failing_since is not None:
            seconds = self.clock.monotonic() - self.failing_since
            self.failing_since = None
            log.warning("writing meter values works again after %.1f s", seconds)

    async def _drain(self) -> None:
        failures = 0
        while self._frames or self._logs or self._retry is not None:
            try:
                await self.flush()
            except Exception as error:  # task boundary: shutting down; try again, then give up loudly
                failures += 1
                log.exception("writing meter values on shutdown failed (attempt %d)", failures)
                if failures >= STOP_ATTEMPTS:
                    log.error("%d meter frames could not be written before shutdown", self.backlog)
                    self._fail_waiters(StoreUnavailableError(f"the meter writer stopped: {error}"))
                    return
                await self.clock.sleep(self.interval * failures)
