"""The stored meter data of a fleet, and its derived rows rebuilt from the raw frames alone.

The rebuild calls the same pure functions the batched writer uses (domain/meter_values.py and
domain/energy.py), fed from the raw `meter_frames` rows in id order instead of from batches:
R-91/R-92 pick each frame's register reading (`frame_reading`, `register_reading`), R-95..R-97
walk a connector's readings in time order (`walk`, with R-97's limit from the connector's
rating, `max_power_w`), and R-98 spreads each interval over 15-minute buckets (`rollup`). A
transaction's register is the highest reading among its frames (the writer's register only
moves forward). What the writer kept incrementally, batch by batch and across replays and
restarts, must equal this.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select

from voltline.domain.energy import frame_reading, max_power_w, rollup, walk
from voltline.domain.meter_values import Sample, register_reading, register_wh, unpack_samples
from voltline.store.engine import Database
from voltline.store.schema import connectors, energy_registers, energy_rollups, id_tags, meter_frames, transactions

Key = tuple[int, int]  # (charger_id, connector_number)
FrameKey = tuple[int, int, datetime]  # (charger_id, connector_number, timestamp)


@dataclass(frozen=True, slots=True)
class StoredFrame:
    """One raw `meter_frames` row with its samples unpacked."""

    id: int
    charger_id: int
    connector_number: int
    transaction_id: int | None
    timestamp: datetime
    samples: list[Sample]

    @property
    def key(self) -> FrameKey:
        """Where and when: unique per frame a charger sent (the test's chargers never repeat a timestamp)."""
        return (self.charger_id, self.connector_number, self.timestamp)


@dataclass(frozen=True)
class Snapshot:
    """Everything the crash test compares, read from the database after the last kill."""

    frames: list[StoredFrame]
    transactions: list[dict[str, Any]]
    rollups: list[dict[str, Any]]
    registers: list[dict[str, Any]]
    connectors: list[dict[str, Any]]
    id_tags: set[str]


async def read_frames(url: str, charger_ids: Collection[int], since: datetime | None = None) -> list[StoredFrame]:
    """The fleet's raw frames in id order (those stamped `since` or later, when given)."""
    query = select(meter_frames).where(meter_frames.c.charger_id.in_(list(charger_ids)))
    if since is not None:
        query = query.where(meter_frames.c.timestamp >= since)
    rows = await _rows(url, query.order_by(meter_frames.c.id))
    return [_frame(row) for row in rows]


def _frame(row: Mapping[str, Any]) -> StoredFrame:
    return StoredFrame(
        id=int(row["id"]),
        charger_id=int(row["charger_id"]),
        connector_number=int(row["connector_number"]),
        transaction_id=None if row["transaction_id"] is None else int(row["transaction_id"]),
        timestamp=row["timestamp"],
        samples=unpack_samples(row["samples"]),
    )


async def read_snapshot(url: str, charger_ids: Collection[int], team_id: int) -> Snapshot:
    """The fleet's frames, transactions, rollups, registers, connectors and the team's id tags."""
    ids = list(charger_ids)

    async def of(table: Table) -> list[dict[str, Any]]:
        return await _rows(url, select(table).where(table.c.charger_id.in_(ids)))

    tags = await _rows(url, select(id_tags.c.id_tag).where(id_tags.c.team_id == team_id))
    return Snapshot(
        frames=await read_frames(url, ids),
        transactions=await of(transactions),
        rollups=await of(energy_rollups),
        registers=await of(energy_registers),
        connectors=await of(connectors),
        id_tags={row["id_tag"] for row in tags},
    )


async def _rows(url: str, query: Any) -> list[dict[str, Any]]:
    db = Database(url)
    try:
        async with db.scan() as conn:
            return [dict(row) for row in (await conn.execute(query)).mappings().all()]
    finally:
        await db.close()


def max_powers(connector_rows: Iterable[Mapping[str, Any]]) -> dict[Key, int]:
    """R-97's limit per connector, from its rating (as the writer reads it)."""
    return {
        (int(c["charger_id"]), int(c["connector_id"])): max_power_w(c["max_amperage"], c["max_voltage"], c["phases"])
        for c in connector_rows
    }


def _readings_by_connector(frames: Iterable[StoredFrame]) -> dict[Key, list[Any]]:
    found: dict[Key, list[Any]] = defaultdict(list)
    for frame in frames:
        if frame.connector_number < 1:
            continue  # connector 0 is the charger's own meter (store/rollups.py)
        reading = frame_reading(frame.samples, frame.timestamp, frame.id)
        if reading is not None:
            found[(frame.charger_id, frame.connector_number)].append(reading)
    return found


def rebuilt_rollups(frames: Iterable[StoredFrame], powers: Mapping[Key, int]) -> dict[Key, dict[datetime, int]]:
    """R-96..R-98 over each connector's whole history: Wh per 15-minute bucket (buckets of 0 Wh left out)."""
    rebuilt: dict[Key, dict[datetime, int]] = {}
    for key, readings in _readings_by_connector(frames).items():
        buckets = rollup(walk(readings, None, powers.get(key, max_power_w(None))).deltas)
        rebuilt[key] = {bucket: wh for bucket, wh in buckets.items() if wh}
    return rebuilt


def rebuilt_registers(
    frames: Iterable[StoredFrame], powers: Mapping[Key, int]
) -> dict[Key, tuple[datetime, int, datetime]]:
    """Each connector's last good reading (time, Wh) and its newest reading time: `energy_registers`."""
    rebuilt: dict[Key, tuple[datetime, int, datetime]] = {}
    for key, readings in _readings_by_connector(frames).items():
        baseline = walk(readings, None, powers.get(key, max_power_w(None))).baseline
        assert baseline is not None
        rebuilt[key] = (baseline.at, baseline.wh, max(r.at for r in readings))
    return rebuilt


def rebuilt_transaction_registers(frames: Iterable[StoredFrame]) -> dict[int, int]:
    """The highest register reading (R-92, whole Wh) among each transaction's frames."""
    highest: dict[int, int] = {}
    for frame in frames:
        value = register_reading(frame.samples)
        if frame.transaction_id is None or value is None:
            continue
        highest[frame.transaction_id] = max(register_wh(value), highest.get(frame.transaction_id, -1))
    return highest


def stored_rollups(rows: Iterable[Mapping[str, Any]]) -> dict[Key, dict[datetime, int]]:
    """`energy_rollups` per connector (buckets of 0 Wh left out: a replay may leave one)."""
    found: dict[Key, dict[datetime, int]] = defaultdict(dict)
    for row in rows:
        if row["wh"]:
            found[(int(row["charger_id"]), int(row["connector_number"]))][row["bucket_start"]] = int(row["wh"])
    return dict(found)


def stored_registers(rows: Iterable[Mapping[str, Any]]) -> dict[Key, tuple[datetime, int, datetime]]:
    """`energy_registers` per connector."""
    return {
        (int(r["charger_id"]), int(r["connector_number"])): (r["good_at"], int(r["good_wh"]), r["seen_at"])
        for r in rows
    }
