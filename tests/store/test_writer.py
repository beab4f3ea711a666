"""The batched meter writer on SQLite and PostgreSQL (DESIGN: meter writes; data model; conflicts > OCPP).

Each test runs its own event loop against a database made for this module, with chargers
and transactions of its own, so tests stay independent.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.engine import make_url

from tests.support.writer_scenarios import (
    T0,
    charger_log,
    new_charger,
    new_transaction,
    new_writer,
    run,
    stored_samples,
)
from voltline.domain.frames import LogEntry, MeterFrame
from voltline.domain.ids import ChargerId, TeamId
from voltline.domain.meter_values import EAIR, Sample, normalise_sample, unpack_samples
from voltline.store import chargers, meter_values, ocpp_log
from voltline.store.datapoints import SampleFilter, list_charger_samples
from voltline.store.engine import Database
from voltline.store.schema import chargers as charger_table
from voltline.store.schema import energy_rollups, meter_frames, meter_latest, transactions

TEAM = 4242  # the team stamped on frames that are read back through the team-scoped reader
ANY_SAMPLE_AT_T0: dict[str, Any] = {"date_from": T0, "date_to": T0, "wanted": SampleFilter(), "limit": 9}


def frame(
    charger_id: int,
    samples: list[Sample],
    *,
    at: datetime = T0,
    connector: int = 1,
    transaction_id: int | None = None,
    team_id: int | None = None,
    site_id: int | None = None,
) -> MeterFrame:
    """A frame received one second after its timestamp."""
    return MeterFrame(
        charger_id, team_id, site_id, connector, transaction_id, at, tuple(samples), at + timedelta(seconds=1)
    )


def eair(value: str, **fields: Any) -> Sample:
    """An energy register sample."""
    return normalise_sample(value, **fields)


async def frame_rows(db: Database, charger_id: int) -> list[dict[str, Any]]:
    """The charger's stored frames, by id."""
    async with db.read() as conn:
        query = select(meter_frames).where(meter_frames.c.charger_id == charger_id).order_by(meter_frames.c.id)
        return [dict(row) for row in (await conn.execute(query)).mappings()]


async def latest(db: Database, charger_id: int) -> dict[tuple[int, str, str], tuple[str, str | None, datetime]]:
    """(connector, measurand, phase) -> (value, normalised, timestamp)."""
    async with db.read() as conn:
        rows = await meter_values.list_latest(conn, ChargerId(charger_id))
    return {
        (r["connector_number"], r["measurand"], r["phase"]): (r["value"], r["normalised"], r["timestamp"]) for r in rows
    }


async def register(db: Database, transaction_id: int) -> int | None:
    """The transaction's register_wh."""
    async with db.read() as conn:
        value = await conn.scalar(select(transactions.c.register_wh).where(transactions.c.id == transaction_id))
    return None if value is None else int(value)


# -- raw frames ----------------------------------------------------------------------------------


def test_flush_writes_one_row_per_frame_with_packed_samples_that_round_trip(db_url: str) -> None:
    """DESIGN: one row per MeterValues frame, team/site stamped, samples packed; ids frame_id*1000+position."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        samples = [
            eair("5133841.000"),
            normalise_sample("7.4", measurand="Power.Active.Import", unit="kW"),
            *(normalise_sample("16", measurand="Current.Import", phase=p) for p in ("L1", "L2", "L3")),
            normalise_sample("not a number", measurand="SoC"),
        ]
        writer = new_writer(db)
        await writer.put_meter_frame(frame(charger_id, samples, connector=2, team_id=None, site_id=None))
        await writer.put_meter_frame(frame(charger_id, samples[:1], at=T0 + timedelta(seconds=10)))
        await writer.flush()
        rows = await frame_rows(db, charger_id)
        assert [(r["connector_number"], r["timestamp"], r["received_at"]) for r in rows] == [
            (2, T0, T0 + timedelta(seconds=1)),
            (1, T0 + timedelta(seconds=10), T0 + timedelta(seconds=11)),
        ]
        assert unpack_samples(rows[0]["samples"]) == samples
        assert rows[0]["samples"].startswith('[["5133841.000","5133841"],')
        async with db.read() as conn:
            stored = await stored_samples(conn, charger_id)
        first = rows[0]["id"]
        assert [s.id for s in stored] == [first * 1000 + i for i in range(6)] + [rows[1]["id"] * 1000]
        assert [s.sample for s in stored[:6]] == samples

    run(db_url, scenario)


def test_team_site_and_transaction_are_stamped_on_the_frame(db_url: str) -> None:
    """DESIGN: meter rows carry the team and site of the charger at the time they were written."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        transaction_id = await new_transaction(db, charger_id)
        writer = new_writer(db)
        await writer.put_meter_frame(
            frame(charger_id, [eair("1")], transaction_id=transaction_id, team_id=4242, site_id=77)
        )
        await writer.flush()
        row = (await frame_rows(db, charger_id))[0]
        assert (row["team_id"], row["site_id"], row["transaction_id"]) == (4242, 77, transaction_id)
        async with db.read() as conn:
            mine = await list_charger_samples(conn, TeamId(4242), ChargerId(charger_id), **ANY_SAMPLE_AT_T0)
            theirs = await list_charger_samples(conn, TeamId(4243), ChargerId(charger_id), **ANY_SAMPLE_AT_T0)
        assert [s.charger_id for s in mine] == [charger_id] and theirs == []

    run(db_url, scenario)


def test_timestamps_with_an_offset_are_stored_as_naive_utc(db_url: str) -> None:
    """R-94: the charger's clock, stored as UTC."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db)
        local = datetime(2025, 3, 31, 14, 0, tzinfo=timezone(timedelta(hours=2)))
        await writer.put_meter_frame(frame(charger_id, [eair("1")], at=local))
        await writer.flush()
        assert (await frame_rows(db, charger_id))[0]["timestamp"] == T0
        assert (await latest(db, charger_id))[(1, EAIR, "")][2] == T0

    run(db_url, scenario)


def test_a_frame_of_more_than_1000_samples_is_split_and_keeps_unique_ids(db_url: str) -> None:
    """DESIGN: sample ids are frame_id * 1000 + position, so a stored frame holds at most 1000 samples."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        samples = [normalise_sample(str(i), measurand="Current.Import") for i in range(1500)]
        writer = new_writer(db)
        await writer.put_meter_frame(frame(charger_id, samples))
        await writer.flush()
        rows = await frame_rows(db, charger_id)
        assert [len(unpack_samples(r["samples"])) for r in rows] == [1000, 500]
        async with db.read() as conn:
            stored = await stored_samples(conn, charger_id)
        assert len({s.id for s in stored}) == 1500
        assert [s.sample.value for s in stored] == [str(i) for i in range(1500)]

    run(db_url, scenario)


# -- derived: latest value -----------------------------------------------------------------------


def test_latest_is_replaced_by_a_later_or_equal_timestamp_and_not_by_an_older_one(db_url: str) -> None:
    """R-95 (derived tables only): a duplicate timestamp replaces; an older sample does not."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db)
        key = (1, "Current.Import", "L1")
        for value, at in [("10", T0), ("9", T0 - timedelta(seconds=1)), ("11", T0), ("12", T0 + timedelta(seconds=5))]:
            await writer.put_meter_frame(
                frame(charger_id, [normalise_sample(value, measurand=key[1], phase="L1")], at=at)
            )
            await writer.flush()
            if value == "9":
                assert (await latest(db, charger_id))[key] == ("10", "10", T0)
            if value == "11":
                assert (await latest(db, charger_id))[key] == ("11", "11", T0)
        assert (await latest(db, charger_id))[key] == ("12", "12", T0 + timedelta(seconds=5))
        assert len(await frame_rows(db, charger_id)) == 4  # the raw table keeps everything

    run(db_url, scenario)


def test_latest_within_one_batch_keeps_the_newest_and_ranks_ties_by_context(db_url: str) -> None:
    """R-95: the newest sample wins; at equal timestamps Transaction.End > Sample.Periodic > Sample.Clock."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db)
        later = T0 + timedelta(seconds=30)
        batch = [
            frame(charger_id, [eair("2000", context="Transaction.End")], at=later),
            frame(charger_id, [eair("1999", context="Sample.Periodic")], at=later),
            frame(charger_id, [eair("1500")], at=T0),
            frame(charger_id, [eair("9", measurand="SoC", context="Sample.Clock")], at=T0),
            frame(charger_id, [eair("10", measurand="SoC", context="Sample.Periodic")], at=T0),
            frame(charger_id, [eair("8", measurand="SoC", context="Sample.Clock")], at=T0),
        ]
        for item in batch:
            await writer.put_meter_frame(item)
        await writer.flush()
        rows = await latest(db, charger_id)
        assert rows[(1, EAIR, "")] == ("2000", "2000", later)
        assert rows[(1, "SoC", "")][0] == "10"

    run(db_url, scenario)


def test_latest_keys_by_connector_measurand_and_phase_and_skips_unusable_samples(db_url: str) -> None:
    """R-91/R-92: signed and unparseable samples are evidence only; '' is the phase of phase-less samples."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db)
        samples = [
            eair("1.5", unit="kWh"),
            eair("ABCDEF", format="SignedData", context="Transaction.End"),
            normalise_sample("16.2", measurand="Current.Import", phase="L1"),
            normalise_sample("15.8", measurand="Current.Import", phase="L2"),
            normalise_sample("NaN", measurand="Voltage", phase="L1-N"),
            normalise_sample("400", measurand="Voltage", phase="L1-N", location="Inlet"),
            normalise_sample("231", measurand="Voltage", phase="L1-N"),
        ]
        await writer.put_meter_frame(frame(charger_id, samples))
        await writer.put_meter_frame(frame(charger_id, [eair("7")], connector=2))
        await writer.flush()
        assert await latest(db, charger_id) == {
            (1, EAIR, ""): ("1.5", "1500", T0),
            (1, "Current.Import", "L1"): ("16.2", "16.2", T0),
            (1, "Current.Import", "L2"): ("15.8", "15.8", T0),
            (1, "Voltage", "L1-N"): ("231", "231", T0),
            (2, EAIR, ""): ("7", "7", T0),
        }
        async with db.read() as conn:
            unit = await conn.scalar(
                select(meter_latest.c.unit).where(
                    meter_latest.c.charger_id == charger_id,
                    meter_latest.c.connector_number == 1,
                    meter_latest.c.measurand == EAIR,
                )
            )
        assert unit == "kWh"

    run(db_url, scenario)


# -- derived: transaction register ---------------------------------------------------------------


def test_the_transaction_register_only_moves_forward(db_url: str) -> None:
    """DESIGN: energy register per transaction = the highest EAIR seen (normalised Wh), never backwards."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        transaction_id = await new_transaction(db, charger_id)
        writer = new_writer(db)

        async def send(*values: str, unit: str | None = None) -> int | None:
            for i, value in enumerate(values):
                sample = eair(value, unit=unit)
                at = T0 + timedelta(seconds=i)
                await writer.put_meter_frame(frame(charger_id, [sample], at=at, transaction_id=transaction_id))
            await writer.flush()
            return await register(db, transaction_id)

        assert await register(db, transaction_id) is None
        assert await send("1200", "1000") == 1200  # the highest of a batch, whatever the order
        assert await send("1100") == 1200
        assert await send("1.3004", unit="kWh") == 1300
        assert await send("1300.5") == 1301  # rounded half-up to whole Wh

    run(db_url, scenario)


def test_the_register_uses_the_outlet_total_and_ignores_frames_without_a_known_transaction(db_url: str) -> None:
    """R-92: Outlet, phase-less first, else the sum of the phases; unknown transaction ids change nothing."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        first, second = await new_transaction(db, charger_id), await new_transaction(db, charger_id)
        writer = new_writer(db)
        await writer.put_meter_frame(
            frame(charger_id, [eair("9000", location="Inlet"), eair("5000")], transaction_id=first)
        )
        phases = [eair("100", phase="L1"), eair("200", phase="L2"), eair("300", phase="L3")]
        await writer.put_meter_frame(frame(charger_id, phases, transaction_id=second))
        await writer.put_meter_frame(frame(charger_id, [eair("99999")], transaction_id=None))
        await writer.put_meter_frame(frame(charger_id, [eair("99999")], transaction_id=2**40))
        await writer.flush()
        assert (await register(db, first), await register(db, second)) == (5000, 600)

    run(db_url, scenario)


# -- the message log -----------------------------------------------------------------------------


def test_log_entries_are_written_in_order_with_their_fields(db_url: str) -> None:
    """DESIGN: the OCPP message log goes through the batched writer."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db)
        aware = datetime(2025, 3, 31, 14, 0, 1, tzinfo=timezone(timedelta(hours=2)))
        writer.log(LogEntry(charger_id, "in", 2, "m-1", "BootNotification", '{"chargePointVendor":"V"}', T0))
        writer.log(LogEntry(charger_id, "out", 3, "m-1", None, '{"status":"Accepted"}', aware))
        await writer.flush()
        async with db.read() as conn:
            rows = await charger_log(conn, charger_id, limit=10)
        assert [
            (r["direction"], r["message_type"], r["message_id"], r["action"], r["payload"], r["created_at"])
            for r in rows
        ] == [
            ("out", 3, "m-1", None, '{"status":"Accepted"}', T0 + timedelta(seconds=1)),
            ("in", 2, "m-1", "BootNotification", '{"chargePointVendor":"V"}', T0),
        ]

    run(db_url, scenario)


def test_a_log_entry_made_without_a_time_is_stamped_now_in_utc(db_url: str) -> None:
    """Stored times are naive UTC."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db)
        writer.log(LogEntry(charger_id, "in", 2, "m-2", "Heartbeat", "{}"))
        await writer.flush()
        async with db.read() as conn:
            rows = await charger_log(conn, charger_id, limit=1)
        now = datetime.now(UTC).replace(tzinfo=None)
        assert abs(rows[0]["created_at"] - now) < timedelta(minutes=1)

    run(db_url, scenario)


def test_the_log_queue_drops_and_counts_entries_over_its_bound(db_url: str) -> None:
    """Brief: the message log is diagnostics; over the bound entries are counted, never waited for."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db, max_log_entries=3)
        for i in range(5):
            writer.log(LogEntry(charger_id, "in", 2, f"m-{i}", "Heartbeat", "{}", T0))
        assert writer.dropped_log_entries == 2
        await writer.flush()
        writer.log(LogEntry(charger_id, "in", 2, "m-5", "Heartbeat", "{}", T0))
        await writer.flush()
        async with db.read() as conn:
            rows = await charger_log(conn, charger_id, limit=10)
        assert [r["message_id"] for r in rows] == ["m-5", "m-2", "m-1", "m-0"]

    run(db_url, scenario)


def test_purge_deletes_log_entries_older_than_the_cutoff_only(db_url: str) -> None:
    """The message log is kept for a configurable number of days."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db)
        for days in (40, 31, 29, 0):
            writer.log(LogEntry(charger_id, "in", 2, f"d{days}", "Heartbeat", "{}", T0 - timedelta(days=days)))
        await writer.flush()
        async with db.write() as conn:
            purged = await ocpp_log.purge_ocpp_log(conn, T0 - timedelta(days=30))
        async with db.read() as conn:
            rows = await charger_log(conn, charger_id, limit=10)
        assert purged >= 2
        assert [r["message_id"] for r in rows] == ["d0", "d29"]

    run(db_url, scenario)


# -- queue, backpressure, shutdown, failures -----------------------------------------------------


def test_put_waits_while_the_queue_is_full_until_a_flush_frees_space_and_nothing_is_lost(db_url: str) -> None:
    """DESIGN: the queue is bounded; when full, MeterValues wait (backpressure) rather than drop."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db, max_frames=2)

        async def produce() -> None:
            for i in range(7):
                await writer.put_meter_frame(frame(charger_id, [eair(str(i))], at=T0 + timedelta(seconds=i)))

        producer = asyncio.create_task(produce())
        await asyncio.sleep(0.05)
        assert not producer.done() and writer.backlog == 2
        while not producer.done():
            await writer.flush()
            await asyncio.sleep(0)
        await writer.flush()
        rows = await frame_rows(db, charger_id)
        assert [unpack_samples(r["samples"])[0].value for r in rows] == [str(i) for i in range(7)]

    run(db_url, scenario)


def test_the_flush_loop_frees_a_full_queue_by_itself(db_url: str) -> None:
    """DESIGN: flush every <= 50 ms; a waiting put resumes without anyone calling flush()."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db, max_frames=1)
        await writer.start()
        try:
            for i in range(5):
                await asyncio.wait_for(writer.put_meter_frame(frame(charger_id, [eair(str(i))])), 5)
            for _ in range(100):
                if len(await frame_rows(db, charger_id)) == 5:
                    break
                await asyncio.sleep(0.02)
            assert len(await frame_rows(db, charger_id)) == 5
        finally:
            await writer.stop()

    run(db_url, scenario)


def test_stop_writes_everything_still_queued(db_url: str) -> None:
    """DESIGN: the writer flushes on shutdown."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db, interval=60.0)
        await writer.start()
        await asyncio.sleep(0)
        for i in range(100):
            await writer.put_meter_frame(frame(charger_id, [eair(str(i))], at=T0 + timedelta(seconds=i)))
            writer.log(LogEntry(charger_id, "in", 2, f"m-{i}", "MeterValues", "{}", T0))
        await writer.stop()
        assert len(await frame_rows(db, charger_id)) == 100
        async with db.read() as conn:
            logged = await charger_log(conn, charger_id, limit=200)
        assert len(logged) == 100 and writer.backlog == 0

    run(db_url, scenario)


def test_concurrent_puts_from_many_tasks_are_all_written_once(db_url: str) -> None:
    """Many chargers' sessions enqueue at once through a small queue; every frame lands exactly once."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db, max_frames=16, max_batch=7)
        await writer.start()

        async def session(n: int) -> None:
            for i in range(25):
                sample = normalise_sample(f"{n}.{i}", measurand="Current.Import")
                await writer.put_meter_frame(frame(charger_id, [sample], connector=n, at=T0 + timedelta(seconds=i)))

        await asyncio.gather(*(session(n) for n in range(1, 21)))
        await writer.stop()
        rows = await frame_rows(db, charger_id)
        values = sorted(unpack_samples(r["samples"])[0].value for r in rows)
        assert values == sorted(f"{n}.{i}" for n in range(1, 21) for i in range(25))
        assert {key[0]: value[0] for key, value in (await latest(db, charger_id)).items()} == {
            n: f"{n}.24" for n in range(1, 21)
        }

    run(db_url, scenario)


def test_a_frame_for_a_deleted_charger_is_dropped_alone_and_the_rest_is_written(db_url: str) -> None:
    """A batch the database refuses on its data is halved until the bad rows are found; only those go."""

    async def scenario(db: Database) -> None:
        kept, deleted = await new_charger(db), await new_charger(db)
        writer = new_writer(db)
        for i in range(5):
            await writer.put_meter_frame(frame(kept, [eair(str(i))], at=T0 + timedelta(seconds=i)))
        await writer.put_meter_frame(frame(deleted, [eair("1")]))
        writer.log(LogEntry(kept, "in", 2, "ok", "Heartbeat", "{}", T0))
        writer.log(LogEntry(deleted, "in", 2, "gone", "Heartbeat", "{}", T0))
        async with db.write() as conn:
            await conn.execute(delete(charger_table).where(charger_table.c.id == deleted))
        await writer.flush()
        assert len(await frame_rows(db, kept)) == 5 and writer.dropped_frames == 1
        async with db.read() as conn:
            logged = await charger_log(conn, kept, limit=10)
        assert [r["message_id"] for r in logged] == ["ok"]

    run(db_url, scenario)


def test_frames_with_numbers_no_column_holds_are_refused_at_put(db_url: str) -> None:
    """The OCPP schemas leave integers unbounded; such a frame is counted and not queued."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db)
        await writer.put_meter_frame(frame(charger_id, [eair("1")], connector=2**31))
        await writer.put_meter_frame(frame(charger_id, [eair("1")], transaction_id=2**63))
        await writer.put_meter_frame(frame(charger_id, [eair("1")], connector=-1))
        assert writer.dropped_frames == 3 and writer.backlog == 0

    run(db_url, scenario)


def test_a_failed_flush_keeps_the_batch_and_the_next_flush_writes_it(db_url: str) -> None:
    """Brief: flush errors are retried without losing the batch (SQLite: the database is locked)."""
    if not db_url.startswith("sqlite"):
        pytest.skip("a lock held by another process is the SQLite way to fail a write")
    path = make_url(db_url).database
    assert path is not None

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db)
        await writer.put_meter_frame(frame(charger_id, [eair("42")]))
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(Exception, match="locked"):
                await writer.flush()
            assert writer.backlog == 1
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await writer.flush()
        assert [unpack_samples(r["samples"])[0].value for r in await frame_rows(db, charger_id)] == ["42"]
        assert writer.backlog == 0

    run(db_url, scenario, busy_timeout_ms=50)


# -- reading frames back -------------------------------------------------------------------------


def test_charger_samples_are_filtered_by_a_time_range_inclusively_in_either_order(db_url: str) -> None:
    """DESIGN: the metervalues endpoint expands and filters frames in a time range."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db)
        for minute in range(5):
            samples = [eair(str(minute)), normalise_sample("16", measurand="Current.Import", phase="L1")]
            at = T0 + timedelta(minutes=minute)
            await writer.put_meter_frame(frame(charger_id, samples, at=at, team_id=TEAM))
        await writer.flush()
        team, charger = TeamId(TEAM), ChargerId(charger_id)
        span = {"date_from": T0 + timedelta(minutes=1), "date_to": T0 + timedelta(minutes=3)}
        async with db.read() as conn:
            newest = await list_charger_samples(conn, team, charger, **span, wanted=SampleFilter(), limit=100)
            oldest = await list_charger_samples(
                conn, team, charger, **span, wanted=SampleFilter(measurand=EAIR), limit=100, descending=False
            )
            two = await list_charger_samples(conn, team, charger, **span, wanted=SampleFilter(), limit=2)
            other = await list_charger_samples(conn, TeamId(-1), charger, **span, wanted=SampleFilter(), limit=100)
        assert [s.sample.value for s in newest] == ["16", "3", "16", "2", "16", "1"]
        assert [s.id for s in newest] == sorted((s.id for s in newest), reverse=True)
        assert [s.sample.value for s in oldest] == ["1", "2", "3"]
        assert [s.id for s in two] == [s.id for s in newest[:2]]
        assert other == []

    run(db_url, scenario)


def test_charger_samples_are_read_beyond_one_query_of_frames(db_url: str) -> None:
    """Samples are collected across several frame queries until the limit is reached."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db)
        count = meter_values.FRAMES_PER_QUERY + 150
        for i in range(count):
            at = T0 + timedelta(seconds=i // 2)
            await writer.put_meter_frame(frame(charger_id, [eair(str(i))], at=at, team_id=TEAM))
        await writer.flush()
        team, charger, day = TeamId(TEAM), ChargerId(charger_id), {"date_from": T0, "date_to": T0 + timedelta(days=1)}
        async with db.read() as conn:
            everything = await list_charger_samples(conn, team, charger, **day, wanted=SampleFilter(), limit=10_000)
            energy_only = await list_charger_samples(
                conn, team, charger, **day, wanted=SampleFilter(measurand="Voltage"), limit=10
            )
        assert [s.sample.value for s in everything] == [str(i) for i in reversed(range(count))]
        assert energy_only == []

    run(db_url, scenario)


def test_a_flush_interrupted_while_waiting_for_a_lock_keeps_the_batch(db_url: str) -> None:
    """Brief: a failed or interrupted flush loses nothing (PostgreSQL: a table locked by another session)."""
    if db_url.startswith("sqlite"):
        pytest.skip("covered for SQLite by the locked-database test")

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        writer = new_writer(db)
        await writer.put_meter_frame(frame(charger_id, [eair("43")]))
        async with db.reader.connect() as blocker:
            await blocker.exec_driver_sql("BEGIN")
            await blocker.exec_driver_sql("LOCK TABLE meter_frames IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(writer.flush(), 0.3)
            assert writer.backlog == 1
            await blocker.exec_driver_sql("ROLLBACK")
        await writer.flush()
        assert [unpack_samples(r["samples"])[0].value for r in await frame_rows(db, charger_id)] == ["43"]

    run(db_url, scenario)


# -- energy rollups (store/rollups.py) ------------------------------------------------------------


async def rolled(db: Database, charger_id: int) -> dict[tuple[int, datetime], int]:
    """(connector, bucket start) -> Wh of the charger's rollups (buckets that net to 0 left out)."""
    async with db.read() as conn:
        query = select(energy_rollups).where(energy_rollups.c.charger_id == charger_id)
        rows = (await conn.execute(query)).mappings().all()
    return {(r["connector_number"], r["bucket_start"]): int(r["wh"]) for r in rows if r["wh"]}


async def write_in_batches(db: Database, batches: list[list[MeterFrame]]) -> None:
    """Each list of frames as its own flush."""
    writer = new_writer(db)
    for batch in batches:
        for item in batch:
            await writer.put_meter_frame(item)
        await writer.flush()


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def test_rollups_spread_each_delta_over_quarter_hours(db_url: str) -> None:
    """spec/smart-charging.md §8.6 / R-98: 12:10 -> 1000 Wh, 12:20 -> 1500 Wh gives 250 + 250."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        frames = [
            frame(charger_id, [eair("1000")], at=minutes(10)),
            frame(charger_id, [eair("1.5", unit="kWh")], at=minutes(20)),
        ]
        await write_in_batches(db, [frames])
        assert await rolled(db, charger_id) == {(1, minutes(0)): 250, (1, minutes(15)): 250}

    run(db_url, scenario)


def test_rollups_do_not_depend_on_arrival_order_or_batches(db_url: str) -> None:
    """R-94..R-97: the same readings in time order, reversed, one by one, or replayed give the same buckets."""
    readings = [
        (0, "1000"),
        (10, "1500"),
        (40, "2500"),
        (50, "2700"),
        (65, "100"),
        (80, "400"),
        (81, "400000"),
        (90, "500"),
    ]

    async def scenario(db: Database) -> None:
        results = []
        for order in ("sorted", "reversed", "one by one", "replayed"):
            charger_id = await new_charger(db)
            frames = [frame(charger_id, [eair(v)], at=minutes(m)) for m, v in readings]
            batches = {
                "sorted": [frames],
                "reversed": [[f] for f in reversed(frames)],
                "one by one": [[f] for f in frames[:2] + frames[3:] + frames[2:3]],
                "replayed": [frames, frames[1:4]],
            }[order]
            await write_in_batches(db, batches)
            results.append({key[1]: wh for key, wh in (await rolled(db, charger_id)).items()})
        # by hand: 500 + 1000 x 5/30 -> 667; 500; 333 + 100; 100; 200; 100 + 100 (the outlier skipped)
        expected = {minutes(0): 667, minutes(15): 500, minutes(30): 433, minutes(45): 100, minutes(60): 200}
        assert results == [{**expected, minutes(75): 200}] * 4

    run(db_url, scenario)


def test_a_duplicate_timestamp_replaces_the_reading_by_context(db_url: str) -> None:
    """R-95 on derived tables: a Transaction.End at the same time wins over the periodic sample."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        first = [frame(charger_id, [eair("1000")], at=minutes(0)), frame(charger_id, [eair("1300")], at=minutes(10))]
        end = frame(charger_id, [eair("1200", context="Transaction.End")], at=minutes(10))
        clock = frame(charger_id, [eair("9999", context="Sample.Clock")], at=minutes(10))
        await write_in_batches(db, [first, [end], [clock]])
        assert await rolled(db, charger_id) == {(1, minutes(0)): 200}
        assert len(await frame_rows(db, charger_id)) == 4  # the raw table keeps everything

    run(db_url, scenario)


def test_connector_zero_has_no_rollups_and_the_rating_sets_the_outlier_limit(db_url: str) -> None:
    """R-97 with a 16 A single-phase connector (3680 W): 100 Wh in a minute (6 kW > 5.5 kW) is skipped."""

    async def scenario(db: Database) -> None:
        charger_id = await new_charger(db)
        async with db.write() as conn:
            await chargers.upsert_connector(conn, ChargerId(charger_id), 1, {"max_amperage": 16, "phases": 1})
        frames = [
            frame(charger_id, [eair("0")], at=minutes(0), connector=0),
            frame(charger_id, [eair("500")], at=minutes(10), connector=0),
            frame(charger_id, [eair("1000")], at=minutes(0)),
            frame(charger_id, [eair("1100")], at=minutes(1)),
            frame(charger_id, [eair("1150")], at=minutes(10)),
        ]
        await write_in_batches(db, [frames])
        assert await rolled(db, charger_id) == {(1, minutes(0)): 150}

    run(db_url, scenario)
