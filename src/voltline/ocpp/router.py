"""What each inbound frame does (OCPP-J 1.6 §4): a CALL is answered, an answer settles the connection's pending call.

A frame that is not an OCPP-J array with a message id is logged and dropped; a broken CALL gets
its CALLERROR; a CALL is decoded (strictly, or leniently for a lenient charger), dispatched to the
version's `HANDLERS`, and answered with the handler's result or a CALLERROR; answers to our calls
go to the connection. The socket stays open whatever a frame holds.

DESIGN "Durability": while the database cannot take writes (`store.engine.is_unavailable`), a
CALL's handler is run again until `VOLTLINE_OCPP_HOLD_SECONDS` have passed since it arrived
(a handler's transaction committed or not, and replays are idempotent), and then the socket is
closed with 1011 — never a CALLERROR that the charger would take as final.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec

from voltline import codec
from voltline.errors import ChargerOfflineError, StoreUnavailableError, VoltlineError
from voltline.ocpp.connection import Connection
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
from voltline.ocpp.v16.handlers import HANDLERS as V16_HANDLERS
from voltline.ocpp.v16.messages import REQUESTS as V16_REQUESTS
from voltline.store.engine import is_unavailable
from voltline.store.ocpp_log import ACTION_MAX, MESSAGE_ID_MAX

log = logging.getLogger("voltline.ocpp")

Handler = Callable[[Any, Any], Awaitable[msgspec.Struct]]

HANDLERS: dict[Version, Mapping[str, Handler]] = {"1.6": V16_HANDLERS}
# Actions of the version that a charger may not send us: NotSupported rather than NotImplemented.
KNOWN_ACTIONS: dict[Version, Mapping[str, Any]] = {"1.6": V16_REQUESTS}
# Seconds between attempts of a handler while the database cannot take writes, doubling up to the max.
HOLD_RETRY_DELAY = 0.05
HOLD_RETRY_DELAY_MAX = 1.0


async def handle_frame(connection: Connection, data: str | bytes) -> None:
    """Sort one frame and act on it: drop, reject, answer, or settle one of our calls."""
    frame = parse_frame(data, connection.version)
    if isinstance(frame, Call | CallResult | CallError) and frame.nul_fields:
        where = f"{frame.action} " if isinstance(frame, Call) else ""
        log.warning("%s: NUL replaced by U+FFFD in %s%s", connection.identity, where, ", ".join(frame.nul_fields))
    if isinstance(frame, Call):
        await answer_call(connection, frame)
    elif isinstance(frame, CallResult | CallError):
        _settle(connection, frame)
    elif isinstance(frame, FrameRejected):
        await _send_error(connection, frame.reply, None)
    elif isinstance(frame, FrameDropped):
        connection.ctx.counts.dropped_frames += 1
        log.warning("%s: dropped a frame: %s", connection.identity, frame.reason)


def _settle(connection: Connection, frame: CallResult | CallError) -> None:
    action = connection.settle(frame)
    if action is None:
        shown = frame.message_id[:MESSAGE_ID_MAX]
        log.info("%s: ignored an answer to no outstanding call (%s)", connection.identity, shown)
    if isinstance(frame, CallResult):
        connection.message_log.record("in", 3, frame.message_id, action, frame.payload)
    else:
        connection.ctx.counts.call_error("in", frame.code)
        connection.message_log.record("in", 4, frame.message_id, action, _error_text(frame))


async def answer_call(connection: Connection, call: Call) -> None:
    """Run the CALL's handler and send its CALLRESULT, or the CALLERROR for what went wrong."""
    connection.message_log.record("in", 2, call.message_id, call.action, call.payload)
    try:
        result = await _dispatch_held(connection, call)
    except StoreUnavailableError as error:
        # DESIGN "Durability": no answer that says stored what is not; the charger retries later.
        log.warning(
            "%s: %s not stored in the hold time (%s); closing with 1011", connection.identity, call.action, error
        )
        await connection.close_unavailable()
        raise ChargerOfflineError(connection.identity) from None
    except OcppError as error:
        await _send_error(connection, error.to_call_error(call.message_id), call.action)
        return
    except VoltlineError as error:
        code = code_for(connection.version, "generic")
        await _send_error(connection, CallError(call.message_id, code, str(error)), call.action)
        return
    except Exception:  # task boundary: one bad frame must not end the connection
        log.exception("%s: handler for %s failed", connection.identity, call.action)
        await _send_error(connection, CallError(call.message_id, "InternalError", "Internal error"), call.action)
        return
    body = encode_payload(result)
    await connection.send(encode_call_result(call.message_id, msgspec.Raw(body)))
    connection.ctx.counts.message("in", call.action, "result")
    connection.message_log.record("out", 3, call.message_id, call.action, body)
    if call.action == "BootNotification":
        await connection.answered_boot(str(getattr(result, "status", "")))


async def _dispatch_held(connection: Connection, call: Call) -> msgspec.Struct:
    """Dispatch; while the database cannot take writes, try again until the hold deadline (DESIGN: Durability).

    Handlers write in one transaction that either committed or did not, and every one of them is
    idempotent (a replayed Start/Stop finds its row), so running a failed one again is safe.
    """
    ctx = connection.ctx
    ctx.hold_until = ctx.clock.monotonic() + ctx.settings.ocpp_hold_seconds
    delay = HOLD_RETRY_DELAY
    while True:
        try:
            return await _dispatch(connection, call)
        except Exception as error:
            if not is_unavailable(error):
                raise
            left = ctx.hold_until - ctx.clock.monotonic()
            if left <= 0:
                raise StoreUnavailableError(str(error).splitlines()[0]) from error
            log.info("%s: %s waits for the database: %s", connection.identity, call.action, str(error).splitlines()[0])
            await ctx.clock.sleep(min(delay, left))
            delay = min(delay * 2, HOLD_RETRY_DELAY_MAX)


async def _dispatch(connection: Connection, call: Call) -> msgspec.Struct:
    handler = HANDLERS[connection.version].get(call.action)
    if handler is None:
        if call.action in KNOWN_ACTIONS[connection.version]:
            raise OcppError("NotSupported", f"{call.action} is not sent by a charge point")
        raise OcppError(code_for(connection.version, "not_implemented"), f"Unknown action {shown_action(call.action)}")
    decoded = decode_call_payload(connection.version, call.action, call.payload, lenient=connection.ctx.lenient)
    if decoded.leniencies:
        log.info("%s: %s accepted leniently: %s", connection.identity, call.action, "; ".join(decoded.leniencies))
    return await handler(connection.ctx, decoded.message)


def shown_action(action: str) -> str:
    """An action name as answers and logs show it: quoted, cut to the log's column (a charger chooses its length)."""
    if len(action) <= ACTION_MAX:
        return repr(action)
    return f"{action[:ACTION_MAX]!r}... ({len(action)} characters)"


async def _send_error(connection: Connection, error: CallError, action: str | None) -> None:
    await connection.send(encode_call_error(error))
    connection.ctx.counts.message("in", action, "error")
    connection.ctx.counts.call_error("out", error.code)
    connection.message_log.record("out", 4, error.message_id, action, _error_text(error))


def _error_text(error: CallError) -> str:
    body = {"errorCode": error.code, "errorDescription": error.description, "errorDetails": error.details}
    return codec.encode_json(body).decode()
