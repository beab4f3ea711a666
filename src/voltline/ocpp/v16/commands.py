"""Version-neutral commands (voltline.services.commands.COMMANDS) as OCPP 1.6 calls, and 1.6 answers as results.

`build_call` turns a command and its arguments into the action and a schema-checked request;
arguments that cannot make a valid request raise InvalidCommandError (nothing is sent).
`result_of` turns the charger's typed response into the plain dict the commands service
returns: the response's fields in snake_case (`status`, `configuration_key`, ...), numbers
with a fraction as floats.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from voltline.errors import VoltlineError
from voltline.ocpp.schema_check import SchemaViolationError, decode_payload, encode_payload
from voltline.ocpp.v16 import messages as v16


class InvalidCommandError(VoltlineError):
    """A command's arguments do not make a valid OCPP 1.6 request."""


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _remote_start(args: dict[str, Any]) -> dict[str, Any]:
    return _drop_none({"connectorId": args.get("connector_id"), "idTag": args.get("id_tag")})


def _remote_stop(args: dict[str, Any]) -> dict[str, Any]:
    # 1.6: the transactionId the charger knows is our transaction id (DESIGN: data model).
    return {"transactionId": args.get("transaction_id")}


def _reset(args: dict[str, Any]) -> dict[str, Any]:
    return {"type": args.get("type") or "Soft"}


def _unlock(args: dict[str, Any]) -> dict[str, Any]:
    return {"connectorId": args.get("connector_id")}


def _change_availability(args: dict[str, Any]) -> dict[str, Any]:
    return {"connectorId": args.get("connector_id") or 0, "type": args.get("type")}


def _trigger(args: dict[str, Any]) -> dict[str, Any]:
    return _drop_none({"requestedMessage": args.get("message"), "connectorId": args.get("connector_id")})


def _get_configuration(args: dict[str, Any]) -> dict[str, Any]:
    keys = args.get("keys")
    return {"key": list(keys)} if keys else {}


def _change_configuration(args: dict[str, Any]) -> dict[str, Any]:
    return {"key": args.get("key"), "value": args.get("value")}


def _set_charging_profile(args: dict[str, Any]) -> dict[str, Any]:
    return {"connectorId": args.get("connector_id"), "csChargingProfiles": args.get("profile")}


def _clear_charging_profile(args: dict[str, Any]) -> dict[str, Any]:
    return _drop_none(
        {
            "id": args.get("id"),
            "connectorId": args.get("connector_id"),
            "chargingProfilePurpose": args.get("charging_profile_purpose"),
            "stackLevel": args.get("stack_level"),
        }
    )


def _get_composite_schedule(args: dict[str, Any]) -> dict[str, Any]:
    return _drop_none(
        {
            "connectorId": args.get("connector_id"),
            "duration": args.get("duration"),
            "chargingRateUnit": args.get("charging_rate_unit"),
        }
    )


def _nothing(args: dict[str, Any]) -> dict[str, Any]:
    return {}


def _data_transfer(args: dict[str, Any]) -> dict[str, Any]:
    return {"vendorId": args.get("vendor_id"), "messageId": args.get("message_id"), "data": args.get("data")}


def _update_firmware(args: dict[str, Any]) -> dict[str, Any]:
    return {
        "location": args.get("location"),
        "retrieveDate": args.get("retrieve_at"),
        "retries": args.get("retries"),
        "retryInterval": args.get("retry_interval"),
    }


def _get_diagnostics(args: dict[str, Any]) -> dict[str, Any]:
    return {
        "location": args.get("location"),
        "retries": args.get("retries"),
        "retryInterval": args.get("retry_interval"),
        "startTime": args.get("start_time"),
        "stopTime": args.get("stop_time"),
    }


def _get_log(args: dict[str, Any]) -> dict[str, Any]:
    """Security Whitepaper (1.6 edition 2) GetLog: the log type, the request id and where to upload."""
    log = {
        "remoteLocation": args.get("location"),
        "oldestTimestamp": args.get("start_time"),
        "latestTimestamp": args.get("stop_time"),
    }
    return {
        "logType": args.get("log_type"),
        "requestId": args.get("request_id"),
        "retries": args.get("retries"),
        "retryInterval": args.get("retry_interval"),
        "log": _drop_none(log),
    }


def _reserve_now(args: dict[str, Any]) -> dict[str, Any]:
    return {
        "connectorId": args.get("connector_id"),
        "expiryDate": args.get("expires_at"),
        "idTag": args.get("id_tag"),
        "parentIdTag": args.get("parent_id_tag"),
        "reservationId": args.get("reservation_id"),
    }


def _cancel_reservation(args: dict[str, Any]) -> dict[str, Any]:
    return {"reservationId": args.get("reservation_id")}


def _send_local_list(args: dict[str, Any]) -> dict[str, Any]:
    entries = [
        _drop_none({"idTag": entry.get("id_tag"), "idTagInfo": _id_tag_info(entry.get("id_tag_info"))})
        for entry in args.get("entries") or []
    ]
    return {
        "listVersion": args.get("list_version"),
        "updateType": args.get("update_type"),
        "localAuthorizationList": entries or None,
    }


def _id_tag_info(info: dict[str, Any] | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return _drop_none(
        {"status": info.get("status"), "expiryDate": info.get("expiry_date"), "parentIdTag": info.get("parent_id_tag")}
    )


# Command -> (1.6 action, arguments -> request payload in OCPP's camelCase).
CALLS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "remote_start": ("RemoteStartTransaction", _remote_start),
    "remote_stop": ("RemoteStopTransaction", _remote_stop),
    "reset": ("Reset", _reset),
    "unlock": ("UnlockConnector", _unlock),
    "change_availability": ("ChangeAvailability", _change_availability),
    "trigger": ("TriggerMessage", _trigger),
    "get_configuration": ("GetConfiguration", _get_configuration),
    "change_configuration": ("ChangeConfiguration", _change_configuration),
    "set_charging_profile": ("SetChargingProfile", _set_charging_profile),
    "clear_charging_profile": ("ClearChargingProfile", _clear_charging_profile),
    "get_composite_schedule": ("GetCompositeSchedule", _get_composite_schedule),
    "clear_cache": ("ClearCache", _nothing),
    "data_transfer": ("DataTransfer", _data_transfer),
    "update_firmware": ("UpdateFirmware", _update_firmware),
    "get_diagnostics": ("GetDiagnostics", _get_diagnostics),
    "get_log": ("GetLog", _get_log),
    "reserve_now": ("ReserveNow", _reserve_now),
    "cancel_reservation": ("CancelReservation", _cancel_reservation),
    "send_local_list": ("SendLocalList", _send_local_list),
    "get_local_list_version": ("GetLocalListVersion", _nothing),
}


def build_call(command: str, args: dict[str, Any]) -> tuple[str, msgspec.Struct]:
    """The 1.6 action and the schema-valid request for a neutral command."""
    entry = CALLS.get(command)
    if entry is None:
        raise InvalidCommandError(f"Unknown command {command!r}")
    action, make = entry
    try:
        payload = encode_payload(_drop_none(make(args)))
        return action, decode_payload(v16.REQUESTS[action], payload)
    except (SchemaViolationError, TypeError) as error:
        raise InvalidCommandError(f"{action}: {error}") from None


def result_of(response: msgspec.Struct) -> dict[str, Any]:
    """The charger's answer as a plain dict with snake_case keys."""
    value = _plain(response)
    assert isinstance(value, dict)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        fields = ((name, getattr(value, name)) for name in value.__struct_fields__)
        return {name: _plain(item) for name, item in fields if item is not None}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent == 0 else float(value)
    return value
