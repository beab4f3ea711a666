"""The bare echo: a `websockets` library server that decodes each frame and answers a fixed CALLRESULT.

    python bench/ws_echo_server.py --port 9000

The ceiling for OCPP ingest on one core without any framework of ours: the `websockets`
asyncio server (on uvloop, as `voltline serve` runs; no permessage-deflate, 256 KiB frame
limit) reads each text frame, decodes it with the standard library's `json`, and answers every
CALL with `[3, <messageId>, {}]`. No routing, no schema check, no database.
"""

from __future__ import annotations

import argparse
import json

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


async def echo(connection: ServerConnection) -> None:
    """Answer every CALL until the socket closes."""
    try:
        async for text in connection:
            frame = json.loads(text)
            if frame[0] == 2:
                await connection.send(json.dumps([3, frame[1], {}]))
    except ConnectionClosed:
        return


async def main_async(host: str, port: int) -> None:
    """Serve forever."""
    async with serve(
        echo, host, port, subprotocols=["ocpp1.6"], compression=None, max_size=256 * 1024, ping_interval=60
    ) as server:
        await server.serve_forever()


def main() -> None:
    """Parse the options and serve on uvloop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    import uvloop

    uvloop.run(main_async(args.host, args.port))


if __name__ == "__main__":
    main()
