"""A simulated charger against a tiny central system: boot, sessions, meter values, reconnects.

Every frame, both ways, is validated against the OCA 1.6 JSON schemas (tests.simulator).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import socket
from datetime import datetime
from typing import Any

from tests.simulator import CentralSystem, charger, run, running, sampled
from voltline.simulator import SimulatedCharger
from voltline.simulator.meter import Car

FAST_CAR = Car(max_current=32.0, phases=3, battery_wh=60_000, soc=30.0)

MEASURANDS = [
    ("Energy.Active.Import.Register", None),
    ("Power.Active.Import", None),
    ("Current.Import", "L1"),
    ("Current.Import", "L2"),
    ("Current.Import", "L3"),
    ("Voltage", "L1-N"),
    ("Voltage", "L2-N"),
    ("Voltage", "L3-N"),
    ("Current.Offered", None),
    ("SoC", None),
]


async def remote_start(csms: CentralSystem, cp: SimulatedCharger, connector: int = 1) -> int:
    """Start a transaction on the connector through RemoteStartTransaction; returns its id."""
    answer = await csms.result(cp.identity, "RemoteStartTransaction", {"idTag": "TAG1", "connectorId": connector})
    assert answer == {"status": "Accepted"}
    return int(await csms.until(lambda: cp.transactions.get(connector)))


def register(payload: dict[str, Any]) -> int:
    return int(sampled(payload)[("Energy.Active.Import.Register", None)])


def test_boot_sends_identity_fields_then_status_of_every_connector() -> None:
    """A BootNotification with vendor, model, serial and firmware; StatusNotification for 0, 1 and 2."""

    async def scenario() -> None:
        async with CentralSystem() as csms:
            cp = charger(csms, "CP-BOOT", connectors=2)
            async with running(cp, csms):
                pass
            assert csms.violations == []
            boot = csms.calls("BootNotification")[0]
            assert list(boot) == ["chargePointVendor", "chargePointModel", "chargePointSerialNumber", "firmwareVersion"]
            assert (boot["chargePointVendor"], boot["chargePointModel"]) == ("Voltline", "SimCharger")
            statuses = csms.calls("StatusNotification")[:3]
            assert [(s["connectorId"], s["status"], s["errorCode"]) for s in statuses] == [
                (0, "Available", "NoError"),
                (1, "Available", "NoError"),
                (2, "Available", "NoError"),
            ]
            assert csms.auth_headers == [None]

    run(scenario)


def test_boot_pending_is_retried_after_the_interval_until_accepted() -> None:
    """OCPP 1.6 §4.2: while Pending, the charge point boots again after `interval` seconds."""

    async def scenario() -> None:
        async with CentralSystem(boot_status="Pending", interval=1) as csms:
            cp = charger(csms, "CP-PENDING")
            async with running(cp):
                await csms.until(lambda: cp.connection_state == "pending")
                assert csms.calls("StatusNotification") == []
                csms.boot_status = "Accepted"
                await csms.until(lambda: cp.connection_state == "accepted", timeout=3)
                await csms.until(lambda: len(csms.calls("StatusNotification")) == 3)
            assert len(csms.calls("BootNotification")) == 2
            assert csms.violations == []

    run(scenario)


def test_heartbeats_follow_the_heartbeat_interval() -> None:
    """The interval from the boot result, and HeartbeatInterval changed at run time, apply at once."""

    async def scenario() -> None:
        async with CentralSystem(interval=1) as csms:
            cp = charger(csms, "CP-HEART")
            async with running(cp, csms):
                assert cp.config.heartbeat_interval == 1.0
                answer = await csms.result(
                    cp.identity, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "0.1"}
                )
                assert answer == {"status": "Accepted"}
                await asyncio.sleep(0.55)
            assert 3 <= len(csms.calls("Heartbeat")) <= 7
            assert csms.violations == []

    run(scenario)


def test_a_session_reports_meter_values_and_stops_with_transaction_data() -> None:
    """Preparing, Authorize, StartTransaction, Charging, periodic MeterValues, StopTransaction, Finishing, Available.

    spec/smart-charging.md §8.1 / R-99: meterStop - meterStart is the energy, and equals the meter model's
    increments; the register never decreases.
    """

    async def scenario() -> None:
        async with CentralSystem() as csms:
            options = {"auto_sessions": True, "session_seconds": 0.6, "idle_seconds": 0.1, "cars": lambda rng: FAST_CAR}
            cp = charger(csms, "CP-SESSION", connectors=1, **options)
            conn = cp.connectors[1]
            increments: list[tuple[Any, int]] = []
            original = conn.meter.advance

            def spy(seconds: float) -> int:
                increments.append((conn.transaction, original(seconds)))
                return increments[-1][1]

            conn.meter.advance = spy  # type: ignore[method-assign]
            async with running(cp, csms):
                await csms.until(lambda: csms.calls("StopTransaction"), timeout=3)
                await csms.until(lambda: csms.statuses(1)[-1] == "Available")
            assert csms.violations == []
            sequence = [name for name in csms.sequence() if name.startswith("cp:")]
            start = sequence.index("cp:StartTransaction")
            assert sequence[start - 2 : start] == ["cp:StatusNotification", "cp:Authorize"]
            assert csms.statuses(1)[:5] == ["Available", "Preparing", "Charging", "Finishing", "Available"]

            started, stopped = csms.calls("StartTransaction")[0], csms.calls("StopTransaction")[0]
            assert list(started) == ["connectorId", "idTag", "meterStart", "timestamp"]
            assert started["idTag"] == csms.calls("Authorize")[0]["idTag"]
            assert list(stopped) == ["transactionId", "idTag", "meterStop", "timestamp", "reason", "transactionData"]
            assert stopped["reason"] in ("EVDisconnected", "Local")
            first = cp.finished[0]
            assert stopped["meterStop"] - started["meterStart"] == sum(i for tx, i in increments if tx is first) > 0
            begin, end = stopped["transactionData"]
            assert begin["sampledValue"][0]["context"] == "Transaction.Begin"
            assert begin["sampledValue"][0]["value"] == str(started["meterStart"])
            assert end["sampledValue"][0] | {"context": "x"} == {
                "value": str(stopped["meterStop"]),
                "context": "x",
                "measurand": "Energy.Active.Import.Register",
                "location": "Outlet",
                "unit": "Wh",
            }

            tx_id = stopped["transactionId"]
            meter_values = [p for p in csms.calls("MeterValues") if p["transactionId"] == tx_id]
            assert len(meter_values) >= 4
            assert all(p["connectorId"] == 1 for p in meter_values)
            readings = [register(p) for p in meter_values]
            assert readings == sorted(readings)
            assert started["meterStart"] <= readings[0] and readings[-1] <= stopped["meterStop"]
            values = meter_values[-1]["meterValue"][0]["sampledValue"]
            assert {v["context"] for v in values} == {"Sample.Periodic"}
            soc = next(v for v in values if v["measurand"] == "SoC")
            assert (soc["location"], soc["unit"]) == ("EV", "Percent")
            assert [(v["measurand"], v.get("phase")) for v in values] == MEASURANDS
            assert all(isinstance(v["value"], str) and float(v["value"]) >= 0 for v in values)

    run(scenario)


def test_meter_values_come_every_meter_interval() -> None:
    async def scenario() -> None:
        async with CentralSystem() as csms:
            cp = charger(csms, "CP-CADENCE", meter_interval=0.1)
            async with running(cp, csms):
                await remote_start(csms, cp)
                await csms.until(lambda: len(csms.calls("MeterValues")) >= 6)
            times = [datetime.fromisoformat(p["meterValue"][0]["timestamp"]) for p in csms.calls("MeterValues")]
            gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)][:5]
            assert all(0.05 <= gap <= 0.3 for gap in gaps), gaps

    run(scenario)


def test_seeded_chargers_are_reproducible() -> None:
    """random.Random(seed + identity): same seed and identity give the same serial, registers and tags."""
    same = [SimulatedCharger("ws://x", "CP-1", seed=3) for _ in range(2)]
    other = SimulatedCharger("ws://x", "CP-2", seed=3)
    assert same[0].serial == same[1].serial != other.serial
    assert same[0].registers == same[1].registers != other.registers


def test_a_profile_of_10_6_amps_limits_the_reported_current_per_phase() -> None:
    """spec/smart-charging.md R-16/R-82: a 10.6 A TxProfile gives Current.Import 10.6 A on each phase."""

    async def scenario() -> None:
        async with CentralSystem() as csms:
            cp = charger(csms, "CP-LIMIT", phases=3)
            async with running(cp, csms):
                tx_id = await remote_start(csms, cp)
                payload = {
                    "connectorId": 1,
                    "csChargingProfiles": {
                        "chargingProfileId": 1001,
                        "transactionId": tx_id,
                        "stackLevel": 1,
                        "chargingProfilePurpose": "TxProfile",
                        "chargingProfileKind": "Relative",
                        "chargingSchedule": {
                            "chargingRateUnit": "A",
                            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.6}],
                        },
                    },
                }
                assert await csms.result(cp.identity, "SetChargingProfile", payload) == {"status": "Accepted"}
                assert cp.limits[1] == 10.6
                seen = len(csms.calls("MeterValues"))
                await csms.until(lambda: len(csms.calls("MeterValues")) > seen + 1)
            values = sampled(csms.calls("MeterValues")[-1])
            car_phases = 3 if values[("Current.Import", "L2")] != "0.0" else 1
            expected = ["10.6"] * car_phases + ["0.0"] * (3 - car_phases)
            assert [values[("Current.Import", phase)] for phase in ("L1", "L2", "L3")] == expected
            assert values[("Current.Offered", None)] == "10.6"
            assert csms.violations == []

    run(scenario)


def test_a_zero_amp_profile_suspends_charging_until_it_is_cleared() -> None:
    """A limit of 0 A (or < 6 A) suspends: status SuspendedEVSE and no current; clearing resumes."""

    async def scenario() -> None:
        async with CentralSystem() as csms:
            cp = charger(csms, "CP-ZERO")
            async with running(cp, csms):
                await remote_start(csms, cp)
                zero = {
                    "connectorId": 0,
                    "csChargingProfiles": {
                        "chargingProfileId": 2000,
                        "stackLevel": 0,
                        "chargingProfilePurpose": "TxDefaultProfile",
                        "chargingProfileKind": "Relative",
                        "chargingSchedule": {
                            "chargingRateUnit": "W",
                            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 0.0}],
                        },
                    },
                }
                assert await csms.result(cp.identity, "SetChargingProfile", zero) == {"status": "Accepted"}
                await csms.until(lambda: csms.statuses(1)[-1] == "SuspendedEVSE")
                seen = len(csms.calls("MeterValues"))
                await csms.until(lambda: len(csms.calls("MeterValues")) > seen + 1)
                values = sampled(csms.calls("MeterValues")[-1])
                assert values[("Current.Import", "L1")] == values[("Current.Offered", None)] == "0.0"
                energy = register(csms.calls("MeterValues")[-1])
                await asyncio.sleep(0.25)
                assert register(csms.calls("MeterValues")[-1]) == energy
                clear = {"id": 2000}
                assert await csms.result(cp.identity, "ClearChargingProfile", clear) == {"status": "Accepted"}
                await csms.until(lambda: csms.statuses(1)[-1] == "Charging")
            assert csms.statuses(1)[1:5] == ["Preparing", "Charging", "SuspendedEVSE", "Charging"]
            assert csms.violations == []

    run(scenario)


def test_a_dropped_socket_reconnects_and_the_transaction_continues_without_losing_meter_values() -> None:
    """Transaction messages queue while offline and follow the new boot; the transaction keeps its id."""

    async def scenario() -> None:
        async with CentralSystem() as csms:
            cp = charger(csms, "CP-DROP", meter_interval=0.1)
            async with running(cp, csms):
                tx_id = await remote_start(csms, cp)
                await csms.until(lambda: len(csms.calls("MeterValues")) >= 2)
                await csms.drop(cp.identity)
                await csms.until(lambda: cp.connection_state == "disconnected")
                await csms.until(lambda: len(csms.calls("BootNotification")) == 2, timeout=3)
                await csms.until(lambda: cp.connection_state == "accepted" and len(cp.outbox) == 0)
                assert cp.transactions == {1: tx_id}
                sampled_count = len(csms.calls("MeterValues"))
                assert await csms.result(cp.identity, "RemoteStopTransaction", {"transactionId": tx_id}) == {
                    "status": "Accepted"
                }
                await csms.until(lambda: csms.calls("StopTransaction"))
            meter_values = csms.calls("MeterValues")
            assert len(meter_values) >= sampled_count
            assert {p["transactionId"] for p in meter_values} == {tx_id}
            times = [datetime.fromisoformat(p["meterValue"][0]["timestamp"]) for p in meter_values]
            assert times == sorted(times)
            gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
            assert max(gaps) < 0.35, gaps
            readings = [register(p) for p in meter_values]
            assert readings == sorted(readings)
            stop = csms.calls("StopTransaction")[0]
            assert (stop["transactionId"], stop["reason"]) == (tx_id, "Remote")
            after_drop = csms.sequence()[csms.sequence().index("cp:BootNotification", 1) :]
            assert after_drop.index("cp:MeterValues") > after_drop.index("cp:StatusNotification")
            assert cp.counters.connects == 2
            assert csms.violations == []

    run(scenario)


def test_an_unreachable_server_is_retried_with_growing_backoff() -> None:
    """Reconnect: 0.5 s doubling (with jitter 0.75-1.25), so two or three attempts in 1.3 seconds."""

    async def scenario() -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cp = SimulatedCharger(f"ws://127.0.0.1:{port}/ocpp", "CP-AWAY", auto_sessions=False)
        stop = asyncio.Event()
        task = asyncio.create_task(cp.run(stop))
        await asyncio.sleep(1.3)
        stop.set()
        await asyncio.wait_for(task, 3)
        assert 2 <= cp.counters.errors <= 3
        assert cp.connection_state == "disconnected"
        assert cp.last_error is not None and "ConnectionRefused" in cp.last_error

    run(scenario)


def test_a_password_is_sent_as_http_basic_auth() -> None:
    """DESIGN OCPP: security profile 1, HTTP Basic with the identity and the charger's password."""

    async def scenario() -> None:
        password = "sixteen-chars-ok"
        async with CentralSystem(password=password) as csms:
            cp = charger(csms, "CP-AUTH", password=password)
            async with running(cp, csms):
                pass
            secret = base64.b64encode(b"CP-AUTH:sixteen-chars-ok").decode()
            assert csms.auth_headers == [f"Basic {secret}"]
            wrong = charger(csms, "CP-AUTH", password="not-the-password")
            stop = asyncio.Event()
            task = asyncio.create_task(wrong.run(stop))
            await csms.until(lambda: wrong.counters.errors >= 1)
            stop.set()
            await task
            assert wrong.connection_state == "disconnected"
            assert wrong.last_error is not None and "401" in wrong.last_error

    run(scenario)


def test_stopping_ends_running_transactions_with_reason_local_and_closes_the_socket() -> None:
    async def scenario() -> None:
        async with CentralSystem() as csms:
            cp = charger(csms, "CP-STOP", connectors=2)
            async with running(cp, csms):
                first = await remote_start(csms, cp, 1)
                second = await remote_start(csms, cp, 2)
            stops = {p["transactionId"]: p["reason"] for p in csms.calls("StopTransaction")}
            assert stops == {first: "Local", second: "Local"}
            assert cp.connection_state == "disconnected"
            assert csms.sockets[cp.identity].state.name == "CLOSED"
            assert csms.violations == []

    run(scenario)


def test_one_call_is_outstanding_at_a_time_even_when_the_server_is_slow() -> None:
    """OCPP-J 1.6 §4.1.1: the charger waits for each CALLRESULT before its next CALL."""

    async def scenario() -> None:
        async with CentralSystem() as csms:
            csms.delays["MeterValues"] = 0.15
            cp = charger(csms, "CP-SLOW", meter_interval=0.05, connectors=2, call_timeout=0.5)
            async with running(cp, csms):
                await remote_start(csms, cp, 1)
                await remote_start(csms, cp, 2)
                await csms.until(lambda: len(csms.calls("MeterValues")) >= 4)
            assert csms.violations == []

    run(scenario)


def test_an_unanswered_call_times_out_and_the_charger_carries_on() -> None:
    async def scenario() -> None:
        async with CentralSystem(interval=1) as csms:
            csms.answers["Heartbeat"] = lambda payload: None
            cp = charger(csms, "CP-TIMEOUT", call_timeout=0.2)
            async with running(cp, csms):
                await csms.result(cp.identity, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "0.1"})
                await csms.until(lambda: cp.counters.errors >= 2)
                await csms.result(cp.identity, "TriggerMessage", {"requestedMessage": "StatusNotification"})
                await csms.until(lambda: len(csms.calls("StatusNotification")) >= 6)
            assert cp.connection_state == "disconnected"

    run(scenario)
