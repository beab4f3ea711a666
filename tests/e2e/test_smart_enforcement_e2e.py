"""How the smart-charging enforcer carries out a site's profiles, end to end (spec/smart-charging.md §7, §9).

A live server on a stepped clock and simulated chargers over real sockets, as in
tests/e2e/test_smart_e2e.py (whose helpers these tests use). Each test watches one promise of
the enforcer and the controller (services/smart_control/) from the charger's side of the socket: what the store
says is in force when a profile arrives, a charger without smart charging left alone, a
detached charger released, and a send window that slow chargers cannot hold shut.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from tests.clocked import ClockedServer
from tests.conftest import LiveServer
from tests.support.smart_e2e import (
    SMART_SETTINGS,
    Site,
    SmartCharger,
    advance,
    capability_rows,
    charger_id_of,
    finish_scenario,
    make_charger,
    offered_are,
    profile_rows,
    running,
    until,
    until_state,
)
from voltline.services.smart_control import enforcer
from voltline.simulator.connection import CallError, Link
from voltline.store.schema import chargers, charging_profiles, connectors

VOLTS = 230


def root_group(site: Site) -> str:
    """The id of the site's root group."""
    response = site.api.get(f"{site.path}/groups")
    assert response.status_code == 200, response.text
    return str(response.json()["data"][0]["id"])


async def set_capacity(site: Site, amps: int) -> None:
    """PUT the root group's total_amps."""
    group = await asyncio.to_thread(root_group, site)
    await site.put(f"/groups/{group}", {"total_amps": amps})


def sent_tenths(payload: dict[str, Any]) -> int:
    """The first period's limit of a SetChargingProfile, in tenths of an ampere per phase (R-16)."""
    schedule = payload["csChargingProfiles"]["chargingSchedule"]
    period = schedule["chargingSchedulePeriod"][0]
    if schedule["chargingRateUnit"] == "A":
        return round(float(period["limit"]) * 10)
    phases = int(period.get("numberPhases", 3))
    return round(float(period["limit"]) * 10 / (VOLTS * phases))


def in_force(row: dict[str, Any]) -> int | None:
    """What a stored row says may be in force (smart/scheduler.py docstring); None = unknown, the connector max."""
    if row["status"] == "accepted":
        return int(row["limit_tenths"])
    reserved = row["reserved_tenths"]
    return None if reserved is None else int(reserved)


async def connector_rows(server: LiveServer, charger_id: int) -> list[dict[str, Any]]:
    """The stored profile rows of one charger."""
    return [dict(row) for row in await profile_rows(server) if row["charger_id"] == charger_id]


def flagged(server: ClockedServer, charger_id: int) -> bool:
    """charger_capabilities.profiles_unsupported of a charger."""
    rows = server.run(lambda: capability_rows(server))
    return any(row["profiles_unsupported"] for row in rows if row["charger_id"] == charger_id)


# ---------------------------------------------------------------------- 1. the store never understates


@dataclass(frozen=True)
class Receipt:
    """A SetChargingProfile as the charger received it, and the server's row of its key at that moment."""

    connector: int
    purpose: str
    transaction_id: int | None
    limit: int
    row: dict[str, Any] | None


class Witness(SmartCharger):
    """A charger that, on receiving each SetChargingProfile, reads the server's stored row of its key."""

    server: ClockedServer
    charger_id: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.receipts: list[Receipt] = []

    def _answer(self, action: str, payload: Any) -> Any:
        if action == "SetChargingProfile":
            profile = payload["csChargingProfiles"]
            key = (int(payload["connectorId"]), str(profile["chargingProfilePurpose"]))
            row = self.server.run(lambda: self._stored(*key))  # blocks this loop only: the server waits for us
            self.receipts.append(Receipt(*key, profile.get("transactionId"), sent_tenths(payload), row))
        return super()._answer(action, payload)

    async def _stored(self, connector: int, purpose: str) -> dict[str, Any] | None:
        table = charging_profiles
        query = select(table).where(
            table.c.charger_id == self.charger_id, table.c.connector_number == connector, table.c.purpose == purpose
        )
        async with self.server.runtime.db.read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else dict(row)


def test_the_store_never_understates_what_a_charger_may_run_when_a_profile_arrives(smart: ClockedServer) -> None:
    """R-85, R-87 and DESIGN "a decrease that times out or is rejected keeps the old limit reserved".

    Whatever the answer to a SetChargingProfile will be, at the moment the charger receives it the
    store already says that at least its limit may be in force: an increase or a new profile is
    stored `pending` with the new limit reserved first; a decrease is covered by the row of the
    send before it (the enforcer writes no pending row for it): `accepted`, or still `pending` with
    that limit reserved when the earlier answer's write has not landed yet.
    """
    account = smart.account()
    site = Site(smart, account, 32)
    cps = [make_charger(smart, site, f"WIT{n}", None, Witness) for n in range(3)]
    for cp in cps:
        cp.server, cp.charger_id = smart, charger_id_of(smart, cp.identity)
    a, b, c = cps

    async def scenario() -> None:
        async with running(cps):
            await offered_are(cps, [10.6] * 3, "R-88: the failsafe of 32 A over three connectors")
            a.begin()
            b.begin()
            await offered_are([a, b], [16.0, 16.0], "R-82: two share 32 A")
            c.begin()
            await offered_are(cps, [10.6] * 3, "a third arrives: two decreases")
            a.finish()
            await until(lambda: a.connectors[1].transaction is None, "the first stopped")
            await offered_are([b, c], [16.0, 16.0], "one leaves: two increases")
            await set_capacity(site, 20)
            await offered_are([b, c], [10.0, 10.0], "the group shrinks to 20 A")
            await until(lambda: a.offered(1) == 6.6, "R-88: the failsafe follows, 20 A / 3")
            await set_capacity(site, 40)
            await offered_are([b, c], [20.0, 20.0], "the group grows to 40 A")
            await until(lambda: a.offered(1) == 13.3, "R-88: the failsafe follows, 40 A / 3")

    finish_scenario(site, scenario)

    decreases: list[Receipt] = []
    increases: list[Receipt] = []
    for cp in cps:
        last: dict[tuple[int, str, int | None], int] = {}
        for receipt in cp.receipts:
            assert receipt.row is not None, f"{cp.identity}: {receipt} arrived with no stored row"
            force = in_force(receipt.row)
            assert force is None or force >= receipt.limit, f"{cp.identity}: the store understated {receipt}"
            key = (receipt.connector, receipt.purpose, receipt.transaction_id)
            before = last.get(key)
            if before is not None and receipt.limit < before:
                decreases.append(receipt)
                # No row of its own: the earlier send's row, accepted, or still pending with its limit
                # reserved when that answer's write has not landed yet (both cover `before`).
                assert receipt.row["limit_tenths"] == before, receipt
                assert receipt.row["status"] == "accepted" or receipt.row["reserved_tenths"] == before, receipt
            elif before is not None and receipt.limit > before:
                increases.append(receipt)
                assert receipt.row["status"] == "pending", receipt
                assert receipt.row["reserved_tenths"] == receipt.limit, receipt
            elif before is None:
                assert receipt.row["status"] == "pending", receipt
            last[key] = receipt.limit
    # B and C (and A before it stopped) went down twice, up twice; every failsafe down once, up once.
    tx_decreases = [r for r in decreases if r.purpose == "TxProfile"]
    tx_increases = [r for r in increases if r.purpose == "TxProfile"]
    assert len(tx_decreases) >= 4, decreases
    assert len(tx_increases) >= 4, increases
    assert sorted(r.limit for r in decreases if r.purpose == "TxDefaultProfile") == [66] * 3
    assert sorted(r.limit for r in increases if r.purpose == "TxDefaultProfile") == [133] * 3


# ---------------------------------------------------------------------- 2. no smart charging at all


class Unsupporting(SmartCharger):
    """A charger whose firmware has no smart charging: SetChargingProfile is a CALLERROR NotImplemented."""

    supports = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_frames = 0

    def _answer(self, action: str, payload: Any) -> Any:
        if action == "SetChargingProfile":
            self.set_frames += 1
            if not self.supports:
                raise CallError("NotImplemented", "SetChargingProfile is not supported by this charge point")
        return super()._answer(action, payload)


def test_a_charger_without_smart_charging_is_flagged_held_at_its_max_and_tried_again_after_a_reconnect(
    smart: ClockedServer,
) -> None:
    """R-87 (a charger we cannot steer reserves what it may draw), R-43 (`rejected`), R-89 (a reconnect retries).

    A CALLERROR NotImplemented to SetChargingProfile flags the charger (profiles_unsupported):
    no fallback ladder, nothing more is sent to it however the group changes, its connector
    shows `rejected` and, with no profile of ours in force, is held at its maximum (32 A, the
    `worst()` of smart/scheduler.py); the other charger of the 48 A group gets the 16 A left.
    A reconnect clears the flag and the charger is tried again.
    """
    account = smart.account()
    site = Site(smart, account, 48)
    dumb = make_charger(smart, site, "DUMB", None, Unsupporting)
    normal = make_charger(smart, site, "NORM", None)
    dumb_id = charger_id_of(smart, dumb.identity)

    async def scenario() -> None:
        async with running([dumb, normal]):
            await offered_are([normal], [24.0], "R-88: the failsafe of 48 A over two connectors")
            await until(lambda: dumb.set_frames == 1, "the failsafe tried once")
            await until(lambda: flagged(smart, dumb_id), "flagged profiles_unsupported")
            await until_state(site, "rejected")
            dumb.begin()
            normal.begin()
            await offered_are([dumb, normal], [32.0, 16.0], "R-87: the flagged connector holds its 32 A")
            await set_capacity(site, 40)
            await offered_are([normal], [8.0], "40 A less the 32 A held")
            await set_capacity(site, 48)
            await offered_are([normal], [16.0], "48 A less the 32 A held")
            await advance(smart, 2.5 * SMART_SETTINGS["smart_retry_interval"])
            await asyncio.sleep(0.5)
            assert dumb.set_frames == 1, "nothing more is sent to a flagged charger"
            assert dumb.profiles.installed == []
            states = await site.states()
            assert sorted(states.values()) == ["limited", "rejected"], states

            dumb.supports = True  # updated while away
            dumb.reboot_link()
            await until(lambda: dumb.set_frames > 1, "R-89: tried again after the reconnect")
            await offered_are([dumb, normal], [24.0, 24.0], "steered again: 48 A shared")
            assert not flagged(smart, dumb_id)
            purposes = {(p.connector_id, p.purpose) for p in dumb.profiles.installed}
            await until(
                lambda: {(p.connector_id, p.purpose) for p in dumb.profiles.installed} >= {(0, "TxDefaultProfile")},
                f"R-88/R-89: the refused failsafe is sent again after the reconnect (installed: {purposes})",
            )

    finish_scenario(site, scenario)


# ---------------------------------------------------------------------- 3. detach and attach


def test_a_detached_charger_is_released_and_an_attached_one_gets_its_failsafe(smart: ClockedServer) -> None:
    """R-88 (a failsafe on every charger of a group, at every group change), §7.4 (rebalance on group changes).

    Detaching a charger (A7) clears our profiles from it and forgets them, and the rest of the
    group gets its share; attaching one (A11) is a group change that runs the site at once.
    """
    account = smart.account()
    site = Site(smart, account, 16)
    leaving, staying = (make_charger(smart, site, name, None) for name in ("LEAVE", "STAY"))
    leaving_id = charger_id_of(smart, leaving.identity)

    async def scenario() -> None:
        async with running([leaving, staying]):
            leaving.begin()
            staying.begin()
            await offered_are([leaving, staying], [8.0, 8.0], "R-82: two share 16 A")
            await until(lambda: purposes(leaving) == {"TxProfile", "TxDefaultProfile"}, "a TxProfile and the failsafe")
            response = await asyncio.to_thread(site.api.delete, f"{site.path}/chargers/{leaving_id}")
            assert response.status_code == 204, response.text
            await until(lambda: leaving.profiles.installed == [], "our profiles cleared from the detached charger")
            await offered_are([staying], [16.0], "the one left gets the whole group")
            rows = await asyncio.to_thread(smart.run, lambda: connector_rows(smart, leaving_id))
            assert rows == []
            assert leaving.offered(1) == 32.0, "off the site, it is none of our business"

            # Quiet the site (no session, no meter value) so that only the attach can run it.
            leaving.finish()
            staying.finish()
            await until(lambda: [leaving.statuses[1], staying.statuses[1]] == ["Available"] * 2, "both idle")
            await asyncio.sleep(1.0)
            frames = leaving.profile_frames
            pincode = await asyncio.to_thread(smart.run, lambda: stored_pincode(smart, leaving_id))
            body = {"identity": leaving.identity, "pincode": pincode}
            response = await asyncio.to_thread(site.api.post, f"{site.path}/attach-charger", json=body)
            assert response.status_code == 200, response.text
            await until(lambda: leaving.profile_frames > frames, "the attach ran the site")
            await offered_are([leaving, staying], [8.0, 8.0], "R-88: the failsafe of 16 A over two connectors")
            failsafe = [(p.connector_id, p.purpose) for p in leaving.profiles.installed]
            assert failsafe == [(0, "TxDefaultProfile")]

    finish_scenario(site, scenario)


def purposes(cp: SmartCharger) -> set[str]:
    """The purposes of the profiles installed on a charger."""
    return {p.purpose for p in cp.profiles.installed}


async def stored_pincode(server: LiveServer, charger_id: int) -> str:
    """A charger's pincode (the API never shows it; its owner reads it off the charger)."""
    async with server.runtime.db.read() as conn:
        return str(await conn.scalar(select(chargers.c.pincode).where(chargers.c.id == charger_id)))


# ---------------------------------------------------------------------- 4. the send window


class Listener(SmartCharger):
    """A charger that notes every CSMS call it hears (by the server's clock), answered or not."""

    server: ClockedServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heard: list[tuple[str, float]] = []


@pytest.fixture
def listening(monkeypatch: pytest.MonkeyPatch) -> None:
    """Links that note each call for their Listener and read its `ignore_calls` now, not at connect."""
    original = Link._on_call

    async def on_call(self: Link, message_id: str, action: Any, payload: Any) -> None:
        owner = getattr(self.answer, "__self__", None)
        if isinstance(owner, Listener):
            owner.heard.append((str(action), owner.server.clock.monotonic()))
            self.ignore_calls = owner.ignore_calls
        await original(self, message_id, action, payload)

    monkeypatch.setattr(Link, "_on_call", on_call)


def heard_sets(cp: Listener) -> list[float]:
    """When the charger heard each SetChargingProfile."""
    return [at for action, at in cp.heard if action == "SetChargingProfile"]


async def connector_owners(server: LiveServer, charger_ids: list[int]) -> list[int]:
    """The charger of each of their connectors, in connector id order (the order sends are planned in)."""
    table = connectors
    query = select(table.c.charger_id).where(table.c.charger_id.in_(charger_ids), table.c.connector_id > 0)
    async with server.runtime.db.read() as conn:
        return [int(value) for value in (await conn.execute(query.order_by(table.c.id))).scalars()]


@pytest.mark.usefixtures("listening")
def test_silent_chargers_fill_the_send_window_only_for_a_while(
    smart: ClockedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R-85 at scale (the enforcer's `_windowed`): an unanswered charger stops holding the window after PATIENCE.

    With a window of 2, the two chargers that stop answering (connected first, so their
    connectors and so their sends come first) take the whole window; the third charger's
    profile waits, and goes out once they have been silent for PATIENCE seconds of the
    server's clock, long before their call timeout. The silent ones answer at first (a charger
    that ignores GetConfiguration at connect would hold the first runs for the call timeout)
    and fall silent once the group is settled.
    """
    patience = 1.5  # long enough that real time alone does not end it while the test looks
    monkeypatch.setattr(enforcer, "WINDOW", 2)
    monkeypatch.setattr(enforcer, "PATIENCE", patience)
    timeout = SMART_SETTINGS["ocpp_call_timeout"]
    assert patience + 0.2 < timeout / 2
    account = smart.account()
    site = Site(smart, account, 48)
    cps = [make_charger(smart, site, f"WIN{n}", None, Listener) for n in range(3)]
    for cp in cps:
        cp.server = smart
    ids = [charger_id_of(smart, cp.identity) for cp in cps]
    *silent, answering = cps

    async def scenario() -> None:
        async with running(silent):
            await until_connectors(site, 2)
            async with running([answering]):
                await until_connectors(site, 3)
                owners = await asyncio.to_thread(smart.run, lambda: connector_owners(smart, ids))
                assert sorted(owners[:2]) == ids[:2] and owners[2] == ids[2], "the silent ones come first"
                for cp in cps:
                    cp.begin()
                await offered_are(cps, [16.0] * 3, "R-82: three share 48 A")
                await until(lambda: all(purposes(cp) == {"TxProfile", "TxDefaultProfile"} for cp in cps), "settled")
                await asyncio.sleep(0.5)  # every answer stored, every meter-value run done
                for cp in silent:
                    cp.ignore_calls = True
                before = {cp.identity: len(heard_sets(cp)) for cp in cps}

                await set_capacity(site, 60)  # increases for everyone: one phase, three chains
                await until(lambda: all(len(heard_sets(cp)) > before[cp.identity] for cp in silent), "window filled")
                sent_at = max(heard_sets(cp)[-1] for cp in silent)
                await asyncio.sleep(0.3)
                assert len(heard_sets(answering)) == before[answering.identity], "the third waits for the window"

                await advance(smart, patience + 0.2)
                await offered_are([answering], [20.0], "the third's profile went out after PATIENCE")
                got_at = heard_sets(answering)[before[answering.identity]]
                assert patience <= got_at - sent_at < timeout, (sent_at, got_at)
                assert [cp.offered(1) for cp in silent] == [16.0, 16.0], "the silent ones installed nothing new"

    finish_scenario(site, scenario)


async def until_connectors(site: Site, count: int) -> None:
    """Wait until the site has `count` connectors (made by the chargers' first StatusNotification)."""

    async def counted() -> int:
        return len(await site.states())

    async with asyncio.timeout(10):
        while await counted() < count:
            await asyncio.sleep(0.05)
