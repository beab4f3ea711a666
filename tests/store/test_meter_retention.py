"""Raw meter frames are kept `VOLTLINE_METER_RETENTION_DAYS` (services/maintenance.py); rollups and registers stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Table, func, select

from tests.support.writer_scenarios import new_charger, run
from voltline.domain.frames import MeterFrame
from voltline.domain.meter_values import normalise_sample
from voltline.errors import SettingsError
from voltline.services import maintenance
from voltline.services.runtime import Runtime
from voltline.settings import load_settings
from voltline.store.engine import Database
from voltline.store.schema import energy_rollups, meter_frames


def frame(charger_id: int, at: datetime, wh: int) -> MeterFrame:
    """A one-sample register reading of connector 1."""
    return MeterFrame(charger_id, None, None, 1, None, at, (normalise_sample(str(wh)),), at)


async def count(db: Database, table: Table, charger_id: int) -> int:
    """Rows of the charger in `meter_frames` or `energy_rollups`."""
    async with db.read() as conn:
        query = select(func.count()).select_from(table).where(table.c.charger_id == charger_id)
        return int(await conn.scalar(query) or 0)


def test_frames_older_than_the_retention_go_and_their_rollups_stay(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Old frames are deleted in chunks; newer ones, the rollups and every other charger's frames are kept."""
    monkeypatch.setattr(maintenance, "FRAMES_PER_DELETE", 3)  # several chunks from a few frames

    async def scenario(db: Database) -> None:
        runtime = Runtime(settings=load_settings({}, meter_retention_days=2), db=db, secret_key="retention-test")
        charger, other = await new_charger(db, "RET"), await new_charger(db, "RET")
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        old = [frame(charger, now - timedelta(days=10, minutes=15 * n), 1000 + n) for n in range(8, 0, -1)]
        new = [frame(charger, now - timedelta(minutes=15 * n), 5000 + n) for n in range(3, 0, -1)]
        await runtime.writer.start()
        await (await runtime.writer.put_meter_frames(old + new + [frame(other, now, 7)]))
        await runtime.writer.stop()
        rollups_before = await count(db, energy_rollups, charger)
        assert await count(db, meter_frames, charger) == 11 and rollups_before > 0

        assert await maintenance.purge_old_meter_frames(runtime) >= 8
        assert await count(db, meter_frames, charger) == 3, "the frames of the last two days stay"
        assert await count(db, energy_rollups, charger) == rollups_before, "rollups are kept"
        assert await count(db, meter_frames, other) == 1
        assert await maintenance.purge_old_meter_frames(runtime) == 0

        keep_all = Runtime(settings=load_settings({}), db=db, secret_key="retention-test")
        assert await maintenance.purge_old_meter_frames(keep_all) == 0

    run(db_url, scenario)


@pytest.mark.parametrize("days", ["-1", "1"])
def test_a_retention_shorter_than_the_out_of_order_look_back_is_refused(days: str) -> None:
    """R-96 reads back a day of raw frames for late readings: 0 (for ever) or at least 2 days."""
    with pytest.raises(SettingsError, match="VOLTLINE_METER_RETENTION_DAYS"):
        load_settings({"VOLTLINE_METER_RETENTION_DAYS": days})
