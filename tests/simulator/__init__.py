"""A tiny OCPP 1.6 central system for the simulator's tests.

It answers the charger's calls schema-validly, records every frame in both directions, and
validates each one against the official OCA JSON schemas shipped in the `ocpp` package (with
fastjsonschema). It also checks OCPP-J §4.1.1 on the charger side: a CALL that arrives while the
charger's previous CALL is still unanswered is a violation. Tests assert `violations == []`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.resources
import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

import fastjsonschema
from websockets.asyncio.server import Request, Response, Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from voltline.simulator import SimulatedCharger

SCHEMAS = Path(str(importlib.resources.files("ocpp"))) / "v16" / "schemas"
Answerer = Callable[[dict[str, Any]], dict[str, Any] | None]


@cache
def validator(name: str) -> Callable[[Any], Any]:
    """The compiled OCA schema `name` (e.g. "MeterValues", "ResetResponse")."""
    return fastjsonschema.compile(json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8")))


def now_text() -> str:
    """The current time as an OCPP date-time."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Frame:
    """One frame on the wire: who sent it ("cp" or "cs"), for which charger, and the parsed array."""

    identity: str
    sender: str
    frame: list[Any]
    action: str | None


class CentralSystem:
    """Answers BootNotification, Heartbeat, Authorize, Start/StopTransaction and the rest; records frames."""

    def __init__(self, *, boot_status: str = "Accepted", interval: int = 60, password: str | None = None) -> None:
        self.boot_status, self.interval, self.password = boot_status, interval, password
        self.frames: list[Frame] = []
        self.violations: list[str] = []
        self.answers: dict[str, Answerer] = {}
        self.delays: dict[str, float] = {}
        self.sockets: dict[str, ServerConnection] = {}
        self.auth_headers: list[str | None] = []
        self.url = ""
        self._server: Server | None = None
        self._tx_ids = itertools.count(101)
        self._waiting: dict[str, tuple[str, str, asyncio.Future[tuple[str, Any]]]] = {}
        self._outstanding: dict[str, str | None] = {}
        self._ids = itertools.count(1)

    async def __aenter__(self) -> CentralSystem:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            subprotocols=[Subprotocol("ocpp1.6")],
            compression=None,
            process_request=self._check_auth,
        )
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ocpp"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _check_auth(self, connection: ServerConnection, request: Request) -> Response | None:
        header = request.headers.get("Authorization")
        self.auth_headers.append(header)
        identity = request.path.rsplit("/", 1)[-1]
        expected = f"Basic {base64.b64encode(f'{identity}:{self.password}'.encode()).decode()}"
        if self.password is not None and header != expected:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        return None

    # ------------------------------------------------------------------ receiving

    async def _handle(self, ws: ServerConnection) -> None:
        identity = ws.request.path.rsplit("/", 1)[-1] if ws.request else "?"
        if ws.subprotocol != "ocpp1.6":
            self.violations.append(f"{identity}: no ocpp1.6 subprotocol")
        self.sockets[identity] = ws
        self._outstanding[identity] = None
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                await self._on_frame(identity, ws, json.loads(message))

    async def _on_frame(self, identity: str, ws: ServerConnection, frame: list[Any]) -> None:
        kind, message_id = frame[0], frame[1]
        if kind == 2:
            self._record(identity, "cp", frame, frame[2])
            self._check(f"{frame[2]}", frame[3], identity)
            if self._outstanding.get(identity) is not None:
                self.violations.append(f"{identity}: {frame[2]} sent while {self._outstanding[identity]} is unanswered")
            self._outstanding[identity] = frame[2]
            asyncio.get_running_loop().create_task(self._reply(identity, ws, frame))
            return
        waiting = self._waiting.pop(message_id, None)
        if waiting is None:
            self.violations.append(f"{identity}: a result for an unknown message id {message_id}")
            return
        _, action, future = waiting
        self._record(identity, "cp", frame, action)
        if kind == 3:
            self._check(f"{action}Response", frame[2], identity)
            future.set_result(("result", frame[2]))
        else:
            future.set_result(("error", frame[2]))

    async def _reply(self, identity: str, ws: ServerConnection, frame: list[Any]) -> None:
        action, payload = frame[2], frame[3]
        if self.delays.get(action):
            await asyncio.sleep(self.delays[action])
        response = self.answers[action](payload) if action in self.answers else self.default_answer(action)
        self._outstanding[identity] = None
        if response is None:
            return
        await self._send(identity, ws, [3, frame[1], response], action)

    def default_answer(self, action: str) -> dict[str, Any]:
        """A schema-valid answer to any charger-initiated 1.6 call."""
        accepted = {"idTagInfo": {"status": "Accepted"}}
        answers: dict[str, dict[str, Any]] = {
            "BootNotification": {"status": self.boot_status, "currentTime": now_text(), "interval": self.interval},
            "Heartbeat": {"currentTime": now_text()},
            "Authorize": accepted,
            "StopTransaction": accepted,
        }
        if action == "StartTransaction":
            return {"transactionId": next(self._tx_ids), **accepted}
        return answers.get(action, {})

    async def _send(self, identity: str, ws: ServerConnection, frame: list[Any], action: str) -> None:
        self._record(identity, "cs", frame, action)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps(frame))

    def _record(self, identity: str, sender: str, frame: list[Any], action: str | None) -> None:
        self.frames.append(Frame(identity, sender, frame, action))

    def _check(self, schema: str, payload: Any, identity: str) -> None:
        try:
            validator(schema)(payload)
        except fastjsonschema.JsonSchemaException as error:
            self.violations.append(f"{identity}: {schema} {payload!r}: {error.message}")

    # ------------------------------------------------------------------ calling the charger

    async def call(
        self, identity: str, action: str, payload: dict[str, Any], *, timeout: float = 3.0, validate: bool = True
    ) -> tuple[str, Any]:
        """Send a CALL to the charger; returns ("result", payload) or ("error", code)."""
        if validate:
            self._check(action, payload, "central system")
        message_id = f"cs-{next(self._ids)}"
        future: asyncio.Future[tuple[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = (identity, action, future)
        await self._send(identity, self.sockets[identity], [2, message_id, action, payload], action)
        return await asyncio.wait_for(future, timeout)

    async def result(self, identity: str, action: str, payload: dict[str, Any], **options: Any) -> Any:
        """Send a CALL and return the CALLRESULT payload (fails on a CALLERROR)."""
        kind, answer = await self.call(identity, action, payload, **options)
        assert kind == "result", answer
        return answer

    async def drop(self, identity: str) -> None:
        """Close the charger's socket from the server side."""
        await self.sockets[identity].close(1011, "test drops the connection")

    # ------------------------------------------------------------------ reading what happened

    def calls(self, action: str | None = None, identity: str | None = None) -> list[dict[str, Any]]:
        """Payloads of the charger's CALLs, optionally of one action."""
        return [
            f.frame[3]
            for f in self.frames
            if f.sender == "cp" and f.frame[0] == 2 and action in (None, f.action) and identity in (None, f.identity)
        ]

    def statuses(self, connector: int, identity: str | None = None) -> list[str]:
        """The statuses the charger reported for one connector, in order."""
        return [p["status"] for p in self.calls("StatusNotification", identity) if p["connectorId"] == connector]

    def sequence(self, identity: str | None = None) -> list[str]:
        """Every frame as "cp:Action" / "cs:Action" / "cs:result:Action" in wire order."""
        names = {2: "", 3: "result:", 4: "error:"}
        return [f"{f.sender}:{names[f.frame[0]]}{f.action}" for f in self.frames if identity in (None, f.identity)]

    async def until(self, condition: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until `condition()` is truthy; returns its value."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not (value := condition()):
            assert asyncio.get_running_loop().time() < deadline, "timed out waiting for a condition"
            await asyncio.sleep(0.01)
        return value


FAST = {
    "meter_interval": 0.1,
    "session_seconds": 600.0,
    "idle_seconds": 0.05,
    "unplug_seconds": 0.05,
    "auto_sessions": False,
    "call_timeout": 2.0,
    "seed": 7,
}


def charger(csms: CentralSystem, identity: str = "CP-1", **options: Any) -> SimulatedCharger:
    """A simulated charger with test-speed intervals pointed at the central system."""
    return SimulatedCharger(csms.url, identity, **{**FAST, **options})


@contextlib.asynccontextmanager
async def running(cp: SimulatedCharger, csms: CentralSystem | None = None) -> AsyncIterator[SimulatedCharger]:
    """Run the charger in the background; stop it cleanly at the end (and wait until it booted)."""
    stop = asyncio.Event()
    task = asyncio.create_task(cp.run(stop))
    try:
        if csms is not None:
            await csms.until(lambda: cp.connection_state == "accepted" and len(cp.outbox) == 0)
            await csms.until(lambda: len(csms.statuses(len(cp.connectors), cp.identity)) >= 1)
        yield cp
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def station(identity: str, **options: Any) -> AsyncIterator[tuple[CentralSystem, SimulatedCharger]]:
    """A central system and one booted charger; every frame must have been schema-valid at the end."""
    async with CentralSystem() as csms:
        cp = charger(csms, identity, **options)
        async with running(cp, csms):
            yield csms, cp
        assert csms.violations == []


def sampled(payload: dict[str, Any]) -> dict[tuple[str, str | None], str]:
    """A MeterValues payload's first meter value as {(measurand, phase): value}."""
    values = payload["meterValue"][0]["sampledValue"]
    return {(v.get("measurand", "Energy.Active.Import.Register"), v.get("phase")): v["value"] for v in values}


def run(scenario: Callable[[], Any]) -> Any:
    """Run an async test scenario to completion."""
    return asyncio.run(scenario())
