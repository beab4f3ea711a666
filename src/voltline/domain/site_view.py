"""A site as one smart-charging control run sees it: groups, chargers, connectors and our profiles (spec §9).

Loaded by the store, planned on by smart/scheduler.py (pure); how sure each profile row is is
described there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

TX = "TxProfile"
DEFAULT = "TxDefaultProfile"
DEFAULT_MAX = 320  # tenths: a connector of unknown rating is taken as 32 A
ACTIVE_EXCLUDED = frozenset({"Faulted", "Unavailable", "Finishing"})
ProfileKey = tuple[int, int, str]  # (charger id, connector number, purpose)


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A load-balancing group: capacity in tenths (peak shaving applied) and its meter reading."""

    id: int
    parent_id: int | None
    capacity: int
    meter: tuple[int, int, int] | None = None
    meter_stale: bool = False  # a meter is attached but its reading is missing or too old


@dataclass(frozen=True, slots=True)
class ChargerRow:
    """A charger of the site: reachability and what it told us it can do (R-17, R-43)."""

    id: int
    identity: str
    online: bool
    units: tuple[str, ...] = ("A", "W")
    max_stack_level: int | None = None
    pause_unsupported: bool = False
    profiles_unsupported: bool = False
    booted: bool = True  # its BootNotification was Accepted in the current connection

    @property
    def reachable(self) -> bool:
        """Connected and booted: calls may be sent to it (OCPP 1.6 §4.2, DESIGN "Load management")."""
        return self.online and self.booted

    @property
    def steerable(self) -> bool:
        """Reachable and not known to lack smart charging (a CALLERROR NotImplemented to SetChargingProfile)."""
        return self.reachable and not self.profiles_unsupported


@dataclass(frozen=True, slots=True)
class ConnectorRow:
    """A connector with its group, rating, open transaction and latest per-phase draw."""

    id: int
    charger_id: int
    number: int
    group_id: int
    status: str | None = None
    max: int = DEFAULT_MAX
    phases: int = 3
    state: str = "none"
    transaction_id: int | None = None
    arrival: datetime | None = None
    drawn: tuple[int, int, int] | None = None
    drawn_at: datetime | None = None  # when the newest of the `drawn` readings was taken
    cap: int | None = None  # a charge-limit cap in tenths (DESIGN "v3 API"; 0 = paused), None = none


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """A profile we sent to a charger and what became of it (module docstring)."""

    charger_id: int
    connector: int
    purpose: str
    limit: int
    status: str
    reserved: int | None = None
    transaction_id: int | None = None


@dataclass(frozen=True, slots=True)
class SiteView:
    """Everything one control run of a site needs, as loaded from the store."""

    site_id: int
    groups: tuple[GroupRow, ...]
    chargers: Mapping[int, ChargerRow]
    connectors: tuple[ConnectorRow, ...]
    profiles: Mapping[ProfileKey, ProfileRow] = field(default_factory=dict)
    balanced: bool = True  # the site's `load_management`: its groups' capacity is shared (§7)
    managed: bool = True  # balanced or gated: the controller enforces the connectors' caps (smart/charge_limits.py)
