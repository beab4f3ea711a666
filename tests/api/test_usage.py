"""Energy history of a site: spec/smart-charging.md §8.3 (R-94..R-98) through a real OCPP socket and the REST API.

MeterValues go over a raw OCPP 1.6 WebSocket, the batched writer keeps the 15-minute rollups,
and `GET .../sites/{site}/usage` sums them per local bucket. Every expected number is worked
out by hand in the comments next to the frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import Raw, open_charger, run
from tests.support.sites import errors_of, make_site
from tests.support.transactions import site_charger
from voltline.services.accounts import Account

AMSTERDAM = "Europe/Amsterdam"

# (connector, timestamp UTC, value, unit) in the order the charger sends them.
# Charger A, connector 1, sorted: 10:00 1000, 10:10 1500, 10:40 2500, 10:50 2700, 11:05 100 (reset),
# 11:20 400, 11:21 400000 (outlier: 399.6 kWh in a minute), 11:30 500.
# Intervals: 500 (10:00-10:10), 1000 (10:10-10:40), 200 (10:40-10:50), 0 (reset), 300 (11:05-11:20),
# 100 (11:20-11:30, from the last good reading). Quarter hours (UTC):
#   10:00  500 + round(1000 x 5/30) = 500 + 167 = 667
#   10:15  round(1000 x 20/30) - 167 = 667 - 167 = 500
#   10:30  1000 - 667 = 333, + 200 x 5/10 = 100 -> 433
#   10:45  100
#   11:00  300 x 10/15 = 200
#   11:15  100 + 100 = 200                       connector 1: 2100 Wh
# Connector 2: 10:00 0, 11:00 1000 -> 250 in each quarter of 10:00-11:00.   charger A: 3100 Wh
CHARGER_A: list[tuple[int, str, str, str | None]] = [
    (1, "2025-03-31T10:00:00Z", "1000", None),
    (1, "2025-03-31T10:10:00Z", "1.5", "kWh"),
    (1, "2025-03-31T10:50:00Z", "2700", "Wh"),
    (1, "2025-03-31T10:40:00Z", "2500", None),  # out of order: older than the frame before it
    (2, "2025-03-31T10:00:00Z", "0", None),
    (1, "2025-03-31T11:05:00Z", "100", None),  # a reset (meter swapped)
    (2, "2025-03-31T11:00:00Z", "1", "kWh"),
    (1, "2025-03-31T11:20:00Z", "400", None),
    (1, "2025-03-31T11:21:00Z", "400000", None),
    (1, "2025-03-31T11:30:00Z", "500", None),
]
# Charger B, connector 1: 10:00 5000, 10:30 5600 -> 300 in 10:00 and 300 in 10:15.
CHARGER_B: list[tuple[int, str, str, str | None]] = [
    (1, "2025-03-31T10:30:00Z", "5600", None),
    (1, "2025-03-31T10:00:00Z", "5000", None),  # out of order, as the first reading ever stored second
]


def amsterdam_site(api: httpx.Client, account: Account) -> dict[str, Any]:
    """A site whose timezone is Europe/Amsterdam (set through PUT)."""
    site = make_site(api, account)
    response = api.put(f"/api/v2/teams/{account.team_id}/sites/{site['id']}", json={"timezone": AMSTERDAM})
    assert response.status_code == 200, response.text
    updated: dict[str, Any] = response.json()["data"]
    return updated


def send(
    server: LiveServer, identity: str, frames: list[tuple[int, str, str, str | None]], *, flush: bool = True
) -> None:
    """Report the connectors, then send each frame as its own MeterValues, flushed in between (one batch each)."""

    async def scenario() -> None:
        async with open_charger(server, identity) as ws:
            peer = Raw(ws)
            for number in sorted({frame[0] for frame in frames}):
                status = {"connectorId": number, "errorCode": "NoError", "status": "Charging"}
                await peer.result("StatusNotification", status)
            for connector, at, value, unit in frames:
                sampled: dict[str, str] = {"value": value, "measurand": "Energy.Active.Import.Register"}
                if unit is not None:
                    sampled["unit"] = unit
                payload = {"connectorId": connector, "meterValue": [{"timestamp": at, "sampledValue": [sampled]}]}
                await peer.result("MeterValues", payload)
                if flush:
                    server.run(server.runtime.writer.flush)

    run(scenario())
    server.run(server.runtime.writer.flush)


@dataclass
class Metered:
    """A site in Amsterdam with charger A (in a sub-group) and charger B, after their frames."""

    account: Account
    site: dict[str, Any]
    a: dict[str, Any]
    b: dict[str, Any]
    group: dict[str, Any]

    @property
    def url(self) -> str:
        return f"/api/v2/teams/{self.account.team_id}/sites/{self.site['id']}/usage"


@pytest.fixture
def metered(server: LiveServer, api: httpx.Client, account: Account) -> Metered:
    team = f"/api/v2/teams/{account.team_id}"
    site = amsterdam_site(api, account)
    a, b = site_charger(api, team, site["id"]), site_charger(api, team, site["id"])
    group = api.post(f"{team}/sites/{site['id']}/groups", json={"total_amps": 32}).json()["data"]
    assigned = api.post(f"{team}/sites/{site['id']}/groups/{group['id']}/chargers", json={"charger": b["id"]})
    assert assigned.status_code == 200, assigned.text
    send(server, a["identity"], CHARGER_A)
    send(server, b["identity"], CHARGER_B)
    return Metered(account, site, a, b, group)


def usage(api: httpx.Client, url: str, **params: Any) -> dict[str, Any]:
    response = api.get(url, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def kwh(body: dict[str, Any]) -> list[str]:
    return [bucket["kwh"] for bucket in body["data"]]


DAY = {"from": "2025-03-31", "to": "2025-03-31"}


def test_a_day_of_the_site_sums_every_connector(api: httpx.Client, metered: Metered) -> None:
    """R-96..R-98: 2100 + 1000 + 600 Wh on 2025-03-31 (local), one daily bucket with its offsets."""
    body = usage(api, metered.url, **DAY)
    assert body == {
        "data": [{"start": "2025-03-31T00:00:00+02:00", "end": "2025-04-01T00:00:00+02:00", "kwh": "3.700"}],
        "meta": {
            "timezone": AMSTERDAM,
            "interval": "day",
            "from": "2025-03-31",
            "to": "2025-03-31",
            "total_kwh": "3.700",
        },
    }


def test_hours_follow_the_site_clock(api: httpx.Client, metered: Metered) -> None:
    """R-98: local 12:00 (10:00-11:00 UTC) = 667+500+433+100 + 1000 + 600 = 3300 Wh; 13:00 = 200+200 = 400."""
    body = usage(api, metered.url, interval="hour", **DAY)
    assert len(body["data"]) == 24
    expected = ["0.000"] * 24
    expected[12], expected[13] = "3.300", "0.400"
    assert kwh(body) == expected
    assert body["data"][12]["start"] == "2025-03-31T12:00:00+02:00"


def test_quarter_hours_of_one_charger(api: httpx.Client, metered: Metered) -> None:
    """R-98 in 15-minute buckets for charger A (by uuid): connector 1 plus 250 Wh a quarter from connector 2."""
    body = usage(api, metered.url, interval="15m", charger=metered.a["uuid"], **DAY)
    assert len(body["data"]) == 96
    at_noon = kwh(body)[48:54]  # local 12:00 .. 13:15
    assert at_noon == ["0.917", "0.750", "0.683", "0.350", "0.200", "0.200"]
    assert body["meta"]["total_kwh"] == "3.100"


def test_a_group_counts_its_own_connectors_and_the_root_counts_all(api: httpx.Client, metered: Metered) -> None:
    """Group filter: charger B is in the sub-group (600 Wh); the root group holds the whole site."""
    assert usage(api, metered.url, group=metered.group["id"], **DAY)["meta"]["total_kwh"] == "0.600"
    assert usage(api, metered.url, group=metered.group["uuid"], **DAY)["meta"]["total_kwh"] == "0.600"
    root = metered.group["group_id"]
    assert usage(api, metered.url, group=root, **DAY)["meta"]["total_kwh"] == "3.700"


def test_batches_do_not_change_the_result(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """R-94/R-95: charger A's frames written in whatever batches the writer takes give the same 3100 Wh."""
    team = f"/api/v2/teams/{account.team_id}"
    site = amsterdam_site(api, account)
    charger = site_charger(api, team, site["id"])
    send(server, charger["identity"], CHARGER_A, flush=False)
    send(server, charger["identity"], CHARGER_A[:4], flush=False)  # a replay of frames already stored
    body = usage(api, f"{team}/sites/{site['id']}/usage", interval="15m", **DAY)
    assert kwh(body)[48:54] == ["0.917", "0.750", "0.683", "0.350", "0.200", "0.200"]
    assert body["meta"]["total_kwh"] == "3.100"


def test_parameters_may_come_in_a_json_body(api: httpx.Client, metered: Metered) -> None:
    """DESIGN: GET parameters are read from the query string and a JSON body."""
    response = api.request("GET", metered.url, json={**DAY, "interval": "day", "charger": metered.b["id"]})
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["total_kwh"] == "0.600"


def test_every_bucket_is_listed_and_days_without_energy_are_zero(api: httpx.Client, metered: Metered) -> None:
    body = usage(api, metered.url, **{"from": "2025-03-29", "to": "2025-04-01"})
    assert kwh(body) == ["0.000", "0.000", "3.700", "0.000"]
    # 2025-03-30 is the spring-forward day: 23 hours long.
    assert body["data"][1] == {"start": "2025-03-30T00:00:00+01:00", "end": "2025-03-31T00:00:00+02:00", "kwh": "0.000"}


def test_a_dst_day_has_25_hourly_buckets(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """R-98: 2025-10-26 in Amsterdam: +1000 Wh every UTC hour gives 25 local hours of 1.000 kWh."""
    team = f"/api/v2/teams/{account.team_id}"
    site = amsterdam_site(api, account)
    charger = site_charger(api, team, site["id"])
    start = datetime(2025, 10, 25, 22, tzinfo=UTC)
    frames = [
        (1, (start + timedelta(hours=n)).isoformat().replace("+00:00", "Z"), str(1000 * n), None) for n in range(26)
    ]
    send(server, charger["identity"], frames)
    url = f"{team}/sites/{site['id']}/usage"
    body = usage(api, url, interval="hour", **{"from": "2025-10-26", "to": "2025-10-26"})
    assert kwh(body) == ["1.000"] * 25
    assert [b["start"][11:] for b in body["data"][1:4]] == ["01:00:00+02:00", "02:00:00+02:00", "02:00:00+01:00"]
    assert body["meta"]["total_kwh"] == "25.000"


def test_a_site_without_a_timezone_uses_utc(api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    body = usage(api, f"/api/v2/teams/{account.team_id}/sites/{site['id']}/usage", **DAY)
    assert body["data"] == [{"start": "2025-03-31T00:00:00+00:00", "end": "2025-04-01T00:00:00+00:00", "kwh": "0.000"}]
    assert body["meta"]["timezone"] == "UTC"


# -- 422 ---------------------------------------------------------------------------------------------


def test_from_and_to_are_required(api: httpx.Client, metered: Metered) -> None:
    response = api.get(metered.url)
    assert response.json() == {
        "message": "The from field is required. (and 1 more error)",
        "errors": {"from": ["The from field is required."], "to": ["The to field is required."]},
    }


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"from": "31-03-2025", "to": "2025-03-31"}, "from", "The from field must match the format Y-m-d."),
        ({"from": "2025-03-31", "to": "2025-03-30"}, "to", "The to field must be a date after or equal to from."),
        ({**DAY, "interval": "week"}, "interval", "The selected interval is invalid."),
        (
            {"from": "2025-03-01", "to": "2025-04-01", "interval": "15m"},
            "to",
            "The period must not be longer than 31 days for interval 15m.",
        ),
        (
            {"from": "2025-01-01", "to": "2026-01-02"},
            "to",
            "The period must not be longer than 366 days for interval day.",
        ),
        (
            {"from": "1899-12-31", "to": "1899-12-31"},
            "from",
            "The from field must be a date after or equal to 1900-01-01.",
        ),
        (
            {"from": "9999-12-31", "to": "9999-12-31"},
            "to",
            "The to field must be a date before or equal to 9998-12-31.",
        ),
        ({**DAY, "group": "2147483647"}, "group", "The selected group is invalid."),
        ({**DAY, "group": "nope"}, "group", "The selected group is invalid."),
        ({**DAY, "charger": "2147483647"}, "charger", "The selected charger is invalid."),
    ],
)
def test_bad_parameters_are_422(
    api: httpx.Client, metered: Metered, params: dict[str, str], field: str, message: str
) -> None:
    assert errors_of(api.get(metered.url, params=params)) == {field: [message]}


def test_another_teams_charger_or_group_is_invalid(server: LiveServer, api: httpx.Client, metered: Metered) -> None:
    """Tenancy: a charger or group of another team names nothing here."""
    other = server.account("Other")
    with server.client(other) as other_api:
        team = f"/api/v2/teams/{other.team_id}"
        site = make_site(other_api, other)
        charger = site_charger(other_api, team, site["id"])
        group = other_api.post(f"{team}/sites/{site['id']}/groups", json={"total_amps": 16}).json()["data"]
    assert errors_of(api.get(metered.url, params={**DAY, "charger": charger["uuid"]})) == {
        "charger": ["The selected charger is invalid."]
    }
    assert errors_of(api.get(metered.url, params={**DAY, "group": group["id"]})) == {
        "group": ["The selected group is invalid."]
    }


def test_another_teams_usage_is_not_visible(server: LiveServer, metered: Metered) -> None:
    """DESIGN: 403 for another team's path, 404 for another team's site under one's own."""
    other = server.account("Other")
    with server.client(other) as api:
        assert api.get(metered.url, params=DAY).status_code == 403
        own = f"/api/v2/teams/{other.team_id}/sites/{metered.site['id']}/usage"
        assert api.get(own, params=DAY).json() == {"message": "Not found."}
