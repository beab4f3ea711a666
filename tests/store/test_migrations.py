"""Migrations: upgrade from empty, `alembic check` clean, downgrade and upgrade again (DESIGN: Alembic)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import inspect
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
