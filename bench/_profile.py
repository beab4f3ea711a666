"""Where a request's time goes: sequential requests straight into the ASGI app, timed by section.

No HTTP and no concurrency: one request at a time is passed to `create_app(settings)`
with the bench's seeded database, and wrappers installed in this process only (src/ is
not touched) time each stage of the request: `authenticate` (token query), `team_scope`
(membership query) and the endpoint handler; inside each, the connection checkout and
BEGIN (`Database.read` entry), the SQL statements (`AsyncConnection.execute`), and COMMIT
plus check-in (`Database.read` exit); JSON encoding is timed on its own. For every part
it reports wall time and CPU time of the event-loop thread: for aiosqlite the difference
is the worker-thread hop, for asyncpg the round trip to PostgreSQL.
"""

from __future__ import annotations

import contextvars
import dataclasses
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

STAGE: contextvars.ContextVar[str] = contextvars.ContextVar("stage", default="other")
STAGES = ("authenticate", "team_scope", "handler")
PARTS = ("checkout + BEGIN", "SQL statements", "COMMIT + check-in")


class Timer:
    """Wall and loop-thread CPU seconds, summed per (stage, part)."""

    def __init__(self) -> None:
        self.wall: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.cpu: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.on = False
        self.installed = False

    async def timed(self, key: tuple[str, str], step: Awaitable[Any]) -> Any:
        """Await `step`, adding its wall and CPU time under `key`."""
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return await step
        finally:
            if self.on:
                self.wall[key] += time.perf_counter() - wall
                self.cpu[key] += time.thread_time() - cpu


TIMER = Timer()


def _stage(timer: Timer, name: str, func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = STAGE.set(name)
        try:
            return await timer.timed((name, "total"), func(*args, **kwargs))
        finally:
            STAGE.reset(token)

    return wrapper


def install(timer: Timer) -> None:
    """Wrap the stages, the transaction boundaries, SQL execution and JSON encoding (this process only)."""
    from voltline import codec
    from voltline.api import ENDPOINTS, auth
    from voltline.store.engine import Database

    auth.authenticate = _stage(timer, "authenticate", auth.authenticate)  # type: ignore[assignment]
    auth.team_scope = _stage(timer, "team_scope", auth.team_scope)  # type: ignore[assignment]
    for i, endpoint in enumerate(ENDPOINTS):
        ENDPOINTS[i] = dataclasses.replace(endpoint, handler=_stage(timer, "handler", endpoint.handler))
    original_read, original_execute, original_encode = Database.read, AsyncConnection.execute, codec.encode_json

    @asynccontextmanager
    async def read(self: Database) -> AsyncIterator[AsyncConnection]:
        manager = original_read(self)
        conn = await timer.timed((STAGE.get(), PARTS[0]), manager.__aenter__())
        try:
            yield conn
        except BaseException as error:
            if not await manager.__aexit__(type(error), error, error.__traceback__):
                raise
        else:
            await timer.timed((STAGE.get(), PARTS[2]), manager.__aexit__(None, None, None))

    async def execute(self: AsyncConnection, *args: Any, **kwargs: Any) -> Any:
        return await timer.timed((STAGE.get(), PARTS[1]), original_execute(self, *args, **kwargs))

    def encode(value: Any) -> bytes:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return original_encode(value)
        finally:
            if timer.on:
                timer.wall[("handler", "JSON encoding")] += time.perf_counter() - start
                timer.cpu[("handler", "JSON encoding")] += time.thread_time() - cpu

    Database.read = read  # type: ignore[method-assign]
    AsyncConnection.execute = execute  # type: ignore[method-assign]
    codec.encode_json = encode
    _time_inline_reads(timer)


def _time_inline_reads(timer: Timer) -> None:
    """Also time the synchronous SQLite read connection, where the store has one."""
    from voltline.store import engine

    inline = getattr(engine, "_InlineConnection", None)
    for name in ("execute", "scalar") if inline is not None else ():
        original = getattr(inline, name)

        async def timed(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            return await timer.timed((STAGE.get(), PARTS[1]), _original(self, *args, **kwargs))

        setattr(inline, name, timed)


async def _call(app: Any, path: str, token: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


async def profile(url: str, paths: Callable[[], str], token: str, requests: int) -> str:
    """Time `requests` sequential requests (after as many for warm-up); a text table in microseconds."""
    from voltline.app import create_app
    from voltline.settings import load_settings

    timer = TIMER
    if not timer.installed:
        install(timer)
        timer.installed = True
    timer.wall.clear()
    timer.cpu.clear()
    timer.on = False
    app = create_app(load_settings({}, database_url=url, rate_limit=0, secret_key="bench", data_dir="/tmp"))
    for _ in range(requests):
        await _call(app, paths(), token)
    timer.on = True
    for _ in range(requests):
        status = await timer.timed(("request", "total"), _call(app, paths(), token))
        if status != 200:
            raise SystemExit(f"profile: {status} for {paths()}")
    await app.app.state.runtime.db.close()  # type: ignore[attr-defined]
    return _table(timer, requests)


def _table(timer: Timer, n: int) -> str:
    def line(label: str, key: tuple[str, str], minus: tuple[float, float] = (0.0, 0.0)) -> tuple[str, float, float]:
        wall = timer.wall.get(key, 0.0) / n * 1e6 - minus[0]
        cpu = timer.cpu.get(key, 0.0) / n * 1e6 - minus[1]
        return f"{label:48} {wall:9.0f} {cpu:12.0f}", wall, cpu

    text, total_wall, total_cpu = line("whole request in the app", ("request", "total"))
    lines = [f"{'section (per request)':48} {'wall us':>9} {'loop CPU us':>12}", text]
    staged = [0.0, 0.0]
    for stage in STAGES:
        text, wall, cpu = line(f"  {stage}", (stage, "total"))
        lines.append(text)
        staged = [staged[0] + wall, staged[1] + cpu]
        inner = [0.0, 0.0]
        for part in (*PARTS, "JSON encoding"):
            if (stage, part) in timer.wall:
                text, part_wall, part_cpu = line(f"    {part}", (stage, part))
                lines.append(text)
                inner = [inner[0] + part_wall, inner[1] + part_cpu]
        lines.append(line("    rest (Python around the queries)", (stage, "total"), (inner[0], inner[1]))[0])
    rest = (
        f"{'  routing, middleware, wrapper, Response':48} {total_wall - staged[0]:9.0f} {total_cpu - staged[1]:12.0f}"
    )
    return "\n".join([*lines, rest])
