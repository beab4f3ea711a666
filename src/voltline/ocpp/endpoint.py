"""The WebSocket route `/ocpp/{identity}`: subprotocol, identity and password at upgrade, then frames in and out.

Upgrade (DESIGN: OCPP, Charger security): no offered subprotocol we speak -> 400; then one 401
for every other refusal — an identity no charger has (unless auto-registration is on), a
missing or wrong HTTP Basic login, a profile-2 charger without TLS, a throttled address — so
they cannot be told apart (`ocpp.authentication`). These are real HTTP answers to the upgrade
request (the ASGI websocket denial response), never a socket accepted and then closed.

After the upgrade the socket is one `Connection` (connection.py: its state, liveness, pending
call) held in the gateway's registry while it is open. The receive loop tells the connection it
heard from the charger and hands each frame to `router.handle_frame`; the connection writes
through this module's sender and closer. Frames over the size limit are closed with 1009 by
uvicorn. DESIGN "Durability": a socket whose connection cannot be recorded is closed with 1011.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from voltline import codec
from voltline.errors import ChargerOfflineError
from voltline.ocpp.authentication import admit_charger
from voltline.ocpp.connection import Connection
from voltline.ocpp.gateway import Gateway
from voltline.ocpp.router import handle_frame
from voltline.ocpp.rpc import Version
from voltline.store.engine import is_unavailable

log = logging.getLogger("voltline.ocpp")

# Offered subprotocol -> the OCPP version we speak on it, in our order of preference.
SUBPROTOCOLS: dict[str, Version] = {"ocpp1.6": "1.6"}


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
    connection = gateway.new_connection(charger, SUBPROTOCOLS[subprotocol], _sender(websocket), _closer(websocket))
    # The row drags its result's metadata along (~9 KiB of SQLAlchemy key maps): not kept for the socket's life.
    del charger
    await websocket.accept(subprotocol=subprotocol)
    connection.opened()
    try:
        async with gateway.connected(connection):
            await _receive(websocket, connection)
    except Exception as error:
        if not is_unavailable(error):
            raise
        # DESIGN "Durability": the connection could not be recorded; 1011 tells the charger to come back later.
        log.warning("%s: the database cannot take writes; closing with 1011", identity)
        await connection.close_unavailable()
    finally:
        connection.closed()


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


async def _receive(websocket: WebSocket, connection: Connection) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            connection.closed()
            return
        data = message.get("text")
        if data is None:
            data = message.get("bytes") or b""
        await connection.heard()
        try:
            await handle_frame(connection, data)
        except ChargerOfflineError:
            return
