"""Timestamp formats of the API."""

from __future__ import annotations

from datetime import UTC, datetime


def format_timestamp(moment: datetime | None) -> str | None:
    """Laravel's date serialisation: `2025-03-31T12:18:52.000000Z` (UTC, microseconds, Z)."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_telemetry_timestamp(moment: datetime) -> str:
    """Live telemetry style: milliseconds and Z (`2025-10-28T16:26:14.628Z`)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
