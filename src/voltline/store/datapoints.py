"""Datapoint reads for the API: transactions of a site or a charger, and a charger's meter samples.

Every read is scoped by the `team_id` (and `site_id`) stamped on the row when it was written
(DESIGN: data model), never by where the charger is now, so a charger moved to another team
does not carry its history along. Transactions come newest first by (started_at, id); samples
are the expanded `meter_frames` rows (store/meter_values.py), filtered and ordered by
(timestamp, sample id). Time ranges are inclusive at both ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import ChargerId, Ref, SiteId, TeamId
from voltline.domain.meter_values import Sample
from voltline.store._common import ref_clause
from voltline.store.meter_values import FRAMES_PER_QUERY, StoredSample, expand_frame
from voltline.store.schema import chargers, connectors, meter_frames, transactions

# The largest value an INTEGER id column holds on PostgreSQL; a larger ref names nothing.
MAX_ROW_ID = 2**31 - 1
SAMPLE_FIELDS = ("context", "measurand", "phase", "location", "unit")


@dataclass(frozen=True, slots=True)
class TransactionFilter:
    """What a transaction list is narrowed to; None means any."""

    date_from: datetime | None = None
    date_to: datetime | None = None
    charger_id: ChargerId | None = None
    status: str | None = None
    id_tag: str | None = None


@dataclass(frozen=True, slots=True)
class SampleFilter:
    """Sample fields a meter value must equal; None means any."""

    context: str | None = None
    measurand: str | None = None
    phase: str | None = None
    location: str | None = None
    unit: str | None = None

    def accepts(self, sample: Sample) -> bool:
        """True when the sample has every asked-for field value."""
        for name in SAMPLE_FIELDS:
            wanted = getattr(self, name)
            if wanted is not None and getattr(sample, name) != wanted:
                return False
        return True


def _transaction_filters(filters: TransactionFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if filters.date_from is not None:
        where.append(transactions.c.started_at >= filters.date_from)
    if filters.date_to is not None:
        where.append(transactions.c.started_at <= filters.date_to)
    if filters.charger_id is not None:
        where.append(transactions.c.charger_id == filters.charger_id)
    if filters.status is not None:
        where.append(transactions.c.status == filters.status)
    if filters.id_tag is not None:
        # OCPP id tags are case-insensitive (CiString20Type).
        where.append(func.upper(transactions.c.id_tag) == filters.id_tag.upper())
    return where


def _ordered(query: Select[Any], *, descending: bool) -> Select[Any]:
    started, tx_id = transactions.c.started_at, transactions.c.id
    if descending:
        return query.order_by(started.desc().nulls_last(), tx_id.desc())
    return query.order_by(started.asc().nulls_last(), tx_id.asc())


async def list_site_transactions(
    conn: AsyncConnection, team_id: TeamId, site_id: SiteId, filters: TransactionFilter, *, offset: int, limit: int
) -> list[RowMapping]:
    """A page of the transactions written for the team on the site, newest first."""
    scope = (transactions.c.team_id == team_id, transactions.c.site_id == site_id)
    query = select(transactions).where(*scope, *_transaction_filters(filters))
    query = _ordered(query, descending=True).offset(offset).limit(limit)
    return list((await conn.execute(query)).mappings().all())


async def list_charger_transactions(
    conn: AsyncConnection,
    team_id: TeamId,
    charger_id: ChargerId,
    filters: TransactionFilter,
    *,
    limit: int,
    descending: bool = True,
) -> list[RowMapping]:
    """Up to `limit` transactions written for the team on the charger, by (started_at, id)."""
    scope = (transactions.c.team_id == team_id, transactions.c.charger_id == charger_id)
    query = select(transactions).where(*scope, *_transaction_filters(filters))
    query = _ordered(query, descending=descending).limit(limit)
    return list((await conn.execute(query)).mappings().all())


async def find_site_transaction_charger(
    conn: AsyncConnection, team_id: TeamId, site_id: SiteId, ref: Ref
) -> ChargerId | None:
    """A charger the team owns, or one with transactions of the team on the site, by id or uuid; else None."""
    if isinstance(ref, int) and not 0 < ref <= MAX_ROW_ID:
        return None
    on_site = select(transactions.c.charger_id).where(
        transactions.c.team_id == team_id, transactions.c.site_id == site_id
    )
    query = select(chargers.c.id).where(
        ref_clause(chargers, ref), or_(chargers.c.team_id == team_id, chargers.c.id.in_(on_site))
    )
    found = await conn.scalar(query.limit(1))
    return None if found is None else ChargerId(int(found))


async def connector_refs(conn: AsyncConnection, charger_id: ChargerId) -> dict[int, int]:
    """The charger's connectors: OCPP connector number -> `connectors.id`."""
    query = select(connectors.c.connector_id, connectors.c.id).where(connectors.c.charger_id == charger_id)
    return {int(number): int(ref) for number, ref in (await conn.execute(query)).all()}


def _after(last: RowMapping, descending: bool) -> ColumnElement[bool]:
    ts, frame_id = meter_frames.c.timestamp, meter_frames.c.id
    if descending:
        return or_(ts < last["timestamp"], and_(ts == last["timestamp"], frame_id < last["id"]))
    return or_(ts > last["timestamp"], and_(ts == last["timestamp"], frame_id > last["id"]))


async def list_charger_samples(
    conn: AsyncConnection,
    team_id: TeamId,
    charger_id: ChargerId,
    *,
    date_from: datetime,
    date_to: datetime,
    wanted: SampleFilter,
    limit: int,
    descending: bool = True,
) -> list[StoredSample]:
    """Up to `limit` samples written for the team on the charger in [date_from, date_to], by (timestamp, id)."""
    where = (
        meter_frames.c.team_id == team_id,
        meter_frames.c.charger_id == charger_id,
        meter_frames.c.timestamp >= date_from,
        meter_frames.c.timestamp <= date_to,
    )
    ts, frame_id = meter_frames.c.timestamp, meter_frames.c.id
    order = (ts.desc(), frame_id.desc()) if descending else (ts.asc(), frame_id.asc())
    found: list[StoredSample] = []
    last: RowMapping | None = None
    while len(found) < limit:
        page = select(meter_frames).where(*where, *([] if last is None else [_after(last, descending)]))
        rows = (await conn.execute(page.order_by(*order).limit(FRAMES_PER_QUERY))).mappings().all()
        for row in rows:
            found.extend(s for s in expand_frame(row, descending=descending) if wanted.accepts(s.sample))
        if len(rows) < FRAMES_PER_QUERY:
            break
        last = rows[-1]
    return found[:limit]
