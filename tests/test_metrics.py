"""GET /metrics: the bearer token, and what a real server counts after real traffic (Prometheus text format)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import (
    BOOT,
    TIMESTAMP,
    Raw,
    dedicated_server,
    get_charger,
    open_charger,
    team_charger,
    unique_identity,
    wait_for,
)

TOKEN = "metrics-scraper-token-0123456789abcdef"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
SITE_BODY = {
    "name": "Depot",
    "street": "Main Street",
    "house_number": 1,
    "postal_code": "1234 AB",
    "city": "Utrecht",
    "country": "NL",
}
READING = {
    "connectorId": 1,
    "meterValue": [
        {
            "timestamp": TIMESTAMP,
            "sampledValue": [{"value": "10", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}],
        }
    ],
}


@pytest.fixture
def live(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server of its own (its own registry) with a metrics token; no message log, so that writer batches
    hold meter frames only; a 1 s command timeout; control runs after 0.05 s."""
    settings = {"metrics_token": TOKEN, "ocpp_log": "off", "ocpp_call_timeout": 1.0, "smart_debounce": 0.05}
    with dedicated_server(fresh_database, tmp_path_factory, server.backend, **settings) as live:
        yield live


def scrape(live: LiveServer) -> Samples:
    """Every sample of the exposition, by name and labels."""
    response = httpx.get(f"{live.base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, None when the series is absent."""
    return samples.get((name, frozenset(labels.items())))


def labels_of(samples: Samples, name: str, label: str) -> set[str]:
    """Every value a label takes in a metric's samples."""
    return {dict(key)[label] for (sample, key) in samples if sample == name}


def test_metrics_is_not_found_while_no_token_is_set(server: LiveServer) -> None:
    """Without VOLTLINE_METRICS_TOKEN, /metrics answers like any path nobody serves."""
    unknown = httpx.get(f"{server.base_url}/no-such-page")
    for response in (
        httpx.get(f"{server.base_url}/metrics"),
        httpx.get(f"{server.base_url}/metrics", headers={"Authorization": "Bearer anything"}),
        httpx.post(f"{server.base_url}/metrics"),
    ):
        assert (response.status_code, response.json()) == (404, unknown.json()) == (404, {"message": "Not found."})


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer ü".encode("latin-1"),
    ],
)
def test_metrics_wants_the_bearer_token(live: LiveServer, authorization: str | bytes | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx.get(f"{live.base_url}/metrics", headers=headers)
    assert (response.status_code, response.json()) == (401, {"message": "Unauthenticated."})


def test_metrics_with_the_token_is_the_prometheus_text_format(live: LiveServer) -> None:
    response = httpx.get(f"{live.base_url}/metrics", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    names = {family.name for family in text_string_to_metric_families(response.text)}
    expected = {"voltline_ocpp_connected_chargers", "voltline_writer_queue_frames", "process_resident_memory_bytes"}
    assert expected <= names
    assert "/metrics" not in httpx.get(f"{live.base_url}/openapi.json").json()["paths"]


async def command(
    api: httpx.AsyncClient, ws: ClientConnection, path: str, body: dict[str, Any], reply: list[Any] | None
) -> tuple[int, str]:
    """Send a command through the API and play the charger: answer the CALL it gets with `reply`
    (its message id filled in), or not at all; the API's status and the CALL's action."""
    request = asyncio.create_task(api.post(path, json=body))
    call = json.loads(await asyncio.wait_for(ws.recv(), 10))
    if reply is not None:
        await ws.send(json.dumps([reply[0], call[1], *reply[1:]]))
    return (await request).status_code, call[2]


def test_the_exposition_counts_real_traffic(live: LiveServer) -> None:
    """A charger boots, sends Heartbeat, MeterValues, an unknown action and a bad frame over a real socket;
    the API serves it and sends commands it answers, refuses and ignores; every count shows that, once."""
    account = live.account()
    with live.client(account) as api:
        charger = team_charger(api, account)
        assert get_charger(api, account, charger["id"])["identity"] == charger["identity"]
        assert api.get("/no/such/path").status_code == 404
        site = api.post(f"/api/v2/teams/{account.team_id}/sites", json=SITE_BODY).json()["data"]
        settings = {
            "timezone": "Europe/Amsterdam",
            "smart_charging": "off_peak",
            "off_peak_start": "23:00",
            "off_peak_end": "07:00",
        }
        path = f"/api/v2/teams/{account.team_id}/sites/{site['id']}/smart-charging"
        assert api.put(path, json=settings).status_code == 200
    base = f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}/commands"
    headers = {"Authorization": f"Bearer {account.token}", "Accept": "application/json"}

    async def scenario() -> tuple[list[tuple[int, str]], Samples]:
        async with httpx.AsyncClient(base_url=live.base_url, headers=headers, timeout=30) as api:
            async with open_charger(live, charger["identity"]) as ws:
                cp = Raw(ws)
                await cp.result("BootNotification", BOOT)
                await cp.result("Heartbeat", {})
                await cp.result("MeterValues", READING)
                assert (await cp.call("FlyToTheMoon", {}))[2] == "NotImplemented"
                assert (await cp.call("Heartbeat", {"surplus": 1}))[2] == "FormationViolation"
                outcomes = [
                    await command(api, ws, f"{base}/restart", {"type": "Soft"}, [3, {"status": "Accepted"}]),
                    await command(api, ws, f"{base}/unlock", {"connector_id": 1}, [4, "NotSupported", "", {}]),
                    await command(api, ws, f"{base}/trigger", {"message": "Heartbeat"}, None),
                ]
                during = await asyncio.to_thread(scrape, live)
            offline = await api.post(f"{base}/restart", json={"type": "Soft"})
        outcomes.append((offline.status_code, "-"))
        return outcomes, during

    outcomes, during = asyncio.run(scenario())
    assert outcomes == [(200, "Reset"), (502, "UnlockConnector"), (504, "TriggerMessage"), (409, "-")]
    with pytest.raises(InvalidStatus):
        asyncio.run(_connect(live, unique_identity("NOBODY")))
    assert value(during, "voltline_ocpp_connected_chargers", ocpp_version="1.6") == 1

    def settled() -> bool:
        now = scrape(live)
        return (
            value(now, "voltline_ocpp_connected_chargers", ocpp_version="1.6") == 0
            and value(now, "voltline_writer_batch_size_count") == 1
            and (value(now, "voltline_smart_runs_total", outcome="ok") or 0) >= 1
        )

    wait_for(settled)
    after = scrape(live)
    _assert_ocpp(after)
    _assert_commands(after)
    _assert_writer_and_smart(after)
    _assert_http(after, live)


async def _connect(live: LiveServer, identity: str) -> None:
    async with open_charger(live, identity):
        pass


def _assert_ocpp(after: Samples) -> None:
    messages = "voltline_ocpp_messages_total"
    assert {
        (dict(key)["direction"], dict(key)["action"], dict(key)["outcome"]): count
        for (name, key), count in after.items()
        if name == messages
    } == {
        ("in", "BootNotification", "result"): 1,
        ("in", "Heartbeat", "result"): 1,
        ("in", "Heartbeat", "error"): 1,
        ("in", "MeterValues", "result"): 1,
        ("in", "other", "error"): 1,
        ("out", "Reset", "result"): 1,
        ("out", "UnlockConnector", "error"): 1,
        ("out", "TriggerMessage", "timeout"): 1,
    }
    errors = "voltline_ocpp_call_errors_total"
    assert value(after, errors, direction="out", code="NotImplemented") == 1
    assert value(after, errors, direction="out", code="FormationViolation") == 1
    assert value(after, errors, direction="in", code="NotSupported") == 1
    assert value(after, "voltline_ocpp_auth_failures_total", reason="unknown_identity") == 1
    assert value(after, "voltline_ocpp_auth_failures_total", reason="wrong_password") == 0


def _assert_commands(after: Samples) -> None:
    commands = "voltline_commands_total"
    assert value(after, commands, command="reset", outcome="ok") == 1
    assert value(after, commands, command="reset", outcome="offline") == 1
    assert value(after, commands, command="unlock", outcome="error") == 1
    assert value(after, commands, command="trigger", outcome="timeout") == 1
    assert value(after, "voltline_command_seconds_count", command="reset") == 2
    assert (value(after, "voltline_command_seconds_sum", command="trigger") or 0) >= 1.0  # the 1 s call timeout
    assert value(after, "voltline_command_seconds_bucket", command="trigger", le="0.5") == 0


def _assert_writer_and_smart(after: Samples) -> None:
    # One MeterValues frame, no message log: one batch of one row.
    assert value(after, "voltline_writer_batch_size_sum") == 1
    assert value(after, "voltline_writer_batch_size_bucket", le="1.0") == 1
    assert value(after, "voltline_writer_commit_seconds_count") == 1
    assert (value(after, "voltline_writer_commit_seconds_sum") or 0) > 0
    assert value(after, "voltline_writer_queue_frames") == 0
    runs = sum(value(after, "voltline_smart_runs_total", outcome=o) or 0 for o in ("ok", "failed"))
    assert value(after, "voltline_smart_run_seconds_count") == runs >= 1


def _assert_http(after: Samples, live: LiveServer) -> None:
    requests = "voltline_http_requests_total"
    team = "/api/v2/teams/{team}"
    commands = team + "/chargers/{charger}/commands"
    assert value(after, requests, method="POST", route=team + "/chargers", status="201") == 1
    assert value(after, requests, method="GET", route=team + "/chargers/{charger}", status="200") == 1
    assert value(after, requests, method="POST", route=commands + "/restart", status="200") == 1
    assert value(after, requests, method="POST", route=commands + "/restart", status="409") == 1
    assert value(after, requests, method="POST", route=commands + "/unlock", status="502") == 1
    assert value(after, requests, method="POST", route=commands + "/trigger", status="504") == 1
    assert value(after, requests, method="GET", route="unmatched", status="404") == 1
    assert value(after, "voltline_http_request_seconds_count", method="GET", route=team + "/chargers/{charger}") == 1
    assert (value(after, "voltline_http_request_seconds_sum", method="POST", route=commands + "/trigger") or 0) >= 1
    templates = {route.path_format for route in live.app.app.routes} | {"unmatched"}
    assert labels_of(after, requests, "route") <= templates  # never a raw path with ids in it


def test_each_app_counts_only_its_own_traffic(
    live: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two apps in one process: traffic on one shows in its own exposition only."""
    account = live.account()
    with live.client(account) as api:
        team_charger(api, account)
    mine = scrape(live)
    created = {"method": "POST", "route": "/api/v2/teams/{team}/chargers", "status": "201"}
    assert value(mine, "voltline_http_requests_total", **created) == 1
    with dedicated_server(fresh_database, tmp_path_factory, live.backend, metrics_token=TOKEN) as other:
        theirs = scrape(other)
    assert labels_of(theirs, "voltline_http_requests_total", "route") == set()
    assert labels_of(theirs, "voltline_ocpp_messages_total", "action") == set()
