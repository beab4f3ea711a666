"""One simulated OCPP 1.6J charge point: connection, boot, heartbeats and charging sessions.

Lifecycle: connect to `{url_base}/{identity}` (subprotocol `ocpp1.6`, HTTP Basic when a password
is set), BootNotification until Accepted (retrying after `interval` while Pending/Rejected),
StatusNotification for connector 0 and each connector, then heartbeats and the outbox. A
dropped socket or failed connect is retried with exponential backoff (0.5 s doubling to 30 s,
with jitter); sessions keep running offline and their transaction messages wait in the outbox.

Sessions (`voltline.simulator.sessions`) run per connector, independent of the connection;
answers to CSMS calls live in `voltline.simulator.handlers`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from voltline.clock import Clock
from voltline.simulator import handlers, local_list, sessions
from voltline.simulator.connection import Counters, FollowUp, Link, LinkClosedError, Outbox, Outgoing, Payload
from voltline.simulator.meter import Car, Meter, random_car
from voltline.simulator.profiles import ChargingProfiles, Limits
from voltline.simulator.reservations import Reservation
from voltline.simulator.sessions import Connector, Transaction, timestamp

logger = logging.getLogger(__name__)
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
INITIAL_FIRMWARE_VERSION = "1.0.0-sim"


class SimulatedCharger:
    """A charge point that boots, charges cars and answers every CSMS call."""

    def __init__(
        self,
        url_base: str,
        identity: str,
        *,
        connectors: int = 2,
        meter_interval: float = 10.0,
        password: str | None = None,
        phases: int = 3,
        max_current: float = 32,
        vendor: str = "Voltline",
        model: str = "SimCharger",
        seed: int = 0,
        session_seconds: float = 120.0,
        idle_seconds: float = 15.0,
        unplug_seconds: float = 2.0,
        auto_sessions: bool = True,
        call_timeout: float = 30.0,
        reject_zero_amp: bool = False,
        reject_profiles: bool = False,
        ignore_calls: bool = False,
        local_auth_list: bool = True,
        local_list_max_length: int = 100,
        send_local_list_max_length: int = 20,
        cars: Callable[[random.Random], Car] = random_car,
        clock: Clock | None = None,
    ) -> None:
        self.url = f"{url_base.rstrip('/')}/{identity}"
        self.identity, self.password, self.phases, self.max_current = identity, password, phases, float(max_current)
        self.vendor, self.model = vendor, model
        self.session_seconds, self.idle_seconds, self.unplug_seconds = session_seconds, idle_seconds, unplug_seconds
        self.auto_sessions, self.call_timeout = auto_sessions, call_timeout
        self.reject_zero_amp, self.reject_profiles, self.ignore_calls = reject_zero_amp, reject_profiles, ignore_calls
        self.cars, self.clock = cars, clock or Clock()
        self.rng = random.Random(f"{seed}:{identity}")
        self.serial = f"SIM{self.rng.randrange(16**8):08X}"
        # Sent in BootNotification; an installed firmware update changes it (simulator/firmware.py).
        self.firmware_version = INITIAL_FIRMWARE_VERSION
        self.connectors = {
            n: Connector(n, Meter(self.rng, phases, self.max_current, self.rng.randrange(1_000_000)))
            for n in range(1, connectors + 1)
        }
        self.config = handlers.Configuration(connectors, meter_interval)
        self.config.set_value("LocalAuthListMaxLength", str(local_list_max_length))
        self.config.set_value("SendLocalListMaxLength", str(send_local_list_max_length))
        if not local_auth_list:
            local_list.remove_feature(self)
        self.local_list = local_list.LocalList()
        self.profiles = ChargingProfiles(Limits(connectors), self.max_current)
        self.reservations: dict[int, Reservation] = {}  # by reservationId (OCPP 1.6 §5.13)
        self.counters = Counters()
        self.outbox = Outbox()
        self.connection_state = "disconnected"
        self.status0, self.operative0, self.scheduled0 = "Available", True, None
        self.finished: deque[Transaction] = deque(maxlen=1000)
        self.last_error: str | None = None
        self.uploaded: list[tuple[str, bytes]] = []  # diagnostics files uploaded: name and content
        self._stop = asyncio.Event()
        self._reboot = asyncio.Event()
        self._heartbeat_changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ state for tests and the summary

    @property
    def statuses(self) -> dict[int, str]:
        """The status of connector 0 and of every connector."""
        return {0: self.status0, **{n: c.status for n, c in self.connectors.items()}}

    @property
    def transactions(self) -> dict[int, int | None]:
        """Active transactions: connector -> OCPP transaction id (None until the CSMS answered)."""
        return {n: c.transaction.transaction_id for n, c in self.connectors.items() if c.transaction}

    @property
    def limits(self) -> dict[int, float | None]:
        """The effective charging-profile limit per connector, in A per phase (None: unlimited)."""
        return {n: c.meter.limit for n, c in self.connectors.items()}

    @property
    def registers(self) -> dict[int, int]:
        """The energy register of each connector, in Wh."""
        return {n: c.meter.register_wh for n, c in self.connectors.items()}

    # ------------------------------------------------------------------ running

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then stop transactions (reason Local) and close the socket."""
        self._stop = stop
        if self.auto_sessions:
            for conn in self.connectors.values():
                self.spawn(functools.partial(sessions.auto_sessions, self, conn))
        try:
            await self._connect_loop()
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def spawn(self, make: Callable[[], Awaitable[None]]) -> None:
        """Start a background task that ends with the charger."""
        task = asyncio.ensure_future(make())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect_loop(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stop.is_set():
            self.connection_state = "connecting"
            booted = False
            try:
                async with self._connect() as ws:
                    self.counters.connects += 1
                    booted = await self._online(ws)
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed, LinkClosedError) as error:
                self.counters.errors += 1
                self.last_error = f"{type(error).__name__}: {error}"
            logger.debug("%s disconnected: %s", self.identity, self.last_error)
            self.connection_state = "disconnected"
            if self._reboot.is_set():
                self._reboot.clear()
                delay = BACKOFF_FIRST
                continue
            delay = BACKOFF_FIRST if booted else delay
            await self.pause(delay * self.rng.uniform(0.75, 1.25))
            delay = min(delay * 2, BACKOFF_MAX)

    def _connect(self) -> Any:
        headers = {}
        if self.password is not None:
            secret = base64.b64encode(f"{self.identity}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {secret}"
        return connect(
            self.url,
            subprotocols=[Subprotocol("ocpp1.6")],
            additional_headers=headers,
            compression=None,
            open_timeout=self.call_timeout,
            close_timeout=2,
        )

    async def _online(self, ws: ClientConnection) -> bool:
        if ws.subprotocol != "ocpp1.6":
            raise InvalidHandshake("the server did not accept the ocpp1.6 subprotocol")
        link = Link(ws, self._answer, self.spawn, self.counters, self.call_timeout, self.ignore_calls)
        reader = asyncio.create_task(link.serve())
        main = asyncio.create_task(self._converse(link))
        waits = [asyncio.create_task(self._stop.wait()), asyncio.create_task(self._reboot.wait())]
        try:
            await asyncio.wait({reader, main, *waits}, return_when=asyncio.FIRST_COMPLETED)
            if self._stop.is_set() and not main.done() and self.connection_state == "accepted":
                sessions.end_all(self, "Local")
                await self.outbox.drained(min(self.call_timeout, 5.0))
            return self.connection_state == "accepted"
        finally:
            for task in (main, *waits):
                task.cancel()
            await link.close()
            await asyncio.gather(reader, main, *waits, return_exceptions=True)
            self._note_failure(main)

    def _note_failure(self, main: asyncio.Task[None]) -> None:
        if main.cancelled() or main.exception() is None:
            return
        error = main.exception()
        self.last_error = f"{type(error).__name__}: {error}"
        if not isinstance(error, LinkClosedError | ConnectionClosed):
            self.counters.errors += 1

    async def _converse(self, link: Link) -> None:
        self.outbox.drop_transient()
        await self._boot(link)
        for number, status in self.statuses.items():
            await link.call("StatusNotification", self._status_payload(number, status))
        await asyncio.gather(self.outbox.send_all(link, self.counters), self._heartbeats())

    async def _boot(self, link: Link) -> None:
        while True:
            self.connection_state = "booting"
            result = await link.call("BootNotification", self.boot_payload())
            self.apply_boot_result(result)
            if self.connection_state == "accepted":
                self.counters.boots += 1
                return
            await self.clock.sleep(self.config.heartbeat_interval if result.get("interval") else 10.0)

    def boot_payload(self) -> Payload:
        """The BootNotification request."""
        return {
            "chargePointVendor": self.vendor,
            "chargePointModel": self.model,
            "chargePointSerialNumber": self.serial,
            "firmwareVersion": self.firmware_version,
        }

    def apply_boot_result(self, result: Payload | None) -> None:
        """Take the heartbeat interval and registration status from a BootNotification result."""
        if result is None:
            return
        interval = result.get("interval")
        if isinstance(interval, int) and not isinstance(interval, bool) and interval > 0:
            self.config.set_value("HeartbeatInterval", str(interval))
            self._heartbeat_changed.set()
        status = str(result.get("status"))
        self.connection_state = {"Accepted": "accepted", "Pending": "pending"}.get(status, "rejected")

    async def _heartbeats(self) -> None:
        while True:
            self._heartbeat_changed.clear()
            if not await self.wait(self._heartbeat_changed, self.config.heartbeat_interval):
                self.queue("Heartbeat", dict)

    def on_config_changed(self, key: str) -> None:
        """Apply a changed interval at once."""
        if key == "HeartbeatInterval":
            self._heartbeat_changed.set()
        for conn in self.connectors.values():
            conn.changed.set()

    # ------------------------------------------------------------------ messages

    def queue(
        self,
        action: str,
        build: Callable[[], Payload | None],
        keep: bool = False,
        on_result: Callable[[Payload | None], None] | None = None,
    ) -> None:
        """Queue a call for the CSMS (transaction messages with `keep` survive a dropped connection)."""
        self.outbox.put(Outgoing(action, build, keep, on_result))

    def _status_payload(self, number: int, status: str) -> Payload:
        return {"connectorId": number, "errorCode": "NoError", "status": status, "timestamp": self.now_text()}

    def set_status(self, number: int, status: str) -> None:
        """Change a connector's status (0: the charge point) and tell the CSMS when online."""
        conn = self.connectors.get(number)
        if (conn.status if conn else self.status0) == status:
            return
        if conn is None:
            self.status0 = status
        else:
            conn.status = status
        if self.connection_state == "accepted":
            payload = self._status_payload(number, status)
            self.queue("StatusNotification", lambda: payload)

    def now(self) -> datetime:
        """The current time, aware UTC."""
        return self.clock.now().replace(tzinfo=UTC)

    def now_text(self) -> str:
        """The current time as an OCPP date-time."""
        return timestamp(self.now())

    def present_card(self, number: int, id_tag: str) -> bool:
        """A driver presents a card at a connector: online the server authorizes it (Authorize); offline the
        local list does (OCPP 1.6 §3.5.3) and the StartTransaction waits for the connection. False: no start."""
        conn = self.connectors.get(number)
        if conn is None or conn.busy or conn.transaction is not None or not (conn.operative and self.operative0):
            return False
        if self.connection_state == "accepted":
            self.spawn(lambda: sessions.run_session(self, conn, id_tag, remote=False))
            return True
        if self.stopping() or not local_list.authorizes_offline(self, id_tag):
            return False
        self.spawn(lambda: sessions.run_session(self, conn, id_tag, remote=False, authorized=True))
        return True

    # ------------------------------------------------------------------ commands and waiting

    async def reset(self, kind: str) -> None:
        """Stop every transaction (SoftReset/HardReset), send what is queued, and reconnect."""
        await self.reboot("HardReset" if kind == "Hard" else "SoftReset")

    async def reboot(self, reason: str) -> None:
        """Stop every transaction with `reason`, send what is queued, then reconnect and boot again."""
        sessions.end_all(self, reason)
        await self.outbox.drained(self.call_timeout)
        self._reboot.set()

    def _answer(self, action: str, payload: Any) -> tuple[Payload, FollowUp | None]:
        return handlers.answer(self, action, payload)

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        """Wait for `event` at most `seconds`; True if it was set."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(0.0, seconds))
        return event.is_set()

    async def pause(self, seconds: float) -> None:
        """Sleep for `seconds`, or less when the charger is asked to stop."""
        await self.wait(self._stop, seconds)

    def stopping(self) -> bool:
        """True once the charger was asked to stop."""
        return self._stop.is_set()
