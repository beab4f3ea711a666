"""The 15-minute energy rollups the batched writer keeps (spec/smart-charging.md R-95..R-98).

Per connector (>= 1; connector 0 is the charger's own meter and would count twice) the writer
keeps the last good register reading (`energy_registers`) and adds each new interval's Wh
into `energy_rollups`, in the same transaction as the raw frames. Two paths:

* in order (the usual case): every reading of the batch is newer than the newest reading seen
  for the connector, so the deltas start from the stored baseline and are added;
* out of order (an offline queue, a replay, a duplicate timestamp): the connector's readings
  are read back from the raw frames, from one day before the newest reading preceding the
  earliest new one, and walked twice, without and with the batch; the difference per bucket
  is added. Readings before the affected point walk the same way both times, so the rollups
  end up exactly as if every reading had arrived in time order (given that the walk agrees
  on the good readings within that day of look-back, which only a day of outliers breaks).

R-97's limit is the connector's rating at write time (max_amperage x volts x phases), else
`domain.energy.DEFAULT_MAX_POWER_W`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Insert, Integer, bindparam, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline import codec
from voltline.domain.energy import (
    BUCKET,
    Chain,
    Reading,
    bucket_start,
    frame_reading,
    max_power_w,
    reading_of,
    rollup,
    spread_from,
    walk,
)
from voltline.domain.frames import MeterFrame
from voltline.domain.meter_values import naive_utc, unpack_samples
from voltline.store.engine import Database
from voltline.store.schema import connectors, energy_registers, energy_rollups, meter_frames

LOOKBACK = timedelta(days=1)
PREVIOUS_FRAMES = 50
ROLLUP_COLUMNS = tuple(column.name for column in energy_rollups.columns)
REGISTER_COLUMNS = tuple(column.name for column in energy_registers.columns)

Key = tuple[int, int]  # (charger_id, connector_number)
Stamp = tuple[int | None, int | None]  # (team_id, site_id) written on the frame
Row = tuple[Any, ...]


@dataclass(slots=True)
class Connector:
    """The readings of one connector: those stored (out-of-order path) and those of the batch."""

    batch: list[Reading] = field(default_factory=list)
    stored: list[Reading] = field(default_factory=list)
    stamps: dict[datetime, Stamp] = field(default_factory=dict)
    baseline: Reading | None = None
    seen_at: datetime | None = None
    max_power: int = 0
    replay: bool = False
    own: set[tuple[datetime, int]] = field(default_factory=set)  # (timestamp, digest) of the batch's stored rows


def batch_readings(
    frames: Sequence[MeterFrame], values: Sequence[Decimal | None], digests: Sequence[Sequence[int]]
) -> dict[Key, Connector]:
    """The register reading of every frame of a connector >= 1, per connector, in arrival order.

    `values` are the frames' `register_reading`s (R-91/R-92), computed once per frame by the writer;
    `digests` the digests of each frame's stored rows, which the out-of-order path leaves out of
    the stored readings (the batch's rows are inserted before they are read back).
    """
    found: dict[Key, Connector] = {}
    for order, (frame, value, digest) in enumerate(zip(frames, values, digests, strict=True)):
        if frame.connector_number < 1:
            continue
        at = naive_utc(frame.timestamp)
        reading = reading_of(value, frame.samples, at, order + 2**40)  # after every stored frame id
        if reading is None:
            continue
        connector = found.setdefault((frame.charger_id, frame.connector_number), Connector())
        connector.batch.append(reading)
        connector.stamps[at] = (frame.team_id, frame.site_id)
        connector.own.update((at, d) for d in digest)
    return found


def _moment(value: Any) -> datetime:
    """A DateTime column read on the driver: SQLite gives the stored text, PostgreSQL a datetime."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


class ChargerQuery:
    """A SELECT over a set of charger ids, compiled once for its database and run on the driver.

    The ids travel as one parameter (a JSON array read by `json_each` on SQLite, an array for
    `= ANY` on PostgreSQL), so every batch runs the same statement and SQLAlchemy's compile and
    row processing stay off the writer's hot path.
    """

    def __init__(self, db: Database, columns: Sequence[Any], *, lock: bool = False) -> None:
        charger_id = columns[0]
        self.json = db.is_sqlite
        if db.is_sqlite:
            chosen = charger_id.in_(select(literal_column("value")).select_from(func.json_each(bindparam("ids"))))
        else:
            chosen = charger_id == func.any(bindparam("ids", type_=ARRAY(Integer)))
        statement = select(*columns).where(chosen)
        self.sql: str = (statement.with_for_update() if lock else statement).compile(dialect=db.writer.dialect).string

    async def rows(self, conn: AsyncConnection, charger_ids: Sequence[int]) -> Sequence[Any]:
        """The rows of these chargers, as the driver returns them."""
        ids: Any = codec.encode_json(list(charger_ids)).decode() if self.json else list(charger_ids)
        return (await conn.exec_driver_sql(self.sql, (ids,))).all()


@dataclass(frozen=True, slots=True)
class BaselineQueries:
    """The two reads of `load`, compiled for one database."""

    registers: ChargerQuery
    ratings: ChargerQuery

    @classmethod
    def of(cls, db: Database) -> BaselineQueries:
        """Registers are read FOR UPDATE on PostgreSQL (SQLite has one writer)."""
        r, c = energy_registers.c, connectors.c
        registers = (r.charger_id, r.connector_number, r.good_at, r.good_wh, r.seen_at)
        return cls(
            ChargerQuery(db, registers, lock=not db.is_sqlite),
            ChargerQuery(db, (c.charger_id, c.connector_id, c.max_amperage, c.max_voltage, c.phases)),
        )


async def load(conn: AsyncConnection, found: dict[Key, Connector], queries: BaselineQueries) -> None:
    """Fill in each connector's baseline, rating, and (when the batch is out of order) its stored readings."""
    ids = sorted({charger_id for charger_id, _ in found})
    for charger_id, number, good_at, good_wh, seen_at in await queries.registers.rows(conn, ids):
        held = found.get((charger_id, number))
        if held is not None:
            held.baseline, held.seen_at = Reading(_moment(good_at), int(good_wh)), _moment(seen_at)
    for charger_id, number, amps, volts, phases in await queries.ratings.rows(conn, ids):
        held = found.get((charger_id, number))
        if held is not None:
            held.max_power = max_power_w(amps, volts, phases)
    for key, held in found.items():
        held.max_power = held.max_power or max_power_w(None)
        if held.seen_at is not None and min(r.at for r in held.batch) <= held.seen_at:
            held.replay = True
            await _load_stored(conn, key, held)


def _frame_readings(rows: Iterable[Any], own: Collection[tuple[datetime, int]] = ()) -> Iterable[tuple[Reading, Stamp]]:
    for row in rows:
        if (row.timestamp, row.digest) in own:
            continue
        reading = frame_reading(unpack_samples(row.samples), row.timestamp, row.id)
        if reading is not None:
            yield reading, (row.team_id, row.site_id)


async def _load_stored(conn: AsyncConnection, key: Key, held: Connector) -> None:
    """The connector's stored readings from a day before the newest one preceding the batch's earliest."""
    earliest = min(r.at for r in held.batch)
    scope = (meter_frames.c.charger_id == key[0], meter_frames.c.connector_number == key[1])
    f = meter_frames.c
    columns = (f.id, f.timestamp, f.samples, f.team_id, f.site_id, f.digest)
    before = select(*columns).where(*scope, meter_frames.c.timestamp < earliest)
    before = before.order_by(meter_frames.c.timestamp.desc(), meter_frames.c.id.desc()).limit(PREVIOUS_FRAMES)
    previous = next(iter(_frame_readings(await conn.execute(before))), None)
    since = (
        max(previous[0].at if previous else earliest, datetime.min + LOOKBACK) - LOOKBACK
    )  # year 1 is a timestamp too
    window = select(*columns).where(*scope, meter_frames.c.timestamp >= since).order_by(meter_frames.c.id)
    for reading, stamp in _frame_readings(await conn.execute(window), held.own):
        held.stored.append(reading)
        held.stamps.setdefault(reading.at, stamp)


@dataclass(slots=True)
class Changes:
    """Rows for the rollup upsert (Wh to add) and the register upsert."""

    rollups: list[Row] = field(default_factory=list)
    registers: list[Row] = field(default_factory=list)


def _bucket_stamp(held: Connector, chain: Chain) -> dict[datetime, Stamp]:
    stamps: dict[datetime, Stamp] = {}
    for delta in chain.deltas:
        stamp = held.stamps.get(delta.end, (None, None))
        start = bucket_start(spread_from(delta))
        while start < delta.end:
            stamps[start] = stamp
            start += BUCKET
    return stamps


def changes(found: dict[Key, Connector], stamp: Callable[[datetime], Any]) -> Changes:
    """The Wh to add per (connector, bucket) and each connector's new baseline (pure; may run in a thread)."""
    out = Changes()
    for key, held in found.items():
        if held.replay:
            new = walk([*held.stored, *held.batch], None, held.max_power)
            added = rollup(new.deltas)
            for bucket, wh in rollup(walk(held.stored, None, held.max_power).deltas).items():
                added[bucket] = added.get(bucket, 0) - wh
        else:
            new = walk(held.batch, held.baseline, held.max_power)
            added = rollup(new.deltas)
        stamps = _bucket_stamp(held, new)
        for bucket, wh in sorted(added.items()):
            if wh:
                team_id, site_id = stamps.get(bucket, (None, None))
                out.rollups.append((*key, stamp(bucket), team_id, site_id, wh))
        baseline = new.baseline or held.baseline
        if baseline is not None:
            seen = max([r.at for r in held.batch] + ([held.seen_at] if held.seen_at else []))
            out.registers.append((*key, stamp(baseline.at), baseline.wh, stamp(seen)))
    return out


def rollup_upsert(statement: Insert) -> Insert:
    """ON CONFLICT add the Wh to the bucket (the frame's team and site are stamped again)."""
    assert isinstance(statement, sqlite.Insert | postgresql.Insert)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=list(energy_rollups.primary_key.columns),
        set_={"wh": energy_rollups.c.wh + excluded.wh, "team_id": excluded.team_id, "site_id": excluded.site_id},
    )


def register_upsert(statement: Insert) -> Insert:
    """ON CONFLICT replace the connector's baseline and newest reading time."""
    assert isinstance(statement, sqlite.Insert | postgresql.Insert)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=list(energy_registers.primary_key.columns),
        set_={name: excluded[name] for name in ("good_at", "good_wh", "seen_at")},
    )
