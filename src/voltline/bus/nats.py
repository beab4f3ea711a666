"""The bus across processes: NATS core subjects (DESIGN "Cluster"), with the contract of bus/memory.py.

Every subject is put under a prefix (`VOLTLINE_BUS_PREFIX`, default `voltline`) so that several
installations, or test runs, can share one NATS server. A request with nobody subscribed fails
at once with NoRespondersError (NATS answers 503 for it); a listener in a queue group shares the
subject's messages with the other members of that group, one member each. Each message is
handled in a task of its own, as the in-memory bus does, so a slow responder (a charger that
takes its time to answer a command) does not hold up the next message. The connection
reconnects by itself; `connected` says whether it is up now (for `/readyz`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError as NatsNoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from voltline.bus.memory import Listener, NoRespondersError, Responder, Subscription

log = logging.getLogger("voltline.bus")

CONNECT_TIMEOUT = 2  # seconds for the first connection at start-up (nats-py takes whole seconds)
RECONNECT_WAIT = 1  # second between reconnection attempts (forever)


class _NatsSubscription:
    def __init__(self, bus: NatsBus, subscription: Any, subject: str | None = None) -> None:
        self._bus = bus
        self._subscription = subscription
        self._subject = subject  # a responder's subject, to forget it in the bus's table

    async def unsubscribe(self) -> None:
        if self._subject is not None and self._bus._responders.get(self._subject) is self:
            del self._bus._responders[self._subject]
        # Closed with the connection, or undone already: nothing left to undo.
        with contextlib.suppress(nats.errors.ConnectionClosedError, nats.errors.BadSubscriptionError):
            await self._subscription.unsubscribe()


class NatsBus:
    """The bus between the processes of one installation, over a NATS server."""

    def __init__(self, url: str, prefix: str = "voltline", *, name: str = "voltline") -> None:
        self.url = url
        self.prefix = prefix
        self.name = name
        self._client: Client | None = None
        self._responders: dict[str, _NatsSubscription] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        """The connection to NATS is up (it reconnects by itself when not)."""
        return self._client is not None and self._client.is_connected

    async def start(self) -> None:
        """Connect; OSError when the server cannot be reached at start-up."""
        if self._client is not None:
            return
        client = Client()
        try:
            # NATS retries an unreachable server forever (as it should once connected): bound the first try.
            async with asyncio.timeout(CONNECT_TIMEOUT * 2):
                await client.connect(
                    self.url.split(","),
                    name=self.name,
                    connect_timeout=CONNECT_TIMEOUT,
                    reconnect_time_wait=RECONNECT_WAIT,
                    max_reconnect_attempts=-1,
                    allow_reconnect=True,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
        except (TimeoutError, NatsTimeoutError, nats.errors.NoServersError, OSError) as error:
            with contextlib.suppress(Exception):
                await client.close()
            raise OSError(f"cannot reach the NATS server at {self.url}: {error or 'timed out'}") from error
        self._client = client

    def _subject(self, subject: str) -> str:
        return f"{self.prefix}.{subject}"

    def _nats(self) -> Client:
        if self._client is None:
            raise RuntimeError("the NATS bus is not started")
        return self._client

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        """Send to the subject's responder and wait for its reply; TimeoutError after `timeout`."""
        try:
            reply = await self._nats().request(self._subject(subject), data, timeout=timeout)
        except NatsNoRespondersError:
            raise NoRespondersError(subject) from None
        except NatsTimeoutError:
            raise TimeoutError(f"no reply on {subject} within {timeout} s") from None
        return bytes(reply.data)

    async def respond(self, subject: str, responder: Responder) -> Subscription:
        """Answer requests on a subject (a later responder of this process replaces an earlier one)."""

        async def on_message(msg: Msg) -> None:
            self._spawn(self._answer(msg, responder))

        earlier = self._responders.get(subject)
        handle = _NatsSubscription(self, await self._subscribe(subject, "", on_message), subject)
        self._responders[subject] = handle
        if earlier is not None:
            await earlier.unsubscribe()
        return handle

    async def _answer(self, msg: Msg, responder: Responder) -> None:
        try:
            reply = await responder(msg.data)
        except Exception:  # task boundary: the requester times out, as when a process dies
            log.exception("a responder on %s failed", msg.subject)
            return
        if msg.reply:
            await msg.respond(reply)

    async def publish(self, subject: str, data: bytes) -> None:
        """Deliver to every listener of the subject (one per queue group), without waiting for them."""
        await self._nats().publish(self._subject(subject), data)

    async def listen(self, subject: str, listener: Listener, *, queue: str | None = None) -> Subscription:
        """Receive what is published on a subject; with `queue`, share it with that group's other members."""
        prefix = len(self.prefix) + 1

        async def on_message(msg: Msg) -> None:
            self._spawn(listener(msg.subject[prefix:], msg.data))

        return _NatsSubscription(self, await self._subscribe(subject, queue or "", on_message))

    async def _subscribe(self, subject: str, queue: str, on_message: Callable[[Msg], Awaitable[None]]) -> Any:
        """Subscribe and wait until the server has it (a request sent right after by another process is answered)."""
        client = self._nats()
        subscription = await client.subscribe(self._subject(subject), queue=queue, cb=on_message)
        await client.flush()
        return subscription

    async def close(self) -> None:
        """Finish the messages being handled and close the connection."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        client, self._client = self._client, None
        self._responders.clear()
        if client is not None and not client.is_closed:
            await client.drain()

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_error(self, error: Exception) -> None:
        log.warning("NATS: %s", error)

    async def _on_disconnected(self) -> None:
        log.warning("NATS: disconnected from %s; reconnecting", self.url)

    async def _on_reconnected(self) -> None:
        log.warning("NATS: connected again to %s", self.url)
