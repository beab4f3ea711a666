"""The control lease in the store: its epoch row, and PostgreSQL's advisory lock on a session of its own.

DESIGN "Cluster": exactly one process holds the control lease. On PostgreSQL the lease is a
session-level advisory lock (`pg_try_advisory_lock`) held by a connection opened for it alone,
outside every pool. That session sets `idle_session_timeout`, and its holder sends a query more
often than that: a holder that dies or stalls (SIGSTOP) goes quiet, PostgreSQL ends its session,
and the lock is free for the next process. Advisory locks are per database, so two installations
(or two tests) on one server never share a lease.

The epoch row (`control_leases`) is raised by every new holder right after it took the lease,
so epochs strictly rise across takeovers; the commands of a holder carry it (services/lease.py).
"""

from __future__ import annotations

import contextlib
import functools
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from voltline.store.schema import control_leases

CONTROL = "control"
# pg_advisory_lock key of the control lease: b"voltctl\0" as a signed 64-bit integer.
CONTROL_LOCK_KEY = int.from_bytes(b"voltctl\0", "big", signed=True)
_TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")
_SELECT_1 = text("SELECT 1")
# A write of an earlier term holds `hold_epoch`'s share lock until it ends. Its process may be
# stalled in the middle of a statement (SIGSTOP during an executemany), where no idle timeout of
# PostgreSQL's applies; the new holder ends those sessions rather than wait for them (their
# transactions roll back: a term's writes land before the next term begins, or never).
_END_EARLIER_TERMS = text(
    "SELECT pg_terminate_backend(l.pid) FROM pg_locks l "
    "JOIN pg_database d ON d.oid = l.database AND d.datname = current_database() "
    "WHERE l.locktype = 'relation' AND l.relation = 'control_leases'::regclass "
    "AND l.mode = 'RowShareLock' AND l.pid <> pg_backend_pid()"
)


@functools.cache
def _raise(dialect: str) -> Any:
    """`INSERT .. ON CONFLICT (name) DO UPDATE SET epoch = epoch + 1 .. RETURNING epoch`, once per dialect."""
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(control_leases)
    changed = {
        "epoch": control_leases.c.epoch + 1,
        "holder": statement.excluded.holder,
        "acquired_at": statement.excluded.acquired_at,
    }
    return statement.on_conflict_do_update(index_elements=["name"], set_=changed).returning(control_leases.c.epoch)


async def raise_epoch(conn: AsyncConnection, holder: str, now: datetime, name: str = CONTROL) -> int:
    """The lease's next epoch (1 the first time), recorded with its holder."""
    values = {"name": name, "epoch": 1, "holder": holder, "acquired_at": now}
    return int((await conn.execute(_raise(conn.dialect.name), values)).scalar_one())


async def get_epoch(conn: AsyncConnection, name: str = CONTROL) -> int:
    """The lease's epoch now (0 before anyone held it)."""
    epoch = await conn.scalar(select(control_leases.c.epoch).where(control_leases.c.name == name))
    return int(epoch or 0)


async def hold_epoch(conn: AsyncConnection, idle_seconds: float, name: str = CONTROL) -> int:
    """PostgreSQL, in a write transaction: the lease's epoch now, share-locked until the commit.

    A new holder's `raise_epoch` waits for the lock (after ending the sessions that hold it), so
    a transaction that found its own epoch here commits before the next term begins, or never;
    `idle_in_transaction_session_timeout` (for this transaction only) ends it sooner when its
    process stalls between statements.
    """
    await conn.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {max(1, int(idle_seconds * 1000))}"))
    query = select(control_leases.c.epoch).where(control_leases.c.name == name).with_for_update(read=True)
    return int(await conn.scalar(query) or 0)


class LeaseSession:
    """A PostgreSQL session of its own that may hold the control lease's advisory lock."""

    def __init__(self, url: str, idle_timeout_seconds: float) -> None:
        self._engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._idle_ms = max(1, int(idle_timeout_seconds * 1000))
        self._conn: AsyncConnection | None = None

    async def try_lock(self) -> bool:
        """Open the session if needed and try the lock once; True when this session holds it now."""
        if self._conn is None:
            conn = await self._engine.connect()
            try:
                await conn.execute(text(f"SET idle_session_timeout = {self._idle_ms}"))
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return bool(await self._conn.scalar(_TRY_LOCK, {"key": CONTROL_LOCK_KEY}))

    async def raise_epoch(self, holder: str, now: datetime) -> int:
        """End the earlier terms' unfinished writes, then raise the epoch (this session holds the lock)."""
        assert self._conn is not None, "take the lock first"
        # Without the right to end another role's sessions (pg_signal_backend), wait for them instead.
        with contextlib.suppress(DBAPIError):
            await self._conn.execute(_END_EARLIER_TERMS)
        return await raise_epoch(self._conn, holder, now)

    async def keep_alive(self) -> None:
        """One query: the session is not idle, and it still exists (an error when PostgreSQL ended it)."""
        assert self._conn is not None, "take the lock first"
        await self._conn.execute(_SELECT_1)

    async def close(self) -> None:
        """End the session (PostgreSQL releases the lock with it); the next `try_lock` opens another."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # a session PostgreSQL ended already: nothing to give back
                await conn.invalidate()

    async def dispose(self) -> None:
        """End the session and let go of the engine."""
        await self.close()
        await self._engine.dispose()
