"""Meter readings: taken from a charger through the batched writer, and read back for the API.

DESIGN "Durability": `take` queues a message's frames on the writer and returns once their group
commit did (a lone frame waits for one commit; under load batches grow). Past the answer's hold
deadline the wait raises StoreUnavailableError and the front-end closes the socket instead of
answering; the frames stay queued, and a replay of them is stored once. Nothing on this path
opens a transaction or hops to a thread per message: the writer does both, once per batch.

Readings are stamped with the charger's team and site as its connection knows them now (a
charger moved while connected follows along). R-94: a reading stamped more than 5 minutes ahead
of our clock is kept at its arrival time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import RowMapping

from voltline.bus.events import SMART_EVENTS, encode_event
from voltline.domain.frames import MeterFrame
from voltline.domain.ids import ChargerId, Ref, SiteId, TeamId
from voltline.domain.meter_values import FutureTimestampError, Sample, frame_timestamp
from voltline.services.runtime import Runtime
from voltline.store import chargers, datapoints
from voltline.store.datapoints import SampleFilter
from voltline.store.meter_values import StoredSample

__all__ = [
    "ConnectedCharger",
    "MeterValues",
    "Reading",
    "StoredSample",
    "announce",
    "list_charger_meter_values",
    "take",
]

log = logging.getLogger("voltline.meter")

# One MeterValue element: the charger's timestamp (naive UTC) and its samples.
Reading = tuple[datetime, tuple[Sample, ...]]


class ConnectedCharger(Protocol):
    """A charger as its connection knows it: identity, current placement, the hold deadline of the answer."""

    identity: str
    charger_id: ChargerId
    team_id: TeamId | None
    site_id: SiteId | None
    hold_until: float  # clock.monotonic() by which the message is answered or the socket closed

    def place(self, row: RowMapping | None) -> None:
        """Take the charger's current team and site from a charger row (None: unchanged)."""


async def announce(runtime: Runtime, charger: ConnectedCharger, kind: str, **fields: Any) -> None:
    """Publish a smart-charging event for the charger (after the commit; nobody is awaited)."""
    event = encode_event(kind, charger_id=int(charger.charger_id), site_id=charger.site_id, **fields)
    await runtime.bus.publish(SMART_EVENTS, event)


async def take(
    runtime: Runtime,
    charger: ConnectedCharger,
    connector: int,
    transaction_id: int | None,
    readings: Iterable[Reading],
    *,
    first: bool = False,
) -> None:
    """Store the readings through the writer and return after their group commit (StoreUnavailableError past the hold).

    `first`: the transaction's first meter value on this connection, announced after the commit
    (spec/smart-charging.md §7.4: it wakes the control loop, the phases are known).
    """
    received = runtime.clock.now()
    frames = [
        MeterFrame(
            charger_id=charger.charger_id,
            team_id=charger.team_id,
            site_id=charger.site_id,
            connector_number=connector,
            transaction_id=transaction_id,
            timestamp=_frame_time(charger, moment, received),
            samples=samples,
            received_at=received,
        )
        for moment, samples in readings
    ]
    if frames:
        await (await runtime.writer.put_meter_frames(frames, charger.hold_until))
    if first and transaction_id is not None:
        await announce(runtime, charger, "meter", connector=connector, transaction_id=transaction_id)


def _frame_time(charger: ConnectedCharger, moment: datetime, received: datetime) -> datetime:
    try:
        return frame_timestamp(moment, received)
    except FutureTimestampError:
        # R-94 refuses the charger's clock, not its readings: they are kept at their arrival time.
        log.info("%s: meter value stamped %s is ahead of our clock; stored at arrival", charger.identity, moment)
        return received


@dataclass(frozen=True, slots=True)
class MeterValues:
    """A charger's samples as stored, and its connectors' row ids by OCPP number."""

    samples: list[StoredSample]
    connector_refs: dict[int, int]


async def list_charger_meter_values(
    runtime: Runtime,
    team_id: TeamId,
    charger: Ref,
    *,
    date_from: datetime,
    date_to: datetime,
    limit: int,
    descending: bool,
    wanted: Mapping[str, Any],
) -> MeterValues:
    """Up to `limit` samples of the team's charger in [date_from, date_to] with the sample fields in `wanted`."""
    async with runtime.db.scan() as conn:  # up to 10,000 samples: keep it off the event loop
        charger_id = ChargerId((await chargers.get_charger(conn, team_id, charger))["id"])
        found = await datapoints.list_charger_samples(
            conn,
            team_id,
            charger_id,
            date_from=date_from,
            date_to=date_to,
            wanted=SampleFilter(**{name: wanted.get(name) for name in datapoints.SAMPLE_FIELDS}),
            limit=limit,
            descending=descending,
        )
        refs = await datapoints.connector_refs(conn, charger_id)
    return MeterValues(found, refs)
