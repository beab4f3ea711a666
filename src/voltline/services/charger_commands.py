"""Remote commands to one charger of a team (OCPP 1.6 §5: RemoteStart/StopTransaction, Reset, ...).

The command itself travels over the bus through the commands service (`Runtime.commands`);
this module adds what needs the database: which session a stop request means.
"""

from __future__ import annotations

from typing import Any

from voltline.domain.ids import ChargerId
from voltline.errors import ValidationError
from voltline.services.runtime import Runtime
from voltline.store import transactions

NO_ACTIVE_TRANSACTION = "There is no active transaction on this charger."
TRANSACTION_INVALID = "The selected transaction id is invalid."


async def send_command(rt: Runtime, identity: str, command: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run one command on the charger; its answer as a plain dict (offline, timeout and failure raise)."""
    return await rt.commands.send(identity, command, args)


async def stop_charging(
    rt: Runtime, charger_id: ChargerId, identity: str, transaction_id: int | None
) -> dict[str, Any]:
    """Ask the charger to stop the given active session, or its latest active one (RemoteStopTransaction)."""
    async with rt.db.read() as conn:
        if transaction_id is None:
            active = await transactions.get_latest_active_transaction(conn, charger_id)
            if active is None:
                raise ValidationError.single("transaction_id", NO_ACTIVE_TRANSACTION)
        else:
            active = await transactions.get_active_transaction(conn, charger_id, transaction_id)
            if active is None:
                raise ValidationError.single("transaction_id", TRANSACTION_INVALID)
    return await send_command(rt, identity, "remote_stop", {"transaction_id": int(active["id"])})
