"""A site's power management: the facts from the database and the controller's stored picture of its last run.

Groups, connectors and draw come from the database (scoped by the caller's team); limits and
reasons from the picture the controller stored after its last run of the site
(store/power_pictures.py), so any process serves it. A group's draw is its meter's currents when
it has a meter of the team, else the sum over the connectors of its subtree (R-103, R-104).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.ids import ChargerId, Ref, SiteId, TeamId
from voltline.domain.power import PHASES, Usage, sum_usages
from voltline.domain.site_view import SiteView
from voltline.services.meters import get_team_meter, meter_totals_of
from voltline.services.runtime import Runtime
from voltline.store import chargers, groups, sites
from voltline.store import smart as smart_store
from voltline.store.power_pictures import get_power_picture
from voltline.store.power_usage import read_usages
from voltline.store.smart import capacity_tenths

_ALL = 1_000_000  # rows: a site's groups and connectors are read whole
_TENTH = Decimal("0.1")

Draw = tuple[str, str, str]  # amperes per phase L1, L2, L3 (one decimal)


def decimal_amps(amps: Decimal | None) -> str:
    """Amperes with one decimal, half-up; none is "0.0"."""
    return f"{(amps or Decimal(0)).quantize(_TENTH, rounding=ROUND_HALF_UP) + 0:f}"


@dataclass
class Facts:
    """What the database says about the site (everything but the controller's picture)."""

    groups: list[RowMapping]
    connectors: list[RowMapping]
    view: SiteView | None
    draws: dict[int, Draw] = field(default_factory=dict)
    capacities: dict[int, int] = field(default_factory=dict)  # tenths of an ampere, as the controller takes them


@dataclass
class PowerManagement:
    """The site, its facts, and the controller's picture of its last run (None before the first)."""

    site: RowMapping
    facts: Facts
    picture: dict[str, Any] | None


def placement(facts: Facts) -> dict[int, int]:
    """The group each connector counts in, as the controller places it (R-80).

    Without a view the site has no groups (`load_site_view`), so there is no tree to place in.
    """
    return {} if facts.view is None else {c.id: c.group_id for c in facts.view.connectors}


def subtree_draws(facts_groups: Sequence[RowMapping], usage_of: Mapping[int, list[Usage]]) -> dict[int, Draw]:
    """R-104: each group's draw summed over the connectors of its subtree (usage_of: group -> usages)."""
    children: dict[int, list[int]] = {}
    for row in facts_groups:
        if row["group_id"] is not None:
            children.setdefault(row["group_id"], []).append(row["id"])

    def collect(group_id: int) -> list[Usage]:
        found = list(usage_of.get(group_id, []))
        for child in children.get(group_id, []):
            found.extend(collect(child))
        return found

    draws = {}
    for row in facts_groups:
        totals = sum_usages(collect(row["id"]))
        draws[row["id"]] = phase_amps(totals.currents)
    return draws


def phase_amps(currents: Mapping[str, Decimal]) -> Draw:
    """Per-phase currents as one-decimal strings."""
    l1, l2, l3 = (decimal_amps(currents[p]) for p in PHASES)
    return l1, l2, l3


async def _metered_draws(conn: AsyncConnection, team_id: TeamId, group_rows: Sequence[RowMapping]) -> dict[int, Draw]:
    """R-103: the draw of each group with a meter of the team, from that meter."""
    found: dict[int, Draw] = {}
    for row in group_rows:
        meter = await get_team_meter(conn, team_id, row["meter_id"])
        if meter is not None:
            found[row["id"]] = phase_amps((await meter_totals_of(conn, team_id, [meter]))[meter["id"]].currents)
    return found


async def read_facts(runtime: Runtime, conn: AsyncConnection, team_id: TeamId, site_id: SiteId) -> Facts:
    """The site's groups, connectors, controller view and draw per group."""
    group_rows = await groups.list_groups(conn, site_id, offset=0, limit=_ALL)
    rows = await chargers.list_site_connectors(conn, site_id, offset=0, limit=_ALL)
    rows = [row for row in rows if row["connector_id"] > 0]
    loaded = await smart_store.load_site_view(conn, site_id, draws=False)  # the draw comes from read_usages
    capacities = {row["id"]: capacity_tenths(row) for row in group_rows}
    facts = Facts(group_rows, rows, None if loaded is None else loaded[1], {}, capacities)
    wanted = [(ChargerId(r["charger_id"]), r["connector_id"], r["phases"]) for r in rows]
    usages = await read_usages(conn, wanted, runtime.clock.now())
    where = placement(facts)
    usage_of: dict[int, list[Usage]] = {}
    for row, usage in zip(rows, usages, strict=True):
        usage_of.setdefault(where.get(row["id"], 0), []).append(usage)
    facts.draws = subtree_draws(group_rows, usage_of) | await _metered_draws(conn, team_id, group_rows)
    return facts


async def get_power_management(runtime: Runtime, team_id: TeamId, site_ref: Ref) -> PowerManagement:
    """The site of the team, its facts, and the picture the controller stored after its last run."""
    async with runtime.db.scan() as conn:  # a big site reads many rows: keep it off the event loop
        site = await sites.get_site(conn, team_id, site_ref)
        facts = await read_facts(runtime, conn, team_id, SiteId(site["id"]))
        picture = await get_power_picture(conn, site["id"])
    return PowerManagement(site, facts, picture)
