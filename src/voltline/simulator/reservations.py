"""Reservations on a simulated 1.6 charge point (OCPP 1.6 §3.11, §5.13 ReserveNow, §5.2 CancelReservation).

ReserveNow is Accepted on an Available connector, which then shows `Reserved`; otherwise the
answer says why: Occupied (a session, or another reservation), Faulted, Unavailable, or Rejected
(an unknown connector; connector 0 unless ReserveConnectorZeroSupported). A reservation of
connector 0 keeps one connector free for its id tag. Only the reserved id tag, or the
reservation's parentIdTag, may start on a reserved connector; the StartTransaction carries the
reservationId and the reservation ends there. It also ends at its expiryDate and on
CancelReservation (Accepted for a known id, Rejected otherwise); the connector is Available again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from voltline.simulator.connection import Answer, CallError, FollowUp, Payload

if TYPE_CHECKING:
    from voltline.simulator.charger import SimulatedCharger
    from voltline.simulator.sessions import Connector

CHECK_EVERY_SECONDS = 0.5  # the expiry is watched on the charger's clock, which a test may move on


@dataclass
class Reservation:
    """One accepted reservation."""

    reservation_id: int
    connector_id: int
    id_tag: str
    parent_id_tag: str | None
    expires_at: datetime


def _text(payload: Payload, key: str, required: bool = True) -> str | None:
    value = payload.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise CallError("TypeConstraintViolation" if key in payload else "OccurenceConstraintViolation", key)
    return value


def _integer(payload: Payload, key: str) -> int:
    value = payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CallError("TypeConstraintViolation" if key in payload else "OccurenceConstraintViolation", key)
    return value


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CallError("TypeConstraintViolation", "expiryDate must be a date-time") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def reservation_on(cp: SimulatedCharger, number: int) -> Reservation | None:
    """The reservation of connector `number`, if any."""
    return next((r for r in cp.reservations.values() if r.connector_id == number), None)


def _refusal(cp: SimulatedCharger, conn: Connector, reservation_id: int) -> str | None:
    """Why the connector cannot be reserved now (a ReserveNow status), or None."""
    if conn.status == "Faulted":
        return "Faulted"
    if not (conn.operative and cp.operative0) or conn.status == "Unavailable":
        return "Unavailable"
    held = reservation_on(cp, conn.number)
    if held is not None and held.reservation_id != reservation_id:
        return "Occupied"
    if conn.busy or conn.transaction is not None or conn.status not in ("Available", "Reserved"):
        return "Occupied"
    return None


def _free_connectors(cp: SimulatedCharger) -> list[Connector]:
    return [c for c in cp.connectors.values() if _refusal(cp, c, 0) is None and reservation_on(cp, c.number) is None]


def on_reserve_now(cp: SimulatedCharger, payload: Payload) -> Answer:
    """Reserve the connector for the id tag until expiryDate (§5.13), or say why not."""
    number, reservation_id = _integer(payload, "connectorId"), _integer(payload, "reservationId")
    id_tag, parent = _text(payload, "idTag"), _text(payload, "parentIdTag", required=False)
    expires_at = _moment(_text(payload, "expiryDate") or "")
    if number == 0:
        if not cp.config.flag("ReserveConnectorZeroSupported"):
            return {"status": "Rejected"}, None
        status = "Accepted" if _free_connectors(cp) else "Occupied"
    elif number not in cp.connectors:
        return {"status": "Rejected"}, None
    else:
        status = _refusal(cp, cp.connectors[number], reservation_id) or "Accepted"
    if status != "Accepted":
        return {"status": status}, None
    reservation = Reservation(reservation_id, number, str(id_tag), parent, expires_at)
    cp.reservations[reservation_id] = reservation
    return {"status": "Accepted"}, _held(cp, reservation)


def _held(cp: SimulatedCharger, reservation: Reservation) -> FollowUp:
    async def run() -> None:
        if reservation.connector_id != 0:
            cp.set_status(reservation.connector_id, "Reserved")
        while cp.reservations.get(reservation.reservation_id) is reservation and not cp.stopping():
            if cp.now() >= reservation.expires_at:
                end(cp, reservation.reservation_id)
                return
            await cp.pause(CHECK_EVERY_SECONDS)

    return run


def on_cancel_reservation(cp: SimulatedCharger, payload: Payload) -> Answer:
    """Cancel a known reservation (Accepted; the connector is Available again), else Rejected (§5.2)."""
    reservation_id = _integer(payload, "reservationId")
    if reservation_id not in cp.reservations:
        return {"status": "Rejected"}, None

    async def cancelled() -> None:
        end(cp, reservation_id)

    return {"status": "Accepted"}, cancelled


def end(cp: SimulatedCharger, reservation_id: int) -> None:
    """Forget the reservation; its connector, still showing Reserved, becomes Available (or Unavailable)."""
    reservation = cp.reservations.pop(reservation_id, None)
    if reservation is None:
        return
    conn = cp.connectors.get(reservation.connector_id)
    if conn is not None and conn.status == "Reserved":
        cp.set_status(conn.number, idle_status(cp, conn))
    for other in cp.connectors.values():
        other.changed.set()


def idle_status(cp: SimulatedCharger, conn: Connector) -> str:
    """What an idle connector shows: Reserved while reserved, else Available or Unavailable."""
    if not conn.operative:
        return "Unavailable"
    return "Reserved" if reservation_on(cp, conn.number) is not None else "Available"


def _matches(reservation: Reservation, id_tag: str) -> bool:
    tags = {reservation.id_tag.lower()}
    if reservation.parent_id_tag:
        tags.add(reservation.parent_id_tag.lower())
    return id_tag.lower() in tags  # IdToken is case-insensitive (CiString20Type)


def admits(cp: SimulatedCharger, conn: Connector, id_tag: str) -> bool:
    """True when the id tag may start on the connector: it is not reserved, or reserved for this tag (§3.11)."""
    held = reservation_on(cp, conn.number)
    if held is not None:
        return _matches(held, id_tag)
    anywhere = [r for r in cp.reservations.values() if r.connector_id == 0]
    if not anywhere or any(_matches(r, id_tag) for r in anywhere):
        return True
    others = [c for c in _free_connectors(cp) if c is not conn]
    return len(others) >= len(anywhere)  # a connector stays free for each reservation of connector 0


def take(cp: SimulatedCharger, conn: Connector, id_tag: str) -> int | None:
    """The reservation a start with the id tag on the connector uses (and ends), as its reservationId."""
    held = reservation_on(cp, conn.number)
    if held is None or not _matches(held, id_tag):
        held = next((r for r in cp.reservations.values() if r.connector_id == 0 and _matches(r, id_tag)), None)
    if held is None:
        return None
    del cp.reservations[held.reservation_id]
    return held.reservation_id
