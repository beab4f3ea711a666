"""One charger's socket as a state machine: its state, liveness, replacement and the one CALL it may have outstanding.

States, as python-websockets' `Protocol` has them (RFC 6455 §4, §7):

    CONNECTING -> OPEN -> CLOSING -> CLOSED      (and CONNECTING or OPEN -> CLOSED)

CONNECTING: the upgrade was admitted and the socket is being accepted; nothing may be sent.
OPEN: accepted; frames flow both ways and the CSMS may call the charger. CLOSING: this side
started the close — a newer socket of the same charger replaced this one (DESIGN: OCPP), an
answer could not be made durable in time (DESIGN "Durability", 1011), or the connection left the
registry; no new call starts and the waiting one fails. CLOSED: the socket is gone, closed by
either side or dropped; final.
Every transition goes through `_become`, which refuses any not in `TRANSITIONS`.

The CSMS->charger direction (OCPP-J 1.6 §4.1.1): `call()` sends one CALL at a time, later
callers wait their turn on a lock, and the answer is awaited on the injectable clock for at
most the call timeout. The receive loop hands every CALLRESULT and CALLERROR to `settle()`; an
answer to nothing outstanding (late, after a timeout) is ignored. Once the connection leaves
OPEN, the waiting caller and every later one get ChargerOfflineError. Nothing is sent before a
BootNotification of the charger was answered Accepted, on this socket or an earlier one (OCPP
1.6 §4.2, DESIGN "Load management"; chargers boot after power-up, not after every reconnect):
until then a call fails at once with ChargerNotBootedError, and the `boot` event that follows the
acceptance tells the control loop to send what it holds back.

Liveness (DESIGN: OCPP): every frame is a sign of life (`heard`); the gateway's liveness loop
asks each connection whether it stayed silent for two heartbeat intervals (`check_silence`),
which marks the charger offline, and the next frame brings it back. The charger's status
writes take one lock per charger, shared by its old and new connections (`StatusTurns`): on
PostgreSQL they run on separate pooled connections, and without turns the "offline" of a closing
socket could commit after the "online" of the socket replacing it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from voltline.domain.ids import ChargerId
from voltline.errors import ChargerNotBootedError, ChargerOfflineError, CommandFencedError
from voltline.ocpp.log_limits import LogBudget
from voltline.ocpp.rpc import CallError, CallResult, PendingCalls, Version, encode_call
from voltline.ocpp.schema_check import encode_payload
from voltline.ocpp.session import MessageLog, SessionContext
from voltline.services import presence
from voltline.services.runtime import Runtime

log = logging.getLogger("voltline.ocpp")

SendText = Callable[[str], Awaitable[None]]
CloseSocket = Callable[[int, str], Awaitable[None]]
# RFC 6455 §7.4.1: 1011, the server met a condition that prevented it from fulfilling the request.
CLOSE_UNAVAILABLE = 1011
CLOSE_NORMAL = 1000
Answer = CallResult | CallError


class State(enum.Enum):
    """Where a connection is in its life (RFC 6455 §4 opening and §7 closing handshakes)."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


# The only moves a connection makes; any other is refused (a second close, a close after the drop).
TRANSITIONS: dict[State, frozenset[State]] = {
    State.CONNECTING: frozenset({State.OPEN, State.CLOSED}),
    State.OPEN: frozenset({State.CLOSING, State.CLOSED}),
    State.CLOSING: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}


class StatusTurns:
    """One lock per charger for its status writes, shared by its connections and kept only while in use."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[ChargerId, asyncio.Lock] = weakref.WeakValueDictionary()

    def of(self, charger_id: ChargerId) -> asyncio.Lock:
        """The charger's lock: its status writes commit in the order they were decided."""
        lock = self._locks.get(charger_id)
        if lock is None:
            lock = self._locks[charger_id] = asyncio.Lock()
        return lock


class Connection:
    """One socket of a charger: its state, whether it is heard from, and the one CALL the CSMS may have outstanding."""

    def __init__(
        self,
        ctx: SessionContext,
        version: Version,
        send_text: SendText,
        close_socket: CloseSocket,
        *,
        runtime: Runtime,
        log_budget: LogBudget,
        status_turns: StatusTurns,
        boot_accepted: bool,
    ) -> None:
        self.ctx = ctx
        self.version = version
        self.runtime = runtime
        self.message_log = MessageLog(ctx, log_budget)
        self.state = State.CONNECTING
        self._send_text = send_text
        self._close_socket = close_socket
        self._status_turns = status_turns
        self._pending = PendingCalls()
        self._waiter: asyncio.Future[Answer | None] | None = None
        self._turn = asyncio.Lock()
        self.alive = True
        # Its last BootNotification was Accepted (chargers.boot_accepted, from the row at upgrade).
        self.boot_accepted = boot_accepted
        self.last_seen = ctx.clock.monotonic()
        # DESIGN "Cluster": orders this charger's sockets across processes (later sockets sort higher);
        # its status writes name this token, so an older socket closing late writes nothing.
        # The token is when it opened (ns, zero-padded, so text order is time order) and a random tie-breaker.
        self.token = f"{time.time_ns():020d}-{uuid.uuid4().hex}"

    @property
    def identity(self) -> str:
        """The charger's OCPP identity."""
        return self.ctx.identity

    @property
    def socket(self) -> presence.Socket:
        """This socket as the charger's status writes name it (its site as placed now)."""
        ctx = self.ctx
        return presence.Socket(ctx.charger_id, ctx.site_id, ctx.identity, self.version, self.token)

    def _become(self, state: State) -> bool:
        """Move to `state` when `TRANSITIONS` allows it; leaving OPEN fails the waiting call."""
        if state not in TRANSITIONS[self.state]:
            return False
        self.state = state
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        return True

    def opened(self) -> None:
        """The socket was accepted: frames may flow, and silence is measured from now."""
        if self._become(State.OPEN):
            self.last_seen = self.ctx.clock.monotonic()

    def stop_serving(self) -> None:
        """The connection leaves the registry: no call starts any more; the socket is being closed or is gone."""
        self._become(State.CLOSING)

    def closed(self) -> None:
        """The socket is gone: fail the waiting call and refuse new ones."""
        self._become(State.CLOSED)

    async def replace(self) -> None:
        """Close this socket because a newer one of the same charger took over."""
        log.debug("%s: a new socket replaces the old one", self.identity)
        if not self._become(State.CLOSING):
            return  # closing or gone already (the charger reconnected at once): nothing left to close
        try:
            await self._close_socket(CLOSE_NORMAL, "Replaced by a new connection")
        except (RuntimeError, OSError):  # the old socket may be gone already
            log.debug("%s: the replaced socket was already closed", self.identity)

    async def close_unavailable(self) -> None:
        """Close with 1011 because an answer could not be made durable in time; the charger retries later."""
        if self.state is State.CLOSED:
            return
        self._become(State.CLOSING)
        try:
            await self._close_socket(CLOSE_UNAVAILABLE, "Database unavailable; retry later")
        except Exception:  # task boundary: the socket may be gone already, in whatever way the transport says
            log.debug("%s: the socket was already closed", self.identity)

    async def come_online(self, *, replacing: bool) -> None:
        """Record the charger online (logged unless this socket replaced an open one) and announce it."""
        async with self._status_turns.of(self.ctx.charger_id):
            await presence.mark_connected(self.runtime, self.socket, replacing=replacing)

    async def go_offline(self, reason: str) -> None:
        """Record the charger offline; logged and announced unless the silence check did both already."""
        async with self._status_turns.of(self.ctx.charger_id):
            await presence.mark_disconnected(self.runtime, self.socket, reason, announce=self.alive, release=True)

    async def heard(self) -> None:
        """A frame arrived: the charger is alive; one marked offline for silence is back online."""
        self.last_seen = self.ctx.clock.monotonic()
        if self.alive:
            return
        self.alive = True
        try:
            async with self._status_turns.of(self.ctx.charger_id):
                await presence.mark_returned(self.runtime, self.socket)
        except Exception:  # task boundary: the frame is still answered; the next frame retries
            self.alive = False
            log.exception("%s: could not record coming back online", self.identity)

    async def check_silence(self, now: float, limit: float) -> None:
        """Mark the charger offline when this open socket brought no frame for `limit` seconds."""
        if self.alive and self.state is State.OPEN and now - self.last_seen > limit:
            self.alive = False
            async with self._status_turns.of(self.ctx.charger_id):
                await presence.mark_disconnected(
                    self.runtime, self.socket, f"no frame for {limit} s", announce=True, release=False
                )

    async def refresh_placement(self) -> None:
        """Re-read the charger's team, site and lenient flag (the message log and new rows follow them)."""
        try:
            self.ctx.place(await presence.get_placement(self.runtime, self.ctx.charger_id))
        except Exception:  # task boundary: the next Heartbeat or Boot places the connection again
            log.exception("%s: could not re-read the charger's placement", self.identity)

    async def send(self, frame: bytes) -> None:
        """Send one text frame; ChargerOfflineError unless the socket is open."""
        if self.state is not State.OPEN:
            raise ChargerOfflineError(self.identity)
        await self._send_text(frame.decode())

    async def call(
        self, action: str, payload: Any, timeout: float, *, admit: Callable[[], bool] | None = None
    ) -> Answer:
        """Send a CALL and wait for its answer: TimeoutError after `timeout`, ChargerOfflineError on close.

        `admit`, asked when the call's turn comes, may still refuse it (CommandFencedError: a control
        command whose lease term ended while it waited, DESIGN "Cluster").
        """
        async with self._turn:
            if self.state is not State.OPEN:
                raise ChargerOfflineError(self.identity)
            if not self.boot_accepted:
                raise ChargerNotBootedError(self.identity)
            if admit is not None and not admit():
                raise CommandFencedError(self.identity, 0, 0)
            outstanding = self._pending.start(action)
            waiter: asyncio.Future[Answer | None] = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                body = encode_payload(payload)
                await self.send(encode_call(outstanding.message_id, action, msgspec.Raw(body)))
                self.message_log.record("out", 2, outstanding.message_id, action, body.decode())
                answer = await self._wait(waiter, timeout)
            finally:
                self._pending.abandon(outstanding.message_id)
                self._waiter = None
        if answer is None:
            raise ChargerOfflineError(self.identity)
        return answer

    async def _wait(self, waiter: asyncio.Future[Answer | None], timeout: float) -> Answer | None:
        sleeper: asyncio.Future[Any] = asyncio.ensure_future(self.ctx.clock.sleep(timeout))
        racers: set[asyncio.Future[Any]] = {waiter, sleeper}
        try:
            await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
        if not waiter.done():
            raise TimeoutError(f"{self.identity} did not answer within {timeout} s")
        return waiter.result()

    async def answered_boot(self, status: str) -> None:
        """The charger has been sent this BootNotification status: Accepted opens the socket for calls."""
        self.boot_accepted = status == "Accepted"
        if self.boot_accepted:
            await self.ctx.announce("boot")

    def settle(self, answer: Answer) -> str | None:
        """Hand an answer to the waiting call; returns its action, or None when nothing waits for it."""
        outstanding = self._pending.match(answer)
        if outstanding is None:
            return None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(answer)
        return outstanding.action
