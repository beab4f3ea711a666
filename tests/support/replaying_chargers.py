"""Chargers that keep what was not answered and send it again: the load side of the crash test.

Each charger is a raw OCPP-J 1.6 peer on the `websockets` client (no Voltline code), with one
CALL outstanding at a time (OCPP-J 1.6 §4.1.1). It runs transactions on connector 1:
StartTransaction, MeterValues with a rising `Energy.Active.Import.Register` and four other
measurands, StopTransaction with the end reading as transactionData. Its meter and clock are
its own (one step of `STEP` per message), so every frame it sends is unique and can be found
again in the raw table.

A message counts as delivered only when its CALLRESULT arrived: then it is written to the
`Ledger` and forgotten, as a real charger deletes a queued message once it is answered
(OCPP 1.6 §4.7/§4.10: transaction-related messages are delivered reliably). A message without
an answer when the socket dies stays outstanding and is sent again, the same text with the same
message id, as the first CALL after the next BootNotification. A charger that replays a
StartTransaction learns its transaction id from that answer only. After a reconnect a charger
may also send its last answered MeterValues once more (`duplicate_chance`), as a charger that
lost power before it deleted the message: the server must store it once.

Calls from the server (smart-charging profiles, configuration reads) are answered at once:
SetChargingProfile, ClearChargingProfile and ChangeConfiguration with Accepted, GetConfiguration
with no keys, anything else with a NotSupported CALLERROR.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

EAIR = "Energy.Active.Import.Register"
STEP = timedelta(seconds=10)  # the chargers' clock moves this far per message
ID_TAG = "04A2B3C4D55E80"
BOOT = {"chargePointVendor": "Crash BV", "chargePointModel": "Replay-1"}
CALL_TIMEOUT = 60.0  # an answer held longer than this while the socket stays open is an error
RETRY_DELAY = 0.05
SERVER_CALL_ANSWERS: dict[str, dict[str, Any]] = {
    "SetChargingProfile": {"status": "Accepted"},
    "ClearChargingProfile": {"status": "Accepted"},
    "ChangeConfiguration": {"status": "Accepted"},
    "GetConfiguration": {"configurationKey": []},
}


def ocpp_time(moment: datetime) -> str:
    """An OCPP timestamp (UTC, seconds)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Delivered:
    """A transaction-related CALL of one charger that got a CALLRESULT, with that result."""

    identity: str
    action: str
    payload: dict[str, Any]
    result: dict[str, Any]
    sends: int  # how often the frame went out (more than once: replayed)


@dataclass
class Ledger:
    """Everything the fleet got an answer for, in order, and what went wrong."""

    delivered: list[Delivered] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    replays: int = 0  # unanswered messages sent again after a reconnect
    duplicates: int = 0  # answered MeterValues sent again after a reconnect
    profiles: int = 0  # SetChargingProfile calls answered
    connects: int = 0

    def meter_values(self, start: int = 0) -> list[Delivered]:
        """The delivered MeterValues from index `start` on."""
        return [d for d in self.delivered[start:] if d.action == "MeterValues"]


@dataclass
class Control:
    """What the test tells the fleet: whether the server is up, Start/Stop bursts, and the end.

    `up` spares a dead server's port a storm of refused connections (and the machine the CPU):
    a charger tries to connect only while it is set.
    """

    up: asyncio.Event = field(default_factory=asyncio.Event)
    bursts: int = 0
    finishing: bool = False

    def burst(self) -> None:
        """Every charger in a transaction stops it now and starts the next one."""
        self.bursts += 1


@dataclass
class Pending:
    """A CALL sent and not yet answered; kept across reconnects."""

    message_id: str
    action: str
    payload: dict[str, Any]
    sends: int = 0

    @property
    def text(self) -> str:
        """The frame exactly as sent the first time."""
        return json.dumps([2, self.message_id, self.action, self.payload])


class ReplayingCharger:
    """One charger of the fleet (see the module docstring)."""

    def __init__(
        self,
        url: str,
        identity: str,
        password: str,
        *,
        ledger: Ledger,
        control: Control,
        rng: random.Random,
        interval: float,
        start: datetime,
        duplicate_chance: float = 0.25,
    ) -> None:
        self.url, self.identity, self.ledger, self.control, self.rng = url, identity, ledger, control, rng
        token = base64.b64encode(f"{identity}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}
        self.interval = interval
        self.duplicate_chance = duplicate_chance
        self.clock = start
        self.register_wh = rng.randrange(1_000, 1_000_000)
        self.transaction_id: int | None = None
        self.frames_left = 0
        self.bursts_seen = 0
        self.counter = 0
        self.pending: Pending | None = None
        self.last_meter: Pending | None = None
        self.connected = False  # the socket is open
        self.booted = False  # and the BootNotification answered Accepted
        self.done = False
        self._waiting: tuple[str, asyncio.Future[list[Any]]] | None = None
        self._due = 0.0

    # -------------------------------------------------------------- connection

    async def run(self) -> None:
        """Connect, boot, send; reconnect whenever the socket dies, until finished with nothing outstanding."""
        while not self.done:
            await self.control.up.wait()
            try:
                async with connect(
                    self.url,
                    subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                    additional_headers=self.headers,
                    compression=None,
                    open_timeout=5,
                    ping_interval=None,
                    close_timeout=1,
                ) as ws:
                    self.connected = True
                    self.ledger.connects += 1
                    await self._session(ws)
            except InvalidStatus as error:
                self.ledger.errors.append(f"{self.identity}: upgrade refused: {error}")
            except (OSError, TimeoutError, WebSocketException):
                pass
            finally:
                self.connected = self.booted = False
            if not self.done:
                await asyncio.sleep(RETRY_DELAY)

    async def _session(self, ws: ClientConnection) -> None:
        reader = asyncio.create_task(self._read(ws))
        try:
            boot = await self._call(ws, Pending(self._next_id(), "BootNotification", BOOT))
            if boot.get("status") != "Accepted":
                self.ledger.errors.append(f"{self.identity}: BootNotification answered {boot}")
                return
            self.booted = True
            if self.last_meter is not None and self.rng.random() < self.duplicate_chance:
                self.ledger.duplicates += 1
                self._deliver(self.last_meter, await self._call(ws, self.last_meter))
            if self.pending is not None and self.pending.sends:
                self.ledger.replays += 1
            while True:
                if self.pending is None:
                    if self.control.finishing:
                        self.done = True
                        return
                    self.pending = self._next_message()
                    await self._pace()
                sent = self.pending
                result = await self._call(ws, sent)
                self.pending = None
                self._deliver(sent, result)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _pace(self) -> None:
        now = time.monotonic()
        self._due = max(self._due + self.interval, now)
        if self._due > now:
            await asyncio.sleep(self._due - now)

    async def _call(self, ws: ClientConnection, call: Pending) -> dict[str, Any]:
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting = (call.message_id, future)
        call.sends += 1
        try:
            await ws.send(call.text)
            answer = await asyncio.wait_for(future, CALL_TIMEOUT)
        except TimeoutError:
            self.ledger.errors.append(f"{self.identity}: no answer to {call.action} in {CALL_TIMEOUT} s")
            raise
        finally:
            self._waiting = None
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: the socket's end is handled by the caller
        if answer[0] != 3:
            self.ledger.errors.append(f"{self.identity}: {call.action} {call.payload} answered {answer}")
            raise ConnectionAbortedError(answer)  # a CALLERROR to a transaction message is never acceptable
        result: dict[str, Any] = answer[2]
        return result

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for text in ws:
                frame = json.loads(text)
                if frame[0] == 2:
                    await ws.send(json.dumps(self._answer(frame)))
                elif self._waiting is not None and frame[1] == self._waiting[0] and not self._waiting[1].done():
                    self._waiting[1].set_result(frame)
        except ConnectionClosed:
            pass
        finally:
            if self._waiting is not None and not self._waiting[1].done():
                self._waiting[1].set_exception(ConnectionResetError("socket closed"))

    def _answer(self, call: list[Any]) -> list[Any]:
        action = call[2]
        if action == "SetChargingProfile":
            self.ledger.profiles += 1
        if action in SERVER_CALL_ANSWERS:
            return [3, call[1], SERVER_CALL_ANSWERS[action]]
        return [4, call[1], "NotSupported", f"{action} is not supported", {}]

    # -------------------------------------------------------------- messages

    def _next_id(self) -> str:
        self.counter += 1
        return f"{self.identity}-{self.counter}"

    def _tick(self) -> str:
        self.clock += STEP
        return ocpp_time(self.clock)

    def _next_message(self) -> Pending:
        if self.transaction_id is None:
            start = {"connectorId": 1, "idTag": ID_TAG, "meterStart": self.register_wh, "timestamp": self._tick()}
            return Pending(self._next_id(), "StartTransaction", start)
        if self.frames_left <= 0 or self.bursts_seen < self.control.bursts:
            self.bursts_seen = self.control.bursts
            return Pending(self._next_id(), "StopTransaction", self._stop())
        self.frames_left -= 1
        self.register_wh += self.rng.randrange(5, 40)
        payload = {
            "connectorId": 1,
            "transactionId": self.transaction_id,
            "meterValue": [{"timestamp": self._tick(), "sampledValue": self._samples()}],
        }
        return Pending(self._next_id(), "MeterValues", payload)

    def _samples(self) -> list[dict[str, Any]]:
        amps = self.rng.choice(("6.0", "10.6", "16.0"))
        periodic: dict[str, Any] = {"context": "Sample.Periodic", "location": "Outlet"}
        return [
            {"value": str(self.register_wh), "measurand": EAIR, "unit": "Wh", **periodic},
            {"value": str(self.rng.randrange(4_000, 11_000)), "measurand": "Power.Active.Import", "unit": "W"},
            *({"value": amps, "measurand": "Current.Import", "phase": p, "unit": "A"} for p in ("L1", "L2", "L3")),
            {"value": str(self.rng.randrange(20, 90)), "measurand": "SoC", "unit": "Percent"},
        ]

    def _stop(self) -> dict[str, Any]:
        stamp = self._tick()
        end = {"value": str(self.register_wh), "measurand": EAIR, "unit": "Wh", "context": "Transaction.End"}
        return {
            "transactionId": self.transaction_id,
            "idTag": ID_TAG,
            "meterStop": self.register_wh,
            "timestamp": stamp,
            "reason": "Local",
            "transactionData": [{"timestamp": stamp, "sampledValue": [end]}],
        }

    def _deliver(self, call: Pending, result: dict[str, Any]) -> None:
        self.ledger.delivered.append(Delivered(self.identity, call.action, call.payload, result, call.sends))
        if call.action == "StartTransaction":
            self.transaction_id = int(result["transactionId"])
            self.frames_left = self.rng.randrange(20, 120)
        elif call.action == "StopTransaction":
            self.transaction_id = None
        elif call.action == "MeterValues":
            self.last_meter = call
