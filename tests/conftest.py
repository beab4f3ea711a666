"""Shared fixtures: a real server on an ephemeral port, per database backend, per test run.

Tests run against SQLite always and against PostgreSQL too when
`VOLTLINE_TEST_POSTGRES_URL` names a server (an admin URL; each run makes its own fresh
database there and drops it afterwards).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import make_url

from voltline.app import create_app
from voltline.server import uvicorn_options
from voltline.services import accounts
from voltline.services.runtime import Runtime
from voltline.settings import Settings, load_settings
from voltline.store import migrate

if TYPE_CHECKING:
    from tests.clocked import ClockedServer

T = TypeVar("T")
POSTGRES_ADMIN_URL = os.environ.get("VOLTLINE_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", *(["postgres"] if POSTGRES_ADMIN_URL else [])]
NATS_URL = os.environ.get("VOLTLINE_TEST_NATS_URL", "")
# The bus tests need a NATS server; the cluster tests (several real processes) PostgreSQL beside it.
needs_nats = pytest.mark.skipif(not NATS_URL, reason="needs VOLTLINE_TEST_NATS_URL")
needs_cluster = pytest.mark.skipif(
    not (NATS_URL and POSTGRES_ADMIN_URL), reason="needs VOLTLINE_TEST_NATS_URL and VOLTLINE_TEST_POSTGRES_URL"
)


def asyncpg_url(url: str, database: str | None = None) -> str:
    """The URL with the asyncpg driver (and another database name, if given)."""
    parsed = make_url(url).set(drivername="postgresql+asyncpg")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _admin(sql: str) -> None:
    import asyncpg

    parsed = make_url(POSTGRES_ADMIN_URL)
    conn = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database=parsed.database or "postgres",
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def fresh_database(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """A factory: a fresh, migrated database URL for 'sqlite' or 'postgres'; dropped at the end."""
    made: list[str] = []

    def make(backend: str) -> str:
        name = f"voltline_test_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / (name + '.sqlite3')}"
        else:
            asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
            made.append(name)
            url = asyncpg_url(POSTGRES_ADMIN_URL, name)
        asyncio.run(migrate.upgrade(url))
        return url

    yield make  # type: ignore[misc]
    for name in made:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class LiveServer:
    """A uvicorn server in a thread of its own, serving `create_app(settings)`."""

    settings: Settings
    backend: str
    base_url: str = ""
    app: Any = None
    loop: asyncio.AbstractEventLoop | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _counter: list[int] = field(default_factory=lambda: [0])

    def start(self) -> None:
        """Bind an ephemeral port, start serving, wait until ready."""
        self.app = create_app(self.settings)
        # IPPROTO_TCP so that asyncio sets TCP_NODELAY on accepted sockets (else ~40 ms per small response).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        scheme = "https" if self.settings.ssl_certfile else "http"
        self.base_url = f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, lifespan="on", **{**uvicorn_options(self.settings), "log_level": "warning"})
        self._server = uvicorn.Server(config)
        ready = threading.Event()

        def serve() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(ready.set)
            self.loop.run_until_complete(self._server.serve(sockets=[sock]))  # type: ignore[union-attr]
            self.loop.close()

        self._thread = threading.Thread(target=serve, name="voltline-test-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        for _ in range(500):
            if self._server.started:
                return
            threading.Event().wait(0.01)
        raise RuntimeError("test server did not start")

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        if self._server is not None:
            self._settle_closing_websockets()
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)

    def _settle_closing_websockets(self, seconds: float = 3.0) -> None:
        """Wait (bounded) until no WebSocket is half-way through its closing handshake.

        uvicorn's shutdown sends a close frame (1012) on every open WebSocket and raises
        InvalidState, in the server's thread, on one whose peer has just closed it; a test that
        closes its charger and stops the server at once would then fail on that race.
        """
        assert self._server is not None
        connections = self._server.server_state.connections
        deadline = threading.Event()
        for _ in range(int(seconds / 0.01)):
            try:
                states = [getattr(getattr(c, "conn", None), "state", None) for c in list(connections)]
            except RuntimeError:  # the set changed while it was copied: look again
                continue
            if not any(state is not None and state.name == "CLOSING" for state in states):
                return
            deadline.wait(0.01)

    @property
    def runtime(self) -> Runtime:
        """The server's runtime (database, settings, clock)."""
        runtime: Runtime = self.app.app.state.runtime
        return runtime

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine on the server's event loop (e.g. store set-up) and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(make(), self.loop).result(30)  # type: ignore[arg-type]

    def account(self, name: str = "Tester") -> accounts.Account:
        """A new user with a personal team and a token."""
        self._counter[0] += 1
        email = f"user{self._counter[0]}-{uuid.uuid4().hex[:8]}@example.com"
        return self.run(lambda: accounts.create_account(self.runtime.db, email=email, name=name))

    def client(self, account: accounts.Account | None = None) -> httpx.Client:
        """An HTTP client, authenticated as the account if given."""
        headers = {"Accept": "application/json"}
        if account is not None:
            headers["Authorization"] = f"Bearer {account.token}"
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


def server_settings(url: str, data_dir: str, **overrides: Any) -> Settings:
    """Settings for a test server: the given database, no rate limits unless asked for."""
    values: dict[str, Any] = {
        "database_url": url,
        "data_dir": data_dir,
        "rate_limit": 0,
        "rate_limit_unauthenticated": 0,
        "secret_key": "test-secret",
    }
    values.update(overrides)
    return load_settings({}, **values)


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One live server per backend for the whole run; tests isolate by making their own teams."""
    backend = request.param
    url = fresh_database(backend)
    live = LiveServer(server_settings(url, str(tmp_path_factory.mktemp("data"))), backend)
    live.start()
    yield live
    live.stop()


@pytest.fixture
def account(server: LiveServer) -> accounts.Account:
    """A fresh user with a personal team and token."""
    return server.account()


@pytest.fixture
def api(server: LiveServer, account: accounts.Account) -> Iterator[httpx.Client]:
    """An HTTP client authenticated as `account`."""
    with server.client(account) as client:
        yield client


@pytest.fixture(scope="module")
def smart(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClockedServer]:
    """A server of its own on a SteppedClock with a short debounce (`SMART_SETTINGS`), one per module."""
    from tests.support.smart_e2e import clocked_server  # the support module imports this one

    with clocked_server(server, fresh_database, tmp_path_factory) as live:
        yield live
