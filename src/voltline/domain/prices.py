"""Day-ahead price slots (spec/smart-charging.md R-62: slots in UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class PriceSlot:
    """One delivery period `[start, end)` (naive UTC) and its price in EUR/MWh."""

    start: datetime
    end: datetime
    price: Decimal
