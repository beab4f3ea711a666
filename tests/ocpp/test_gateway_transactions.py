"""Authorize, StartTransaction, StopTransaction and MeterValues over a real socket, with replays and unknown ids."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import (
    BOOT,
    Raw,
    charger_row,
    frame_rows,
    open_charger,
    run,
    team_charger,
    transaction_rows,
)
from voltline.domain.meter_values import unpack_samples
from voltline.services.accounts import Account

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ocpp"
START = {"connectorId": 1, "idTag": "04A2B3C4D55E80", "meterStart": 5130117, "timestamp": "2024-03-02T08:16:02Z"}
BIG_ID = 9223372036854775807


def session(server: LiveServer, identity: str, calls: list[tuple[str, dict[str, Any]]]) -> list[list[Any]]:
    """Run CALLs in order on one connection; the answer frames."""

    async def scenario() -> list[list[Any]]:
        async with open_charger(server, identity) as ws:
            peer = Raw(ws)
            return [await peer.call(action, payload) for action, payload in calls]

    answers: list[list[Any]] = run(scenario())
    return answers


def results(server: LiveServer, identity: str, calls: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Like `session`, for calls that must all succeed: their CALLRESULT payloads."""
    answers = session(server, identity, calls)
    assert all(frame[0] == 3 for frame in answers), answers
    return [frame[2] for frame in answers]


def fixture_payload(vendor: str, name: str) -> dict[str, Any]:
    """The payload of a recorded vendor CALL."""
    payload: dict[str, Any] = json.loads((FIXTURES / vendor / name).read_text())[3]
    return payload


def add_tag(api: httpx.Client, account: Account, tag: str, **values: Any) -> None:
    """Store an id tag for the team through the API."""
    response = api.post(f"/api/v2/teams/{account.team_id}/id-tags", json={"id_tag": tag, **values})
    assert response.status_code == 201, response.text


def set_mode(api: httpx.Client, account: Account, mode: str) -> None:
    """Set the team's authorization mode through the API."""
    response = api.put(f"/api/v2/teams/{account.team_id}/authorization", json={"authorization_mode": mode})
    assert response.status_code == 200, response.text


@pytest.fixture
def identity(api: httpx.Client, account: Account) -> str:
    """A charger of a fresh team."""
    return str(team_charger(api, account)["identity"])


# ---------------------------------------------------------------- Authorize


def authorize(server: LiveServer, identity: str, tags: list[str]) -> list[dict[str, Any]]:
    """The idTagInfo answered for each tag."""
    return [answer["idTagInfo"] for answer in results(server, identity, [("Authorize", {"idTag": t}) for t in tags])]


def test_accept_all_accepts_unknown_tags_but_not_blocked_or_expired_ones(
    server: LiveServer, api: httpx.Client, account: Account, identity: str
) -> None:
    """DESIGN: accept_all (default) accepts every tag except one stored as Blocked or Expired."""
    add_tag(api, account, "BLOCKED1", status="Blocked")
    add_tag(api, account, "EXPIRED1", status="Expired")
    add_tag(api, account, "PASTDATE", expiry_date="2020-01-01 00:00:00")
    add_tag(api, account, "CHILD1", parent_id_tag="PARENT1", expiry_date="2099-01-01 00:00:00")
    infos = authorize(server, identity, ["ANYONE", "blocked1", "EXPIRED1", "PASTDATE", "CHILD1"])
    assert infos == [
        {"status": "Accepted"},
        {"status": "Blocked"},
        {"status": "Expired"},
        {"status": "Expired", "expiryDate": "2020-01-01T00:00:00.000000Z"},
        {"status": "Accepted", "expiryDate": "2099-01-01T00:00:00.000000Z", "parentIdTag": "PARENT1"},
    ]


def test_allow_list_accepts_only_stored_accepted_unexpired_tags(
    server: LiveServer, api: httpx.Client, account: Account, identity: str
) -> None:
    """DESIGN: allow_list accepts only the team's stored tags; unknown ones are Invalid."""
    set_mode(api, account, "allow_list")
    add_tag(api, account, "GOOD1")
    add_tag(api, account, "BLOCKED2", status="Blocked")
    add_tag(api, account, "OLD1", expiry_date="2020-01-01 00:00:00")
    statuses = [info["status"] for info in authorize(server, identity, ["GOOD1", "STRANGER", "BLOCKED2", "OLD1"])]
    assert statuses == ["Accepted", "Invalid", "Blocked", "Expired"]


# ---------------------------------------------------------------- StartTransaction / StopTransaction


def test_start_transaction_stores_it_and_answers_our_id(server: LiveServer, identity: str) -> None:
    """DESIGN: 1.6 transactionId is our transaction id; answered after commit."""
    _boot, start = results(server, identity, [("BootNotification", BOOT), ("StartTransaction", START)])
    assert list(start) == ["idTagInfo", "transactionId"]
    assert start["idTagInfo"] == {"status": "Accepted"}
    charger = charger_row(server, identity)
    [row] = transaction_rows(server, charger["id"])
    assert row["id"] == start["transactionId"]
    assert row["ocpp_transaction_id"] == str(row["id"])
    assert (row["team_id"], row["site_id"], row["status"]) == (charger["team_id"], None, "active")
    assert (row["connector_number"], row["id_tag"], row["meter_start"]) == (1, "04A2B3C4D55E80", 5130117)
    assert row["started_at"] == datetime(2024, 3, 2, 8, 16, 2)
    assert row["connector_ref"] is not None


def test_start_transaction_replayed_returns_the_same_transaction_id(server: LiveServer, identity: str) -> None:
    """DESIGN: duplicates of StartTransaction are idempotent."""
    growatt = fixture_payload("growatt", "StartTransaction.json")
    answers = results(server, identity, [("StartTransaction", START), ("StartTransaction", growatt)])
    answers += results(server, identity, [("StartTransaction", START), ("StartTransaction", growatt)])
    ids = [answer["transactionId"] for answer in answers]
    assert ids[0] != ids[1] and ids[2:] == ids[:2]
    rows = transaction_rows(server, charger_row(server, identity)["id"])
    assert [row["id"] for row in rows] == ids[:2]
    assert rows[1]["started_at"] == datetime(2026, 1, 5, 4, 50, 7)  # +10:00 read as UTC


def test_stop_transaction_finishes_once_and_keeps_transaction_data(server: LiveServer, identity: str) -> None:
    """DESIGN: a second StopTransaction changes nothing (its transactionData is not stored twice)."""
    [start] = results(server, identity, [("StartTransaction", START)])
    stop = {**fixture_payload("abb", "StopTransaction.json"), "transactionId": start["transactionId"]}
    later = {**stop, "meterStop": 9999999, "reason": "Other", "timestamp": "2025-10-06T00:00:00Z"}
    answers = results(server, identity, [("StopTransaction", stop), ("StopTransaction", later)])
    assert answers == [{"idTagInfo": {"status": "Accepted"}}] * 2
    charger_id = charger_row(server, identity)["id"]
    [row] = transaction_rows(server, charger_id)
    assert (row["status"], row["meter_stop"], row["stop_reason"]) == ("finished", 1187552, "EVDisconnected")
    assert row["stopped_at"] == datetime(2025, 10, 5, 5, 12, 3)
    frames = frame_rows(server, charger_id)
    assert [(f["transaction_id"], f["connector_number"]) for f in frames] == [(row["id"], 1)] * 2
    assert [f["timestamp"] for f in frames] == [datetime(2025, 10, 5, 3, 31, 41), datetime(2025, 10, 5, 5, 12, 3)]


def test_stop_without_a_reason_is_local_and_without_an_id_tag_has_no_id_tag_info(
    server: LiveServer, identity: str
) -> None:
    """OCPP 1.6 §6.49: reason may only be omitted when it is Local; idTagInfo answers an idTag."""
    [start] = results(server, identity, [("StartTransaction", START)])
    stop = {"meterStop": 5130200, "timestamp": "2024-03-02T09:00:00Z", "transactionId": start["transactionId"]}
    assert results(server, identity, [("StopTransaction", stop)]) == [{}]
    [row] = transaction_rows(server, charger_row(server, identity)["id"])
    assert (row["stop_reason"], row["meter_stop"]) == ("Local", 5130200)


@pytest.mark.parametrize("transaction_id", [424242, 0, -5, 2**31, BIG_ID])
def test_unknown_transaction_ids_get_a_valid_answer_and_their_data_is_kept(
    server: LiveServer, identity: str, transaction_id: int
) -> None:
    """DESIGN: always answer, also for unknown transaction ids; the readings are kept (transaction_id null)."""
    stop = {**fixture_payload("abb", "StopTransaction.json"), "transactionId": transaction_id}
    meter = {**fixture_payload("abb", "MeterValues.json"), "transactionId": transaction_id}
    answers = results(server, identity, [("StopTransaction", stop), ("MeterValues", meter)])
    assert answers == [{"idTagInfo": {"status": "Accepted"}}, {}]
    frames = frame_rows(server, charger_row(server, identity)["id"])
    assert [(f["transaction_id"], f["connector_number"]) for f in frames] == [(None, 0), (None, 0), (None, 1)]


def test_another_chargers_transaction_id_is_unknown_here(server: LiveServer, identity: str) -> None:
    """Readings never join a transaction of another charger (tenancy: it may be another team's)."""
    stranger = server.account()
    with server.client(stranger) as client:
        other = str(team_charger(client, stranger)["identity"])
    [start] = results(server, other, [("StartTransaction", START)])
    stop = {"meterStop": 1, "timestamp": "2024-03-02T09:00:00Z", "transactionId": start["transactionId"]}
    assert results(server, identity, [("StopTransaction", stop)]) == [{}]
    [row] = transaction_rows(server, charger_row(server, other)["id"])
    assert row["status"] == "active"


def test_meter_values_are_stored_raw_and_normalised_after_the_ack(server: LiveServer, identity: str) -> None:
    """DESIGN: MeterValues acknowledged after enqueue to the batched writer; samples raw and normalised."""
    [start] = results(server, identity, [("StartTransaction", START)])
    meter = {
        "connectorId": 1,
        "transactionId": start["transactionId"],
        "meterValue": [
            {
                "timestamp": "2024-03-02T08:20:00Z",
                "sampledValue": [
                    {"value": "5.131234", "unit": "kWh", "measurand": "Energy.Active.Import.Register"},
                    {"value": "16.1", "unit": "A", "measurand": "Current.Import", "phase": "L1"},
                ],
            }
        ],
    }
    assert results(server, identity, [("MeterValues", meter)]) == [{}]
    [frame] = frame_rows(server, charger_row(server, identity)["id"])
    assert (frame["transaction_id"], frame["connector_number"]) == (start["transactionId"], 1)
    assert frame["timestamp"] == datetime(2024, 3, 2, 8, 20)
    samples = [(s.value, s.unit, s.normalised, s.measurand, s.phase) for s in unpack_samples(frame["samples"])]
    assert samples == [
        ("5.131234", "kWh", "5131.234", "Energy.Active.Import.Register", None),
        ("16.1", "A", "16.1", "Current.Import", "L1"),
    ]


def test_a_vendor_payload_with_an_invalid_context_is_refused_and_the_socket_stays_open(
    server: LiveServer, identity: str
) -> None:
    """Alfen's `CurrentMax` context is not in the 1.6 enum: PropertyConstraintViolation, then business as usual."""
    rejected = json.loads((FIXTURES / "alfen" / "rejected" / "MeterValues.current_max.json").read_text())[3]
    answers = session(server, identity, [("MeterValues", rejected), ("Heartbeat", {})])
    assert [answers[0][0], answers[0][2], answers[1][0]] == [4, "PropertyConstraintViolation", 3]


def test_out_of_range_meter_start_is_refused_not_a_crash(server: LiveServer, identity: str) -> None:
    """Integers the schema leaves unbounded must not reach the database beyond its range."""
    answers = session(server, identity, [("StartTransaction", {**START, "meterStart": 2**70}), ("Heartbeat", {})])
    assert [answers[0][0], answers[0][2], answers[1][0]] == [4, "PropertyConstraintViolation", 3]


def test_firmware_and_diagnostics_status_are_stored_and_data_transfer_is_unknown_vendor(
    server: LiveServer, identity: str
) -> None:
    """1.6 FirmwareStatusNotification / DiagnosticsStatusNotification store the state; DataTransfer is logged."""
    vestel = fixture_payload("vestel", "DataTransfer.json")
    answers = results(
        server,
        identity,
        [
            ("FirmwareStatusNotification", {"status": "Downloading"}),
            ("DiagnosticsStatusNotification", {"status": "Uploaded"}),
            ("DataTransfer", vestel),
        ],
    )
    assert answers == [{}, {}, {"status": "UnknownVendorId"}]
    row = charger_row(server, identity)
    assert (row["firmware_status"], row["diagnostics_status"]) == ("Downloading", "Uploaded")
