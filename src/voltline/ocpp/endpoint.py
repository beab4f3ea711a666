"""The WebSocket route `/ocpp/{identity}`: subprotocol, identity and password at upgrade, then the receive loop.

Upgrade (DESIGN: OCPP): no offered subprotocol we speak -> 400; an identity no charger has ->
404 (unless auto-registration is on); a charger with a password and a wrong or missing HTTP
Basic password -> 401. These are real HTTP answers to the upgrade request (the ASGI
websocket denial response), never a socket accepted and then closed.

Receive loop: every frame counts as a sign of life. A frame that is not an OCPP-J array with a
message id is logged and dropped; a broken CALL gets its CALLERROR; a CALL is decoded (strictly,
or leniently for a lenient charger), dispatched to the version's `HANDLERS`, and answered
with the handler's result or a CALLERROR; answers to our calls go to the session. The socket
stays open whatever a frame holds; frames over the size limit are closed with 1009 by uvicorn.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from sqlalchemy.engine import RowMapping
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from voltline import codec
from voltline.domain.credentials import check_ocpp_password
from voltline.errors import ChargerOfflineError, VoltlineError
from voltline.ocpp.gateway import Gateway
from voltline.ocpp.rpc import (
    Call,
    CallError,
    CallResult,
    FrameDropped,
    FrameRejected,
    OcppError,
    Version,
    code_for,
    decode_call_payload,
    encode_call_error,
    encode_call_result,
    parse_frame,
)
from voltline.ocpp.schema_check import encode_payload
from voltline.ocpp.session import Session
from voltline.ocpp.v16.handlers import HANDLERS as V16_HANDLERS
from voltline.ocpp.v16.messages import REQUESTS as V16_REQUESTS

log = logging.getLogger("voltline.ocpp")

Handler = Callable[[Any, Any], Awaitable[msgspec.Struct]]

# Offered subprotocol -> the OCPP version we speak on it, in our order of preference.
SUBPROTOCOLS: dict[str, Version] = {"ocpp1.6": "1.6"}
HANDLERS: dict[Version, Mapping[str, Handler]] = {"1.6": V16_HANDLERS}
# Actions of the version that a charger may not send us: NotSupported rather than NotImplemented.
KNOWN_ACTIONS: dict[Version, Mapping[str, Any]] = {"1.6": V16_REQUESTS}


async def ocpp_endpoint(websocket: WebSocket) -> None:
    """Accept a charger's socket and serve it until it closes."""
    gateway: Gateway = websocket.app.state.gateway
    identity = str(websocket.path_params["identity"])
    subprotocol = choose_subprotocol(websocket.scope.get("subprotocols") or [])
    if subprotocol is None:
        await _deny(websocket, 400, "No supported OCPP subprotocol offered (ocpp1.6).")
        return
    charger = await gateway.admit(identity)
    if charger is None:
        await _deny(websocket, 404, "Unknown charge point identity.")
        return
    if not _password_ok(websocket, charger, gateway.runtime.secret_key):
        await _deny(websocket, 401, "Unauthenticated.", {"WWW-Authenticate": 'Basic realm="Voltline OCPP"'})
        return
    await websocket.accept(subprotocol=subprotocol)
    session = gateway.new_session(charger, SUBPROTOCOLS[subprotocol], _sender(websocket), _closer(websocket))
    async with gateway.connected(session):
        await _receive(websocket, session, gateway)


def choose_subprotocol(offered: list[str]) -> str | None:
    """The first subprotocol we speak, in our order of preference, that the charger offered."""
    return next((name for name in SUBPROTOCOLS if name in offered), None)


async def _deny(websocket: WebSocket, status: int, text: str, headers: Mapping[str, str] | None = None) -> None:
    body = codec.encode_json({"message": text})
    response = Response(body, status_code=status, headers=headers, media_type="application/json")
    await websocket.send_denial_response(response)


def _password_ok(websocket: WebSocket, charger: RowMapping, secret_key: str) -> bool:
    """OCPP security profile 1/2: HTTP Basic, the password checked against the charger's hash."""
    stored = charger["password_hash"]
    if not stored:
        return True
    password = _basic_password(websocket.headers.get("authorization", ""))
    return password is not None and check_ocpp_password(secret_key, password, stored)


def _basic_password(header: str) -> str | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon else None


def _sender(websocket: WebSocket) -> Callable[[str], Awaitable[None]]:
    async def send(text: str) -> None:
        try:
            await websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            raise ChargerOfflineError(websocket.path_params["identity"]) from None

    return send


def _closer(websocket: WebSocket) -> Callable[[str], Awaitable[None]]:
    async def close(reason: str) -> None:
        await websocket.close(1000, reason)

    return close


async def _receive(websocket: WebSocket, session: Session, gateway: Gateway) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("text")
        if data is None:
            data = message.get("bytes") or b""
        if session.touch():
            await gateway.revive(session)
        try:
            await handle_frame(session, data)
        except ChargerOfflineError:
            return


async def handle_frame(session: Session, data: str | bytes) -> None:
    """Sort one frame and act on it: drop, reject, answer, or settle one of our calls."""
    frame = parse_frame(data, session.version)
    if isinstance(frame, Call | CallResult | CallError) and frame.nul_fields:
        where = f"{frame.action} " if isinstance(frame, Call) else ""
        log.warning("%s: NUL replaced by U+FFFD in %s%s", session.identity, where, ", ".join(frame.nul_fields))
    if isinstance(frame, Call):
        await answer_call(session, frame)
    elif isinstance(frame, CallResult | CallError):
        _settle(session, frame)
    elif isinstance(frame, FrameRejected):
        await _send_error(session, frame.reply, None)
    elif isinstance(frame, FrameDropped):
        log.warning("%s: dropped a frame: %s", session.identity, frame.reason)


def _settle(session: Session, frame: CallResult | CallError) -> None:
    action = session.settle(frame)
    if action is None:
        log.info("%s: ignored an answer to no outstanding call (%s)", session.identity, frame.message_id)
    if isinstance(frame, CallResult):
        session.message_log.record("in", 3, frame.message_id, action, frame.payload)
    else:
        session.message_log.record("in", 4, frame.message_id, action, _error_text(frame))


async def answer_call(session: Session, call: Call) -> None:
    """Run the CALL's handler and send its CALLRESULT, or the CALLERROR for what went wrong."""
    session.message_log.record("in", 2, call.message_id, call.action, call.payload)
    try:
        result = await _dispatch(session, call)
    except OcppError as error:
        await _send_error(session, error.to_call_error(call.message_id), call.action)
        return
    except VoltlineError as error:
        code = code_for(session.version, "generic")
        await _send_error(session, CallError(call.message_id, code, str(error)), call.action)
        return
    except Exception:  # task boundary: one bad frame must not end the connection
        log.exception("%s: handler for %s failed", session.identity, call.action)
        await _send_error(session, CallError(call.message_id, "InternalError", "Internal error"), call.action)
        return
    body = encode_payload(result)
    await session.send(encode_call_result(call.message_id, msgspec.Raw(body)))
    session.message_log.record("out", 3, call.message_id, call.action, body)


async def _dispatch(session: Session, call: Call) -> msgspec.Struct:
    handler = HANDLERS[session.version].get(call.action)
    if handler is None:
        if call.action in KNOWN_ACTIONS[session.version]:
            raise OcppError("NotSupported", f"{call.action} is not sent by a charge point")
        raise OcppError(code_for(session.version, "not_implemented"), f"Unknown action {call.action!r}")
    decoded = decode_call_payload(session.version, call.action, call.payload, lenient=session.ctx.lenient)
    if decoded.leniencies:
        log.info("%s: %s accepted leniently: %s", session.identity, call.action, "; ".join(decoded.leniencies))
    return await handler(session.ctx, decoded.message)


async def _send_error(session: Session, error: CallError, action: str | None) -> None:
    await session.send(encode_call_error(error))
    session.message_log.record("out", 4, error.message_id, action, _error_text(error))


def _error_text(error: CallError) -> str:
    body = {"errorCode": error.code, "errorDescription": error.description, "errorDetails": error.details}
    return codec.encode_json(body).decode()
