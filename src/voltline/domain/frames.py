"""What the OCPP front-end hands the meter writer: meter frames and message-log entries (DESIGN "Durability")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from voltline.domain.meter_values import Sample

__all__ = ["LogEntry", "MeterFrame"]


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


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
    created_at: datetime = field(default_factory=_utcnow)
    team_id: int | None = None  # the charger's team when the frame was logged; None: shown to no team
