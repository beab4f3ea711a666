"""The audit log is kept `VOLTLINE_AUDIT_RETENTION_DAYS` (services/maintenance.py; 0, the default: for ever)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.support.writer_scenarios import run
from voltline.errors import SettingsError
from voltline.services import maintenance
from voltline.services.runtime import Runtime
from voltline.settings import load_settings
from voltline.store.audit import insert_audit_row
from voltline.store.engine import Database
from voltline.store.schema import audit_log


def row(at: datetime, number: int) -> dict[str, object]:
    """A system row about site `number`, recorded at `at`."""
    return {
        "team_id": None,
        "at": at,
        "actor_kind": "system",
        "action": "site.created",
        "object_type": "site",
        "object_id": str(number),
        "outcome": "ok",
    }


async def object_ids(db: Database) -> list[str]:
    async with db.read() as conn:
        found = await conn.execute(select(audit_log.c.object_id).order_by(audit_log.c.id))
        return [str(value) for value in found.scalars()]


def test_rows_older_than_the_retention_go_oldest_first_in_chunks_and_the_rest_stay(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maintenance, "AUDIT_ROWS_PER_DELETE", 2)  # several chunks from a few rows

    async def scenario(db: Database) -> None:
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        ages = [40, 35, 31, 30.5, 29, 1]  # days, in the order the rows were recorded
        async with db.write() as conn:
            for number, days in enumerate(ages):
                await insert_audit_row(conn, row(now - timedelta(days=days), number))

        keep_all = Runtime(settings=load_settings({}), db=db, secret_key="audit-retention")
        assert keep_all.settings.audit_retention_days == 0
        assert await maintenance.purge_old_audit_rows(keep_all) == 0
        assert await object_ids(db) == ["0", "1", "2", "3", "4", "5"], "0 keeps every row"

        settings = load_settings({"VOLTLINE_AUDIT_RETENTION_DAYS": "30"})
        runtime = Runtime(settings=settings, db=db, secret_key="audit-retention")
        assert await maintenance.purge_old_audit_rows(runtime) == 4
        assert await object_ids(db) == ["4", "5"], "the rows of the last 30 days stay"
        assert await maintenance.purge_old_audit_rows(runtime) == 0

        async with db.write() as conn:
            await conn.execute(audit_log.delete())
            assert await conn.scalar(select(func.count()).select_from(audit_log)) == 0
        assert await maintenance.purge_old_audit_rows(runtime) == 0, "an empty log"

    run(db_url, scenario)


def test_housekeeping_purges_the_audit_log_when_it_starts(db_url: str) -> None:
    """The housekeeping loop (role worker or all) runs the audit purge beside the other purges."""

    async def scenario(db: Database) -> None:
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        async with db.write() as conn:
            await conn.execute(audit_log.delete())
            await insert_audit_row(conn, row(now - timedelta(days=8), 100))
            await insert_audit_row(conn, row(now, 101))
        settings = load_settings({"VOLTLINE_AUDIT_RETENTION_DAYS": "7"})
        housekeeping = maintenance.Housekeeping(Runtime(settings=settings, db=db, secret_key="audit-retention"))
        await housekeeping.start()
        try:
            for _ in range(200):
                if await object_ids(db) == ["101"]:
                    break
                await asyncio.sleep(0.02)
        finally:
            await housekeeping.stop()
        assert await object_ids(db) == ["101"]

    run(db_url, scenario)


@pytest.mark.parametrize("days", ["-1", "x"])
def test_a_negative_or_unreadable_audit_retention_is_refused(days: str) -> None:
    with pytest.raises(SettingsError, match="VOLTLINE_AUDIT_RETENTION_DAYS"):
        load_settings({"VOLTLINE_AUDIT_RETENTION_DAYS": days})
