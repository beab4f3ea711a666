"""Voltline -> charger: every neutral command through runtime.commands to an independent OCPP 1.6 peer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import (
    BOOT,
    Raw,
    booted_charger,
    dedicated_server,
    open_charger,
    run,
    team_charger,
    unique_identity,
)
from voltline.errors import ChargerOfflineError, ChargerTimeoutError
from voltline.services.accounts import Account
from voltline.services.commands import CommandFailedError

PROFILE = {
    "chargingProfileId": 7,
    "stackLevel": 1,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.6}, {"startPeriod": 3600, "limit": 31.8}],
    },
}
SCHEDULE = {"charging_rate_unit": "A", "charging_schedule_period": [{"start_period": 0, "limit": 10.6}]}


class Peer(ChargePoint):  # type: ignore[misc]
    """An `ocpp` ChargePoint that answers every command and records what it was sent."""

    def __init__(self, identity: str, connection: Any) -> None:
        super().__init__(identity, connection)
        self.received: list[tuple[str, dict[str, Any]]] = []

    def _note(self, action: str, payload: dict[str, Any]) -> None:
        self.received.append((action, payload))

    @on(Action.remote_start_transaction)
    def on_remote_start(self, **payload: Any) -> Any:
        self._note("RemoteStartTransaction", payload)
        return call_result.RemoteStartTransaction(status="Accepted")

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, **payload: Any) -> Any:
        self._note("RemoteStopTransaction", payload)
        return call_result.RemoteStopTransaction(status="Rejected")

    @on(Action.reset)
    def on_reset(self, **payload: Any) -> Any:
        self._note("Reset", payload)
        return call_result.Reset(status="Accepted")

    @on(Action.unlock_connector)
    def on_unlock(self, **payload: Any) -> Any:
        self._note("UnlockConnector", payload)
        return call_result.UnlockConnector(status="Unlocked")

    @on(Action.change_availability)
    def on_change_availability(self, **payload: Any) -> Any:
        self._note("ChangeAvailability", payload)
        return call_result.ChangeAvailability(status="Scheduled")

    @on(Action.trigger_message)
    def on_trigger(self, **payload: Any) -> Any:
        self._note("TriggerMessage", payload)
        return call_result.TriggerMessage(status="Accepted")

    @on(Action.get_configuration)
    def on_get_configuration(self, **payload: Any) -> Any:
        self._note("GetConfiguration", payload)
        known = [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=["Nope"])

    @on(Action.change_configuration)
    def on_change_configuration(self, **payload: Any) -> Any:
        self._note("ChangeConfiguration", payload)
        return call_result.ChangeConfiguration(status="RebootRequired")

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, **payload: Any) -> Any:
        self._note("SetChargingProfile", payload)
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, **payload: Any) -> Any:
        self._note("ClearChargingProfile", payload)
        return call_result.ClearChargingProfile(status="Unknown")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(self, **payload: Any) -> Any:
        self._note("GetCompositeSchedule", payload)
        return call_result.GetCompositeSchedule(
            status="Accepted", connector_id=1, schedule_start="2025-03-31T12:00:00Z", charging_schedule=SCHEDULE
        )


def send(server: LiveServer, identity: str, command: str, args: dict[str, Any]) -> dict[str, Any]:
    """runtime.commands.send on the server's loop (blocking: call it from a thread)."""
    result: dict[str, Any] = server.run(lambda: server.runtime.commands.send(identity, command, args))
    return result


async def send_async(server: LiveServer, identity: str, command: str, args: dict[str, Any]) -> dict[str, Any]:
    """`send` without blocking the test's own event loop (where the peer answers)."""
    result: dict[str, Any] = await asyncio.to_thread(send, server, identity, command, args)
    return result


@pytest.fixture(scope="module")
def impatient_server(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server of its own that waits 0.5 s for a charger's answer."""
    with dedicated_server(fresh_database, tmp_path_factory, server.backend, ocpp_call_timeout=0.5) as live:
        yield live


def impatient_identity(server: LiveServer) -> str:
    """A charger on a dedicated server (made in its store)."""
    account = server.account()
    with server.client(account) as client:
        return str(team_charger(client, account)["identity"])


COMMANDS: list[tuple[str, dict[str, Any], str, dict[str, Any], dict[str, Any]]] = [
    ("remote_start", {"connector_id": 1, "id_tag": "04A2B3C4"}, "RemoteStartTransaction",
     {"connector_id": 1, "id_tag": "04A2B3C4"}, {"status": "Accepted"}),
    ("remote_stop", {"transaction_id": 17}, "RemoteStopTransaction", {"transaction_id": 17}, {"status": "Rejected"}),
    ("reset", {"type": "Hard"}, "Reset", {"type": "Hard"}, {"status": "Accepted"}),
    ("unlock", {"connector_id": 2}, "UnlockConnector", {"connector_id": 2}, {"status": "Unlocked"}),
    ("change_availability", {"connector_id": 0, "type": "Inoperative"}, "ChangeAvailability",
     {"connector_id": 0, "type": "Inoperative"}, {"status": "Scheduled"}),
    ("trigger", {"message": "StatusNotification", "connector_id": 1}, "TriggerMessage",
     {"requested_message": "StatusNotification", "connector_id": 1}, {"status": "Accepted"}),
    ("get_configuration", {"keys": ["HeartbeatInterval", "Nope"]}, "GetConfiguration",
     {"key": ["HeartbeatInterval", "Nope"]},
     {"configuration_key": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}], "unknown_key": ["Nope"]}),
    ("change_configuration", {"key": "HeartbeatInterval", "value": "60"}, "ChangeConfiguration",
     {"key": "HeartbeatInterval", "value": "60"}, {"status": "RebootRequired"}),
    ("clear_charging_profile", {"id": 7, "connector_id": 1}, "ClearChargingProfile", {"id": 7, "connector_id": 1},
     {"status": "Unknown"}),
    ("get_composite_schedule", {"connector_id": 1, "duration": 3600, "charging_rate_unit": "A"},
     "GetCompositeSchedule", {"connector_id": 1, "duration": 3600, "charging_rate_unit": "A"},
     {"status": "Accepted", "connector_id": 1, "schedule_start": "2025-03-31T12:00:00Z",
      "charging_schedule": SCHEDULE}),
]  # fmt: skip


def test_every_command_reaches_an_ocpp_chargepoint_and_returns_its_answer(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """The `ocpp` package's ChargePoint receives every command with a schema-valid payload."""
    identity = team_charger(api, account)["identity"]

    async def scenario() -> None:
        async with open_charger(server, identity) as ws:
            peer = Peer(identity, ws)
            serving = asyncio.create_task(peer.start())
            try:
                await peer.call(_boot())
                for command, args, action, sent, answer in COMMANDS:
                    assert await send_async(server, identity, command, args) == answer, command
                    assert peer.received[-1] == (action, sent)
                profile = {"connector_id": 1, "profile": PROFILE}
                assert await send_async(server, identity, "set_charging_profile", profile) == {"status": "Accepted"}
                action, sent = peer.received[-1]
                periods = sent["cs_charging_profiles"]["charging_schedule"]["charging_schedule_period"]
                assert action == "SetChargingProfile"
                assert [p["limit"] for p in periods] == [Decimal("10.6"), Decimal("31.8")]
            finally:
                serving.cancel()

    run(scenario())


def _boot() -> Any:
    return call.BootNotification(
        charge_point_vendor=BOOT["chargePointVendor"], charge_point_model=BOOT["chargePointModel"]
    )


def test_a_command_for_a_charger_that_is_not_connected_is_offline(server: LiveServer) -> None:
    """DESIGN: no gateway holds the socket -> ChargerOfflineError (the API's 409)."""
    with pytest.raises(ChargerOfflineError):
        send(server, unique_identity("GONE"), "reset", {"type": "Soft"})


def test_arguments_that_make_no_valid_request_fail_without_reaching_the_charger(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """Nothing schema-invalid is sent to a charger."""
    identity = team_charger(api, account)["identity"]

    async def scenario() -> None:
        async with booted_charger(server, identity) as ws:
            bad_profile = {"connector_id": 1, "profile": {**PROFILE, "stackLevel": "high"}}
            with pytest.raises(CommandFailedError) as failed:
                await send_async(server, identity, "set_charging_profile", bad_profile)
            assert failed.value.code == "InvalidArguments"
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await ws.recv()

    run(scenario())


def test_a_charger_that_never_answers_times_out_and_the_next_command_still_goes_through(
    impatient_server: LiveServer,
) -> None:
    """DESIGN: call timeout is a setting; a late answer is ignored; the charger's line is free again."""
    identity = impatient_identity(impatient_server)

    async def scenario() -> None:
        async with booted_charger(impatient_server, identity) as ws:
            with pytest.raises(ChargerTimeoutError):
                await send_async(impatient_server, identity, "reset", {"type": "Soft"})
            ignored = json.loads(await ws.recv())
            await ws.send(json.dumps([3, ignored[1], {"status": "Accepted"}]))
            pending = asyncio.create_task(send_async(impatient_server, identity, "unlock", {"connector_id": 1}))
            unlock = json.loads(await ws.recv())
            assert unlock[2:] == ["UnlockConnector", {"connectorId": 1}]
            await ws.send(json.dumps([3, unlock[1], {"status": "UnlockFailed"}]))
            assert await pending == {"status": "UnlockFailed"}

    run(scenario())


def test_one_call_is_in_flight_per_charger_and_the_others_wait_their_turn(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """OCPP-J 1.6 §4.1.1: the CSMS sends no new CALL while one is outstanding."""
    identity = team_charger(api, account)["identity"]

    async def scenario() -> None:
        async with booted_charger(server, identity) as ws:
            first = asyncio.create_task(send_async(server, identity, "reset", {"type": "Soft"}))
            second = asyncio.create_task(send_async(server, identity, "reset", {"type": "Hard"}))
            frame = json.loads(await ws.recv())
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await ws.recv()
            await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
            following = json.loads(await ws.recv())
            assert {frame[3]["type"], following[3]["type"]} == {"Soft", "Hard"}
            await ws.send(json.dumps([3, following[1], {"status": "Rejected"}]))
            assert sorted([(await first)["status"], (await second)["status"]]) == ["Accepted", "Rejected"]

    run(scenario())


def test_callerrors_and_invalid_answers_fail_the_command(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """A CALLERROR or an answer that breaks the schema is a failed command with the OCPP code."""
    identity = team_charger(api, account)["identity"]

    async def scenario() -> None:
        async with booted_charger(server, identity) as ws:
            for reply, code in (
                (lambda mid: [4, mid, "NotSupported", "no resets here", {}], "NotSupported"),
                (lambda mid: [3, mid, {"status": "Maybe"}], "PropertyConstraintViolation"),
            ):
                pending = asyncio.create_task(send_async(server, identity, "reset", {"type": "Soft"}))
                frame = json.loads(await ws.recv())
                await ws.send(json.dumps(reply(frame[1])))
                with pytest.raises(CommandFailedError) as failed:
                    await pending
                assert failed.value.code == code
            assert await Raw(ws).result("Heartbeat", {}) != {}

    run(scenario())


def test_a_socket_that_closes_during_a_call_makes_the_command_offline(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: the gateway replies `offline` when the socket closed meanwhile (the API's 409)."""
    identity = team_charger(api, account)["identity"]

    async def scenario() -> None:
        async with booted_charger(server, identity) as ws:
            pending = asyncio.create_task(send_async(server, identity, "reset", {"type": "Soft"}))
            await ws.recv()
        with pytest.raises(ChargerOfflineError):
            await pending

    run(scenario())
