"""Database handles: a reader pool and one serialised writer (SQLite: BEGIN IMMEDIATE, WAL).

On SQLite every write of the process takes its turn on one lock, so there is one writer at a
time (DESIGN: one writer); the meter writer's batches (`write_batch`) run on a sqlite3
connection of their own in a worker thread, the other writes on the aiosqlite one.

DESIGN "Durability": SQLite runs WAL with `synchronous` as a setting (NORMAL survives a process
crash, FULL also a power loss); PostgreSQL commits durably (its default). `write_failure` keeps
the error of the last write transaction that failed because the database could not take it
(`is_unavailable`), until a write commits again: readiness (/readyz) reads it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from voltline.store.files import ensure_private_database
from voltline.tasks import answer_within

T = TypeVar("T")
# /readyz reports the database unreachable rather than wait longer than this many seconds of the
# process's own time (tasks.answer_within: a loop that ran late does not count against the database).
PING_TIMEOUT = 1.0
_SELECT_1 = text("SELECT 1")
# PostgreSQL: assigning a transaction id needs a writable server (it fails on a read-only standby).
_PG_WRITE_PROBE = text("SELECT pg_current_xact_id()")
SYNCHRONOUS = ("NORMAL", "FULL", "EXTRA")


def is_unavailable(error: BaseException) -> bool:
    """True when an error says the database cannot take writes now, not that the data was wrong.

    SQLite: a full disk, a read-only file, a lock held too long (OperationalError); PostgreSQL: a
    connection that was terminated or cannot be made (OperationalError, InterfaceError, or any
    driver error that invalidated its connection, such as an administrator shutdown). After
    pg_terminate_backend the first statement on each pooled connection fails this way and
    SQLAlchemy invalidates the pool, so the next attempt connects afresh (no pre-ping needed).
    """
    if isinstance(error, DBAPIError):
        return isinstance(error, OperationalError | InterfaceError) or error.connection_invalidated
    # A pool with no connection to give within its timeout, or one found dead, is as unavailable.
    return isinstance(error, OSError | TimeoutError | PoolTimeoutError | DisconnectionError)


def _set_writing_pragmas(dbapi_connection: Any, busy_timeout_ms: int, synchronous: str) -> None:
    """WAL, the chosen `synchronous`, foreign keys and the busy timeout on a new SQLite connection."""
    # SQLAlchemy docs (pysqlite/aiosqlite): take over BEGIN so that we choose its kind.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.close()


def _sqlite_engine(url: str, begin: str, busy_timeout_ms: int, pool_size: int, synchronous: str) -> AsyncEngine:
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        _set_writing_pragmas(dbapi_connection, busy_timeout_ms, synchronous)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


def _sqlite_inline_engine(url: str, busy_timeout_ms: int) -> Engine:
    sync_url = make_url(url).set(drivername="sqlite")
    engine = create_engine(
        sync_url, pool_size=4, max_overflow=4, connect_args={"check_same_thread": False}, pool_reset_on_return=None
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # autocommit: each SELECT reads one consistent snapshot
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return engine


def _sqlite_batch_engine(url: str, busy_timeout_ms: int, synchronous: str) -> Engine:
    """One plain sqlite3 connection for whole write transactions run in a thread (`Database.write_batch`)."""
    sync_url = make_url(url).set(drivername="sqlite")
    engine = create_engine(sync_url, pool_size=1, max_overflow=0, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        _set_writing_pragmas(dbapi_connection, busy_timeout_ms, synchronous)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _drive(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (it awaits only an `_InlineConnection`) to its end."""
    try:
        work.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    work.close()
    raise RuntimeError("a batch transaction waited on the event loop")


class _InlineConnection:
    """The `AsyncConnection` surface the store uses, over a synchronous SQLite connection.

    SQLite reads by index take tens of microseconds: running them on the event loop costs
    less than the two thread hops aiosqlite needs per statement (measured by bench/rest.py).
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.scalar(statement, parameters)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        return self._conn.exec_driver_sql(statement, parameters)

    async def run_sync(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(self._conn, *args, **kwargs)


class Database:
    """Reads go through a pool; writes through one connection at a time, in a transaction."""

    def __init__(self, url: str, *, busy_timeout_ms: int = 5000, synchronous: str = "NORMAL") -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.write_failure: str | None = None
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"SQLite synchronous must be one of {', '.join(SYNCHRONOUS)}, got {synchronous!r}")
        if self.is_sqlite:
            ensure_private_database(make_url(url).database or "")
            self.reader = _sqlite_engine(url, "BEGIN", busy_timeout_ms, 4, synchronous)
            self.writer = _sqlite_engine(url, "BEGIN IMMEDIATE", busy_timeout_ms, 1, synchronous)
            self.inline_reader: Engine | None = _sqlite_inline_engine(url, busy_timeout_ms)
            self.batch_writer: Engine | None = _sqlite_batch_engine(url, busy_timeout_ms, synchronous)
        else:
            self.reader = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=False)
            self.writer = self.reader
            self.inline_reader = None
            self.batch_writer = None
        # /healthz must not queue behind a busy pool (a reconnect storm holds every pooled connection):
        # one connection of its own, autocommit, so a ping is a single round trip.
        self._pinger = create_async_engine(url, pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT")
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for queries (SQLite: on the event loop, autocommit; PostgreSQL: in a transaction)."""
        if self.inline_reader is not None:
            with self.inline_reader.connect() as sync_conn:
                yield cast(AsyncConnection, _InlineConnection(sync_conn))
            return
        async with self.reader.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def scan(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads that may touch many rows: off the event loop on SQLite too."""
        async with self.reader.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction, committed on success, rolled back on error."""
        try:
            if self._write_lock is None:
                async with self.writer.begin() as conn:
                    yield conn
            else:
                async with self._write_lock, self.writer.begin() as conn:
                    yield conn
        except Exception as error:
            if is_unavailable(error):
                self.write_failure = f"{type(error).__name__}: {error}".splitlines()[0]
            raise
        self.write_failure = None

    async def write_batch(self, work: Callable[[AsyncConnection], Coroutine[Any, Any, T]]) -> T:
        """Run `work` in one write transaction, like `write()`; SQLite: in one hop to a thread.

        The meter writer's hot path (store/writer.py): through aiosqlite every statement is a few
        round trips to its thread (about 25 for a small batch, 1.8 ms of event-loop time, most of a
        commit's cost); here the whole transaction runs on a plain sqlite3 connection in a worker
        thread, serialised with every other write of the process by the same lock. `work` may
        await only the connection it is given.
        """
        if self.batch_writer is None or self._write_lock is None:
            async with self.write() as conn:
                return await work(conn)
        async with self._write_lock:
            try:
                result = await asyncio.to_thread(self._run_batch, self.batch_writer, work)
            except Exception as error:
                if is_unavailable(error):
                    self.write_failure = f"{type(error).__name__}: {error}".splitlines()[0]
                raise
        self.write_failure = None
        return result

    @staticmethod
    def _run_batch(engine: Engine, work: Callable[[AsyncConnection], Coroutine[Any, Any, T]]) -> T:
        with engine.begin() as sync_conn:
            return _drive(work(cast(AsyncConnection, _InlineConnection(sync_conn))))

    async def probe_write(self, timeout: float = PING_TIMEOUT) -> bool:
        """True when a write transaction that really writes commits within `timeout` seconds.

        SQLite rewrites the header's user_version with its own value (a page written and
        committed); PostgreSQL assigns a transaction id, which a server that cannot write refuses.
        """
        try:
            await answer_within(self._probe_write(), timeout)
        except Exception:  # a timeout, a refused connection, a driver error: writes do not work either way
            return False
        return True

    async def _probe_write(self) -> None:
        async with self.write() as conn:
            if self.is_sqlite:
                version = int(await conn.scalar(text("PRAGMA user_version")) or 0)
                await conn.exec_driver_sql(f"PRAGMA user_version={version}")
            else:
                await conn.execute(_PG_WRITE_PROBE)

    async def ping(self, timeout: float = PING_TIMEOUT) -> bool:
        """True when the database answers a trivial query within `timeout` seconds (a retry after a dropped link)."""
        try:
            return await answer_within(self._ping(), timeout)
        except Exception:  # a timeout, a refused connection, a driver error: unreachable either way
            return False

    async def _ping(self) -> bool:
        for attempt in (1, 2):
            try:
                async with self._pinger.connect() as conn:
                    await conn.execute(_SELECT_1)
                return True
            except DBAPIError as error:
                if attempt == 2 or not error.connection_invalidated:
                    return False
        return False

    async def close(self) -> None:
        """Release every pooled connection."""
        await self.reader.dispose()
        await self._pinger.dispose()
        if self.inline_reader is not None:
            self.inline_reader.dispose()
        if self.batch_writer is not None:
            self.batch_writer.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()
