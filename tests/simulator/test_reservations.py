"""The simulated charger honours reservations (OCPP 1.6 §3.11, §5.13 ReserveNow, §5.2 CancelReservation).

Each scenario ends with `violations == []`: every frame both ways passed the OCA 1.6 schemas.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.clocked import SteppedClock
from tests.simulator import CentralSystem, run, station
from voltline.simulator import SimulatedCharger


def reserve_payload(connector: int, reservation_id: int = 1, id_tag: str = "TAG1", **extra: Any) -> dict[str, Any]:
    """A ReserveNow request expiring in an hour."""
    expiry = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"connectorId": connector, "expiryDate": expiry, "idTag": id_tag, "reservationId": reservation_id, **extra}


async def reserve(csms: CentralSystem, cp: SimulatedCharger, connector: int, **extra: Any) -> Any:
    answer = await csms.result(cp.identity, "ReserveNow", reserve_payload(connector, **extra))
    return answer["status"]


async def remote_start(csms: CentralSystem, cp: SimulatedCharger, id_tag: str, connector: int = 1) -> str:
    payload = {"idTag": id_tag, "connectorId": connector}
    answer = await csms.result(cp.identity, "RemoteStartTransaction", payload)
    return str(answer["status"])


def test_a_reserved_connector_shows_reserved_and_starts_only_for_its_id_tag_with_the_reservation_id() -> None:
    """§5.13: Accepted on an Available connector, which goes Reserved; §3.11: only the id tag may start there."""

    async def scenario() -> None:
        async with station("CP-RES") as (csms, cp):
            assert await reserve(csms, cp, 1, reservation_id=41) == "Accepted"
            await csms.until(lambda: csms.statuses(1)[-1] == "Reserved")
            assert await remote_start(csms, cp, "OTHER") == "Rejected"
            assert await remote_start(csms, cp, "tag1") == "Accepted"  # IdToken is case-insensitive
            await csms.until(lambda: cp.transactions.get(1))
            [started] = csms.calls("StartTransaction")
            assert started["reservationId"] == 41
            assert cp.reservations == {}
            statuses = csms.statuses(1)
            assert statuses[statuses.index("Reserved") + 1] == "Preparing"

    run(scenario)


def test_the_parent_id_tag_of_a_reservation_may_start_on_it() -> None:
    async def scenario() -> None:
        async with station("CP-RES-PARENT") as (csms, cp):
            assert await reserve(csms, cp, 2, reservation_id=5, parentIdTag="FLEET") == "Accepted"
            assert await remote_start(csms, cp, "FLEET", 2) == "Accepted"
            await csms.until(lambda: csms.calls("StartTransaction"))
            assert csms.calls("StartTransaction")[0]["reservationId"] == 5

    run(scenario)


def test_reserve_now_says_why_a_connector_cannot_be_reserved() -> None:
    """§5.13: Occupied, Unavailable; Rejected for an unknown connector and for connector 0 unless supported."""

    async def scenario() -> None:
        async with station("CP-RES-NO") as (csms, cp):
            assert await reserve(csms, cp, 7) == "Rejected"
            assert await reserve(csms, cp, 0) == "Rejected"
            assert await remote_start(csms, cp, "TAG9", 1) == "Accepted"
            await csms.until(lambda: cp.transactions.get(1))
            assert await reserve(csms, cp, 1) == "Occupied"
            change = {"connectorId": 2, "type": "Inoperative"}
            assert (await csms.result(cp.identity, "ChangeAvailability", change))["status"] == "Accepted"
            await csms.until(lambda: csms.statuses(2)[-1] == "Unavailable")
            assert await reserve(csms, cp, 2) == "Unavailable"
            cp.connectors[2].status = "Faulted"
            assert await reserve(csms, cp, 2) == "Faulted"
            assert cp.reservations == {}

    run(scenario)


def test_a_second_reservation_of_a_reserved_connector_is_occupied_and_the_same_id_replaces() -> None:
    async def scenario() -> None:
        async with station("CP-RES-TWICE") as (csms, cp):
            assert await reserve(csms, cp, 1, reservation_id=1) == "Accepted"
            assert await reserve(csms, cp, 1, reservation_id=2) == "Occupied"
            assert await reserve(csms, cp, 1, reservation_id=1, id_tag="TAG2") == "Accepted"
            assert cp.reservations[1].id_tag == "TAG2"

    run(scenario)


def test_connector_zero_is_reserved_when_the_charger_supports_it() -> None:
    """§5.13: ReserveConnectorZeroSupported; one connector stays free for the id tag."""

    async def scenario() -> None:
        async with station("CP-RES-ZERO", connectors=1) as (csms, cp):
            keys = (await csms.result(cp.identity, "GetConfiguration", {"key": ["ReserveConnectorZeroSupported"]}))[
                "configurationKey"
            ]
            assert keys == [{"key": "ReserveConnectorZeroSupported", "readonly": True, "value": "false"}]
            cp.config.set_value("ReserveConnectorZeroSupported", "true")
            assert await reserve(csms, cp, 0, reservation_id=3) == "Accepted"
            assert await remote_start(csms, cp, "OTHER") == "Rejected"
            assert await remote_start(csms, cp, "TAG1") == "Accepted"
            await csms.until(lambda: csms.calls("StartTransaction"))
            assert csms.calls("StartTransaction")[0]["reservationId"] == 3

    run(scenario)


def test_a_reservation_ends_at_its_expiry_date_and_the_connector_is_available_again() -> None:
    """§5.13: the reservation ends at expiryDate (the charger's clock moved past it)."""

    async def scenario() -> None:
        clock = SteppedClock()
        async with station("CP-RES-EXP", clock=clock) as (csms, cp):
            assert await reserve(csms, cp, 1, reservation_id=8) == "Accepted"
            await csms.until(lambda: csms.statuses(1)[-1] == "Reserved")
            clock.offset += 3599
            assert cp.reservations and csms.statuses(1)[-1] == "Reserved"
            clock.offset += 2
            await csms.until(lambda: csms.statuses(1)[-1] == "Available")
            assert cp.reservations == {}
            cancel = await csms.result(cp.identity, "CancelReservation", {"reservationId": 8})
            assert cancel == {"status": "Rejected"}

    run(scenario)


def test_cancel_reservation_accepts_a_known_id_and_frees_the_connector() -> None:
    """§5.2: Accepted for a known reservation, Rejected otherwise."""

    async def scenario() -> None:
        async with station("CP-RES-CANCEL") as (csms, cp):
            assert await reserve(csms, cp, 2, reservation_id=12) == "Accepted"
            await csms.until(lambda: csms.statuses(2)[-1] == "Reserved")
            assert await csms.result(cp.identity, "CancelReservation", {"reservationId": 13}) == {"status": "Rejected"}
            assert await csms.result(cp.identity, "CancelReservation", {"reservationId": 12}) == {"status": "Accepted"}
            await csms.until(lambda: csms.statuses(2)[-1] == "Available")
            assert cp.reservations == {}
            assert await remote_start(csms, cp, "ANYONE", 2) == "Accepted"

    run(scenario)


def test_the_reservation_profile_is_announced() -> None:
    async def scenario() -> None:
        async with station("CP-RES-PROFILES") as (csms, cp):
            answer = await csms.result(cp.identity, "GetConfiguration", {"key": ["SupportedFeatureProfiles"]})
            assert "Reservation" in answer["configurationKey"][0]["value"].split(",")

    run(scenario)
