"""Chargers of a team and its sites: spec/volttime-api.md A5-A7, A11, B1-B4 and DESIGN wire details."""

from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.support.chargers import add_connector, attach, charger_row, create_site_charger, make_site, unique_identity
from voltline.domain.credentials import PINCODE_ALPHABET
from voltline.services.accounts import Account
from voltline.store import chargers

CHARGER_KEYS = [
    "deprecation",
    "uuid",
    "id",
    "identity",
    "reference",
    "connection_status",
    "status",
    "error",
    "error_info",
    "created_at",
    "updated_at",
    "licenses",
]
DEPRECATION = "charger.id is deprecated. Use charger.uuid instead."
TIMESTAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"
NOT_FOUND = {"message": "Not found."}
PINCODE_INVALID = {
    "message": "The pincode is invalid.",
    "errors": {"pincode": ["The pincode is invalid."]},
}
ALREADY_ATTACHED = {
    "message": "The charger is already attached to a site.",
    "errors": {"identity": ["The charger is already attached to a site."]},
}


# -- helpers shared with the connector tests ---------------------------------------------------


def store_charger(server: LiveServer, identity: str, **values: Any) -> dict[str, Any]:
    """A charger made in the store (as the CLI or auto-registration would), with a known pincode."""
    pincode = values.pop("pincode", "ABCD2345")

    async def make() -> dict[str, Any]:
        async with server.runtime.db.write() as conn:
            return dict(await chargers.create_charger(conn, identity, pincode, values))

    return server.run(make)


def team_charger_ids(api: httpx.Client, team_id: int) -> list[int]:
    """The ids in the team's charger list."""
    return [charger["id"] for charger in api.get(f"/api/v2/teams/{team_id}/chargers").json()["data"]]


def wait_for_fresh_minute(server: LiveServer) -> None:
    """Avoid a test straddling the limiter's one-minute window boundary."""

    async def now() -> float:
        return server.runtime.clock.monotonic()

    second = server.run(now) % 60
    if second > 50:
        time.sleep(60.5 - second)


# -- creating chargers on a site ---------------------------------------------------------------


def test_create_site_charger_returns_201_with_the_v2_keys_in_order(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """spec A6 and DESIGN wire details: deprecation first, never_seen, nulls, licenses last."""
    site = make_site(server, account.team_id)
    identity = unique_identity()
    response = api.post(f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers", json={"identity": identity})
    assert response.status_code == 201
    assert list(response.json()) == ["data"]
    charger = response.json()["data"]
    assert list(charger) == CHARGER_KEYS
    assert charger["deprecation"] == DEPRECATION
    assert charger["identity"] == identity
    assert (charger["reference"], charger["status"], charger["error"], charger["error_info"]) == (None,) * 4
    assert charger["connection_status"] == "never_seen"
    assert charger["licenses"] == {"smart": False, "pro": False}
    assert charger["created_at"] == charger["updated_at"]
    assert uuid.UUID(charger["uuid"])
    assert re.match(TIMESTAMP, charger["created_at"])


def test_create_site_charger_places_it_in_the_team_site_and_root_group_with_a_pincode(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    site = make_site(server, account.team_id)
    charger = create_site_charger(api, account.team_id, site["id"], unique_identity())
    row = charger_row(server, charger["id"])
    assert (row["team_id"], row["site_id"], row["group_id"]) == (account.team_id, site["id"], site["root_group_id"])
    assert len(row["pincode"]) == 8 and set(row["pincode"]) <= set(PINCODE_ALPHABET)
    assert row["password_hash"] is None


def test_create_site_charger_accepts_uuids_in_the_path(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """DESIGN: path ids accept the integer id or the uuid."""
    site = make_site(server, account.team_id)
    team_uuid = api.get("/api/v2/teams").json()["data"][0]["uuid"]
    charger = create_site_charger(api, team_uuid, site["uuid"], unique_identity())
    assert charger_row(server, charger["id"])["site_id"] == site["id"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "The identity field is required."),
        ({"identity": None}, "The identity field is required."),
        ({"identity": "   "}, "The identity field is required."),
        ({"identity": 12345}, "The identity field must be a string."),
        ({"identity": "x" * 46}, "The identity field must not be greater than 45 characters."),
    ],
)
def test_create_site_charger_rejects_a_bad_identity(
    server: LiveServer, api: httpx.Client, account: Account, body: dict[str, Any], message: str
) -> None:
    site = make_site(server, account.team_id)
    path = f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers"
    response = api.post(path, json=body)
    assert response.status_code == 422
    assert response.json() == {"message": message, "errors": {"identity": [message]}}
    assert api.get(path).json()["data"] == []


def test_an_identity_of_45_characters_is_accepted(server: LiveServer, api: httpx.Client, account: Account) -> None:
    site = make_site(server, account.team_id)
    identity = unique_identity().ljust(45, "x")
    assert create_site_charger(api, account.team_id, site["id"], identity)["identity"] == identity


def test_an_identity_is_unique_across_all_teams(server: LiveServer, api: httpx.Client, account: Account) -> None:
    identity = unique_identity()
    other = server.account()
    with server.client(other) as other_api:
        assert other_api.post(f"/api/v2/teams/{other.team_id}/chargers", json={"identity": identity}).status_code == 201
    site = make_site(server, account.team_id)
    response = api.post(f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers", json={"identity": identity})
    assert response.status_code == 422
    assert response.json() == {
        "message": "The identity has already been taken.",
        "errors": {"identity": ["The identity has already been taken."]},
    }
    assert team_charger_ids(api, account.team_id) == []


def test_create_site_charger_on_another_teams_site_is_404(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: a child resource not in that team is 404."""
    other = server.account()
    site = make_site(server, other.team_id)
    response = api.post(f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers", json={"identity": "VT_x"})
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    response = api.post(f"/api/v2/teams/{other.team_id}/sites/{site['id']}/chargers", json={"identity": "VT_x"})
    assert response.status_code == 403


def test_a_foreign_path_object_is_a_404_even_with_an_invalid_body(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """Laravel resolves route bindings before it validates: the 404 wins over the 422."""
    other = server.account()
    site = make_site(server, other.team_id)
    charger = store_charger(server, unique_identity(), team_id=other.team_id)
    team = f"/api/v2/teams/{account.team_id}"
    responses = [
        api.post(f"{team}/sites/{site['id']}/chargers", json={"identity": "not valid!"}),
        api.post(f"{team}/sites/{site['id']}/attach-charger", json={}),
        api.put(f"{team}/chargers/{charger['id']}", json={"reference": 7}),
        api.put(f"{team}/chargers/{charger['id']}/ocpp", json={"security_profile": 9}),
        api.post(f"{team}/chargers/{charger['id']}/commands/stop", json={"transaction_id": "x"}),
    ]
    for response in responses:
        assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_malformed_bodies_are_400_not_500(server: LiveServer, api: httpx.Client, account: Account) -> None:
    site = make_site(server, account.team_id)
    path = f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers"
    assert api.post(path, content=b"{nope", headers={"Content-Type": "application/json"}).status_code == 400
    assert api.post(path, json=["identity"]).status_code == 400
    assert api.post(f"/api/v2/teams/{account.team_id}/chargers", json="VT_1").status_code == 400


# -- listing a site's chargers -----------------------------------------------------------------


def test_site_chargers_are_paginated_and_only_those_on_the_site(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: every list except the documented ones is paginated (Laravel simple pagination)."""
    site, elsewhere = make_site(server, account.team_id), make_site(server, account.team_id)
    ours = [create_site_charger(api, account.team_id, site["id"], unique_identity())["id"] for _ in range(3)]
    create_site_charger(api, account.team_id, elsewhere["id"], unique_identity())
    api.post(f"/api/v2/teams/{account.team_id}/chargers", json={"identity": unique_identity()})
    path = f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers"
    first = api.get(path, params={"per_page": 2}).json()
    assert list(first) == ["data", "links", "meta"]
    assert [c["id"] for c in first["data"]] == ours[:2]
    assert all(list(c) == CHARGER_KEYS for c in first["data"])
    assert first["links"]["next"].endswith("page=2") and first["meta"]["per_page"] == 2
    second = httpx.get(first["links"]["next"], headers=api.headers).json()
    assert [c["id"] for c in second["data"]] == ours[2:]
    assert second["links"]["next"] is None and second["meta"]["from"] == 3


def test_site_chargers_of_another_team_is_404_and_bad_page_is_422(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    site = make_site(server, server.account().team_id)
    assert api.get(f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers").status_code == 404
    own = make_site(server, account.team_id)
    response = api.get(f"/api/v2/teams/{account.team_id}/sites/{own['id']}/chargers", params={"per_page": 101})
    assert response.status_code == 422


# -- detaching ---------------------------------------------------------------------------------


def test_detach_returns_204_and_the_charger_stays_with_the_team(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """spec A7: the charger keeps existing, only unlinked from the site."""
    site = make_site(server, account.team_id)
    charger = create_site_charger(api, account.team_id, site["id"], unique_identity())
    pincode = charger_row(server, charger["id"])["pincode"]
    path = f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers"
    response = api.delete(f"{path}/{charger['uuid']}")
    assert response.status_code == 204 and response.content == b""
    assert api.get(path).json()["data"] == []
    assert team_charger_ids(api, account.team_id) == [charger["id"]]
    row = charger_row(server, charger["id"])
    assert (row["team_id"], row["site_id"], row["group_id"], row["pincode"]) == (account.team_id, None, None, pincode)
    assert api.get(f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}").status_code == 200
    assert (api.delete(f"{path}/{charger['id']}").status_code, api.delete(f"{path}/{charger['id']}").json()) == (
        404,
        NOT_FOUND,
    )


def test_detach_of_a_charger_on_another_site_is_404_and_changes_nothing(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    site, elsewhere = make_site(server, account.team_id), make_site(server, account.team_id)
    charger = create_site_charger(api, account.team_id, elsewhere["id"], unique_identity())
    response = api.delete(f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers/{charger['id']}")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    for ref in ("999999999", "99999999999999999", "not-an-id"):
        assert api.delete(f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers/{ref}").status_code == 404
    assert charger_row(server, charger["id"])["site_id"] == elsewhere["id"]


# -- attaching with a pincode ------------------------------------------------------------------


def test_attach_by_identity_moves_the_charger_to_the_site_team_and_root_group(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """spec A11, DESIGN: attach answers 200 with {"data": <charger>}."""
    identity = unique_identity()
    charger = store_charger(server, identity, pincode="ABCD2345")
    site = make_site(server, account.team_id)
    response = attach(api, account.team_id, site["id"], {"identity": identity, "pincode": "ABCD2345"})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["data"] and list(body["data"]) == CHARGER_KEYS
    assert (body["data"]["id"], body["data"]["identity"]) == (charger["id"], identity)
    row = charger_row(server, charger["id"])
    assert (row["team_id"], row["site_id"], row["group_id"]) == (account.team_id, site["id"], site["root_group_id"])
    listed = api.get(f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers").json()["data"]
    assert [c["id"] for c in listed] == [charger["id"]]


def test_attach_takes_a_detached_charger_from_another_team(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    other = server.account()
    with server.client(other) as other_api:
        charger = other_api.post(f"/api/v2/teams/{other.team_id}/chargers", json={"identity": unique_identity()})
        charger_id = charger.json()["data"]["id"]
        pincode = charger_row(server, charger_id)["pincode"]
        site = make_site(server, account.team_id)
        response = attach(
            api, account.team_id, site["id"], {"identity": charger.json()["data"]["identity"], "pincode": pincode}
        )
        assert response.status_code == 200
        assert team_charger_ids(other_api, other.team_id) == []
    assert team_charger_ids(api, account.team_id) == [charger_id]
    assert api.get(f"/api/v2/teams/{account.team_id}/chargers/{charger_id}").status_code == 200


def test_attach_by_serial_number(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """spec A11: identity is required only without serial_number."""
    serial = uuid.uuid4().hex[:16]
    charger = store_charger(server, unique_identity(), serial_number=serial, pincode="WXYZ6789")
    site = make_site(server, account.team_id)
    response = attach(api, account.team_id, site["id"], {"serial_number": serial, "pincode": "WXYZ6789"})
    assert response.status_code == 200 and response.json()["data"]["id"] == charger["id"]
    assert charger_row(server, charger["id"])["site_id"] == site["id"]


def test_attach_compares_the_pincode_as_a_string(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """A numeric pincode (spec A11 documents a number) matches the same digits; case does not matter."""
    numeric, lettered = unique_identity(), unique_identity()
    store_charger(server, numeric, pincode="23456789")
    store_charger(server, lettered, pincode="ABCD2345")
    site = make_site(server, account.team_id)
    assert attach(api, account.team_id, site["id"], {"identity": numeric, "pincode": 23456789}).status_code == 200
    assert attach(api, account.team_id, site["id"], {"identity": lettered, "pincode": "abcd2345"}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"pincode": "ABCD2346"},
        {"pincode": "ABCD2345", "identity": "VT_does_not_exist"},
        {"pincode": "ABCD2345", "serial_number": "no-such-serial"},
        {"pincode": 12345678},
        {"pincode": ["A", "B", "C", "D", "2", "3", "4", "5"]},
    ],
)
def test_attach_with_a_wrong_pincode_or_unknown_charger_gives_the_same_422(
    server: LiveServer, api: httpx.Client, account: Account, body: dict[str, Any]
) -> None:
    """Wrong pincode and unknown identity answer alike, so that identities cannot be probed."""
    identity = unique_identity()
    charger = store_charger(server, identity, pincode="ABCD2345", serial_number=uuid.uuid4().hex)
    site = make_site(server, account.team_id)
    response = attach(api, account.team_id, site["id"], {"identity": identity, **body})
    assert (response.status_code, response.json()) == (422, PINCODE_INVALID)
    row = charger_row(server, charger["id"])
    assert (row["team_id"], row["site_id"], row["group_id"]) == (None, None, None)


def test_attach_of_a_charger_already_on_a_site_is_422(server: LiveServer, api: httpx.Client, account: Account) -> None:
    other = server.account()
    their_site = make_site(server, other.team_id)
    with server.client(other) as other_api:
        charger = create_site_charger(other_api, other.team_id, their_site["id"], unique_identity())
    pincode = charger_row(server, charger["id"])["pincode"]
    site = make_site(server, account.team_id)
    response = attach(api, account.team_id, site["id"], {"identity": charger["identity"], "pincode": pincode})
    assert (response.status_code, response.json()) == (422, ALREADY_ATTACHED)
    wrong = "ZZZZZZZZ" if pincode != "ZZZZZZZZ" else "YYYYYYYY"
    response = attach(api, account.team_id, site["id"], {"identity": charger["identity"], "pincode": wrong})
    assert response.json() == PINCODE_INVALID
    row = charger_row(server, charger["id"])
    assert (row["team_id"], row["site_id"]) == (other.team_id, their_site["id"])


def test_attach_to_the_site_it_is_on_is_also_already_attached(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    site = make_site(server, account.team_id)
    charger = create_site_charger(api, account.team_id, site["id"], unique_identity())
    pincode = charger_row(server, charger["id"])["pincode"]
    response = attach(api, account.team_id, site["id"], {"identity": charger["identity"], "pincode": pincode})
    assert (response.status_code, response.json()) == (422, ALREADY_ATTACHED)


def test_concurrent_attaches_of_one_charger_let_exactly_one_win(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    identity = unique_identity()
    charger = store_charger(server, identity, pincode="ABCD2345")
    targets = [make_site(server, account.team_id)["id"] for _ in range(4)]
    body = {"identity": identity, "pincode": "ABCD2345"}

    def try_attach(site_id: int) -> int:
        with server.client(account) as client:
            return attach(client, account.team_id, site_id, body).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = sorted(pool.map(try_attach, targets))
    assert codes == [200, 422, 422, 422]
    assert charger_row(server, charger["id"])["site_id"] in targets


def test_attach_validates_its_body_with_laravel_messages(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    site = make_site(server, account.team_id)
    response = attach(api, account.team_id, site["id"], {})
    assert response.status_code == 422
    assert response.json() == {
        "message": "The pincode field is required. (and 2 more errors)",
        "errors": {
            "pincode": ["The pincode field is required."],
            "identity": ["The identity field is required when serial number is not present."],
            "serial_number": ["The serial number field is required when identity is not present."],
        },
    }
    response = attach(api, account.team_id, site["id"], {"pincode": "ABC", "identity": "x" * 46})
    assert response.json()["errors"] == {
        "pincode": ["The pincode field must be 8 characters."],
        "identity": ["The identity field must not be greater than 45 characters."],
    }
    response = attach(api, account.team_id, site["id"], {"pincode": "ABCD2345", "serial_number": "s" * 65})
    assert response.json()["errors"] == {
        "serial_number": ["The serial number field must not be greater than 64 characters."]
    }
    response = attach(api, account.team_id, site["id"], {"pincode": "ABCD2345", "identity": 7})
    assert response.json()["errors"] == {"identity": ["The identity field must be a string."]}


def test_attach_to_another_teams_site_is_404(server: LiveServer, api: httpx.Client, account: Account) -> None:
    identity = unique_identity()
    charger = store_charger(server, identity, pincode="ABCD2345")
    site = make_site(server, server.account().team_id)
    response = attach(api, account.team_id, site["id"], {"identity": identity, "pincode": "ABCD2345"})
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert charger_row(server, charger["id"])["site_id"] is None


def test_the_sixth_attach_attempt_in_a_minute_is_429(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """DESIGN: at most 5 attach attempts per charger per minute; 429 carries Retry-After."""
    identity = unique_identity()
    charger = store_charger(server, identity, pincode="ABCD2345")
    site = make_site(server, account.team_id)
    wait_for_fresh_minute(server)
    for _ in range(5):
        response = attach(api, account.team_id, site["id"], {"identity": identity, "pincode": "WRONG123"})
        assert response.status_code == 422
    response = attach(api, account.team_id, site["id"], {"identity": identity, "pincode": "ABCD2345"})
    assert (response.status_code, response.json()) == (429, {"message": "Too Many Attempts."})
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert charger_row(server, charger["id"])["site_id"] is None
    other = unique_identity()
    store_charger(server, other, pincode="ABCD2345")
    assert attach(api, account.team_id, site["id"], {"identity": other, "pincode": "ABCD2345"}).status_code == 200


# -- the team's chargers -----------------------------------------------------------------------


def test_team_chargers_are_unpaginated_and_include_site_less_ones(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """spec B1 and DESIGN: GET /teams/{team}/chargers is unpaginated."""
    site = make_site(server, account.team_id)
    on_site = create_site_charger(api, account.team_id, site["id"], unique_identity())
    response = api.post(f"/api/v2/teams/{account.team_id}/chargers", json={"identity": unique_identity()})
    assert response.status_code == 201
    loose = response.json()["data"]
    assert list(loose) == CHARGER_KEYS and loose["connection_status"] == "never_seen"
    assert charger_row(server, loose["id"])["site_id"] is None
    body = api.get(f"/api/v2/teams/{account.team_id}/chargers").json()
    assert list(body) == ["data"]
    assert [c["id"] for c in body["data"]] == [on_site["id"], loose["id"]]
    assert all(list(c) == CHARGER_KEYS for c in body["data"])
    with server.client(server.account()) as stranger:
        own_team = stranger.get("/api/v2/teams").json()["data"][0]["id"]
        assert team_charger_ids(stranger, own_team) == []


def test_team_charger_create_checks_identity_like_the_site_create(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    path = f"/api/v2/teams/{account.team_id}/chargers"
    identity = unique_identity()
    assert api.post(path, json={"identity": identity}).status_code == 201
    taken = api.post(path, json={"identity": identity})
    assert taken.json()["errors"] == {"identity": ["The identity has already been taken."]}
    assert api.post(path, json={"identity": "y" * 46}).json()["errors"] == {
        "identity": ["The identity field must not be greater than 45 characters."]
    }
    assert len(team_charger_ids(api, account.team_id)) == 1


def test_get_charger_adds_connectors(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """spec B3: the single-charger GET carries `connectors`."""
    site = make_site(server, account.team_id)
    charger = create_site_charger(api, account.team_id, site["uuid"], unique_identity())
    path = f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}"
    body = api.get(path).json()["data"]
    assert list(body) == [*CHARGER_KEYS, "connectors"] and body["connectors"] == []
    add_connector(server, charger["id"], 2, status="Available")
    add_connector(server, charger["id"], 1, status="Charging", max_amperage=16)
    detail = api.get(f"/api/v2/teams/{account.team_id}/chargers/{charger['uuid']}").json()["data"]
    assert [c["connector_id"] for c in detail["connectors"]] == [1, 2]
    assert detail["connectors"][0]["status"] == "Charging" and detail["connectors"][0]["max_amperage"] == 16
    assert {k: v for k, v in detail.items() if k != "connectors"} == {
        k: v for k, v in body.items() if k != "connectors"
    }


def test_another_teams_charger_is_404_under_ones_own_team_path(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: 403 for another team's path, 404 for another team's object under one's own path."""
    other = server.account()
    with server.client(other) as other_api:
        theirs = other_api.post(f"/api/v2/teams/{other.team_id}/chargers", json={"identity": unique_identity()})
    charger = theirs.json()["data"]
    for ref in (charger["id"], charger["uuid"]):
        path = f"/api/v2/teams/{account.team_id}/chargers/{ref}"
        assert (api.get(path).status_code, api.get(path).json()) == (404, NOT_FOUND)
        assert api.put(path, json={"reference": "mine"}).status_code == 404
    assert api.get(f"/api/v2/teams/{other.team_id}/chargers/{charger['id']}").status_code == 403
    assert charger_row(server, charger["id"])["reference"] is None
    for ref in ("0", "2147483648", "99999999999999999", str(uuid.uuid4()), "abc"):
        assert api.get(f"/api/v2/teams/{account.team_id}/chargers/{ref}").status_code == 404


def test_put_charger_sets_and_clears_the_reference(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """spec B4 (v3 twin): PUT takes `reference` and answers with the charger."""
    created = api.post(f"/api/v2/teams/{account.team_id}/chargers", json={"identity": unique_identity()})
    path = f"/api/v2/teams/{account.team_id}/chargers/{created.json()['data']['id']}"
    response = api.put(path, json={"reference": "Garage left"})
    assert response.status_code == 200
    assert list(response.json()["data"]) == CHARGER_KEYS and response.json()["data"]["reference"] == "Garage left"
    assert api.put(path, json={}).json()["data"]["reference"] == "Garage left"
    assert api.put(path, json={"reference": "r" * 255}).status_code == 200
    assert api.put(path, json={"reference": None}).json()["data"]["reference"] is None


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("r" * 256, "The reference field must not be greater than 255 characters."),
        (42, "The reference field must be a string."),
        ({"a": 1}, "The reference field must be a string."),
    ],
)
def test_put_charger_rejects_a_bad_reference(api: httpx.Client, account: Account, reference: Any, message: str) -> None:
    created = api.post(f"/api/v2/teams/{account.team_id}/chargers", json={"identity": unique_identity()})
    path = f"/api/v2/teams/{account.team_id}/chargers/{created.json()['data']['id']}"
    api.put(path, json={"reference": "before"})
    response = api.put(path, json={"reference": reference})
    assert (response.status_code, response.json()) == (422, {"message": message, "errors": {"reference": [message]}})
    assert api.get(path).json()["data"]["reference"] == "before"


def test_openapi_documents_the_charger_routes(server: LiveServer) -> None:
    with server.client() as anonymous:
        paths = anonymous.get("/openapi.json").json()["paths"]
    site = "/api/v2/teams/{team}/sites/{site}"
    assert set(paths[f"{site}/chargers"]) == {"get", "post"}
    assert set(paths[f"{site}/chargers/{{charger}}"]) == {"delete"}
    assert set(paths[f"{site}/attach-charger"]) == {"post"}
    assert set(paths["/api/v2/teams/{team}/chargers/{charger}"]) == {"get", "put"}
