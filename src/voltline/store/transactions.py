"""Charging transactions: started and stopped by the charger, idempotent under replays.

OCPP 1.6 has no transaction id of its own: the CSMS hands out `transactionId`, and we hand
out our integer `id` (and keep it as text in `ocpp_transaction_id`, where 2.0.1 keeps the
charger's string). A StartTransaction replayed with the same connector, idTag, timestamp
and meterStart is the same transaction; a StopTransaction for a finished one changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import ChargerId
from voltline.store._common import stamped
from voltline.store.schema import sites, transactions

# The largest id an OCPP 1.6 transactionId (a 32-bit integer) or an INTEGER column holds.
MAX_TRANSACTION_ID = 2**31 - 1


def names_a_row(transaction_id: int) -> bool:
    """True when the number can be one of our transaction ids (1.6 ids are 32-bit)."""
    return 0 < transaction_id <= MAX_TRANSACTION_ID


async def find_started_transaction(
    conn: AsyncConnection,
    charger_id: ChargerId,
    *,
    connector_number: int,
    id_tag: str,
    started_at: datetime,
    meter_start: int,
) -> RowMapping | None:
    """The transaction a replayed StartTransaction names (same connector, tag, time and meter), or None."""
    query = select(transactions).where(
        transactions.c.charger_id == charger_id,
        transactions.c.connector_number == connector_number,
        transactions.c.id_tag == id_tag,
        transactions.c.started_at == started_at,
        transactions.c.meter_start == meter_start,
    )
    return (await conn.execute(query.order_by(transactions.c.id).limit(1))).mappings().first()


async def _site_prices(conn: AsyncConnection, site_id: int | None) -> dict[str, Any]:
    if site_id is None:
        return {"kwh_price": None, "start_cost": None}
    row = (await conn.execute(select(sites.c.kwh_price, sites.c.start_cost).where(sites.c.id == site_id))).first()
    return (
        {"kwh_price": row.kwh_price, "start_cost": row.start_cost} if row else {"kwh_price": None, "start_cost": None}
    )


async def start_transaction(conn: AsyncConnection, charger: RowMapping, values: dict[str, Any]) -> RowMapping:
    """Insert an active transaction stamped with the charger's team, site and the site's prices.

    `values` holds connector_number, connector_ref, id_tag, meter_start, started_at, reservation_id.
    """
    row = {
        "charger_id": charger["id"],
        "team_id": charger["team_id"],
        "site_id": charger["site_id"],
        "status": "active",
        **await _site_prices(conn, charger["site_id"]),
        **values,
    }
    new_id = int(
        await conn.scalar(insert(transactions).values(stamped(row, created=True)).returning(transactions.c.id)) or 0
    )
    # 1.6: the transactionId the charger gets is our id (DESIGN: data model).
    await conn.execute(update(transactions).where(transactions.c.id == new_id).values(ocpp_transaction_id=str(new_id)))
    return await _get(conn, new_id)


async def _get(conn: AsyncConnection, transaction_id: int) -> RowMapping:
    row = (await conn.execute(select(transactions).where(transactions.c.id == transaction_id))).mappings().first()
    assert row is not None, transaction_id
    return row


async def get_charger_transaction(
    conn: AsyncConnection, charger_id: ChargerId, transaction_id: int
) -> RowMapping | None:
    """One transaction of the charger by our id; None when the id names none of its transactions."""
    if not names_a_row(transaction_id):
        return None
    query = select(transactions).where(transactions.c.id == transaction_id, transactions.c.charger_id == charger_id)
    return (await conn.execute(query)).mappings().first()


async def get_active_transaction(
    conn: AsyncConnection, charger_id: ChargerId, transaction_id: int
) -> RowMapping | None:
    """One still active transaction of the charger by our id, or None."""
    row = await get_charger_transaction(conn, charger_id, transaction_id)
    return row if row is not None and row["status"] == "active" else None


async def get_latest_active_transaction(conn: AsyncConnection, charger_id: ChargerId) -> RowMapping | None:
    """The most recently started active transaction of the charger, or None."""
    query = (
        select(transactions)
        .where(transactions.c.charger_id == charger_id, transactions.c.status == "active")
        .order_by(transactions.c.started_at.desc(), transactions.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(query)).mappings().first()


async def stop_transaction(
    conn: AsyncConnection, charger_id: ChargerId, transaction_id: int, values: dict[str, Any]
) -> tuple[RowMapping | None, bool]:
    """Finish an active transaction (meter_stop, stopped_at, stop_reason); a finished one stays as it is.

    Returns the transaction as stored afterwards (None when the id names none of the charger's)
    and whether this call finished it (False for a repeated stop).
    """
    row = await get_charger_transaction(conn, charger_id, transaction_id)
    if row is None or row["status"] != "active":
        return row, False
    finish = stamped({**values, "status": "finished"})
    await conn.execute(update(transactions).where(transactions.c.id == row["id"]).values(finish))
    return await _get(conn, int(row["id"])), True
