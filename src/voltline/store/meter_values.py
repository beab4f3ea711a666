"""Stored meter values: frames (one row per MeterValues element), expanded into samples, and latest values.

A sample's id is `frame_id * 1000 + position` (DESIGN: data model), so it is stable without a
row of its own. `expand_frame` turns a stored frame into its samples; the metervalues reader
(store/datapoints.py) pages frames by (timestamp, id), scoped by the team stamped on each frame
when it was written, so a charger moved to another team does not carry its history.
The rows and statements the batched writer (store/writer.py) uses for these tables live here too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Insert, Update, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.frames import MeterFrame
from voltline.domain.ids import ChargerId
from voltline.domain.meter_values import (
    DEFAULT_LOCATION,
    SAMPLES_PER_FRAME,
    SIGNED_DATA,
    Sample,
    context_priority,
    naive_utc,
    pack_samples,
    register_wh,
    sample_id,
    unpack_samples,
)
from voltline.store.schema import FRAME_KEY, meter_frames, meter_latest, transactions

# Frames read per query while collecting samples; a frame holds about 8 samples.
FRAMES_PER_QUERY = 500
INT64_MAX = 2**63 - 1
FRAME_COLUMNS = tuple(column.name for column in meter_frames.columns if column.name != "id")
LATEST_COLUMNS = tuple(column.name for column in meter_latest.columns)
REGISTER_KEYS = ("tid", "wh")

Row = tuple[Any, ...]
Stamp = Callable[[datetime], Any]


@dataclass(frozen=True, slots=True)
class StoredSample:
    """One sample of a stored frame, with the frame's charger, connector, transaction and time."""

    id: int
    frame_id: int
    team_id: int | None
    site_id: int | None
    charger_id: int
    connector_number: int
    transaction_id: int | None
    timestamp: datetime
    received_at: datetime
    sample: Sample


def expand_frame(row: RowMapping, *, descending: bool = False) -> list[StoredSample]:
    """The samples of one `meter_frames` row, in position order (reversed when descending)."""
    samples = [
        StoredSample(
            id=sample_id(row["id"], position),
            frame_id=row["id"],
            team_id=row["team_id"],
            site_id=row["site_id"],
            charger_id=row["charger_id"],
            connector_number=row["connector_number"],
            transaction_id=row["transaction_id"],
            timestamp=row["timestamp"],
            received_at=row["received_at"],
            sample=sample,
        )
        for position, sample in enumerate(unpack_samples(row["samples"]))
    ]
    return samples[::-1] if descending else samples


async def list_latest(
    conn: AsyncConnection, charger_id: ChargerId, connector_number: int | None = None
) -> list[RowMapping]:
    """The latest value per connector, measurand and phase of a charger (phase '' when none)."""
    query = select(meter_latest).where(meter_latest.c.charger_id == charger_id)
    if connector_number is not None:
        query = query.where(meter_latest.c.connector_number == connector_number)
    order = (meter_latest.c.connector_number, meter_latest.c.measurand, meter_latest.c.phase)
    return list((await conn.execute(query.order_by(*order))).mappings().all())


# -- the batched writer's rows and statements ------------------------------------------------


def frame_digest(packed: str, start: int = 0) -> int:
    """A signed 64-bit hash of a row's packed samples (and where they start in the frame), for `meter_frames.digest`.

    With the charger, connector and timestamp it identifies a frame (DESIGN "Durability": a
    replay is stored once); two different sample lists at one moment collide with odds 2**-64.
    """
    data = (packed if not start else f"{start}:{packed}").encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def rows_of_frame(f: MeterFrame, stamp: Stamp) -> list[Row]:
    """A frame's `meter_frames` rows (FRAME_COLUMNS): one, or several for over 1000 samples (ids stay unique)."""
    at, received = stamp(f.timestamp), stamp(f.received_at)
    rows = []
    for start in range(0, max(len(f.samples), 1), SAMPLES_PER_FRAME):
        packed = pack_samples(f.samples[start : start + SAMPLES_PER_FRAME])
        digest = frame_digest(packed, start)
        rows.append(
            (f.team_id, f.site_id, f.charger_id, f.connector_number, f.transaction_id, at, packed, received, digest)
        )
    return rows


def frame_insert(statement: Insert) -> Insert:
    """ON CONFLICT DO NOTHING on the frame key: a frame identical to a stored one is stored once."""
    assert isinstance(statement, sqlite.Insert | postgresql.Insert)
    return statement.on_conflict_do_nothing(index_elements=[meter_frames.c[name] for name in FRAME_KEY])


def latest_rows(frames: Sequence[MeterFrame], stamp: Stamp) -> list[Row]:
    """`meter_latest` rows (LATEST_COLUMNS): per connector/measurand/phase the batch's newest numeric sample (R-95)."""
    best: dict[tuple[int, int, str, str], tuple[datetime, Sample, MeterFrame]] = {}
    for frame in frames:
        at = naive_utc(frame.timestamp)
        for sample in frame.samples:
            if sample.normalised is None or sample.format == SIGNED_DATA:
                continue
            key = (frame.charger_id, frame.connector_number, sample.measurand[:48], (sample.phase or "")[:8])
            held = best.get(key)
            if held is None or at > held[0] or (at == held[0] and _rank(sample) >= _rank(held[1])):
                best[key] = (at, sample, frame)
    stamps: dict[int, Any] = {}
    return [
        (*key, s.value[:64], None if s.unit is None else s.unit[:16], s.normalised, _stamp_once(stamps, frame, stamp))
        for key, (_, s, frame) in best.items()
    ]


def _rank(sample: Sample) -> tuple[int, bool]:
    return context_priority(sample.context), sample.location in (None, DEFAULT_LOCATION)


def _stamp_once(stamps: dict[int, Any], frame: MeterFrame, stamp: Stamp) -> Any:
    found = stamps.get(id(frame))
    if found is None:
        found = stamps[id(frame)] = stamp(frame.timestamp)
    return found


def register_rows(frames: Sequence[MeterFrame], values: Sequence[Decimal | None]) -> list[Row]:
    """`(transaction id, Wh)` rows: the highest EAIR per transaction in the batch (`values`: R-92 per frame)."""
    highest: dict[int, int] = {}
    for frame, reading in zip(frames, values, strict=True):
        if frame.transaction_id is None or reading is None:
            continue
        wh = register_wh(reading)
        if 0 <= wh <= INT64_MAX and wh > highest.get(frame.transaction_id, -1):
            highest[frame.transaction_id] = wh
    return list(highest.items())


def latest_upsert(statement: Insert) -> Insert:
    """ON CONFLICT DO UPDATE for an insert into `meter_latest`: a later-or-equal timestamp replaces (R-95)."""
    assert isinstance(statement, sqlite.Insert | postgresql.Insert)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=list(meter_latest.primary_key.columns),
        set_={name: excluded[name] for name in ("value", "unit", "normalised", "timestamp")},
        where=meter_latest.c.timestamp <= excluded.timestamp,
    )


def register_update(tid: Any, wh: Any) -> Update:
    """Raise a transaction's register to `wh`; it only moves forward, never below an earlier batch's."""
    register = transactions.c.register_wh
    return (
        update(transactions)
        .values(register_wh=wh)
        .where(transactions.c.id == tid, or_(register.is_(None), register < wh))
    )


async def first_frame_id_since(conn: AsyncConnection, moment: datetime) -> int | None:
    """The id of the oldest-arrived frame stamped at or after `moment` (None: every frame is older)."""
    f = meter_frames.c
    query = select(f.id).where(f.timestamp >= moment).order_by(f.id).limit(1)
    return await conn.scalar(query)


async def delete_frames_before(conn: AsyncConnection, moment: datetime, first_id: int, below_id: int) -> int:
    """Delete the frames with ids in `[first_id, below_id)` stamped before `moment`; how many went."""
    f = meter_frames.c
    statement = delete(meter_frames).where(f.id >= first_id, f.id < below_id, f.timestamp < moment)
    return int((await conn.execute(statement)).rowcount or 0)


async def frame_id_range(conn: AsyncConnection) -> tuple[int, int] | None:
    """The smallest and the largest frame id (None: no frames)."""
    low, high = (await conn.execute(select(func.min(meter_frames.c.id), func.max(meter_frames.c.id)))).one()
    return None if low is None else (int(low), int(high))
