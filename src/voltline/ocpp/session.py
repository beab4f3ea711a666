"""One charger connection: who it is, what its handlers may use, its message log, and calls to it.

The CSMS->charger direction (OCPP-J 1.6 §4.1.1): `call()` sends one CALL at a time, later
callers wait their turn on a lock, and the answer is awaited on the injectable clock for at
most the call timeout. The receive loop (endpoint.py) hands every CALLRESULT and CALLERROR to
`settle()`; an answer to nothing outstanding (late, after a timeout) is ignored. When the socket
closes, the waiting caller and every later one get ChargerOfflineError. Nothing is sent before
a BootNotification of the charger was answered Accepted, on this socket or an earlier one (OCPP
1.6 §4.2, DESIGN "Load management"; chargers boot after power-up, not after every reconnect):
until then a call fails at once with ChargerNotBootedError, and the `boot` event that follows the
acceptance tells the control loop to send what it holds back.

Liveness (DESIGN: OCPP): `touch()` on every frame; the gateway's liveness loop marks a session
that stayed silent for two heartbeat intervals offline, and the next frame brings it back.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.engine import RowMapping

from voltline.bus import Bus
from voltline.bus.events import SMART_EVENTS, encode_event
from voltline.clock import Clock
from voltline.domain.frames import LogEntry
from voltline.domain.ids import ChargerId, SiteId, TeamId
from voltline.errors import ChargerNotBootedError, ChargerOfflineError
from voltline.metrics import OcppCounts
from voltline.ocpp.log_limits import LogBudget, capped_payload
from voltline.ocpp.rpc import CallError, CallResult, PendingCalls, Version, encode_call
from voltline.ocpp.schema_check import encode_payload
from voltline.services.runtime import Runtime
from voltline.settings import Settings
from voltline.store.engine import Database
from voltline.store.ocpp_log import ACTION_MAX, MESSAGE_ID_MAX
from voltline.store.writer import MeterWriter

log = logging.getLogger("voltline.ocpp")

# DESIGN: with VOLTLINE_OCPP_LOG=default these actions are counted, not kept.
UNLOGGED_BY_DEFAULT = frozenset({"Heartbeat", "MeterValues"})
# Known transaction ids per session; enough for every transaction of a long connection.
KNOWN_TRANSACTIONS_MAX = 1024

SendText = Callable[[str], Awaitable[None]]
CloseSocket = Callable[[int, str], Awaitable[None]]
# RFC 6455 §7.4.1: 1011, the server met a condition that prevented it from fulfilling the request.
CLOSE_UNAVAILABLE = 1011
CLOSE_NORMAL = 1000
Answer = CallResult | CallError


@dataclass
class SessionContext:
    """What an inbound handler may use: the charger, the store, the writer and the clock."""

    identity: str
    charger_id: ChargerId
    team_id: TeamId | None
    site_id: SiteId | None
    lenient: bool
    db: Database
    settings: Settings
    clock: Clock
    writer: MeterWriter
    # What the services a handler calls take (DESIGN "Services tier").
    runtime: Runtime
    # transactionId (as the charger sends it) -> our transaction id, or None when it names none of ours.
    transactions: dict[int, int | None] = field(default_factory=dict)
    # Where handlers publish smart-charging events (voltline.bus.events); None: nobody listens.
    bus: Bus | None = None
    # Transactions whose first MeterValues was announced (spec §7.4: the first meter value of a session).
    metered: set[int] = field(default_factory=set)
    # Where the receive loop counts frames for /metrics (the gateway's; voltline/metrics.py).
    counts: OcppCounts = field(default_factory=OcppCounts)
    # clock.monotonic() by which the CALL being handled is answered or the socket closed (DESIGN: Durability).
    hold_until: float = math.inf

    def place(self, row: RowMapping | None) -> None:
        """Take the charger's current team, site and lenient flag from a charger row."""
        if row is None:
            return
        self.team_id = None if row["team_id"] is None else TeamId(row["team_id"])
        self.site_id = None if row["site_id"] is None else SiteId(row["site_id"])
        self.lenient = self.settings.ocpp_lenient if row["lenient"] is None else bool(row["lenient"])

    def remember_transaction(self, ocpp_id: int, transaction_id: int | None) -> None:
        """Cache what a transactionId names for this charger (bounded)."""
        if len(self.transactions) >= KNOWN_TRANSACTIONS_MAX:
            self.transactions.pop(next(iter(self.transactions)))
        self.transactions[ocpp_id] = transaction_id

    def now(self) -> datetime:
        """The current moment, naive UTC."""
        return self.clock.now()

    async def announce(self, kind: str, **fields: Any) -> None:
        """Publish a smart-charging event for this charger (after the handler's commit; nobody is awaited)."""
        if self.bus is not None:
            event = encode_event(kind, charger_id=int(self.charger_id), site_id=self.site_id, **fields)
            await self.bus.publish(SMART_EVENTS, event)


class MessageLog:
    """Feeds the OCPP message log through the batched writer, as VOLTLINE_OCPP_LOG says.

    Each row carries the charger's team at that moment (`ctx.team_id` follows a charger moved while
    connected); payloads are capped and each charger's rows budgeted (log_limits.py).
    """

    def __init__(self, ctx: SessionContext, budget: LogBudget) -> None:
        self.ctx = ctx
        self.mode = ctx.settings.ocpp_log
        self.max_payload = ctx.settings.ocpp_log_max_payload
        self.writer = ctx.writer
        self.budget = budget
        self.unlogged: Counter[str] = Counter()

    def record(
        self, direction: str, message_type: int, message_id: str, action: str | None, payload: str | bytes
    ) -> None:
        """Queue one frame for the log, or count it when its payload is not kept or the budget is spent."""
        if self.mode == "off":
            return
        if self.mode == "default" and action in UNLOGGED_BY_DEFAULT:
            self.unlogged[f"{direction}:{action}"] += 1
            return
        ctx = self.ctx
        text = capped_payload(payload, self.max_payload)
        if not self.budget.admit(ctx.charger_id, ctx.identity, len(text)):
            self.unlogged[f"{direction}:over budget"] += 1
            return
        entry = LogEntry(
            ctx.charger_id,
            direction,
            message_type,
            message_id[:MESSAGE_ID_MAX],
            None if action is None else action[:ACTION_MAX],
            text,
            ctx.clock.now(),
            team_id=ctx.team_id,
        )
        self.writer.log(entry)


class Session:
    """One open socket of a charger and the one CALL the CSMS may have outstanding on it."""

    def __init__(
        self,
        ctx: SessionContext,
        version: Version,
        send_text: SendText,
        close_socket: CloseSocket,
        log_budget: LogBudget,
    ) -> None:
        self.ctx = ctx
        self.version = version
        self.message_log = MessageLog(ctx, log_budget)
        self._send_text = send_text
        self._close_socket = close_socket
        self._pending = PendingCalls()
        self._waiter: asyncio.Future[Answer | None] | None = None
        self._turn = asyncio.Lock()
        self.closed = False
        self.alive = True
        # Its last BootNotification was Accepted (chargers.boot_accepted, set by the gateway from the row).
        self.boot_accepted = False
        self.last_seen = ctx.clock.monotonic()

    @property
    def identity(self) -> str:
        """The charger's OCPP identity."""
        return self.ctx.identity

    def touch(self) -> bool:
        """A frame arrived: the charger is alive. True when it had been marked offline."""
        self.last_seen = self.ctx.clock.monotonic()
        revived = not self.alive
        self.alive = True
        return revived

    async def send(self, frame: bytes) -> None:
        """Send one text frame; ChargerOfflineError when the socket is gone."""
        if self.closed:
            raise ChargerOfflineError(self.identity)
        await self._send_text(frame.decode())

    async def call(self, action: str, payload: Any, timeout: float) -> Answer:
        """Send a CALL and wait for its answer: TimeoutError after `timeout`, ChargerOfflineError on close."""
        async with self._turn:
            if self.closed:
                raise ChargerOfflineError(self.identity)
            if not self.boot_accepted:
                raise ChargerNotBootedError(self.identity)
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

    def closed_by_peer(self) -> None:
        """The socket is gone: fail the waiting call and refuse new ones."""
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def replace(self) -> None:
        """Close this socket because a newer one of the same charger took over."""
        self.closed_by_peer()
        try:
            await self._close_socket(CLOSE_NORMAL, "Replaced by a new connection")
        except (RuntimeError, OSError):  # the old socket may be gone already
            log.debug("%s: the replaced socket was already closed", self.identity)

    async def close_unavailable(self) -> None:
        """Close with 1011 because an answer could not be made durable in time; the charger retries later."""
        self.closed_by_peer()
        try:
            await self._close_socket(CLOSE_UNAVAILABLE, "Database unavailable; retry later")
        except Exception:  # task boundary: the socket may be gone already, in whatever way the transport says
            log.debug("%s: the socket was already closed", self.identity)
