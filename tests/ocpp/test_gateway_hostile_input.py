"""Input a database or Python cannot hold, over a real socket: NUL text, deep nesting, out-of-range timestamps.

DESIGN "Durability": text the database cannot store (NUL) is replaced with U+FFFD and logged,
identically on both backends, so a StopTransaction is always accepted. OCPP-J 1.6 §4.2.3: a
frame or payload the CSMS cannot take gets a CALLERROR, never InternalError, and the socket
stays open.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import (
    BOOT,
    TIMESTAMP,
    Raw,
    charger_row,
    connector_rows,
    frame_rows,
    log_rows,
    open_charger,
    run,
    team_charger,
    transaction_rows,
    unique_identity,
)
from voltline.domain.meter_values import unpack_samples
from voltline.services.accounts import Account

NUL = "\x00"
START = {"connectorId": 1, "idTag": f"TAG{NUL}1", "meterStart": 1000, "timestamp": TIMESTAMP}


@pytest.fixture
def identity(api: httpx.Client, account: Account) -> str:
    """A charger of a fresh team."""
    return str(team_charger(api, account)["identity"])


def answers(server: LiveServer, identity: str, frames: list[str]) -> list[list[Any]]:
    """Send each raw frame, read the answer to each (by its position), then check a Heartbeat is answered."""

    async def scenario() -> list[list[Any]]:
        async with open_charger(server, identity, max_size=None) as ws:
            got = []
            for frame in frames:
                await ws.send(frame)
                got.append(json.loads(await ws.recv()))
            peer = Raw(ws)
            assert (await peer.call("Heartbeat", {}))[0] == 3
            return got

    received: list[list[Any]] = run(scenario())
    return received


def call(message_id: str, action: str, payload: dict[str, Any]) -> str:
    """A CALL frame; Python's JSON writes a NUL as the escape `\\u0000`."""
    return json.dumps([2, message_id, action, payload])


def test_nul_in_charger_text_is_stored_as_u_fffd_and_every_call_is_answered(
    server: LiveServer, identity: str, caplog: pytest.LogCaptureFixture
) -> None:
    """DESIGN "Durability": NUL becomes U+FFFD on both backends; the transaction with such a tag stops."""
    caplog.set_level(logging.WARNING, logger="voltline.ocpp")
    status = {"connectorId": 1, "errorCode": "OtherError", "status": "Faulted", "info": f"hot{NUL}", "vendorId": NUL}
    meter = {"connectorId": 1, "meterValue": [{"timestamp": TIMESTAMP, "sampledValue": [{"value": f"5{NUL}"}]}]}
    frames = [
        call("boot", "BootNotification", {**BOOT, "chargePointVendor": f"Al{NUL}fen", "firmwareVersion": NUL * 3}),
        call("status", "StatusNotification", status),
        call("auth", "Authorize", {"idTag": f"TAG{NUL}1"}),
        call("start", "StartTransaction", START),
        call("meter", "MeterValues", meter),
        call("data", "DataTransfer", {"vendorId": f"v{NUL}", "messageId": NUL, "data": f"{NUL}d"}),
    ]
    got = answers(server, identity, frames)
    names = ("boot", "status", "auth", "start", "meter", "data")
    assert [(frame[0], frame[1]) for frame in got] == [(3, name) for name in names]
    transaction_id = got[3][2]["transactionId"]
    stop = {"transactionId": transaction_id, "idTag": f"TAG{NUL}1", "meterStop": 2000, "timestamp": TIMESTAMP}
    assert answers(server, identity, [call("stop", "StopTransaction", stop)])[0][0] == 3

    row = charger_row(server, identity)
    assert (row["vendor"], row["firmware_version"]) == ("Al\ufffdfen", "\ufffd" * 3)
    assert connector_rows(server, row["id"])[0]["error_info"] == "hot\ufffd"
    [transaction] = transaction_rows(server, row["id"])
    assert transaction["id_tag"] == "TAG\ufffd1" and transaction["stopped_at"] is not None
    assert [sample.value for sample in unpack_samples(frame_rows(server, row["id"])[0]["samples"])] == ["5\ufffd"]
    assert "\x00" not in json.dumps([dict(entry) for entry in log_rows(server, row["id"])], default=str)
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{identity}: NUL replaced")]
    assert f"{identity}: NUL replaced by U+FFFD in BootNotification $.chargePointVendor, $.firmwareVersion" in warnings
    assert len(warnings) == 7  # once per frame


def test_nul_in_a_message_id_or_action_is_replaced_and_answered(server: LiveServer, identity: str) -> None:
    """The message log keeps what it can store; the answer carries the id as the log holds it."""
    got = answers(server, identity, [call(f"h{NUL}", "Heartbeat", {}), call("u", f"Un{NUL}", {})])
    assert (got[0][0], got[0][1]) == (3, "h\ufffd")
    assert got[1][:3] == [4, "u", "NotImplemented"]
    logged = {(entry["message_id"], entry["action"]) for entry in log_rows(server, charger_row(server, identity)["id"])}
    assert ("u", "Un\ufffd") in logged


DEPTH = 100_000


@pytest.mark.parametrize(
    ("frame", "answer"),
    [
        ('[2,"deep","DataTransfer",{"vendorId":"v","data":' + "[" * DEPTH + "]" * DEPTH + "}]",
         [4, "deep", "FormationViolation", "Frame nested too deeply", {}]),
        ('[2,"deep","Heartbeat",' + "{" + '"a":{' * 40_000 + "}" * 40_000 + "}]",  # within the 256 KiB frame cap
         [4, "deep", "FormationViolation", "Frame nested too deeply", {}]),
        ('[2,"deep","DataTransfer",{"vendorId":"v","data":' + "[" * 500 + "]" * 500 + "}]",
         [4, "deep", "TypeConstraintViolation", "Expected `str | null`, got `array` - at `$.data`", {}]),
    ],
)  # fmt: skip
def test_a_frame_nested_beyond_the_decoder_gets_a_callerror_and_the_socket_stays_open(
    server: LiveServer, identity: str, frame: str, answer: list[Any]
) -> None:
    """OCPP-J 1.6 §4.2.3: a CALL the CSMS cannot read is answered FormationViolation, never a dropped socket."""
    assert answers(server, identity, [frame]) == [answer]


def test_frames_nested_too_deeply_without_a_call_are_dropped_and_the_socket_stays_open(
    server: LiveServer, identity: str
) -> None:
    """DESIGN: a frame nobody can answer (no CALL message id) is logged and dropped."""
    nested = "[" * DEPTH + "]" * DEPTH
    frames = [nested, '[3,"r",{"a":' + nested + "}]", '[9,"x",' + nested + "]"]

    async def scenario() -> list[Any]:
        async with open_charger(server, identity) as ws:
            for frame in frames:
                await ws.send(frame)
            peer = Raw(ws)
            return await peer.call("Heartbeat", {})

    assert run(scenario())[0] == 3


DATED_CALLS = {
    "MeterValues": lambda t: {"connectorId": 1, "meterValue": [{"timestamp": t, "sampledValue": [{"value": "1"}]}]},
    "StartTransaction": lambda t: {**START, "idTag": "T", "timestamp": t},
    "StopTransaction": lambda t: {"transactionId": 7, "meterStop": 1, "timestamp": t},
    "StopTransaction.transactionData": lambda t: {
        "transactionId": 7,
        "meterStop": 1,
        "timestamp": TIMESTAMP,
        "transactionData": [{"timestamp": t, "sampledValue": [{"value": "1"}]}],
    },
    "StatusNotification": lambda t: {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": t},
}


@pytest.mark.parametrize("where", sorted(DATED_CALLS))
@pytest.mark.parametrize(
    "timestamp",
    ["0000-01-01T00:00:00Z", "2025-02-30T00:00:00Z", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+00:30"],
)
def test_a_timestamp_python_cannot_hold_is_a_property_violation_in_every_dated_call(
    server: LiveServer, identity: str, where: str, timestamp: str
) -> None:
    """OCPP-J 1.6 §4.2.3: RFC 3339 allows year 0 and the pattern allows 30 February; both are CALLERRORs."""
    action = where.split(".", maxsplit=1)[0]
    [answer] = answers(server, identity, [call("t", action, DATED_CALLS[where](timestamp))])
    assert answer[:3] == [4, "t", "PropertyConstraintViolation"]
    assert "Expected a calendar date-time in years 1-9999" in answer[3]


def test_register_readings_from_year_1_and_from_now_are_stored_and_the_writer_goes_on(
    server: LiveServer, identity: str
) -> None:
    """R-94 keeps late readings; year 1 is one. The writer looks a day back from it and spreads centuries (R-98)."""

    def meter(timestamp: str, wh: int) -> str:
        sample = {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
        return call(
            timestamp,
            "MeterValues",
            {"connectorId": 1, "meterValue": [{"timestamp": timestamp, "sampledValue": [sample]}]},
        )

    got = answers(server, identity, [meter("0001-01-01T00:00:00Z", 1000), meter(TIMESTAMP, 9832)])
    assert [frame[0] for frame in got] == [3, 3]
    stored = frame_rows(server, charger_row(server, identity)["id"])  # flushes the writer first
    assert [row["timestamp"].year for row in stored] == [1, 2025]


@pytest.mark.parametrize("identity", ["CP%00", "%00", "a%00b%00c"])
def test_an_identity_with_a_nul_is_refused_at_upgrade_like_any_unknown_one(server: LiveServer, identity: str) -> None:
    """DESIGN "OCPP": unknown identities are refused at upgrade; a NUL one used to reach PostgreSQL and answer 500."""

    async def status_of(path: str) -> int:
        with pytest.raises(InvalidStatus) as refused:
            async with open_charger(server, path):
                pass
        return int(refused.value.response.status_code)

    unknown = run(status_of(unique_identity("NOPE")))
    assert run(status_of(identity)) == unknown < 500
