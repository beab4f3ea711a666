"""A TCP proxy a test cuts and restores: a server (PostgreSQL, NATS) out of one process's reach while it runs."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any


class TcpProxy:
    """127.0.0.1:<port> forwarded to a TCP server (PostgreSQL, NATS), on a loop of its own.

    `cut()` drops every connection and refuses new ones (the server unreachable), `restore()`
    listens again; it starts cut. `freeze()` keeps the connections but carries nothing more in
    either direction, as a network that drops packets without a reset; `thaw()` delivers what
    was held and carries on.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    def _on_loop(self, make: Callable[[], Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(make(), self.loop).result(10)

    def restore(self) -> None:
        """Accept connections (again)."""

        async def listen() -> None:
            self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port)

        self._on_loop(listen)

    def cut(self) -> None:
        """Stop listening and reset every open connection, as a network failure would."""

        async def cut() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for writer in list(self._links):
                writer.transport.abort()
            self._links.clear()

        self._on_loop(cut)

    def freeze(self) -> None:
        """Carry no more bytes on the open connections (nothing is reset)."""
        self.loop.call_soon_threadsafe(self._flowing.clear)

    def thaw(self) -> None:
        """Deliver what was held and carry on."""
        self.loop.call_soon_threadsafe(self._flowing.set)

    def close(self) -> None:
        """Cut, then stop the proxy's loop."""
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._links.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        self._links.discard(writer)
        writer.transport.abort()
