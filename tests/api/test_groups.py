"""Load-balancing groups: spec/volttime-api.md §1.1 (site group), A13; DESIGN (tree, root, assignment)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from tests.conftest import LiveServer
from tests.support.groups import groups_path, make_group, root_of
from tests.support.sites import TIMESTAMP, errors_of, make_site, sites_path
from voltline.services.accounts import Account
from voltline.store._common import utcnow
from voltline.store.schema import chargers, connectors, meters

GROUP_KEYS = [
    "uuid",
    "id",
    "site_id",
    "group_id",
    "meter_id",
    "name",
    "total_amps",
    "method",
    "net_type",
    "solar_additional_amps",
    "peak_shaving_enabled",
    "peak_shaving_threshold",
    "solar_always_charge",
    "solar_always_charge_amps",
    "created_at",
    "updated_at",
]
INVALID_PARENT = {"group_id": ["The selected group id is invalid."]}


def insert_charger(
    server: LiveServer, account: Account, site_id: int | None, group_id: int | None = None
) -> dict[str, Any]:
    """A charger of the team in the site with connectors 1 and 2 (the chargers API is not used here)."""

    async def insert_rows() -> dict[str, Any]:
        now = utcnow()
        values = {"uuid": str(uuid.uuid4()), "identity": f"GRP-{uuid.uuid4().hex[:12]}", "pincode": "12345678"}
        values |= {"team_id": account.team_id, "site_id": site_id, "group_id": group_id}
        async with server.runtime.db.write() as conn:
            charger_id = await conn.scalar(
                insert(chargers).values(**values, created_at=now, updated_at=now).returning(chargers.c.id)
            )
            for number in (1, 2):
                await conn.execute(
                    insert(connectors).values(
                        uuid=str(uuid.uuid4()),
                        charger_id=charger_id,
                        connector_id=number,
                        group_id=group_id,
                        created_at=now,
                        updated_at=now,
                    )
                )
        return {**values, "id": charger_id}

    return server.run(insert_rows)


def insert_meter(server: LiveServer, account: Account) -> int:
    """A meter of the account's team."""

    async def insert_row() -> int:
        now = utcnow()
        async with server.runtime.db.write() as conn:
            row = {"uuid": str(uuid.uuid4()), "team_id": account.team_id, "created_at": now, "updated_at": now}
            return int(await conn.scalar(insert(meters).values(row).returning(meters.c.id)) or 0)

    return server.run(insert_row)


def group_ids_of_charger(server: LiveServer, charger_id: int) -> tuple[int | None, list[int | None]]:
    """The charger's group and its connectors' groups, read from the database."""

    async def read() -> tuple[int | None, list[int | None]]:
        async with server.runtime.db.read() as conn:
            charger_group = await conn.scalar(select(chargers.c.group_id).where(chargers.c.id == charger_id))
            query = select(connectors.c.group_id).where(connectors.c.charger_id == charger_id)
            rows = await conn.execute(query.order_by(connectors.c.connector_id))
            return charger_group, [row.group_id for row in rows]

    return server.run(read)


# --- list and read ------------------------------------------------------------------------------


def test_groups_list_is_paginated_and_starts_with_the_root(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """spec A13 / DESIGN: lists use simple pagination; the root group is made with the site."""
    site = make_site(api, account, main_fuse_amperage=35)
    child = make_group(api, account, site, name="Garage")
    base = f"{server.base_url}{groups_path(account, site)}"
    body = api.get(groups_path(account, site), params={"per_page": 1}).json()
    assert list(body) == ["data", "links", "meta"]
    root = body["data"][0]
    assert list(root) == GROUP_KEYS
    assert {key: root[key] for key in GROUP_KEYS[2:14]} == {
        "site_id": site["id"],
        "group_id": None,
        "meter_id": None,
        "name": None,
        "total_amps": 35,
        "method": "boost",
        "net_type": None,
        "solar_additional_amps": 0,
        "peak_shaving_enabled": False,
        "peak_shaving_threshold": 0,
        "solar_always_charge": False,
        "solar_always_charge_amps": 0,
    }
    assert body["links"] == {
        "first": f"{base}?per_page=1&page=1",
        "last": None,
        "prev": None,
        "next": f"{base}?per_page=1&page=2",
    }
    assert body["meta"] == {"current_page": 1, "from": 1, "path": base, "per_page": 1, "to": 1}
    second = api.get(groups_path(account, site), params={"per_page": 1, "page": 2}).json()
    assert [group["id"] for group in second["data"]] == [child["id"]] and second["links"]["next"] is None


def test_a_group_is_found_by_id_and_by_uuid(api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    group = make_group(api, account, site)
    for ref in (group["id"], group["uuid"]):
        assert api.get(f"{groups_path(account, site)}/{ref}").json() == {"data": group}


def test_a_group_of_another_site_or_team_is_a_404(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """DESIGN tenancy: a child resource not in the path's site/team is a 404."""
    site, other_site = make_site(api, account), make_site(api, account)
    foreign = make_group(api, account, other_site)
    other = server.account("Other")
    with server.client(other) as other_api:
        their_site = make_site(other_api, other)
        their_group = make_group(other_api, other, their_site)
    paths = [
        f"{groups_path(account, site)}/{foreign['id']}",
        f"{groups_path(account, site)}/{their_group['uuid']}",
        f"{groups_path(account, their_site)}/{their_group['id']}",
        f"{groups_path(account, site)}/999999999",
        f"{groups_path(account, site)}/99999999999",
        f"{groups_path(account, site)}/root",
    ]
    for path in paths:
        for response in (api.get(path), api.put(path, json={"total_amps": 10}), api.delete(path)):
            assert (response.status_code, response.json()) == (404, {"message": "Not found."}), path
    collection = groups_path(account, their_site)
    for response in (api.get(collection), api.post(collection, json={"total_amps": 10})):
        assert (response.status_code, response.json()) == (404, {"message": "Not found."})


# --- create -------------------------------------------------------------------------------------


def test_create_group_defaults_to_a_child_of_the_root(api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    root = root_of(api, account, site)
    response = api.post(groups_path(account, site), json={"total_amps": 20})
    assert response.status_code == 201
    group = response.json()["data"]
    assert list(group) == GROUP_KEYS
    assert (group["site_id"], group["group_id"], group["total_amps"], group["method"]) == (
        site["id"],
        root["id"],
        20,
        "boost",
    )
    assert TIMESTAMP.match(group["created_at"]) and len(group["uuid"]) == 36


def test_create_group_stores_every_field(server: LiveServer, api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    parent = make_group(api, account, site)
    meter_id = insert_meter(server, account)
    fields = {
        "name": "Carport",
        "total_amps": 32,
        "method": "solar",
        "net_type": "TT",
        "group_id": parent["id"],
        "meter_id": meter_id,
        "solar_additional_amps": 4,
        "peak_shaving_enabled": True,
        "peak_shaving_threshold": 20,
        "solar_always_charge": "1",
        "solar_always_charge_amps": 6,
    }
    group = make_group(api, account, site, **fields)
    assert {key: group[key] for key in fields} == {**fields, "solar_always_charge": True}


@pytest.mark.parametrize("method", [None, ""])
def test_a_null_method_is_boost(api: httpx.Client, account: Account, method: Any) -> None:
    assert make_group(api, account, make_site(api, account), method=method)["method"] == "boost"


def test_parent_group_id_is_an_alias_for_group_id(api: httpx.Client, account: Account) -> None:
    """DESIGN: `parent_group_id` is accepted as an alias in request bodies."""
    site = make_site(api, account)
    parent = make_group(api, account, site)
    assert make_group(api, account, site, parent_group_id=parent["id"])["group_id"] == parent["id"]
    response = api.post(groups_path(account, site), json={"total_amps": 10, "parent_group_id": 999999999})
    assert errors_of(response) == INVALID_PARENT


def test_create_group_rejects_a_parent_outside_the_site(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    site, other_site = make_site(api, account), make_site(api, account)
    other = server.account("Other")
    with server.client(other) as other_api:
        their_root = root_of(other_api, other, make_site(other_api, other))
    for parent in (root_of(api, account, other_site)["id"], their_root["id"], 999999999, 10**15):
        response = api.post(groups_path(account, site), json={"total_amps": 10, "group_id": parent})
        assert response.json() == {"message": "The selected group id is invalid.", "errors": INVALID_PARENT}


def test_create_group_rejects_a_meter_of_another_team(server: LiveServer, api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    other = server.account("Other")
    for meter_id in (insert_meter(server, other), 999999999, 10**15):
        response = api.post(groups_path(account, site), json={"total_amps": 10, "meter_id": meter_id})
        assert errors_of(response) == {"meter_id": ["The selected meter id is invalid."]}


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"total_amps": None}, {"total_amps": ["The total amps field is required."]}),
        ({"total_amps": 0}, {"total_amps": ["The total amps field must be at least 1."]}),
        ({"total_amps": "x"}, {"total_amps": ["The total amps field must be an integer."]}),
        ({"total_amps": 2.5}, {"total_amps": ["The total amps field must be an integer."]}),
        ({"total_amps": 10**12}, {"total_amps": ["The total amps field must not be greater than 2147483647."]}),
        ({"name": "x" * 256}, {"name": ["The name field must not be greater than 255 characters."]}),
        ({"name": 5}, {"name": ["The name field must be a string."]}),
        ({"method": "turbo"}, {"method": ["The selected method is invalid."]}),
        ({"net_type": "TNC"}, {"net_type": ["The selected net type is invalid."]}),
        ({"group_id": "root"}, {"group_id": ["The group id field must be an integer."]}),
        ({"meter_id": [1]}, {"meter_id": ["The meter id field must be an integer."]}),
        (
            {"solar_additional_amps": -1},
            {"solar_additional_amps": ["The solar additional amps field must be at least 0."]},
        ),
        (
            {"peak_shaving_threshold": "a"},
            {"peak_shaving_threshold": ["The peak shaving threshold field must be an integer."]},
        ),
        (
            {"solar_always_charge_amps": None},
            {"solar_always_charge_amps": ["The solar always charge amps field must be an integer."]},
        ),
        (
            {"peak_shaving_enabled": "yes"},
            {"peak_shaving_enabled": ["The peak shaving enabled field must be true or false."]},
        ),
        ({"solar_always_charge": 2}, {"solar_always_charge": ["The solar always charge field must be true or false."]}),
    ],
)
def test_create_group_rejects_bad_values_with_laravel_messages(
    api: httpx.Client, account: Account, fields: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    site = make_site(api, account)
    response = api.post(groups_path(account, site), json={"total_amps": 16, **fields})
    assert response.json() == {"message": next(iter(errors.values()))[0], "errors": errors}
    assert response.status_code == 422


def test_rule_and_lookup_errors_are_reported_together_in_rule_order(api: httpx.Client, account: Account) -> None:
    """DESIGN: every error is collected; the summary counts the rest."""
    site = make_site(api, account)
    response = api.post(
        groups_path(account, site), json={"total_amps": 0, "method": "x", "group_id": 999999999, "meter_id": 999999999}
    )
    assert response.json() == {
        "message": "The total amps field must be at least 1. (and 3 more errors)",
        "errors": {
            "total_amps": ["The total amps field must be at least 1."],
            "method": ["The selected method is invalid."],
            "group_id": ["The selected group id is invalid."],
            "meter_id": ["The selected meter id is invalid."],
        },
    }


# --- update -------------------------------------------------------------------------------------


def test_update_group_changes_only_the_fields_sent(api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    group = make_group(api, account, site, name="Old", net_type="TN")
    response = api.put(f"{groups_path(account, site)}/{group['uuid']}", json={"name": "New", "total_amps": 40})
    assert response.status_code == 200
    updated = response.json()["data"]
    assert updated == {**group, "name": "New", "total_amps": 40, "updated_at": updated["updated_at"]}


def test_update_group_moves_it_under_a_sibling_and_null_means_the_root(api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    root = root_of(api, account, site)
    first, second = make_group(api, account, site), make_group(api, account, site)
    path = f"{groups_path(account, site)}/{second['id']}"
    assert api.put(path, json={"group_id": first["id"]}).json()["data"]["group_id"] == first["id"]
    assert api.put(path, json={"parent_group_id": None}).json()["data"]["group_id"] == root["id"]


def test_a_group_cannot_move_under_itself_or_its_descendants(api: httpx.Client, account: Account) -> None:
    """A parent that is the group itself or below it would cut the tree."""
    site = make_site(api, account)
    top = make_group(api, account, site)
    middle = make_group(api, account, site, group_id=top["id"])
    bottom = make_group(api, account, site, group_id=middle["id"])
    path = f"{groups_path(account, site)}/{top['id']}"
    for parent in (top["id"], middle["id"], bottom["id"]):
        assert errors_of(api.put(path, json={"group_id": parent})) == INVALID_PARENT
    assert api.get(path).json()["data"]["group_id"] == root_of(api, account, site)["id"]


def test_the_root_group_keeps_no_parent_but_its_capacity_can_change(api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    root = root_of(api, account, site)
    child = make_group(api, account, site)
    path = f"{groups_path(account, site)}/{root['id']}"
    assert errors_of(api.put(path, json={"group_id": child["id"]})) == INVALID_PARENT
    assert errors_of(api.put(path, json={"parent_group_id": root["id"]})) == INVALID_PARENT
    updated = api.put(path, json={"group_id": None, "total_amps": 50}).json()["data"]
    assert (updated["group_id"], updated["total_amps"]) == (None, 50)


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"total_amps": None}, {"total_amps": ["The total amps field is required."]}),
        ({"total_amps": ""}, {"total_amps": ["The total amps field is required."]}),
        ({"total_amps": -4}, {"total_amps": ["The total amps field must be at least 1."]}),
        (
            {"peak_shaving_enabled": None},
            {"peak_shaving_enabled": ["The peak shaving enabled field must be true or false."]},
        ),
        ({"meter_id": 999999999}, {"meter_id": ["The selected meter id is invalid."]}),
        ({"group_id": 999999999}, INVALID_PARENT),
    ],
)
def test_update_group_rejects_bad_values(
    api: httpx.Client, account: Account, fields: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    site = make_site(api, account)
    group = make_group(api, account, site)
    assert errors_of(api.put(f"{groups_path(account, site)}/{group['id']}", json=fields)) == errors


def test_update_group_can_clear_the_meter(server: LiveServer, api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    group = make_group(api, account, site, meter_id=insert_meter(server, account))
    path = f"{groups_path(account, site)}/{group['id']}"
    assert api.put(path, json={"meter_id": None}).json()["data"]["meter_id"] is None


# --- delete -------------------------------------------------------------------------------------


def test_the_root_group_cannot_be_deleted(api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    root = root_of(api, account, site)
    response = api.delete(f"{groups_path(account, site)}/{root['uuid']}")
    assert response.status_code == 422
    assert response.json() == {
        "message": "The root group cannot be deleted.",
        "errors": {"group": ["The root group cannot be deleted."]},
    }


def test_deleting_a_group_moves_its_children_chargers_and_connectors_to_its_parent(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    site = make_site(api, account)
    parent = make_group(api, account, site)
    doomed = make_group(api, account, site, group_id=parent["id"])
    child = make_group(api, account, site, group_id=doomed["id"])
    charger = insert_charger(server, account, site["id"], group_id=doomed["id"])
    path = f"{groups_path(account, site)}/{doomed['id']}"
    response = api.delete(path)
    assert (response.status_code, response.content) == (204, b"")
    assert api.get(path).status_code == 404
    assert api.get(f"{groups_path(account, site)}/{child['id']}").json()["data"]["group_id"] == parent["id"]
    assert group_ids_of_charger(server, charger["id"]) == (parent["id"], [parent["id"], parent["id"]])
    assert [group["id"] for group in api.get(groups_path(account, site)).json()["data"]][1:] == [
        parent["id"],
        child["id"],
    ]


# --- charger assignment -------------------------------------------------------------------------


def test_assigning_a_charger_puts_it_in_the_group_and_its_connectors_inherit(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    site = make_site(api, account)
    root = root_of(api, account, site)
    group = make_group(api, account, site)
    charger = insert_charger(server, account, site["id"], group_id=root["id"])
    response = api.post(f"{groups_path(account, site)}/{group['id']}/chargers", json={"charger": charger["id"]})
    assert response.status_code == 200
    assert response.json() == {"data": group}
    assert group_ids_of_charger(server, charger["id"]) == (group["id"], [None, None])
    assert api.get(f"{sites_path(account)}/{site['id']}").json()["data"]["chargers_count"] == 1


@pytest.mark.parametrize("form", ["uuid", "upper uuid", "digits"])
def test_a_charger_is_named_by_id_or_uuid(server: LiveServer, api: httpx.Client, account: Account, form: str) -> None:
    site = make_site(api, account)
    group = make_group(api, account, site)
    charger = insert_charger(server, account, site["id"])
    ref = {"uuid": charger["uuid"], "upper uuid": charger["uuid"].upper(), "digits": str(charger["id"])}[form]
    response = api.post(f"{groups_path(account, site)}/{group['uuid']}/chargers", json={"charger": ref})
    assert response.status_code == 200
    assert group_ids_of_charger(server, charger["id"])[0] == group["id"]


def test_only_a_charger_of_the_site_can_be_assigned(server: LiveServer, api: httpx.Client, account: Account) -> None:
    site, other_site = make_site(api, account), make_site(api, account)
    group = make_group(api, account, site)
    elsewhere = insert_charger(server, account, other_site["id"])
    unattached = insert_charger(server, account, None)
    path = f"{groups_path(account, site)}/{group['id']}/chargers"
    for ref in (
        elsewhere["id"],
        elsewhere["uuid"],
        unattached["id"],
        999999999,
        10**15,
        "nope",
        1.5,
        True,
        [1],
        {"id": 1},
    ):
        response = api.post(path, json={"charger": ref})
        assert response.json() == {
            "message": "The selected charger is invalid.",
            "errors": {"charger": ["The selected charger is invalid."]},
        }, ref
    assert group_ids_of_charger(server, elsewhere["id"])[0] is None


@pytest.mark.parametrize("body", [{}, {"charger": None}, {"charger": ""}])
def test_assigning_needs_a_charger(api: httpx.Client, account: Account, body: dict[str, Any]) -> None:
    site = make_site(api, account)
    root = root_of(api, account, site)
    response = api.post(f"{groups_path(account, site)}/{root['id']}/chargers", json=body)
    assert errors_of(response) == {"charger": ["The charger field is required."]}


def test_assigning_to_an_unknown_group_is_a_404(server: LiveServer, api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    charger = insert_charger(server, account, site["id"])
    response = api.post(f"{groups_path(account, site)}/999999999/chargers", json={"charger": charger["id"]})
    assert (response.status_code, response.json()) == (404, {"message": "Not found."})


def test_groups_of_a_deleted_site_are_gone(api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    group = make_group(api, account, site)
    api.delete(f"{sites_path(account)}/{site['id']}")
    assert api.get(f"{groups_path(account, site)}/{group['id']}").status_code == 404
    assert api.post(groups_path(account, site), json={"total_amps": 10}).status_code == 404


def test_a_foreign_path_object_is_a_404_even_with_an_invalid_body(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """Laravel resolves route bindings before it validates: the 404 wins over the 422."""
    other = server.account("Other")
    with server.client(other) as other_api:
        their_site = make_site(other_api, other)
        their_group = root_of(other_api, other, their_site)
    site_path = f"{sites_path(account)}/{their_site['id']}"
    group_path = f"{groups_path(account, their_site)}/{their_group['id']}"
    responses = [
        api.put(site_path, json={"phase": 2}),
        api.put(f"{site_path}/smart-charging", json={}),
        api.post(groups_path(account, their_site), json={}),
        api.put(group_path, json={"total_amps": 0}),
        api.post(f"{group_path}/chargers", json={}),
    ]
    for response in responses:
        assert (response.status_code, response.json()) == (404, {"message": "Not found."})
