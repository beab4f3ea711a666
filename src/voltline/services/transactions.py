"""Charging transactions: started and stopped by a charger (idempotent under replays), listed for the API.

DESIGN "Durability": a start or stop is answered only after it committed, and a replay is safe:
a replayed StartTransaction (same connector, id tag, time and meter) finds its row and gets the
same id; a repeated StopTransaction changes nothing. A stop's transactionData goes through the
meter writer after the stop committed, also on a replay: the first attempt may have committed
the stop and lost its readings to a crash before they committed, unanswered.

Unknown transaction ids (StopTransaction, MeterValues, also ids beyond 32 bits) name nothing:
the readings are kept with `transaction_id` null, because an id that is not one of this
charger's transactions may be another charger's, and readings must never join another team's.

API reads are scoped by the team and site stamped on each transaction when it was written
(DESIGN: data model).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.authorization import Verdict
from voltline.domain.ids import ChargerId, Ref, SiteId, TeamId
from voltline.errors import ValidationError
from voltline.services import audit
from voltline.services.authorization import check_id_tag
from voltline.services.meter import ConnectedCharger, Reading, announce, take
from voltline.services.runtime import Runtime
from voltline.store import chargers, datapoints, ocpp_state, reservations, sites
from voltline.store import transactions as store_transactions
from voltline.store.datapoints import TransactionFilter

log = logging.getLogger("voltline.transactions")

CHARGER_INVALID = "The selected charger is invalid."


@dataclass(frozen=True, slots=True)
class Started:
    """Our id of a started transaction (also for a replay) and the verdict on its id tag."""

    transaction_id: int
    verdict: Verdict


async def record_start(
    runtime: Runtime,
    charger: ConnectedCharger,
    *,
    connector: int,
    id_tag: str,
    meter_start: int,
    started_at: datetime,
    reservation_id: int | None,
) -> Started:
    """Store a started transaction once (a replay finds it), then announce `start`."""
    started: dict[str, Any] = {
        "connector_number": connector,
        "id_tag": id_tag,
        "meter_start": meter_start,
        "started_at": started_at,
    }
    async with runtime.db.write() as conn:
        row = await chargers.get_charger_by_id(conn, charger.charger_id)
        charger.place(row)  # the connection's team and site follow a charger moved while connected
        team_id = None if row["team_id"] is None else TeamId(row["team_id"])
        verdict = await check_id_tag(conn, team_id, id_tag, runtime.clock.now())
        found = await store_transactions.find_started_transaction(conn, charger.charger_id, **started)
        if found is None:
            placed = await chargers.upsert_connector(conn, charger.charger_id, connector, {}) if connector > 0 else None
            values = {**started, "connector_ref": None if placed is None else placed["id"]}
            found = await store_transactions.start_transaction(conn, row, {**values, "reservation_id": reservation_id})
            if reservation_id is not None:  # OCPP 1.6 §5.13: the start ends the reservation, in the same commit
                owner = (team_id, charger.charger_id)
                await reservations.use_reservation(conn, owner, reservation_id, int(found["id"]), runtime.clock.now())
            detail = {"charger_id": charger.charger_id, "connector": connector}
            await audit.record(
                runtime.clock, conn, team_id, "transaction.started", ("transaction", found["id"]), detail=detail
            )
    transaction_id = int(found["id"])
    await announce(runtime, charger, "start", connector=connector, transaction_id=transaction_id)
    return Started(transaction_id, verdict)


async def record_stop(
    runtime: Runtime,
    charger: ConnectedCharger,
    transaction_id: int,
    *,
    meter_stop: int,
    stopped_at: datetime,
    stop_reason: str,
    id_tag: str | None,
    readings: Iterable[Reading],
) -> Verdict | None:
    """Finish the transaction once, store its readings (read after the stop committed), announce `stop`.

    Returns the verdict on the id tag, when one was given.
    """
    finish = {"meter_stop": meter_stop, "stopped_at": stopped_at, "stop_reason": stop_reason}
    async with runtime.db.write() as conn:
        row, finished = await store_transactions.stop_transaction(conn, charger.charger_id, transaction_id, finish)
        charger.place(await ocpp_state.get_placement(conn, charger.charger_id))
        verdict = None if id_tag is None else await check_id_tag(conn, charger.team_id, id_tag, runtime.clock.now())
        if row is not None and finished:
            detail = {"charger_id": charger.charger_id, "stop_reason": stop_reason}
            await audit.record(
                runtime.clock, conn, row["team_id"], "transaction.stopped", ("transaction", row["id"]), detail=detail
            )
    if row is None:
        log.info("%s: StopTransaction for unknown transactionId %s", charger.identity, transaction_id)
        await take(runtime, charger, 0, None, readings)
        return verdict
    connector = int(row["connector_number"])
    await take(runtime, charger, connector, int(row["id"]), readings)
    if finished:
        await announce(runtime, charger, "stop", connector=connector, transaction_id=int(row["id"]))
    return verdict


async def find_charger_transaction(runtime: Runtime, charger_id: ChargerId, transaction_id: int) -> int | None:
    """Our id of the charger's transaction the charger names, or None when it names none of its transactions."""
    async with runtime.db.read() as conn:
        row = await store_transactions.get_charger_transaction(conn, charger_id, transaction_id)
    return None if row is None else int(row["id"])


async def find_site_charger(
    conn: AsyncConnection, team_id: TeamId, site_id: SiteId, ref: Ref | None
) -> ChargerId | None:
    """The `charger` filter of a site's reads: a charger with transactions on the site; None when absent; else 422."""
    if ref is None:
        return None
    charger_id = await datapoints.find_site_transaction_charger(conn, team_id, site_id, ref)
    if charger_id is None:
        raise ValidationError.single("charger", CHARGER_INVALID)
    return charger_id


@dataclass(frozen=True, slots=True)
class Listing:
    """Transactions of one site or charger (as stored rows), and that site's or charger's id."""

    owner_id: int
    rows: list[RowMapping]


async def list_site_transactions(
    runtime: Runtime,
    team_id: TeamId,
    site: Ref,
    *,
    charger: Ref | None,
    date_from: datetime | None,
    date_to: datetime | None,
    status: str | None,
    id_tag: str | None,
    offset: int,
    limit: int,
    export: bool = False,
) -> Listing:
    """The site's transactions newest first, by started_at, charger, status and id tag (`export`: off the loop)."""
    async with runtime.db.read() as conn:
        site_id = await sites.get_site_id(conn, team_id, site)
        charger_id = await find_site_charger(conn, team_id, site_id, charger)
    filters = TransactionFilter(
        date_from=date_from, date_to=date_to, charger_id=charger_id, status=status, id_tag=id_tag
    )
    opened = runtime.db.scan() if export else runtime.db.read()
    async with opened as conn:
        rows = await datapoints.list_site_transactions(conn, team_id, site_id, filters, offset=offset, limit=limit)
    return Listing(site_id, rows)


async def list_charger_transactions(
    runtime: Runtime,
    team_id: TeamId,
    charger: Ref,
    *,
    date_from: datetime | None,
    date_to: datetime | None,
    limit: int,
    descending: bool,
    status: str | None = None,
) -> Listing:
    """Up to `limit` of the team's transactions on the charger, by started_at (newest first when `descending`)."""
    async with runtime.db.scan() as conn:  # up to 10,000 rows (an export 50,000): keep it off the event loop
        charger_id = ChargerId((await chargers.get_charger(conn, team_id, charger))["id"])
        filters = TransactionFilter(date_from=date_from, date_to=date_to, status=status)
        rows = await datapoints.list_charger_transactions(
            conn, team_id, charger_id, filters, limit=limit, descending=descending
        )
    return Listing(charger_id, rows)
