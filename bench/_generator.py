"""One load-generator process (bench/_ocpp_client.py) as the benchmarks drive it: its JSON lines and its stdin."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import suppress
from typing import Any


class GeneratorProcess:
    """The process, the events it printed (one JSON object a line; other lines are passed over), its stdin."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            with suppress(ValueError):
                self.events.append(json.loads(line))

    async def wait_for(self, name: str, timeout: float) -> dict[str, Any]:
        """The first event called `name`; SystemExit when the process ends or `timeout` passes first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event["event"] == name:
                    return event
            if self.reader.done():
                raise SystemExit(f"load generator exited (code {self.proc.returncode}) before {name!r}")
            await asyncio.sleep(0.05)
        raise SystemExit(f"load generator: no {name!r} within {timeout} s")

    async def send(self, line: str) -> None:
        """A line on the generator's stdin (nothing when it has gone)."""
        assert self.proc.stdin is not None
        with suppress(BrokenPipeError, ConnectionResetError):
            self.proc.stdin.write(line.encode() + b"\n")
            await self.proc.stdin.drain()
