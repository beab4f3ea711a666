"""What the smart-charging controller reads and keeps: a site's view, installed profiles, capabilities."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import bindparam, case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline import codec
from voltline.domain.groups import find_root
from voltline.domain.ids import GroupId
from voltline.domain.power import CURRENT, PHASES
from voltline.domain.site_view import DEFAULT_MAX, ChargerRow, ConnectorRow, GroupRow, ProfileKey, ProfileRow, SiteView
from voltline.store import charge_limits as store_charge_limits
from voltline.store import meters as store_meters
from voltline.store.schema import (
    charger_capabilities,
    chargers,
    charging_profiles,
    connectors,
    groups,
    meter_latest,
    sites,
    transactions,
)


def tenths(amps: Decimal) -> int:
    """Amperes as whole tenths (half-up)."""
    return int((amps * 10).quantize(Decimal(1), rounding=ROUND_HALF_UP))


async def get_charger_site_id(conn: AsyncConnection, charger_id: int) -> int | None:
    """The site a charger belongs to, or None."""
    site_id = await conn.scalar(select(chargers.c.site_id).where(chargers.c.id == charger_id))
    return None if site_id is None else int(site_id)


async def get_left_charger(conn: AsyncConnection, charger_id: int) -> tuple[str, list[int]] | None:
    """(identity, profile ids we installed) of a charger on no site that still has profiles on record."""
    query = select(chargers.c.identity, chargers.c.site_id).where(chargers.c.id == charger_id)
    row = (await conn.execute(query)).first()
    if row is None or row.site_id is not None:
        return None
    ids = select(charging_profiles.c.profile_id).where(charging_profiles.c.charger_id == charger_id)
    profile_ids = sorted({int(value) for value in (await conn.execute(ids)).scalars()})
    return (str(row.identity), profile_ids) if profile_ids else None


async def delete_charger_profiles(conn: AsyncConnection, charger_id: int) -> None:
    """Forget every profile of a charger (cleared from it after it left its site)."""
    await conn.execute(delete(charging_profiles).where(charging_profiles.c.charger_id == charger_id))


async def list_controlled_site_ids(conn: AsyncConnection) -> list[int]:
    """Sites with at least one charger (the controller looks at each once at start)."""
    query = select(chargers.c.site_id).where(chargers.c.site_id.is_not(None)).distinct()
    return sorted(int(row.site_id) for row in await conn.execute(query))


# The columns a control run reads, and no more: at 1,000 chargers every row's other columns (and
# their type conversion) were most of the several 7-13 ms loop turns of loading a view.
CHARGER_COLUMNS = select(
    chargers.c.id, chargers.c.identity, chargers.c.connection_status, chargers.c.boot_accepted, chargers.c.group_id
)
CAPABILITY_COLUMNS = select(
    charger_capabilities.c.charger_id,
    charger_capabilities.c.rate_units,
    charger_capabilities.c.max_stack_level,
    charger_capabilities.c.pause_unsupported,
    charger_capabilities.c.profiles_unsupported,
)
CONNECTOR_COLUMNS = select(
    connectors.c.id,
    connectors.c.charger_id,
    connectors.c.connector_id,
    connectors.c.group_id,
    connectors.c.status,
    connectors.c.max_amperage,
    connectors.c.phases,
    connectors.c.smart_charging_state,
)
PROFILE_COLUMNS = select(
    charging_profiles.c.charger_id,
    charging_profiles.c.connector_number,
    charging_profiles.c.purpose,
    charging_profiles.c.limit_tenths,
    charging_profiles.c.status,
    charging_profiles.c.reserved_tenths,
    charging_profiles.c.transaction_id,
)


# View rows made per loop turn: a 1,000-connector site's rows at once held the loop ~7 ms (bench/smart.py).
SLICE = 250


async def load_site_view(
    conn: AsyncConnection, site_id: int, *, meter_fresh_after: datetime | None = None, draws: bool = True
) -> tuple[RowMapping, SiteView] | None:
    """The site row and its `SiteView`, or None for a missing or deleted site.

    A group meter with no reading, or (given `meter_fresh_after`) only an older one, is stale.
    Each connector's newest `Current.Import` (`drawn`) is read when `draws` (idle reclaim, R-84)
    or when a group has a meter (its non-EV load, §7.2).
    """
    site = (await conn.execute(select(sites).where(sites.c.id == site_id))).mappings().first()
    if site is None or site["deleted_at"] is not None:
        return None
    group_rows = list((await conn.execute(select(groups).where(groups.c.site_id == site_id))).mappings())
    if not group_rows:
        return None
    charger_rows = list((await conn.execute(CHARGER_COLUMNS.where(chargers.c.site_id == site_id))).mappings())
    charger_ids = [int(row["id"]) for row in charger_rows]
    metered = any(row["meter_id"] is not None for row in group_rows)
    managed = bool(site["load_management"]) or site["smart_charging"] != "disabled"  # smart/charge_limits.py
    found = await _connectors(conn, charger_rows, group_rows, draws or metered)
    view = SiteView(
        site_id=site_id,
        groups=tuple(await _groups(conn, group_rows, meter_fresh_after)),
        chargers=await _chargers(conn, charger_rows),
        connectors=tuple(await _capped(conn, found) if managed else found),
        profiles=await _profiles(conn, charger_ids),
        balanced=bool(site["load_management"]),
        managed=managed,
    )
    return site, view


async def _capped(conn: AsyncConnection, found: list[ConnectorRow]) -> list[ConnectorRow]:
    """The connectors with their charge-limit caps (DESIGN "v3 API")."""
    caps = await store_charge_limits.caps_of(conn, [c.id for c in found])
    return [dataclasses.replace(c, cap=caps[c.id]) if c.id in caps else c for c in found]


async def _slices(rows: Sequence[RowMapping]) -> AsyncIterator[Sequence[RowMapping]]:
    """`rows` in slices of `SLICE`, with a loop turn given up between them."""
    for start in range(0, len(rows), SLICE):
        if start:
            await asyncio.sleep(0)
        yield rows[start : start + SLICE]


def capacity_tenths(row: RowMapping) -> int:
    """A group's capacity as the controller takes it: total_amps, capped by peak shaving (tenths, §7.2)."""
    capacity = int(row["total_amps"]) * 10
    if row["peak_shaving_enabled"] and row["peak_shaving_threshold"] > 0:
        capacity = min(capacity, int(row["peak_shaving_threshold"]) * 10)
    return capacity


async def _groups(conn: AsyncConnection, rows: list[RowMapping], fresh_after: datetime | None) -> list[GroupRow]:
    readings = await store_meters.list_readings(conn, [row["meter_id"] for row in rows if row["meter_id"] is not None])
    found = []
    for row in rows:
        capacity = capacity_tenths(row)
        reading = readings.get(row["meter_id"]) if row["meter_id"] is not None else None
        fresh = reading is not None and (fresh_after is None or reading.at >= fresh_after)
        meter = _phase_tuple(reading.currents) if reading is not None and fresh else None
        stale = row["meter_id"] is not None and not fresh
        found.append(GroupRow(int(row["id"]), row["group_id"], capacity, meter, meter_stale=stale))
    return found


def _phase_tuple(currents: Mapping[str, Decimal]) -> tuple[int, int, int]:
    l1, l2, l3 = (tenths(currents.get(phase, Decimal(0))) for phase in PHASES)
    return l1, l2, l3


async def _chargers(conn: AsyncConnection, rows: list[RowMapping]) -> dict[int, ChargerRow]:
    ids = [int(row["id"]) for row in rows]
    caps = {}
    if ids:
        query = CAPABILITY_COLUMNS.where(charger_capabilities.c.charger_id.in_(ids))
        caps = {row["charger_id"]: row for row in (await conn.execute(query)).mappings()}
    found = {}
    async for some in _slices(rows):
        for row in some:
            cap = caps.get(row["id"])
            found[int(row["id"])] = ChargerRow(
                id=int(row["id"]),
                identity=str(row["identity"]),
                online=row["connection_status"] == "online",
                booted=bool(row["boot_accepted"]),
                units=_units(None if cap is None else cap["rate_units"]),
                max_stack_level=None if cap is None else cap["max_stack_level"],
                pause_unsupported=bool(cap is not None and cap["pause_unsupported"]),
                profiles_unsupported=bool(cap is not None and cap["profiles_unsupported"]),
            )
    return found


def _units(text: str | None) -> tuple[str, ...]:
    """R-17 ChargingScheduleAllowedChargingRateUnit ("Current", "Power" or both) as profile units."""
    if not text:
        return ("A", "W")
    words = {word.strip().lower() for word in text.split(",")}
    units = tuple(unit for unit, word in (("A", "current"), ("W", "power")) if word in words)
    return units or ("A", "W")


async def _connectors(
    conn: AsyncConnection, charger_rows: list[RowMapping], group_rows: list[RowMapping], draws: bool
) -> list[ConnectorRow]:
    ids = [int(row["id"]) for row in charger_rows]
    if not ids:
        return []
    group_ids = {int(row["id"]) for row in group_rows}
    root = find_root({GroupId(int(row["id"])): row["group_id"] for row in group_rows}) or 0
    charger_group = {int(row["id"]): row["group_id"] for row in charger_rows}
    query = CONNECTOR_COLUMNS.where(connectors.c.charger_id.in_(ids), connectors.c.connector_id > 0)
    rows = list((await conn.execute(query.order_by(connectors.c.id))).mappings())
    open_tx = await _open_transactions(conn, ids)
    drawn = await latest_currents(conn, ids) if draws else {}
    found = []
    async for some in _slices(rows):
        for row in some:
            key = (int(row["charger_id"]), int(row["connector_id"]))
            group = row["group_id"] if row["group_id"] is not None else charger_group.get(key[0])
            tx = open_tx.get(key)
            phases = 1 if row["phases"] == 1 else 3
            currents, drawn_at = phase_draw(drawn.get(key), phases)
            found.append(
                ConnectorRow(
                    id=int(row["id"]),
                    charger_id=key[0],
                    number=key[1],
                    group_id=int(group) if group in group_ids else root,
                    status=row["status"],
                    max=DEFAULT_MAX if not row["max_amperage"] else int(row["max_amperage"]) * 10,
                    phases=phases,
                    state=row["smart_charging_state"],
                    transaction_id=None if tx is None else int(tx["id"]),
                    arrival=None if tx is None else tx["started_at"] or tx["created_at"],
                    drawn=currents,
                    drawn_at=drawn_at,
                )
            )
    return found


async def _open_transactions(conn: AsyncConnection, charger_ids: list[int]) -> dict[tuple[int, int], RowMapping]:
    query = (
        select(
            transactions.c.id,
            transactions.c.charger_id,
            transactions.c.connector_number,
            transactions.c.started_at,
            transactions.c.created_at,
        )
        .where(transactions.c.charger_id.in_(charger_ids), transactions.c.status == "active")
        .order_by(transactions.c.id)
    )
    return {(row["charger_id"], row["connector_number"]): row for row in (await conn.execute(query)).mappings()}


def _latest_currents_query() -> Any:
    """One row per (charger, connector): its newest `Current.Import` per phase, phase-less, and their time.

    Built once (the statement is the same for every run, `ids` expands): at 1,000 connectors the
    per-phase rows, one object each, held the loop ~25 ms per run (bench/smart.py --meter-interval).
    """
    columns = meter_latest.c

    def on(phase: str) -> Any:
        return func.max(case((columns.phase == phase, columns.normalised)))

    return (
        select(
            columns.charger_id,
            columns.connector_number,
            *(on(phase) for phase in (*PHASES, "")),
            func.max(columns.timestamp),
        )
        .where(columns.charger_id.in_(bindparam("ids", expanding=True)), columns.measurand == CURRENT)
        .group_by(columns.charger_id, columns.connector_number)
    )


LATEST_CURRENTS = _latest_currents_query()


async def latest_currents(conn: AsyncConnection, charger_ids: list[int]) -> dict[tuple[int, int], tuple[Any, ...]]:
    """The newest `Current.Import` per (charger, connector): the group meters' EV share and R-84's draw."""
    rows = await conn.execute(LATEST_CURRENTS, {"ids": charger_ids})
    return {(row[0], row[1]): tuple(row[2:]) for row in rows}


def phase_draw(latest: tuple[Any, ...] | None, phases: int) -> tuple[tuple[int, int, int] | None, datetime | None]:
    """Per-phase draw in tenths and the time of the reading (R-92: a phase-less value counts on each used phase)."""
    if latest is None:
        return None, None
    *values, at = latest
    currents = [_amps(value) for value in values]
    per_phase, phaseless = currents[:3], currents[3]
    if any(value is not None for value in per_phase):
        l1, l2, l3 = (0 if value is None else value for value in per_phase)
        return (l1, l2, l3), at
    if phaseless is None:
        return None, None
    return (phaseless, phaseless if phases == 3 else 0, phaseless if phases == 3 else 0), at


def _amps(text: str | None) -> int | None:
    """A stored normalised current as tenths; None when absent or not a finite number."""
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return tenths(value) if value.is_finite() else None


async def _profiles(conn: AsyncConnection, charger_ids: list[int]) -> dict[ProfileKey, ProfileRow]:
    if not charger_ids:
        return {}
    query = PROFILE_COLUMNS.where(charging_profiles.c.charger_id.in_(charger_ids))
    found = {}
    async for some in _slices(list((await conn.execute(query)).mappings())):
        for row in some:
            found[row["charger_id"], row["connector_number"], row["purpose"]] = ProfileRow(
                charger_id=row["charger_id"],
                connector=row["connector_number"],
                purpose=row["purpose"],
                limit=row["limit_tenths"],
                status=row["status"],
                reserved=row["reserved_tenths"],
                transaction_id=row["transaction_id"],
            )
    return found


PROFILE_KEY = ("charger_id", "connector_number", "purpose")
# Parameter sets per statement: the driver's row preparation runs on the event loop, so a bounded
# batch keeps each slice of it short (bench/smart.py: 1,000 rows at once stalled the loop ~30 ms).
ROWS_PER_STATEMENT = 200
# What a new row takes for a column its values leave out (and `sent_at`: the time of the call).
PROFILE_DEFAULTS = {"stack_level": 0, "profile_id": 0, "unit": "A"}


async def save_profiles(
    conn: AsyncConnection, items: Sequence[tuple[ProfileRow, Mapping[str, Any]]], now: datetime
) -> None:
    """Insert or update the rows of (charger, connector, purpose), in order; `values` adds unit, ids and times.

    A column left out of `values` keeps its stored value on update; a new row takes the defaults
    (stack level 0, profile id 0, unit A, sent `now`). Rows with the same columns go
    in one `INSERT .. ON CONFLICT DO UPDATE` with many parameter sets: a run of 1,000 chargers
    writes its rows in a few statements, not 1,000 round trips.
    """
    batches: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row, values in items:
        columns = {
            "charger_id": row.charger_id,
            "connector_number": row.connector,
            "purpose": row.purpose,
            "limit_tenths": row.limit,
            "reserved_tenths": row.reserved,
            "status": row.status,
            "transaction_id": row.transaction_id,
            **values,
        }
        names = tuple(columns)
        if "sent_at" not in columns:
            columns["default_sent_at"] = now  # a new row's sent_at (`_profile_upsert`)
        batches.setdefault(names, []).append(columns)
    for names, rows in batches.items():
        upsert = _profile_upsert(conn.dialect.name, names)
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            await conn.execute(upsert, rows[start : start + ROWS_PER_STATEMENT])


@functools.cache
def _profile_upsert(dialect: str, names: tuple[str, ...]) -> Any:
    """The upsert of `save_profiles` for rows with these columns, built once per dialect and column set.

    Building it per call made `excluded`, an alias of the table with a copy of every column, and
    threw it away: ~150 objects in reference cycles per statement, left for the garbage collector
    (bench/smart.py: young collections of 8-12 ms in the middle of a 1,000-charger run).
    """
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(charging_profiles)
    updated = {name: statement.excluded[name] for name in names if name not in PROFILE_KEY}
    inserted = {name: value for name, value in PROFILE_DEFAULTS.items() if name not in names}
    if "sent_at" not in names:
        inserted["sent_at"] = bindparam("default_sent_at", type_=charging_profiles.c.sent_at.type)
    upsert = statement.values(inserted) if inserted else statement
    return upsert.on_conflict_do_update(index_elements=list(PROFILE_KEY), set_=updated)


def _key_clause(charger_id: int, connector: int, purpose: str) -> tuple[Any, ...]:
    return (
        charging_profiles.c.charger_id == charger_id,
        charging_profiles.c.connector_number == connector,
        charging_profiles.c.purpose == purpose,
    )


async def delete_profile(conn: AsyncConnection, charger_id: int, connector: int, purpose: str) -> None:
    """Forget a profile (cleared on the charger, or its transaction ended)."""
    await conn.execute(delete(charging_profiles).where(*_key_clause(charger_id, connector, purpose)))


async def mark_profiles_stale(conn: AsyncConnection, charger_id: int) -> None:
    """R-89: after a reconnect or boot nothing installed is sure, so every profile is sent again.

    Accepted limits stay reserved; a refused profile keeps what it reserved and is tried again,
    as is a charger that had answered NotImplemented to SetChargingProfile: it may have been
    updated, and a reconnect is when the controller reads its configuration anew (R-17).
    """
    table = charging_profiles
    accepted = (table.c.charger_id == charger_id, table.c.status == "accepted")
    await conn.execute(update(table).where(*accepted).values(status="stale", reserved_tenths=table.c.limit_tenths))
    refused = (table.c.charger_id == charger_id, table.c.status == "rejected")
    await conn.execute(update(table).where(*refused).values(status="stale"))
    caps = charger_capabilities
    flagged = (caps.c.charger_id == charger_id, caps.c.profiles_unsupported.is_(True))
    await conn.execute(update(caps).where(*flagged).values(profiles_unsupported=False))


async def save_capabilities(conn: AsyncConnection, charger_id: int, values: Mapping[str, Any]) -> None:
    """Insert or update what a charger told us it supports."""
    table = charger_capabilities
    changed = await conn.execute(update(table).where(table.c.charger_id == charger_id).values(dict(values)))
    if changed.rowcount == 0:
        defaults = {"charger_id": charger_id, "pause_unsupported": False, "profiles_unsupported": False}
        await conn.execute(table.insert().values({**defaults, **values}))


def configuration_values(keys: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The capability columns for a GetConfiguration answer (R-17)."""
    config = {str(item.get("key")): item.get("value") for item in keys if isinstance(item, dict)}
    level = config.get("ChargeProfileMaxStackLevel")
    return {
        "rate_units": config.get("ChargingScheduleAllowedChargingRateUnit"),
        "max_stack_level": int(level) if isinstance(level, str) and level.strip().isdigit() else None,
        "configuration": codec.encode_json(config).decode(),
        "read_at": now,
    }


async def set_connector_states(conn: AsyncConnection, states: Mapping[int, str], now: datetime) -> None:
    """Store each connector's `smart_charging_state` (one statement per state, many parameter sets)."""
    by_state: dict[str, list[dict[str, Any]]] = {}
    for connector_id, state in states.items():
        by_state.setdefault(state, []).append({"connector": connector_id})
    for state, rows in by_state.items():
        query = (
            update(connectors)
            .where(connectors.c.id == bindparam("connector"), connectors.c.smart_charging_state != state)
            .values(smart_charging_state=state, updated_at=now)
        )
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            await conn.execute(query, rows[start : start + ROWS_PER_STATEMENT])


def stale_connector_ids(view: SiteView, states: Mapping[int, str]) -> dict[int, str]:
    """The states that differ from what the view holds."""
    held = {c.id: c.state for c in view.connectors}
    return {cid: state for cid, state in states.items() if held.get(cid) != state}
