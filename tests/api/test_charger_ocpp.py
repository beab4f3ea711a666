"""A charger's OCPP details and its lenient flag (DESIGN "OCPP": per charger, by API and CLI, global default)."""

from __future__ import annotations

import httpx
from click.testing import CliRunner

from tests.conftest import LiveServer
from voltline.cli import main
from voltline.services.accounts import Account

KEYS = [
    "identity",
    "ocpp_version",
    "vendor",
    "model",
    "serial_number",
    "firmware_version",
    "firmware_status",
    "diagnostics_status",
    "heartbeat_interval",
    "last_seen_at",
    "lenient",
    "effective_lenient",
    "security_profile",
    "has_password",
]


def make_charger(api: httpx.Client, account: Account, identity: str) -> dict[str, object]:
    response = api.post(f"/api/v2/teams/{account.team_id}/chargers", json={"identity": identity})
    assert response.status_code == 201
    data: dict[str, object] = response.json()["data"]
    return data


def test_a_new_charger_follows_the_server_default(api: httpx.Client, account: Account) -> None:
    charger = make_charger(api, account, "OCPP-DETAILS-1")
    body = api.get(f"/api/v2/teams/{account.team_id}/chargers/{charger['uuid']}/ocpp").json()["data"]
    assert list(body) == KEYS
    assert (body["lenient"], body["effective_lenient"], body["ocpp_version"]) == (None, False, None)


def test_the_lenient_flag_is_set_and_reset_through_the_api(api: httpx.Client, account: Account) -> None:
    charger = make_charger(api, account, "OCPP-DETAILS-2")
    path = f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}/ocpp"
    on = api.put(path, json={"lenient": True}).json()["data"]
    assert (on["lenient"], on["effective_lenient"]) == (True, True)
    assert api.get(path).json()["data"]["lenient"] is True
    back = api.put(path, json={"lenient": None}).json()["data"]
    assert (back["lenient"], back["effective_lenient"]) == (None, False)
    unchanged = api.put(path, json={}).json()["data"]
    assert unchanged["lenient"] is None


def test_a_non_boolean_lenient_is_a_422(api: httpx.Client, account: Account) -> None:
    charger = make_charger(api, account, "OCPP-DETAILS-3")
    response = api.put(f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}/ocpp", json={"lenient": "sure"})
    assert response.status_code == 422
    assert response.json()["errors"] == {"lenient": ["The lenient field must be true or false."]}


def test_the_cli_sets_the_flag_that_the_api_shows(server: LiveServer, api: httpx.Client, account: Account) -> None:
    charger = make_charger(api, account, "OCPP-DETAILS-4")
    env = {
        "VOLTLINE_DATABASE_URL": server.settings.effective_database_url,
        "VOLTLINE_DATA_DIR": server.settings.data_dir,
    }
    result = CliRunner().invoke(main, ["chargers", "lenient", "OCPP-DETAILS-4", "on"], env=env)
    assert result.exit_code == 0, result.output
    body = api.get(f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}/ocpp").json()["data"]
    assert body["lenient"] is True
    missing = CliRunner().invoke(main, ["chargers", "lenient", "NO-SUCH-CHARGER", "off"], env=env)
    assert missing.exit_code == 1
    assert "no charger with identity NO-SUCH-CHARGER" in missing.output
    bad = CliRunner().invoke(main, ["chargers", "lenient", "OCPP-DETAILS-4", "maybe"], env=env)
    assert bad.exit_code == 2
