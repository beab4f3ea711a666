"""Reservations: a connector kept for an id tag until a time (OCPP 1.6 §5.13 ReserveNow, §5.2 CancelReservation).

The reservation's integer id is the reservationId the charger gets, so the row is stored
`pending` before ReserveNow goes out; the charger's Accepted makes it `active`, and any other
answer, a CALLERROR (NotSupported, NotImplemented), no connection or no answer removes it, so a
refused reservation leaves nothing stored. A StartTransaction carrying the id makes it `used`
(services/transactions.py, in the start's own commit: DESIGN "Durability"); CancelReservation
makes it `cancelled`; at `expires_at` it is `expired`: the worker's housekeeping marks it
(services/maintenance.py) and every read already shows it so between passes. The connector's
`Reserved` status is the charger's own StatusNotification, stored as every status is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from voltline.domain.ids import ChargerId, Ref, TeamId
from voltline.errors import CommandFailedError, ConflictError, VoltlineError
from voltline.services import audit
from voltline.services.runtime import Runtime
from voltline.store import chargers, id_tags
from voltline.store import reservations as store

log = logging.getLogger("voltline.services.reservations")

CONNECTOR_INVALID = "The selected connector id is invalid."
EXPIRES_IN_PAST = "The expires at field must be a date after now."
EVSE_NEEDS_201 = "The evse id field is only accepted for an OCPP 2.0.1 charger."
RESERVATION_ENDED = "The reservation is no longer active."
ACTIVE, USED, CANCELLED, EXPIRED = store.ACTIVE, store.USED, store.CANCELLED, store.EXPIRED
STALE_PENDING = timedelta(minutes=10)  # far beyond any call timeout


def shown_status(row: Mapping[Any, Any], now: datetime) -> str:
    """The reservation's status as of `now`: an active one whose time has come is `expired` already."""
    status = str(row["status"])
    return EXPIRED if status == ACTIVE and row["expires_at"] <= now else status


def _ocpp_time(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def check_request(
    rt: Runtime,
    charger: Mapping[Any, Any],
    connector_number: int | None,
    evse_id: int | None,
    expires_at: datetime | None,
) -> dict[str, list[str]]:
    """The errors only the charger and the clock can tell (a None value was refused by the rules already)."""
    errors: dict[str, list[str]] = {}
    if connector_number:
        async with rt.db.read() as conn:
            known = await chargers.list_charger_connectors(conn, ChargerId(charger["id"]))
        if connector_number not in {int(row["connector_id"]) for row in known}:
            errors["connector_id"] = [CONNECTOR_INVALID]
    if evse_id is not None and charger["ocpp_version"] != "2.0.1":
        errors["evse_id"] = [EVSE_NEEDS_201]
    if expires_at is not None and expires_at <= rt.clock.now():
        errors["expires_at"] = [EXPIRES_IN_PAST]
    return errors


async def reserve(
    rt: Runtime,
    team_id: TeamId,
    charger: Mapping[Any, Any],
    *,
    connector_number: int,
    id_tag: str,
    expires_at: datetime,
    evse_id: int | None = None,
) -> RowMapping:
    """Reserve the connector on the charger; the active reservation, or ConflictError with the charger's refusal.

    The reservation's parent id tag is the team's stored one for the id tag (OCPP 1.6 §5.13 parentIdTag);
    `evse_id` (OCPP 2.0.1 only, refused for 1.6 by `check_request`) goes to the command as given.
    """
    charger_id = ChargerId(charger["id"])
    values = {"connector_number": connector_number, "id_tag": id_tag, "expires_at": expires_at}
    async with rt.db.write() as conn:
        row = await store.insert_pending_reservation(conn, team_id, charger_id, values, rt.clock.now())
        tag = await id_tags.find_id_tag(conn, team_id, id_tag)
    args = {
        "connector_id": connector_number,
        "expires_at": _ocpp_time(expires_at),
        "id_tag": id_tag,
        "parent_id_tag": None if tag is None else tag["parent_id_tag"],
        "reservation_id": int(row["id"]),
        **({} if evse_id is None else {"evse_id": evse_id}),
    }
    target = ("reservation", row["uuid"])
    detail = {"charger_id": charger_id, "connector_id": connector_number, "reservation_id": int(row["id"])}
    status, outcome = await _answer(rt, team_id, str(charger["identity"]), ("reserve_now", args), (target, detail, row))
    async with rt.db.write() as conn:
        if status != "Accepted":
            await store.delete_pending_reservation(conn, int(row["id"]))
        else:
            row = await store.activate_reservation(conn, int(row["id"]), rt.clock.now())
        await audit.record(rt.clock, conn, team_id, "reservation.reserved", target, outcome=outcome, detail=detail)
    if status != "Accepted":
        raise ConflictError(f"The charger answered {status}.")
    return row


async def _answer(
    rt: Runtime,
    team_id: TeamId,
    identity: str,
    call: tuple[str, dict[str, Any]],
    about: tuple[audit.Target, dict[str, Any], RowMapping],
) -> tuple[str, str]:
    """The charger's status word and the audit outcome; a CALLERROR is a refusal (its code, `error:<code>`).

    Offline and timeout are recorded (the pending row of a ReserveNow removed) and raised.
    """
    command, args = call
    target, detail, row = about
    try:
        result = await rt.commands.send(identity, command, args)
    except CommandFailedError as error:
        return error.code, audit.command_outcome(None, error)
    except VoltlineError as error:
        async with rt.db.write() as conn:
            if command == "reserve_now":
                await store.delete_pending_reservation(conn, int(row["id"]))
            outcome = audit.command_outcome(None, error)
            action = "reservation.reserved" if command == "reserve_now" else "reservation.cancelled"
            await audit.record(rt.clock, conn, team_id, action, target, outcome=outcome, detail=detail)
        raise
    return str(result.get("status", "Accepted")), audit.command_outcome(result, None)


async def list_reservations(
    rt: Runtime, team_id: TeamId, charger: Mapping[Any, Any], *, offset: int, limit: int
) -> list[RowMapping]:
    """A page of the team's reservations of the charger, newest first."""
    async with rt.db.read() as conn:
        return await store.list_reservations(conn, team_id, ChargerId(charger["id"]), offset=offset, limit=limit)


async def cancel(rt: Runtime, team_id: TeamId, charger: Mapping[Any, Any], ref: Ref) -> None:
    """Cancel an active reservation on the charger (CancelReservation); ConflictError when it ended or is refused."""
    async with rt.db.read() as conn:
        row = await store.get_reservation(conn, team_id, ChargerId(charger["id"]), ref)
    if shown_status(row, rt.clock.now()) != ACTIVE:
        raise ConflictError(RESERVATION_ENDED)
    target = ("reservation", row["uuid"])
    detail = {"charger_id": int(charger["id"]), "reservation_id": int(row["id"])}
    args = {"reservation_id": int(row["id"])}
    status, outcome = await _answer(
        rt, team_id, str(charger["identity"]), ("cancel_reservation", args), (target, detail, row)
    )
    async with rt.db.write() as conn:
        if status == "Accepted":
            await store.end_reservation(conn, int(row["id"]), CANCELLED, rt.clock.now())
        await audit.record(rt.clock, conn, team_id, "reservation.cancelled", target, outcome=outcome, detail=detail)
    if status != "Accepted":
        raise ConflictError(f"The charger answered {status}.")


async def expire_reservations(rt: Runtime) -> int:
    """Mark every active reservation past its `expires_at` expired (housekeeping); how many were."""
    now = rt.clock.now()
    async with rt.db.write() as conn:
        # A pending row whose ReserveNow never came to an end (the process stopped while waiting).
        await store.delete_stale_pending_reservations(conn, now - STALE_PENDING)
        due = await store.expire_reservations(conn, now)
        for row in due:
            target = ("reservation", row["uuid"])
            await audit.record(rt.clock, conn, row["team_id"], "reservation.expired", target)
    if due:
        log.info("%d reservations expired", len(due))
    return len(due)
