"""Connectors of a site: spec/volttime-api.md A8 and DESIGN (connector fields, group inheritance)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from tests.conftest import LiveServer
from tests.support.chargers import add_connector, attach, charger_row, create_site_charger, make_site, unique_identity
from voltline.services.accounts import Account
from voltline.store._common import new_uuid, stamped
from voltline.store.schema import groups

CONNECTOR_KEYS = [
    "uuid",
    "id",
    "charger_id",
    "connector_id",
    "evse_id",
    "status",
    "error",
    "error_info",
    "max_amperage",
    "max_voltage",
    "phases",
    "phase_rotation",
    "group_id",
    "smart_charging_state",
    "charger",
    "created_at",
    "updated_at",
]
NESTED_CHARGER_KEYS = ["uuid", "id", "identity", "connection_status", "status"]
NOT_FOUND = {"message": "Not found."}


def make_group(server: LiveServer, site_id: int, parent_id: int) -> int:
    """A child group under the given group of the site."""
    values = {"uuid": new_uuid(), "site_id": site_id, "group_id": parent_id, "total_amps": 16, "name": "Row A"}

    async def make() -> int:
        async with server.runtime.db.write() as conn:
            return int(await conn.scalar(insert(groups).values(stamped(values, created=True)).returning(groups.c.id)))

    return server.run(make)


def site_with_connector(server: LiveServer, api: httpx.Client, account: Account) -> tuple[dict[str, Any], ...]:
    """A site, a charger on it and its connector 1."""
    site = make_site(server, account.team_id)
    charger = create_site_charger(api, account.team_id, site["id"], unique_identity())
    connector = add_connector(server, charger["id"], 1, status="Available", error="NoError", max_amperage=32)
    return site, charger, connector


def connectors_path(team_id: int, site_id: int | str) -> str:
    """The site's connector list."""
    return f"/api/v2/teams/{team_id}/sites/{site_id}/connectors"


def test_site_connectors_have_the_documented_keys_and_inherit_the_chargers_group(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """spec A8: items nest their charger; DESIGN: group_id is the connector's, else its charger's."""
    site, charger, connector = site_with_connector(server, api, account)
    body = api.get(connectors_path(account.team_id, site["uuid"])).json()
    assert list(body) == ["data", "links", "meta"]
    [item] = body["data"]
    assert list(item) == CONNECTOR_KEYS
    assert list(item["charger"]) == NESTED_CHARGER_KEYS
    assert item["charger"] == {
        "uuid": charger["uuid"],
        "id": charger["id"],
        "identity": charger["identity"],
        "connection_status": "never_seen",
        "status": None,
    }
    assert (item["id"], item["uuid"], item["charger_id"], item["connector_id"]) == (
        connector["id"],
        connector["uuid"],
        charger["id"],
        1,
    )
    assert (item["status"], item["error"], item["max_amperage"], item["phases"]) == ("Available", "NoError", 32, 3)
    assert (item["evse_id"], item["max_voltage"], item["phase_rotation"]) == (None, None, None)
    assert item["smart_charging_state"] == "none"
    assert item["group_id"] == site["root_group_id"]


def test_site_connectors_are_paginated_and_only_of_chargers_on_the_site(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    site, elsewhere = make_site(server, account.team_id), make_site(server, account.team_id)
    first = create_site_charger(api, account.team_id, site["id"], unique_identity())
    second = create_site_charger(api, account.team_id, site["id"], unique_identity())
    other = create_site_charger(api, account.team_id, elsewhere["id"], unique_identity())
    for charger_id, number in ((second["id"], 1), (first["id"], 2), (first["id"], 1), (other["id"], 1)):
        add_connector(server, charger_id, number)
    page = api.get(connectors_path(account.team_id, site["id"]), params={"per_page": 2}).json()
    assert [(c["charger_id"], c["connector_id"]) for c in page["data"]] == [(first["id"], 1), (first["id"], 2)]
    assert page["links"]["next"] is not None and page["meta"]["to"] == 2
    rest = api.get(connectors_path(account.team_id, site["id"]), params={"per_page": 2, "page": 2}).json()
    assert [(c["charger_id"], c["connector_id"]) for c in rest["data"]] == [(second["id"], 1)]
    assert rest["links"]["next"] is None


def test_another_teams_site_connectors_are_404(server: LiveServer, api: httpx.Client, account: Account) -> None:
    other = server.account()
    site = make_site(server, other.team_id)
    response = api.get(connectors_path(account.team_id, site["id"]))
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert api.get(connectors_path(other.team_id, site["id"])).status_code == 403


def test_single_charger_connectors_have_the_site_shape_without_the_charger(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    _site, charger, _connector = site_with_connector(server, api, account)
    listed = api.get(connectors_path(account.team_id, _site["id"])).json()["data"][0]
    detail = api.get(f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}").json()["data"]["connectors"]
    assert list(detail[0]) == [key for key in CONNECTOR_KEYS if key != "charger"]
    assert detail[0] == {key: value for key, value in listed.items() if key != "charger"}


# -- updating a connector ----------------------------------------------------------------------


def test_put_connector_changes_limits_phases_and_rotation(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    site, _charger, connector = site_with_connector(server, api, account)
    path = f"{connectors_path(account.team_id, site['id'])}/{connector['uuid']}"
    body = {"max_amperage": 16, "max_voltage": 230, "phases": 1, "phase_rotation": "RST"}
    response = api.put(path, json=body)
    assert response.status_code == 200
    data = response.json()["data"]
    assert list(data) == CONNECTOR_KEYS
    assert {key: data[key] for key in body} == body
    cleared = api.put(path, json={"max_amperage": None, "max_voltage": None, "phase_rotation": None, "phases": "3"})
    assert {key: cleared.json()["data"][key] for key in body} == {
        "max_amperage": None,
        "max_voltage": None,
        "phases": 3,
        "phase_rotation": None,
    }
    assert api.put(path, json={"max_amperage": 6}).json()["data"]["max_amperage"] == 6
    assert api.put(path, json={"max_amperage": 1000, "max_voltage": 1}).status_code == 200


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"max_amperage": 5}, {"max_amperage": ["The max amperage field must be at least 6."]}),
        ({"max_amperage": 1001}, {"max_amperage": ["The max amperage field must not be greater than 1000."]}),
        ({"max_amperage": 10**30}, {"max_amperage": ["The max amperage field must not be greater than 1000."]}),
        ({"max_amperage": 16.5}, {"max_amperage": ["The max amperage field must be an integer."]}),
        ({"max_amperage": "sixteen"}, {"max_amperage": ["The max amperage field must be an integer."]}),
        ({"max_voltage": 0}, {"max_voltage": ["The max voltage field must be at least 1."]}),
        ({"max_voltage": 1001}, {"max_voltage": ["The max voltage field must not be greater than 1000."]}),
        ({"max_voltage": True}, {"max_voltage": ["The max voltage field must be an integer."]}),
        ({"phases": 2}, {"phases": ["The selected phases is invalid."]}),
        ({"phases": None}, {"phases": ["The selected phases is invalid."]}),
        ({"phases": [3]}, {"phases": ["The selected phases is invalid."]}),
        ({"phase_rotation": "RRR"}, {"phase_rotation": ["The selected phase rotation is invalid."]}),
        ({"group_id": "root"}, {"group_id": ["The group id field must be an integer."]}),
        ({"group_id": 2**31}, {"group_id": ["The selected group id is invalid."]}),
        ({"group_id": 0}, {"group_id": ["The selected group id is invalid."]}),
    ],
)
def test_put_connector_rejects_bad_values_and_changes_nothing(
    server: LiveServer, api: httpx.Client, account: Account, body: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    site, _charger, connector = site_with_connector(server, api, account)
    path = f"{connectors_path(account.team_id, site['id'])}/{connector['id']}"
    before = api.get(connectors_path(account.team_id, site["id"])).json()["data"]
    response = api.put(path, json=body)
    assert response.status_code == 422
    assert response.json() == {"message": next(iter(errors.values()))[0], "errors": errors}
    assert api.get(connectors_path(account.team_id, site["id"])).json()["data"] == before


def test_put_connector_collects_every_error(server: LiveServer, api: httpx.Client, account: Account) -> None:
    site, _charger, connector = site_with_connector(server, api, account)
    path = f"{connectors_path(account.team_id, site['id'])}/{connector['id']}"
    response = api.put(path, json={"max_amperage": 1, "max_voltage": 0, "phases": 2})
    assert response.json()["message"] == "The max amperage field must be at least 6. (and 2 more errors)"


def test_connector_group_can_be_set_to_a_group_of_the_site_and_back_to_inherit(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    site, charger, connector = site_with_connector(server, api, account)
    child = make_group(server, site["id"], site["root_group_id"])
    path = f"{connectors_path(account.team_id, site['id'])}/{connector['id']}"
    assert api.put(path, json={"group_id": child}).json()["data"]["group_id"] == child
    detail = api.get(f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}").json()["data"]
    assert detail["connectors"][0]["group_id"] == child
    assert api.put(path, json={"group_id": None}).json()["data"]["group_id"] == site["root_group_id"]


def test_connector_group_of_another_site_is_invalid(server: LiveServer, api: httpx.Client, account: Account) -> None:
    site, _charger, connector = site_with_connector(server, api, account)
    elsewhere = make_site(server, account.team_id)
    path = f"{connectors_path(account.team_id, site['id'])}/{connector['id']}"
    response = api.put(path, json={"group_id": elsewhere["root_group_id"]})
    assert response.status_code == 422
    assert response.json() == {
        "message": "The selected group id is invalid.",
        "errors": {"group_id": ["The selected group id is invalid."]},
    }
    assert api.get(connectors_path(account.team_id, site["id"])).json()["data"][0]["group_id"] == site["root_group_id"]


def test_put_connector_of_a_charger_on_another_site_is_404(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    site, _charger, connector = site_with_connector(server, api, account)
    elsewhere = make_site(server, account.team_id)
    response = api.put(f"{connectors_path(account.team_id, elsewhere['id'])}/{connector['id']}", json={"phases": 1})
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    stranger = server.account()
    with server.client(stranger) as stranger_api:
        theirs = make_site(server, stranger.team_id)
        path = f"{connectors_path(stranger.team_id, theirs['id'])}/{connector['id']}"
        assert stranger_api.put(path, json={"phases": 1}).status_code == 404
    for ref in ("999999999", "99999999999999999"):
        assert api.put(f"{connectors_path(account.team_id, site['id'])}/{ref}", json={}).status_code == 404
    assert api.get(connectors_path(account.team_id, site["id"])).json()["data"][0]["phases"] == 3


def test_detach_and_attach_move_connectors_to_the_new_sites_root_group(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """A connector's own group belongs to the old site; after a move it inherits again."""
    site, charger, connector = site_with_connector(server, api, account)
    child = make_group(server, site["id"], site["root_group_id"])
    api.put(f"{connectors_path(account.team_id, site['id'])}/{connector['id']}", json={"group_id": child})
    assert api.delete(f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers/{charger['id']}").status_code == 204
    assert api.get(connectors_path(account.team_id, site["id"])).json()["data"] == []
    detail = api.get(f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}").json()["data"]
    assert detail["connectors"][0]["group_id"] is None
    new_site = make_site(server, account.team_id)
    pincode = charger_row(server, charger["id"])["pincode"]
    assert attach(
        api, account.team_id, new_site["id"], {"identity": charger["identity"], "pincode": pincode}
    ).is_success
    [item] = api.get(connectors_path(account.team_id, new_site["id"])).json()["data"]
    assert item["group_id"] == new_site["root_group_id"]


def test_upsert_connector_creates_once_and_then_updates(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    site, charger, connector = site_with_connector(server, api, account)
    again = add_connector(server, charger["id"], 1, status="Charging", evse_id=1)
    assert (again["id"], again["status"], again["evse_id"], again["max_amperage"]) == (
        connector["id"],
        "Charging",
        1,
        32,
    )
    [item] = api.get(connectors_path(account.team_id, site["id"])).json()["data"]
    assert (item["status"], item["evse_id"]) == ("Charging", 1)
