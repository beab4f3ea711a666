"""Edges every client meets: malformed input, big bodies, unknown routes, limits, health and docs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, server_settings
from voltline.services.accounts import Account
from voltline.store import users


def test_malformed_json_is_a_400_with_a_json_message(api: httpx.Client) -> None:
    response = api.post("/api/v2/teams", content=b'{"name": ', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"message": "The request body is not valid JSON."}


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_a_body_that_is_not_an_object_is_a_400(api: httpx.Client, body: bytes) -> None:
    response = api.post("/api/v2/teams", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"message": "The request body must be a JSON object."}


def test_wrong_types_are_a_422_not_a_500(api: httpx.Client) -> None:
    response = api.post("/api/v2/teams", json={"name": {"nested": True}, "type": [1]})
    assert response.status_code == 422
    assert response.json()["errors"] == {
        "name": ["The name field must be a string."],
        "type": ["The type field must be a string.", "The selected type is invalid."],
    }


def test_a_body_over_one_mebibyte_is_a_json_413(api: httpx.Client) -> None:
    response = api.post("/api/v2/teams", content=b" " * (1024 * 1024 + 1), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"message": "The request body is too large."}


def test_a_streamed_body_over_the_limit_is_a_413(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 32768

    response = api.post("/api/v2/teams", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_unknown_routes_and_methods_answer_json(api: httpx.Client) -> None:
    missing = api.get("/api/v2/nothing-here")
    assert (missing.status_code, missing.json()) == (404, {"message": "Not found."})
    wrong_method = api.delete("/api/v2/user")
    assert (wrong_method.status_code, wrong_method.json()) == (405, {"message": "Method not allowed."})


@pytest.mark.parametrize("segment", ["abc", "-1", "1.5", "99999999999999999999999", "%00"])
def test_a_team_segment_that_names_nothing_is_403(api: httpx.Client, segment: str) -> None:
    """DESIGN: a team the caller is not a member of -> 403."""
    response = api.get(f"/api/v2/teams/{segment}/authorization")
    assert response.status_code == 403
    assert response.json() == {"message": "This action is unauthorized."}


def test_team_path_accepts_the_uuid_as_well_as_the_id(api: httpx.Client, account: Account) -> None:
    team = api.get("/api/v2/teams").json()["data"][0]
    by_uuid = api.get(f"/api/v2/teams/{team['uuid']}/authorization")
    by_id = api.get(f"/api/v2/teams/{account.team_id}/authorization")
    assert by_uuid.status_code == by_id.status_code == 200


def test_healthz_is_liveness_and_readyz_reports_the_database(server: LiveServer) -> None:
    """DESIGN "Cluster": /healthz says the process answers, /readyz that database writes work."""
    with server.client() as client:
        live = client.get("/healthz")
        ready = client.get("/readyz")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "database": "ok", "bus": "ok"}


def test_openapi_is_3_1_and_docs_render_from_local_assets(server: LiveServer) -> None:
    with server.client() as client:
        spec = client.get("/openapi.json").json()
        page = client.get("/docs")
        script = client.get("/docs/static/swagger-ui-bundle.js")
    assert spec["openapi"] == "3.1.0"
    assert "/api/v2/teams" in spec["paths"]
    assert page.status_code == 200 and "/docs/static/swagger-ui-bundle.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert script.status_code == 200 and len(script.content) > 100_000


@pytest.fixture
def limited_server(fresh_database: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = fresh_database("sqlite")  # type: ignore[operator]
    live = LiveServer(server_settings(url, str(tmp_path_factory.mktemp("data")), rate_limit=3), "sqlite")
    live.start()
    yield live
    live.stop()


def test_rate_limit_counts_down_then_answers_429_with_retry_after(limited_server: LiveServer) -> None:
    """DESIGN: X-RateLimit-Limit / X-RateLimit-Remaining, 429 {"message":"Too Many Attempts."} with Retry-After."""
    account = limited_server.account()
    with limited_server.client(account) as client:
        remaining = [client.get("/api/v2/user").headers["X-RateLimit-Remaining"] for _ in range(3)]
        blocked = client.get("/api/v2/user")
    assert remaining == ["2", "1", "0"]
    assert blocked.status_code == 429
    assert blocked.json() == {"message": "Too Many Attempts."}
    assert blocked.headers["X-RateLimit-Limit"] == "3" and blocked.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    other = limited_server.account()
    with limited_server.client(other) as client:
        assert client.get("/api/v2/user").status_code == 200  # the limit is per token


def test_a_revoked_token_stops_working_within_the_auth_cache_time(
    fresh_database: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """api/auth.py: token answers are cached for `auth_cache_seconds`, never longer."""
    url = fresh_database("sqlite")
    live = LiveServer(server_settings(url, str(tmp_path_factory.mktemp("data")), auth_cache_seconds=0.3), "sqlite")
    live.start()
    try:
        account = live.account()

        async def revoke_all() -> None:
            async with live.runtime.db.write() as conn:
                for token in await users.list_api_tokens(conn, account.user_id):
                    await users.revoke_api_token(conn, token["id"])

        with live.client(account) as client:
            assert client.get("/api/v2/user").status_code == 200
            live.run(revoke_all)
            time.sleep(0.4)
            assert client.get("/api/v2/user").status_code == 401
    finally:
        live.stop()
