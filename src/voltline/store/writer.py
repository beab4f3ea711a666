"""The batched writer: meter frames and the OCPP message log, flushed together every ≤ 50 ms.

(Interface fixed here; the implementation is being written against it.)

Receive-path code never writes a row per frame: it enqueues and moves on. The queue is
bounded; when it is full `put_meter_frame` waits (backpressure) instead of dropping. A flush
writes the raw frames (one row per MeterValues frame, samples packed), the derived rows
(latest value per connector/measurand/phase, the transaction's energy register) and the
log entries in one transaction (executemany). `stop()` flushes what is queued.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Sample:
    """One sampled value as stored: the raw fields plus the normalised value (spec §8.2)."""

    value: str
    measurand: str = "Energy.Active.Import.Register"
    phase: str | None = None
    unit: str | None = None
    context: str | None = None
    location: str | None = None
    format: str | None = None
    normalised: str | None = None  # decimal text in the base unit (Wh, W, A, V, ...) or None when unparseable


@dataclass(frozen=True, slots=True)
class MeterFrame:
    """One MeterValue element (a timestamp and its samples) of a charger's connector."""

    charger_id: int
    team_id: int | None
    site_id: int | None
    connector_number: int
    transaction_id: int | None
    timestamp: datetime
    samples: tuple[Sample, ...]
    received_at: datetime


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One OCPP frame for the message log."""

    charger_id: int
    direction: str  # "in" (charger -> Voltline) or "out"
    message_type: int  # 2 CALL, 3 CALLRESULT, 4 CALLERROR
    message_id: str
    action: str | None
    payload: str  # the JSON text as sent/received (or a placeholder when the payload is not kept)
    created_at: datetime = field(default_factory=datetime.now)
