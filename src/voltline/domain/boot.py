"""What a charger says about itself when it boots (OCPP 1.6 §4.2 BootNotification), whatever its OCPP version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BootStatus = Literal["Accepted", "Pending", "Rejected"]


@dataclass(frozen=True, slots=True)
class BootReport:
    """The facts of one BootNotification, and the message as received (kept for support)."""

    vendor: str
    model: str
    serial_number: str | None
    firmware_version: str | None
    payload: str
    ocpp_version: str
