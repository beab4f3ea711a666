"""Sites of a team: spec/volttime-api.md §1.1 (site shape), A2-A4, DESIGN (soft delete, prices)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.support.sites import SITE_BODY, TIMESTAMP, errors_of, make_site, sites_path
from voltline.services.accounts import Account

SITE_KEYS = [
    "uuid",
    "id",
    "name",
    "address",
    "street",
    "postal_code",
    "house_number",
    "house_number_addition",
    "city",
    "country",
    "phase",
    "main_fuse_amperage",
    "load_management",
    "net_type",
    "smart_charging",
    "timezone",
    "price_zone",
    "kwh_price",
    "start_cost",
    "chargers_count",
    "created_at",
    "updated_at",
]


# --- create -------------------------------------------------------------------------------------


def test_create_site_returns_201_with_the_site_shape_and_defaults(api: httpx.Client, account: Account) -> None:
    """spec §1.1 recommended v2 site shape, plus DESIGN's timezone, price zone and prices."""
    response = api.post(sites_path(account), json=SITE_BODY)
    assert response.status_code == 201
    assert list(response.json()) == ["data"]
    site = response.json()["data"]
    assert list(site) == SITE_KEYS
    assert {key: site[key] for key in SITE_KEYS[2:20]} == {
        "name": "Home",
        "address": None,
        "street": "Main Street",
        "postal_code": "1234 AB",
        "house_number": 12,
        "house_number_addition": None,
        "city": "Utrecht",
        "country": "NL",
        "phase": 3,
        "main_fuse_amperage": 25,
        "load_management": False,
        "net_type": None,
        "smart_charging": "disabled",
        "timezone": None,
        "price_zone": None,
        "kwh_price": None,
        "start_cost": None,
        "chargers_count": 0,
    }
    assert isinstance(site["id"], int) and len(site["uuid"]) == 36
    assert TIMESTAMP.match(site["created_at"]) and TIMESTAMP.match(site["updated_at"])


def test_names_count_characters_not_bytes(api: httpx.Client, account: Account) -> None:
    assert make_site(api, account, name="é" * 255, city="Zürich")["name"] == "é" * 255


def test_create_site_stores_the_optional_electrical_fields(api: httpx.Client, account: Account) -> None:
    site = make_site(
        api,
        account,
        house_number=0,
        house_number_addition="bis",
        phase=1,
        main_fuse_amperage=10000,
        load_management=True,
        net_type="TT",
    )
    assert (site["house_number"], site["house_number_addition"], site["phase"]) == (0, "bis", 1)
    assert (site["main_fuse_amperage"], site["load_management"], site["net_type"]) == (10000, True, "TT")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"phase": "3"}, {"phase": 3}),
        ({"phase": 1}, {"phase": 1}),
        ({"main_fuse_amperage": 1}, {"main_fuse_amperage": 1}),
        ({"main_fuse_amperage": "40"}, {"main_fuse_amperage": 40}),
        ({"load_management": "1"}, {"load_management": True}),
        ({"load_management": 0}, {"load_management": False}),
        ({"net_type": None}, {"net_type": None}),
        ({"net_type": "IT"}, {"net_type": "IT"}),
        ({"house_number_addition": ""}, {"house_number_addition": None}),
        ({"house_number": "7"}, {"house_number": 7}),
        ({"name": "  Padded  "}, {"name": "Padded"}),
    ],
)
def test_create_site_accepts_the_values_laravel_accepts(
    api: httpx.Client, account: Account, fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Laravel's rules plus its TrimStrings and ConvertEmptyStringsToNull middleware."""
    site = make_site(api, account, **fields)
    assert {key: site[key] for key in expected} == expected


def test_create_site_requires_the_address_fields(api: httpx.Client, account: Account) -> None:
    """spec A3: name, street, house_number, postal_code, city and country are required."""
    response = api.post(sites_path(account), json={})
    assert response.status_code == 422
    assert response.json() == {
        "message": "The name field is required. (and 5 more errors)",
        "errors": {
            "name": ["The name field is required."],
            "street": ["The street field is required."],
            "house_number": ["The house number field is required."],
            "postal_code": ["The postal code field is required."],
            "city": ["The city field is required."],
            "country": ["The country field is required."],
        },
    }


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"name": "x" * 256}, {"name": ["The name field must not be greater than 255 characters."]}),
        ({"street": "x" * 256}, {"street": ["The street field must not be greater than 255 characters."]}),
        (
            {"postal_code": "x" * 256},
            {"postal_code": ["The postal code field must not be greater than 255 characters."]},
        ),
        ({"city": "x" * 256}, {"city": ["The city field must not be greater than 255 characters."]}),
        ({"country": "NLD"}, {"country": ["The country field must not be greater than 2 characters."]}),
        (
            {"house_number_addition": "x" * 256},
            {"house_number_addition": ["The house number addition field must not be greater than 255 characters."]},
        ),
        ({"house_number": -1}, {"house_number": ["The house number field must be at least 0."]}),
        ({"house_number": 1.5}, {"house_number": ["The house number field must be an integer."]}),
        ({"house_number": "12a"}, {"house_number": ["The house number field must be an integer."]}),
        ({"house_number": True}, {"house_number": ["The house number field must be an integer."]}),
        ({"house_number": 10**30}, {"house_number": ["The house number field must not be greater than 2147483647."]}),
        ({"house_number": None}, {"house_number": ["The house number field is required."]}),
        ({"name": 5}, {"name": ["The name field must be a string."]}),
        ({"name": ["Home"]}, {"name": ["The name field must be a string."]}),
        ({"city": {"x": 1}}, {"city": ["The city field must be a string."]}),
        ({"phase": 2}, {"phase": ["The selected phase is invalid."]}),
        ({"phase": None}, {"phase": ["The selected phase is invalid."]}),
        ({"main_fuse_amperage": 0}, {"main_fuse_amperage": ["The main fuse amperage field must be at least 1."]}),
        (
            {"main_fuse_amperage": 10001},
            {"main_fuse_amperage": ["The main fuse amperage field must not be greater than 10000."]},
        ),
        ({"main_fuse_amperage": "x"}, {"main_fuse_amperage": ["The main fuse amperage field must be an integer."]}),
        ({"load_management": "yes"}, {"load_management": ["The load management field must be true or false."]}),
        ({"load_management": None}, {"load_management": ["The load management field must be true or false."]}),
        ({"net_type": "XX"}, {"net_type": ["The selected net type is invalid."]}),
        ({"net_type": ["TN"]}, {"net_type": ["The selected net type is invalid."]}),
    ],
)
def test_create_site_rejects_bad_values_with_laravel_messages(
    api: httpx.Client, account: Account, fields: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    """spec A3 rules, wrong JSON types and out-of-range numbers: always a 422, never a 500."""
    response = api.post(sites_path(account), json={**SITE_BODY, **fields})
    assert response.status_code == 422
    assert response.json() == {"message": next(iter(errors.values()))[0], "errors": errors}


@pytest.mark.parametrize("body", [b"[1]", b'"site"', b"{"])
def test_create_site_with_a_body_that_is_not_an_object_is_a_400(
    api: httpx.Client, account: Account, body: bytes
) -> None:
    response = api.post(sites_path(account), content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_each_new_site_gets_a_root_group_sized_by_its_main_fuse(api: httpx.Client, account: Account) -> None:
    """DESIGN data model: a root group (total_amps = main fuse) is made with each site."""
    site = make_site(api, account, main_fuse_amperage=40)
    groups = api.get(f"{sites_path(account)}/{site['id']}/groups").json()["data"]
    assert len(groups) == 1
    assert (groups[0]["group_id"], groups[0]["total_amps"], groups[0]["site_id"]) == (None, 40, site["id"])


# --- read ---------------------------------------------------------------------------------------


def test_a_site_is_found_by_its_id_and_by_its_uuid(api: httpx.Client, account: Account) -> None:
    """DESIGN: path ids accept the integer id or the uuid."""
    site = make_site(api, account)
    by_id = api.get(f"{sites_path(account)}/{site['id']}")
    by_uuid = api.get(f"{sites_path(account)}/{site['uuid'].upper()}")
    assert by_id.status_code == by_uuid.status_code == 200
    assert by_id.json() == by_uuid.json() == {"data": site}


@pytest.mark.parametrize("ref", ["999999999", "00000000-0000-4000-8000-000000000000", "abc", "99999999999999999"])
def test_an_unknown_site_is_a_404(api: httpx.Client, account: Account, ref: str) -> None:
    response = api.get(f"{sites_path(account)}/{ref}")
    assert response.status_code == 404
    assert response.json() == {"message": "Not found."}


def test_another_teams_site_is_a_404_under_ones_own_team(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN tenancy: another team's object under one's own team path is a 404, for every verb."""
    other = server.account("Other")
    with server.client(other) as other_api:
        theirs = make_site(other_api, other)
    path = f"{sites_path(account)}/{theirs['id']}"
    for response in (api.get(path), api.put(path, json={"name": "Mine"}), api.delete(path)):
        assert (response.status_code, response.json()) == (404, {"message": "Not found."})
    with server.client(other) as other_api:
        assert other_api.get(f"{sites_path(other)}/{theirs['id']}").json()["data"]["name"] == "Home"


def test_another_teams_sites_path_is_a_403(server: LiveServer, api: httpx.Client) -> None:
    other = server.account("Other")
    response = api.get(sites_path(other))
    assert (response.status_code, response.json()) == (403, {"message": "This action is unauthorized."})


# --- list ---------------------------------------------------------------------------------------


def test_sites_list_uses_laravel_simple_pagination_with_absolute_links(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """spec C5 and DESIGN: data, links (absolute, last null) and meta; per_page chooses the page size."""
    made = [make_site(api, account, name=f"Site {n}") for n in range(3)]
    base = f"{server.base_url}{sites_path(account)}"
    first = api.get(sites_path(account), params={"per_page": 2}).json()
    assert list(first) == ["data", "links", "meta"]
    assert [site["id"] for site in first["data"]] == [made[0]["id"], made[1]["id"]]
    assert list(first["data"][0]) == SITE_KEYS
    assert first["links"] == {
        "first": f"{base}?per_page=2&page=1",
        "last": None,
        "prev": None,
        "next": f"{base}?per_page=2&page=2",
    }
    assert first["meta"] == {"current_page": 1, "from": 1, "path": base, "per_page": 2, "to": 2}
    second = api.get(sites_path(account), params={"per_page": 2, "page": 2}).json()
    assert [site["id"] for site in second["data"]] == [made[2]["id"]]
    assert second["links"]["prev"] == f"{base}?per_page=2&page=1" and second["links"]["next"] is None
    assert second["meta"] == {"current_page": 2, "from": 3, "path": base, "per_page": 2, "to": 3}


def test_sites_list_defaults_to_25_per_page_and_is_empty_past_the_end(api: httpx.Client, account: Account) -> None:
    make_site(api, account)
    body = api.get(sites_path(account)).json()
    assert body["meta"]["per_page"] == 25 and len(body["data"]) == 1
    empty = api.get(sites_path(account), params={"page": 5}).json()
    assert empty["data"] == [] and (empty["meta"]["from"], empty["meta"]["to"]) == (None, None)


@pytest.mark.parametrize("page", ["9223372036854775807", "99999999999999999999"])
def test_a_page_far_past_the_end_is_empty_not_a_server_error(api: httpx.Client, account: Account, page: str) -> None:
    site = make_site(api, account)
    for path in (sites_path(account), f"{sites_path(account)}/{site['id']}/groups"):
        response = api.get(path, params={"page": page})
        assert response.status_code == 200
        assert response.json()["data"] == [] and response.json()["meta"]["current_page"] == int(page)


def test_sites_list_shows_only_the_teams_own_sites(server: LiveServer, api: httpx.Client, account: Account) -> None:
    other = server.account("Other")
    with server.client(other) as other_api:
        make_site(other_api, other)
    mine = make_site(api, account)
    assert [site["id"] for site in api.get(sites_path(account)).json()["data"]] == [mine["id"]]


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"per_page": 101}, {"per_page": ["The per page field must not be greater than 100."]}),
        ({"page": 0}, {"page": ["The page field must be at least 1."]}),
        ({"page": "two"}, {"page": ["The page field must be an integer."]}),
    ],
)
def test_sites_list_rejects_bad_paging(
    api: httpx.Client, account: Account, params: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    assert errors_of(api.get(sites_path(account), params=params)) == errors


# --- update -------------------------------------------------------------------------------------


def test_update_site_changes_only_the_fields_sent(api: httpx.Client, account: Account) -> None:
    site = make_site(api, account, house_number_addition="A")
    response = api.put(
        f"{sites_path(account)}/{site['uuid']}",
        json={"name": "Office", "phase": 1, "net_type": "TN", "timezone": "Europe/Amsterdam", "price_zone": "NL"},
    )
    assert response.status_code == 200
    updated = response.json()["data"]
    assert list(updated) == SITE_KEYS
    changed = {"name": "Office", "phase": 1, "net_type": "TN", "timezone": "Europe/Amsterdam", "price_zone": "NL"}
    assert updated == {**site, **changed, "updated_at": updated["updated_at"]}
    assert api.get(f"{sites_path(account)}/{site['id']}").json() == {"data": updated}


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("0.25", "0.2500"),
        (0.25, "0.2500"),
        (0.12345, "0.1235"),
        ("0.00005", "0.0001"),
        ("0.00004", "0.0000"),
        (3, "3.0000"),
        ("1e-2", "0.0100"),
        (0, "0.0000"),
        (1000000, "1000000.0000"),
        (None, None),
    ],
)
def test_update_site_stores_prices_as_decimal_strings_with_four_places(
    api: httpx.Client, account: Account, sent: Any, stored: str | None
) -> None:
    """DESIGN: kwh_price and start_cost are decimal strings; money rounds half-up."""
    site = make_site(api, account)
    data = api.put(f"{sites_path(account)}/{site['id']}", json={"kwh_price": sent, "start_cost": sent}).json()["data"]
    assert (data["kwh_price"], data["start_cost"]) == (stored, stored)


def test_update_site_clears_a_price_with_null(api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    path = f"{sites_path(account)}/{site['id']}"
    api.put(path, json={"kwh_price": "0.30", "timezone": "UTC", "price_zone": "NL"})
    data = api.put(path, json={"kwh_price": None, "timezone": None, "price_zone": ""}).json()["data"]
    assert (data["kwh_price"], data["timezone"], data["price_zone"]) == (None, None, None)


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"name": ""}, {"name": ["The name field is required."]}),
        ({"name": None}, {"name": ["The name field is required."]}),
        ({"house_number": -3}, {"house_number": ["The house number field must be at least 0."]}),
        ({"country": "NLD"}, {"country": ["The country field must not be greater than 2 characters."]}),
        ({"phase": 2}, {"phase": ["The selected phase is invalid."]}),
        ({"main_fuse_amperage": 0}, {"main_fuse_amperage": ["The main fuse amperage field must be at least 1."]}),
        ({"timezone": "Mars/Base"}, {"timezone": ["The timezone field must be a valid timezone."]}),
        ({"timezone": ":Europe/Amsterdam"}, {"timezone": ["The timezone field must be a valid timezone."]}),
        ({"timezone": "/etc/localtime"}, {"timezone": ["The timezone field must be a valid timezone."]}),
        ({"timezone": 1}, {"timezone": ["The timezone field must be a valid timezone."]}),
        ({"price_zone": "x" * 17}, {"price_zone": ["The price zone field must not be greater than 16 characters."]}),
        ({"price_zone": 10}, {"price_zone": ["The price zone field must be a string."]}),
        ({"kwh_price": "-0.01"}, {"kwh_price": ["The kwh price field must be at least 0."]}),
        ({"kwh_price": "abc"}, {"kwh_price": ["The kwh price field must be a number."]}),
        ({"kwh_price": "NaN"}, {"kwh_price": ["The kwh price field must be a number."]}),
        ({"kwh_price": True}, {"kwh_price": ["The kwh price field must be a number."]}),
        ({"kwh_price": 1e300}, {"kwh_price": ["The kwh price field must not be greater than 1000000."]}),
        ({"start_cost": -1}, {"start_cost": ["The start cost field must be at least 0."]}),
        ({"start_cost": [1]}, {"start_cost": ["The start cost field must be a number."]}),
    ],
)
def test_update_site_rejects_bad_values_with_laravel_messages(
    api: httpx.Client, account: Account, fields: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    site = make_site(api, account)
    path = f"{sites_path(account)}/{site['id']}"
    assert errors_of(api.put(path, json=fields)) == errors
    assert api.get(path).json() == {"data": site}


def test_update_site_reports_every_error_in_the_summary(api: httpx.Client, account: Account) -> None:
    """DESIGN: the 422 message is the first error plus "(and N more errors)"."""
    site = make_site(api, account)
    response = api.put(f"{sites_path(account)}/{site['id']}", json={"name": "", "phase": 2, "kwh_price": "x"})
    assert response.json()["message"] == "The name field is required. (and 2 more errors)"


def test_a_new_main_fuse_resizes_the_root_group(api: httpx.Client, account: Account) -> None:
    site = make_site(api, account)
    api.put(f"{sites_path(account)}/{site['id']}", json={"main_fuse_amperage": 63})
    root = api.get(f"{sites_path(account)}/{site['id']}/groups").json()["data"][0]
    assert root["total_amps"] == 63


# --- delete -------------------------------------------------------------------------------------


def test_deleting_a_site_is_soft_and_hides_it_everywhere(api: httpx.Client, account: Account) -> None:
    """DESIGN: sites are soft-deleted; afterwards the site is a 404 and leaves the list."""
    kept = make_site(api, account, name="Kept")
    gone = make_site(api, account, name="Gone")
    path = f"{sites_path(account)}/{gone['uuid']}"
    response = api.delete(path)
    assert (response.status_code, response.content) == (204, b"")
    assert api.get(path).status_code == 404
    assert api.put(path, json={"name": "Back"}).status_code == 404
    assert api.delete(path).status_code == 404
    assert api.get(f"{path}/groups").status_code == 404
    assert api.get(f"{path}/smart-charging").status_code == 404
    assert [site["id"] for site in api.get(sites_path(account)).json()["data"]] == [kept["id"]]
