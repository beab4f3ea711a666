"""The simulated charger answers every CSMS-initiated 1.6 call with a schema-valid response.

Each scenario ends with `violations == []`: every frame both ways passed the OCA 1.6 schemas.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.simulator import CentralSystem, run, sampled, station
from voltline.simulator import SimulatedCharger

TX_PROFILE = {
    "chargingProfileId": 7,
    "stackLevel": 1,
    "chargingProfilePurpose": "TxProfile",
    "chargingProfileKind": "Relative",
    "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 8.0}]},
}


def default_profile(limit: float, unit: str = "A", profile_id: int = 2000, purpose: str = "TxDefaultProfile") -> Any:
    return {
        "chargingProfileId": profile_id,
        "stackLevel": 0,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": unit, "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]},
    }


async def start(csms: CentralSystem, cp: SimulatedCharger, connector: int | None = 1, **extra: Any) -> int:
    payload = {"idTag": "TAG1", **({"connectorId": connector} if connector else {}), **extra}
    assert await csms.result(cp.identity, "RemoteStartTransaction", payload) == {"status": "Accepted"}
    number = connector or 1
    return int(await csms.until(lambda: cp.transactions.get(number)))


async def answer(csms: CentralSystem, cp: SimulatedCharger, action: str, payload: dict[str, Any]) -> Any:
    return await csms.result(cp.identity, action, payload)


def after(sequence: list[str], first: str, then: str) -> bool:
    """True when `then` occurs after `first` in the frame sequence."""
    return then in sequence[sequence.index(first) + 1 :]


def test_remote_start_uses_the_given_connector_or_the_first_free_one() -> None:
    async def scenario() -> None:
        async with station("CP-RS") as (csms, cp):
            await start(csms, cp, 2)
            await start(csms, cp, None)
            starts = csms.calls("StartTransaction")
            assert [(s["connectorId"], s["idTag"]) for s in starts] == [(2, "TAG1"), (1, "TAG1")]
            assert csms.calls("Authorize") == []
            for payload in ({"idTag": "TAG1"}, {"idTag": "TAG1", "connectorId": 1}, {"idTag": "T", "connectorId": 5}):
                assert await answer(csms, cp, "RemoteStartTransaction", payload) == {"status": "Rejected"}
            assert after(csms.sequence(), "cp:result:RemoteStartTransaction", "cp:StartTransaction")

    run(scenario)


def test_remote_start_with_a_tx_profile_limits_the_transaction_and_may_authorize_first() -> None:
    """§2.1: RemoteStartTransaction may carry a TxProfile bound to the new transaction."""

    async def scenario() -> None:
        async with station("CP-RSP") as (csms, cp):
            change = {"key": "AuthorizeRemoteTxRequests", "value": "true"}
            assert await answer(csms, cp, "ChangeConfiguration", change) == {"status": "Accepted"}
            await start(csms, cp, 1, chargingProfile=TX_PROFILE)
            assert cp.limits[1] == 8.0
            assert csms.calls("Authorize") == [{"idTag": "TAG1"}]
            wrong = {"idTag": "TAG1", "connectorId": 2, "chargingProfile": default_profile(8.0)}
            assert await answer(csms, cp, "RemoteStartTransaction", wrong) == {"status": "Rejected"}

    run(scenario)


def test_remote_stop_stops_an_active_transaction_and_rejects_unknown_ids() -> None:
    async def scenario() -> None:
        async with station("CP-STOP-R") as (csms, cp):
            tx_id = await start(csms, cp)
            assert await answer(csms, cp, "RemoteStopTransaction", {"transactionId": tx_id + 99}) == {
                "status": "Rejected"
            }
            assert await answer(csms, cp, "RemoteStopTransaction", {"transactionId": tx_id}) == {"status": "Accepted"}
            await csms.until(lambda: csms.statuses(1)[-1] == "Available")
            stop = csms.calls("StopTransaction")[0]
            assert (stop["transactionId"], stop["reason"]) == (tx_id, "Remote")
            assert csms.statuses(1)[-3:] == ["Charging", "Finishing", "Available"]
            assert cp.transactions == {}

    run(scenario)


@pytest.mark.parametrize(("kind", "reason"), [("Soft", "SoftReset"), ("Hard", "HardReset")])
def test_reset_stops_transactions_reconnects_and_boots_again(kind: str, reason: str) -> None:
    async def scenario() -> None:
        async with station(f"CP-RESET-{kind}") as (csms, cp):
            tx_id = await start(csms, cp)
            assert await answer(csms, cp, "Reset", {"type": kind}) == {"status": "Accepted"}
            await csms.until(lambda: len(csms.calls("BootNotification")) == 2)
            await csms.until(lambda: cp.connection_state == "accepted")
            stop = csms.calls("StopTransaction")[0]
            assert (stop["transactionId"], stop["reason"]) == (tx_id, reason)
            sequence = csms.sequence()
            assert after(sequence, "cp:result:Reset", "cp:StopTransaction")
            assert after(sequence, "cp:StopTransaction", "cp:BootNotification")
            assert cp.counters.connects == 2

    run(scenario)


def test_unlock_connector_unlocks_and_stops_its_transaction_but_not_connector_zero() -> None:
    async def scenario() -> None:
        async with station("CP-UNLOCK") as (csms, cp):
            tx_id = await start(csms, cp)
            for connector, status in ((0, "NotSupported"), (3, "NotSupported"), (2, "Unlocked"), (1, "Unlocked")):
                assert await answer(csms, cp, "UnlockConnector", {"connectorId": connector}) == {"status": status}
            await csms.until(lambda: csms.calls("StopTransaction"))
            stops = [(p["transactionId"], p["reason"]) for p in csms.calls("StopTransaction")]
            assert stops == [(tx_id, "UnlockCommand")]

    run(scenario)


def test_change_availability_of_an_idle_connector_is_accepted_and_reported() -> None:
    async def scenario() -> None:
        async with station("CP-AVAIL") as (csms, cp):
            inoperative = {"connectorId": 2, "type": "Inoperative"}
            assert await answer(csms, cp, "ChangeAvailability", inoperative) == {"status": "Accepted"}
            await csms.until(lambda: csms.statuses(2)[-1] == "Unavailable")
            start_on_2 = {"idTag": "TAG1", "connectorId": 2}
            assert await answer(csms, cp, "RemoteStartTransaction", start_on_2) == {"status": "Rejected"}
            operative = {"connectorId": 2, "type": "Operative"}
            assert await answer(csms, cp, "ChangeAvailability", operative) == {"status": "Accepted"}
            await csms.until(lambda: csms.statuses(2)[-1] == "Available")
            unknown = {"connectorId": 9, "type": "Operative"}
            assert await answer(csms, cp, "ChangeAvailability", unknown) == {"status": "Rejected"}
            whole = {"connectorId": 0, "type": "Inoperative"}
            assert await answer(csms, cp, "ChangeAvailability", whole) == {"status": "Accepted"}
            await csms.until(lambda: [csms.statuses(n)[-1] for n in (0, 1, 2)] == ["Unavailable"] * 3)

    run(scenario)


def test_change_availability_during_a_transaction_is_scheduled_until_it_ends() -> None:
    async def scenario() -> None:
        async with station("CP-SCHED") as (csms, cp):
            tx_id = await start(csms, cp)
            inoperative = {"connectorId": 1, "type": "Inoperative"}
            assert await answer(csms, cp, "ChangeAvailability", inoperative) == {"status": "Scheduled"}
            await asyncio.sleep(0.1)
            assert csms.statuses(1)[-1] == "Charging"
            await answer(csms, cp, "RemoteStopTransaction", {"transactionId": tx_id})
            await csms.until(lambda: csms.statuses(1)[-1] == "Unavailable")
            assert csms.statuses(1)[-3:] == ["Charging", "Finishing", "Unavailable"]

    run(scenario)


@pytest.mark.parametrize(
    "message",
    [
        "BootNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
    ],
)
def test_trigger_message_is_accepted_and_the_message_follows_the_response(message: str) -> None:
    async def scenario() -> None:
        async with station(f"CP-TRIG-{message}") as (csms, cp):
            tx_id = await start(csms, cp)
            before = len(csms.calls(message))
            payload = {"requestedMessage": message, "connectorId": 1}
            assert await answer(csms, cp, "TriggerMessage", payload) == {"status": "Accepted"}
            await csms.until(lambda: len(csms.calls(message)) > before)
            assert after(csms.sequence(), "cp:result:TriggerMessage", f"cp:{message}")
            if message == "MeterValues":
                triggered = [
                    p
                    for p in csms.calls("MeterValues")
                    if p["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
                ]
                assert triggered[0]["transactionId"] == tx_id
                assert ("Energy.Active.Import.Register", None) in sampled(triggered[0])
            if message == "StatusNotification":
                assert csms.calls("StatusNotification")[-1]["status"] == "Charging"

    run(scenario)


def test_trigger_message_rejects_unknown_connectors_and_knows_no_other_messages() -> None:
    async def scenario() -> None:
        async with station("CP-TRIG-X") as (csms, cp):
            bad = {"requestedMessage": "Heartbeat", "connectorId": 9}
            assert await answer(csms, cp, "TriggerMessage", bad) == {"status": "Rejected"}
            other = {"requestedMessage": "SignChargePointCertificate"}
            assert await csms.result(cp.identity, "TriggerMessage", other, validate=False) == {
                "status": "NotImplemented"
            }

    run(scenario)


def test_get_configuration_lists_the_smart_charging_keys_and_unknown_keys() -> None:
    """spec/smart-charging.md R-17: the keys a CSMS reads at boot."""

    async def scenario() -> None:
        async with station("CP-GETCONF", connectors=2, meter_interval=0.1) as (csms, cp):
            everything = await answer(csms, cp, "GetConfiguration", {})
            keys = {k["key"]: (k["value"], k["readonly"]) for k in everything["configurationKey"]}
            assert keys["ChargingScheduleAllowedChargingRateUnit"] == ("Current,Power", True)
            assert keys["ChargeProfileMaxStackLevel"] == ("8", True)
            assert keys["ChargingScheduleMaxPeriods"] == ("24", True)
            assert keys["MaxChargingProfilesInstalled"] == ("32", True)
            assert keys["NumberOfConnectors"] == ("2", True)
            assert keys["HeartbeatInterval"] == ("60", False)
            assert keys["MeterValueSampleInterval"] == ("0.1", False)
            assert "unknownKey" not in everything
            some = await answer(csms, cp, "GetConfiguration", {"key": ["HeartbeatInterval", "NoSuchKey"]})
            assert some == {
                "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "60"}],
                "unknownKey": ["NoSuchKey"],
            }

    run(scenario)


def test_change_configuration_applies_writable_keys_and_refuses_the_rest() -> None:
    async def scenario() -> None:
        async with station("CP-SETCONF") as (csms, cp):
            cases = [
                ("NumberOfConnectors", "3", "Rejected"),
                ("NoSuchKey", "1", "NotSupported"),
                ("HeartbeatInterval", "soon", "Rejected"),
                ("MeterValuesSampledData", "Energy.Active.Import.Register,Bogus", "Rejected"),
                ("MeterValuesSampledData", "Energy.Active.Import.Register,SoC", "Accepted"),
                ("MeterValueSampleInterval", "0.05", "Accepted"),
            ]
            for key, value, status in cases:
                assert await answer(csms, cp, "ChangeConfiguration", {"key": key, "value": value}) == {"status": status}
            read = await answer(csms, cp, "GetConfiguration", {"key": ["MeterValueSampleInterval"]})
            assert read["configurationKey"][0]["value"] == "0.05"
            await start(csms, cp)
            await csms.until(lambda: len(csms.calls("MeterValues")) >= 3)
            assert set(sampled(csms.calls("MeterValues")[-1])) == {
                ("Energy.Active.Import.Register", None),
                ("SoC", None),
            }

    run(scenario)


def test_set_charging_profile_follows_the_purpose_rules_and_units() -> None:
    """§2.3: ChargePointMax only on 0, no TxProfile without a transaction; R-16: W -> A with 230 V."""

    async def scenario() -> None:
        async with station("CP-SETPROF", phases=3) as (csms, cp):
            cp_max_on_1 = {
                "connectorId": 1,
                "csChargingProfiles": default_profile(16.0, purpose="ChargePointMaxProfile"),
            }
            tx_without = {"connectorId": 1, "csChargingProfiles": TX_PROFILE}
            watts = {"connectorId": 0, "csChargingProfiles": default_profile(11_000.0, unit="W")}
            assert await answer(csms, cp, "SetChargingProfile", cp_max_on_1) == {"status": "Rejected"}
            assert await answer(csms, cp, "SetChargingProfile", tx_without) == {"status": "Rejected"}
            assert await answer(csms, cp, "SetChargingProfile", watts) == {"status": "Accepted"}
            assert cp.limits == {1: 15.9, 2: 15.9}
            await start(csms, cp)
            tx_profile = {"connectorId": 1, "csChargingProfiles": TX_PROFILE}
            assert await answer(csms, cp, "SetChargingProfile", tx_profile) == {"status": "Accepted"}
            assert cp.limits == {1: 8.0, 2: 15.9}

    run(scenario)


def test_clear_charging_profile_by_id_or_purpose_and_unknown_when_nothing_matches() -> None:
    async def scenario() -> None:
        async with station("CP-CLEAR") as (csms, cp):
            for profile_id, limit in ((1, 10.0), (2, 12.0)):
                payload = {
                    "connectorId": profile_id,
                    "csChargingProfiles": default_profile(limit, profile_id=profile_id),
                }
                assert await answer(csms, cp, "SetChargingProfile", payload) == {"status": "Accepted"}
            assert cp.limits == {1: 10.0, 2: 12.0}
            assert await answer(csms, cp, "ClearChargingProfile", {"id": 1}) == {"status": "Accepted"}
            assert await answer(csms, cp, "ClearChargingProfile", {"id": 1}) == {"status": "Unknown"}
            await csms.until(lambda: cp.limits == {1: None, 2: 12.0})
            by_purpose = {"chargingProfilePurpose": "TxDefaultProfile"}
            assert await answer(csms, cp, "ClearChargingProfile", by_purpose) == {"status": "Accepted"}
            assert await answer(csms, cp, "ClearChargingProfile", {}) == {"status": "Unknown"}
            await csms.until(lambda: cp.limits == {1: None, 2: None})

    run(scenario)


def test_get_composite_schedule_returns_the_effective_limits() -> None:
    async def scenario() -> None:
        async with station("CP-COMPOSITE", max_current=32) as (csms, cp):
            payload = {"connectorId": 0, "csChargingProfiles": default_profile(16.0)}
            assert await answer(csms, cp, "SetChargingProfile", payload) == {"status": "Accepted"}
            result = await answer(csms, cp, "GetCompositeSchedule", {"connectorId": 1, "duration": 3600})
            assert list(result) == ["status", "connectorId", "scheduleStart", "chargingSchedule"]
            assert (result["status"], result["connectorId"]) == ("Accepted", 1)
            schedule = result["chargingSchedule"]
            assert schedule["chargingRateUnit"] == "A"
            assert schedule["duration"] == 3600
            assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 16.0}]
            watts = {"connectorId": 2, "duration": 60, "chargingRateUnit": "W"}
            in_watts = await answer(csms, cp, "GetCompositeSchedule", watts)
            assert in_watts["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 11_040.0}]
            unknown = {"connectorId": 7, "duration": 60}
            assert await answer(csms, cp, "GetCompositeSchedule", unknown) == {"status": "Rejected"}

    run(scenario)


@pytest.mark.parametrize(
    ("action", "payload", "response"),
    [
        ("ClearCache", {}, {"status": "Accepted"}),
        ("DataTransfer", {"vendorId": "x"}, {"status": "UnknownVendorId"}),
        ("DataTransfer", {"vendorId": "org.voltline.simulator", "messageId": "Nope"}, {"status": "UnknownMessageId"}),
        (
            "DataTransfer",
            {"vendorId": "org.voltline.simulator", "messageId": "Echo", "data": "ping"},
            {"status": "Accepted", "data": "ping"},
        ),
        ("GetLocalListVersion", {}, {"listVersion": 0}),
        ("SendLocalList", {"listVersion": 0, "updateType": "Differential"}, {"status": "VersionMismatch"}),
        ("SendLocalList", {"listVersion": 1, "updateType": "Full"}, {"status": "Accepted"}),
        (
            "ReserveNow",
            {"connectorId": 7, "expiryDate": "2030-01-01T00:00:00Z", "idTag": "T", "reservationId": 1},
            {"status": "Rejected"},
        ),
        ("CancelReservation", {"reservationId": 1}, {"status": "Rejected"}),
        ("GetDiagnostics", {"location": "ftp://example.com/"}, {}),
        (
            "GetLog",
            {"logType": "SecurityLog", "requestId": 7, "log": {"remoteLocation": "ftp://example.com/"}},
            {"status": "Accepted", "filename": "CP-GetLog-security.txt"},
        ),
        ("UpdateFirmware", {"location": "ftp://example.com/fw", "retrieveDate": "2030-01-01T00:00:00Z"}, {}),
    ],
)
def test_other_core_calls_get_schema_valid_answers(action: str, payload: Any, response: Any) -> None:
    async def scenario() -> None:
        async with station(f"CP-{action}") as (csms, cp):
            assert await answer(csms, cp, action, payload) == response

    run(scenario)


def test_unknown_actions_and_malformed_payloads_get_call_errors() -> None:
    """OCPP-J 1.6 §4.2.3: NotImplemented for unknown actions; occurrence and type violations by name."""

    async def scenario() -> None:
        async with station("CP-ERRORS") as (csms, cp):
            cases = [
                ("GetInstalledCertificateIds", {"certificateType": "CentralSystemRootCertificate"}, "NotImplemented"),
                ("Reset", {}, "OccurenceConstraintViolation"),
                ("Reset", {"type": 1}, "TypeConstraintViolation"),
                ("Reset", {"type": "Warm"}, "PropertyConstraintViolation"),
                ("RemoteStopTransaction", {"transactionId": True}, "TypeConstraintViolation"),
                (
                    "SetChargingProfile",
                    {"connectorId": 1, "csChargingProfiles": {"chargingSchedule": {}}},
                    "FormationViolation",
                ),
            ]
            for action, payload, code in cases:
                assert await csms.call(cp.identity, action, payload, validate=False) == ("error", code)
            assert cp.connection_state == "accepted"

    run(scenario)


def test_reject_zero_amp_refuses_a_profile_whose_limit_is_zero() -> None:
    async def scenario() -> None:
        async with station("CP-NOZERO", reject_zero_amp=True) as (csms, cp):
            zero = {"connectorId": 0, "csChargingProfiles": default_profile(0.0)}
            six = {"connectorId": 0, "csChargingProfiles": default_profile(6.0)}
            assert await answer(csms, cp, "SetChargingProfile", zero) == {"status": "Rejected"}
            assert await answer(csms, cp, "SetChargingProfile", six) == {"status": "Accepted"}
            assert cp.limits == {1: 6.0, 2: 6.0}

    run(scenario)


def test_reject_profiles_refuses_every_profile() -> None:
    async def scenario() -> None:
        async with station("CP-NOPROF", reject_profiles=True) as (csms, cp):
            six = {"connectorId": 0, "csChargingProfiles": default_profile(6.0)}
            assert await answer(csms, cp, "SetChargingProfile", six) == {"status": "Rejected"}
            assert cp.limits == {1: None, 2: None}

    run(scenario)


def test_ignore_calls_never_answers_the_central_system() -> None:
    async def scenario() -> None:
        async with station("CP-DEAF", ignore_calls=True) as (csms, cp):
            with pytest.raises(TimeoutError):
                await csms.call(cp.identity, "Reset", {"type": "Soft"}, timeout=0.3)
            assert cp.counters.received >= 1

    run(scenario)
