"""The gateway: the registry of connections this process holds, their command subscriptions, the liveness timer.

While a charger is connected here, the gateway answers `charger.<identity>.command` on the bus
(DESIGN: commands reach chargers only through the bus): it turns the neutral command into a
call of the charger's OCPP version, sends it on the connection (one call in flight; the others
wait), and replies `ok` with the charger's answer, `timeout`, `error` (a CALLERROR, or an answer
that breaks the schema) or `offline` (the socket closed meanwhile). A control command whose
control-lease epoch is lower than the highest this process has seen gets `fenced` and never
reaches the charger (DESIGN "Cluster", services/lease.py `EpochFence`); the epoch is checked when
the command arrives and again when its turn on the connection comes.

Connection status (DESIGN: OCPP): online on connect; offline when the socket closes or after
two heartbeat intervals without a frame or pong; back online with the next frame (the
connection records each, connection.py). A newer socket of the same charger replaces the older
one, which then closes without marking the charger offline: the registry no longer names it.
Across processes (DESIGN "Cluster": the newest connection wins) each connection announces itself
on `charger.<identity>.connected` with its socket token (when it opened); a process that holds an
older socket of that charger closes it the same way.

A charger attached to or detached from a site over the API while connected (the `settings` and
`detached` bus events name it) has its connection re-read its team and site at once, so that its
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
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from voltline import codec
from voltline.bus import Listener, MemoryBus, Subscription
from voltline.bus.events import SMART_EVENTS, decode_event
from voltline.domain.auth_throttle import AuthThrottle
from voltline.domain.ids import ChargerId, SiteId, TeamId
from voltline.errors import ChargerNotBootedError, ChargerOfflineError, CommandFencedError
from voltline.ocpp.connection import CloseSocket, Connection, SendText, StatusTurns
from voltline.ocpp.log_limits import LogBudget
from voltline.ocpp.registry import Registry
from voltline.ocpp.rpc import ERROR_CODES, CallError, OcppError, Version, decode_call_result
from voltline.ocpp.session import SessionContext
from voltline.ocpp.v16 import commands as v16_commands
from voltline.ocpp.v16.messages import REQUESTS as V16_REQUESTS
from voltline.services import gateways, presence
from voltline.services.commands import command_subject, decode_request, encode_reply, presence_subject
from voltline.services.lease import EpochFence
from voltline.services.runtime import Runtime
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
    """The OCPP side of one process: connections by identity, commands from the bus, the liveness timer."""

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
        self._announcing: asyncio.Task[None] | None = None
        self._lost: Subscription | None = None
        self._status_turns = StatusTurns()
        self.counts = runtime.metrics.ocpp
        self.counts.known_actions = frozenset(V16_REQUESTS)
        self.counts.known_codes = frozenset().union(*ERROR_CODES.values())
        connected = "Chargers with an open socket to this process, by OCPP version."
        runtime.metrics.gauge("voltline_ocpp_connected_chargers", connected, ("ocpp_version",), self._connected)
        settings = runtime.settings
        self.log_budget = LogBudget(settings.ocpp_log_budget_rows, settings.ocpp_log_budget_bytes, runtime.clock)
        self._placements: Subscription | None = None
        self.fence = EpochFence(runtime)

    async def start(self) -> None:
        """Mark the chargers of this gateway's earlier run offline, announce it, start the liveness loop.

        With the in-memory bus this process is the only gateway: every charger goes offline. On NATS
        (DESIGN "Cluster") only those the store names against this node id (a restart with the same
        `VOLTLINE_NODE_NAME`); other gateways' chargers are the gateway watch's (services/gateways.py).
        """
        runtime = self.runtime
        if isinstance(runtime.bus, MemoryBus):
            stale = await presence.mark_all_offline(runtime)
        else:
            stale = await presence.mark_gateway_offline(runtime, runtime.node_id)
        if stale:
            log.info("%d chargers were left online by the previous run; marked offline", stale)
        self._lost = await runtime.bus.listen(gateways.LOST_SUBJECT, self._on_lost)
        await self.announce()
        self._announcing = asyncio.create_task(self._run_announce(), name="voltline-gateway-announce")
        await self.fence.start()
        self._liveness = asyncio.create_task(self._run_liveness(), name="voltline-ocpp-liveness")
        self._placements = await runtime.bus.listen(SMART_EVENTS, self._on_event)
        settle_gc()

    async def stop(self) -> None:
        """Stop the liveness and announce loops, the listeners and the epoch fence."""
        for subscription in (self._placements, self._lost):
            if subscription is not None:
                await subscription.unsubscribe()
        self._placements = self._lost = None
        await cancel_and_wait([self._liveness, self._announcing])
        self._liveness = self._announcing = None
        await self.fence.stop()

    async def announce(self) -> None:
        """DESIGN "Cluster": tell the gateway watches this gateway is alive."""
        await self.runtime.bus.publish(gateways.ALIVE_SUBJECT, gateways.encode_gateway(self.runtime.node_id))

    async def _run_announce(self) -> None:
        while True:
            await self.runtime.clock.sleep(self.runtime.settings.gateway_announce_interval)
            try:
                await self.announce()
            except Exception:  # task boundary: keep announcing (the bus reconnects by itself)
                log.exception("gateway announcement failed")

    async def _on_lost(self, _subject: str, data: bytes) -> None:
        """A watch took this gateway for silent (its loop stalled): record its open sockets online again."""
        if gateways.decode_gateway(data) != self.runtime.node_id:
            return
        log.warning("this gateway was taken for silent; its %d chargers are recorded online again", len(self.registry))
        for connection in list(self.registry):
            try:
                await connection.come_online(replacing=True)
            except Exception:  # task boundary: the next reconnect records it
                log.exception("%s: could not record online again", connection.identity)

    def _connected(self) -> dict[tuple[str, ...], float]:
        counts: dict[tuple[str, ...], float] = {(version,): 0 for version in _BUILDERS}
        for connection in self.registry:
            counts[(connection.version,)] = counts.get((connection.version,), 0) + 1
        return counts

    def new_connection(
        self, charger: Mapping[Any, Any], version: Version, send_text: SendText, close: CloseSocket
    ) -> Connection:
        """A connection, still CONNECTING, for an admitted upgrade of the charger (its row from admission)."""
        settings = self.runtime.settings
        charger_id = ChargerId(charger["id"])
        ctx = SessionContext(
            identity=str(charger["identity"]),
            charger_id=charger_id,
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
        # A charger whose last BootNotification was Accepted (on any earlier socket) may be sent calls
        # at once: OCPP 1.6 chargers boot after power-up, not after every reconnect.
        return Connection(
            ctx,
            version,
            send_text,
            close,
            runtime=self.runtime,
            log_budget=self.log_budget,
            status_turns=self._status_turns,
            boot_accepted=bool(charger["boot_accepted"]),
        )

    @contextlib.asynccontextmanager
    async def connected(self, connection: Connection) -> AsyncIterator[None]:
        """Hold the open connection: registered, online, answering commands; offline when it ends unreplaced."""
        previous = self.registry.replace(connection)
        # Subscribed before the first await: a command may follow the handshake at once.
        subscription = await self._subscribe(connection)
        subject = presence_subject(connection.identity)
        elsewhere = await self.runtime.bus.listen(subject, self._on_presence(connection))
        try:
            if previous is not None:
                await previous.replace()
            await connection.come_online(replacing=previous is not None)
            await self.runtime.bus.publish(subject, codec.encode_json({"token": connection.token}))
            yield
        finally:
            connection.stop_serving()
            await subscription.unsubscribe()
            await elsewhere.unsubscribe()
            if self.registry.remove(connection):
                await connection.go_offline("the socket closed")

    def _on_presence(self, connection: Connection) -> Listener:
        """A listener that closes `connection` when a newer socket of its charger opened (here or elsewhere)."""

        async def on_presence(_subject: str, data: bytes) -> None:
            try:
                other = codec.decode_json(data)["token"]
            except (ValueError, KeyError, TypeError):
                return  # not an announcement of ours
            if isinstance(other, str) and other > connection.token and self.registry.remove(connection):
                log.info("%s: a newer socket opened on another process; this one closes", connection.identity)
                await connection.replace()

        return on_presence

    async def _on_event(self, _subject: str, data: bytes) -> None:
        """A charger attached to or detached from a site: its connection here takes the new team and site."""
        event = decode_event(data)
        charger_id = event.get("charger_id")
        if event["kind"] not in PLACEMENT_KINDS or not isinstance(charger_id, int):
            return
        for connection in self.registry:
            if connection.ctx.charger_id == charger_id:
                await connection.refresh_placement()

    async def _subscribe(self, connection: Connection) -> Subscription:
        async def answer(data: bytes) -> bytes:
            return await self.answer_command(connection, data)

        return await self.runtime.bus.respond(command_subject(connection.identity), answer)

    async def answer_command(self, connection: Connection, data: bytes) -> bytes:
        """Run one command from the bus on the connection and encode the outcome."""
        try:
            command, args, epoch = decode_request(data)
            action, request = _BUILDERS[connection.version](command, args)
        except (v16_commands.InvalidCommandError, KeyError, TypeError, ValueError) as error:
            return encode_reply("error", code="InvalidArguments", description=str(error))
        if not self.fence.admits(epoch):
            return self._refuse(connection, action, epoch)
        if epoch is not None:
            self.fence.see(epoch)
        try:
            timeout = self.runtime.settings.ocpp_call_timeout
            answer = await connection.call(action, request, timeout, admit=lambda: self.fence.admits(epoch))
        except CommandFencedError:
            return self._refuse(connection, action, epoch)
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
            decoded = decode_call_result(connection.version, action, answer.payload, lenient=connection.ctx.lenient)
        except OcppError as error:
            return encode_reply("error", code=error.code, description=f"The charger's answer: {error.description}")
        return encode_reply("ok", _RESULTS[connection.version](decoded.message))

    def _refuse(self, connection: Connection, action: str, epoch: int | None) -> bytes:
        """DESIGN "Cluster" (fencing): a control command of an older lease term; the charger never sees it."""
        self.fence.refuse()
        log.warning(
            "%s: %s of control-lease epoch %s refused (epoch %d seen)",
            connection.identity,
            action,
            epoch,
            self.fence.highest,
        )
        return encode_reply("fenced", epoch=self.fence.highest)

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
        """Ask each connection whether it stayed silent for two heartbeat intervals (DESIGN: OCPP liveness)."""
        settings = self.runtime.settings
        if 0 < settings.ocpp_ping_interval <= settings.ocpp_heartbeat_interval:
            return  # pongs prove life (module docstring): a silent charger drops when uvicorn closes its socket
        limit = 2 * settings.ocpp_heartbeat_interval
        now = self.runtime.clock.monotonic()
        for connection in self.registry:
            await connection.check_silence(now, limit)


_BUILDERS: dict[Version, Callable[[str, dict[str, Any]], tuple[str, Any]]] = {"1.6": v16_commands.build_call}
_RESULTS: dict[Version, Callable[[Any], dict[str, Any]]] = {"1.6": v16_commands.result_of}
