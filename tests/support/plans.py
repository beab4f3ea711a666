"""Rows of a site view for the pure smart-charging planner: connectors, transactions, gates."""

from __future__ import annotations

from datetime import datetime, timedelta

from voltline.domain.site_view import TX, ChargerRow, ConnectorRow, GroupRow, ProfileRow, SiteView
from voltline.smart.gates import Gate

OPEN = Gate(True, "disabled", None)
T0 = datetime(2025, 3, 31, 12)


def view(
    *connectors: ConnectorRow, offline: tuple[int, ...] = (), profiles: tuple[ProfileRow, ...] = (), capacity: int = 320
) -> SiteView:
    """A one-group site with one charger per connector (charger id = connector id)."""
    chargers = {
        c.charger_id: ChargerRow(c.charger_id, f"CP{c.charger_id}", c.charger_id not in offline) for c in connectors
    }
    return SiteView(
        site_id=1,
        groups=(GroupRow(1, None, capacity),),
        chargers=chargers,
        connectors=connectors,
        profiles={(p.charger_id, p.connector, p.purpose): p for p in profiles},
    )


def charging(n: int, *, minutes: int = 0) -> ConnectorRow:
    """Connector `n` (of charger `n`) with transaction `100 + n`, started `minutes` after T0."""
    return ConnectorRow(n, n, 1, 1, "Charging", transaction_id=100 + n, arrival=T0 + timedelta(minutes=minutes))


def tx(n: int, limit: int, status: str = "accepted", reserved: int | None = None) -> ProfileRow:
    """A TxProfile row of connector `n`'s transaction."""
    return ProfileRow(n, 1, TX, limit, status, reserved, 100 + n)
