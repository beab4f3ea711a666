"""The OCPP message log over real sockets: whose rows a team reads, capped payloads, cut action names.

DESIGN (Charger security): "Message-log rows carry the team that owned the charger when written, and
each team reads only its own rows; rows from before a charger's current attachment are shown to no
team." README (VOLTLINE_OCPP_LOG_MAX_PAYLOAD) and docs/api.md: a payload over the cap is stored as
`{"truncated": true, "bytes": N}`.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import Raw, charger_row, open_charger, run, team_charger, wait_for
from voltline.services.accounts import Account

SITE = {"name": "Depot", "street": "Main Street", "house_number": 1, "postal_code": "1234 AB", "city": "Utrecht"}
CAP = 8 * 1024  # VOLTLINE_OCPP_LOG_MAX_PAYLOAD's default


def new_site(api: httpx.Client, account: Account) -> dict[str, Any]:
    """A site of the account's team."""
    response = api.post(f"/api/v2/teams/{account.team_id}/sites", json={**SITE, "country": "NL"})
    assert response.status_code == 201, response.text
    site: dict[str, Any] = response.json()["data"]
    return site


def attach(api: httpx.Client, account: Account, site: dict[str, Any], identity: str, pincode: str) -> None:
    """Attach the charger to the site with its pincode, through the API."""
    path = f"/api/v2/teams/{account.team_id}/sites/{site['id']}/attach-charger"
    response = api.post(path, json={"identity": identity, "pincode": pincode})
    assert response.status_code == 200, response.text


def detach(api: httpx.Client, account: Account, site: dict[str, Any], charger_id: int) -> None:
    """Take the charger off the site, through the API."""
    response = api.delete(f"/api/v2/teams/{account.team_id}/sites/{site['id']}/chargers/{charger_id}")
    assert response.status_code == 204, response.text


def team_log(server: LiveServer, api: httpx.Client, account: Account, charger_id: int) -> list[dict[str, Any]]:
    """Every row of the charger's log the team reads (after the batched writer flushed), newest first."""
    server.run(server.runtime.writer.flush)
    response = api.get(f"/api/v2/teams/{account.team_id}/chargers/{charger_id}/logs", params={"per_page": 100})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["data"]
    return items


def session_team(server: LiveServer, identity: str) -> int | None:
    """The team the charger's open session on the server stamps its rows with."""
    session = server.app.app.state.gateway.registry.get(identity)
    assert session is not None
    team: int | None = session.ctx.team_id
    return team


def texts(items: list[dict[str, Any]]) -> str:
    """The rows as one text, to look for id tags in."""
    return json.dumps(items)


def test_a_charger_moved_to_another_team_shows_it_none_of_the_old_teams_rows(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: Charger security. Team 2 never reads team 1's rows (id tags included); when team 1 attaches
    the charger again it reads only what was logged since, not its own older rows nor team 2's."""
    other = server.account("Second team")
    charger = team_charger(api, account)
    identity, charger_id = charger["identity"], charger["id"]
    pincode = charger_row(server, identity)["pincode"]
    first_site, second_site = new_site(api, account), None

    with server.client(other) as other_api:
        second_site = new_site(other_api, other)

        async def scenario() -> None:
            attach(api, account, first_site, identity, pincode)
            async with open_charger(server, identity) as ws:
                cp = Raw(ws)
                await cp.result("Authorize", {"idTag": "TEAM1-SECRET"})
                assert "TEAM1-SECRET" in texts(team_log(server, api, account, charger_id))

                detach(api, account, first_site, charger_id)
                await cp.result("Authorize", {"idTag": "TEAM1-DETACHED"})
                attach(other_api, other, second_site, identity, pincode)
                assert team_log(server, other_api, other, charger_id) == []
                wait_for(lambda: session_team(server, identity) == other.team_id)  # the session follows the move
                await cp.result("Authorize", {"idTag": "TEAM2-TAG"})
                seen = texts(team_log(server, other_api, other, charger_id))
                assert "TEAM2-TAG" in seen
                assert "TEAM1-SECRET" not in seen and "TEAM1-DETACHED" not in seen
                assert api.get(f"/api/v2/teams/{account.team_id}/chargers/{charger_id}/logs").status_code == 404

                detach(other_api, other, second_site, charger_id)
                attach(api, account, first_site, identity, pincode)
                wait_for(lambda: session_team(server, identity) == account.team_id)
                await cp.result("Authorize", {"idTag": "TEAM1-AGAIN"})
                seen = texts(team_log(server, api, account, charger_id))
                assert "TEAM1-AGAIN" in seen
                assert all(tag not in seen for tag in ("TEAM1-SECRET", "TEAM1-DETACHED", "TEAM2-TAG"))

        run(scenario())


def test_a_payload_over_the_cap_is_stored_as_a_marker_with_its_size(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """README: VOLTLINE_OCPP_LOG_MAX_PAYLOAD (8 KiB); a larger payload is stored as valid JSON naming its
    size: a DataTransfer, a CALLRESULT for an id we never sent, and a CALL of an unknown action alike."""
    charger = team_charger(api, account)
    big = "x" * 20_000
    data_transfer = {"vendorId": "ACME", "data": big}
    small = {"vendorId": "ACME", "data": "y" * (CAP - 100)}

    async def scenario() -> None:
        async with open_charger(server, charger["identity"]) as ws:
            cp = Raw(ws)
            await cp.result("DataTransfer", data_transfer)
            await cp.result("DataTransfer", small)
            await ws.send(json.dumps([3, "never-sent", {"blob": big}]))
            assert (await cp.call("MadeUpAction", {"blob": big}))[0] == 4

    run(scenario())
    items = team_log(server, api, account, charger["id"])
    size, blob = len(json.dumps(data_transfer)), len(json.dumps({"blob": big}))  # Raw sends json.dumps' spacing
    by_kind = {(item["direction"], item["message_type"], item["message_id"]): item["payload"] for item in items}
    assert by_kind["in", 2, "m1"] == {"truncated": True, "bytes": size}
    assert by_kind["in", 2, "m2"] == small  # under the cap: kept whole
    assert by_kind["in", 3, "never-sent"] == {"truncated": True, "bytes": blob}
    assert by_kind["in", 2, "m3"] == {"truncated": True, "bytes": blob}
    assert all(len(json.dumps(item["payload"])) <= CAP for item in items)


def test_an_unknown_action_name_is_cut_in_the_callerror_and_the_log(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """OCPP-J 1.6 §4.2.3: an unknown action answers NotImplemented; its name, chosen by the charger, is
    cut to the log's action column (64 characters) in the answer's description and in the log."""
    charger = team_charger(api, account)
    action = "Q" * 100_000

    async def scenario() -> list[Any]:
        async with open_charger(server, charger["identity"]) as ws:
            cp = Raw(ws)
            answer: list[Any] = await cp.call(action, {})
            assert await cp.result("Heartbeat", {}) != {}  # the socket stays open
            return answer

    answer = run(scenario())
    assert answer[2] == "NotImplemented"
    assert answer[3] == f"Unknown action {'Q' * 64!r}... (100000 characters)"
    items = team_log(server, api, account, charger["id"])
    assert {item["action"] for item in items if item["message_id"] == "m1"} == {"Q" * 64}
    assert all(len(json.dumps(item)) < 1_000 for item in items)
