"""A simulated 1.6 charge point's answers to CSMS-initiated calls, and its configuration keys.

Every answer is a schema-valid CALLRESULT payload, or a CALLERROR for a payload that breaks the
request schema (OccurenceConstraintViolation, TypeConstraintViolation, ...) and NotImplemented
for an action the charger does not know. Effects that must follow the response on the wire
(a StatusNotification, the triggered message, the reconnect after Reset) are returned as a
follow-up that runs once the response was sent.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from voltline.simulator import diagnostics, firmware, local_list, reservations, sessions
from voltline.simulator.connection import Answer, CallError, FollowUp, Payload
from voltline.simulator.profiles import ProfileError

if TYPE_CHECKING:
    from voltline.simulator.charger import SimulatedCharger
    from voltline.simulator.sessions import Connector

MEASURANDS = (
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Voltage",
    "Current.Offered",
    "SoC",
)
# key: (default, read-only, kind); kinds are checked by ChangeConfiguration.
KEYS: dict[str, tuple[str, bool, str]] = {
    "AuthorizeRemoteTxRequests": ("false", False, "bool"),
    "ClockAlignedDataInterval": ("0", False, "int"),
    "ConnectionTimeOut": ("60", False, "int"),
    "HeartbeatInterval": ("60", False, "seconds"),
    "LocalAuthorizeOffline": ("true", False, "bool"),
    "LocalPreAuthorize": ("false", False, "bool"),
    "MeterValuesAlignedData": ("Energy.Active.Import.Register", False, "measurands"),
    "MeterValuesSampledData": (",".join(MEASURANDS), False, "measurands"),
    "MeterValuesSampledDataMaxLength": ("8", True, "int"),
    "MeterValueSampleInterval": ("10", False, "seconds"),
    "NumberOfConnectors": ("2", True, "int"),
    "ResetRetries": ("1", False, "int"),
    "StopTransactionOnEVSideDisconnect": ("true", False, "bool"),
    "StopTransactionOnInvalidId": ("true", False, "bool"),
    "StopTxnSampledData": ("Energy.Active.Import.Register", False, "measurands"),
    "SupportedFeatureProfiles": (
        "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger",
        True,
        "text",
    ),
    "TransactionMessageAttempts": ("3", False, "int"),
    "TransactionMessageRetryInterval": ("30", False, "int"),
    "UnlockConnectorOnEVSideDisconnect": ("true", False, "bool"),
    "WebSocketPingInterval": ("20", False, "int"),
    "ChargeProfileMaxStackLevel": ("8", True, "int"),
    "ChargingScheduleAllowedChargingRateUnit": ("Current,Power", True, "text"),
    "ChargingScheduleMaxPeriods": ("24", True, "int"),
    "MaxChargingProfilesInstalled": ("32", True, "int"),
    "ReserveConnectorZeroSupported": ("false", True, "bool"),
    "LocalAuthListEnabled": ("true", False, "bool"),
    "LocalAuthListMaxLength": ("100", True, "int"),
    "SendLocalListMaxLength": ("20", True, "int"),
}


def _seconds_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def _valid(kind: str, value: str) -> bool:
    if kind == "bool":
        return value.lower() in ("true", "false")
    if kind == "measurands":
        return all(item.strip() in MEASURANDS for item in value.split(","))
    if kind in ("int", "seconds"):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return False
        whole = kind == "seconds" or number == number.to_integral_value()
        return number.is_finite() and whole and (number > 0 if kind == "seconds" else number >= 0)
    return True


class Configuration:
    """The charge point's configuration keys (GetConfiguration / ChangeConfiguration)."""

    def __init__(self, connectors: int, meter_interval: float) -> None:
        self.values = {key: default for key, (default, _, _) in KEYS.items()}
        self.values["NumberOfConnectors"] = str(connectors)
        self.values["MeterValueSampleInterval"] = _seconds_text(meter_interval)

    def get(self, keys: list[str] | None) -> Payload:
        """The GetConfiguration response for the asked keys (all when none are asked)."""
        asked = keys or list(self.values)
        known = [{"key": k, "readonly": KEYS[k][1], "value": self.values[k]} for k in asked if k in self.values]
        unknown = [k for k in asked if k not in self.values]
        return {"configurationKey": known, **({"unknownKey": unknown} if unknown else {})}

    def change(self, key: str, value: str) -> str:
        """Apply ChangeConfiguration: Accepted, Rejected (read-only or a bad value) or NotSupported."""
        if key not in KEYS or key not in self.values:
            return "NotSupported"
        _, readonly, kind = KEYS[key]
        if readonly or not _valid(kind, value):
            return "Rejected"
        self.set_value(key, value)
        return "Accepted"

    def set_value(self, key: str, value: str) -> None:
        """Store a value without checks (the charger's own changes)."""
        self.values[key] = value

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between heartbeats."""
        return float(self.values["HeartbeatInterval"])

    @property
    def meter_interval(self) -> float:
        """Seconds between periodic MeterValues."""
        return float(self.values["MeterValueSampleInterval"])

    @property
    def measurands(self) -> list[str]:
        """The measurands sampled into MeterValues."""
        return [item.strip() for item in self.values["MeterValuesSampledData"].split(",")]

    def flag(self, key: str) -> bool:
        """A boolean key."""
        return self.values[key].lower() == "true"


# ---------------------------------------------------------------------- payload access


def _get(payload: Payload, key: str, kind: type, required: bool = True) -> Any:
    if key not in payload:
        if required:
            raise CallError("OccurenceConstraintViolation", f"{key} is required")
        return None
    value = payload[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise CallError("TypeConstraintViolation", f"{key} must be {kind.__name__}")
    return value


def _choice(payload: Payload, key: str, choices: tuple[str, ...], required: bool = True) -> Any:
    value = _get(payload, key, str, required)
    if value is not None and value not in choices:
        raise CallError("PropertyConstraintViolation", f"{key} must be one of {', '.join(choices)}")
    return value


def _status(status: str, follow_up: FollowUp | None = None) -> Answer:
    return {"status": status}, follow_up


def _later(action: Callable[[], None]) -> FollowUp:
    async def run() -> None:
        action()

    return run


# ---------------------------------------------------------------------- handlers


def on_remote_start(charger: SimulatedCharger, payload: Payload) -> Answer:
    """Accept when the connector (or the first free one) can start, and start a session on it."""
    id_tag = _get(payload, "idTag", str)
    number = _get(payload, "connectorId", int, required=False)
    profile = _get(payload, "chargingProfile", dict, required=False)
    if profile is not None and profile.get("chargingProfilePurpose") != "TxProfile":
        return _status("Rejected")
    candidates = [charger.connectors[number]] if number in charger.connectors else []
    if number is None:
        candidates = list(charger.connectors.values())
    free = [c for c in candidates if sessions.can_start(charger, c) and reservations.admits(charger, c, id_tag)]
    if not free:
        return _status("Rejected")
    conn = free[0]
    conn.busy = True

    async def start() -> None:
        conn.busy = False
        await sessions.run_session(charger, conn, id_tag, remote=True, profile=profile)

    return _status("Accepted", start)


def _connector_of(charger: SimulatedCharger, transaction_id: int) -> Connector | None:
    for conn in charger.connectors.values():
        if conn.transaction is not None and conn.transaction.transaction_id == transaction_id:
            return conn
    return None


def on_remote_stop(charger: SimulatedCharger, payload: Payload) -> Answer:
    """Accept for an active transaction and stop it with reason Remote; else Rejected."""
    conn = _connector_of(charger, _get(payload, "transactionId", int))
    if conn is None:
        return _status("Rejected")
    return _status("Accepted", _later(lambda: sessions.end_transaction(charger, conn, "Remote")))


def on_reset(charger: SimulatedCharger, payload: Payload) -> Answer:
    """Accept, then stop transactions, close the socket, reconnect and boot again."""
    kind = _choice(payload, "type", ("Hard", "Soft"))
    return _status("Accepted", lambda: charger.reset(kind))


def on_unlock_connector(charger: SimulatedCharger, payload: Payload) -> Answer:
    """Unlock a connector (stopping its transaction: UnlockCommand); NotSupported for 0 or unknown."""
    conn = charger.connectors.get(_get(payload, "connectorId", int))
    if conn is None:
        return _status("NotSupported")
    return _status("Unlocked", _later(lambda: sessions.end_transaction(charger, conn, "UnlockCommand")))


def on_change_availability(charger: SimulatedCharger, payload: Payload) -> Answer:
    """Accepted (Scheduled while a transaction runs); the status follows the change."""
    number = _get(payload, "connectorId", int)
    operative = _choice(payload, "type", ("Inoperative", "Operative")) == "Operative"
    if number != 0 and number not in charger.connectors:
        return _status("Rejected")
    targets = list(charger.connectors.values()) if number == 0 else [charger.connectors[number]]
    busy = any(conn.transaction for conn in targets)

    def apply() -> None:
        for conn in targets:
            if conn.transaction is not None:
                conn.scheduled = operative
                continue
            conn.operative, conn.scheduled = operative, None
            if not conn.busy:
                charger.set_status(conn.number, reservations.idle_status(charger, conn))
        if number == 0 and busy:
            charger.scheduled0 = operative
        elif number == 0:
            charger.operative0 = operative
            charger.set_status(0, "Available" if operative else "Unavailable")

    return _status("Scheduled" if busy else "Accepted", _later(apply))


def _constant(payload: Payload) -> Callable[[], Payload]:
    return lambda: payload


def _triggered(charger: SimulatedCharger, message: str, number: int | None) -> Callable[[], None] | None:
    idle = _constant({"status": "Idle"})
    actions: dict[str, Callable[[], None]] = {
        "BootNotification": lambda: charger.queue(
            "BootNotification", charger.boot_payload, on_result=charger.apply_boot_result
        ),
        "Heartbeat": lambda: charger.queue("Heartbeat", dict),
        "MeterValues": lambda: _send_meter_values(charger, number),
        "StatusNotification": lambda: _send_statuses(charger, number),
        "DiagnosticsStatusNotification": lambda: charger.queue("DiagnosticsStatusNotification", idle),
        "FirmwareStatusNotification": lambda: charger.queue("FirmwareStatusNotification", idle),
    }
    return actions.get(message)


def _send_meter_values(charger: SimulatedCharger, number: int | None) -> None:
    for conn in charger.connectors.values():
        if number in (None, 0, conn.number):
            sessions.send_meter_values(charger, conn, "Trigger", keep=False)


def _send_statuses(charger: SimulatedCharger, number: int | None) -> None:
    for connector, status in charger.statuses.items():
        if number is None or number == connector:
            payload = {"connectorId": connector, "errorCode": "NoError", "status": status}
            charger.queue("StatusNotification", _constant({**payload, "timestamp": charger.now_text()}))


def on_trigger_message(charger: SimulatedCharger, payload: Payload) -> Answer:
    """Accept and send the requested message; NotImplemented for a message it cannot send."""
    message = _get(payload, "requestedMessage", str)
    number = _get(payload, "connectorId", int, required=False)
    if number is not None and number != 0 and number not in charger.connectors:
        return _status("Rejected")
    action = _triggered(charger, message, number)
    if action is None:
        return _status("NotImplemented")
    return _status("Accepted", _later(action))


def on_get_configuration(charger: SimulatedCharger, payload: Payload) -> Answer:
    """Known keys with their values and read-only flags; the rest as unknownKey."""
    keys = _get(payload, "key", list, required=False)
    if keys is not None and not all(isinstance(key, str) for key in keys):
        raise CallError("TypeConstraintViolation", "key must be an array of strings")
    return charger.config.get(keys), None


def on_change_configuration(charger: SimulatedCharger, payload: Payload) -> Answer:
    """Accepted for writable keys (applied at once), Rejected for read-only, NotSupported for unknown."""
    key, value = _get(payload, "key", str), _get(payload, "value", str)
    status = charger.config.change(key, value)
    if status != "Accepted":
        return _status(status)
    return _status(status, _later(lambda: charger.on_config_changed(key)))


def on_set_charging_profile(charger: SimulatedCharger, payload: Payload) -> Answer:
    """Install the profile (R-10 replacement) and apply the new limit; Rejected when not allowed."""
    number = _get(payload, "connectorId", int)
    try:
        status = sessions.install_profile(charger, number, _get(payload, "csChargingProfiles", dict))
    except ProfileError as error:
        raise CallError("FormationViolation", str(error)) from None
    return _status(status, _later(lambda: sessions.refresh_all(charger)) if status == "Accepted" else None)


def on_clear_charging_profile(charger: SimulatedCharger, payload: Payload) -> Answer:
    """Clear by id or by connector/purpose/stack level: Accepted, or Unknown when nothing matched."""
    profile_id = _get(payload, "id", int, required=False)
    number = _get(payload, "connectorId", int, required=False)
    purpose = _get(payload, "chargingProfilePurpose", str, required=False)
    level = _get(payload, "stackLevel", int, required=False)
    if not charger.profiles.clear(profile_id, number, purpose, level):
        return _status("Unknown")
    return _status("Accepted", _later(lambda: sessions.refresh_all(charger)))


def on_get_composite_schedule(charger: SimulatedCharger, payload: Payload) -> Answer:
    """The effective schedule for [now, now + duration]; Rejected for an unknown connector."""
    number, duration = _get(payload, "connectorId", int), _get(payload, "duration", int)
    unit = _choice(payload, "chargingRateUnit", ("A", "W"), required=False) or "A"
    if (number != 0 and number not in charger.connectors) or duration < 0:
        return _status("Rejected")
    conn = charger.connectors.get(number)
    phases = conn.meter.active_phases if conn else charger.phases
    now = charger.now()
    schedule = charger.profiles.composite(
        number, now, duration, unit=unit, session=sessions.session_of(conn), phases=phases
    )
    start = charger.now_text()
    answer = {"status": "Accepted", "connectorId": number, "scheduleStart": start}
    return {**answer, "chargingSchedule": {"startSchedule": start, **schedule}}, None


SIMULATOR_VENDOR = "org.voltline.simulator"


def on_data_transfer(charger: SimulatedCharger, payload: Payload) -> Answer:
    """OCPP 1.6 §5.6: vendor `org.voltline.simulator`, message `Echo` answers Accepted with the data it got."""
    vendor = _get(payload, "vendorId", str)
    message = _get(payload, "messageId", str, required=False)
    data = _get(payload, "data", str, required=False)
    if vendor != SIMULATOR_VENDOR:
        return {"status": "UnknownVendorId"}, None
    if message != "Echo":
        return {"status": "UnknownMessageId"}, None
    return {"status": "Accepted", **({} if data is None else {"data": data})}, None


def _fixed(response: Payload) -> Callable[[SimulatedCharger, Payload], Answer]:
    def handler(charger: SimulatedCharger, payload: Payload) -> Answer:
        return response, None

    return handler


HANDLERS: dict[str, Callable[[SimulatedCharger, Payload], Answer]] = {
    "RemoteStartTransaction": on_remote_start,
    "RemoteStopTransaction": on_remote_stop,
    "Reset": on_reset,
    "UnlockConnector": on_unlock_connector,
    "ChangeAvailability": on_change_availability,
    "TriggerMessage": on_trigger_message,
    "GetConfiguration": on_get_configuration,
    "ChangeConfiguration": on_change_configuration,
    "SetChargingProfile": on_set_charging_profile,
    "ClearChargingProfile": on_clear_charging_profile,
    "GetCompositeSchedule": on_get_composite_schedule,
    "ClearCache": _fixed({"status": "Accepted"}),
    "DataTransfer": on_data_transfer,
    "GetLocalListVersion": local_list.on_get_local_list_version,
    "SendLocalList": local_list.on_send_local_list,
    "ReserveNow": reservations.on_reserve_now,
    "CancelReservation": reservations.on_cancel_reservation,
    "GetDiagnostics": diagnostics.on_get_diagnostics,
    "GetLog": diagnostics.on_get_log,
    "UpdateFirmware": firmware.on_update_firmware,
}


def answer(charger: SimulatedCharger, action: str, payload: Any) -> Answer:
    """Answer one CSMS call (CallError for NotImplemented actions and bad payloads)."""
    handler = HANDLERS.get(action)
    if handler is None:
        raise CallError("NotImplemented", f"{action} is not supported by this charge point")
    if not isinstance(payload, dict):
        raise CallError("FormationViolation", "the payload must be a JSON object")
    return handler(charger, payload)
