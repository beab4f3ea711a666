"""The gateway: the sessions this process holds, their command subscriptions, and their liveness.

While a charger is connected here, the gateway answers `charger.<identity>.command` on the bus
(DESIGN: commands reach chargers only through the bus): it turns the neutral command into a
call of the charger's OCPP version, sends it on the session (one call in flight; the others
wait), and replies `ok` with the charger's answer, `timeout`, `error` (a CALLERROR, or an answer
that breaks the schema) or `offline` (the socket closed meanwhile).

Connection status (DESIGN: OCPP): online on connect; offline when the socket closes or after
two heartbeat intervals without a frame or pong; back online with the next frame. One log line
when a charger drops and one when it returns. A newer socket of the same charger replaces the
older one, which then closes without marking the charger offline. A charger's status writes take
turns (`_status_turn`): on PostgreSQL they run on separate pooled connections, and without turns
the "offline" of a closing socket could commit after the "online" of the socket replacing it.

A charger attached to or detached from a site over the API while connected (the `settings` and
`detached` bus events name it) has its session re-read its team and site at once, so that its
message-log rows and meter rows carry the team that owns it now (DESIGN: Charger security).

Pongs never reach an ASGI app: uvicorn sends the pings (`ws_ping_interval`) and closes a socket
whose pong is later than `ws_ping_timeout`. Served with both set to `ocpp_ping_interval`, an
open socket has answered a ping within the last two ping intervals; when that is within two
heartbeat intervals, the socket being open is the proof of life and only its closing makes the
charger offline. Otherwise (a heartbeat interval shorter than the ping interval) silence is
measured on frames alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy.engine import RowMapping

from voltline.bus import MemoryBus, Subscription
from voltline.bus.events import SMART_EVENTS, decode_event
from voltline.domain.auth_throttle import AuthThrottle
from voltline.domain.identities import IDENTITY_MAX, is_valid_identity
from voltline.domain.ids import ChargerId, SiteId, TeamId
from voltline.errors import ChargerNotBootedError, ChargerOfflineError
from voltline.ocpp.log_limits import LogBudget
from voltline.ocpp.registry import Registry
from voltline.ocpp.rpc import ERROR_CODES, CallError, OcppError, Version, decode_call_result
from voltline.ocpp.session import CloseSocket, SendText, Session, SessionContext
from voltline.ocpp.v16 import commands as v16_commands
from voltline.ocpp.v16.messages import REQUESTS as V16_REQUESTS
from voltline.services.commands import command_subject, decode_request, encode_reply
from voltline.services.runtime import Runtime
from voltline.store import ocpp_state
from voltline.store.chargers import get_charger_by_identity
from voltline.store.writer import MeterWriter
from voltline.tasks import cancel_and_wait

log = logging.getLogger("voltline.ocpp")

LIVENESS_CHECK_MAX = 15.0  # seconds between liveness checks, at most
# Young-generation size for the garbage collector (CPython's default is 700): see `settle_gc`.
GC_YOUNG_THRESHOLD = 10_000
# Bus events (voltline.bus.events) after which a connected charger's team or site may differ.
PLACEMENT_KINDS = frozenset({"settings", "detached"})


def settle_gc() -> None:
    """Once per process: freeze the objects of start-up and collect the young generation less often.

    Measured (docs/benchmarks.md, OCPP ingest): with CPython's defaults, meter frames waiting ~50 ms
    in the writer's queue survive young collections, the old generation fills up, and a full
    collection over every session's objects stalled the loop 150-190 ms every 1.5-3 s at 2,000
    MeterValues/s (ack p99 150 ms). With 10,000 they die young and full collections become rare.
    """
    young, middle, old = gc.get_threshold()
    if young >= GC_YOUNG_THRESHOLD:
        return  # settled already (by an earlier gateway of this process, or by whoever started it)
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


class Gateway:
    """The OCPP side of one process: sessions by identity, commands from the bus, liveness."""

    def __init__(self, runtime: Runtime, writer: MeterWriter) -> None:
        self.runtime = runtime
        self.writer = writer
        self.registry = Registry()
        # DESIGN: Charger security: refused upgrades by reason, failed logins, and whose forwarded headers count.
        self.auth_throttle = AuthThrottle()
        # One login check at a time per (address, identity): a burst of guesses cannot outrun the throttle.
        self.auth_turns: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = weakref.WeakValueDictionary()
        self.trusted_proxies = runtime.settings.trusted_proxy_networks
        self._liveness: asyncio.Task[None] | None = None
        self._status_turns: weakref.WeakValueDictionary[ChargerId, asyncio.Lock] = weakref.WeakValueDictionary()
        self.counts = runtime.metrics.ocpp
        self.counts.known_actions = frozenset(V16_REQUESTS)
        self.counts.known_codes = frozenset().union(*ERROR_CODES.values())
        connected = "Chargers with an open socket to this process, by OCPP version."
        runtime.metrics.gauge("voltline_ocpp_connected_chargers", connected, ("ocpp_version",), self._connected)
        settings = runtime.settings
        self.log_budget = LogBudget(settings.ocpp_log_budget_rows, settings.ocpp_log_budget_bytes, runtime.clock)
        self._placements: Subscription | None = None

    async def start(self) -> None:
        """Start the liveness loop; as the only gateway (in-process bus), first mark every charger offline."""
        if isinstance(self.runtime.bus, MemoryBus):
            async with self.runtime.db.write() as conn:
                stale = await ocpp_state.mark_all_offline(conn)
            if stale:
                log.info("%d chargers were left online by the previous run; marked offline", stale)
        self._liveness = asyncio.create_task(self._run_liveness(), name="voltline-ocpp-liveness")
        self._placements = await self.runtime.bus.listen(SMART_EVENTS, self._on_event)
        settle_gc()

    async def stop(self) -> None:
        """Stop the liveness loop and the placement listener."""
        if self._placements is not None:
            await self._placements.unsubscribe()
            self._placements = None
        await cancel_and_wait([self._liveness])
        self._liveness = None

    def _connected(self) -> dict[tuple[str, ...], float]:
        counts: dict[tuple[str, ...], float] = {(version,): 0 for version in _BUILDERS}
        for session in self.registry:
            counts[(session.version,)] = counts.get((session.version,), 0) + 1
        return counts

    async def admit(self, identity: str) -> RowMapping | None:
        """The charger row for a connecting identity (auto-registered when allowed), or None.

        Any stored identity is found, also one from before the identity rule; only a valid identity is
        auto-registered, and none while the minimum security profile is above 0 (they start at 0).
        """
        if not identity or len(identity) > IDENTITY_MAX:
            return None
        async with self.runtime.db.read() as conn:
            row = await get_charger_by_identity(conn, identity)
        settings = self.runtime.settings
        if row is not None or not settings.ocpp_auto_register or settings.ocpp_min_security_profile > 0:
            return row
        if not is_valid_identity(identity):
            return None
        async with self.runtime.db.write() as conn:
            row = await ocpp_state.auto_register_charger(conn, identity)
        log.info("%s: auto-registered; `voltline chargers show %s` shows its pincode for attach", identity, identity)
        return row

    def new_session(self, charger: RowMapping, version: Version, send_text: SendText, close: CloseSocket) -> Session:
        """A session for an accepted socket of the charger."""
        settings = self.runtime.settings
        ctx = SessionContext(
            identity=str(charger["identity"]),
            charger_id=ChargerId(charger["id"]),
            team_id=None if charger["team_id"] is None else TeamId(charger["team_id"]),
            site_id=None if charger["site_id"] is None else SiteId(charger["site_id"]),
            lenient=settings.ocpp_lenient if charger["lenient"] is None else bool(charger["lenient"]),
            db=self.runtime.db,
            settings=settings,
            clock=self.runtime.clock,
            writer=self.writer,
            runtime=self.runtime,
            bus=self.runtime.bus,
            counts=self.counts,
        )
        session = Session(ctx, version, send_text, close, self.log_budget)
        # A charger whose last BootNotification was Accepted (on any earlier socket) may be sent calls
        # at once: OCPP 1.6 chargers boot after power-up, not after every reconnect.
        session.boot_accepted = bool(charger["boot_accepted"])
        return session

    @contextlib.asynccontextmanager
    async def connected(self, session: Session) -> AsyncIterator[None]:
        """Hold the session: registered, online, answering commands; offline when it ends."""
        previous = self.registry.replace(session)
        # Subscribed before the first await: a command may follow the handshake at once.
        subscription = await self._subscribe(session)
        try:
            if previous is not None:
                log.debug("%s: a new socket replaces the old one", session.identity)
                await previous.replace()
            before = await self._mark_online(session)
            if previous is None:
                log.info("%s: online (was %s)", session.identity, before)
            await session.ctx.announce("connected")
            yield
        finally:
            session.closed_by_peer()
            await subscription.unsubscribe()
            if self.registry.remove(session):
                await self._mark_offline(session, "the socket closed", announce=session.alive)

    async def revive(self, session: Session) -> None:
        """A frame from a charger marked offline for silence: it is back."""
        try:
            await self._mark_online(session)
        except Exception:  # task boundary: the frame is still answered; the next revival retries
            session.alive = False
            log.exception("%s: could not record coming back online", session.identity)
            return
        log.info("%s: back online", session.identity)
        await session.ctx.announce("connected")

    async def _on_event(self, _subject: str, data: bytes) -> None:
        """A charger attached to or detached from a site: its session here takes the new team and site."""
        event = decode_event(data)
        charger_id = event.get("charger_id")
        if event["kind"] not in PLACEMENT_KINDS or not isinstance(charger_id, int):
            return
        for session in self.registry:
            if session.ctx.charger_id == charger_id:
                await self.refresh_placement(session)

    async def refresh_placement(self, session: Session) -> None:
        """Re-read the session's team, site and lenient flag (the message log and new rows follow them)."""
        try:
            async with self.runtime.db.read() as conn:
                session.ctx.place(await ocpp_state.get_placement(conn, session.ctx.charger_id))
        except Exception:  # task boundary: the next Heartbeat or Boot places the session again
            log.exception("%s: could not re-read the charger's placement", session.identity)

    def _status_turn(self, charger_id: ChargerId) -> asyncio.Lock:
        """The charger's lock for status writes: they commit in the order they were decided."""
        turn = self._status_turns.get(charger_id)
        if turn is None:
            turn = self._status_turns[charger_id] = asyncio.Lock()
        return turn

    async def _mark_online(self, session: Session) -> str:
        charger_id, now = session.ctx.charger_id, session.ctx.now()
        async with self._status_turn(charger_id), self.runtime.db.write() as conn:
            return await ocpp_state.mark_online(conn, charger_id, session.version, now)

    async def _mark_offline(self, session: Session, reason: str, *, announce: bool = True) -> None:
        """Store the charger as offline; log and publish `disconnected` unless it was offline already
        (`announce=False`: the liveness check did both when the charger fell silent)."""
        try:
            async with self._status_turn(session.ctx.charger_id), self.runtime.db.write() as conn:
                await ocpp_state.mark_offline(conn, session.ctx.charger_id)
        except Exception:  # task boundary: the socket is gone either way
            log.exception("%s: could not record going offline", session.identity)
        if announce:
            log.info("%s: offline (%s)", session.identity, reason)
            await session.ctx.announce("disconnected")

    async def _subscribe(self, session: Session) -> Subscription:
        async def answer(data: bytes) -> bytes:
            return await self.answer_command(session, data)

        return await self.runtime.bus.respond(command_subject(session.identity), answer)

    async def answer_command(self, session: Session, data: bytes) -> bytes:
        """Run one command from the bus on the session and encode the outcome."""
        try:
            command, args = decode_request(data)
            action, request = _BUILDERS[session.version](command, args)
        except (v16_commands.InvalidCommandError, KeyError, TypeError, ValueError) as error:
            return encode_reply("error", code="InvalidArguments", description=str(error))
        try:
            answer = await session.call(action, request, self.runtime.settings.ocpp_call_timeout)
        except ChargerNotBootedError:
            return encode_reply("not_booted")
        except ChargerOfflineError:
            self.counts.message("out", action, "offline")
            return encode_reply("offline")
        except TimeoutError:
            self.counts.message("out", action, "timeout")
            return encode_reply("timeout")
        if isinstance(answer, CallError):
            self.counts.message("out", action, "error")
            return encode_reply("error", code=answer.code, description=answer.description)
        self.counts.message("out", action, "result")
        try:
            decoded = decode_call_result(session.version, action, answer.payload, lenient=session.ctx.lenient)
        except OcppError as error:
            return encode_reply("error", code=error.code, description=f"The charger's answer: {error.description}")
        return encode_reply("ok", _RESULTS[session.version](decoded.message))

    async def _run_liveness(self) -> None:
        interval = self.runtime.settings.ocpp_heartbeat_interval
        period = max(0.05, min(interval / 4, LIVENESS_CHECK_MAX))
        while True:
            await self.runtime.clock.sleep(period)
            try:
                await self.check_liveness()
            except Exception:  # task boundary: keep watching
                log.exception("liveness check failed")

    async def check_liveness(self) -> None:
        """Mark sessions silent for two heartbeat intervals offline (DESIGN: OCPP liveness)."""
        settings = self.runtime.settings
        if 0 < settings.ocpp_ping_interval <= settings.ocpp_heartbeat_interval:
            return  # pongs prove life (module docstring): a silent charger drops when uvicorn closes its socket
        limit = 2 * settings.ocpp_heartbeat_interval
        now = self.runtime.clock.monotonic()
        for session in self.registry:
            if session.alive and not session.closed and now - session.last_seen > limit:
                session.alive = False
                await self._mark_offline(session, f"no frame for {limit} s")


_BUILDERS: dict[Version, Callable[[str, dict[str, Any]], tuple[str, Any]]] = {"1.6": v16_commands.build_call}
_RESULTS: dict[Version, Callable[[Any], dict[str, Any]]] = {"1.6": v16_commands.result_of}
