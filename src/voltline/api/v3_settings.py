"""v3 charger settings (spec/volttime-v3.md §3.10): plug-charge, lock (alias cable-lock), socket-lock.

Paths under `/api/v3/chargers/{charger}/settings/...`; the charger is named by its UUID and must
belong to one of the caller's teams (any other UUID is a 404, §1.4). GETs answer the setting
unwrapped (§1.2), POSTs 204. What each setting does on the charger: services/charger_settings.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import UUID_PATTERN, json_body, json_response, no_content
from voltline.api._routing import Endpoint, Handler
from voltline.api.auth import authenticated, runtime
from voltline.domain.tenancy import Principal
from voltline.errors import NotFoundError
from voltline.services import charger_settings

PREFIX = "/api/v3/chargers/{charger}/settings"
TAG = "v3 Charger settings"

ENABLED_RULES = {"enabled": "required|boolean"}
PLUG_CHARGE_RULES = {"enabled": "required|boolean", "card_uid": "required_if:enabled,true|nullable|string|max:20"}
LOCK_BODY = Contract("V3LockBody", "Lock (true) or unlock (false) the charger.", ENABLED_RULES)
SOCKET_LOCK_BODY = Contract("V3SocketLockBody", "Keep the cable locked in the socket (true) or not.", ENABLED_RULES)
PLUG_CHARGE_BODY = Contract(
    "V3PlugChargeBody", "Plug & charge on or off; the card (RFID UID) is required to switch it on.", PLUG_CHARGE_RULES
)


class LockResource(msgspec.Struct):
    """The charger is locked: every connector Unavailable, no new sessions."""

    enabled: bool


class CableLockResource(msgspec.Struct):
    """The lock, and whether it may be toggled now (false while a session runs)."""

    enabled: bool
    interactable: bool


class SocketLockResource(msgspec.Struct, omit_defaults=True):
    """The cable retention lock as the charger reports it; `error` when it could not be read."""

    enabled: bool
    interactable: bool
    error: str | None = None


class PlugChargeResource(msgspec.Struct):
    """Plug & charge on or off, and the RFID UID that starts the sessions."""

    enabled: bool
    current_card: str | None


async def _charger(request: Request) -> Mapping[Any, Any]:
    """The caller's charger of the path by UUID (looked up before the body is checked)."""
    raw = str(request.path_params["charger"])
    if not UUID_PATTERN.fullmatch(raw):
        raise NotFoundError("charger")
    principal: Principal = request.state.principal
    return await charger_settings.user_charger(runtime(request), principal.user_id, raw)


async def get_plug_charge(request: Request) -> Response:
    """Return the plug & charge setting."""
    state = await charger_settings.get_plug_charge(runtime(request), await _charger(request))
    return json_response(PlugChargeResource(state.enabled, state.current_card))


async def set_plug_charge(request: Request) -> Response:
    """Switch plug & charge."""
    charger = await _charger(request)
    args = PLUG_CHARGE_BODY.validate(await json_body(request))
    await charger_settings.set_plug_charge(runtime(request), charger, bool(args["enabled"]), args.get("card_uid"))
    return no_content()


async def get_lock(request: Request) -> Response:
    """Return the lock setting."""
    state = await charger_settings.get_lock(runtime(request), await _charger(request))
    return json_response(LockResource(state.enabled))


async def get_cable_lock(request: Request) -> Response:
    """Return the lock setting with `interactable`."""
    state = await charger_settings.get_lock(runtime(request), await _charger(request))
    return json_response(CableLockResource(state.enabled, state.interactable))


async def set_lock(request: Request) -> Response:
    """Lock or unlock the charger."""
    charger = await _charger(request)
    args = LOCK_BODY.validate(await json_body(request))
    await charger_settings.set_lock(runtime(request), charger, bool(args["enabled"]))
    return no_content()


async def set_cable_lock(request: Request) -> Response:
    """Lock or unlock the charger (`cable-lock`, the alias of `lock`)."""
    return await set_lock(request)


async def get_socket_lock(request: Request) -> Response:
    """Return the socket lock as read from the charger."""
    state = await charger_settings.get_socket_lock(runtime(request), await _charger(request))
    return json_response(SocketLockResource(state.enabled, state.interactable, state.error))


async def set_socket_lock(request: Request) -> Response:
    """Switch the socket lock."""
    charger = await _charger(request)
    args = SOCKET_LOCK_BODY.validate(await json_body(request))
    await charger_settings.set_socket_lock(runtime(request), charger, bool(args["enabled"]))
    return no_content()


def _get(path: str, handler: Handler, summary: str, response: object) -> Endpoint:
    return Endpoint(
        "GET",
        f"{PREFIX}/{path}",
        handler,
        summary,
        TAG,
        response=response,
        shape="raw",
        errors=(404,),
        guard=authenticated,
    )


def _post(path: str, handler: Handler, summary: str, body: Contract, errors: tuple[int, ...]) -> Endpoint:
    return Endpoint(
        "POST",
        f"{PREFIX}/{path}",
        handler,
        summary,
        TAG,
        body=body,
        shape="empty",
        status=204,
        errors=errors,
        guard=authenticated,
    )


_LOCK_ERRORS = (404, 409, 422, 502, 504)

ENDPOINTS = [
    _get("plug-charge", get_plug_charge, "Get plug & charge", PlugChargeResource),
    _post("plug-charge", set_plug_charge, "Set plug & charge", PLUG_CHARGE_BODY, (404, 422)),
    _get("lock", get_lock, "Get the charger lock", LockResource),
    _post("lock", set_lock, "Lock or unlock the charger", LOCK_BODY, _LOCK_ERRORS),
    _get("cable-lock", get_cable_lock, "Get the charger lock (alias of lock, with interactable)", CableLockResource),
    _post("cable-lock", set_cable_lock, "Lock or unlock the charger (alias of lock)", LOCK_BODY, _LOCK_ERRORS),
    _get("socket-lock", get_socket_lock, "Get the socket (cable retention) lock", SocketLockResource),
    _post("socket-lock", set_socket_lock, "Set the socket (cable retention) lock", SOCKET_LOCK_BODY, _LOCK_ERRORS),
]
