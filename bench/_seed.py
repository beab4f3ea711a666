"""Seeding for the REST benchmark: a fresh database with one team, sites, groups and chargers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from voltline.services import accounts
from voltline.store import migrate
from voltline.store.engine import Database
from voltline.store.schema import chargers, connectors, groups, sites


@dataclass(frozen=True)
class Seeded:
    """What the load needs to know about the seeded database."""

    team_id: int
    token: str
    charger_ids: tuple[int, int]
    database: str


async def seed(url: str, *, chargers: int, sites: int) -> Seeded:
    """Migrate, then one user+team+token, `sites` sites (each with a root group) and `chargers` chargers."""
    await migrate.upgrade(url)
    db = Database(url)
    try:
        account = await accounts.create_account(db, email="bench@example.com", name="Bench")
        async with db.write() as conn:
            site_ids = await _insert_sites(conn, account.team_id, sites)
            groups_by_site = await _insert_root_groups(conn, site_ids)
            ids = await _insert_chargers(conn, account.team_id, groups_by_site, chargers)
        if not db.is_sqlite:
            async with db.reader.connect() as conn:
                await (await conn.execution_options(isolation_level="AUTOCOMMIT")).exec_driver_sql("ANALYZE")
    finally:
        await db.close()
    return Seeded(int(account.team_id), account.token, ids, make_url(url).database or "")


def _stamp(row: dict[str, Any], number: int) -> dict[str, Any]:
    now = datetime(2025, 1, 1) + timedelta(minutes=number)
    return {"uuid": str(uuid.uuid4()), **row, "created_at": now, "updated_at": now}


async def _insert_sites(conn: Any, team_id: int, count: int) -> list[int]:
    rows = [
        _stamp(
            {
                "team_id": team_id,
                "name": f"Site {n}",
                "street": "Main Street",
                "house_number": n + 1,
                "postal_code": "1234 AB",
                "city": "Utrecht",
                "country": "NL",
                "timezone": "Europe/Amsterdam",
            },
            n,
        )
        for n in range(count)
    ]
    await conn.execute(insert(sites), rows)
    query = select(sites.c.id).where(sites.c.team_id == team_id).order_by(sites.c.id)
    return list((await conn.execute(query)).scalars())


async def _insert_root_groups(conn: Any, site_ids: list[int]) -> dict[int, int]:
    rows = [_stamp({"site_id": site_id, "group_id": None, "total_amps": 25}, n) for n, site_id in enumerate(site_ids)]
    await conn.execute(insert(groups), rows)
    query = select(groups.c.site_id, groups.c.id).where(groups.c.site_id.in_(site_ids))
    return {site_id: group_id for site_id, group_id in await conn.execute(query)}


async def _insert_chargers(conn: Any, team_id: int, groups_by_site: dict[int, int], count: int) -> tuple[int, int]:
    site_ids = sorted(groups_by_site)
    rows = []
    for n in range(count):
        site_id = site_ids[n % len(site_ids)]
        values = {
            "identity": f"BENCH-{n:06d}",
            "team_id": team_id,
            "site_id": site_id,
            "group_id": groups_by_site[site_id],
            "reference": f"Charger {n}",
            "pincode": f"P{n:07d}",
            "connection_status": "online" if n % 3 else "offline",
            "status": "Available",
            "vendor": "Bench",
            "model": "B1",
            "firmware_version": "1.0",
            "ocpp_version": "1.6",
            "security_profile": 0,  # the bench's chargers connect by identity alone
        }
        rows.append(_stamp(values, n))
    await conn.execute(insert(chargers), rows)
    ids = (await conn.execute(select(chargers.c.id, chargers.c.group_id).order_by(chargers.c.id))).all()
    plugs = [
        _stamp({"charger_id": i, "connector_id": 1, "group_id": g, "status": "Available", "max_amperage": 32}, 0)
        for i, g in ids
    ]
    await conn.execute(insert(connectors), plugs)
    low, high = (await conn.execute(select(func.min(chargers.c.id), func.max(chargers.c.id)))).one()
    if high - low + 1 != count:
        raise SystemExit("charger ids are not contiguous; cannot draw random ids")
    return int(low), int(high)


async def _admin(admin_url: str, sql: str) -> None:
    parsed = make_url(admin_url)
    conn = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database=parsed.database or "postgres",
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_postgres(admin_url: str, name: str) -> str:
    """Create a fresh database on the server of `admin_url`; its asyncpg URL."""
    await _admin(admin_url, f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


async def drop_postgres(admin_url: str, name: str) -> None:
    """Drop the benchmark database (closing any connection left)."""
    await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
