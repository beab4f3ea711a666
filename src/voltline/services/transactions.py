"""Charging transactions: started and stopped by a charger, idempotent under replays.

DESIGN "Durability": a start or stop is answered only after it committed, and a replay is safe:
a replayed StartTransaction (same connector, id tag, time and meter) finds its row and gets the
same id; a repeated StopTransaction changes nothing. A stop's transactionData goes through the
meter writer after the stop committed, also on a replay: the first attempt may have committed
the stop and lost its readings to a crash before they committed, unanswered.

Unknown transaction ids (StopTransaction, MeterValues, also ids beyond 32 bits) name nothing:
the readings are kept with `transaction_id` null, because an id that is not one of this
charger's transactions may be another charger's, and readings must never join another team's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from voltline.domain.authorization import Verdict
from voltline.domain.ids import ChargerId, TeamId
from voltline.services.authorization import check_id_tag
from voltline.services.meter import ConnectedCharger, Reading, announce, take
from voltline.services.runtime import Runtime
from voltline.store import chargers, ocpp_state
from voltline.store import transactions as store_transactions

log = logging.getLogger("voltline.transactions")


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
