"""v3 charger actions (spec volttime-v3 §3.8): start, stop, restart, unlock through the commands service;
charge-limit, clear-charge-limit, charging-profile and clear-charging-profile as the per-connector cap
of DESIGN "v3 API" (services/charge_limits.py: raw profiles are never installed beside the controller's).

Each answers `200 {"status": <the charger's status word>}` (a JSON body: R parses every answer);
an offline charger is a 409, a charger that does not answer in time a 504 `The charger did not
respond in time.` (spec v3 §1.4). `actions/stop` takes Voltline's transaction id, falling back
to the charger's OCPP transaction id (DESIGN "v3 API").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import INT_MAX, json_body, json_response
from voltline.api._routing import Endpoint
from voltline.api.auth import authenticated, runtime
from voltline.api.v3._common import V3, charger_team
from voltline.domain.ids import ChargerId
from voltline.services import charge_limits, charger_commands, chargers, reach

START_RULES = {"connector_id": f"nullable|integer|min:1|max:{INT_MAX}", "id_token": "required|string|max:20"}
STOP_RULES = {"transaction_id": f"nullable|integer|min:0|max:{INT_MAX}"}
UNLOCK_RULES = {"connector_id": f"required|integer|min:1|max:{INT_MAX}"}
START = Contract("V3StartBody", "Body of actions/start: the id token and, optionally, the connector.", START_RULES)
STOP = Contract(
    "V3StopBody",
    "Body of actions/stop: our (or the OCPP) transaction id; none = the active one.",
    STOP_RULES,
)
UNLOCK = Contract("V3UnlockBody", "Body of actions/unlock: the connector to unlock.", UNLOCK_RULES)
# spec v3 §3.8: `limit` in A (0 pauses; the service refuses 0 < limit < 6, R-40), connector 0 = all.
CHARGE_LIMIT_RULES = {
    "connector_id": f"required|integer|min:0|max:{INT_MAX}",
    "limit": "required|numeric|min:0",
    "stack_level": "nullable|integer|min:0|max:100",
    "number_phases": "nullable|integer|in:1,2,3",
}
CLEAR_LIMIT_RULES = {
    "connector_id": f"nullable|integer|min:0|max:{INT_MAX}",
    "stack_level": "nullable|integer|min:0|max:100",
}
CHARGING_PROFILE_RULES = {
    "connector_id": f"required|integer|min:0|max:{INT_MAX}",
    "charging_profile": "required|array",
}
CLEAR_PROFILE_RULES = {
    "id": f"nullable|integer|min:0|max:{INT_MAX}",
    "connector_id": f"nullable|integer|min:0|max:{INT_MAX}",
    "charging_profile_purpose": "nullable|string|in:ChargePointMaxProfile,TxDefaultProfile,TxProfile",
    "stack_level": "nullable|integer|min:0|max:100",
}
CHARGE_LIMIT = Contract(
    "V3ChargeLimitBody",
    "Body of actions/charge-limit: the cap in A (0 pauses) of a connector (0: all).",
    CHARGE_LIMIT_RULES,
)
CLEAR_LIMIT = Contract("V3ClearLimitBody", "Body of actions/clear-charge-limit (no connector: all).", CLEAR_LIMIT_RULES)
CHARGING_PROFILE = Contract(
    "V3ChargingProfileBody",
    "Body of actions/charging-profile: an OCPP 1.6 profile in snake_case; its first period becomes the cap.",
    CHARGING_PROFILE_RULES,
)
CLEAR_PROFILE = Contract(
    "V3ClearProfileBody",
    "Body of actions/clear-charging-profile: filters; the cap of the connector (or all) goes.",
    CLEAR_PROFILE_RULES,
)


class ActionResult(msgspec.Struct):
    """The charger's answer: its status word (Accepted, Rejected, Unlocked, ...)."""

    status: str


async def _charger(request: Request) -> tuple[Any, Mapping[Any, Any]]:
    team_id, uuid = await charger_team(request)
    return team_id, await chargers.get_charger(runtime(request), team_id, uuid)


def _result(result: Mapping[str, Any]) -> Response:
    return json_response(ActionResult(status=str(result.get("status", "Accepted"))))


async def v3_start(request: Request) -> Response:
    """Ask the charger to start a session for `id_token` (OCPP RemoteStartTransaction)."""
    team_id, charger = await _charger(request)
    clean = START.validate(await json_body(request))
    args: dict[str, Any] = {"id_tag": clean["id_token"]}
    if clean.get("connector_id") is not None:
        args["connector_id"] = clean["connector_id"]
    return _result(await charger_commands.send_command(runtime(request), team_id, charger, "remote_start", args))


async def v3_stop(request: Request) -> Response:
    """Ask the charger to stop a session: the one named, or its latest active one (OCPP RemoteStopTransaction)."""
    team_id, charger = await _charger(request)
    clean = STOP.validate(await json_body(request))
    rt = runtime(request)
    given = clean.get("transaction_id")
    transaction_id = await reach.stop_transaction_id(rt, ChargerId(charger["id"]), given)
    return _result(await charger_commands.stop_charging(rt, team_id, charger, transaction_id))


async def v3_restart(request: Request) -> Response:
    """Restart the charger (OCPP Reset, Soft)."""
    team_id, charger = await _charger(request)
    return _result(await charger_commands.send_command(runtime(request), team_id, charger, "reset", {"type": "Soft"}))


async def v3_unlock(request: Request) -> Response:
    """Unlock a connector (OCPP UnlockConnector)."""
    team_id, charger = await _charger(request)
    clean = UNLOCK.validate(await json_body(request))
    return _result(await charger_commands.send_command(runtime(request), team_id, charger, "unlock", clean))


async def v3_charge_limit(request: Request) -> Response:
    """Cap a connector's current (0 pauses); the controller or a TxDefaultProfile of ours enforces it."""
    team_id, charger = await _charger(request)
    clean = CHARGE_LIMIT.validate(await json_body(request))
    options = {"stack_level": clean.get("stack_level"), "number_phases": clean.get("number_phases")}
    rt = runtime(request)
    result = await charge_limits.set_charge_limit(
        rt, team_id, charger, int(clean["connector_id"]), clean["limit"], **options
    )
    return _result(result)


async def v3_clear_charge_limit(request: Request) -> Response:
    """Lift a connector's cap (no connector: every connector's)."""
    team_id, charger = await _charger(request)
    clean = CLEAR_LIMIT.validate(await json_body(request))
    connector = int(clean.get("connector_id") or 0)
    return _result(await charge_limits.clear_charge_limit(runtime(request), team_id, charger, connector))


async def v3_charging_profile(request: Request) -> Response:
    """A charging profile, taken as the connector's cap (its first period's limit)."""
    team_id, charger = await _charger(request)
    clean = CHARGING_PROFILE.validate(await json_body(request))
    profile = clean["charging_profile"]
    rt = runtime(request)
    connector = int(clean["connector_id"])
    return _result(await charge_limits.cap_from_charging_profile(rt, team_id, charger, connector, profile))


async def v3_clear_charging_profile(request: Request) -> Response:
    """Clear the cap a charging profile set (no connector: every connector's)."""
    team_id, charger = await _charger(request)
    clean = CLEAR_PROFILE.validate(await json_body(request))
    connector = int(clean.get("connector_id") or 0)
    return _result(await charge_limits.clear_charge_limit(runtime(request), team_id, charger, connector))


def _action(name: str, handler: Any, summary: str, body: Contract | None) -> Endpoint:
    return Endpoint(
        "POST",
        f"{V3}/chargers/{{charger}}/actions/{name}",
        handler,
        summary,
        "v3 Actions",
        body=body,
        response=ActionResult,
        shape="raw",
        errors=(409, 422, 502, 504) if body is not None else (409, 502, 504),
        guard=authenticated,
    )


ENDPOINTS = [
    _action("start", v3_start, "Start a charging session", START),
    _action("stop", v3_stop, "Stop a charging session", STOP),
    _action("restart", v3_restart, "Restart the charger", None),
    _action("unlock", v3_unlock, "Unlock a connector", UNLOCK),
    _action("charge-limit", v3_charge_limit, "Limit the charging current", CHARGE_LIMIT),
    _action("clear-charge-limit", v3_clear_charge_limit, "Clear the charge limit", CLEAR_LIMIT),
    _action("charging-profile", v3_charging_profile, "Set a charging profile", CHARGING_PROFILE),
    _action("clear-charging-profile", v3_clear_charging_profile, "Clear charging profiles", CLEAR_PROFILE),
]
