"""What a charger reports about itself: boot, heartbeat, status, firmware and diagnostics states, vendor data.

Each function commits what the report changes before it returns (DESIGN "Durability": the charger
is answered only after that), and returns the charger's current placement where the session keeps
one (a charger may be moved to another team or site while connected).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.engine import RowMapping

from voltline.bus.events import SMART_EVENTS, encode_event
from voltline.domain.boot import BootReport, BootStatus
from voltline.domain.firmware import IDLE
from voltline.domain.ids import ChargerId
from voltline.services.runtime import Runtime
from voltline.store import firmware, ocpp_state

log = logging.getLogger("voltline.ocpp")

DataTransferStatus = Literal["Accepted", "Rejected", "UnknownMessageId", "UnknownVendorId"]


@dataclass(frozen=True, slots=True)
class BootAnswer:
    """How a boot is answered (status, heartbeat interval in s) and the charger's current placement."""

    status: BootStatus
    interval: int
    placement: RowMapping | None


async def record_boot(runtime: Runtime, charger_id: ChargerId, report: BootReport) -> BootAnswer:
    """Store what the charger says about itself and accept it with the configured heartbeat interval.

    Every boot is Accepted; the `boot` event follows once the answer was sent (the OCPP session's
    task: nothing reaches a charger before it, OCPP 1.6 §4.2).
    """
    interval = runtime.settings.ocpp_heartbeat_interval
    status: BootStatus = "Accepted"
    facts = {
        "vendor": report.vendor,
        "model": report.model,
        "serial_number": report.serial_number,
        "firmware_version": report.firmware_version,
        "boot_payload": report.payload,
        "heartbeat_interval": interval,
        "ocpp_version": report.ocpp_version,
        "last_seen_at": runtime.clock.now(),
        "boot_accepted": status == "Accepted",
    }
    async with runtime.db.write() as conn:
        placement = await ocpp_state.record_boot(conn, charger_id, _without_none(facts))
        if report.firmware_version is not None:
            # A boot on new firmware completes the firmware update under way (domain/firmware.py).
            await firmware.record_booted_version(conn, charger_id, report.firmware_version, runtime.clock.now())
    return BootAnswer(status, interval, placement)


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


async def record_heartbeat(runtime: Runtime, charger_id: ChargerId) -> RowMapping | None:
    """Note the charger as seen now; returns its current placement."""
    async with runtime.db.write() as conn:
        return await ocpp_state.record_seen(conn, charger_id, runtime.clock.now())


async def record_status(
    runtime: Runtime, charger_id: ChargerId, connector_number: int, status: str, *, error_code: str, info: str | None
) -> RowMapping | None:
    """Store a status (connector 0: the charger's; >= 1: the connector's, made on first sight) and publish it.

    Returns the charger's current placement; the `status` event names its current site
    (spec/smart-charging.md §7.4: a status change wakes the control loop).
    """
    values = {"status": status, "error": error_code, "error_info": info}
    async with runtime.db.write() as conn:
        if connector_number == 0:
            await ocpp_state.record_charger_status(conn, charger_id, values)
        else:
            await ocpp_state.record_connector_status(conn, charger_id, connector_number, values)
        placement = await ocpp_state.get_placement(conn, charger_id)
    site_id = None if placement is None else placement["site_id"]
    event = encode_event(
        "status", charger_id=int(charger_id), site_id=site_id, connector=connector_number, status=status
    )
    await runtime.bus.publish(SMART_EVENTS, event)
    return placement


async def record_firmware_status(runtime: Runtime, charger_id: ChargerId, status: str) -> None:
    """Store the state of a firmware update (OCPP 1.6 §4.5 FirmwareStatusNotification).

    The charger's own status is kept as reported; the charger's latest unfinished update moves to
    the state too, except for Idle (sent only when no update is under way: it ends nothing).
    """
    async with runtime.db.write() as conn:
        await ocpp_state.record_firmware_status(conn, charger_id, status)
        if status != IDLE:
            await firmware.record_update_status(conn, charger_id, status, runtime.clock.now())


async def record_diagnostics_status(runtime: Runtime, charger_id: ChargerId, status: str) -> None:
    """Store the state of a diagnostics upload (OCPP 1.6 §4.4 DiagnosticsStatusNotification)."""
    async with runtime.db.write() as conn:
        await ocpp_state.record_diagnostics_status(conn, charger_id, status)


def receive_data_transfer(identity: str, vendor_id: str, message_id: str | None) -> DataTransferStatus:
    """No vendor extension is implemented: log the message; the status is UnknownVendorId (OCPP 1.6 §4.3)."""
    log.info("%s: DataTransfer from vendor %r, message %r (not implemented)", identity, vendor_id, message_id)
    return "UnknownVendorId"
