"""The WebSocket route `/ocpp/{identity}`: subprotocol, identity and password at upgrade, then the receive loop.

Upgrade (DESIGN: OCPP, Charger security): no offered subprotocol we speak -> 400; then one 401
for every other refusal — an identity no charger has (unless auto-registration is on), a
missing or wrong HTTP Basic login, a profile-2 charger without TLS, a throttled address — so
they cannot be told apart (`ocpp.authentication`). These are real HTTP answers to the upgrade
request (the ASGI websocket denial response), never a socket accepted and then closed.

Receive loop: every frame counts as a sign of life. A frame that is not an OCPP-J array with a
message id is logged and dropped; a broken CALL gets its CALLERROR; a CALL is decoded (strictly,
or leniently for a lenient charger), dispatched to the version's `HANDLERS`, and answered
with the handler's result or a CALLERROR; answers to our calls go to the session. The socket
stays open whatever a frame holds; frames over the size limit are closed with 1009 by uvicorn.

DESIGN "Durability": while the database cannot take writes (`store.engine.is_unavailable`), a
CALL's handler is run again until `VOLTLINE_OCPP_HOLD_SECONDS` have passed since it arrived
(a handler's transaction committed or not, and replays are idempotent), meter frames wait for
their group commit until the same deadline, and then the socket is closed with 1011 — never a
CALLERROR that the charger would take as final. A socket whose connection cannot be recorded
is closed with 1011 as well.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from voltline import codec
from voltline.errors import ChargerOfflineError, StoreUnavailableError, VoltlineError
from voltline.ocpp.authentication import admit_charger
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
from voltline.store.engine import is_unavailable
from voltline.store.ocpp_log import ACTION_MAX, MESSAGE_ID_MAX

log = logging.getLogger("voltline.ocpp")

Handler = Callable[[Any, Any], Awaitable[msgspec.Struct]]

# Offered subprotocol -> the OCPP version we speak on it, in our order of preference.
SUBPROTOCOLS: dict[str, Version] = {"ocpp1.6": "1.6"}
HANDLERS: dict[Version, Mapping[str, Handler]] = {"1.6": V16_HANDLERS}
# Actions of the version that a charger may not send us: NotSupported rather than NotImplemented.
KNOWN_ACTIONS: dict[Version, Mapping[str, Any]] = {"1.6": V16_REQUESTS}
# Seconds between attempts of a handler while the database cannot take writes, doubling up to the max.
HOLD_RETRY_DELAY = 0.05
HOLD_RETRY_DELAY_MAX = 1.0


async def ocpp_endpoint(websocket: WebSocket) -> None:
    """Accept a charger's socket and serve it until it closes."""
    gateway: Gateway = websocket.app.state.gateway
    identity = str(websocket.path_params["identity"])
    subprotocol = choose_subprotocol(websocket.scope.get("subprotocols") or [])
    if subprotocol is None:
        await _deny(websocket, 400, "No supported OCPP subprotocol offered (ocpp1.6).")
        return
    try:
        charger = await admit_charger(websocket, gateway, identity)
    except Exception as error:
        if not is_unavailable(error):
            raise
        # DESIGN "Durability": the charger's row cannot be read now; a 503 makes it retry later.
        log.warning("%s: the database cannot be read; the upgrade is answered 503", identity[:64])
        await _deny(websocket, 503, "The database is unavailable; retry later.", {"Retry-After": "10"})
        return
    if charger is None:
        await _deny(websocket, 401, "Unauthenticated.", {"WWW-Authenticate": 'Basic realm="Voltline OCPP"'})
        return
    await websocket.accept(subprotocol=subprotocol)
    session = gateway.new_session(charger, SUBPROTOCOLS[subprotocol], _sender(websocket), _closer(websocket))
    try:
        async with gateway.connected(session):
            await _receive(websocket, session, gateway)
    except Exception as error:
        if not is_unavailable(error):
            raise
        # DESIGN "Durability": the connection could not be recorded; 1011 tells the charger to come back later.
        log.warning("%s: the database cannot take writes; closing with 1011", identity)
        await session.close_unavailable()


def choose_subprotocol(offered: list[str]) -> str | None:
    """The first subprotocol we speak, in our order of preference, that the charger offered."""
    return next((name for name in SUBPROTOCOLS if name in offered), None)


async def _deny(websocket: WebSocket, status: int, text: str, headers: Mapping[str, str] | None = None) -> None:
    body = codec.encode_json({"message": text})
    response = Response(body, status_code=status, headers=headers, media_type="application/json")
    await websocket.send_denial_response(response)


def _sender(websocket: WebSocket) -> Callable[[str], Awaitable[None]]:
    async def send(text: str) -> None:
        try:
            await websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            raise ChargerOfflineError(websocket.path_params["identity"]) from None

    return send


def _closer(websocket: WebSocket) -> Callable[[int, str], Awaitable[None]]:
    async def close(code: int, reason: str) -> None:
        # A replaced socket may be closing or gone already (the charger reconnected at once):
        # Starlette then raises WebSocketDisconnect (transport gone) or RuntimeError (close sent).
        try:
            await websocket.close(code, reason)
        except (WebSocketDisconnect, RuntimeError, OSError):
            log.debug("%s: the socket was already closed", websocket.path_params["identity"])

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
        session.ctx.counts.dropped_frames += 1
        log.warning("%s: dropped a frame: %s", session.identity, frame.reason)


def _settle(session: Session, frame: CallResult | CallError) -> None:
    action = session.settle(frame)
    if action is None:
        shown = frame.message_id[:MESSAGE_ID_MAX]
        log.info("%s: ignored an answer to no outstanding call (%s)", session.identity, shown)
    if isinstance(frame, CallResult):
        session.message_log.record("in", 3, frame.message_id, action, frame.payload)
    else:
        session.ctx.counts.call_error("in", frame.code)
        session.message_log.record("in", 4, frame.message_id, action, _error_text(frame))


async def answer_call(session: Session, call: Call) -> None:
    """Run the CALL's handler and send its CALLRESULT, or the CALLERROR for what went wrong."""
    session.message_log.record("in", 2, call.message_id, call.action, call.payload)
    try:
        result = await _dispatch_held(session, call)
    except StoreUnavailableError as error:
        # DESIGN "Durability": no answer that says stored what is not; the charger retries later.
        log.warning("%s: %s not stored in the hold time (%s); closing with 1011", session.identity, call.action, error)
        await session.close_unavailable()
        raise ChargerOfflineError(session.identity) from None
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
    session.ctx.counts.message("in", call.action, "result")
    session.message_log.record("out", 3, call.message_id, call.action, body)
    if call.action == "BootNotification":
        await session.answered_boot(str(getattr(result, "status", "")))


async def _dispatch_held(session: Session, call: Call) -> msgspec.Struct:
    """Dispatch; while the database cannot take writes, try again until the hold deadline (DESIGN: Durability).

    Handlers write in one transaction that either committed or did not, and every one of them is
    idempotent (a replayed Start/Stop finds its row), so running a failed one again is safe.
    """
    ctx = session.ctx
    ctx.hold_until = ctx.clock.monotonic() + ctx.settings.ocpp_hold_seconds
    delay = HOLD_RETRY_DELAY
    while True:
        try:
            return await _dispatch(session, call)
        except Exception as error:
            if not is_unavailable(error):
                raise
            left = ctx.hold_until - ctx.clock.monotonic()
            if left <= 0:
                raise StoreUnavailableError(str(error).splitlines()[0]) from error
            log.info("%s: %s waits for the database: %s", session.identity, call.action, str(error).splitlines()[0])
            await ctx.clock.sleep(min(delay, left))
            delay = min(delay * 2, HOLD_RETRY_DELAY_MAX)


async def _dispatch(session: Session, call: Call) -> msgspec.Struct:
    handler = HANDLERS[session.version].get(call.action)
    if handler is None:
        if call.action in KNOWN_ACTIONS[session.version]:
            raise OcppError("NotSupported", f"{call.action} is not sent by a charge point")
        raise OcppError(code_for(session.version, "not_implemented"), f"Unknown action {shown_action(call.action)}")
    decoded = decode_call_payload(session.version, call.action, call.payload, lenient=session.ctx.lenient)
    if decoded.leniencies:
        log.info("%s: %s accepted leniently: %s", session.identity, call.action, "; ".join(decoded.leniencies))
    return await handler(session.ctx, decoded.message)


def shown_action(action: str) -> str:
    """An action name as answers and logs show it: quoted, cut to the log's column (a charger chooses its length)."""
    if len(action) <= ACTION_MAX:
        return repr(action)
    return f"{action[:ACTION_MAX]!r}... ({len(action)} characters)"


async def _send_error(session: Session, error: CallError, action: str | None) -> None:
    await session.send(encode_call_error(error))
    session.ctx.counts.message("in", action, "error")
    session.ctx.counts.call_error("out", error.code)
    session.message_log.record("out", 4, error.message_id, action, _error_text(error))


def _error_text(error: CallError) -> str:
    body = {"errorCode": error.code, "errorDescription": error.description, "errorDetails": error.details}
    return codec.encode_json(body).decode()
