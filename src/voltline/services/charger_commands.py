"""Remote commands to one charger of a team (OCPP 1.6 §5: RemoteStart/StopTransaction, Reset, ...).

The command itself travels over the bus through the commands service (`Runtime.commands`);
this module adds what needs the database: which session a stop request means, and the audit
row of every command that changes something (its outcome: the charger's status word or the error).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voltline.domain.ids import ChargerId, TeamId
from voltline.errors import CommandFailedError, ConflictError, ValidationError, VoltlineError
from voltline.services import audit
from voltline.services.runtime import Runtime
from voltline.store import transactions

NO_ACTIVE_TRANSACTION = "There is no active transaction on this charger."
TRANSACTION_INVALID = "The selected transaction id is invalid."
# Commands that only read: nothing to audit.
READ_ONLY = frozenset({"get_configuration", "get_composite_schedule", "get_local_list_version"})
# Arguments worth keeping in a command's detail; configuration values may be secrets and stay out.
DETAIL_ARGS = (
    "connector_id",
    "type",
    "key",
    "message",
    "transaction_id",
    "vendor_id",
    "message_id",
    "reservation_id",
)

# OCPP-J 1.6 §4.2.3 CALLERROR codes of a charger without the operation (e.g. without the Firmware
# Management profile): for an operation a user asked for, that is the charger refusing it (409), not
# a failure of the call (502).
REFUSAL_CODES = frozenset({"NotSupported", "NotImplemented"})


def as_refusal(error: VoltlineError) -> VoltlineError:
    """A CALLERROR NotSupported / NotImplemented as a ConflictError with the charger's answer; others unchanged."""
    if isinstance(error, CommandFailedError) and error.code in REFUSAL_CODES:
        return ConflictError(str(error))
    return error


async def send_command(
    rt: Runtime, team_id: TeamId, charger: Mapping[Any, Any], command: str, args: dict[str, Any]
) -> dict[str, Any]:
    """Run one command on the team's charger; its answer as a plain dict (offline, timeout and failure raise)."""
    identity = str(charger["identity"])
    if command in READ_ONLY:
        return await rt.commands.send(identity, command, args)
    target = ("charger", charger["uuid"])
    return await _audited(rt, team_id, f"charger.{command}", target, (identity, command, args))


async def _audited(
    rt: Runtime, team_id: TeamId, action: str, target: audit.Target, call: tuple[str, str, dict[str, Any]]
) -> dict[str, Any]:
    """Send `call` (identity, command, args), then record the outcome whatever it was (a failure is re-raised)."""
    identity, command, args = call
    detail = {key: args[key] for key in DETAIL_ARGS if args.get(key) is not None}
    try:
        result = await rt.commands.send(identity, command, args)
    except VoltlineError as error:
        await audit.record_command(
            rt, team_id, action, target, outcome=audit.command_outcome(None, error), detail=detail
        )
        raise
    await audit.record_command(rt, team_id, action, target, outcome=audit.command_outcome(result, None), detail=detail)
    return result


async def stop_charging(
    rt: Runtime, team_id: TeamId, charger: Mapping[Any, Any], transaction_id: int | None
) -> dict[str, Any]:
    """Ask the charger to stop the given active session, or its latest active one (RemoteStopTransaction)."""
    charger_id = ChargerId(charger["id"])
    async with rt.db.read() as conn:
        if transaction_id is None:
            active = await transactions.get_latest_active_transaction(conn, charger_id)
            if active is None:
                raise ValidationError.single("transaction_id", NO_ACTIVE_TRANSACTION)
        else:
            active = await transactions.get_active_transaction(conn, charger_id, transaction_id)
            if active is None:
                raise ValidationError.single("transaction_id", TRANSACTION_INVALID)
    stopping = int(active["id"])
    call = (str(charger["identity"]), "remote_stop", {"transaction_id": stopping})
    return await _audited(rt, team_id, "transaction.remote_stop", ("transaction", stopping), call)
