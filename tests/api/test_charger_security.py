"""A charger's OCPP security profile and password on PUT|GET .../ocpp, and the identity rule of new chargers.

DESIGN: Charger security; docs/api.md "Set a charger's lenient flag, security profile and password".
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import charger_row, team_charger, unique_identity
from voltline.api import ENDPOINTS
from voltline.api.openapi import build_openapi
from voltline.domain.credentials import check_ocpp_password, new_pincode
from voltline.services.accounts import Account
from voltline.store import chargers

IDENTITY_FORMAT = "The identity field format is invalid."
SITE = {
    "name": "Depot",
    "street": "Main",
    "house_number": 1,
    "postal_code": "1234AB",
    "city": "Utrecht",
    "country": "NL",
}


def ocpp_path(account: Account, charger: dict[str, Any]) -> str:
    return f"/api/v2/teams/{account.team_id}/chargers/{charger['uuid']}/ocpp"


def test_a_new_charger_is_on_profile_1_without_a_password(api: httpx.Client, account: Account) -> None:
    charger = team_charger(api, account, security_profile=None)
    body = api.get(ocpp_path(account, charger)).json()["data"]
    assert (body["security_profile"], body["has_password"]) == (1, False)
    assert "password" not in body


def test_a_password_is_set_kept_when_omitted_and_never_shown(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    charger = team_charger(api, account, security_profile=None)
    path = ocpp_path(account, charger)
    body = api.put(path, json={"security_profile": 2, "password": "sixteen-chars-ok"}).json()["data"]
    assert (body["security_profile"], body["has_password"], "password" in body) == (2, True, False)
    stored = charger_row(server, charger["identity"])["password_hash"]
    assert check_ocpp_password(server.runtime.secret_key, "sixteen-chars-ok", stored)
    body = api.put(path, json={"security_profile": 0, "lenient": True}).json()["data"]
    assert (body["security_profile"], body["has_password"], body["lenient"]) == (0, True, True)
    assert charger_row(server, charger["identity"])["password_hash"] == stored
    assert api.put(path, json={}).json()["data"]["security_profile"] == 0


def test_a_generated_password_is_returned_once(server: LiveServer, api: httpx.Client, account: Account) -> None:
    charger = team_charger(api, account, security_profile=None)
    path = ocpp_path(account, charger)
    body = api.put(path, json={"generate_password": True}).json()["data"]
    password = body["password"]
    assert 16 <= len(password) <= 40 and password.isascii() and password.isprintable()
    assert (body["security_profile"], body["has_password"]) == (1, True)
    assert check_ocpp_password(
        server.runtime.secret_key, password, charger_row(server, charger["identity"])["password_hash"]
    )
    assert "password" not in api.get(path).json()["data"]
    again = api.put(path, json={"generate_password": True}).json()["data"]["password"]
    assert again != password
    assert "password" not in api.put(path, json={"generate_password": False}).json()["data"]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"security_profile": 3}, {"security_profile": ["The selected security profile is invalid."]}),
        ({"security_profile": -1}, {"security_profile": ["The selected security profile is invalid."]}),
        (
            {"security_profile": "high"},
            {
                "security_profile": [
                    "The security profile field must be an integer.",
                    "The selected security profile is invalid.",
                ]
            },
        ),
        (
            {"security_profile": None},
            {
                "security_profile": [
                    "The security profile field must be an integer.",
                    "The selected security profile is invalid.",
                ]
            },
        ),
        ({"password": "x" * 15}, {"password": ["The password field must be at least 16 characters."]}),
        ({"password": "x" * 41}, {"password": ["The password field must not be greater than 40 characters."]}),
        ({"password": "sixteen-chars-\u00e9\u00e9"}, {"password": ["The password field format is invalid."]}),
        ({"password": "sixteen\nchars-ok"}, {"password": ["The password field format is invalid."]}),
        ({"password": 1234567890123456}, {"password": ["The password field must be a string."]}),
        ({"generate_password": "yes"}, {"generate_password": ["The generate password field must be true or false."]}),
        (
            {"generate_password": True, "password": "sixteen-chars-ok"},
            {"password": ["The password field is prohibited when generate password is true."]},
        ),
    ],
)
def test_bad_security_values_are_laravel_422s(
    server: LiveServer, api: httpx.Client, account: Account, body: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    charger = team_charger(api, account, security_profile=None)
    response = api.put(ocpp_path(account, charger), json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == errors
    row = charger_row(server, charger["identity"])
    assert (row["security_profile"], row["password_hash"]) == (1, None)


def test_another_teams_charger_security_is_404(server: LiveServer, api: httpx.Client, account: Account) -> None:
    stranger = server.account()
    with server.client(stranger) as theirs:
        charger = team_charger(theirs, stranger, security_profile=None)
    mine = f"/api/v2/teams/{account.team_id}/chargers/{charger['uuid']}/ocpp"
    assert api.put(mine, json={"security_profile": 0}).status_code == 404
    assert charger_row(server, charger["identity"])["security_profile"] == 1


# -- the identity rule --------------------------------------------------------------------------------------


@pytest.mark.parametrize("identity", ["a b", "a/b", "..x/..", "<script>", "a:b", "caf\u00e9", "tab\there"])
def test_a_new_identity_outside_the_rule_is_a_422(api: httpx.Client, account: Account, identity: str) -> None:
    """DESIGN: 1-45 characters from letters, digits and *-_=+|@. (no `:`), for both create routes."""
    site = api.post(f"/api/v2/teams/{account.team_id}/sites", json=SITE).json()["data"]
    for path in (
        f"/api/v2/teams/{account.team_id}/chargers",
        f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers",
    ):
        response = api.post(path, json={"identity": identity})
        assert response.status_code == 422, response.text
        assert response.json() == {"message": IDENTITY_FORMAT, "errors": {"identity": [IDENTITY_FORMAT]}}


def test_every_character_of_the_rule_is_accepted(api: httpx.Client, account: Account) -> None:
    identity = f"aZ09*-_=+|@.{unique_identity()}"
    response = api.post(f"/api/v2/teams/{account.team_id}/chargers", json={"identity": identity})
    assert response.status_code == 201, response.text
    assert response.json()["data"]["identity"] == identity


def test_a_non_string_identity_breaks_the_rule_too_as_laravel_says(api: httpx.Client, account: Account) -> None:
    response = api.post(f"/api/v2/teams/{account.team_id}/chargers", json={"identity": ["VT_1"]})
    assert response.status_code == 422
    assert response.json() == {
        "message": "The identity field must be a string. (and 1 more error)",
        "errors": {"identity": ["The identity field must be a string.", IDENTITY_FORMAT]},
    }


def test_an_existing_identity_outside_the_rule_can_still_be_attached(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """Rows from before the rule keep working: attach names an existing charger."""
    identity = f"old one {unique_identity()}"
    pincode = new_pincode()

    async def make() -> None:
        async with server.runtime.db.write() as conn:
            await chargers.create_charger(conn, identity, pincode, {})

    server.run(make)
    site = api.post(f"/api/v2/teams/{account.team_id}/sites", json=SITE).json()["data"]
    body = {"identity": identity, "pincode": pincode}
    response = api.post(f"/api/v2/teams/{account.team_id}/sites/{site['id']}/attach-charger", json=body)
    assert response.status_code == 200, response.text


def test_the_openapi_document_shows_the_rule_and_the_security_fields() -> None:
    schemas = build_openapi(ENDPOINTS)["components"]["schemas"]
    identity = schemas["CreateChargerBody"]["properties"]["identity"]
    assert identity["pattern"] == "^[A-Za-z0-9*\\-_=+|@.]+$" and identity["maxLength"] == 45
    body = schemas["ChargerOcppBody"]["properties"]
    assert (body["security_profile"]["type"], body["security_profile"]["enum"]) == ("integer", [0, 1, 2])
    assert (body["password"]["minLength"], body["password"]["maxLength"]) == (16, 40)
    assert body["generate_password"]["type"] == "boolean"
    resource = schemas["ChargerOcppResource"]
    assert {"security_profile", "has_password", "password"} <= set(resource["properties"])
    assert "password" not in resource["required"] and "security_profile" in resource["required"]
