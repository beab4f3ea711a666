"""Remote commands to a charger: start, stop, restart, unlock, availability, trigger, configuration.

Each command goes through the commands service on the bus (DESIGN: the API never reaches the
OCPP sessions directly) and answers `{"message": <the charger's status word>}`; a charger that
is not connected is a 409, one that does not answer in time a 504.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import INT_MAX, envelope, input_data, json_body, json_response, path_ref
from voltline.api._routing import Endpoint
from voltline.api.auth import runtime, scope, team_member
from voltline.services import charger_commands, chargers

TRIGGER_MESSAGES = (
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
)
START_RULES = {"connector_id": f"nullable|integer|min:1|max:{INT_MAX}", "id_tag": "required|string|max:20"}
STOP_RULES = {"transaction_id": f"nullable|integer|min:1|max:{INT_MAX}"}
RESTART_RULES = {"type": "nullable|string|in:Soft,Hard"}
UNLOCK_RULES = {"connector_id": f"required|integer|min:1|max:{INT_MAX}"}
AVAILABILITY_RULES = {
    "connector_id": f"nullable|integer|min:0|max:{INT_MAX}",
    "type": "required|string|in:Operative,Inoperative",
}
TRIGGER_RULES = {
    "message": "required|string|in:" + ",".join(TRIGGER_MESSAGES),
    "connector_id": f"nullable|integer|min:1|max:{INT_MAX}",
}
GET_CONFIGURATION_RULES = {"keys": "nullable|string|max:2000"}
GET_CONFIGURATION = Contract("ConfigurationQuery", "The keys to read, comma-separated.", GET_CONFIGURATION_RULES)
CHANGE_CONFIGURATION_RULES = {"key": "required|string|max:50", "value": "required|string|max:500"}
# OCPP 1.6 §6.17 DataTransfer.req: vendorId CiString255, messageId CiString50, data free text.
DATA_TRANSFER_RULES = {
    "vendor_id": "required|string|max:255",
    "message_id": "nullable|string|max:50",
    "data": "nullable|string|max:65536",
}


class CommandResult(msgspec.Struct):
    """The charger's answer to a command: its status word (Accepted, Rejected, Unlocked, ...)."""

    message: str


START = Contract("StartBody", "Body of commands/start.", START_RULES)
STOP = Contract(
    "StopBody", "Body of commands/stop; without a transaction id the latest active one is stopped.", STOP_RULES
)
RESTART = Contract("RestartBody", "Body of commands/restart (OCPP Reset): Soft (default) or Hard.", RESTART_RULES)
UNLOCK = Contract("UnlockBody", "Body of commands/unlock.", UNLOCK_RULES)
AVAILABILITY = Contract(
    "AvailabilityBody", "Body of commands/availability (connector 0 = the whole charger).", AVAILABILITY_RULES
)
TRIGGER = Contract("TriggerBody", "Body of commands/trigger: the message the charger should send now.", TRIGGER_RULES)
CHANGE_CONFIGURATION = Contract(
    "ChangeConfigurationBody", "Body of a configuration change.", CHANGE_CONFIGURATION_RULES
)


DATA_TRANSFER = Contract(
    "DataTransferBody",
    "Body of commands/data-transfer: a vendor-specific message for the charger.",
    DATA_TRANSFER_RULES,
)


class CommandReply(msgspec.Struct):
    """The charger's answer: its status word, and the data it sent back (DataTransfer; null otherwise)."""

    message: str
    data: str | None


class ConfigurationKey(msgspec.Struct):
    """One configuration key as the charger reports it."""

    key: str
    readonly: bool
    value: str | None = None


class Configuration(msgspec.Struct):
    """The charger's configuration keys, and the asked-for keys it does not know."""

    configuration_key: list[ConfigurationKey]
    unknown_key: list[str]


async def _charger(request: Request) -> Mapping[Any, Any]:
    """The team's charger of the path (looked up before the body is checked, as Laravel binds routes first)."""
    return await chargers.get_charger(runtime(request), scope(request).team_id, path_ref(request, "charger"))


async def _command(request: Request, command: str, contract: Contract) -> Response:
    charger = await _charger(request)
    args = contract.validate(await json_body(request))
    return await _send(request, charger, command, args)


async def _send(request: Request, charger: Mapping[Any, Any], command: str, args: dict[str, Any]) -> Response:
    team_id = scope(request).team_id
    return _result(await charger_commands.send_command(runtime(request), team_id, charger, command, args))


def _result(result: dict[str, Any]) -> Response:
    return json_response(CommandResult(message=str(result.get("status", "Accepted"))))


async def start_charging(request: Request) -> Response:
    """Ask the charger to start a session (OCPP RemoteStartTransaction)."""
    return await _command(request, "remote_start", START)


async def stop_charging(request: Request) -> Response:
    """Ask the charger to stop a session: the given one, or the latest active one."""
    charger = await _charger(request)
    body = STOP.read(await json_body(request))
    team_id = scope(request).team_id
    result = await charger_commands.stop_charging(runtime(request), team_id, charger, body.transaction_id)
    return _result(result)


async def restart_charger(request: Request) -> Response:
    """Restart the charger (OCPP Reset, Soft unless Hard is asked for)."""
    charger = await _charger(request)
    body = RESTART.read(await json_body(request))
    return await _send(request, charger, "reset", {"type": body.type or "Soft"})


async def unlock_connector(request: Request) -> Response:
    """Unlock a connector's cable (OCPP UnlockConnector)."""
    return await _command(request, "unlock", UNLOCK)


async def change_availability(request: Request) -> Response:
    """Make the charger or one connector Operative or Inoperative (OCPP ChangeAvailability)."""
    charger = await _charger(request)
    clean = AVAILABILITY.validate(await json_body(request))
    return await _send(
        request, charger, "change_availability", {**clean, "connector_id": clean.get("connector_id") or 0}
    )


async def trigger_message(request: Request) -> Response:
    """Ask the charger to send a message now (OCPP TriggerMessage)."""
    return await _command(request, "trigger", TRIGGER)


async def get_configuration(request: Request) -> Response:
    """Read the charger's configuration (all keys, or `keys` as a comma-separated list)."""
    charger = await _charger(request)
    clean = GET_CONFIGURATION.validate(await input_data(request))
    keys = [key.strip() for key in (clean.get("keys") or "").split(",") if key.strip()]
    team_id = scope(request).team_id
    result = await charger_commands.send_command(
        runtime(request), team_id, charger, "get_configuration", {"keys": keys}
    )
    configuration = msgspec.convert(
        {"configuration_key": result.get("configuration_key") or [], "unknown_key": result.get("unknown_key") or []},
        Configuration,
    )
    return envelope(configuration)


async def change_configuration(request: Request) -> Response:
    """Set one configuration key (OCPP ChangeConfiguration)."""
    return await _command(request, "change_configuration", CHANGE_CONFIGURATION)


async def clear_cache(request: Request) -> Response:
    """Ask the charger to clear its authorization cache (OCPP ClearCache)."""
    return await _reply(request, await _charger(request), "clear_cache", {})


async def data_transfer(request: Request) -> Response:
    """Send a vendor-specific message to the charger (OCPP DataTransfer); its status and data come back."""
    charger = await _charger(request)
    args = DATA_TRANSFER.validate(await json_body(request))
    return await _reply(request, charger, "data_transfer", args)


async def _reply(request: Request, charger: Mapping[Any, Any], command: str, args: dict[str, Any]) -> Response:
    team_id = scope(request).team_id
    result = await charger_commands.send_command(runtime(request), team_id, charger, command, args)
    data = result.get("data")
    return json_response(
        CommandReply(message=str(result.get("status", "Accepted")), data=None if data is None else str(data))
    )


_COMMANDS = "/api/v2/teams/{team}/chargers/{charger}/commands"
_ERRORS = (404, 409, 422, 502, 504)
_NO_BODY_ERRORS = (404, 409, 502, 504)


def _post(
    path: str,
    handler: Any,
    summary: str,
    body: Any,
    *,
    response: Any = CommandResult,
    errors: tuple[int, ...] = _ERRORS,
) -> Endpoint:
    return Endpoint(
        "POST",
        f"{_COMMANDS}/{path}",
        handler,
        summary,
        "Commands",
        body=body,
        response=response,
        shape="raw",
        errors=errors,
        guard=team_member,
    )


ENDPOINTS = [
    _post("start", start_charging, "Start charging", START),
    _post("stop", stop_charging, "Stop charging", STOP),
    _post("restart", restart_charger, "Restart the charger", RESTART),
    _post("unlock", unlock_connector, "Unlock a connector", UNLOCK),
    _post("availability", change_availability, "Change availability", AVAILABILITY),
    _post("trigger", trigger_message, "Trigger a message", TRIGGER),
    _post(
        "clear-cache", clear_cache, "Clear the authorization cache", None, response=CommandReply, errors=_NO_BODY_ERRORS
    ),
    _post("data-transfer", data_transfer, "Send a vendor-specific message", DATA_TRANSFER, response=CommandReply),
    Endpoint(
        "GET",
        f"{_COMMANDS}/configuration",
        get_configuration,
        "Get the configuration",
        "Commands",
        query=GET_CONFIGURATION,
        response=Configuration,
        errors=_ERRORS,
        guard=team_member,
    ),
    Endpoint(
        "PUT",
        f"{_COMMANDS}/configuration",
        change_configuration,
        "Change a configuration key",
        "Commands",
        body=CHANGE_CONFIGURATION,
        response=CommandResult,
        shape="raw",
        errors=_ERRORS,
        guard=team_member,
    ),
]
