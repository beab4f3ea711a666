"""Migrations: upgrade from empty, `alembic check` clean, downgrade and upgrade again (DESIGN: Alembic)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import BACKENDS
from voltline.store import migrate
from voltline.store.schema import metadata


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_round_trip_and_match_the_schema(backend: str, fresh_database: Callable[[str], str]) -> None:
    url = fresh_database(backend)  # already upgraded to head

    async def scenario() -> None:
        assert await migrate.current_revision(url) is not None
        await migrate.check(url)  # raises when the models and migrations differ
        assert set(metadata.tables) <= await _tables(url)
        await migrate.downgrade(url, "base")
        assert await migrate.current_revision(url) is None
        assert not (set(metadata.tables) & await _tables(url))
        await migrate.upgrade(url)
        await migrate.check(url)
        assert set(metadata.tables) <= await _tables(url)

    asyncio.run(scenario())


@pytest.mark.parametrize("backend", BACKENDS)
def test_existing_chargers_get_profile_0_without_a_password_and_1_with_one(
    backend: str, fresh_database: Callable[[str], str]
) -> None:
    """DESIGN: Charger security: nothing in the field breaks when security profiles arrive."""
    url = fresh_database(backend)

    async def scenario() -> dict[str, int]:
        await migrate.downgrade(url, "0007")
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                for identity, digest in (("OPEN", None), ("LOCKED", "ab" * 32)):
                    await conn.execute(
                        text(
                            "INSERT INTO chargers (uuid, identity, pincode, password_hash, connection_status,"
                            " license_smart, license_pro, created_at, updated_at) VALUES (:uuid, :identity,"
                            " 'ABCD2345', :digest, 'offline', false, false, :now, :now)"
                        ),
                        {
                            "uuid": str(uuid.uuid4()),
                            "identity": identity,
                            "digest": digest,
                            "now": datetime(2025, 1, 1),
                        },
                    )
            await migrate.upgrade(url)
            async with engine.connect() as conn:
                found = await conn.execute(text("SELECT identity, security_profile FROM chargers"))
                return {str(identity): int(profile) for identity, profile in found}
        finally:
            await engine.dispose()

    assert asyncio.run(scenario()) == {"OPEN": 0, "LOCKED": 1}
