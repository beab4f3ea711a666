"""The simulator against a real server: power usage and energy history match the simulated meters (§8).

Three simulated chargers charge for a few seconds (the same run as tests/e2e/test_simulator_e2e.py).
Afterwards the API must show, for every connector, the newest currents and power the simulator
sent (power-usage, R-101), and the site's energy history must add up to the simulated registers'
growth (R-96: the registers never go down here, so a connector's energy is its last reading minus
its first), both per charger and for the whole site. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.support.simulated import CONNECTORS, EAIR, RecordingCharger, make_chargers, simulate
from voltline.services.accounts import Account

CONTEXT_RANK = {"Transaction.End": 3, "Sample.Periodic": 2, "Sample.Clock": 1}


def newest(cp: RecordingCharger, connector: int, measurand: str, phase: str | None) -> str | None:
    """The value the server keeps as latest (R-95): newest timestamp, ties by context."""
    found = [
        (at, CONTEXT_RANK.get(context, 0), value)
        for number, at, kind, kind_phase, value, context in cp.sent_samples()
        if number == connector and kind == measurand and kind_phase == phase
    ]
    return max(found)[2] if found else None


def energy_wh(cp: RecordingCharger, connector: int | None = None) -> int:
    """The growth of the simulated registers (all connectors unless one is named)."""
    total = 0
    for number in range(1, CONNECTORS + 1):
        if connector not in (None, number):
            continue
        readings = sorted((at, int(v)) for n, at, m, _, v, _ in cp.sent_samples() if n == number and m == EAIR)
        if readings:
            total += readings[-1][1] - readings[0][1]
    return total


def kwh_text(wh: int) -> str:
    """Wh as the usage API writes kWh: three decimals (an exact division here)."""
    return str((Decimal(wh) / 1000).quantize(Decimal("0.001")))


def check_power_usage(api: httpx.Client, team: str, charger: dict[str, Any], cp: RecordingCharger) -> None:
    """R-101: per phase the newest Current.Import sent, kW from the newest Power.Active.Import."""
    for number in range(1, CONNECTORS + 1):
        usage = api.get(f"{team}/chargers/{charger['id']}/connectors/{number}/power-usage").json()
        for phase in ("L1", "L2", "L3"):
            sent = newest(cp, number, "Current.Import", phase)
            if sent is None:
                assert usage[phase] == "-", usage
            else:
                assert Decimal(usage[phase]) == Decimal(sent), (phase, usage, sent)
        watts = newest(cp, number, "Power.Active.Import", None)
        assert watts is not None
        expected = (Decimal(watts) / 1000).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        assert usage["kW"] == str(expected), usage


def usage(api: httpx.Client, url: str, **params: Any) -> dict[str, Any]:
    """The energy history around today (the site's timezone is unset, so UTC days)."""
    today = datetime.now(UTC).date()
    window = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1)), "interval": "day"}
    response = api.get(url, params={**window, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_power_usage_and_energy_history_match_the_simulated_meters(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """Live usage (R-101) and energy history (R-96, R-98) from the simulator's meters."""
    site, chargers = make_chargers(api, account)
    simulated = asyncio.run(simulate(server, account, chargers))
    server.run(server.runtime.writer.flush)
    team = f"/api/v2/teams/{account.team_id}"
    for charger, cp in zip(chargers, simulated, strict=True):
        check_power_usage(api, team, charger, cp)
    url = f"{team}/sites/{site['id']}/usage"
    site_total = sum(energy_wh(cp) for cp in simulated)
    assert site_total > 0
    body = usage(api, url)
    assert body["meta"]["total_kwh"] == kwh_text(site_total)
    assert sum(Decimal(bucket["kwh"]) for bucket in body["data"]) == Decimal(site_total) / 1000
    for charger, cp in zip(chargers, simulated, strict=True):
        assert usage(api, url, charger=charger["id"])["meta"]["total_kwh"] == kwh_text(energy_wh(cp))
    quarter_hours = usage(api, url, interval="15m")["data"]
    assert sum(Decimal(bucket["kwh"]) for bucket in quarter_hours) == Decimal(site_total) / 1000
