"""The smart-charging store (store/smart.py) on SQLite and PostgreSQL: profile rows written in batches.

DESIGN: installed profiles survive a restart; the enforcer (services/smart_control/enforcer.py) writes the rows of
many chargers in one transaction, as one upsert with many parameter sets per statement.
"""

from __future__ import annotations

import gc
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from tests.support.writer_scenarios import new_charger, run
from voltline.domain.site_view import DEFAULT, TX, ProfileRow
from voltline.store import smart as store
from voltline.store.engine import Database
from voltline.store.schema import charger_capabilities, charging_profiles, meter_latest

T0 = datetime(2025, 3, 31, 12, 0, 0)


async def rows_of(db: Database, charger_id: int) -> dict[tuple[int, str], dict[str, Any]]:
    """The stored profile rows of a charger by (connector, purpose)."""
    async with db.read() as conn:
        query = select(charging_profiles).where(charging_profiles.c.charger_id == charger_id)
        found = (await conn.execute(query)).mappings()
        return {(row["connector_number"], row["purpose"]): dict(row) for row in found}


async def unsupported(db: Database, charger_id: int) -> bool | None:
    """The charger's `profiles_unsupported` flag (None without a capability row)."""
    table = charger_capabilities
    async with db.read() as conn:
        flag = await conn.scalar(select(table.c.profiles_unsupported).where(table.c.charger_id == charger_id))
        return None if flag is None else bool(flag)


def sent(at: datetime, **values: Any) -> dict[str, Any]:
    """The values the enforcer stores with an attempt."""
    return {"stack_level": 1, "profile_id": 1001, "unit": "A", "sent_at": at, **values}


def test_rows_are_inserted_then_updated_and_unsent_columns_are_kept(db_url: str) -> None:
    """An answer row that leaves `acknowledged_at` out keeps the stored one (a timeout after an accepted limit)."""

    async def scenario(db: Database) -> None:
        charger = await new_charger(db)
        accepted = ProfileRow(charger, 1, TX, 100, "accepted", None, 7)
        async with db.write() as conn:
            await store.save_profiles(conn, [(accepted, sent(T0, acknowledged_at=T0))], T0)
        timeout = ProfileRow(charger, 1, TX, 80, "timeout", 100, 7)
        later = T0 + timedelta(seconds=5)
        async with db.write() as conn:
            await store.save_profiles(conn, [(timeout, sent(later))], later)
        row = (await rows_of(db, charger))[(1, TX)]
        assert (row["limit_tenths"], row["reserved_tenths"], row["status"]) == (80, 100, "timeout")
        assert (row["sent_at"], row["acknowledged_at"]) == (later, T0)

    run(db_url, scenario)


def test_a_first_row_without_times_gets_the_defaults_and_later_rows_of_a_key_win(db_url: str) -> None:
    """Rows are applied in order: pending, then accepted of the same key in one call leaves the accepted one."""

    async def scenario(db: Database) -> None:
        charger = await new_charger(db)
        pending = ProfileRow(charger, 0, DEFAULT, 64, "pending", 64)
        accepted = ProfileRow(charger, 0, DEFAULT, 64, "accepted")
        rejected = ProfileRow(charger, 1, TX, 0, "rejected", None, 9)
        async with db.write() as conn:
            items = [(pending, sent(T0, acknowledged_at=None)), (rejected, {"profile_id": 1001})]
            items.append((accepted, sent(T0, acknowledged_at=T0)))
            await store.save_profiles(conn, items, T0)
        rows = await rows_of(db, charger)
        assert (rows[(0, DEFAULT)]["status"], rows[(0, DEFAULT)]["reserved_tenths"]) == ("accepted", None)
        default = rows[(1, TX)]
        assert (default["stack_level"], default["unit"], default["sent_at"], default["status"]) == (
            0,
            "A",
            T0,
            "rejected",
        )

    run(db_url, scenario)


def test_a_batch_larger_than_one_statement_is_stored_whole(db_url: str) -> None:
    """1,000 chargers answering together: more rows than `ROWS_PER_STATEMENT`, all stored, each its own."""

    async def scenario(db: Database) -> None:
        chargers = [await new_charger(db) for _ in range(3)]
        count = store.ROWS_PER_STATEMENT + 50
        items = [
            (ProfileRow(chargers[n % 3], n, TX, 60 + n, "pending", 60 + n, n), sent(T0, acknowledged_at=None))
            for n in range(count)
        ]
        async with db.write() as conn:
            await store.save_profiles(conn, items, T0)
        stored = {}
        for charger in chargers:
            stored.update({key[0]: row["limit_tenths"] for key, row in (await rows_of(db, charger)).items()})
        assert stored == {n: 60 + n for n in range(count)}

    run(db_url, scenario)


def test_saving_rows_again_leaves_no_cyclic_garbage(db_url: str) -> None:
    """Every control run saves its rows: the statements are built once, so a repeated save leaves the
    garbage collector nothing in cycles (a statement built per call left its `excluded` alias, about
    150 objects in cycles, and young collections of 8-12 ms in bench/smart.py)."""

    async def scenario(db: Database) -> None:
        charger = await new_charger(db)

        def items(limit: int) -> list[tuple[ProfileRow, dict[str, Any]]]:
            rows = [ProfileRow(charger, n, TX, limit, "pending", limit, n) for n in range(3)]
            return [(row, sent(T0, acknowledged_at=None)) for row in rows] + [(rows[0], {"status": "accepted"})]

        async with db.write() as conn:
            await store.save_profiles(conn, items(60), T0)
        gc.collect()
        gc.disable()
        try:
            async with db.write() as conn:
                await store.save_profiles(conn, items(70), T0)
            cyclic = gc.collect()
        finally:
            gc.enable()
        assert (await rows_of(db, charger))[(1, TX)]["limit_tenths"] == 70
        assert cyclic < 40, f"{cyclic} objects in reference cycles"

    run(db_url, scenario)


def test_a_reconnect_clears_the_unsupported_flag_and_marks_profiles_stale(db_url: str) -> None:
    """R-89: after a reconnect every profile is sent again: accepted limits stay reserved as `stale`,
    refused ones are retried, and a charger that said NotImplemented is tried again (it may have
    been updated)."""

    async def scenario(db: Database) -> None:
        charger = await new_charger(db)
        async with db.write() as conn:
            accepted = ProfileRow(charger, 1, TX, 100, "accepted", None, 3)
            refused = ProfileRow(charger, 0, DEFAULT, 80, "rejected", 120)
            await store.save_profiles(conn, [(accepted, sent(T0)), (refused, sent(T0))], T0)
            await store.save_capabilities(conn, charger, {"profiles_unsupported": True})
        flagged = await unsupported(db, charger)
        assert flagged is True
        async with db.write() as conn:
            await store.mark_profiles_stale(conn, charger)
        flagged = await unsupported(db, charger)
        rows = await rows_of(db, charger)
        assert (flagged, rows[(1, TX)]["status"], rows[(1, TX)]["reserved_tenths"]) == (False, "stale", 100)
        # A refused profile is tried again too, keeping what it reserved meanwhile.
        assert (rows[(0, DEFAULT)]["status"], rows[(0, DEFAULT)]["reserved_tenths"]) == ("stale", 120)

    run(db_url, scenario)


def test_the_newest_currents_per_connector_come_per_phase_or_phase_less(db_url: str) -> None:
    """What the controller reads for group meters (§7.2) and idle reclaim (R-84): per-phase
    `Current.Import` in tenths with the newest time; a phase-less value counts on each used phase
    (R-92); text that is not a number and other measurands are left out."""

    async def scenario(db: Database) -> None:
        charger, other = await new_charger(db), await new_charger(db)
        later = T0 + timedelta(seconds=5)

        def latest(
            charger_id: int, connector: int, measurand: str, phase: str, value: str, *, at: datetime = T0
        ) -> Any:
            values = {"charger_id": charger_id, "connector_number": connector, "measurand": measurand}
            return {**values, "phase": phase, "value": value, "unit": "A", "normalised": value, "timestamp": at}

        rows = [
            latest(charger, 1, "Current.Import", "L1", "16.04"),
            latest(charger, 1, "Current.Import", "L2", "15.96", at=later),
            latest(charger, 1, "Current.Import", "", "99"),
            latest(charger, 1, "Power.Active.Import", "L1", "3700", at=later + timedelta(seconds=1)),
            latest(charger, 2, "Current.Import", "", "7.5"),
            latest(charger, 3, "Current.Import", "L1", "n/a"),
            latest(other, 1, "Current.Import", "L1", "10"),
        ]
        async with db.write() as conn:
            await conn.execute(insert(meter_latest), rows)
        async with db.read() as conn:
            found = await store.latest_currents(conn, [charger])
        assert set(found) == {(charger, 1), (charger, 2), (charger, 3)}
        assert store.phase_draw(found[(charger, 1)], 3) == ((160, 160, 0), later)
        assert store.phase_draw(found[(charger, 2)], 3) == ((75, 75, 75), T0)
        assert store.phase_draw(found[(charger, 2)], 1) == ((75, 0, 0), T0)
        assert store.phase_draw(found[(charger, 3)], 3) == (None, None)
        assert store.phase_draw(None, 3) == (None, None)

    run(db_url, scenario)
