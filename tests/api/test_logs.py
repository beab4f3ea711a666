"""A charger's OCPP message log over HTTP: spec/volttime-api.md `logs`, kept for N days; DESIGN (tenancy, paging)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update

from tests.conftest import LiveServer
from voltline.domain.frames import LogEntry
from voltline.services.accounts import Account
from voltline.store import chargers, schema
from voltline.store.writer import MeterWriter

LOG_KEYS = ["id", "direction", "message_type", "message_id", "action", "payload", "created_at"]
NOT_FOUND = {"message": "Not found."}
FORBIDDEN = {"message": "This action is unauthorized."}
T0 = datetime(2025, 3, 31, 12, 0, 0)


def new_charger(server: LiveServer, team_id: int | None) -> dict[str, Any]:
    """A charger of the team, made in the store as auto-registration and attach would leave it."""

    async def make() -> dict[str, Any]:
        async with server.runtime.db.write() as conn:
            identity = f"LOG-{uuid.uuid4().hex[:12]}"
            return dict(await chargers.create_charger(conn, identity, "ABCD2345", {"team_id": team_id}))

    return server.run(make)


def write_log(server: LiveServer, entries: list[LogEntry]) -> None:
    """Log entries through a batched writer on the server's loop, as the OCPP gateway does."""

    async def write() -> None:
        writer = MeterWriter(server.runtime.db, server.runtime.clock)
        for entry in entries:
            writer.log(entry)
        await writer.flush()

    server.run(write)


def entry(charger: dict[str, Any], n: int, action: str | None = "Heartbeat", **fields: Any) -> LogEntry:
    """The n-th frame of a charger, one second after the previous one."""
    values: dict[str, Any] = {
        "team_id": charger["team_id"],
        "direction": "in",
        "message_type": 2,
        "message_id": f"msg-{n}",
        "payload": f'{{"n":{n}}}',
        "created_at": T0 + timedelta(seconds=n),
    }
    values.update(fields)
    return LogEntry(charger_id=charger["id"], action=action, **values)


def logs_path(team_id: int | str, charger_ref: int | str) -> str:
    """The charger's log."""
    return f"/api/v2/teams/{team_id}/chargers/{charger_ref}/logs"


def test_the_log_is_paginated_newest_first_with_the_documented_keys(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """spec/volttime-api.md: GET .../chargers/{charger}/logs, paged (DESIGN: Laravel simple pagination, 25 per page)."""
    charger = new_charger(server, account.team_id)
    write_log(server, [entry(charger, n) for n in range(30)])
    first = api.get(logs_path(account.team_id, charger["id"]))
    assert first.status_code == 200
    body = first.json()
    assert list(body) == ["data", "links", "meta"]
    assert [item["message_id"] for item in body["data"]] == [f"msg-{n}" for n in range(29, 4, -1)]
    assert list(body["data"][0]) == LOG_KEYS
    assert body["data"][0]["created_at"] == "2025-03-31T12:00:29.000000Z"
    assert re.search(r"/logs\?page=2$", body["links"]["next"]) and body["links"]["prev"] is None
    assert body["meta"]["from"] == 1 and body["meta"]["to"] == 25 and body["meta"]["per_page"] == 25
    second = api.get(logs_path(account.team_id, charger["id"]), params={"page": 2}).json()
    assert [item["message_id"] for item in second["data"]] == [f"msg-{n}" for n in range(4, -1, -1)]
    assert second["links"]["next"] is None and second["meta"]["from"] == 26
    small = api.get(logs_path(account.team_id, charger["id"]), params={"per_page": 3}).json()
    assert [item["message_id"] for item in small["data"]] == ["msg-29", "msg-28", "msg-27"]


def test_each_item_carries_its_frame_and_the_payload_as_json(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """Each entry has its direction, action, payload and time; the payload is the JSON value, not a string."""
    charger = new_charger(server, account.team_id)
    write_log(
        server,
        [
            entry(charger, 1, "BootNotification", payload='{"chargePointVendor":"Alfen","chargePointModel":"NG9"}'),
            entry(
                charger, 2, None, direction="out", message_type=3, message_id="msg-1", payload='{"status":"Accepted"}'
            ),
            entry(charger, 3, None, direction="out", message_type=4, payload='["GenericError","Boom",{}]'),
            entry(charger, 4, "Heartbeat", payload="not kept"),
        ],
    )
    items = api.get(logs_path(account.team_id, charger["id"])).json()["data"]
    assert {key: items[3][key] for key in LOG_KEYS if key != "id"} == {
        "direction": "in",
        "message_type": 2,
        "message_id": "msg-1",
        "action": "BootNotification",
        "payload": {"chargePointVendor": "Alfen", "chargePointModel": "NG9"},
        "created_at": "2025-03-31T12:00:01.000000Z",
    }
    assert (items[2]["direction"], items[2]["message_type"], items[2]["action"]) == ("out", 3, None)
    assert items[2]["payload"] == {"status": "Accepted"}
    assert items[1]["payload"] == ["GenericError", "Boom", {}]
    assert items[0]["payload"] == "not kept"
    assert all(isinstance(item["id"], int) for item in items)


def test_the_action_filter_keeps_one_action(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """`?action=` selects the frames of one OCPP action; an action never seen gives an empty page."""
    charger = new_charger(server, account.team_id)
    actions = ["BootNotification", "Heartbeat", "StatusNotification", "StatusNotification", "Heartbeat"]
    write_log(server, [entry(charger, n, action) for n, action in enumerate(actions)])
    path = logs_path(account.team_id, charger["id"])
    status = api.get(path, params={"action": "StatusNotification"}).json()
    assert [item["message_id"] for item in status["data"]] == ["msg-3", "msg-2"]
    assert api.get(path, params={"action": "DataTransfer"}).json()["data"] == []
    assert len(api.get(path, params={"action": ""}).json()["data"]) == 5  # empty means no filter (Laravel)


def test_only_the_chargers_own_frames_are_listed(server: LiveServer, api: httpx.Client, account: Account) -> None:
    """The log is per charger."""
    mine, other = new_charger(server, account.team_id), new_charger(server, account.team_id)
    write_log(server, [entry(mine, 1), entry(other, 2), entry(mine, 3)])
    items = api.get(logs_path(account.team_id, mine["uuid"])).json()["data"]
    assert [item["message_id"] for item in items] == ["msg-3", "msg-1"]
    assert api.get(logs_path(account.team_id, new_charger(server, account.team_id)["id"])).json()["data"] == []


def test_another_teams_charger_is_404_and_another_teams_path_is_403(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: 404 for another team's object under one's own team path; 403 for another team's path."""
    stranger = server.account("Stranger")
    theirs = new_charger(server, stranger.team_id)
    write_log(server, [entry(theirs, 1)])
    for ref in (theirs["id"], theirs["uuid"], 999_999_999, "nope", 2**40):
        response = api.get(logs_path(account.team_id, ref))
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
    response = api.get(logs_path(stranger.team_id, theirs["id"]))
    assert (response.status_code, response.json()) == (403, FORBIDDEN)
    unplaced = new_charger(server, None)
    assert api.get(logs_path(account.team_id, unplaced["id"])).status_code == 404


def test_the_log_needs_a_token(server: LiveServer, account: Account) -> None:
    """DESIGN: 401 {"message":"Unauthenticated."}."""
    charger = new_charger(server, account.team_id)
    with server.client() as anonymous:
        response = anonymous.get(logs_path(account.team_id, charger["id"]))
    assert (response.status_code, response.json()) == (401, {"message": "Unauthenticated."})


def test_bad_query_parameters_are_422_with_laravel_messages(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: Laravel's wording; every error collected; never a 500 for bad input."""
    charger = new_charger(server, account.team_id)
    path = logs_path(account.team_id, charger["id"])
    response = api.get(path, params={"per_page": 101, "page": 0, "action": "x" * 65})
    assert response.status_code == 422
    assert response.json() == {
        "message": "The page field must be at least 1. (and 2 more errors)",
        "errors": {
            "page": ["The page field must be at least 1."],
            "per_page": ["The per page field must not be greater than 100."],
            "action": ["The action field must not be greater than 64 characters."],
        },
    }
    assert api.get(path, params={"page": "abc"}).status_code == 422
    huge = api.get(path, params={"page": 10**30})
    assert (huge.status_code, huge.json()["data"]) == (200, [])  # past the end, as the other lists


def test_the_route_is_in_the_openapi_document(server: LiveServer) -> None:
    """DESIGN: OpenAPI is generated from the route table."""
    with server.client() as client:
        document = client.get("/openapi.json").json()
    operation = document["paths"]["/api/v2/teams/{team}/chargers/{charger}/logs"]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} >= {"team", "charger", "page", "action"}


def test_a_team_reads_only_rows_logged_as_its_own_since_the_charger_was_attached(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: Charger security. Rows carry the team that owned the charger when written; rows of another
    team, of no team, or from before the charger's current attachment are shown to no team."""
    stranger = server.account("Stranger")
    charger = new_charger(server, account.team_id)
    write_log(
        server,
        [
            entry(charger, 1, message_id="theirs", team_id=stranger.team_id),
            entry(charger, 2, message_id="nobodys", team_id=None),
            entry(charger, 3, message_id="before"),
            entry(charger, 5, message_id="since"),
        ],
    )
    path = logs_path(account.team_id, charger["id"])
    assert [item["message_id"] for item in api.get(path).json()["data"]] == ["since", "before"]

    async def attach_at(moment: datetime) -> None:
        async with server.runtime.db.write() as conn:
            await conn.execute(
                update(schema.chargers).where(schema.chargers.c.id == charger["id"]).values(attached_at=moment)
            )

    server.run(lambda: attach_at(T0 + timedelta(seconds=4)))
    assert [item["message_id"] for item in api.get(path).json()["data"]] == ["since"]
