"""The bus contract and its in-process implementation.

Request/reply reaches the one responder of a subject (the gateway holding a charger's
socket subscribes `charger.<identity>.command`); publish reaches every listener of a
subject (events such as a transaction start, for the smart-charging loop), except that the
listeners of one queue group share the subject's messages, one member each (DESIGN "Cluster":
where exactly one process must handle an event). bus/nats.py keeps the same contract between
processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from voltline.errors import VoltlineError

Responder = Callable[[bytes], Awaitable[bytes]]
Listener = Callable[[str, bytes], Coroutine[Any, Any, None]]


class NoRespondersError(VoltlineError):
    """Nobody answers this subject (for a charger: it is not connected anywhere)."""


class Subscription(Protocol):
    """A registration that can be undone."""

    async def unsubscribe(self) -> None:
        """Stop receiving."""


class Bus(Protocol):
    """What the services need from a bus."""

    @property
    def connected(self) -> bool:
        """The bus can carry messages now (`/readyz`)."""

    async def start(self) -> None:
        """Connect (OSError when that is impossible at start-up)."""

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        """Send to the subject's responder and wait for its reply; TimeoutError after `timeout`."""

    async def respond(self, subject: str, responder: Responder) -> Subscription:
        """Answer requests on a subject (a later responder replaces an earlier one)."""

    async def publish(self, subject: str, data: bytes) -> None:
        """Deliver to every listener of the subject, without waiting for them."""

    async def listen(self, subject: str, listener: Listener, *, queue: str | None = None) -> Subscription:
        """Receive what is published on a subject; with `queue`, share it with that group's other members."""

    async def close(self) -> None:
        """Release connections."""


class _MemorySubscription:
    def __init__(self, undo: Callable[[], None]) -> None:
        self._undo = undo

    async def unsubscribe(self) -> None:
        self._undo()


class MemoryBus:
    """The bus inside one process: direct calls, no copies beyond the bytes given."""

    def __init__(self) -> None:
        self._responders: dict[str, Responder] = {}
        self._listeners: dict[str, list[tuple[Listener, str | None]]] = {}
        self._turns: dict[tuple[str, str], int] = {}  # (subject, queue group): messages delivered so far
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        """Always: there is nothing to connect to."""
        return True

    async def start(self) -> None:
        """Nothing to connect."""

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        """Call the subject's responder, bounded by `timeout` seconds."""
        responder = self._responders.get(subject)
        if responder is None:
            raise NoRespondersError(subject)
        async with asyncio.timeout(timeout):
            return await responder(data)

    async def respond(self, subject: str, responder: Responder) -> Subscription:
        """Become the subject's responder."""
        self._responders[subject] = responder

        def undo() -> None:
            if self._responders.get(subject) is responder:
                del self._responders[subject]

        return _MemorySubscription(undo)

    async def publish(self, subject: str, data: bytes) -> None:
        """Schedule every listener of the subject, and one member of each queue group in turn."""
        listeners = self._listeners.get(subject, [])
        groups: dict[str, list[Listener]] = {}
        for listener, queue in listeners:
            if queue is None:
                self._schedule(listener(subject, data))
            else:
                groups.setdefault(queue, []).append(listener)
        for queue, members in groups.items():
            turn = self._turns.get((subject, queue), 0)
            self._turns[(subject, queue)] = turn + 1
            self._schedule(members[turn % len(members)](subject, data))

    def _schedule(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def listen(self, subject: str, listener: Listener, *, queue: str | None = None) -> Subscription:
        """Add a listener for the subject (in a queue group when `queue` is given)."""
        entry = (listener, queue)
        self._listeners.setdefault(subject, []).append(entry)
        return _MemorySubscription(lambda: self._listeners.get(subject, []).remove(entry))

    async def close(self) -> None:
        """Wait for listeners still running."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
