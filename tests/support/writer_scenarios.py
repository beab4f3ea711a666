"""Helpers of the meter-writer tests: a scenario on its own loop, a writer, a charger, a transaction, a write lock."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import RowMapping, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.clock import Clock
from voltline.settings import load_settings
from voltline.store import chargers
from voltline.store.engine import Database
from voltline.store.meter_values import StoredSample, expand_frame
from voltline.store.schema import meter_frames, ocpp_messages, transactions
from voltline.store.writer import MeterWriter

T0 = datetime(2025, 3, 31, 12, 0, 0)


def run(url: str, scenario: Callable[[Database], Awaitable[None]], **db_options: Any) -> None:
    """Run a scenario on a fresh event loop with its own Database handle."""

    async def main() -> None:
        db = Database(url, **db_options)
        try:
            await scenario(db)
        finally:
            await db.close()

    asyncio.run(main())


def new_writer(db: Database, environ: Mapping[str, str] | None = None, **options: Any) -> MeterWriter:
    """A writer as the app makes it, with settings from `environ` (plus test bounds)."""
    return MeterWriter(db, Clock(), hold_seconds=load_settings(environ or {}).ocpp_hold_seconds, **options)


async def new_charger(db: Database, prefix: str = "W") -> int:
    """A charger of its own for one test."""
    async with db.write() as conn:
        identity = f"{prefix}-{uuid.uuid4().hex[:12]}"
        row = await chargers.create_charger(conn, identity, "ABCD2345", {"security_profile": 0})
    return int(row["id"])


async def new_transaction(db: Database, charger_id: int) -> int:
    """An open transaction on connector 1."""
    async with db.write() as conn:
        values = {"charger_id": charger_id, "connector_number": 1, "status": "active", "created_at": T0}
        result = await conn.execute(insert(transactions).values(**values, updated_at=T0).returning(transactions.c.id))
        return int(result.scalar_one())


@contextlib.asynccontextmanager
async def writes_blocked(url: str) -> AsyncIterator[None]:
    """Another connection holds the write lock (SQLite) or locks the frames table (PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None
        blocker = sqlite3.connect(parsed.database, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        return
    conn = await asyncpg.connect(parsed.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE meter_frames IN EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def stored_samples(conn: AsyncConnection, charger_id: int) -> list[StoredSample]:
    """Every stored sample of the charger, oldest first: its frames by (timestamp, id), expanded."""
    order = (meter_frames.c.timestamp, meter_frames.c.id)
    query = select(meter_frames).where(meter_frames.c.charger_id == charger_id).order_by(*order)
    return [sample for row in (await conn.execute(query)).mappings() for sample in expand_frame(row)]


async def charger_log(conn: AsyncConnection, charger_id: int, *, limit: int) -> list[RowMapping]:
    """The newest `limit` OCPP frames logged for the charger, whatever its team, newest first."""
    query = select(ocpp_messages).where(ocpp_messages.c.charger_id == charger_id)
    return list((await conn.execute(query.order_by(ocpp_messages.c.id.desc()).limit(limit))).mappings().all())
