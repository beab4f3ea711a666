"""The audit log: who changed what, when, and the outcome (DESIGN "Services tier").

Every change goes through the real server over HTTP; charger commands reach a real charger (the
`ocpp` package's ChargePoint) through the bus and gateway, and a change the charger reports over
OCPP is recorded as `system`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import dedicated_server, identity_only, unique_identity
from tests.support.chargers import add_connector, attach, charger_row, create_site_charger
from tests.support.groups import groups_path, make_group
from tests.support.interop import SilentCharger, connected, now, scenario
from tests.support.sites import errors_of, make_site, sites_path
from voltline.domain.ids import UserId
from voltline.services.accounts import Account
from voltline.store import users


class ObedientCharger(ChargePoint):  # type: ignore[misc]
    """A 1.6 charge point that accepts RemoteStopTransaction and Reset."""

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, **_: Any) -> Any:
        return call_result.RemoteStopTransaction(status="Accepted")

    @on(Action.reset)
    def on_reset(self, **_: Any) -> Any:
        return call_result.Reset(status="Accepted")


def team_charger(server: LiveServer, account: Account) -> tuple[dict[str, Any], str]:
    """A charger of the account's team on profile 0, and its commands path."""
    with server.client(account) as api:
        response = api.post(f"/api/v2/teams/{account.team_id}/chargers", json={"identity": unique_identity("AUD")})
        charger: dict[str, Any] = response.json()["data"]
        identity_only(api, account, charger)
    return charger, f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}/commands"


def audit_log(api: httpx.Client, account: Account, **params: Any) -> list[dict[str, Any]]:
    response = api.get(f"/api/v2/teams/{account.team_id}/audit-log", params=params)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def token_actor(server: LiveServer, account: Account) -> dict[str, Any]:
    """The actor a request with the account's token is recorded as."""

    async def token_id() -> int:
        async with server.runtime.db.read() as conn:
            return int((await users.list_api_tokens(conn, UserId(account.user_id)))[0]["id"])

    return {"kind": "token", "id": str(server.run(token_id)), "user_id": account.user_id, "label": account.email}


SYSTEM = {"kind": "system", "id": None, "user_id": None, "label": "system"}


def summary(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["action"], r["object_type"], r["object_id"], r["outcome"], r["actor"]["kind"]) for r in rows]


def test_a_token_user_stopping_a_session_and_resetting_a_charger_is_recorded_with_the_answers(
    server: LiveServer, account: Account
) -> None:
    """Who stopped a session and reset a charger: the token; the charger's own StopTransaction: system."""
    charger, base = team_charger(server, account)

    async def body(api: httpx.AsyncClient) -> tuple[int, list[httpx.Response]]:
        async with connected(server, charger["identity"], ObedientCharger) as cp:
            started = await cp.call(
                call.StartTransaction(connector_id=1, id_tag="CARD1", meter_start=1000, timestamp=now())
            )
            stop = await api.post(f"{base}/stop", json={})
            await cp.call(
                call.StopTransaction(
                    meter_stop=2000, timestamp=now(), transaction_id=started.transaction_id, reason="Remote"
                )
            )
            reset = await api.post(f"{base}/restart", json={"type": "Hard"})
        return started.transaction_id, [stop, reset]

    transaction_id, answers = scenario(server, account, body)
    assert [a.json() for a in answers] == [{"message": "Accepted"}, {"message": "Accepted"}]
    with server.client(account) as api:
        rows = audit_log(api, account, object_type="transaction", object_id=str(transaction_id))
        reset = audit_log(api, account, object_type="charger", object_id=charger["uuid"], action="charger.reset")
    tx = str(transaction_id)
    assert summary(rows) == [
        ("transaction.stopped", "transaction", tx, "ok", "system"),
        ("transaction.remote_stop", "transaction", tx, "Accepted", "token"),
        ("transaction.started", "transaction", tx, "ok", "system"),
    ]
    assert rows[1]["actor"] == token_actor(server, account)
    assert rows[1]["detail"] == {"transaction_id": transaction_id}
    assert rows[0]["actor"] == SYSTEM
    assert rows[0]["detail"] == {"charger_id": charger["id"], "stop_reason": "Remote"}
    assert [(r["outcome"], r["detail"], r["actor"]) for r in reset] == [
        ("Accepted", {"type": "Hard"}, token_actor(server, account))
    ]
    assert reset[0]["at"].endswith("Z")


def test_a_command_to_an_offline_charger_and_one_the_charger_refuses_are_recorded_with_the_failure(
    server: LiveServer, account: Account
) -> None:
    """The outcome is the error: `offline` (409) and the CALLERROR code (502)."""
    charger, base = team_charger(server, account)
    with server.client(account) as api:
        offline = api.post(f"{base}/unlock", json={"connector_id": 1})

    async def refused(api: httpx.AsyncClient) -> httpx.Response:
        async with connected(server, charger["identity"], ChargePoint):  # no handlers: CALLERROR NotImplemented
            return await api.post(f"{base}/restart", json={})

    failed = scenario(server, account, refused)
    assert (offline.status_code, failed.status_code) == (409, 502)
    with server.client(account) as api:
        rows = audit_log(api, account, object_id=charger["uuid"], actor_kind="token")
    assert [(r["action"], r["outcome"], r["detail"]) for r in rows[:2]] == [
        ("charger.reset", "error:NotImplemented", {"type": "Soft"}),
        ("charger.unlock", "offline", {"connector_id": 1}),
    ]
    assert [r["action"] for r in rows[2:]] == ["charger.ocpp_settings_changed", "charger.created"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_command_the_charger_never_answers_is_recorded_as_a_timeout(
    fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory, backend: str
) -> None:
    with dedicated_server(fresh_database, tmp_path_factory, backend, ocpp_call_timeout=0.5) as server:
        account = server.account()
        charger, base = team_charger(server, account)

        async def body(api: httpx.AsyncClient) -> httpx.Response:
            async with connected(server, charger["identity"], SilentCharger):
                return await api.post(f"{base}/unlock", json={"connector_id": 2})

        response = scenario(server, account, body)
        with server.client(account) as api:
            rows = audit_log(api, account, action="charger.unlock")
    assert response.status_code == 504
    assert [(r["object_id"], r["outcome"], r["detail"]) for r in rows] == [
        (charger["uuid"], "timeout", {"connector_id": 2})
    ]


def test_changing_a_connector_limit_and_site_settings_is_recorded_with_what_changed(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    site = make_site(api, account)
    charger = create_site_charger(api, account.team_id, site["id"], unique_identity("AUD"))
    connector = add_connector(server, charger["id"], 1, max_amperage=32)
    path = f"/api/v2/teams/{account.team_id}/sites/{site['id']}/connectors/{connector['uuid']}"
    assert api.put(path, json={"max_amperage": 16}).status_code == 200
    assert api.put(path, json={"phases": 1}).status_code == 200
    smart = f"{sites_path(account)}/{site['id']}/smart-charging"
    assert api.put(smart, json={"smart_charging": "disabled", "timezone": "Asia/Tokyo"}).status_code == 200
    assert api.put(f"{sites_path(account)}/{site['id']}", json={"name": "Renamed"}).status_code == 200
    rows = audit_log(api, account)
    assert [(r["action"], r["object_type"], r["object_id"], r["detail"]) for r in rows] == [
        ("site.updated", "site", site["uuid"], {"fields": ["name"]}),
        (
            "smart_charging.updated",
            "site",
            site["uuid"],
            {"fields": ["day_ahead_pricing_strategy", "smart_charging", "timezone"]},
        ),
        ("connector.updated", "connector", connector["uuid"], {"fields": ["phases"]}),
        ("connector.limit_changed", "connector", connector["uuid"], {"fields": ["max_amperage"], "from": 32, "to": 16}),
        ("charger.created", "charger", charger["uuid"], {"identity": charger["identity"], "site_id": site["id"]}),
        ("site.created", "site", site["uuid"], None),
    ]
    assert {r["actor"]["kind"] for r in rows} == {"token"}
    assert {r["outcome"] for r in rows} == {"ok"}


def test_a_refused_change_leaves_no_row(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """The change and its row commit together: input refused after the site was found records nothing."""
    site = make_site(api, account)
    errors_of(api.put(f"{sites_path(account)}/{site['id']}", json={"country": "Netherlands"}))
    assert api.delete(f"{sites_path(account)}/{site['id']}").status_code == 204
    assert [r["action"] for r in audit_log(api, account)] == ["site.deleted", "site.created"]


def test_no_secret_enters_the_log(server: LiveServer, api: httpx.Client, account: Account) -> None:
    charger, _ = team_charger(server, account)
    password = "a-secret-password-of-32-characters"
    path = f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}/ocpp"
    assert api.put(path, json={"security_profile": 1, "password": password}).status_code == 200
    response = api.get(f"/api/v2/teams/{account.team_id}/audit-log")
    assert password not in response.text
    assert response.json()["data"][0]["action"] == "charger.ocpp_settings_changed"
    assert response.json()["data"][0]["detail"] == {"fields": ["password_hash", "security_profile"]}


def test_the_log_is_paginated_newest_first_and_filtered_by_object_and_actor(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    made = [make_site(api, account, name=f"Site {n}") for n in range(3)]
    first = api.get(f"/api/v2/teams/{account.team_id}/audit-log", params={"per_page": 2}).json()
    assert [r["object_id"] for r in first["data"]] == [made[2]["uuid"], made[1]["uuid"]]
    assert first["links"]["next"].endswith("per_page=2&page=2")
    assert first["meta"] | {"path": None} == {"current_page": 1, "from": 1, "path": None, "per_page": 2, "to": 2}
    second = api.get(first["links"]["next"]).json()
    assert [r["object_id"] for r in second["data"]] == [made[0]["uuid"]]
    assert second["links"]["next"] is None
    only = audit_log(api, account, object_type="site", object_id=made[1]["uuid"])
    assert [r["object_id"] for r in only] == [made[1]["uuid"]]
    actor = token_actor(server, account)
    assert len(audit_log(api, account, actor_kind="token", actor_id=actor["id"])) == 3
    assert len(audit_log(api, account, actor_user_id=account.user_id)) == 3
    assert audit_log(api, account, actor_kind="system") == []
    assert audit_log(api, account, actor_kind="token", actor_id="999999") == []


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"object_type": "planet"}, {"object_type": ["The selected object type is invalid."]}),
        ({"actor_kind": "robot"}, {"actor_kind": ["The selected actor kind is invalid."]}),
        ({"actor_user_id": "me"}, {"actor_user_id": ["The actor user id field must be an integer."]}),
        ({"object_id": "x" * 65}, {"object_id": ["The object id field must not be greater than 64 characters."]}),
        ({"per_page": 101}, {"per_page": ["The per page field must not be greater than 100."]}),
    ],
)
def test_bad_filters_are_422(api: httpx.Client, account: Account, params: dict[str, Any], errors: Any) -> None:
    assert errors_of(api.get(f"/api/v2/teams/{account.team_id}/audit-log", params=params)) == errors


def test_a_team_reads_only_its_own_rows(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """DESIGN: 403 for another team's path; a team's own log never shows another team's rows."""
    site = make_site(api, account)
    other = server.account()
    with server.client(other) as stranger:
        foreign = stranger.get(f"/api/v2/teams/{account.team_id}/audit-log")
        own = audit_log(stranger, other, object_id=site["uuid"])
        everything = audit_log(stranger, other)
    assert (foreign.status_code, foreign.json()) == (403, {"message": "This action is unauthorized."})
    assert own == []
    assert everything == []


def test_every_other_change_through_the_api_leaves_its_row(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """Teams, groups, chargers (update, detach, attach), id tags and meters: one row each, by the token."""
    team = f"/api/v2/teams/{account.team_id}"
    site = make_site(api, account)
    charger = create_site_charger(api, account.team_id, site["id"], unique_identity("AUD"))
    group = make_group(api, account, site, total_amps=20)
    group_path = f"{groups_path(account, site)}/{group['id']}"
    pincode = charger_row(server, charger["id"])["pincode"]
    writes = [
        api.put(f"{team}/authorization", json={"authorization_mode": "allow_list"}),
        api.put(group_path, json={"total_amps": 24}),
        api.post(f"{group_path}/chargers", json={"charger": charger["id"]}),
        api.delete(group_path),
        api.put(f"{team}/chargers/{charger['id']}", json={"reference": "bay 4"}),
        api.delete(f"{team}/sites/{site['id']}/chargers/{charger['id']}"),
        attach(api, account.team_id, site["id"], {"identity": charger["identity"], "pincode": pincode}),
        api.post(f"{team}/id-tags", json={"id_tag": "CARD-7"}),
        api.post(f"{team}/meters", json={"type": "ct_meter"}),
        api.post("/api/v2/teams", json={"name": "Second"}),
    ]
    assert [w.status_code for w in writes] == [200, 200, 200, 204, 200, 204, 200, 201, 201, 201]
    tag = writes[7].json()["data"]
    assert api.delete(f"{team}/id-tags/{tag['id']}").status_code == 204
    rows = audit_log(api, account)
    assert [(r["action"], r["object_id"], r["detail"]) for r in rows[:11]] == [
        ("id_tag.deleted", tag["uuid"], {"id_tag": "CARD-7"}),
        ("meter.created", writes[8].json()["data"]["uuid"], {"type": "ct_meter"}),
        ("id_tag.created", tag["uuid"], {"id_tag": "CARD-7"}),
        ("charger.attached", charger["uuid"], {"site_id": site["id"]}),
        ("charger.detached", charger["uuid"], {"site_id": site["id"]}),
        ("charger.updated", charger["uuid"], {"fields": ["reference"]}),
        ("group.deleted", group["uuid"], None),
        ("group.charger_assigned", group["uuid"], {"charger_id": charger["id"]}),
        ("group.updated", group["uuid"], {"fields": ["total_amps"], "total_amps": 24}),
        ("team.authorization_changed", rows[9]["object_id"], {"authorization_mode": "allow_list"}),
        ("group.created", group["uuid"], {"fields": ["group_id", "total_amps"], "total_amps": 20}),
    ]
    assert {r["actor"]["kind"] for r in rows} == {"token"}
    second = writes[9].json()["data"]
    response = api.get(f"/api/v2/teams/{second['id']}/audit-log")
    assert [(r["action"], r["object_id"]) for r in response.json()["data"]] == [("team.created", second["uuid"])]
