"""Settings for durable answers (DESIGN "Durability"): SQLite `synchronous` and the OCPP hold time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.errors import SettingsError
from voltline.settings import load_settings
from voltline.store.engine import Database


def test_defaults_are_normal_synchronous_and_a_20_second_hold() -> None:
    settings = load_settings({})
    assert (settings.sqlite_synchronous, settings.ocpp_hold_seconds) == ("NORMAL", 20.0)


def test_synchronous_is_read_case_insensitively_and_the_hold_as_seconds() -> None:
    settings = load_settings({"VOLTLINE_SQLITE_SYNCHRONOUS": " full ", "VOLTLINE_OCPP_HOLD_SECONDS": "2.5"})
    assert (settings.sqlite_synchronous, settings.ocpp_hold_seconds) == ("FULL", 2.5)


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("VOLTLINE_SQLITE_SYNCHRONOUS", "OFF", "VOLTLINE_SQLITE_SYNCHRONOUS must be NORMAL or FULL"),
        ("VOLTLINE_SQLITE_SYNCHRONOUS", "2", "VOLTLINE_SQLITE_SYNCHRONOUS must be NORMAL or FULL"),
        ("VOLTLINE_OCPP_HOLD_SECONDS", "0", "VOLTLINE_OCPP_HOLD_SECONDS must be more than 0"),
        ("VOLTLINE_OCPP_HOLD_SECONDS", "-5", "VOLTLINE_OCPP_HOLD_SECONDS must be more than 0"),
        ("VOLTLINE_OCPP_HOLD_SECONDS", "soon", "VOLTLINE_OCPP_HOLD_SECONDS must be a number"),
    ],
)
def test_bad_values_raise_a_clear_settings_error(name: str, value: str, text: str) -> None:
    with pytest.raises(SettingsError, match=text):
        load_settings({name: value})


@pytest.mark.parametrize(("setting", "level"), [("NORMAL", 1), ("FULL", 2), ("EXTRA", 3)])
def test_the_sqlite_connections_run_the_configured_synchronous_level(tmp_path: Path, setting: str, level: int) -> None:
    """SQLite's PRAGMA synchronous: NORMAL = 1, FULL = 2, EXTRA = 3 (on both writing connections and the readers)."""

    async def level_of(conn: AsyncConnection) -> int:
        return int((await conn.exec_driver_sql("PRAGMA synchronous")).scalar_one())

    async def levels() -> tuple[int, int, int]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'sync.sqlite3'}", synchronous=setting)
        try:
            async with db.write() as conn:
                written = await level_of(conn)
            batch = await db.write_batch(level_of)
            async with db.scan() as conn:
                read = await level_of(conn)
            return written, batch, read
        finally:
            await db.close()

    assert asyncio.run(levels()) == (level, level, level)
