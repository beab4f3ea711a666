"""The ingest ceiling: the same uvicorn + Starlette WebSocket route as `voltline serve`, doing nothing.

    python bench/echo_server.py --port 9000

`/ocpp/{identity}` accepts the `ocpp1.6` subprotocol and answers every CALL with the fixed
CALLRESULT `[3, <messageId>, {}]` (the frame decoded with msgspec, as the gateway does) and
does nothing else: no database, no schema check, no log. uvicorn runs with the options
`voltline serve` uses (uvloop, httptools, websockets-sansio, no permessage-deflate, the same
frame limit and ping interval), so the difference to the real gateway is the gateway's work.
`/healthz` answers 200 for the readiness check.
"""

from __future__ import annotations

import argparse

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

decode = msgspec.json.Decoder().decode
encode = msgspec.json.Encoder().encode


async def echo(websocket: WebSocket) -> None:
    """Answer every CALL with [3, id, {}] until the socket closes."""
    if "ocpp1.6" not in (websocket.scope.get("subprotocols") or []):
        await websocket.close(1002)
        return
    await websocket.accept(subprotocol="ocpp1.6")
    try:
        while True:
            frame = decode(await websocket.receive_text())
            if frame[0] == 2:
                await websocket.send_text(encode([3, frame[1], {}]).decode())
    except WebSocketDisconnect:
        return


async def healthz(_request: Request) -> Response:
    """200, for the readiness check."""
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(routes=[Route("/healthz", healthz), WebSocketRoute("/ocpp/{identity}", echo)])


def main() -> None:
    """Serve the echo route with voltline serve's uvicorn options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--ping-interval", type=float, default=60.0, help="as VOLTLINE_OCPP_PING_INTERVAL")
    parser.add_argument("--max-frame-bytes", type=int, default=256 * 1024, help="as VOLTLINE_OCPP_MAX_FRAME_BYTES")
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        ws="websockets-sansio",
        ws_max_size=args.max_frame_bytes,
        ws_per_message_deflate=False,
        ws_ping_interval=args.ping_interval,
        ws_ping_timeout=args.ping_interval,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
