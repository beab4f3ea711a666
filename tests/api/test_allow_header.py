"""405 answers name every method the path serves: RFC 9110 §15.5.6 (`Allow`), §9.3.2 (HEAD)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import LiveServer
from voltline.api import ENDPOINTS
from voltline.services.accounts import Account


def allowed(response: httpx.Response) -> set[str]:
    """The methods of an `Allow` header."""
    return {method.strip() for method in response.headers["allow"].split(",")}


@pytest.mark.parametrize(
    ("path", "method", "expected"),
    [
        ("/api/v2/user", "DELETE", {"GET", "HEAD"}),
        ("/api/v2/teams", "DELETE", {"GET", "HEAD", "POST"}),
        ("/api/v2/teams/1/sites/1", "POST", {"GET", "HEAD", "PUT", "DELETE"}),
        ("/api/v2/teams/1/sites/1/groups/1", "PATCH", {"GET", "HEAD", "PUT", "DELETE"}),
        ("/api/v2/teams/1/sites/1/attach-charger", "GET", {"POST"}),
        ("/api/v2/teams/1/id-tags/7", "PATCH", {"PUT", "DELETE"}),
        ("/api/v2/teams/1/chargers/1/commands/configuration", "POST", {"GET", "HEAD", "PUT"}),
        ("/api/v2/teams/1/chargers/1/ocpp", "OPTIONS", {"GET", "HEAD", "PUT"}),
        ("/healthz", "POST", {"GET", "HEAD"}),
    ],
)
def test_a_405_lists_exactly_the_methods_of_the_path(
    api: httpx.Client, path: str, method: str, expected: set[str]
) -> None:
    response = api.request(method, path)
    assert (response.status_code, response.json()) == (405, {"message": "Method not allowed."})
    assert allowed(response) == expected


def test_every_path_of_the_route_table_allows_its_methods(api: httpx.Client) -> None:
    served: dict[str, set[str]] = {}
    for endpoint in ENDPOINTS:
        served.setdefault(endpoint.path, set()).add(endpoint.method)
    for path, methods in served.items():
        url = re.sub(r"{\w+}", "1", path)
        response = api.request("PATCH", url)  # no endpoint serves PATCH
        expected = methods | ({"HEAD"} if "GET" in methods else set())
        assert (response.status_code, allowed(response)) == (405, expected), path


def test_head_is_answered_like_get_without_a_body(api: httpx.Client, account: Account) -> None:
    get = api.get(f"/api/v2/teams/{account.team_id}/sites")
    head = api.head(f"/api/v2/teams/{account.team_id}/sites")
    assert get.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == "application/json"


def test_a_second_method_of_a_path_still_reaches_its_own_handler(api: httpx.Client, account: Account) -> None:
    created = api.post("/api/v2/teams", json={"name": "Allow"})
    listed = api.get("/api/v2/teams")
    assert created.status_code == 201
    assert created.json()["data"]["name"] in {team["name"] for team in listed.json()["data"]}


def test_an_unknown_method_on_an_unknown_path_is_still_a_404(server: LiveServer) -> None:
    with server.client() as client:
        response = client.request("PATCH", "/api/v2/nothing-here")
    assert (response.status_code, response.json()) == (404, {"message": "Not found."})
