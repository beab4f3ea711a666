"""Migrations: upgrade from empty, `alembic check` clean, downgrade and upgrade again (DESIGN: Alembic)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import BACKENDS
from voltline.store import migrate
from voltline.store.schema import metadata, sites, teams


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


@pytest.mark.parametrize("backend", BACKENDS)
def test_sites_that_existed_keep_load_management_and_chargers_that_booted_stay_served(
    backend: str, fresh_database: Callable[[str], str]
) -> None:
    """DESIGN "Load management": migration 0011 turns the flag on for every existing site (they were
    balanced), leaves new sites' default (off) alone, and marks `boot_accepted` on the chargers that
    booted before (every boot was Accepted), not on those that never did."""
    url = fresh_database(backend)

    async def scenario() -> None:
        await migrate.downgrade(url, "0007")
        engine = create_async_engine(url)
        site = {
            "uuid": "0f9d5b2e-3c41-4f7a-9b5e-2f0c1f7a8d11",
            "team_id": 1,
            "name": "Depot",
            "street": "Main",
            "house_number": 1,
            "postal_code": "1234AB",
            "city": "Utrecht",
            "country": "NL",
            "phase": 3,
            "main_fuse_amperage": 25,
            "load_management": False,
            "smart_charging": "disabled",
            "day_ahead_pricing_strategy": "automatic",
            "off_peak_start": "23:00",
            "off_peak_end": "07:00",
            "created_at": datetime(2025, 3, 31),
            "updated_at": datetime(2025, 3, 31),
        }
        team = {"id": 1, "uuid": "deea2dce-ea5d-340f-90ce-c06cddd4c879", "name": "T", "type": "Personal"}
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    insert(teams).values(created_at=site["created_at"], updated_at=site["created_at"], **team)
                )
                await conn.execute(insert(sites).values(site))
                for identity, boot in (("BOOTED", '{"chargePointVendor":"Alfen BV"}'), ("NEVER", None)):
                    await conn.execute(
                        text(
                            "INSERT INTO chargers (uuid, identity, pincode, connection_status, license_smart,"
                            " license_pro, boot_payload, created_at, updated_at) VALUES (:uuid, :identity,"
                            " 'ABCD2345', 'offline', false, false, :boot, :now, :now)"
                        ),
                        {"uuid": str(uuid.uuid4()), "identity": identity, "boot": boot, "now": datetime(2025, 1, 1)},
                    )
        finally:
            await engine.dispose()
        await migrate.upgrade(url)
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                assert (await conn.execute(select(sites.c.load_management))).scalars().all() == [True]
                booted = await conn.execute(text("SELECT identity, boot_accepted FROM chargers"))
                found = {str(identity): bool(accepted) for identity, accepted in booted}
        finally:
            await engine.dispose()
        assert found == {"BOOTED": True, "NEVER": False}

    asyncio.run(scenario())
