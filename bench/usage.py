"""History benchmark: ~11.5 M meter samples, then the metervalues, energy-history and latest-value reads.

Fills N chargers (default 1,000, on 20 sites in Europe/Amsterdam, one 22 kW connector each) with
one MeterValues frame every 15 minutes for D days (default 30, from 2025-03-01, so the DST day
2025-03-30 is in it), 4 samples a frame (EAIR, Current.Import L1..L3): 1,000 x 30 x 96 x 4 =
11.5 M samples. Each charger charges at 11 kW for a few hours a day. Rows are made by the
writer's own shaping (store/batches.py shape, store/rollups.py changes: a charger's frames in one
in-order batch, which gives the same rollups as any batching) and bulk-inserted with the
writer's statements; a few chargers' rollups
are then checked against the domain functions run on the frames read back.

Then 200 random (charger, day) picks, timed in-process around the store call each endpoint makes:
  metervalues  a day of one charger (datapoints.list_charger_samples, as GET .../metervalues)
  usage        a month of daily energy of the charger's site (store.usage.sum_rollups + the
               endpoint's bucket summing, as GET .../sites/{site}/usage?interval=day)
  latest       the charger's latest values (meter_values.list_latest, what power usage reads)

    .venv/bin/python bench/usage.py --backend sqlite --chargers 50 --days 3     # a quick check
    .venv/bin/python bench/usage.py --backend postgres --markdown              # the full fill
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import tempfile
import time
import uuid
import zoneinfo
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

from _seed import create_postgres, drop_postgres, seed
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from voltline.api.usage import UsageMeta, usage_body
from voltline.domain.energy import frame_reading, local_midnight, rollup, walk
from voltline.domain.frames import MeterFrame
from voltline.domain.ids import ChargerId, SiteId, TeamId
from voltline.domain.meter_values import normalise_sample, unpack_samples
from voltline.store import datapoints, meter_values, rollups, usage
from voltline.store.batches import rollup_statements, shape, sqlite_time, statements
from voltline.store.datapoints import SampleFilter
from voltline.store.engine import Database
from voltline.store.schema import chargers, energy_rollups, meter_frames

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
START = date(2025, 3, 1)
ZONE = zoneinfo.ZoneInfo("Europe/Amsterdam")
STEP = timedelta(minutes=15)
WH_PER_STEP = 2750  # 11 kW for 15 minutes
CHUNK = 25  # chargers shaped and inserted at a time
GOAL_MS = 100.0
CHARGING = (normalise_sample("16", measurand="Current.Import", phase=p, unit="A") for p in ("L1", "L2", "L3"))
IDLE = (normalise_sample("0", measurand="Current.Import", phase=p, unit="A") for p in ("L1", "L2", "L3"))
CURRENTS = {True: tuple(CHARGING), False: tuple(IDLE)}


def charger_frames(charger_id: int, team_id: int, site_id: int, days: int, rng: random.Random) -> list[MeterFrame]:
    """One frame every 15 minutes; charging (+2750 Wh a frame) from a random hour for 2-10 hours a day."""
    frames, wh = [], rng.randrange(1_000_000)
    start = local_midnight(START, ZONE)
    for day in range(days):
        begin, hours = rng.randrange(96), rng.randrange(8, 41)
        for step in range(96):
            charging = begin <= step < begin + hours
            wh += WH_PER_STEP if charging else 0
            at = start + timedelta(days=day) + step * STEP
            samples = (normalise_sample(str(wh)), *CURRENTS[charging])
            frames.append(MeterFrame(charger_id, team_id, site_id, 1, None, at, samples, at))
    return frames


async def fill(db: Database, team_id: int, sites: dict[int, int], days: int) -> int:
    """Insert every charger's frames, latest values, rollups and registers, CHUNK chargers a transaction."""
    stamp = sqlite_time if db.is_sqlite else (lambda moment: moment)
    frames_stmt, latest_stmt, _, _ = statements(db)
    add, put = rollup_statements(db)
    rng, done, ids = random.Random(7), 0, sorted(sites)
    for first in range(0, len(ids), CHUNK):
        frames = [f for cid in ids[first : first + CHUNK] for f in charger_frames(cid, team_id, sites[cid], days, rng)]
        shaped = shape(frames, stamp)
        for held in shaped.readings.values():
            held.max_power = 32 * 230 * 3
        change = rollups.changes(shaped.readings, stamp)
        async with db.write() as conn:
            await frames_stmt.run(conn, shaped.rows)
            await latest_stmt.run(conn, shaped.latest)
            await add.run(conn, change.rollups)
            await put.run(conn, change.registers)
        done += len(frames)
        print(f"\r  filled {done:,} frames ({done * 4:,} samples)", end="", flush=True)
    print()
    return done


async def verify(db: Database, charger_ids: list[int]) -> None:
    """The stored rollups of a few chargers equal the domain functions run on their frames read back."""
    for charger_id in charger_ids:
        async with db.scan() as conn:
            rows = await conn.execute(
                select(meter_frames).where(meter_frames.c.charger_id == charger_id).order_by(meter_frames.c.id)
            )
            found = [frame_reading(unpack_samples(r.samples), r.timestamp, r.id) for r in rows]
            stored = await conn.execute(
                select(energy_rollups.c.bucket_start, energy_rollups.c.wh).where(
                    energy_rollups.c.charger_id == charger_id
                )
            )
            rolled = {bucket: int(wh) for bucket, wh in stored}
        expected = rollup(walk([r for r in found if r is not None], None, 32 * 230 * 3).deltas)
        if rolled != expected:
            raise SystemExit(f"charger {charger_id}: stored rollups differ from the domain functions")
        register = [r for r in found if r is not None]
        if sum(rolled.values()) != register[-1].wh - register[0].wh:
            raise SystemExit(f"charger {charger_id}: rollups do not add up to the register delta")
    print(f"  verified the rollups of {len(charger_ids)} chargers against the domain functions")


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return pick(0.5), pick(0.95), ordered[-1]


async def time_queries(
    db: Database, team_id: int, sites: dict[int, int], days: int, picks: int
) -> dict[str, list[float]]:
    """Milliseconds per call of each read, over random (charger, day) picks."""
    rng = random.Random(11)
    timings: dict[str, list[float]] = {"metervalues": [], "usage": [], "latest": []}
    ids = sorted(sites)
    for _ in range(picks):
        charger_id, day = rng.choice(ids), START + timedelta(days=rng.randrange(days))
        begin = datetime(day.year, day.month, day.day)
        started = time.perf_counter()
        async with db.scan() as conn:
            found = await datapoints.list_charger_samples(
                conn,
                TeamId(team_id),
                ChargerId(charger_id),
                date_from=begin,
                date_to=begin + timedelta(seconds=86_399),
                wanted=SampleFilter(),
                limit=1000,
            )
        timings["metervalues"].append((time.perf_counter() - started) * 1000)
        assert found
        last = START + timedelta(days=days - 1)
        started = time.perf_counter()
        async with db.scan() as conn:
            summed = await usage.sum_rollups(
                conn,
                TeamId(team_id),
                SiteId(sites[charger_id]),
                local_midnight(START, ZONE),
                local_midnight(last + timedelta(days=1), ZONE),
            )
        body = usage_body(summed, ZONE, UsageMeta("Europe/Amsterdam", "day", START.isoformat(), last.isoformat(), ""))
        timings["usage"].append((time.perf_counter() - started) * 1000)
        assert len(body.data) == days
        started = time.perf_counter()
        async with db.scan() as conn:
            latest = await meter_values.list_latest(conn, ChargerId(charger_id))
        timings["latest"].append((time.perf_counter() - started) * 1000)
        assert len(latest) == 4
    return timings


async def run(url: str, backend: str, args: argparse.Namespace) -> list[str]:
    began = time.perf_counter()
    seeded = await seed(url, chargers=args.chargers, sites=args.sites)
    db = Database(url)
    try:
        async with db.read() as conn:
            sites = {cid: sid for cid, sid in await conn.execute(select(chargers.c.id, chargers.c.site_id))}
        frames = await fill(db, seeded.team_id, sites, args.days)
        if not db.is_sqlite:
            async with db.reader.connect() as conn:
                await (await conn.execution_options(isolation_level="AUTOCOMMIT")).exec_driver_sql("ANALYZE")
        else:
            async with db.write() as conn:
                await conn.exec_driver_sql("ANALYZE")
        filled = time.perf_counter() - began
        async with db.read() as conn:
            buckets = await conn.scalar(select(func.count()).select_from(energy_rollups))
        await verify(db, sorted(sites)[:3])
        timings = await time_queries(db, seeded.team_id, sites, args.days, args.picks)
    finally:
        await db.close()
    lines = [f"{backend}: {frames:,} frames, {frames * 4:,} samples, {buckets:,} rollup rows; fill {filled:.0f} s"]
    for name, values in timings.items():
        p50, p95, top = percentiles(values)
        verdict = "ok" if p95 <= GOAL_MS else "over the goal"
        lines.append(f"  {name:<12} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  max {top:7.1f} ms  ({verdict})")
    print("\n".join(lines))
    return lines


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--picks", type=int, default=200)
    parser.add_argument("--postgres", default=os.environ.get("VOLTLINE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES))
    parser.add_argument("--markdown", action="store_true", help=f"append the results to {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    if args.chargers < 1 or args.sites < 1 or args.days < 1 or args.picks < 1 or args.sites > args.chargers:
        parser.error("--chargers, --sites, --days and --picks must be positive, and sites <= chargers")
    return args


def backends(args: argparse.Namespace) -> Iterator[str]:
    yield from (["sqlite", "postgres"] if args.backend == "both" else [args.backend])


async def main(argv: list[str]) -> None:
    args = parse_args(argv)
    command = "bench/usage.py " + " ".join(argv)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [f"# {command} ({machine})"]
    print(lines[0])
    for backend in backends(args):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                lines += await run(f"sqlite+aiosqlite:///{tmp}/usage.db", backend, args)
        else:
            name = f"voltline_usage_{uuid.uuid4().hex[:8]}"
            url = await create_postgres(args.postgres, name)
            try:
                lines += await run(url, backend, args)
            finally:
                await drop_postgres(args.postgres, name)
    if args.markdown:
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
        with DOC.open("a", encoding="utf-8") as out:
            out.write(f"\n### Energy history run (bench/usage.py) {stamp}\n\n```\n" + "\n".join(lines) + "\n```\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
