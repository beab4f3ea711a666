"""Meters and the group meter: spec/volttime-api.md §2.G, A14; spec/smart-charging.md R-103, R-104; DESIGN.

Meters are made and read through the REST API; a charger's own samples arrive as MeterValues
over a real OCPP 1.6 socket. DESIGN: the group meter is always 200; without a physical meter it
is `type: "virtual"` with null id and uuid, signed amperes in `latest_data`, watts in `power`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.support.groups import groups_path, make_group, root_of
from tests.support.sites import errors_of, make_site
from tests.support.stations import Station, current, make_station, power, send, stamp, utc_now
from voltline.services.accounts import Account
from voltline.store import chargers as charger_store
from voltline.store.power_usage import INLINE_CONNECTORS

METER_KEYS = ["uuid", "id", "type", "charger_id", "latest_data", "created_at", "updated_at"]
GROUP_METER_KEYS = ["uuid", "id", "type", "latest_data", "power", "created_at", "updated_at"]
RESOURCE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
NEVER = {"l1": 0, "l2": 0, "l3": 0, "updated_at": "-"}
NOT_FOUND = {"message": "Not found."}


def meters_path(account: Account) -> str:
    return f"/api/v2/teams/{account.team_id}/meters"


def make_meter(api: httpx.Client, account: Account, **fields: Any) -> dict[str, Any]:
    response = api.post(meters_path(account), json=fields)
    assert response.status_code == 201, response.text
    meter: dict[str, Any] = response.json()["data"]
    return meter


def post_reading(api: httpx.Client, account: Account, meter: dict[str, Any] | str, **body: Any) -> httpx.Response:
    ref = meter if isinstance(meter, str) else meter["id"]
    return api.post(f"{meters_path(account)}/{ref}/readings", json=body)


def group_meter(api: httpx.Client, account: Account, site: dict[str, Any], group: dict[str, Any]) -> dict[str, Any]:
    response = api.get(f"{groups_path(account, site)}/{group['id']}/meter")
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["data"]
    data: dict[str, Any] = response.json()["data"]
    assert list(data) == GROUP_METER_KEYS
    return data


def reading_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# -- create and list ------------------------------------------------------------------------------------


def test_create_meter_returns_201_with_the_meter_shape(api: httpx.Client, account: Account) -> None:
    """spec §2.G: {"data": {id, type: "ct_meter", latest_data {l1,l2,l3,updated_at: "-"}, created_at, updated_at}}."""
    response = api.post(meters_path(account), json={})
    assert response.status_code == 201
    assert list(response.json()) == ["data"]
    meter = response.json()["data"]
    assert list(meter) == METER_KEYS
    assert meter["type"] == "ct_meter" and meter["charger_id"] is None
    assert meter["latest_data"] == NEVER
    assert RESOURCE_TIME.match(meter["created_at"]) and RESOURCE_TIME.match(meter["updated_at"])


def test_create_meter_takes_a_type_and_a_charger_of_the_team(api: httpx.Client, account: Account) -> None:
    charger = api.post(
        f"/api/v2/teams/{account.team_id}/chargers", json={"identity": f"MT-{id(api)}-{utc_now().timestamp()}"}
    )
    assert charger.status_code == 201, charger.text
    meter = make_meter(api, account, type="p1_meter", charger_id=charger.json()["data"]["id"])
    assert (meter["type"], meter["charger_id"]) == ("p1_meter", charger.json()["data"]["id"])


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"type": "gas_meter"}, {"type": ["The selected type is invalid."]}),
        ({"type": 5}, {"type": ["The type field must be a string.", "The selected type is invalid."]}),
        ({"charger_id": "abc"}, {"charger_id": ["The charger id field must be an integer."]}),
        ({"charger_id": 2147483647}, {"charger_id": ["The selected charger id is invalid."]}),
        (
            {"type": "x", "charger_id": 2147483647},
            {"type": ["The selected type is invalid."], "charger_id": ["The selected charger id is invalid."]},
        ),
    ],
)
def test_create_meter_rejects_bad_values_with_laravel_messages(
    api: httpx.Client, account: Account, body: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    response = api.post(meters_path(account), json=body)
    assert errors_of(response) == errors
    first = next(iter(errors.values()))[0]
    more = sum(len(v) for v in errors.values()) - 1
    assert response.json()["message"] == first + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")


def test_a_charger_of_another_team_cannot_feed_a_meter(server: LiveServer, api: httpx.Client, account: Account) -> None:
    stranger = server.account("Stranger")
    with server.client(stranger) as theirs:
        identity = f"MT-{utc_now().timestamp()}".replace(".", "")
        charger = theirs.post(f"/api/v2/teams/{stranger.team_id}/chargers", json={"identity": identity}).json()["data"]
    response = api.post(meters_path(account), json={"charger_id": charger["id"]})
    assert errors_of(response) == {"charger_id": ["The selected charger id is invalid."]}


def test_meters_list_is_paginated_and_holds_only_the_teams_meters(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """spec §2.G "+ Pagination": Laravel simple pagination, 25 per page by default."""
    made = [make_meter(api, account) for _ in range(3)]
    stranger = server.account("Stranger")
    with server.client(stranger) as theirs:
        foreign = make_meter(theirs, stranger)
    body = api.get(meters_path(account), params={"per_page": 2}).json()
    assert [m["id"] for m in body["data"]] == [made[0]["id"], made[1]["id"]]
    assert body["links"]["next"] and body["meta"]["per_page"] == 2
    rest = api.get(meters_path(account), params={"per_page": 2, "page": 2}).json()
    assert [m["id"] for m in rest["data"]] == [made[2]["id"]] and rest["links"]["next"] is None
    assert foreign["uuid"] not in str(body) + str(rest)
    assert all(list(m) == METER_KEYS for m in body["data"])
    assert errors_of(api.get(meters_path(account), params={"per_page": 101}))


# -- readings ----------------------------------------------------------------------------------------------


def test_a_posted_reading_shows_in_latest_data_with_signed_amperes(api: httpx.Client, account: Account) -> None:
    """R-103: latest_data holds the last per-phase readings, signed (negative = export), ms timestamp."""
    meter = make_meter(api, account)
    response = post_reading(api, account, meter, l1=4.8, l2="2.2", l3=-19, timestamp="2025-03-31 12:00:00")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["latest_data"] == {
        "l1": 4.8,
        "l2": 2.2,
        "l3": -19,
        "updated_at": "2025-03-31T12:00:00.000Z",
    }
    listed = api.get(meters_path(account)).json()["data"]
    assert listed[0]["latest_data"] == response.json()["data"]["latest_data"]


def test_a_reading_is_found_by_meter_uuid_and_defaults_to_now(api: httpx.Client, account: Account) -> None:
    meter = make_meter(api, account)
    before = datetime.now(UTC).replace(tzinfo=None).replace(microsecond=0)  # naive UTC, as the server stores
    response = post_reading(api, account, meter["uuid"], l1=6)
    assert response.status_code == 200, response.text
    data = response.json()["data"]["latest_data"]
    assert (data["l1"], data["l2"], data["l3"]) == (6, 0, 0)
    assert datetime.strptime(data["updated_at"], "%Y-%m-%dT%H:%M:%S.%fZ") >= before


def test_an_older_reading_does_not_replace_a_newer_one(api: httpx.Client, account: Account) -> None:
    meter = make_meter(api, account)
    post_reading(api, account, meter, l1=10, timestamp="2025-03-31 12:00:10")
    response = post_reading(api, account, meter, l1=99, timestamp="2025-03-31 12:00:00")
    assert response.json()["data"]["latest_data"]["l1"] == 10
    response = post_reading(api, account, meter, l1=11, timestamp="2025-03-31 12:00:10")
    assert response.json()["data"]["latest_data"]["l1"] == 11


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"l1": ["The l1 field is required."]}),
        ({"l1": "x", "l2": True}, {"l1": ["The l1 field must be a number."], "l2": ["The l2 field must be a number."]}),
        ({"l1": 100001}, {"l1": ["The l1 field must not be greater than 100000."]}),
        ({"l1": 1, "l3": -100001}, {"l3": ["The l3 field must be at least -100000."]}),
        ({"l1": 1, "power": "lots"}, {"power": ["The power field must be a number."]}),
        (
            {"l1": 1, "timestamp": "2025-03-31T12:00:00Z"},
            {"timestamp": ["The timestamp field must match the format Y-m-d H:i:s."]},
        ),
    ],
)
def test_readings_are_checked_with_laravel_messages(
    api: httpx.Client, account: Account, body: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    meter = make_meter(api, account)
    assert errors_of(post_reading(api, account, meter, **body)) == errors


def test_a_reading_far_in_the_future_is_refused(api: httpx.Client, account: Account) -> None:
    """R-94 (Decision) for meters: more than 5 minutes ahead is refused."""
    meter = make_meter(api, account)
    future = reading_time(datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=10))
    response = post_reading(api, account, meter, l1=1, timestamp=future)
    assert errors_of(response) == {"timestamp": ["The timestamp field must be a date before or equal to now."]}


def test_another_teams_meter_is_a_404_before_the_body_is_checked(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    stranger = server.account("Stranger")
    with server.client(stranger) as theirs:
        foreign = make_meter(theirs, stranger)
    for ref in (foreign["id"], foreign["uuid"], "nope"):
        response = post_reading(api, account, str(ref), l1="not a number")
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
    with server.client(stranger) as theirs:
        assert theirs.get(meters_path(stranger)).json()["data"][0]["latest_data"] == NEVER


# -- a meter fed by a charger ------------------------------------------------------------------------------


def test_a_meter_with_a_charger_reads_its_connector_0_inlet_currents(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """The charger's grid-side (Inlet, connector 0) Current.Import per phase feeds the meter; newer wins."""
    station = make_station(server, api, account)
    meter = make_meter(api, account, charger_id=station.charger["id"])
    at = utc_now() - timedelta(seconds=20)
    inlet = [
        {**current(phase, amps), "location": "Inlet"} for phase, amps in (("L1", "20.5"), ("L2", "-4"), ("L3", "0"))
    ]
    send(server, station, [(0, at, inlet), (1, at, [current("L1", "99")])])
    listed = api.get(meters_path(account)).json()["data"][0]
    assert listed["latest_data"] == {"l1": 20.5, "l2": -4, "l3": 0, "updated_at": stamp(at)}
    older = post_reading(api, account, meter, l1=1, timestamp=reading_time(at - timedelta(minutes=1)))
    assert older.json()["data"]["latest_data"]["l1"] == 20.5
    newer = post_reading(api, account, meter, l1=2, l2=3, l3=4)
    assert newer.json()["data"]["latest_data"]["l1"] == 2


# -- the group meter -----------------------------------------------------------------------------------------


def test_a_group_with_a_meter_shows_its_readings_and_power(api: httpx.Client, account: Account) -> None:
    """R-103: latest_data of the meter, power {total, l1, l2, l3} in W (230 V * I where not posted)."""
    site = make_site(api, account)
    group = make_group(api, account, site)
    meter = make_meter(api, account)
    assert api.put(f"{groups_path(account, site)}/{group['id']}", json={"meter_id": meter["id"]}).status_code == 200
    assert group_meter(api, account, site, group)["latest_data"] == NEVER
    assert group_meter(api, account, site, group)["power"] == {"total": None, "l1": None, "l2": None, "l3": None}
    post_reading(api, account, meter, l1=10, l2=-5, l3=0.5, power_l1=2400, timestamp="2025-03-31 12:00:00")
    data = group_meter(api, account, site, group)
    assert (data["uuid"], data["id"], data["type"]) == (meter["uuid"], meter["id"], "ct_meter")
    assert data["latest_data"] == {"l1": 10, "l2": -5, "l3": 0.5, "updated_at": "2025-03-31T12:00:00.000Z"}
    assert data["power"] == {"total": 1365, "l1": 2400, "l2": -1150, "l3": 115}
    assert RESOURCE_TIME.match(data["created_at"])
    post_reading(api, account, meter, l1=1, power=5000.25, timestamp="2025-03-31 12:00:01")
    assert group_meter(api, account, site, group)["power"]["total"] == 5000.3


def test_a_group_cannot_take_another_teams_meter(server: LiveServer, api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    stranger = server.account("Stranger")
    with server.client(stranger) as theirs:
        foreign = make_meter(theirs, stranger)
    response = api.post(groups_path(account, site), json={"total_amps": 16, "meter_id": foreign["id"]})
    assert errors_of(response) == {"meter_id": ["The selected meter id is invalid."]}


def test_a_group_without_a_meter_is_a_virtual_meter_of_zeros_before_any_data(
    api: httpx.Client, account: Account
) -> None:
    """DESIGN: always 200; type "virtual", id and uuid null; updated_at "-" when no data arrived (R-103)."""
    site = make_site(api, account)
    data = group_meter(api, account, site, root_of(api, account, site))
    assert data == {
        "uuid": None,
        "id": None,
        "type": "virtual",
        "latest_data": NEVER,
        "power": {"total": None, "l1": None, "l2": None, "l3": None},
        "created_at": None,
        "updated_at": None,
    }


def test_the_virtual_meter_sums_the_groups_connectors_and_its_sub_groups(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """R-104: currents per phase from R-101 and power from R-100, summed over the group and, recursively, sub-groups."""
    upper = make_station(server, api, account)
    site = upper.site
    lower = _second_station(server, api, account, site)
    child = make_group(api, account, site)
    grandchild = make_group(api, account, site, group_id=child["id"])
    assigned = api.post(
        f"{groups_path(account, site)}/{grandchild['id']}/chargers", json={"charger": lower.charger["id"]}
    )
    assert assigned.status_code == 200, assigned.text
    at = utc_now()
    three = [current("L1", "16"), current("L2", "16"), current("L3", "16")]
    send(server, upper, [(1, at, three), (2, at, [current("L1", "6"), power("1400")])])
    send(server, lower, [(1, at - timedelta(seconds=5), [current("L1", "10"), current("L2", "-2"), power("1840")])])

    root = group_meter(api, account, site, root_of(api, account, site))
    assert root["type"] == "virtual" and root["id"] is None
    assert root["latest_data"] == {"l1": 32, "l2": 14, "l3": 16, "updated_at": stamp(at)}
    # Per phase 230 V * I (no per-phase power was sent): 3 * 16 A, 6 A on L1, and 10 A / -2 A.
    assert root["power"] == {"total": 11040 + 1400 + 1840, "l1": 3680 + 1380 + 2300, "l2": 3680 - 460, "l3": 3680}
    for group in (child, grandchild):
        data = group_meter(api, account, site, group)
        assert data["latest_data"] == {"l1": 10, "l2": -2, "l3": 0, "updated_at": stamp(at - timedelta(seconds=5))}
        assert data["power"]["total"] == 1840


def test_stale_connectors_count_as_zero_in_the_virtual_meter(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """R-102 inside R-104: a connector without a transaction and with old data adds nothing."""
    station = make_station(server, api, account)
    send(server, station, [(1, utc_now() - timedelta(minutes=10), [current("L1", "16"), power("3680")])])
    data = group_meter(api, account, station.site, root_of(api, account, station.site))
    assert (data["latest_data"]["l1"], data["power"]["total"]) == (0, 0)


def test_group_meter_lookups_are_scoped(server: LiveServer, api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    other = make_site(api, account)
    group = make_group(api, account, other)
    response = api.get(f"{groups_path(account, site)}/{group['id']}/meter")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def _second_station(server: LiveServer, api: httpx.Client, account: Account, site: dict[str, Any]) -> Station:
    """Another charger with connectors 1 and 2, on the same site."""
    station = make_station(server, api, account)
    moved = api.delete(f"/api/v2/teams/{account.team_id}/sites/{station.site['id']}/chargers/{station.charger['id']}")
    assert moved.status_code == 204, moved.text
    pincode = server.run(lambda: _pincode(server, station.charger["identity"]))
    attach = {"identity": station.charger["identity"], "pincode": pincode}
    response = api.post(f"/api/v2/teams/{account.team_id}/sites/{site['id']}/attach-charger", json=attach)
    assert response.status_code == 200, response.text
    return Station(account, site, station.charger, station.connectors)


async def _pincode(server: LiveServer, identity: str) -> str:
    async with server.runtime.db.read() as conn:
        row = await charger_store.get_charger_by_identity(conn, identity)
    assert row is not None
    return str(row["pincode"])


def test_a_group_of_many_connectors_is_summed_the_same_way(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """R-104 over more connectors than are computed inline (the maths then runs in a thread)."""
    station = make_station(server, api, account)

    async def add_connectors() -> None:
        async with server.runtime.db.write() as conn:
            for number in range(3, 3 + INLINE_CONNECTORS):
                await charger_store.upsert_connector(conn, station.charger["id"], number, {"phases": 1})

    server.run(add_connectors)
    at = utc_now()
    send(server, station, [(number, at, [current("L1", "6")]) for number in range(1, 3 + INLINE_CONNECTORS)])
    data = group_meter(api, account, station.site, root_of(api, account, station.site))
    count = 2 + INLINE_CONNECTORS
    assert data["latest_data"] == {"l1": 6 * count, "l2": 0, "l3": 0, "updated_at": stamp(at)}
    assert data["power"] == {"total": 1380 * count, "l1": 1380 * count, "l2": None, "l3": None}
