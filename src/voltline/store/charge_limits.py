"""Per-connector charge-limit caps (DESIGN "v3 API"): one row per connector until it is cleared."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.store.schema import chargers, connector_charge_limits, connectors, sites

# The columns a caller reads: the cap's row joined with its connector's number and phases.
LIMIT_COLUMNS = select(
    connector_charge_limits,
    connectors.c.connector_id.label("number"),
    connectors.c.phases,
).join(connectors, connectors.c.id == connector_charge_limits.c.connector_id)


async def list_charger_connectors(conn: AsyncConnection, charger_id: int, number: int) -> list[RowMapping]:
    """The charger's connectors (id, number, phases): all of them for `number` 0, else the one (or none)."""
    query = select(connectors.c.id, connectors.c.connector_id.label("number"), connectors.c.phases).where(
        connectors.c.charger_id == charger_id, connectors.c.connector_id > 0
    )
    if number:
        query = query.where(connectors.c.connector_id == number)
    return list((await conn.execute(query.order_by(connectors.c.connector_id))).mappings())


async def list_charger_limits(conn: AsyncConnection, charger_id: int) -> list[RowMapping]:
    """Every cap row of a charger (cleared ones included), by connector number."""
    query = LIMIT_COLUMNS.where(connector_charge_limits.c.charger_id == charger_id)
    return list((await conn.execute(query.order_by(connectors.c.connector_id))).mappings())


async def list_site_charger_ids(conn: AsyncConnection, site_id: int) -> list[int]:
    """The chargers of a site that have a cap row."""
    query = (
        select(connector_charge_limits.c.charger_id)
        .join(chargers, chargers.c.id == connector_charge_limits.c.charger_id)
        .where(chargers.c.site_id == site_id)
        .distinct()
    )
    return sorted(int(value) for value in (await conn.execute(query)).scalars())


async def caps_of(conn: AsyncConnection, connector_ids: Iterable[int]) -> dict[int, int]:
    """The caps in force (tenths) of the given connectors; cleared rows are not caps."""
    ids = list(connector_ids)
    if not ids:
        return {}
    query = select(connector_charge_limits.c.connector_id, connector_charge_limits.c.limit_tenths).where(
        connector_charge_limits.c.connector_id.in_(ids), connector_charge_limits.c.limit_tenths.is_not(None)
    )
    return {int(row.connector_id): int(row.limit_tenths) for row in await conn.execute(query)}


async def save_limit(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    """Insert or replace a connector's cap row (keyed by `connector_id`)."""
    dialect = conn.dialect.name
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(connector_charge_limits)
    changed = {name: statement.excluded[name] for name in values if name != "connector_id"}
    await conn.execute(statement.values(**values).on_conflict_do_update(index_elements=["connector_id"], set_=changed))


async def set_profile_status(conn: AsyncConnection, connector_id: int, status: str | None, now: datetime) -> None:
    """Record what became of our TxDefaultProfile on the connector (None: none of ours is there)."""
    query = update(connector_charge_limits).where(connector_charge_limits.c.connector_id == connector_id)
    await conn.execute(query.values(profile_status=status, updated_at=now))


async def delete_limit(conn: AsyncConnection, connector_id: int) -> None:
    """Forget a connector's cap row."""
    await conn.execute(delete(connector_charge_limits).where(connector_charge_limits.c.connector_id == connector_id))


async def get_site_control(conn: AsyncConnection, site_id: int | None) -> RowMapping | None:
    """The site's `load_management` and `smart_charging` (None: no site, or a deleted one)."""
    if site_id is None:
        return None
    query = select(sites.c.load_management, sites.c.smart_charging, sites.c.deleted_at).where(sites.c.id == site_id)
    row = (await conn.execute(query)).mappings().first()
    return None if row is None or row["deleted_at"] is not None else row


async def get_charger(conn: AsyncConnection, charger_id: int) -> RowMapping | None:
    """The charger's id, identity, uuid and site."""
    query = select(chargers.c.id, chargers.c.identity, chargers.c.uuid, chargers.c.site_id).where(
        chargers.c.id == charger_id
    )
    return (await conn.execute(query)).mappings().first()
