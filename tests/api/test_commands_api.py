"""Remote commands over REST reach a real charger (the `ocpp` package's ChargePoint) through the bus and gateway.

The ChargePoint validates every incoming call against the official OCPP 1.6 schemas, so an
"Accepted" round trip also proves the payload we sent was schema-valid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import dedicated_server, identity_only, unique_identity
from tests.support.interop import SilentCharger, connected, now, scenario
from voltline.services.accounts import Account


class InteropCharger(ChargePoint):  # type: ignore[misc]
    """An independent 1.6 charge point that records what it was asked and answers like a charger."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict[str, Any]]] = []

    @on(Action.remote_start_transaction)
    def on_remote_start(self, **payload: Any) -> Any:
        self.received.append(("RemoteStartTransaction", payload))
        return call_result.RemoteStartTransaction(status="Accepted")

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, **payload: Any) -> Any:
        self.received.append(("RemoteStopTransaction", payload))
        return call_result.RemoteStopTransaction(status="Accepted")

    @on(Action.reset)
    def on_reset(self, **payload: Any) -> Any:
        self.received.append(("Reset", payload))
        return call_result.Reset(status="Accepted")

    @on(Action.unlock_connector)
    def on_unlock(self, **payload: Any) -> Any:
        self.received.append(("UnlockConnector", payload))
        return call_result.UnlockConnector(status="Unlocked")

    @on(Action.change_availability)
    def on_availability(self, **payload: Any) -> Any:
        self.received.append(("ChangeAvailability", payload))
        return call_result.ChangeAvailability(status="Scheduled")

    @on(Action.trigger_message)
    def on_trigger(self, **payload: Any) -> Any:
        self.received.append(("TriggerMessage", payload))
        return call_result.TriggerMessage(status="Accepted")

    @on(Action.get_configuration)
    def on_get_configuration(self, **payload: Any) -> Any:
        self.received.append(("GetConfiguration", payload))
        known = [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
        unknown = [key for key in payload.get("key", []) if key != "HeartbeatInterval"]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown)

    @on(Action.change_configuration)
    def on_change_configuration(self, **payload: Any) -> Any:
        self.received.append(("ChangeConfiguration", payload))
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.clear_cache)
    def on_clear_cache(self, **payload: Any) -> Any:
        self.received.append(("ClearCache", payload))
        return call_result.ClearCache(status="Rejected")

    @on(Action.data_transfer)
    def on_data_transfer(self, **payload: Any) -> Any:
        self.received.append(("DataTransfer", payload))
        if payload["vendor_id"] != "com.example":
            return call_result.DataTransfer(status="UnknownVendorId")
        return call_result.DataTransfer(status="Accepted", data=payload.get("data", "")[::-1])


def make_charger(server: LiveServer, account: Account) -> tuple[str, str]:
    identity = unique_identity("CMD")
    with server.client(account) as api:
        charger = api.post(f"/api/v2/teams/{account.team_id}/chargers", json={"identity": identity}).json()["data"]
        identity_only(api, account, charger)
    return identity, f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}/commands"


def test_every_command_reaches_the_charger_with_a_schema_valid_payload(server: LiveServer, account: Account) -> None:
    """spec/volttime-api.md commands: start, stop, restart, unlock, availability, trigger, configuration get/change."""
    identity, base = make_charger(server, account)

    async def body(api: httpx.AsyncClient) -> None:
        async with connected(server, identity, InteropCharger) as charger:
            started = await charger.call(
                call.StartTransaction(connector_id=1, id_tag="CARD1", meter_start=1000, timestamp=now())
            )
            answers = [
                await api.post(f"{base}/start", json={"connector_id": 1, "id_tag": "CARD2"}),
                await api.post(f"{base}/stop", json={}),
                await api.post(f"{base}/restart", json={"type": "Hard"}),
                await api.post(f"{base}/unlock", json={"connector_id": 1}),
                await api.post(f"{base}/availability", json={"type": "Inoperative", "connector_id": 1}),
                await api.post(f"{base}/trigger", json={"message": "Heartbeat"}),
                await api.put(f"{base}/configuration", json={"key": "HeartbeatInterval", "value": "60"}),
            ]
            config = await api.get(f"{base}/configuration", params={"keys": "HeartbeatInterval,NoSuchKey"})
        assert [(a.status_code, a.json()) for a in answers] == [
            (200, {"message": "Accepted"}),
            (200, {"message": "Accepted"}),
            (200, {"message": "Accepted"}),
            (200, {"message": "Unlocked"}),
            (200, {"message": "Scheduled"}),
            (200, {"message": "Accepted"}),
            (200, {"message": "Accepted"}),
        ]
        assert config.json() == {
            "data": {
                "configuration_key": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
                "unknown_key": ["NoSuchKey"],
            }
        }
        assert charger.received == [
            ("RemoteStartTransaction", {"connector_id": 1, "id_tag": "CARD2"}),
            ("RemoteStopTransaction", {"transaction_id": started.transaction_id}),
            ("Reset", {"type": "Hard"}),
            ("UnlockConnector", {"connector_id": 1}),
            ("ChangeAvailability", {"connector_id": 1, "type": "Inoperative"}),
            ("TriggerMessage", {"requested_message": "Heartbeat"}),
            ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}),
            ("GetConfiguration", {"key": ["HeartbeatInterval", "NoSuchKey"]}),
        ]

    scenario(server, account, body)


def test_clear_cache_and_data_transfer_return_the_chargers_status_and_data(
    server: LiveServer, account: Account
) -> None:
    """OCPP 1.6 §5.4 ClearCache and §5.6 DataTransfer: the charger's status word, and its data, come back."""
    identity, base = make_charger(server, account)

    async def body(api: httpx.AsyncClient) -> None:
        async with connected(server, identity, InteropCharger) as charger:
            answers = [
                await api.post(f"{base}/clear-cache", json={}),
                await api.post(f"{base}/data-transfer", json={"vendor_id": "com.example", "data": "hello"}),
                await api.post(f"{base}/data-transfer", json={"vendor_id": "org.other", "message_id": "Ping"}),
            ]
        assert [(a.status_code, a.json()) for a in answers] == [
            (200, {"message": "Rejected", "data": None}),
            (200, {"message": "Accepted", "data": "olleh"}),
            (200, {"message": "UnknownVendorId", "data": None}),
        ]
        assert charger.received == [
            ("ClearCache", {}),
            ("DataTransfer", {"vendor_id": "com.example", "data": "hello"}),
            ("DataTransfer", {"vendor_id": "org.other", "message_id": "Ping"}),
        ]

    scenario(server, account, body)


def test_stop_without_an_active_transaction_is_a_422(server: LiveServer, account: Account) -> None:
    """DESIGN: stop with no active transaction -> 422."""
    identity, base = make_charger(server, account)

    async def body(api: httpx.AsyncClient) -> list[httpx.Response]:
        async with connected(server, identity, InteropCharger) as charger:
            responses = [
                await api.post(f"{base}/stop", json={}),
                await api.post(f"{base}/stop", json={"transaction_id": 999999}),
            ]
            assert charger.received == []
        return responses

    none, wrong = scenario(server, account, body)
    assert (none.status_code, none.json()["errors"]) == (
        422,
        {"transaction_id": ["There is no active transaction on this charger."]},
    )
    assert (wrong.status_code, wrong.json()["errors"]) == (
        422,
        {"transaction_id": ["The selected transaction id is invalid."]},
    )


@pytest.mark.parametrize(
    ("path", "body", "errors"),
    [
        ("start", {"connector_id": 1}, {"id_tag": ["The id tag field is required."]}),
        ("start", {"id_tag": "x" * 21}, {"id_tag": ["The id tag field must not be greater than 20 characters."]}),
        ("restart", {"type": "Warm"}, {"type": ["The selected type is invalid."]}),
        ("unlock", {}, {"connector_id": ["The connector id field is required."]}),
        ("availability", {"type": "Off"}, {"type": ["The selected type is invalid."]}),
        ("trigger", {"message": "StartTransaction"}, {"message": ["The selected message is invalid."]}),
        ("data-transfer", {"data": "x"}, {"vendor_id": ["The vendor id field is required."]}),
        (
            "data-transfer",
            {"vendor_id": "v", "message_id": "m" * 51},
            {"message_id": ["The message id field must not be greater than 50 characters."]},
        ),
    ],
)
def test_bad_command_bodies_are_422_before_anything_is_sent(
    server: LiveServer, account: Account, path: str, body: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    _, base = make_charger(server, account)
    with server.client(account) as api:
        response = api.post(f"{base}/{path}", json=body)
    assert (response.status_code, response.json()["errors"]) == (422, errors)


def test_a_charger_that_is_not_connected_is_409(server: LiveServer, account: Account) -> None:
    _, base = make_charger(server, account)
    with server.client(account) as api:
        response = api.post(f"{base}/unlock", json={"connector_id": 1})
    assert (response.status_code, response.json()) == (409, {"message": "The charger is offline."})


def test_a_call_error_from_the_charger_is_a_502(server: LiveServer, account: Account) -> None:
    """A charger without a handler answers CALLERROR NotImplemented."""
    identity, base = make_charger(server, account)

    async def body(api: httpx.AsyncClient) -> httpx.Response:
        async with connected(server, identity, ChargePoint):
            return await api.post(f"{base}/unlock", json={"connector_id": 1})

    response = scenario(server, account, body)
    assert response.status_code == 502
    assert response.json()["message"].startswith("The charger answered NotImplemented")


def test_a_charger_that_never_answers_is_a_504(
    fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """DESIGN: no answer in time -> 504 {"message":"The charger did not respond in time."} (timeout is a setting)."""
    with dedicated_server(fresh_database, tmp_path_factory, "sqlite", ocpp_call_timeout=0.5) as server:
        account = server.account()
        identity, base = make_charger(server, account)

        async def body(api: httpx.AsyncClient) -> httpx.Response:
            async with connected(server, identity, SilentCharger):
                return await api.post(f"{base}/unlock", json={"connector_id": 1})

        response = scenario(server, account, body)
    assert (response.status_code, response.json()) == (504, {"message": "The charger did not respond in time."})
