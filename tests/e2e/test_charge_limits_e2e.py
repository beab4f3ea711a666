"""Per-connector charge-limit caps end to end (DESIGN "v3 API": `actions/charge-limit`, `charging-profile`).

Driven through the service (services/charge_limits.py) on a live server on a stepped clock, with
simulated chargers over real sockets. On a managed site the controller gives a capped connector
min(allocation, cap) with reason `charge_limit` (the cap is the connector's max for R-82's
water-filling; R-30: what a hard cap leaves goes to the others) and Σ limits ≤ C (R-85); a cap of
0 pauses (R-41) and the charger reports `SuspendedEVSE` (R-32). Elsewhere the cap is a
TxDefaultProfile of its own at the requested stack level, installed again after a reboot (R-89).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import select

from tests.clocked import ClockedServer, FollowingClock
from tests.support.smart_e2e import (
    SETTLE,
    Ledger,
    Site,
    SmartCharger,
    big_car,
    make_charger,
    offered_are,
    power_management,
    running,
    until,
    ws_base,
)
from voltline.domain.ids import TeamId
from voltline.errors import ValidationError
from voltline.services import audit, charge_limits
from voltline.smart.charge_limits import CHARGE_LIMIT_BASE
from voltline.store.schema import chargers, connectors


def charger_row(server: ClockedServer, identity: str) -> Mapping[str, Any]:
    """The charger's row, as a front-end hands it to the service."""

    async def read() -> Mapping[str, Any]:
        async with server.runtime.db.read() as conn:
            row = (await conn.execute(select(chargers).where(chargers.c.identity == identity))).mappings().one()
            return dict(row)

    return server.run(read)


async def call(server: ClockedServer, make: Any) -> Any:
    """Run a service call on the server's loop without blocking the chargers' loop."""
    return await asyncio.to_thread(server.run, make)


async def set_limit(site: Site, cp: SmartCharger, connector: int, limit: Any, **options: Any) -> dict[str, Any]:
    """`set_charge_limit` through the service, for the site's team."""
    row = charger_row(site.server, cp.identity)
    team = TeamId(site.account.team_id)
    rt = site.server.runtime
    result: dict[str, Any] = await call(
        site.server, lambda: charge_limits.set_charge_limit(rt, team, row, connector, limit, **options)
    )
    return result


async def clear_limit(site: Site, cp: SmartCharger, connector: int) -> dict[str, Any]:
    """`clear_charge_limit` through the service."""
    row = charger_row(site.server, cp.identity)
    rt = site.server.runtime
    team = TeamId(site.account.team_id)
    result: dict[str, Any] = await call(site.server, lambda: charge_limits.clear_charge_limit(rt, team, row, connector))
    return result


def shown(site: Site, cps: list[SmartCharger]) -> list[tuple[str | None, str]]:
    """(limit_amps, reason) of each charger's connector 1 in the power-management picture."""
    data = power_management(site.api, site.path)
    found = {c["charger"]["identity"]: c for c in data["groups"][0]["connectors"]}
    return [(found[cp.identity]["limit_amps"], found[cp.identity]["reason"]) if cp.identity in found else (None, "-")
            for cp in cps]  # fmt: skip


async def picture_is(site: Site, cps: list[SmartCharger], expected: list[tuple[str, str]], what: str) -> None:
    """Wait until the picture shows the expected (limit, reason) per charger."""
    last: list[tuple[str | None, str]] = []
    for _ in range(int(SETTLE / 0.1)):
        last = await asyncio.to_thread(shown, site, cps)
        if last == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: shown {last}, expected {expected}")


def server_status(server: ClockedServer, identity: str, number: int) -> str | None:
    """The connector's status as the server stored it from the charger's StatusNotification."""

    async def read() -> str | None:
        async with server.runtime.db.read() as conn:
            query = (
                select(connectors.c.status)
                .join(chargers, chargers.c.id == connectors.c.charger_id)
                .where(chargers.c.identity == identity, connectors.c.connector_id == number)
            )
            value = await conn.scalar(query)
            return None if value is None else str(value)

    return server.run(read)


def caps_installed(cp: SmartCharger) -> list[tuple[int, int, int, float]]:
    """Our charge-limit TxDefaultProfiles on the charger: (connector, id, stack level, limit)."""
    return sorted(
        (p.connector_id, p.profile_id, p.stack_level, p.periods[0].limit)
        for p in cp.profiles.installed
        if p.purpose == "TxDefaultProfile" and p.profile_id >= CHARGE_LIMIT_BASE
    )


def test_a_managed_connector_is_capped_paused_and_resumed_within_the_group_capacity(smart: ClockedServer) -> None:
    """DESIGN "v3 API" on a balanced site: three 32 A cars share 32 A (R-82: 10.6 A each); a cap of 8 A gives
    that connector min(10.6, 8) = 8.0 with reason `charge_limit` and the others 12.0 (R-30: a hard cap's
    unused share goes to the others, by R-82's water-filling); 0 pauses it (R-41: TxProfile 0, the charger
    reports SuspendedEVSE and draws 0 A, R-32) and the others get 16.0; 16 resumes it at min(10.6, 16) =
    10.6 (R-42). Σ installed limits ≤ 32 A at every profile answer (R-85)."""
    site = Site(smart, smart.account(), 32)
    ledger = Ledger(32.0)
    cps = [make_charger(smart, site, f"CAP{n}", ledger) for n in range(3)]
    first = cps[0]

    async def scenario() -> None:
        async with running(cps):
            for cp in cps:
                cp.begin()
            await offered_are(cps, [10.6] * 3, "R-82: three equal shares")
            result = await set_limit(site, first, 1, 8)
            assert (result["status"], result["managed"]) == ("Accepted", True)
            assert result["connectors"] == [{"connector_id": 1, "limit": "8.0"}]
            await offered_are(cps, [8.0, 12.0, 12.0], "capped at 8 A, the rest shared")
            await picture_is(site, cps, [("8.0", "charge_limit"), ("12.0", "share"), ("12.0", "share")], "capped")
            await set_limit(site, first, 1, 0)
            await offered_are(cps, [0.0, 16.0, 16.0], "paused, the rest shared")
            await picture_is(site, cps, [("0.0", "charge_limit"), ("16.0", "share"), ("16.0", "share")], "paused")
            await until(lambda: first.connectors[1].status == "SuspendedEVSE", "the charger suspends")
            assert first.connectors[1].meter.current == 0.0
            await until(lambda: server_status(smart, first.identity, 1) == "SuspendedEVSE", "the server shows it")
            await set_limit(site, first, 1, 16)
            await offered_are(cps, [10.6] * 3, "resumed at min(allocation, 16)")
            await picture_is(site, cps, [("10.6", "share")] * 3, "resumed")
            await until(lambda: first.connectors[1].status == "Charging", "charging again")
            assert caps_installed(first) == [], "the controller enforces it: no profile of the cap's own"
            await clear_limit(site, first, 1)
        assert ledger.violations == [], f"R-85: Σ above 32 A at {ledger.violations}"
        assert ledger.peak <= 32.0

    try:
        asyncio.run(scenario())
    finally:
        site.api.close()


async def v3_action(site: Site, cp: SmartCharger, action: str, body: dict[str, Any]) -> tuple[int, Any]:
    """`POST /api/v3/chargers/{uuid}/actions/{action}` as a client sends it: status and JSON body."""
    uuid = charger_row(site.server, cp.identity)["uuid"]
    path = f"/api/v3/chargers/{uuid}/actions/{action}"
    response = await asyncio.to_thread(site.api.post, path, json=body)
    return response.status_code, response.json()


def test_evcc_pauses_and_resumes_through_the_v3_charge_limit_on_a_balanced_site(smart: ClockedServer) -> None:
    """spec v3 §5 (evcc `plugchoice`): Enable(false) posts `{"connector_id": 1, "limit": 0}` and the connector
    goes SuspendedEVSE drawing 0 A (R-41, R-32) while the others share the group (R-82); MaxCurrent(16) posts
    `limit: 16` and the installed limit is min(allocation, 16) (R-42). A charging profile in W becomes the
    same cap (DESIGN "v3 API"), clear-charging-profile lifts it; 0 < limit < 6 is a 422 (R-40). Σ ≤ 32 A (R-85)."""
    site = Site(smart, smart.account(), 32)
    ledger = Ledger(32.0)
    cps = [make_charger(smart, site, f"EVCC{n}", ledger) for n in range(2)]
    first = cps[0]

    async def scenario() -> None:
        async with running(cps):
            for cp in cps:
                cp.begin()
            await offered_are(cps, [16.0, 16.0], "R-82: two equal shares")
            assert await v3_action(site, first, "charge-limit", {"connector_id": 1, "limit": 0}) == (
                200,
                {"status": "Accepted"},
            )
            await offered_are(cps, [0.0, 32.0], "paused, the other takes the group")
            await picture_is(site, cps, [("0.0", "charge_limit"), ("32.0", "max")], "paused: the other at its rating")
            await until(lambda: server_status(smart, first.identity, 1) == "SuspendedEVSE", "the server shows it")
            assert first.connectors[1].meter.current == 0.0
            assert await v3_action(site, first, "charge-limit", {"connector_id": 1, "limit": 16}) == (
                200,
                {"status": "Accepted"},
            )
            await offered_are(cps, [16.0, 16.0], "resumed at min(allocation, 16)")
            uuid = charger_row(smart, first.identity)["uuid"]
            shown_charger = (await asyncio.to_thread(site.api.get, f"/api/v3/chargers/{uuid}")).json()["data"]
            assert shown_charger["max_current"] == 16, "spec v3 §3.2 max_current: the connector's cap"
            status, body = await v3_action(site, first, "charge-limit", {"connector_id": 1, "limit": 5})
            assert (status, list(body["errors"])) == (422, ["limit"])
            period = {"start_period": 0, "limit": 8280}
            profile = {"charging_schedule": {"charging_rate_unit": "W", "charging_schedule_period": [period]}}
            answer = await v3_action(site, first, "charging-profile", {"connector_id": 1, "charging_profile": profile})
            assert answer == (200, {"status": "Accepted"})
            await offered_are(cps, [12.0, 20.0], "8,280 W on three phases at 230 V: a 12 A cap")
            await picture_is(site, cps, [("12.0", "charge_limit"), ("20.0", "share")], "capped by the profile")
            assert await v3_action(site, first, "clear-charging-profile", {}) == (200, {"status": "Accepted"})
            await offered_are(cps, [16.0, 16.0], "the cap lifted")
        assert ledger.violations == [], f"R-85: Σ above 32 A at {ledger.violations}"

    try:
        asyncio.run(scenario())
    finally:
        site.api.close()


def two_connector_charger(server: ClockedServer, site: Site, name: str) -> SmartCharger:
    """A simulated charger with two connectors on the server's clock."""
    identity = site.charger(f"{name}-{site.site['id']}")["identity"]
    return SmartCharger(
        ws_base(server),
        identity,
        connectors=2,
        meter_interval=1.0,
        auto_sessions=False,
        session_seconds=100_000,
        unplug_seconds=0.05,
        clock=FollowingClock(server.clock),
        cars=big_car,
    )


def test_an_unmanaged_connector_gets_the_cap_as_a_tx_default_profile_again_after_a_reboot(
    smart: ClockedServer,
) -> None:
    """DESIGN "v3 API", "Load management": without load management and without a gate the controller
    manages nothing, so the cap is a TxDefaultProfile (id 4000 + n) at the requested stack level; the car
    charges at 16 A instead of 32 A (R-12: no TxProfile overrides it). After the charger reboots and loses
    its profiles it gets it again (R-89). Cleared, it is removed by id and the car is back at 32 A.
    A cap of 0 pauses it (R-41: SuspendedEVSE, 0 A). Connector 0 caps every connector; `charging-profile`
    in W becomes the A cap (R-16: 11,000 W on three phases at 230 V = 15.9 A, floored)."""
    site = Site(smart, smart.account(), 32, load_management=False)
    cp = two_connector_charger(smart, site, "UNM")

    async def scenario() -> None:
        async with running([cp]):
            cp.begin(1)
            await until(lambda: cp.connectors[1].transaction is not None, "a session")
            await until(lambda: cp.offered(1) == 32.0, "at its rating")
            result = await set_limit(site, cp, 1, 16.09, stack_level=2)
            assert (result["status"], result["managed"]) == ("Accepted", False)
            assert result["connectors"] == [{"connector_id": 1, "limit": "16.0"}], "floored to 0.1 A (R-16)"
            assert caps_installed(cp) == [(1, 4001, 2, 16.0)]
            await until(lambda: cp.offered(1) == 16.0, "capped by the TxDefaultProfile")
            frames = cp.profile_frames
            cp.reboot_link()
            assert caps_installed(cp) == []
            await until(lambda: caps_installed(cp) == [(1, 4001, 2, 16.0)], "R-89: installed again after the reboot")
            assert cp.profile_frames > frames
            await until(lambda: cp.offered(1) == 16.0, "capped again")
            result = await clear_limit(site, cp, 1)
            assert result["status"] == "Accepted"
            assert caps_installed(cp) == []
            await until(lambda: cp.offered(1) == 32.0, "back at its rating")
            await set_limit(site, cp, 1, 0)
            assert caps_installed(cp) == [(1, 4001, 1, 0.0)]
            await until(lambda: cp.connectors[1].status == "SuspendedEVSE", "R-41: paused by its TxDefaultProfile 0")
            assert cp.connectors[1].meter.current == 0.0
            await every_connector_and_watts(site, cp)
        actions = await call(smart, lambda: audited(smart, site))
        assert actions.count("charger.charge_limit") == 3
        assert actions.count("charger.charging_profile") == 1
        assert actions.count("charger.clear_charge_limit") == 2
        assert "charger.set_charging_profile" in actions and "charger.clear_charging_profile" in actions

    try:
        asyncio.run(scenario())
    finally:
        site.api.close()


async def every_connector_and_watts(site: Site, cp: SmartCharger) -> None:
    """Connector 0 caps every connector at stack level 1; a W profile becomes 15.9 A (R-16); clear 0 clears all."""
    smart = site.server
    result = await set_limit(site, cp, 0, 10)
    assert [c["connector_id"] for c in result["connectors"]] == [1, 2]
    assert caps_installed(cp) == [(1, 4001, 1, 10.0), (2, 4002, 1, 10.0)], "connector 0: all, stack level 1"
    await until(lambda: cp.offered(1) == 10.0 and cp.offered(2) == 10.0, "both capped")
    body = {
        "stack_level": 3,
        "charging_schedule": {
            "charging_rate_unit": "W",
            "charging_schedule_period": [{"start_period": 0, "limit": 11000}],
        },
    }
    row = charger_row(smart, cp.identity)
    team = TeamId(site.account.team_id)
    rt = smart.runtime
    result = await call(smart, lambda: charge_limits.cap_from_charging_profile(rt, team, row, 2, body))
    assert result["connectors"] == [{"connector_id": 2, "limit": "15.9"}]
    assert caps_installed(cp) == [(1, 4001, 1, 10.0), (2, 4002, 3, 15.9)]
    await clear_limit(site, cp, 0)
    assert caps_installed(cp) == []
    assert [p.profile_id for p in cp.profiles.installed] == [], "no profile of ours is left"


async def audited(server: ClockedServer, site: Site) -> list[str]:
    """The actions in the team's audit log."""
    rows = await audit.list_audit_log(server.runtime, TeamId(site.account.team_id), {}, offset=0, limit=100)
    return [str(row["action"]) for row in rows]


def test_a_cap_moves_between_its_own_profile_and_the_controller_when_load_management_changes(
    smart: ClockedServer,
) -> None:
    """DESIGN "v3 API", "Load management": an unmanaged connector's cap is its TxDefaultProfile; once the
    site is balanced the controller carries it (TxProfile of min(allocation, cap), reason `charge_limit`)
    and our profile is removed, so only the controller's profiles remain (Σ ≤ C); unbalanced again, the
    cap's own profile comes back and holds the car at the cap."""
    site = Site(smart, smart.account(), 32, load_management=False)
    cp = make_charger(smart, site, "MOVE", None)

    async def scenario() -> None:
        async with running([cp]):
            cp.begin()
            await until(lambda: cp.connectors[1].transaction is not None, "a session")
            await set_limit(site, cp, 1, 20)
            assert caps_installed(cp) == [(1, 4001, 1, 20.0)]
            await site.put("", {"load_management": True})
            await until(lambda: caps_installed(cp) == [], "our profile made way for the controller's")
            await picture_is(site, [cp], [("20.0", "charge_limit")], "the controller carries the cap")
            await until(lambda: cp.offered(1) == 20.0, "capped by the controller's TxProfile")
            await site.put("", {"load_management": False})
            await until(lambda: caps_installed(cp) == [(1, 4001, 1, 20.0)], "the cap's own profile is back")
            await until(lambda: cp.offered(1) == 20.0, "still capped")
            await until(lambda: [p.profile_id for p in cp.profiles.installed] == [4001], "nothing of the controller's")

    try:
        asyncio.run(scenario())
    finally:
        site.api.close()


@pytest.mark.parametrize("limit", [0.1, 5, 5.99, -1, "x", float("nan"), True])
def test_a_limit_that_is_neither_a_pause_nor_at_least_6_amps_is_refused(smart: ClockedServer, limit: Any) -> None:
    """R-40: 0 < limit < 6 A is a ValidationError naming `limit` (a Laravel 422), as are a negative limit
    and a value that is no number; nothing is stored or sent."""
    site = Site(smart, smart.account(), 32)
    identity = site.charger(f"BAD-{site.site['id']}")["identity"]
    row = charger_row(smart, identity)
    rt = smart.runtime
    team = TeamId(site.account.team_id)
    try:
        with pytest.raises(ValidationError) as caught:
            smart.run(lambda: charge_limits.set_charge_limit(rt, team, row, 1, limit))
        assert list(caught.value.errors) == ["limit"]
        if isinstance(limit, (int, float)) and not isinstance(limit, bool) and 0 < limit < 6:
            assert caught.value.errors["limit"] == ["The limit must be 0 (pause) or at least 6 A."]
    finally:
        site.api.close()
