"""OCPP-J 1.6 framing for the simulator: one WebSocket, one outstanding CALL, and a send queue.

* `Link.call` sends `[2, id, action, payload]` and waits for the `[3, id, ...]` or `[4, id, ...]`
  with the same id; a lock keeps one CALL in flight at a time (OCPP-J 1.6 §4.1.1).
* `Link.serve` reads frames until the socket closes: results go to the waiting call, CSMS calls
  to `answer`, which returns the response payload (or raises `CallError`) and an optional
  follow-up that runs after the response is sent (TriggerMessage, Reset, RemoteStart...).
* `Outbox` is the charger's FIFO of outgoing calls. Transaction messages (`keep=True`) survive a
  dropped connection and are sent after the next boot; the rest are dropped while offline.

Independent of Voltline's server-side OCPP code on purpose: plain dicts written per the spec.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

Payload = dict[str, Any]
FollowUp = Callable[[], Awaitable[None]]
Answer = tuple[Payload, FollowUp | None]
Answerer = Callable[[str, Any], Answer]

CALL, CALLRESULT, CALLERROR = 2, 3, 4
logger = logging.getLogger(__name__)
_ids = itertools.count(1)


class CallError(Exception):
    """A CALLERROR: received for one of our calls, or raised by a handler to send one."""

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


class LinkClosedError(Exception):
    """The WebSocket closed while a call was waiting or about to be sent."""


@dataclass
class Counters:
    """Messages and events of one charger, for tests and the fleet summary."""

    sent: int = 0
    received: int = 0
    errors: int = 0
    meter_values: int = 0
    transactions_started: int = 0
    transactions_stopped: int = 0
    connects: int = 0
    boots: int = 0


@dataclass
class Link:
    """One open WebSocket to the central system."""

    ws: ClientConnection
    answer: Answerer
    spawn: Callable[[FollowUp], None]
    counters: Counters
    timeout: float = 30.0
    ignore_calls: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _waiting: tuple[str, asyncio.Future[Payload]] | None = None
    _closed: bool = False

    async def call(self, action: str, payload: Payload) -> Payload:
        """Send a CALL and return the CALLRESULT payload; raises CallError, TimeoutError, LinkClosedError."""
        async with self._lock:
            if self._closed:
                raise LinkClosedError(action)
            message_id = str(next(_ids))
            future: asyncio.Future[Payload] = asyncio.get_running_loop().create_future()
            self._waiting = (message_id, future)
            try:
                await self._send([CALL, message_id, action, payload])
                return await asyncio.wait_for(future, self.timeout)
            finally:
                self._waiting = None

    async def _send(self, frame: list[Any]) -> None:
        try:
            await self.ws.send(json.dumps(frame, separators=(",", ":")))
        except ConnectionClosed:
            raise LinkClosedError("closed") from None
        self.counters.sent += 1

    async def serve(self) -> None:
        """Read frames until the socket closes."""
        try:
            async for message in self.ws:
                self.counters.received += 1
                await self._on_frame(message)
        except (ConnectionClosed, LinkClosedError):
            pass
        finally:
            self._closed = True
            if self._waiting is not None and not self._waiting[1].done():
                self._waiting[1].set_exception(LinkClosedError("closed"))

    async def _on_frame(self, message: str | bytes) -> None:
        try:
            frame = json.loads(message)
        except ValueError:
            frame = None
        if not isinstance(frame, list) or len(frame) < 3 or not isinstance(frame[1], str):
            self.counters.errors += 1
            return
        if frame[0] == CALL and len(frame) == 4:
            await self._on_call(frame[1], frame[2], frame[3])
        elif frame[0] in (CALLRESULT, CALLERROR):
            self._on_result(frame)
        else:
            self.counters.errors += 1

    def _on_result(self, frame: list[Any]) -> None:
        if self._waiting is None or self._waiting[0] != frame[1] or self._waiting[1].done():
            self.counters.errors += 1
            return
        future = self._waiting[1]
        if frame[0] == CALLRESULT and isinstance(frame[2], dict):
            future.set_result(frame[2])
        elif frame[0] == CALLERROR:
            self.counters.errors += 1
            future.set_exception(CallError(str(frame[2]), str(frame[3]) if len(frame) > 3 else ""))
        else:
            future.set_exception(CallError("FormationViolation", "the result payload is not an object"))

    async def _on_call(self, message_id: str, action: Any, payload: Any) -> None:
        if self.ignore_calls:
            return
        follow_up = None
        try:
            response, follow_up = self.answer(str(action), payload)
            frame: list[Any] = [CALLRESULT, message_id, response]
        except CallError as error:
            frame = [CALLERROR, message_id, error.code, error.description, {}]
        except Exception:  # a bug in a handler must not take the connection down
            logger.exception("answering %s failed", action)
            frame = [CALLERROR, message_id, "InternalError", "the simulator failed to answer", {}]
        try:
            await self._send(frame)
        finally:
            if follow_up is not None:
                self.spawn(follow_up)

    async def close(self) -> None:
        """Close the socket normally."""
        self._closed = True
        await self.ws.close()


@dataclass
class Outgoing:
    """A call waiting in the outbox, built when sent (None: skip it); `on_result` gets the result or None."""

    action: str
    build: Callable[[], Payload | None]
    keep: bool
    on_result: Callable[[Payload | None], None] | None = None
    attempts: int = 0

    def settle(self, result: Payload | None) -> None:
        """Report the outcome to whoever queued the call."""
        if self.on_result is not None:
            self.on_result(result)


class Outbox:
    """The charger's FIFO of outgoing calls."""

    def __init__(self, attempts: int = 3) -> None:
        self.attempts = attempts
        self._items: deque[Outgoing] = deque()
        self._ready = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Outgoing) -> None:
        """Queue a call."""
        self._items.append(item)
        self._ready.set()
        self._empty.clear()

    def drop_transient(self) -> None:
        """Forget the calls that are not worth sending late (everything but transaction messages)."""
        for item in [i for i in self._items if not i.keep]:
            self._items.remove(item)
            item.settle(None)
        self._mark()

    def _mark(self) -> None:
        if self._items:
            return
        self._ready.clear()
        self._empty.set()

    async def drained(self, timeout: float) -> bool:
        """Wait until everything queued was sent; False on timeout."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._empty.wait(), timeout)
        return self._empty.is_set()

    async def send_all(self, link: Link, counters: Counters) -> None:
        """Send queued calls one by one over `link`, forever; stops with LinkClosedError."""
        while True:
            await self._ready.wait()
            item = self._items[0]
            payload = item.build()
            try:
                result = None if payload is None else await link.call(item.action, payload)
            except CallError:
                result = None
            except TimeoutError:
                counters.errors += 1
                item.attempts += 1
                if item.keep and item.attempts < self.attempts:
                    continue
                result = None
            self._items.popleft()
            self._mark()
            item.settle(result)
