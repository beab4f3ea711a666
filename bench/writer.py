"""Writer benchmark: MeterValues frames persisted per second by the batched writer alone.

No sockets and no OCPP: frames of 8 normalised samples (EAIR, power, 3 currents, 3
voltages — an evcc-style 1.6 MeterValues) are built before the clock starts. Saturated: one
producer puts them as fast as the writer takes them (backpressure included); the clock stops
when `stop()` has written the last one. Open loop (`--rate`): every millisecond the frames due
are put, each by a task of its own that waits for the frame's commit as an OCPP handler does
(DESIGN "Durability": group commit), and put -> commit latency is reported. The rows are
counted afterwards. Derived rows are kept as in production: meter_latest per
connector/measurand/phase and the register of each charger's open transaction.

    .venv/bin/python bench/writer.py                          # SQLite and PostgreSQL
    .venv/bin/python bench/writer.py --backend sqlite --frames 100000 --chargers 1000
    .venv/bin/python bench/writer.py --rate 5000 --seconds 10  # open loop: batches and latency at a fixed rate
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import resource
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta

from _seed import create_postgres, drop_postgres
from sqlalchemy import func, insert, select, text

from voltline.clock import Clock
from voltline.domain.frames import MeterFrame
from voltline.domain.meter_values import normalise_sample
from voltline.services import accounts
from voltline.settings import load_settings
from voltline.store import migrate
from voltline.store.engine import Database
from voltline.store.schema import chargers, energy_rollups, meter_frames, meter_latest, transactions
from voltline.store.writer import MeterWriter, _Batch

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
T0 = datetime(2025, 3, 31, 12, 0, 0)


class TimedWriter(MeterWriter):
    """The writer, recording how long each batch's write transaction takes and how many frames it holds."""

    durations: list[float]
    sizes: list[int]

    async def _write_batch(self, batch: _Batch) -> None:
        started = time.perf_counter()
        await super()._write_batch(batch)
        self.durations.append(time.perf_counter() - started)
        self.sizes.append(len(batch.frames))

    def summary(self) -> str:
        """Batches, mean frames per batch, and write time p50/p99/max."""
        times = sorted(self.durations) or [0.0]
        pick = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000  # noqa: E731
        mean = sum(self.sizes) / max(1, len(self.sizes))
        return (
            f"{len(self.sizes)} batches of {mean:.0f} frames on average, write p50 {pick(0.5):.1f} ms, "
            f"p99 {pick(0.99):.1f} ms, max {times[-1] * 1000:.1f} ms"
        )


async def seed(db: Database, n_chargers: int) -> tuple[list[int], list[int]]:
    """A team with `n_chargers` chargers, each with one open transaction."""
    account = await accounts.create_account(db, email=f"bench-{uuid.uuid4().hex[:8]}@example.com", name="Bench")
    now = datetime(2025, 1, 1)
    rows = [
        {
            "uuid": str(uuid.uuid4()),
            "identity": f"BENCH-{i:06d}-{uuid.uuid4().hex[:6]}",
            "team_id": account.team_id,
            "pincode": "ABCD2345",
            "connection_status": "online",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n_chargers)
    ]
    async with db.write() as conn:
        await conn.execute(insert(chargers), rows)
        charger_ids = list((await conn.execute(select(chargers.c.id).order_by(chargers.c.id))).scalars())
        tx_rows = [
            {"charger_id": cid, "connector_number": 1, "status": "active", "created_at": now, "updated_at": now}
            for cid in charger_ids
        ]
        await conn.execute(insert(transactions), tx_rows)
        tx_ids = list((await conn.execute(select(transactions.c.id).order_by(transactions.c.id))).scalars())
    return charger_ids, tx_ids


def build_frames(charger_ids: list[int], tx_ids: list[int], count: int) -> list[MeterFrame]:
    """`count` frames round-robin over the chargers, 10 s apart per charger, 8 samples each."""
    frames = []
    for i in range(count):
        k = i % len(charger_ids)
        step = i // len(charger_ids)
        energy = 1_000_000 + step * 30
        samples = (
            normalise_sample(f"{energy / 1000:.3f}", unit="kWh", context="Sample.Periodic"),
            normalise_sample("11040.0", measurand="Power.Active.Import", unit="W"),
            *(normalise_sample("16.0", measurand="Current.Import", phase=p, unit="A") for p in ("L1", "L2", "L3")),
            *(normalise_sample("230.1", measurand="Voltage", phase=p, unit="V") for p in ("L1-N", "L2-N", "L3-N")),
        )
        ts = T0 + timedelta(seconds=10 * step)
        frames.append(MeterFrame(charger_ids[k], None, None, 1, tx_ids[k], ts, samples, ts))
    return frames


async def count_rows(db: Database) -> tuple[int, int]:
    """Rows in meter_frames and meter_latest."""
    async with db.read() as conn:
        frames = await conn.scalar(select(func.count()).select_from(meter_frames))
        latest = await conn.scalar(select(func.count()).select_from(meter_latest))
    return int(frames or 0), int(latest or 0)


# Bytes on disk of each table the writer fills, indexes and TOAST included (docs/scaling.md reads these).
TABLE_BYTES = text(
    "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND n.nspname = current_schema() "
    "AND c.relname IN ('meter_frames', 'meter_latest', 'energy_rollups', 'energy_registers', 'ocpp_messages')"
)


async def storage_summary(db: Database, frames: int) -> str:
    """PostgreSQL: the size of each table the writer fills, and the raw frames' bytes per frame."""
    async with db.read() as conn:
        sizes = {str(name): int(size) for name, size in (await conn.execute(TABLE_BYTES)).all()}
        rollups = int(await conn.scalar(select(func.count()).select_from(energy_rollups)) or 0)
    parts = [f"{name} {size / 2**20:.1f} MiB" for name, size in sorted(sizes.items())]
    per_frame = sizes.get("meter_frames", 0) / max(frames, 1)
    per_rollup = sizes.get("energy_rollups", 0) / max(rollups, 1)
    return (
        f"storage: {', '.join(parts)}; meter_frames {per_frame:.0f} bytes per 8-sample frame, "
        f"energy_rollups {per_rollup:.0f} bytes per row ({rollups} rows)"
    )


async def saturate(writer: MeterWriter, frames: list[MeterFrame]) -> float:
    """Put every frame as fast as the writer accepts them; seconds until all are committed."""
    started = time.perf_counter()
    await writer.start()
    for frame in frames:
        await writer.put_meter_frame(frame)
    await writer.stop()
    return time.perf_counter() - started


async def watch_loop_lag(lags: list[float], stop: asyncio.Event) -> None:
    """How late a 5 ms timer fires: what an OCPP ack waits behind the writer's work on the loop."""
    while not stop.is_set():
        due = time.perf_counter() + 0.005
        await asyncio.sleep(0.005)
        lags.append(max(0.0, time.perf_counter() - due))


def lag_summary(lags: list[float]) -> str:
    """p50/p99/max of the loop lag in ms."""
    ordered = sorted(lags) or [0.0]
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return f"event-loop lag p50 {at(0.5):.1f} ms, p99 {at(0.99):.1f} ms, max {ordered[-1] * 1000:.1f} ms"


async def open_loop(writer: MeterWriter, frames: list[MeterFrame], rate: int) -> tuple[float, int, list[float]]:
    """Put frames at a fixed rate (1 ms ticks), each awaited until committed by a task of its own.

    Seconds taken, the largest backlog seen, and every frame's put -> commit latency.
    """
    await writer.start()
    started = time.perf_counter()
    latencies: list[float] = []

    async def handle(frame: MeterFrame) -> None:
        began = time.perf_counter()
        committed = await writer.put_meter_frame(frame)
        if committed is not None:  # a writer from before group commit answers at enqueue (for comparisons)
            await committed
        latencies.append(time.perf_counter() - began)

    tasks = []
    worst, sent, tick = 0, 0, 0
    while sent < len(frames):
        tick += 1
        await asyncio.sleep(max(0.0, started + tick / 1000 - time.perf_counter()))
        due = min(len(frames), tick * rate // 1000)
        tasks.extend(asyncio.create_task(handle(frame)) for frame in frames[sent:due])
        sent = due
        worst = max(worst, writer.backlog)
    await asyncio.gather(*tasks)
    await writer.stop()
    return time.perf_counter() - started, worst, latencies


def latency_summary(latencies: list[float]) -> str:
    """p50/p99/max of put -> commit in ms."""
    ordered = sorted(latencies) or [0.0]
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return f"put -> commit p50 {at(0.5):.1f} ms, p99 {at(0.99):.1f} ms, max {ordered[-1] * 1000:.1f} ms"


async def run(url: str, label: str, args: argparse.Namespace) -> None:
    """Migrate, seed, build frames, measure, count."""
    await migrate.upgrade(url)
    db = Database(url)
    try:
        charger_ids, tx_ids = await seed(db, args.chargers)
        count = args.rate * args.seconds if args.rate else args.frames
        built = time.perf_counter()
        frames = build_frames(charger_ids, tx_ids, count)
        build_s = time.perf_counter() - built
        gc.freeze()  # the pre-built frames are the bench's, not the writer's: keep them out of GC pauses
        writer = TimedWriter(db, Clock(), hold_seconds=load_settings({}).ocpp_hold_seconds)
        writer.durations, writer.sizes = [], []
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        lags: list[float] = []
        done = asyncio.Event()
        watcher = asyncio.create_task(watch_loop_lag(lags, done))
        if args.rate:
            elapsed, worst, latencies = await open_loop(writer, frames, args.rate)
            extra = f"target {args.rate}/s, largest backlog {worst} frames, {latency_summary(latencies)}"
        else:
            elapsed = await saturate(writer, frames)
            extra = "saturated (backpressure on)"
        done.set()
        await watcher
        after = resource.getrusage(resource.RUSAGE_SELF)
        stored, latest = await count_rows(db)
        cpu_s = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
        print(
            f"{label:10s} frames={count} persisted={stored} ({stored / elapsed:,.0f} frames/s, "
            f"{stored * 8 / elapsed:,.0f} samples/s) in {elapsed:.2f} s, process CPU {cpu_s:.2f} s; "
            f"{extra}; latest rows={latest}; building samples {build_s / count * 1e6:.1f} µs/frame (not timed)\n"
            f"{'':10s} {writer.summary()}; {lag_summary(lags)}"
        )
        if not url.startswith("sqlite"):
            print(f"{'':10s} {await storage_summary(db, stored)}")
        assert stored == count, f"persisted {stored} of {count}"
    finally:
        await db.close()


async def main() -> None:
    """Run the benchmark on the chosen backends."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=0, help="open loop at this many frames/s (0 = saturate)")
    parser.add_argument("--seconds", type=int, default=10, help="open-loop duration")
    parser.add_argument("--postgres", default=os.environ.get("VOLTLINE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES))
    args = parser.parse_args()
    print(f"# {' '.join(sys.argv)}  ({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()})")
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            await run(f"sqlite+aiosqlite:///{tmp}/bench.sqlite3", "sqlite", args)
    if args.backend in ("postgres", "both"):
        name = f"voltline_bench_{uuid.uuid4().hex[:8]}"
        url = await create_postgres(args.postgres, name)
        try:
            await run(url, "postgresql", args)
        finally:
            await drop_postgres(args.postgres, name)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
