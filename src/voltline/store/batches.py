"""A batch of the meter writer (store/writer.py): its rows (`shape`) and its SQL, compiled once per database.

SQLite runs each statement as executemany; PostgreSQL sends one array per column and unnests
them on the server, one round trip per statement. Meter frames go in with ON CONFLICT DO
NOTHING on their key (DESIGN "Durability": a replayed frame is stored once); `shape` leaves an
identical frame out of its batch, and `fresh_frame_keys` tells which rows of a batch were new
when some were stored already.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Select, Table, and_, bindparam, cast, func, insert, literal_column, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.frames import MeterFrame
from voltline.domain.meter_values import naive_utc, register_reading
from voltline.store import rollups
from voltline.store.engine import Database
from voltline.store.meter_values import (
    FRAME_COLUMNS,
    LATEST_COLUMNS,
    REGISTER_KEYS,
    frame_insert,
    latest_rows,
    latest_upsert,
    register_rows,
    register_update,
    rows_of_frame,
)
from voltline.store.ocpp_log import LOG_COLUMNS
from voltline.store.rollups import REGISTER_COLUMNS, ROLLUP_COLUMNS, Connector, Key
from voltline.store.schema import energy_registers, energy_rollups, meter_frames, meter_latest, ocpp_messages

FrameKey = tuple[int, int, datetime, int]  # charger_id, connector_number, naive UTC timestamp, digest
# PostgreSQL: rows this transaction inserted carry its transaction id in the system column xmin.
_INSERTED_HERE = text("meter_frames.xmin = pg_current_xact_id()::xid")
_LAST_ROWID = text("SELECT last_insert_rowid()")


@dataclass(frozen=True, slots=True)
class Shaped:
    """A batch's frames made rows: each distinct frame once (with its key), and the derived rows."""

    frames: list[MeterFrame]
    keys: list[FrameKey]
    rows: list[Row]
    latest: list[Row]
    registers: list[Row]
    readings: dict[Key, Connector]


def shape(frames: Sequence[MeterFrame], stamp: Stamp) -> Shaped:
    """The rows of the frames (pure; may run in a thread). An identical frame later in the batch is left out."""
    seen: set[FrameKey] = set()
    kept: list[MeterFrame] = []
    keys: list[FrameKey] = []
    rows: list[Row] = []
    digests: list[list[int]] = []
    for frame in frames:
        own = rows_of_frame(frame, stamp)
        key = (frame.charger_id, frame.connector_number, naive_utc(frame.timestamp), own[0][-1])
        if key in seen:
            continue
        seen.add(key)
        kept.append(frame)
        keys.append(key)
        rows.extend(own)
        digests.append([row[-1] for row in own])
    values = [register_reading(frame.samples) for frame in kept]  # once per frame, for both uses
    readings = rollups.batch_readings(kept, values, digests)
    return Shaped(kept, keys, rows, latest_rows(kept, stamp), register_rows(kept, values), readings)


Row = tuple[Any, ...]
Stamp = Callable[[datetime], Any]


def sqlite_time(moment: datetime) -> str:
    """A moment as SQLAlchemy's SQLite DateTime stores it (text that sorts by time)."""
    return naive_utc(moment).isoformat(" ", "microseconds")


class RowsStatement:
    """A Core statement compiled once for the dialect and run as executemany on the driver (SQLite).

    The hot path skips SQLAlchemy's per-row parameter processing (measured: most of a flush's
    time on the event loop). Rows are tuples in `keys` order, holding values the driver takes.
    """

    def __init__(self, statement: Any, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql: str = compiled.string
        order = [list(keys).index(name) for name in compiled.positiontup or ()]
        self.order = None if order == list(range(len(keys))) else order

    def arrange(self, row: Row) -> Row:
        """The row's values in the order of the statement's parameters."""
        return row if self.order is None else tuple(row[i] for i in self.order)

    async def run(self, conn: AsyncConnection, rows: Sequence[Row]) -> int:
        """Execute once per row (nothing for no rows); the number of rows changed."""
        if not rows:
            return 0
        result = await conn.exec_driver_sql(self.sql, rows if self.order is None else [self.arrange(r) for r in rows])
        return int(result.rowcount)


class ColumnsStatement(RowsStatement):
    """PostgreSQL: the rows sent as one array per column and unnested by the server, one round trip."""

    async def run(self, conn: AsyncConnection, rows: Sequence[Row]) -> int:
        """Execute once with every row; the number of rows changed."""
        if not rows:
            return 0
        columns = self.arrange(tuple(list(column) for column in zip(*rows, strict=True)))
        return int((await conn.exec_driver_sql(self.sql, columns)).rowcount)


def unnested(table: Table, names: Sequence[str]) -> Select[Any]:
    """`SELECT * FROM unnest($1::type[], ...)`: one array parameter per column, named after it."""
    arrays = [cast(bindparam(name), ARRAY(table.c[name].type)) for name in names]
    return select(literal_column("*")).select_from(func.unnest(*arrays))


def statements(db: Database) -> tuple[RowsStatement, ...]:
    """Insert frames, upsert latest values, move registers, insert log rows: for this database."""
    dialect = db.writer.dialect
    if db.is_sqlite:
        tid, wh = (bindparam(name, type_=BigInteger) for name in REGISTER_KEYS)
        return (
            RowsStatement(frame_insert(sqlite.insert(meter_frames)), dialect, FRAME_COLUMNS),
            RowsStatement(latest_upsert(sqlite.insert(meter_latest)), dialect, LATEST_COLUMNS),
            RowsStatement(register_update(tid, wh), dialect, REGISTER_KEYS),
            RowsStatement(insert(ocpp_messages), dialect, LOG_COLUMNS),
        )
    arrays = [cast(bindparam(name), ARRAY(BigInteger)) for name in REGISTER_KEYS]
    source = func.unnest(*arrays).table_valued(*REGISTER_KEYS).render_derived()
    latest = postgresql.insert(meter_latest).from_select(LATEST_COLUMNS, unnested(meter_latest, LATEST_COLUMNS))
    return (
        ColumnsStatement(
            frame_insert(
                postgresql.insert(meter_frames).from_select(FRAME_COLUMNS, unnested(meter_frames, FRAME_COLUMNS))
            ),
            dialect,
            FRAME_COLUMNS,
        ),
        ColumnsStatement(latest_upsert(latest), dialect, LATEST_COLUMNS),
        ColumnsStatement(register_update(source.c.tid, source.c.wh), dialect, REGISTER_KEYS),
        ColumnsStatement(
            insert(ocpp_messages).from_select(LOG_COLUMNS, unnested(ocpp_messages, LOG_COLUMNS)), dialect, LOG_COLUMNS
        ),
    )


def rollup_statements(db: Database) -> tuple[RowsStatement, RowsStatement]:
    """Add Wh to energy rollups and replace energy registers (store/rollups.py): for this database."""
    dialect = db.writer.dialect
    if db.is_sqlite:
        return (
            RowsStatement(rollups.rollup_upsert(sqlite.insert(energy_rollups)), dialect, ROLLUP_COLUMNS),
            RowsStatement(rollups.register_upsert(sqlite.insert(energy_registers)), dialect, REGISTER_COLUMNS),
        )
    add = postgresql.insert(energy_rollups).from_select(ROLLUP_COLUMNS, unnested(energy_rollups, ROLLUP_COLUMNS))
    put = postgresql.insert(energy_registers).from_select(
        REGISTER_COLUMNS, unnested(energy_registers, REGISTER_COLUMNS)
    )
    return (
        ColumnsStatement(rollups.rollup_upsert(add), dialect, ROLLUP_COLUMNS),
        ColumnsStatement(rollups.register_upsert(put), dialect, REGISTER_COLUMNS),
    )


async def fresh_frame_keys(
    conn: AsyncConnection, db: Database, inserted: int, keys: Sequence[FrameKey]
) -> set[FrameKey]:
    """Which of `keys` this transaction just inserted (`inserted` rows); the others were stored already.

    SQLite has one writer and numbers new rows on from the highest id, so the rows inserted are
    the last `inserted` ids; PostgreSQL marks them with this transaction's id (xmin).
    """
    if inserted == 0:
        return set()
    f = meter_frames.c
    query = select(f.charger_id, f.connector_number, f.timestamp, f.digest)
    if db.is_sqlite:
        last = int(await conn.scalar(_LAST_ROWID) or 0)
        query = query.where(f.id > last - inserted, f.id <= last)
    else:
        moments = [key[2] for key in keys]
        chargers = sorted({key[0] for key in keys})
        scope = and_(f.charger_id.in_(chargers), f.timestamp >= min(moments), f.timestamp <= max(moments))
        query = query.where(scope, _INSERTED_HERE)
    found = {(int(c), int(n), naive_utc(at), int(d)) for c, n, at, d in await conn.execute(query) if d is not None}
    return found & set(keys)
