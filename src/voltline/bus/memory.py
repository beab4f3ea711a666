"""The bus contract and its in-process implementation.

Request/reply reaches the one responder of a subject (the gateway holding a charger's
socket subscribes `charger.<identity>.command`); publish reaches every listener of a
subject (events such as a transaction start, for the smart-charging loop).
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

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        """Send to the subject's responder and wait for its reply; TimeoutError after `timeout`."""

    async def respond(self, subject: str, responder: Responder) -> Subscription:
        """Answer requests on a subject (a later responder replaces an earlier one)."""

    async def publish(self, subject: str, data: bytes) -> None:
        """Deliver to every listener of the subject, without waiting for them."""

    async def listen(self, subject: str, listener: Listener) -> Subscription:
        """Receive what is published on a subject."""

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
        self._listeners: dict[str, list[Listener]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

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
        """Schedule every listener of the subject."""
        for listener in self._listeners.get(subject, ()):
            task = asyncio.create_task(listener(subject, data))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def listen(self, subject: str, listener: Listener) -> Subscription:
        """Add a listener for the subject."""
        self._listeners.setdefault(subject, []).append(listener)
        return _MemorySubscription(lambda: self._listeners.get(subject, []).remove(listener))

    async def close(self) -> None:
        """Wait for listeners still running."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
