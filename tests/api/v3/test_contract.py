"""The v3 front-end's contract (spec volttime-v3 §1-§3): envelopes, types, pagination, errors, tenancy.

Every call goes over real HTTP to a live server (SQLite, and PostgreSQL when configured).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.api.v3.support import V3, Home, add_connector, get, make_home
from tests.conftest import LiveServer
from tests.support.sites import SITE_BODY

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
NOT_FOUND = {"message": "Not found."}


@pytest.fixture
def home(server: LiveServer) -> Home:
    return make_home(server)


def test_without_a_token_every_v3_route_is_a_json_401(server: LiveServer, home: Home) -> None:
    """spec v3 §1.4 / §6.2: `{"message": "Unauthenticated."}`, never an HTML redirect."""
    with server.client() as anonymous:
        for path in ("/user", "/teams", "/sites", "/chargers", f"/chargers/{home.charger['uuid']}"):
            response = anonymous.get(V3 + path)
            assert (response.status_code, response.json()) == (401, {"message": "Unauthenticated."}), path
        response = anonymous.post(f"{home.charger_url}/actions/start", json={"id_token": "X"})
        assert (response.status_code, response.json()) == (401, {"message": "Unauthenticated."})


def test_unknown_paths_and_methods_under_v3_are_json(server: LiveServer, home: Home) -> None:
    with server.client(home.account) as api:
        missing = api.get(f"{V3}/no-such-thing")
        assert (missing.status_code, missing.json()) == (404, NOT_FOUND)
        wrong = api.delete(f"{V3}/chargers")
        assert wrong.status_code == 405 and wrong.headers["content-type"].startswith("application/json")
        assert wrong.json() == {"message": "Method not allowed."}


def test_the_user_is_unwrapped(server: LiveServer, home: Home) -> None:
    """spec v3 §3.1 / §6.13: J reads `uuid`, `email`, `name` at the top level."""
    with server.client(home.account) as api:
        user = get(api, f"{V3}/user")
    assert "data" not in user
    assert set(user) == {"uuid", "id", "name", "email", "avatar", "created_at", "updated_at"}
    assert user["name"] == "Tester" and "@" in user["email"] and user["avatar"].startswith("https://www.gravatar.com/")
    assert isinstance(user["id"], int) and TIMESTAMP.match(user["created_at"])


def test_teams_are_the_users_teams_and_a_new_one_joins_them(server: LiveServer, home: Home) -> None:
    with server.client(home.account) as api:
        teams = get(api, f"{V3}/teams")["data"]
        assert [t["uuid"] for t in teams] == [home.team["uuid"]]
        assert set(teams[0]) >= {"uuid", "id", "is_personal_team", "name", "type", "email"}
        made = api.post(f"{V3}/teams", json={"name": "Fleet", "email": "fleet@example.com"})
        assert made.status_code == 201, made.text
        assert api.post(f"{V3}/teams", json={}).json() == {
            "message": "The name field is required.",
            "errors": {"name": ["The name field is required."]},
        }
        assert len(get(api, f"{V3}/teams")["data"]) == 2


def test_the_rate_limit_headers_are_v2s(server: LiveServer, home: Home) -> None:
    """DESIGN "v3 API": the same limiter as v2 (the test server turns it off; this test turns it on for itself)."""
    limiter = server.app.app.state.rate_limiter
    saved = limiter.limit
    limiter.limit = 2
    try:
        with server.client(home.account) as api:
            first = api.get(f"{V3}/user")
            second = api.get(f"{V3}/teams")
            third = api.get(f"{V3}/chargers")
    finally:
        limiter.limit = saved
    assert first.headers["X-RateLimit-Limit"] == "2" and first.headers["X-RateLimit-Remaining"] == "1"
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert (third.status_code, third.json()) == (429, {"message": "Too Many Attempts."})
    assert "Retry-After" in third.headers


# -- sites -------------------------------------------------------------------------------------------------


def test_sites_list_create_show_update(server: LiveServer, home: Home) -> None:
    """spec v3 §3.6: `data` envelope; `?team=` narrows; `team_uuid` picks the team; PUT is partial."""
    with server.client(home.account) as api:
        listed = get(api, f"{V3}/sites", team=home.team["uuid"])
        assert [s["uuid"] for s in listed["data"]] == [home.site["uuid"]]
        assert set(listed) == {"data", "links", "meta"}
        site = listed["data"][0]
        assert site["chargers_count"] == 1 and site["smart_charging"] == "disabled"
        assert site["permissions"] == {"basic": True, "sensitive": True, "full": True}
        assert site["address"] == "Main Street 12, 1234 AB Utrecht"
        assert site["capabilities"]["load_management"] == {"dynamic": False, "peak_shaving": False, "solar": True}
        assert get(api, f"{V3}/sites", search="utrecht")["data"][0]["uuid"] == home.site["uuid"]
        assert get(api, f"{V3}/sites", search="nowhere")["data"] == []
        foreign = api.get(f"{V3}/sites", params={"team": str(uuid.uuid4())})
        assert foreign.status_code == 422 and foreign.json()["errors"] == {"team": ["The selected team is invalid."]}
        shown = get(api, f"{V3}/sites/{home.site['uuid']}")["data"]
        assert shown == site
        changed = api.put(f"{V3}/sites/{home.site['uuid']}", json={"name": "Renamed"})
        assert changed.status_code == 200 and changed.json()["data"]["name"] == "Renamed"
        assert changed.json()["data"]["street"] == "Main Street"
        bad = api.put(f"{V3}/sites/{home.site['uuid']}", json={"country": "NLD"})
        assert bad.status_code == 422 and "country" in bad.json()["errors"]
        created = api.post(f"{V3}/sites", json=SITE_BODY)
        assert created.status_code == 201 and created.json()["data"]["chargers_count"] == 0
        invalid = api.post(f"{V3}/sites", json={**SITE_BODY, "team_uuid": str(uuid.uuid4())})
        assert invalid.status_code == 422
        assert invalid.json()["errors"] == {"team_uuid": ["The selected team is invalid."]}


def test_site_chargers_embed_connectors_and_attach_detach_use_the_pincode(server: LiveServer, home: Home) -> None:
    with server.client(home.account) as api:
        listed = get(api, f"{V3}/sites/{home.site['uuid']}/chargers")["data"]
        assert [c["uuid"] for c in listed] == [home.charger["uuid"]]
        assert [c["connector_id"] for c in listed[0]["connectors"]] == [1]
        detached = api.delete(f"{V3}/sites/{home.site['uuid']}/chargers/{home.charger['uuid']}")
        assert detached.status_code == 204
        assert get(api, f"{V3}/sites/{home.site['uuid']}/chargers")["data"] == []
        wrong = api.post(
            f"{V3}/sites/{home.site['uuid']}/chargers", json={"identity": home.charger["identity"], "pincode": "X"}
        )
        assert wrong.status_code == 422 and wrong.json()["errors"] == {"pincode": ["The pincode is invalid."]}
        pincode = get(api, home.charger_url)["data"]["pincode"]
        attached = api.post(
            f"{V3}/sites/{home.site['uuid']}/chargers", json={"identity": home.charger["identity"], "pincode": pincode}
        )
        assert attached.status_code == 200, attached.text
        assert attached.json()["data"]["uuid"] == home.charger["uuid"]
        assert attached.json()["data"]["connectors"][0]["connector_id"] == 1


# -- chargers --------------------------------------------------------------------------------------------------


CHARGER_TYPES: dict[str, Any] = {
    "uuid": str,
    "id": int,
    "identity": str,
    "reference": (str, type(None)),
    "connection_status": str,
    "status": (str, type(None)),
    "error": (str, type(None)),
    "error_info": (str, type(None)),
    "vendor_id": (str, type(None)),
    "vendor_error_code": (str, type(None)),
    "firmware_version": (str, type(None)),
    "parsed_firmware_version": (str, type(None)),
    "server": (str, type(None)),
    "last_connection_at": (str, type(None)),
    "last_disconnection_at": (str, type(None)),
    "last_heartbeat_at": (str, type(None)),
    "setup_pending": bool,
    "setup_completed": bool,
    "blocked": bool,
    "max_current": (int, type(None)),
    "created_at": str,
    "updated_at": str,
    "licenses": dict,
    "model": dict,
    "permissions": dict,
}


def test_a_charger_has_every_field_with_its_json_type(server: LiveServer, home: Home) -> None:
    """spec v3 §3.2 / §3.4: `data` wrapper, connectors embedded, integers stay integers (Go decoding)."""
    with server.client(home.account) as api:
        charger = get(api, home.charger_url)["data"]
    assert set(charger) == {*CHARGER_TYPES, "pincode", "connectors"}
    for name, kind in CHARGER_TYPES.items():
        assert isinstance(charger[name], kind), name
    assert charger["connection_status"] == "never_seen" and charger["server"] is None
    assert charger["last_connection_at"] is charger["last_disconnection_at"] is charger["last_heartbeat_at"] is None
    assert charger["licenses"] == {"smart": True, "pro": True}
    assert charger["permissions"] == {"basic": True, "sensitive": True, "full": True}
    assert charger["blocked"] is False and charger["max_current"] == 32
    assert isinstance(charger["pincode"], str) and len(charger["pincode"]) == 8
    [connector] = charger["connectors"]
    assert connector["connector_id"] == 1 and connector["status"] == "Available"
    assert connector["max_amperage"] == 32 and connector["power_type"] == "AC_3_PHASE"
    for name in ("id", "charger_id", "connector_id", "max_amperage"):
        assert type(connector[name]) is int, name


def test_chargers_page_with_a_null_next_on_the_last_page_and_empty_pages_past_the_end(server: LiveServer) -> None:
    """spec v3 §1.3 / §3.3: simple paginator; evcc stops on `data: []`, J on `links.next: null`."""
    account = server.account()
    with server.client(account) as api:
        made = [api.post(f"{V3}/chargers", json={"identity": f"PG-{uuid.uuid4().hex[:10]}"}) for _ in range(3)]
        assert [m.status_code for m in made] == [201, 201, 201]
        first = get(api, f"{V3}/chargers", per_page=2)
        second = get(api, f"{V3}/chargers", per_page=2, page=2)
        past = get(api, f"{V3}/chargers", per_page=2, page=3)
        assert [c["identity"] for c in first["data"] + second["data"]] == [m.json()["data"]["identity"] for m in made]
        assert first["links"]["next"].endswith("page=2") and second["links"]["next"] is None
        assert past["data"] == [] and past["links"]["next"] is None
        assert first["meta"] == {
            "current_page": 1,
            "from": 1,
            "path": f"{server.base_url}{V3}/chargers",
            "per_page": 2,
            "to": 2,
        }
        assert "connectors" not in first["data"][0] and "pincode" not in first["data"][0]
        assert len(get(api, f"{V3}/chargers", per_page=100)["data"]) == 3
        too_many = api.get(f"{V3}/chargers", params={"per_page": "101"})
        assert too_many.status_code == 422
        assert too_many.json()["errors"] == {"per_page": ["The per page field must not be greater than 100."]}


def test_create_and_update_a_charger(server: LiveServer, home: Home) -> None:
    with server.client(home.account) as api:
        taken = api.post(f"{V3}/chargers", json={"identity": home.charger["identity"]})
        assert taken.status_code == 422 and taken.json()["errors"] == {
            "identity": ["The identity has already been taken."]
        }
        other_site = api.post(f"{V3}/chargers", json={"identity": "NEW-1x", "site_uuid": str(uuid.uuid4())})
        assert other_site.status_code == 422 and "site_uuid" in other_site.json()["errors"]
        updated = api.put(home.charger_url, json={"reference": "Garage"})
        assert updated.status_code == 200 and updated.json()["data"]["reference"] == "Garage"
        too_long = api.put(home.charger_url, json={"reference": "x" * 256})
        assert too_long.status_code == 422 and "reference" in too_long.json()["errors"]


def test_a_foreign_or_unknown_charger_or_site_is_a_404_and_changes_nothing(server: LiveServer, home: Home) -> None:
    """DESIGN "v3 API": the token sees its user's teams and nothing else."""
    other = make_home(server, "Other")
    paths = [
        ("GET", f"{V3}/chargers/{other.charger['uuid']}", None),
        ("PUT", f"{V3}/chargers/{other.charger['uuid']}", {"reference": "mine"}),
        ("GET", f"{V3}/chargers/{other.charger['uuid']}/connectors/1/power-usage", None),
        ("GET", f"{V3}/chargers/{other.charger['uuid']}/transactions", None),
        ("POST", f"{V3}/chargers/{other.charger['uuid']}/actions/restart", None),
        ("GET", f"{V3}/sites/{other.site['uuid']}", None),
        ("PUT", f"{V3}/sites/{other.site['uuid']}", {"name": "mine"}),
        ("GET", f"{V3}/sites/{other.site['uuid']}/cards", None),
        ("DELETE", f"{V3}/sites/{home.site['uuid']}/chargers/{other.charger['uuid']}", None),
        ("GET", f"{V3}/chargers/{uuid.uuid4()}", None),
        ("GET", f"{V3}/chargers/{home.charger['id']}", None),  # v3 names chargers by uuid only
    ]
    with server.client(home.account) as api:
        for method, path, body in paths:
            response = api.request(method, path, json=body)
            assert (method, path, response.status_code, response.json()) == (method, path, 404, NOT_FOUND)
        mine = get(api, f"{V3}/chargers")["data"]
        assert [c["uuid"] for c in mine] == [home.charger["uuid"]]
        assert other.site["uuid"] not in str(get(api, f"{V3}/sites"))
    with server.client(other.account) as owner:
        assert get(owner, f"{V3}/chargers/{other.charger['uuid']}")["data"]["reference"] is None
        assert get(owner, f"{V3}/sites/{other.site['uuid']}")["data"]["name"] == SITE_BODY["name"]


# -- cards -------------------------------------------------------------------------------------------------------


def test_cards_are_the_id_tags_of_the_sites_team(server: LiveServer, home: Home) -> None:
    """DESIGN "v3 API": a card made on one site is an id tag of the team; spec v3 §3.13 shapes and errors."""
    base = f"{V3}/sites/{home.site['uuid']}/cards"
    with server.client(home.account) as api:
        made = api.post(base, json={"name": "Alice", "id_token": "04A1B2C3"})
        assert made.status_code == 201, made.text
        card = made.json()["data"]
        assert set(card) == {"id", "name", "id_token", "created_at", "updated_at"} and isinstance(card["id"], int)
        taken = api.post(base, json={"name": "Bob", "id_token": "04a1b2c3"})
        assert taken.status_code == 422
        assert taken.json()["errors"] == {"id_token": ["The id token has already been taken."]}
        assert api.post(base, json={"name": "Bob"}).json()["errors"] == {
            "id_token": ["The id token field is required."]
        }
        tags = get(api, f"/api/v2/teams/{home.account.team_id}/id-tags")["data"]
        assert [t["id_tag"] for t in tags] == ["04A1B2C3"]
        renamed = api.put(f"{base}/{card['id']}", json={"name": "Alice B", "id_token": "04A1B2C3"})
        assert renamed.status_code == 200 and renamed.json()["data"]["name"] == "Alice B"
        listed = get(api, base)
        assert [c["id_token"] for c in listed["data"]] == ["04A1B2C3"] and listed["links"]["next"] is None
        assert api.delete(f"{base}/{card['id']}").status_code == 204
        assert get(api, base)["data"] == []
        assert api.delete(f"{base}/{card['id']}").status_code == 404


def test_a_connector_without_a_rating_leaves_max_current_null(server: LiveServer) -> None:
    home = make_home(server)
    add_connector(server, home.charger["id"], 1, max_amperage=None)
    with server.client(home.account) as api:
        assert get(api, home.charger_url)["data"]["max_current"] is None


def test_a_connectors_rotation_and_rating_are_set_by_its_ocpp_number(server: LiveServer, home: Home) -> None:
    """spec v3 §3.7 PUT connector: both fields required; v2's rules; the charger document follows."""
    url = f"{home.charger_url}/connectors/1"
    with server.client(home.account) as api:
        changed = api.put(url, json={"phase_rotation": "RTS", "max_amperage": 16})
        assert changed.status_code == 200, changed.text
        assert changed.json()["data"]["connector_id"] == 1 and changed.json()["data"]["max_amperage"] == 16
        connector = get(api, home.charger_url)["data"]["connectors"][0]
        assert (connector["phase_rotation"], connector["max_amperage"]) == ("RTS", 16)
        assert get(api, home.charger_url)["data"]["max_current"] == 16
        missing = api.put(url, json={"max_amperage": 16})
        assert missing.status_code == 422
        assert missing.json()["errors"] == {"phase_rotation": ["The phase rotation field is required."]}
        assert api.put(url, json={"phase_rotation": "RTS", "max_amperage": 1001}).status_code == 422
        assert api.put(f"{home.charger_url}/connectors/9", json={}).status_code == 404
        loose = api.post(f"{V3}/chargers", json={"identity": f"LOOSE-{uuid.uuid4().hex[:8]}"}).json()["data"]
        add_connector(server, loose["id"])
        refused = api.put(
            f"{V3}/chargers/{loose['uuid']}/connectors/1", json={"phase_rotation": "RST", "max_amperage": 16}
        )
        assert (refused.status_code, refused.json()) == (409, {"message": "The charger is not on a site."})


def test_a_sites_connectors_carry_their_charger(server: LiveServer, home: Home) -> None:
    """spec v3 §3.6 `GET /sites/{site}/connectors`: connector objects with `charger` {uuid, id, identity, ...}."""
    add_connector(server, home.charger["id"], 2)
    with server.client(home.account) as api:
        listed = get(api, f"{V3}/sites/{home.site['uuid']}/connectors", per_page=1)
        assert [c["connector_id"] for c in listed["data"]] == [1] and listed["links"]["next"] is not None
        second = get(api, f"{V3}/sites/{home.site['uuid']}/connectors", per_page=1, page=2)
        assert [c["connector_id"] for c in second["data"]] == [2] and second["links"]["next"] is None
        assert second["data"][0]["charger"] == {
            "uuid": home.charger["uuid"],
            "id": home.charger["id"],
            "identity": home.charger["identity"],
            "connection_status": "never_seen",
            "status": None,
        }
        assert get(api, f"{V3}/sites/{home.site['uuid']}/connectors", page=3)["data"] == []
