"""The meter writer's group commit and replays, on SQLite and PostgreSQL (DESIGN "Durability").

A frame's future resolves once the frame is in a committed transaction; the flush loop starts
as soon as frames are queued (no fixed interval); a held frame fails at its deadline and is
still written later; a frame identical to a stored one is stored once, within a batch and
across batches, and the derived tables count it once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from tests.support.writer_scenarios import T0, new_charger, new_transaction, new_writer, run, writes_blocked
from voltline.domain.frames import MeterFrame
from voltline.domain.meter_values import Sample, normalise_sample
from voltline.errors import StoreUnavailableError
from voltline.store.engine import Database
from voltline.store.schema import chargers as charger_table
from voltline.store.schema import energy_registers, energy_rollups, meter_frames, meter_latest, transactions

HOLD = {"VOLTLINE_OCPP_HOLD_SECONDS": "1"}  # held frames give up after a second


def frame(charger_id: int, samples: list[Sample], minute: float = 0, transaction_id: int | None = None) -> MeterFrame:
    """A frame of connector 1, `minute` minutes after T0."""
    at = T0 + timedelta(minutes=minute)
    return MeterFrame(charger_id, None, None, 1, transaction_id, at, tuple(samples), at + timedelta(seconds=1))


def eair(wh: int) -> Sample:
    """An energy register sample."""
    return normalise_sample(str(wh), measurand="Energy.Active.Import.Register", unit="Wh")


async def count_frames(db: Database, charger_id: int) -> int:
    """The charger's stored frame rows."""
    async with db.read() as conn:
        return len((await conn.execute(select(meter_frames.c.id).where(meter_frames.c.charger_id == charger_id))).all())


async def derived(db: Database, charger_id: int, transaction_id: int) -> dict[str, Any]:
    """The register, latest values, rollups and rollup baseline the writer keeps for the charger."""
    async with db.read() as conn:
        register = await conn.scalar(select(transactions.c.register_wh).where(transactions.c.id == transaction_id))
        tables = {}
        for table in (meter_latest, energy_rollups, energy_registers):
            query = select(table).where(table.c.charger_id == charger_id)
            tables[table.name] = sorted(tuple(row) for row in (await conn.execute(query)).all())
    return {"register": register, **tables}


def test_a_lone_frame_is_committed_at_once_and_its_future_resolves_after_the_commit(db_url: str) -> None:
    """DESIGN: a lone frame waits for one commit; no fixed flush interval while frames are queued."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db, "G")
        writer = new_writer(db, HOLD, interval=60.0)  # log entries alone would linger a minute; frames do not
        await writer.start()
        try:
            async with writes_blocked(db_url):
                done = await writer.put_meter_frame(frame(charger_id, [eair(1000)]))
                await asyncio.sleep(0.3)
                assert not done.done() and await count_frames(db, charger_id) == 0
            await asyncio.wait_for(done, 5)
            assert await count_frames(db, charger_id) == 1
            began = asyncio.get_running_loop().time()
            await asyncio.wait_for(await writer.put_meter_frame(frame(charger_id, [eair(1001)], 1)), 5)
            assert asyncio.get_running_loop().time() - began < 1.0
        finally:
            await writer.stop()

    run(db_url, scenario, busy_timeout_ms=50)


def test_a_held_frame_fails_at_its_deadline_and_is_written_once_the_database_takes_writes(db_url: str) -> None:
    """DESIGN: answers are held (bounded); nothing answered or queued is lost when the database comes back."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db, "G")
        writer = new_writer(db, HOLD)
        await writer.start()
        try:
            async with writes_blocked(db_url):
                deadline = writer.clock.monotonic() + 0.3
                done = await writer.put_meter_frames([frame(charger_id, [eair(1000)])], deadline)
                with pytest.raises(StoreUnavailableError):
                    await asyncio.wait_for(done, 5)
                assert db.is_sqlite is (writer.failing_since is not None)  # PostgreSQL waits on the lock instead
            for _ in range(100):
                if await count_frames(db, charger_id) == 1:
                    break
                await asyncio.sleep(0.05)
            assert await count_frames(db, charger_id) == 1 and writer.failing_since is None
        finally:
            await writer.stop()

    run(db_url, scenario, busy_timeout_ms=50)


def test_a_full_queue_makes_the_put_wait_until_its_deadline(db_url: str) -> None:
    """DESIGN: back-pressure never answers early; past the hold, the wait for room fails."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db, "G")
        writer = new_writer(db, HOLD, max_frames=1)
        await writer.put_meter_frame(frame(charger_id, [eair(1)]))
        with pytest.raises(StoreUnavailableError):
            await writer.put_meter_frames([frame(charger_id, [eair(2)], 1)], writer.clock.monotonic() + 0.1)
        assert writer.backlog == 1

    run(db_url, scenario)


def test_a_frame_the_database_refuses_still_resolves_its_future(db_url: str) -> None:
    """A row no retry could store (its charger deleted) is dropped and logged; its charger is still answered."""

    async def scenario(db: Database) -> None:
        kept, deleted = await new_charger(db, "G"), await new_charger(db, "G")
        writer = new_writer(db, HOLD)
        good = await writer.put_meter_frame(frame(kept, [eair(1)]))
        bad = await writer.put_meter_frame(frame(deleted, [eair(1)]))
        async with db.write() as conn:
            await conn.execute(delete(charger_table).where(charger_table.c.id == deleted))
        await writer.flush()
        assert good.done() and bad.done() and bad.exception() is None
        assert writer.dropped_frames == 1 and await count_frames(db, kept) == 1

    run(db_url, scenario)


def test_identical_frames_are_stored_once_within_a_batch_and_across_batches(db_url: str) -> None:
    """DESIGN: a replayed frame (charger, connector, timestamp, samples) is stored once; R-96..R-98 count it once."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db, "G")
        transaction_id = await new_transaction(db, charger_id)
        writer = new_writer(db, HOLD)
        readings = [frame(charger_id, [eair(1000 + 100 * m)], m, transaction_id) for m in (0, 10, 20)]
        for item in [*readings, readings[1]]:
            await writer.put_meter_frame(item)
        await writer.flush()
        before = await derived(db, charger_id, transaction_id)
        for batch in ([readings[2], readings[0]], [readings[1]]):
            for item in batch:
                await writer.put_meter_frame(item)
            await writer.flush()
        assert await count_frames(db, charger_id) == 3
        assert await derived(db, charger_id, transaction_id) == before
        assert before["register"] == 3000 and sum(row[-1] for row in before["energy_rollups"]) == 2000

    run(db_url, scenario)


def test_a_batch_of_new_and_replayed_frames_derives_from_the_new_ones_only(db_url: str) -> None:
    """The frames that went in are told apart from the replays (SQLite: the last ids; PostgreSQL: xmin)."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db, "G")
        transaction_id = await new_transaction(db, charger_id)
        writer = new_writer(db, HOLD)
        first = [frame(charger_id, [eair(1000 + 100 * m)], m, transaction_id) for m in (0, 10)]
        for item in first:
            await writer.put_meter_frame(item)
        await writer.flush()
        later = [frame(charger_id, [eair(1000 + 100 * m)], m, transaction_id) for m in (20, 30)]
        for item in [later[0], first[0], later[1], first[1]]:  # the last row of the batch is a replay
            await writer.put_meter_frame(item)
        await writer.flush()
        once = await derived(db, charger_id, transaction_id)
        assert await count_frames(db, charger_id) == 4
        assert once["register"] == 4000 and sum(row[-1] for row in once["energy_rollups"]) == 3000

    run(db_url, scenario)


def test_a_replayed_frame_of_more_than_1000_samples_is_stored_once(db_url: str) -> None:
    """A frame stored as several rows (DESIGN: sample ids) is a replay as a whole."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db, "G")
        writer = new_writer(db, HOLD)
        samples = [normalise_sample(str(i), measurand="Voltage") for i in range(1500)]
        big = frame(charger_id, samples)
        await writer.put_meter_frame(big)
        await writer.flush()
        await writer.put_meter_frame(big)
        await writer.put_meter_frame(frame(charger_id, samples[:1000], 1))
        await writer.flush()
        assert await count_frames(db, charger_id) == 3

    run(db_url, scenario)
