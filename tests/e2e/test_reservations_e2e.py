"""Reservations end to end: the REST API, the server's OCPP 1.6 side and a charger (OCPP 1.6 §5.13, §5.2).

The simulator honours ReserveNow and CancelReservation; the `ocpp` package's ChargePoint is a
charger without them (CALLERROR NotImplemented) or one that answers as the test says. The server
runs on a SteppedClock the test moves forward (the simulator follows it), so a reservation
expires "on time" without waiting. Runs on SQLite and PostgreSQL (the `server` fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from sqlalchemy import select

from tests.clocked import ClockedServer, FollowingClock
from tests.conftest import LiveServer
from tests.ocpp.gateway_support import identity_only, unique_identity
from tests.support.interop import SilentCharger, connected, now
from tests.support.smart_e2e import advance, clocked_server, until, ws_base
from voltline.services.accounts import Account
from voltline.simulator import SimulatedCharger
from voltline.store import reservations as reservation_store
from voltline.store.schema import reservations

TEN_MINUTES = 600


@pytest.fixture(scope="module")
def live(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClockedServer]:
    """A server of its own on a SteppedClock, answering within 1 s of a charger's silence (a 504)."""
    with clocked_server(server, fresh_database, tmp_path_factory, ocpp_call_timeout=1.0) as made:
        yield made


class Team:
    """An account on the live server with one charger made through the API, and paths to it."""

    def __init__(self, live: ClockedServer) -> None:
        self.live = live
        self.account: Account = live.account("Reservations")
        self.team = f"/api/v2/teams/{self.account.team_id}"
        self.charger = self.new_charger()
        self.path = f"{self.team}/chargers/{self.charger['id']}"

    def new_charger(self) -> dict[str, Any]:
        """A charger of the team on security profile 0."""
        with self.live.client(self.account) as api:
            response = api.post(f"{self.team}/chargers", json={"identity": unique_identity("RES")})
            assert response.status_code == 201, response.text
            return identity_only(api, self.account, response.json()["data"])

    def expiry(self, seconds: float = TEN_MINUTES) -> str:
        """A moment `seconds` on from the server's now, as `Y-m-d H:i:s`."""
        moment: datetime = self.live.clock.now() + timedelta(seconds=seconds)
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    def body(self, connector: int = 1, id_tag: str = "TAGR", **extra: Any) -> dict[str, Any]:
        """A reservation request expiring in ten minutes."""
        return {"connector_id": connector, "id_tag": id_tag, "expires_at": self.expiry(), **extra}

    def simulated(self) -> SimulatedCharger:
        """The simulator as the team's charger: two connectors, no sessions of its own, on the server's clock."""
        return SimulatedCharger(
            ws_base(self.live),
            self.charger["identity"],
            connectors=2,
            auto_sessions=False,
            session_seconds=100_000,
            unplug_seconds=0.05,
            meter_interval=60,
            clock=FollowingClock(self.live.clock),
        )

    def rows(self) -> list[dict[str, Any]]:
        """Every stored reservation row of the charger, pending ones too."""

        async def read() -> list[dict[str, Any]]:
            async with self.live.runtime.db.read() as conn:
                query = (
                    select(reservations)
                    .where(reservations.c.charger_id == self.charger["id"])
                    .order_by(reservations.c.id)
                )
                return [dict(row) for row in (await conn.execute(query)).mappings()]

        return self.live.run(read)

    def statuses(self) -> list[str]:
        """The stored status of each of the charger's reservation rows, oldest first."""
        return [row["status"] for row in self.rows()]

    def pending(self) -> None:
        """Store a pending reservation of connector 2, made a second ago, as a ReserveNow under way leaves it."""

        async def write() -> None:
            made = self.live.clock.now() - timedelta(seconds=1)
            values = {"connector_number": 2, "id_tag": "GHOST", "expires_at": made + timedelta(hours=1)}
            async with self.live.runtime.db.write() as conn:
                await reservation_store.insert_pending_reservation(
                    conn, self.account.team_id, self.charger["id"], values, made
                )

        self.live.run(write)


@contextlib.asynccontextmanager
async def session(team: Team) -> AsyncIterator[httpx.AsyncClient]:
    """An async API client of the team."""
    headers = {"Authorization": f"Bearer {team.account.token}", "Accept": "application/json"}
    async with httpx.AsyncClient(base_url=team.live.base_url, headers=headers, timeout=30) as api:
        yield api


@contextlib.asynccontextmanager
async def online(cp: SimulatedCharger) -> AsyncIterator[SimulatedCharger]:
    """Run the simulated charger (booted, its statuses sent) for the block."""
    stop = asyncio.Event()
    task = asyncio.create_task(cp.run(stop))
    try:
        await until(lambda: cp.connection_state == "accepted" and len(cp.outbox) == 0, "the charger booted")
        yield cp
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def connector_status(api: httpx.AsyncClient, team: Team, number: int) -> str | None:
    """The connector's status in the API's charger view."""
    connectors = (await api.get(team.path)).json()["data"]["connectors"]
    return next((c["status"] for c in connectors if c["connector_id"] == number), None)


async def until_status(api: httpx.AsyncClient, team: Team, number: int, status: str) -> None:
    """Wait until the API shows the connector with the status."""
    for _ in range(150):
        if await connector_status(api, team, number) == status:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"connector {number} is {await connector_status(api, team, number)}, not {status}")


async def listed(api: httpx.AsyncClient, team: Team) -> list[dict[str, Any]]:
    """The charger's reservations as the API lists them."""
    response = await api.get(f"{team.path}/reservations")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def audited(api: httpx.AsyncClient, team: Team) -> list[tuple[str, str]]:
    """(action, outcome) of the team's reservation audit rows, oldest first."""
    response = await api.get(f"{team.team}/audit-log", params={"object_type": "reservation"})
    return [(row["action"], row["outcome"]) for row in reversed(response.json()["data"])]


def test_a_reservation_is_accepted_shown_reserved_and_expires_on_time(live: ClockedServer) -> None:
    """§5.13: Accepted -> stored active, the connector Reserved; at expires_at it is expired and Available again."""
    team = Team(live)

    async def scenario() -> None:
        async with session(team) as api, online(team.simulated()) as cp:
            await until_status(api, team, 2, "Available")
            response = await api.post(f"{team.path}/reservations", json=team.body(1))
            assert response.status_code == 201, response.text
            made = response.json()["data"]
            assert (made["connector_id"], made["id_tag"], made["status"]) == (1, "TAGR", "active")
            assert made["evse_id"] is None and made["transaction_id"] is None and made["ended_at"] is None
            assert cp.reservations[made["id"]].id_tag == "TAGR"  # the row's id is the charger's reservationId
            await until_status(api, team, 1, "Reserved")
            assert [item["uuid"] for item in await listed(api, team)] == [made["uuid"]]
            team.pending()  # a ReserveNow that never settled: never listed, removed by the housekeeping
            assert [item["uuid"] for item in await listed(api, team)] == [made["uuid"]]
            await advance(live, TEN_MINUTES - 60)
            assert (await listed(api, team))[0]["status"] == "active"
            assert await connector_status(api, team, 1) == "Reserved"
            await advance(live, 61)
            assert (await listed(api, team))[0]["status"] == "expired"  # shown so before the housekeeping pass
            await until(lambda: team.statuses() == ["expired"], "the housekeeping marked it expired, the pending gone")
            assert team.rows()[0]["ended_at"] is not None
            await until_status(api, team, 1, "Available")  # the charger ended it at its expiryDate
            assert cp.reservations == {}
            assert await audited(api, team) == [("reservation.reserved", "Accepted"), ("reservation.expired", "ok")]

    asyncio.run(scenario())


def test_a_reservation_the_charger_refuses_as_occupied_is_a_409_and_leaves_nothing_stored(live: ClockedServer) -> None:
    """§5.13: a connector in a session answers Occupied; the pending row is removed."""
    team = Team(live)

    async def scenario() -> None:
        async with session(team) as api, online(team.simulated()) as cp:
            await until_status(api, team, 2, "Available")
            start = await api.post(f"{team.path}/commands/start", json={"connector_id": 1, "id_tag": "DRIVER"})
            assert start.json() == {"message": "Accepted"}
            await until(lambda: cp.transactions.get(1), "the session started")
            response = await api.post(f"{team.path}/reservations", json=team.body(1))
            assert (response.status_code, response.json()) == (409, {"message": "The charger answered Occupied."})
            assert await listed(api, team) == [] and team.rows() == []
            assert await audited(api, team) == [("reservation.reserved", "Occupied")]

    asyncio.run(scenario())


def test_a_cancelled_reservation_frees_the_connector_and_cannot_be_cancelled_again(live: ClockedServer) -> None:
    """§5.2: CancelReservation Accepted -> cancelled (204), the connector Available; a second cancel is a 409."""
    team = Team(live)

    async def scenario() -> None:
        async with session(team) as api, online(team.simulated()) as cp:
            await until_status(api, team, 2, "Available")  # the boot statuses made the connectors
            made = (await api.post(f"{team.path}/reservations", json=team.body(2))).json()["data"]
            await until_status(api, team, 2, "Reserved")
            response = await api.delete(f"{team.path}/reservations/{made['uuid']}")
            assert response.status_code == 204, response.text
            await until_status(api, team, 2, "Available")
            assert cp.reservations == {}
            [shown] = await listed(api, team)
            assert shown["status"] == "cancelled" and shown["ended_at"] is not None
            again = await api.delete(f"{team.path}/reservations/{made['id']}")
            assert (again.status_code, again.json()) == (409, {"message": "The reservation is no longer active."})
            missing = await api.delete(f"{team.path}/reservations/2147483647")
            assert missing.status_code == 404
            assert await audited(api, team) == [
                ("reservation.reserved", "Accepted"),
                ("reservation.cancelled", "Accepted"),
            ]

    asyncio.run(scenario())


def test_a_start_transaction_carrying_the_reservation_id_ends_it_as_used(live: ClockedServer) -> None:
    """§5.13: only the reserved id tag starts on the connector; its StartTransaction carries the reservationId."""
    team = Team(live)

    async def scenario() -> None:
        async with session(team) as api, online(team.simulated()) as cp:
            await until_status(api, team, 2, "Available")  # the boot statuses made the connectors
            made = (await api.post(f"{team.path}/reservations", json=team.body(1, "CARD7"))).json()["data"]
            await until_status(api, team, 1, "Reserved")
            other = await api.post(f"{team.path}/commands/start", json={"connector_id": 1, "id_tag": "STRANGER"})
            assert other.json() == {"message": "Rejected"}
            mine = await api.post(f"{team.path}/commands/start", json={"connector_id": 1, "id_tag": "CARD7"})
            assert mine.json() == {"message": "Accepted"}
            transaction_id = await until_transaction(cp)
            await until(lambda: team.rows()[0]["status"] == "used", "the reservation was used")
            [shown] = await listed(api, team)
            assert (shown["uuid"], shown["status"], shown["transaction_id"]) == (made["uuid"], "used", transaction_id)
            transactions = (await api.get(f"{team.path}/transactions")).json()["data"]
            assert [t["id"] for t in transactions] == [transaction_id]

    asyncio.run(scenario())


def charger_offline(team: Team) -> bool:
    """True once the server saw the charger's socket close."""
    with team.live.client(team.account) as api:
        return bool(api.get(team.path).json()["data"]["connection_status"] == "offline")


def test_the_parent_id_tag_of_the_teams_id_tag_may_use_the_reservation(live: ClockedServer) -> None:
    """§5.13 parentIdTag: the server sends the stored parent of the id tag; a start with the parent uses it."""
    team = Team(live)

    async def scenario() -> None:
        async with session(team) as api, online(team.simulated()) as cp:
            tag = {"id_tag": "CARD8", "parent_id_tag": "FLEET"}
            assert (await api.post(f"{team.team}/id-tags", json=tag)).status_code == 201
            await until_status(api, team, 2, "Available")
            made = (await api.post(f"{team.path}/reservations", json=team.body(1, "CARD8"))).json()["data"]
            assert cp.reservations[made["id"]].parent_id_tag == "FLEET"
            start = await api.post(f"{team.path}/commands/start", json={"connector_id": 1, "id_tag": "FLEET"})
            assert start.json() == {"message": "Accepted"}
            transaction_id = await until_transaction(cp)
            await until(lambda: team.rows()[0]["transaction_id"] == transaction_id, "the parent used the reservation")

    asyncio.run(scenario())


async def until_transaction(cp: SimulatedCharger) -> int:
    """The OCPP transaction id of connector 1, once the server answered the start."""
    await until(lambda: cp.transactions.get(1), "the transaction started")
    return int(cp.transactions[1] or 0)


class ReservingCharger(ChargePoint):  # type: ignore[misc]
    """A charge point that accepts every reservation (it never starts on its own)."""

    @on(Action.reserve_now)
    def on_reserve_now(self, **payload: Any) -> Any:
        return call_result.ReserveNow(status="Accepted")

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, **payload: Any) -> Any:
        return call_result.CancelReservation(status="Rejected")


def test_a_cancel_the_charger_refuses_is_a_409_and_the_reservation_stays_active(live: ClockedServer) -> None:
    """§5.2: CancelReservation Rejected; the reservation is still active (and still the charger's)."""
    team = Team(live)

    async def scenario() -> None:
        async with session(team) as api:
            async with connected(live, team.charger["identity"], ReservingCharger):
                made = (await api.post(f"{team.path}/reservations", json=team.body(0))).json()["data"]
                response = await api.delete(f"{team.path}/reservations/{made['uuid']}")
                assert (response.status_code, response.json()) == (409, {"message": "The charger answered Rejected."})
            await until(lambda: charger_offline(team), "the charger is offline")
            offline = await api.delete(f"{team.path}/reservations/{made['uuid']}")
            assert (offline.status_code, offline.json()) == (409, {"message": "The charger is offline."})
            assert [item["status"] for item in await listed(api, team)] == ["active"]
            assert await audited(api, team) == [
                ("reservation.reserved", "Accepted"),
                ("reservation.cancelled", "Rejected"),
                ("reservation.cancelled", "offline"),
            ]

    asyncio.run(scenario())


def test_a_charger_without_reservations_answers_not_implemented_a_409_with_nothing_stored(live: ClockedServer) -> None:
    """OCPP-J 1.6 §4.2.3: a CALLERROR NotImplemented is the charger's refusal."""
    team = Team(live)

    async def scenario() -> None:
        async with session(team) as api, connected(live, team.charger["identity"], ChargePoint):
            response = await api.post(f"{team.path}/reservations", json=team.body(0))
            assert (response.status_code, response.json()) == (409, {"message": "The charger answered NotImplemented."})
            assert await listed(api, team) == [] and team.rows() == []
            assert await audited(api, team) == [("reservation.reserved", "error:NotImplemented")]

    asyncio.run(scenario())


def test_an_offline_or_silent_charger_is_a_409_or_a_504_with_nothing_stored(live: ClockedServer) -> None:
    """DESIGN API errors: offline -> 409, no answer in time -> 504; audited, nothing stored."""
    team = Team(live)

    async def scenario() -> None:
        async with session(team) as api:
            offline = await api.post(f"{team.path}/reservations", json=team.body(0))
            assert (offline.status_code, offline.json()) == (409, {"message": "The charger is offline."})
            async with connected(live, team.charger["identity"], SilentCharger):
                silent = await api.post(f"{team.path}/reservations", json=team.body(0))
            assert (silent.status_code, silent.json()) == (504, {"message": "The charger did not respond in time."})
            assert team.rows() == []
            assert await audited(api, team) == [
                ("reservation.reserved", "offline"),
                ("reservation.reserved", "timeout"),
            ]

    asyncio.run(scenario())


def test_bad_reservation_requests_are_laravel_422s(live: ClockedServer) -> None:
    """Past expiry, an unknown connector, a long id tag and an evse id on a 1.6 charger, all at once."""
    team = Team(live)
    body = {"connector_id": 9, "evse_id": 1, "id_tag": "T" * 21, "expires_at": team.expiry(-1)}
    with live.client(team.account) as api:
        response = api.post(f"{team.path}/reservations", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"] == {
            "connector_id": ["The selected connector id is invalid."],
            "evse_id": ["The evse id field is only accepted for an OCPP 2.0.1 charger."],
            "id_tag": ["The id tag field must not be greater than 20 characters."],
            "expires_at": ["The expires at field must be a date after now."],
        }
        assert response.json()["message"] == "The selected connector id is invalid. (and 3 more errors)"
        missing = api.post(f"{team.path}/reservations", json={})
        assert set(missing.json()["errors"]) == {"connector_id", "id_tag", "expires_at"}
        assert api.get(f"{team.team}/chargers/{unique_identity('NO')}/reservations").status_code == 404
    assert team.rows() == []


def test_a_start_naming_another_chargers_or_an_unknown_reservation_is_accepted_and_changes_nothing(
    live: ClockedServer,
) -> None:
    """A reservationId that is not one of this charger's reservations is ignored; the transaction still starts."""
    team = Team(live)
    other = team.new_charger()

    async def scenario() -> None:
        async with session(team) as api:
            async with connected(live, team.charger["identity"], ReservingCharger):
                made = (await api.post(f"{team.path}/reservations", json=team.body(0))).json()["data"]
            async with connected(live, other["identity"], ChargePoint) as peer:
                for reservation_id in (made["id"], 2_000_000_000):
                    answer = await peer.call(
                        call.StartTransaction(
                            connector_id=1, id_tag="TAGR", meter_start=0, timestamp=now(), reservation_id=reservation_id
                        )
                    )
                    assert answer.id_tag_info["status"] == "Accepted" and answer.transaction_id > 0
            assert [(item["status"], item["transaction_id"]) for item in await listed(api, team)] == [("active", None)]

    asyncio.run(scenario())
