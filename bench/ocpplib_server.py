"""A central system built on the `ocpp` library: the reference point for durable ingest (DESIGN: Benchmarks).

    python bench/ocpplib_server.py --port 9000

The `ocpp` package's ChargePoint (1.6) over a `websockets` server, the way its README builds a
central system: every charger connection gets a ChargePoint whose `@on` handlers answer
BootNotification (Accepted), Heartbeat, Authorize, StartTransaction (a new transaction id),
StopTransaction and MeterValues. Nothing is stored: the library validates each CALL and its
answer against the OCA schemas, and that is all the work it does. Served on uvloop, as
`voltline serve` is, with no permessage-deflate and a 256 KiB frame limit.
"""

from __future__ import annotations

import argparse
import itertools
import logging
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
from websockets.asyncio.server import ServerConnection, serve

TRANSACTION_IDS = itertools.count(1)
ACCEPTED = {"status": AuthorizationStatus.accepted}


def now() -> str:
    """The current time as an OCPP timestamp."""
    return datetime.now(UTC).isoformat()


class CentralSystem(ChargePoint):  # type: ignore[misc]
    """One charger's connection: answers its CALLs, stores nothing."""

    @on(Action.boot_notification)
    def on_boot_notification(self, **_: Any) -> call_result.BootNotification:
        return call_result.BootNotification(current_time=now(), interval=300, status=RegistrationStatus.accepted)

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=now())

    @on(Action.authorize)
    def on_authorize(self, **_: Any) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info=ACCEPTED)

    @on(Action.start_transaction)
    def on_start_transaction(self, **_: Any) -> call_result.StartTransaction:
        return call_result.StartTransaction(transaction_id=next(TRANSACTION_IDS), id_tag_info=ACCEPTED)

    @on(Action.stop_transaction)
    def on_stop_transaction(self, **_: Any) -> call_result.StopTransaction:
        return call_result.StopTransaction()

    @on(Action.meter_values)
    def on_meter_values(self, **_: Any) -> call_result.MeterValues:
        return call_result.MeterValues()


async def handle(connection: ServerConnection) -> None:
    """Serve one charger until it goes away."""
    identity = (connection.request.path if connection.request else "/").rstrip("/").split("/")[-1]
    try:
        await CentralSystem(identity, connection).start()
    except Exception:  # the charger closed its socket
        return


async def main_async(host: str, port: int) -> None:
    """Serve forever."""
    async with serve(
        handle, host, port, subprotocols=["ocpp1.6"], compression=None, max_size=256 * 1024, ping_interval=60
    ) as server:
        await server.serve_forever()


def main() -> None:
    """Parse the options and serve on uvloop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    import uvloop

    uvloop.run(main_async(args.host, args.port))


if __name__ == "__main__":
    main()
