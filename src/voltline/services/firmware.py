"""Firmware updates: ask a charger to update (OCPP 1.6 §5.19 UpdateFirmware) and list what came of it.

The update row is stored (state Requested) before the call goes out, so a FirmwareStatusNotification
the charger sends right after its answer always finds it; when the charger does not take the
request (offline, a CALLERROR, no answer in time) the row is removed again: nothing is stored for
an update that did not start. The charger's reports move the row on (services/charger_reports.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import RowMapping

from voltline.domain.firmware import V201, FirmwareRequest
from voltline.domain.ids import ChargerId, TeamId
from voltline.domain.timestamps import format_timestamp
from voltline.errors import ValidationError, VoltlineError
from voltline.services import charger_commands
from voltline.services.runtime import Runtime
from voltline.store import firmware

NEEDS_V201 = "The {field} field needs an OCPP 2.0.1 charger; this charger speaks OCPP {version}."


def _check_version(charger: Mapping[Any, Any], request: FirmwareRequest) -> None:
    """422 for 2.0.1-only fields (installDateTime, signingCertificate, signature) sent for a 1.6 charger."""
    version = charger["ocpp_version"] or "1.6"
    if version == V201:
        return
    fields = request.v201_fields()
    if fields:
        errors = {name: [NEEDS_V201.format(field=name.replace("_", " "), version=version)] for name in fields}
        raise ValidationError(errors)


def _command_args(request: FirmwareRequest, retrieve_at: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"location": request.location, "retrieve_at": format_timestamp(retrieve_at)}
    if request.retries is not None:
        args["retries"] = request.retries
    if request.retry_interval is not None:
        args["retry_interval"] = request.retry_interval
    return args


async def request_update(
    rt: Runtime, team_id: TeamId, charger: Mapping[Any, Any], request: FirmwareRequest
) -> RowMapping:
    """Ask the team's charger to update its firmware; the stored update (state Requested, or later).

    ValidationError for 2.0.1-only fields on a 1.6 charger; ChargerOfflineError; ConflictError when
    the charger refuses (a CALLERROR NotSupported/NotImplemented); ChargerTimeoutError.
    """
    _check_version(charger, request)
    now = rt.clock.now()
    retrieve_at = request.retrieve_at or now
    charger_id = ChargerId(charger["id"])
    values = {
        "location": request.location,
        "retrieve_at": retrieve_at,
        "retries": request.retries,
        "retry_interval": request.retry_interval,
        "firmware_version_before": charger["firmware_version"],
    }
    async with rt.db.write() as conn:
        row = await firmware.insert_update(conn, team_id, charger_id, values, now)
    try:
        await charger_commands.send_command(
            rt, team_id, charger, "update_firmware", _command_args(request, retrieve_at)
        )
    except VoltlineError as error:
        async with rt.db.write() as conn:
            await firmware.delete_update(conn, int(row["id"]))
        raise charger_commands.as_refusal(error) from None
    async with rt.db.read() as conn:
        return await firmware.get_update(conn, int(row["id"]))


async def list_updates(
    rt: Runtime, team_id: TeamId, charger_id: ChargerId, *, offset: int, limit: int
) -> list[RowMapping]:
    """A page of the firmware updates the team asked of the charger, newest first."""
    async with rt.db.read() as conn:
        return await firmware.list_updates(conn, team_id, charger_id, offset=offset, limit=limit)
