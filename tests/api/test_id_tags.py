"""Id tags of a team: DESIGN (id tags are a team resource, GET|POST|DELETE /teams/{team}/id-tags)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from voltline.services.accounts import Account

ID_TAG_KEYS = [
    "uuid",
    "id",
    "id_tag",
    "name",
    "status",
    "expiry_date",
    "parent_id_tag",
    "created_at",
    "updated_at",
]
TIMESTAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"
NOT_FOUND = {"message": "Not found."}


def tags_path(team_id: int | str) -> str:
    """The team's id-tag collection."""
    return f"/api/v2/teams/{team_id}/id-tags"


def create_tag(api: httpx.Client, team_id: int, **body: Any) -> dict[str, Any]:
    """Create an id tag and return it."""
    response = api.post(tags_path(team_id), json=body)
    assert response.status_code == 201, response.text
    tag: dict[str, Any] = response.json()["data"]
    return tag


def listed_tags(api: httpx.Client, team_id: int) -> list[str]:
    """The id_tag values in the team's first page."""
    return [tag["id_tag"] for tag in api.get(tags_path(team_id), params={"per_page": 100}).json()["data"]]


def test_create_id_tag_returns_201_with_the_keys_in_order_and_defaults(api: httpx.Client, account: Account) -> None:
    response = api.post(tags_path(account.team_id), json={"id_tag": "04A1B2C3D4"})
    assert response.status_code == 201
    assert list(response.json()) == ["data"]
    tag = response.json()["data"]
    assert list(tag) == ID_TAG_KEYS
    assert (tag["id_tag"], tag["status"], tag["name"], tag["expiry_date"], tag["parent_id_tag"]) == (
        "04A1B2C3D4",
        "Accepted",
        None,
        None,
        None,
    )
    assert uuid.UUID(tag["uuid"]) and re.match(TIMESTAMP, tag["created_at"])


def test_create_id_tag_keeps_every_field(api: httpx.Client, account: Account) -> None:
    """DESIGN: date inputs without an offset (Y-m-d H:i:s) are UTC."""
    tag = create_tag(
        api,
        account.team_id,
        id_tag="x" * 20,
        status="Blocked",
        expiry_date="2030-01-31 23:59:58",
        parent_id_tag="p" * 20,
        name="n" * 255,
    )
    assert tag["expiry_date"] == "2030-01-31T23:59:58.000000Z"
    assert (tag["id_tag"], tag["status"], tag["parent_id_tag"], tag["name"]) == (
        "x" * 20,
        "Blocked",
        "p" * 20,
        "n" * 255,
    )
    expired = create_tag(api, account.team_id, id_tag="OLD", status="Expired", name=None, expiry_date=None)
    assert (expired["status"], expired["name"], expired["expiry_date"]) == ("Expired", None, None)
    assert create_tag(api, account.team_id, id_tag="NULLSTATUS", status=None)["status"] == "Accepted"


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"id_tag": ["The id tag field is required."]}),
        ({"id_tag": None}, {"id_tag": ["The id tag field is required."]}),
        ({"id_tag": ""}, {"id_tag": ["The id tag field is required."]}),
        ({"id_tag": 1234}, {"id_tag": ["The id tag field must be a string."]}),
        ({"id_tag": "x" * 21}, {"id_tag": ["The id tag field must not be greater than 20 characters."]}),
        ({"id_tag": "T", "status": "Invalid"}, {"status": ["The selected status is invalid."]}),
        ({"id_tag": "T", "status": "accepted"}, {"status": ["The selected status is invalid."]}),
        (
            {"id_tag": "T", "expiry_date": "2030-01-31"},
            {"expiry_date": ["The expiry date field must match the format Y-m-d H:i:s."]},
        ),
        (
            {"id_tag": "T", "expiry_date": "2030-01-31T10:00:00Z"},
            {"expiry_date": ["The expiry date field must match the format Y-m-d H:i:s."]},
        ),
        (
            {"id_tag": "T", "expiry_date": "2030-02-30 10:00:00"},
            {"expiry_date": ["The expiry date field must match the format Y-m-d H:i:s."]},
        ),
        (
            {"id_tag": "T", "expiry_date": 1893456000},
            {"expiry_date": ["The expiry date field must match the format Y-m-d H:i:s."]},
        ),
        (
            {"id_tag": "T", "parent_id_tag": "p" * 21},
            {"parent_id_tag": ["The parent id tag field must not be greater than 20 characters."]},
        ),
        ({"id_tag": "T", "parent_id_tag": 5}, {"parent_id_tag": ["The parent id tag field must be a string."]}),
        ({"id_tag": "T", "name": "n" * 256}, {"name": ["The name field must not be greater than 255 characters."]}),
        ({"id_tag": "T", "name": ["a"]}, {"name": ["The name field must be a string."]}),
    ],
)
def test_create_id_tag_rejects_bad_values_and_stores_nothing(
    api: httpx.Client, account: Account, body: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    response = api.post(tags_path(account.team_id), json=body)
    assert response.status_code == 422
    assert response.json() == {"message": next(iter(errors.values()))[0], "errors": errors}
    assert listed_tags(api, account.team_id) == []


def test_an_id_tag_is_unique_per_team_ignoring_case(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """OCPP 1.6 IdToken is a CiString20Type: case-insensitive."""
    create_tag(api, account.team_id, id_tag="CARD-1")
    for value in ("CARD-1", "card-1"):
        response = api.post(tags_path(account.team_id), json={"id_tag": value})
        assert response.status_code == 422
        assert response.json() == {
            "message": "The id tag has already been taken.",
            "errors": {"id_tag": ["The id tag has already been taken."]},
        }
    other = server.account()
    with server.client(other) as other_api:
        assert create_tag(other_api, other.team_id, id_tag="CARD-1")["id_tag"] == "CARD-1"
    assert listed_tags(api, account.team_id) == ["CARD-1"]


def test_a_taken_id_tag_is_reported_with_the_other_errors(api: httpx.Client, account: Account) -> None:
    create_tag(api, account.team_id, id_tag="CARD-2")
    response = api.post(tags_path(account.team_id), json={"id_tag": "CARD-2", "status": "Nope"})
    assert response.json() == {
        "message": "The id tag has already been taken. (and 1 more error)",
        "errors": {
            "id_tag": ["The id tag has already been taken."],
            "status": ["The selected status is invalid."],
        },
    }


def test_id_tags_are_paginated_oldest_first(api: httpx.Client, account: Account) -> None:
    """DESIGN: every list not named unpaginated is paginated."""
    for number in range(3):
        create_tag(api, account.team_id, id_tag=f"TAG{number}")
    first = api.get(tags_path(account.team_id), params={"per_page": 2}).json()
    assert list(first) == ["data", "links", "meta"]
    assert [tag["id_tag"] for tag in first["data"]] == ["TAG0", "TAG1"]
    assert all(list(tag) == ID_TAG_KEYS for tag in first["data"])
    second = api.get(tags_path(account.team_id), params={"per_page": 2, "page": 2}).json()
    assert [tag["id_tag"] for tag in second["data"]] == ["TAG2"]
    assert (second["links"]["next"], second["meta"]["from"], second["meta"]["to"]) == (None, 3, 3)


def test_delete_id_tag_by_id_or_uuid_returns_204(api: httpx.Client, account: Account) -> None:
    by_id = create_tag(api, account.team_id, id_tag="A")
    by_uuid = create_tag(api, account.team_id, id_tag="B")
    create_tag(api, account.team_id, id_tag="C")
    response = api.delete(f"{tags_path(account.team_id)}/{by_id['id']}")
    assert (response.status_code, response.content) == (204, b"")
    assert api.delete(f"{tags_path(account.team_id)}/{by_uuid['uuid']}").status_code == 204
    assert listed_tags(api, account.team_id) == ["C"]
    again = api.delete(f"{tags_path(account.team_id)}/{by_id['id']}")
    assert (again.status_code, again.json()) == (404, NOT_FOUND)
    assert create_tag(api, account.team_id, id_tag="A")["id_tag"] == "A"


def test_another_teams_id_tag_is_404_under_ones_own_path_and_403_under_theirs(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: 403 for another team's path, 404 for another team's object under one's own path."""
    other = server.account()
    with server.client(other) as other_api:
        theirs = create_tag(other_api, other.team_id, id_tag="THEIRS")
        for ref in (theirs["id"], theirs["uuid"]):
            response = api.delete(f"{tags_path(account.team_id)}/{ref}")
            assert (response.status_code, response.json()) == (404, NOT_FOUND)
        assert api.delete(f"{tags_path(other.team_id)}/{theirs['id']}").status_code == 403
        assert api.get(tags_path(other.team_id)).status_code == 403
        assert listed_tags(other_api, other.team_id) == ["THEIRS"]
    for ref in ("0", "2147483648", "99999999999999999", "x"):
        assert api.delete(f"{tags_path(account.team_id)}/{ref}").status_code == 404


def test_malformed_id_tag_bodies_are_400(api: httpx.Client, account: Account) -> None:
    path = tags_path(account.team_id)
    assert api.post(path, content=b"[", headers={"Content-Type": "application/json"}).status_code == 400
    assert api.post(path, json=[{"id_tag": "A"}]).status_code == 400
    assert api.get(path, params={"page": "zero"}).status_code == 422


def test_update_id_tag_changes_only_the_fields_sent_and_is_audited(api: httpx.Client, account: Account) -> None:
    """PUT .../id-tags/{id_tag}: status Accepted/Blocked/Expired (the local lists follow, docs/api.md)."""
    tag = create_tag(api, account.team_id, id_tag="PUT-1", name="Van", expiry_date="2030-01-02 03:04:05")
    response = api.put(f"{tags_path(account.team_id)}/{tag['uuid']}", json={"status": "Blocked"})
    assert response.status_code == 200, response.text
    changed = response.json()["data"]
    assert list(changed) == ID_TAG_KEYS
    assert (changed["status"], changed["name"], changed["expiry_date"]) == ("Blocked", "Van", tag["expiry_date"])
    response = api.put(f"{tags_path(account.team_id)}/{tag['id']}", json={"status": "Expired", "name": None})
    assert (response.json()["data"]["status"], response.json()["data"]["name"]) == ("Expired", None)
    listed = api.get(tags_path(account.team_id)).json()["data"]
    assert [(t["id_tag"], t["status"]) for t in listed] == [("PUT-1", "Expired")]
    entries = api.get(f"/api/v2/teams/{account.team_id}/audit-log", params={"action": "id_tag.updated"}).json()
    assert [e["action"] for e in entries["data"]] == ["id_tag.updated", "id_tag.updated"]


def test_update_id_tag_rejects_bad_values_and_unknown_tags(api: httpx.Client, account: Account) -> None:
    tag = create_tag(api, account.team_id, id_tag="PUT-2")
    path = f"{tags_path(account.team_id)}/{tag['uuid']}"
    for body, field in (({"status": "Lost"}, "status"), ({"status": None}, "status"), ({"name": "x" * 256}, "name")):
        response = api.put(path, json=body)
        assert response.status_code == 422, response.text
        assert list(response.json()["errors"]) == [field]
    assert api.get(tags_path(account.team_id)).json()["data"][0]["status"] == "Accepted"
    missing = api.put(f"{tags_path(account.team_id)}/{uuid.uuid4()}", json={"status": "Blocked"})
    assert (missing.status_code, missing.json()) == (404, NOT_FOUND)
