"""Charging sessions on a simulated 1.6 charge point, and the meter readings they report.

A session: plug in (Preparing), Authorize (skipped for a remote start unless
AuthorizeRemoteTxRequests), StartTransaction with `meterStart`, Charging (SuspendedEVSE while
the limit is below 6 A, SuspendedEV when the car is full), MeterValues with context
Sample.Periodic every MeterValueSampleInterval, StopTransaction with `meterStop`, the reason and
`transactionData` (Transaction.Begin and Transaction.End register samples), Finishing, then
Available. Energy is integrated at every change of limit, so `meterStop - meterStart` is the
exact sum of the meter model's increments.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from voltline.simulator import reservations
from voltline.simulator.connection import Payload
from voltline.simulator.meter import Meter, Sample
from voltline.simulator.profiles import ProfileError, Session, parse_profile

if TYPE_CHECKING:
    from voltline.simulator.charger import SimulatedCharger

PHASES = ("L1", "L2", "L3")


def timestamp(moment: datetime) -> str:
    """OCPP date-time as chargers write it: UTC with milliseconds and `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Transaction:
    """A transaction on one connector; `transaction_id` arrives with the StartTransaction result."""

    connector_id: int
    id_tag: str
    meter_start: int
    started_at: datetime
    transaction_id: int | None = None
    energy_wh: int = 0
    meter_stop: int | None = None
    reason: str | None = None


@dataclass
class Connector:
    """One connector: its meter, status, availability and running session."""

    number: int
    meter: Meter
    status: str = "Available"
    operative: bool = True
    scheduled: bool | None = None
    transaction: Transaction | None = None
    busy: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    advanced_at: float | None = None


# ---------------------------------------------------------------------- meter readings


def _value(value: str, context: str, measurand: str, unit: str, phase: str | None = None) -> Payload:
    sampled = {"value": value, "context": context, "measurand": measurand}
    if phase is not None:
        sampled["phase"] = phase
    return {**sampled, "location": "Outlet", "unit": unit}


def _register(wh: int, context: str) -> Payload:
    return _value(str(wh), context, "Energy.Active.Import.Register", "Wh")


def sampled_values(sample: Sample, context: str, measurands: list[str]) -> list[Payload]:
    """The wanted measurands of a meter sample as 1.6 SampledValues, values as decimal strings (§8.1)."""
    values = [
        _register(sample.register_wh, context),
        _value(f"{sample.power_w:.1f}", context, "Power.Active.Import", "W"),
        *(_value(f"{a:.1f}", context, "Current.Import", "A", PHASES[i]) for i, a in enumerate(sample.currents)),
        *(_value(f"{v:.1f}", context, "Voltage", "V", f"{PHASES[i]}-N") for i, v in enumerate(sample.voltages)),
        _value(f"{sample.offered:.1f}", context, "Current.Offered", "A"),
    ]
    if sample.soc is not None:
        values.append({**_value(f"{sample.soc:.0f}", context, "SoC", "Percent"), "location": "EV"})
    return [value for value in values if value["measurand"] in measurands]


def send_meter_values(cp: SimulatedCharger, conn: Connector, context: str, keep: bool = True) -> None:
    """Sample the connector's meter now and queue a MeterValues (transactionId filled in when sent)."""
    advance(cp, conn)
    values = sampled_values(conn.meter.sample(), context, cp.config.measurands)
    reading = [{"timestamp": cp.now_text(), "sampledValue": values}]
    tx = conn.transaction

    def build() -> Payload:
        tx_id = {"transactionId": tx.transaction_id} if tx and tx.transaction_id is not None else {}
        return {"connectorId": conn.number, **tx_id, "meterValue": reading}

    def count(result: Payload | None) -> None:
        cp.counters.meter_values += result is not None

    cp.queue("MeterValues", build, keep, count)


# ---------------------------------------------------------------------- the electrical side


def advance(cp: SimulatedCharger, conn: Connector) -> None:
    """Integrate the energy drawn since the last call."""
    now = asyncio.get_running_loop().time()
    elapsed = 0.0 if conn.advanced_at is None else now - conn.advanced_at
    conn.advanced_at = now
    added = conn.meter.advance(elapsed)
    if conn.transaction is not None:
        conn.transaction.energy_wh += added


def session_of(conn: Connector | None) -> Session | None:
    """The connector's transaction as charging profiles see it."""
    if conn is None or conn.transaction is None:
        return None
    return Session(conn.transaction.transaction_id, conn.transaction.started_at)


def refresh_limit(cp: SimulatedCharger, conn: Connector) -> None:
    """Apply the charging-profile limit in force now, and the status that follows from it."""
    advance(cp, conn)
    conn.meter.limit = cp.profiles.limit_at(conn.number, cp.now(), session_of(conn), conn.meter.active_phases)
    if conn.transaction is not None:
        meter = conn.meter
        status = "SuspendedEVSE" if meter.suspended_by_evse else "SuspendedEV" if meter.suspended_by_ev else "Charging"
        cp.set_status(conn.number, status)


def refresh_all(cp: SimulatedCharger) -> None:
    """Re-evaluate every connector's limit after a profile change."""
    for conn in cp.connectors.values():
        refresh_limit(cp, conn)
        conn.changed.set()


def _seconds_to_change(cp: SimulatedCharger, conn: Connector) -> float | None:
    now = cp.now()
    change = cp.profiles.next_change(conn.number, now, session_of(conn))
    return None if change is None else (change - now).total_seconds() + 0.001


def install_profile(cp: SimulatedCharger, number: int, data: Any) -> str:
    """Install a charging profile as SetChargingProfile does; the status word (ProfileError if malformed)."""
    profile = parse_profile(number, data, cp.now())
    zero = any(period.limit == 0 for period in profile.periods)
    if cp.reject_profiles or (cp.reject_zero_amp and zero):
        return "Rejected"
    return "Accepted" if cp.profiles.install(profile, session_of(cp.connectors.get(number))) else "Rejected"


# ---------------------------------------------------------------------- sessions


def can_start(cp: SimulatedCharger, conn: Connector) -> bool:
    """True when a new session may start on the connector."""
    ready = cp.connection_state == "accepted" and not cp.stopping()
    return ready and conn.operative and cp.operative0 and not conn.busy and conn.transaction is None


async def auto_sessions(cp: SimulatedCharger, conn: Connector) -> None:
    """Start a session whenever the connector is free, with idle gaps between sessions."""
    await cp.pause(cp.rng.uniform(0, cp.idle_seconds))
    while not cp.stopping():
        if can_start(cp, conn):
            await run_session(cp, conn, f"SIM{cp.rng.randrange(16**6):06X}", remote=False)
            await cp.pause(cp.idle_seconds * cp.rng.uniform(0.5, 1.5))
        else:
            conn.changed.clear()
            await cp.wait(conn.changed, 1.0)


async def run_session(
    cp: SimulatedCharger,
    conn: Connector,
    id_tag: str,
    remote: bool,
    profile: Payload | None = None,
    *,
    authorized: bool = False,
) -> None:
    """Plug in, authorize (unless `authorized` already, e.g. from the local list), charge, unplug.

    A reserved connector admits only its id tag (or the reservation's parent id tag).
    """
    if conn.busy or conn.transaction is not None or not reservations.admits(cp, conn, id_tag):
        return
    conn.busy = True
    try:
        cp.set_status(conn.number, "Preparing")
        conn.meter.plug(cp.cars(cp.rng))
        must_authorize = not remote or cp.config.flag("AuthorizeRemoteTxRequests")
        if must_authorize and not authorized and not await _authorize(cp, id_tag):
            return
        if cp.stopping() or not (conn.operative and cp.operative0):
            return
        tx = _begin_transaction(cp, conn, id_tag, profile)
        await _charge(cp, conn, tx)
        await cp.pause(cp.unplug_seconds)
    finally:
        conn.meter.unplug()
        conn.busy = False
        _apply_scheduled(cp, conn)
        cp.set_status(conn.number, reservations.idle_status(cp, conn))
        conn.changed.set()


def _tag_status(result: Payload) -> Any:
    info = result.get("idTagInfo")
    return info.get("status") if isinstance(info, dict) else None


async def _authorize(cp: SimulatedCharger, id_tag: str) -> bool:
    answer: asyncio.Future[Payload | None] = asyncio.get_running_loop().create_future()

    def settle(result: Payload | None) -> None:
        if not answer.done():
            answer.set_result(result)

    cp.queue("Authorize", lambda: {"idTag": id_tag}, on_result=settle)
    result = await answer
    return isinstance(result, dict) and _tag_status(result) == "Accepted"


def _begin_transaction(cp: SimulatedCharger, conn: Connector, id_tag: str, profile: Payload | None) -> Transaction:
    advance(cp, conn)
    tx = Transaction(conn.number, id_tag, conn.meter.register_wh, cp.now())
    conn.transaction, conn.meter.charging = tx, True
    cp.counters.transactions_started += 1
    request: Payload = {"connectorId": conn.number, "idTag": id_tag, "meterStart": tx.meter_start}
    reservation_id = reservations.take(cp, conn, id_tag)
    if reservation_id is not None:  # OCPP 1.6 §5.13: the start ends the reservation it uses
        request["reservationId"] = reservation_id
    request["timestamp"] = timestamp(tx.started_at)
    cp.queue("StartTransaction", lambda: request, True, lambda result: _on_started(cp, conn, tx, result))
    if profile is not None:
        with contextlib.suppress(ProfileError):
            install_profile(cp, conn.number, profile)
    refresh_limit(cp, conn)
    return tx


def _on_started(cp: SimulatedCharger, conn: Connector, tx: Transaction, result: Payload | None) -> None:
    if result is None or not isinstance(result.get("transactionId"), int):
        return
    tx.transaction_id = result["transactionId"]
    cp.profiles.bind_transaction(conn.number, result["transactionId"])
    if _tag_status(result) != "Accepted" and conn.transaction is tx:
        end_transaction(cp, conn, "DeAuthorized")


async def _charge(cp: SimulatedCharger, conn: Connector, tx: Transaction) -> None:
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + cp.session_seconds * cp.rng.uniform(0.75, 1.25)
    reason = cp.rng.choice(("EVDisconnected", "Local"))
    sampled_at = loop.time()
    while conn.transaction is tx:
        due = sampled_at + cp.config.meter_interval
        timeout = min(due, ends_at) - loop.time()
        change = _seconds_to_change(cp, conn)
        conn.changed.clear()
        await cp.wait(conn.changed, timeout if change is None else min(timeout, change))
        if conn.transaction is not tx:
            break
        refresh_limit(cp, conn)
        if loop.time() >= due:
            send_meter_values(cp, conn, "Sample.Periodic")
            sampled_at = due if loop.time() - due < cp.config.meter_interval else loop.time()
        if loop.time() >= ends_at:
            end_transaction(cp, conn, reason)


def end_transaction(cp: SimulatedCharger, conn: Connector, reason: str) -> None:
    """Stop the connector's transaction now: StopTransaction with transactionData, then Finishing."""
    tx = conn.transaction
    if tx is None:
        return
    advance(cp, conn)
    conn.transaction, conn.meter.charging = None, False
    tx.meter_stop, tx.reason = conn.meter.register_wh, reason
    cp.profiles.end_transaction(conn.number)
    cp.counters.transactions_stopped += 1
    cp.finished.append(tx)
    begin = {"timestamp": timestamp(tx.started_at), "sampledValue": [_register(tx.meter_start, "Transaction.Begin")]}
    end = {"timestamp": cp.now_text(), "sampledValue": [_register(tx.meter_stop, "Transaction.End")]}
    stopped = {"idTag": tx.id_tag, "meterStop": tx.meter_stop, "timestamp": end["timestamp"], "reason": reason}

    def build() -> Payload | None:
        if tx.transaction_id is None:
            return None
        return {"transactionId": tx.transaction_id, **stopped, "transactionData": [begin, end]}

    cp.queue("StopTransaction", build, True)
    cp.set_status(conn.number, "Finishing")
    conn.meter.limit = cp.profiles.limit_at(conn.number, cp.now(), None, conn.meter.active_phases)
    conn.changed.set()


def end_all(cp: SimulatedCharger, reason: str) -> None:
    """Stop every running transaction with `reason`."""
    for conn in cp.connectors.values():
        end_transaction(cp, conn, reason)


def _apply_scheduled(cp: SimulatedCharger, conn: Connector) -> None:
    if conn.scheduled is not None:
        conn.operative, conn.scheduled = conn.scheduled, None
    if cp.scheduled0 is not None and not any(c.transaction for c in cp.connectors.values()):
        cp.operative0, cp.scheduled0 = cp.scheduled0, None
        cp.set_status(0, "Available" if cp.operative0 else "Unavailable")
