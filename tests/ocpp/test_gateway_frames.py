"""Bad frames over a real socket: each gets the right CALLERROR (or is dropped) and the socket stays open."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, update

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import BOOT, Raw, charger_row, log_rows, open_charger, run, team_charger
from voltline.services.accounts import Account
from voltline.store.schema import chargers


def exchange(server: LiveServer, identity: str, frames: list[str], then: tuple[str, dict[str, Any]]) -> list[Any]:
    """Send raw frames, then a valid CALL; returns every frame received, the last answering the CALL."""

    async def scenario() -> list[Any]:
        async with open_charger(server, identity) as ws:
            for frame in frames:
                await ws.send(frame)
            await ws.send(json.dumps([2, "last", *then]))
            received = []
            while not received or received[-1][1] != "last":
                received.append(json.loads(await ws.recv()))
            return received

    result: list[Any] = run(scenario())
    return result


def errors_for(server: LiveServer, identity: str, frames: list[str]) -> list[tuple[str, str]]:
    """The (message id, error code) of each CALLERROR the frames got, before a final Heartbeat is answered."""
    received = exchange(server, identity, frames, ("Heartbeat", {}))
    assert received[-1][0] == 3 and list(received[-1][2]) == ["currentTime"]
    return [(frame[1], frame[2]) for frame in received[:-1] if frame[0] == 4]


@pytest.fixture
def identity(api: httpx.Client, account: Account) -> str:
    """A charger of a fresh team."""
    return str(team_charger(api, account)["identity"])


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('[2,"a","Unheard",{}]', "NotImplemented"),
        ('[2,"a","Reset",{"type":"Hard"}]', "NotSupported"),
        ('[2,"a","BootNotification",{"chargePointVendor":"V"}]', "OccurenceConstraintViolation"),
        ('[2,"a","StatusNotification",{"connectorId":"1","errorCode":"NoError","status":"Available"}]',
         "TypeConstraintViolation"),
        ('[2,"a","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Sleeping"}]',
         "PropertyConstraintViolation"),
        ('[2,"a","Heartbeat",{"extra":1}]', "FormationViolation"),
        ('[2,"a","Heartbeat",[]]', "FormationViolation"),
        ('[2,"a","Heartbeat"]', "FormationViolation"),
        ('[2,"' + "x" * 37 + '","Heartbeat",{}]', "FormationViolation"),
        ('[7,"a","Heartbeat",{}]', "FormationViolation"),
        ('[2,"a","StatusNotification",{"connectorId":4294967296,"errorCode":"NoError","status":"Available"}]',
         "PropertyConstraintViolation"),
        ('[2,"a","MeterValues",{"connectorId":-1,"meterValue":[{"timestamp":"2025-03-31T12:00:00Z",'
         '"sampledValue":[{"value":"1"}]}]}]', "PropertyConstraintViolation"),
    ],
)  # fmt: skip
def test_each_bad_call_gets_its_callerror_and_the_socket_stays_open(
    server: LiveServer, identity: str, frame: str, code: str
) -> None:
    """OCPP-J 1.6 §4.2.3 and DESIGN: bad payloads get a CALLERROR, the socket stays open."""
    errors = errors_for(server, identity, [frame])
    assert [error_code for _, error_code in errors] == [code]


def test_a_callerror_has_the_ocpp_j_shape(server: LiveServer, identity: str) -> None:
    """OCPP-J 1.6 §4.2.3: [4, messageId, errorCode, errorDescription, errorDetails]."""
    received = exchange(server, identity, ['[2,"q","Unheard",{}]'], ("Heartbeat", {}))
    assert received[0] == [4, "q", "NotImplemented", "Unknown action 'Unheard'", {}]


def test_a_burst_of_malformed_frames_is_dropped_and_a_valid_call_still_answered(
    server: LiveServer, identity: str
) -> None:
    """DESIGN: a frame that is not a JSON array with a message id is logged and dropped."""
    garbage = ["not json", "{}", "[]", "42", '"text"', "[2]", "[2, 17]", '{"a": [2,"x"]}', "[", "null"] * 20
    answered_calls = ['[3,"nothing-outstanding",{}]', '[4,"nothing","GenericError","",{}]']
    assert errors_for(server, identity, garbage + answered_calls) == []


def test_a_lenient_charger_gets_known_bad_payloads_accepted(
    server: LiveServer, identity: str, api: httpx.Client, account: Account
) -> None:
    """DESIGN: lenient mode accepts unknown fields, over-long strings and numeric strings."""
    bad_boot = {**BOOT, "chargePointModel": "M" * 30, "unknownField": True}
    strict = exchange(server, identity, [], ("BootNotification", bad_boot))
    assert strict[-1][2] == "PropertyConstraintViolation"

    async def lenient() -> None:
        async with server.runtime.db.write() as conn:
            await conn.execute(update(chargers).where(chargers.c.identity == identity).values(lenient=True))

    server.run(lenient)
    status = {"connectorId": "1", "errorCode": "NoError", "status": "Available"}
    frames = [json.dumps([2, "s", "StatusNotification", status])]
    received = exchange(server, identity, frames, ("BootNotification", bad_boot))
    assert [frame[0] for frame in received] == [3, 3]
    assert charger_row(server, identity)["model"] == "M" * 20


def test_every_frame_in_and_out_is_logged_except_heartbeat_and_meter_values_payloads(
    server: LiveServer, identity: str
) -> None:
    """DESIGN: VOLTLINE_OCPP_LOG=default keeps every frame except Heartbeat and MeterValues (counted)."""
    meter = {"connectorId": 1, "meterValue": [{"timestamp": "2025-03-31T12:00:00Z", "sampledValue": [{"value": "5"}]}]}
    exchange(
        server,
        identity,
        [
            json.dumps([2, "b", "BootNotification", BOOT]),
            json.dumps([2, "h", "Heartbeat", {}]),
            json.dumps([2, "m", "MeterValues", meter]),
            '[2,"u","Unheard",{}]',
        ],
        ("DataTransfer", {"vendorId": "com.example"}),
    )
    charger_id = charger_row(server, identity)["id"]
    logged = [(r["direction"], r["message_type"], r["message_id"], r["action"]) for r in log_rows(server, charger_id)]
    assert logged == [
        ("in", 2, "b", "BootNotification"),
        ("out", 3, "b", "BootNotification"),
        ("in", 2, "u", "Unheard"),
        ("out", 4, "u", "Unheard"),
        ("in", 2, "last", "DataTransfer"),
        ("out", 3, "last", "DataTransfer"),
    ]
    first = log_rows(server, charger_id)[0]
    assert json.loads(first["payload"]) == BOOT
    assert json.loads(log_rows(server, charger_id)[-1]["payload"]) == {"status": "UnknownVendorId"}


def test_a_handler_that_fails_answers_internal_error_and_the_socket_stays_open(
    server: LiveServer, identity: str
) -> None:
    """STYLE: `except Exception` at the receive loop only; it logs, answers InternalError and goes on."""

    async def scenario() -> list[list[Any]]:
        async with open_charger(server, identity) as ws:
            peer = Raw(ws)
            await peer.result("Heartbeat", {})

            async def forget_charger() -> None:
                async with server.runtime.db.write() as conn:
                    await conn.execute(delete(chargers).where(chargers.c.identity == identity))

            server.run(forget_charger)  # the connector below then refers to a charger that is gone
            status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
            return [await peer.call("StatusNotification", status), await peer.call("Heartbeat", {})]

    failed, answered = run(scenario())
    assert failed[2:] == ["InternalError", "Internal error", {}]
    assert answered[0] == 3
