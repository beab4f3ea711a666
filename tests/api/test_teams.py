"""Users and teams: spec/volttime-api.md D1, D2, E1."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer
from voltline.services.accounts import Account

TEAM_KEYS = ["uuid", "id", "is_personal_team", "name", "type", "email", "created_at", "updated_at"]
TIMESTAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"


def test_user_is_returned_unwrapped_with_the_documented_keys(api: httpx.Client, account: Account) -> None:
    """spec E1: GET /api/v2/user is not wrapped in data."""
    response = api.get("/api/v2/user")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["uuid", "id", "name", "email", "intercom", "created_at", "updated_at"]
    assert body["id"] == account.user_id and body["email"] == account.email
    assert set(body["intercom"]) == {"hmac_android", "hmac_ios", "hmac_web"}
    assert all(len(value) == 64 for value in body["intercom"].values())


def test_teams_lists_the_personal_team_unpaginated(api: httpx.Client, account: Account) -> None:
    """spec D1 and DESIGN: GET /teams is unpaginated."""
    body = api.get("/api/v2/teams").json()
    assert list(body) == ["data"]
    assert [team["id"] for team in body["data"]] == [account.team_id]
    team = body["data"][0]
    assert list(team) == TEAM_KEYS
    assert team["is_personal_team"] is True and team["type"] == "Personal"


def test_create_team_returns_201_and_the_team_joins_the_list(api: httpx.Client) -> None:
    response = api.post("/api/v2/teams", json={"name": "Fleet", "email": "fleet@example.com", "type": "Company"})
    assert response.status_code == 201
    team = response.json()["data"]
    assert list(team) == TEAM_KEYS
    assert (team["name"], team["email"], team["type"], team["is_personal_team"]) == (
        "Fleet",
        "fleet@example.com",
        "Company",
        False,
    )
    assert team["id"] in [t["id"] for t in api.get("/api/v2/teams").json()["data"]]


def test_create_team_rejects_bad_values_with_laravel_messages(api: httpx.Client) -> None:
    response = api.post("/api/v2/teams", json={"name": "x" * 256, "email": "nope", "type": "Pirate"})
    assert response.status_code == 422
    assert response.json() == {
        "message": "The name field must not be greater than 255 characters. (and 2 more errors)",
        "errors": {
            "name": ["The name field must not be greater than 255 characters."],
            "email": ["The email field must be a valid email address."],
            "type": ["The selected type is invalid."],
        },
    }


def test_missing_or_unknown_token_is_401(server: LiveServer) -> None:
    with server.client() as anonymous:
        assert anonymous.get("/api/v2/teams").json() == {"message": "Unauthenticated."}
        response = anonymous.get("/api/v2/user", headers={"Authorization": "Bearer vlt_nope"})
        assert response.status_code == 401


def test_authorization_mode_defaults_to_accept_all_and_can_be_set(api: httpx.Client, account: Account) -> None:
    path = f"/api/v2/teams/{account.team_id}/authorization"
    assert api.get(path).json() == {"data": {"authorization_mode": "accept_all"}}
    assert api.put(path, json={"authorization_mode": "allow_list"}).json() == {
        "data": {"authorization_mode": "allow_list"}
    }
    bad = api.put(path, json={"authorization_mode": "everyone"})
    assert bad.status_code == 422
    assert bad.json()["errors"] == {"authorization_mode": ["The selected authorization mode is invalid."]}
