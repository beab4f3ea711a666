"""Diagnostics upload requests and the files chargers uploaded for them (docs/api.md "Diagnostics")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import ChargerId, Ref, TeamId
from voltline.errors import NotFoundError
from voltline.store._common import new_uuid, ref_clause, stamped
from voltline.store.schema import diagnostics_files, diagnostics_requests

# Ids are INTEGER columns on PostgreSQL; a larger ref names nothing.
MAX_ROW_ID = 2**31 - 1
RECEIVED = "Received"
# What a listing shows of a file: everything but its content.
FILE_COLUMNS = [column for column in diagnostics_files.c if column.name != "content"]


async def insert_request(conn: AsyncConnection, values: dict[str, Any]) -> RowMapping:
    """Insert an upload request (charger, team, log type, window, token hash, status, file name, expiry)."""
    row = stamped({"uuid": new_uuid(), **values}, created=True)
    new_id = await conn.scalar(insert(diagnostics_requests).values(row).returning(diagnostics_requests.c.id))
    found = await conn.execute(select(diagnostics_requests).where(diagnostics_requests.c.id == new_id))
    return found.mappings().one()


async def delete_request(conn: AsyncConnection, request_id: int) -> None:
    """Remove a request the charger refused or never got (its files, if any, go with it)."""
    await conn.execute(delete(diagnostics_requests).where(diagnostics_requests.c.id == request_id))


async def find_open_request(conn: AsyncConnection, token_hash: str, now: datetime) -> RowMapping | None:
    """The request whose unused, unexpired token has this hash, or None."""
    query = select(diagnostics_requests).where(
        diagnostics_requests.c.token_hash == token_hash, diagnostics_requests.c.expires_at > now
    )
    return (await conn.execute(query)).mappings().first()


async def consume_request(conn: AsyncConnection, request_id: int, token_hash: str, now: datetime) -> bool:
    """Spend the request's token and mark it Received; False when it was spent or expired meanwhile.

    One UPDATE guarded by the hash: of two uploads racing with the same token, only one matches a row.
    """
    spent = await conn.execute(
        update(diagnostics_requests)
        .where(
            diagnostics_requests.c.id == request_id,
            diagnostics_requests.c.token_hash == token_hash,
            diagnostics_requests.c.expires_at > now,
        )
        .values(stamped({"token_hash": None, "status": RECEIVED}))
    )
    return spent.rowcount == 1


async def delete_expired_requests(conn: AsyncConnection, now: datetime) -> int:
    """Delete the requests whose token expired with no file uploaded (they can take none any more); how many."""
    has_file = select(diagnostics_files.c.id).where(diagnostics_files.c.request_id == diagnostics_requests.c.id)
    expired = delete(diagnostics_requests).where(diagnostics_requests.c.expires_at <= now, ~has_file.exists())
    return (await conn.execute(expired)).rowcount


async def insert_file(conn: AsyncConnection, values: dict[str, Any], now: datetime) -> RowMapping:
    """Store an uploaded file (request, charger, team, name, content type, size, sha256, content)."""
    row = {"uuid": new_uuid(), "created_at": now, **values}
    new_id = await conn.scalar(insert(diagnostics_files).values(row).returning(diagnostics_files.c.id))
    found = await conn.execute(select(*FILE_COLUMNS).where(diagnostics_files.c.id == new_id))
    return found.mappings().one()


async def latest_request(conn: AsyncConnection, charger_id: ChargerId) -> RowMapping | None:
    """The charger's most recent upload request, or None."""
    query = (
        select(diagnostics_requests)
        .where(diagnostics_requests.c.charger_id == charger_id)
        .order_by(diagnostics_requests.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(query)).mappings().first()


async def get_request(conn: AsyncConnection, charger_id: ChargerId, request_id: int) -> RowMapping | None:
    """The charger's request with this id, or None (an id of another charger's request names nothing)."""
    if not 0 < request_id <= MAX_ROW_ID:
        return None
    query = select(diagnostics_requests).where(
        diagnostics_requests.c.charger_id == charger_id, diagnostics_requests.c.id == request_id
    )
    return (await conn.execute(query)).mappings().first()


async def set_request_status(conn: AsyncConnection, request_id: int, status: str) -> None:
    """Record the charger's upload state on a request that has not received its file yet."""
    await conn.execute(
        update(diagnostics_requests)
        .where(diagnostics_requests.c.id == request_id, diagnostics_requests.c.status != RECEIVED)
        .values(stamped({"status": status}))
    )


async def list_files(
    conn: AsyncConnection, team_id: TeamId, charger_id: ChargerId, *, offset: int, limit: int
) -> list[RowMapping]:
    """A page of the files the team's charger uploaded, newest first, without their content."""
    query = (
        select(*FILE_COLUMNS, diagnostics_requests.c.log_type)
        .join(diagnostics_requests, diagnostics_requests.c.id == diagnostics_files.c.request_id)
        .where(diagnostics_files.c.team_id == team_id, diagnostics_files.c.charger_id == charger_id)
        .order_by(diagnostics_files.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings().all())


async def get_file(conn: AsyncConnection, team_id: TeamId, charger_id: ChargerId, ref: Ref) -> RowMapping:
    """One file of the team's charger, with its content, by id or uuid; NotFoundError otherwise."""
    if isinstance(ref, int) and not 0 < ref <= MAX_ROW_ID:
        raise NotFoundError("diagnostics file")
    query = select(diagnostics_files).where(
        diagnostics_files.c.team_id == team_id,
        diagnostics_files.c.charger_id == charger_id,
        ref_clause(diagnostics_files, ref),
    )
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise NotFoundError("diagnostics file")
    return row
