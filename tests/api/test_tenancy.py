"""Tenant isolation over the whole route table (DESIGN: 403 for another team's path, 404 for its objects).

The test walks `voltline.api.ENDPOINTS`, so every route with a `{team}` segment is covered,
including routes added later: a path parameter this file does not know fails the test.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from voltline.api import ENDPOINTS
from voltline.services.accounts import Account
from voltline.store import chargers as charger_store
from voltline.store import diagnostics as diagnostics_store
from voltline.store import reservations as reservation_store

PARAM = re.compile(r"{(\w+)}")
# Bodies that would succeed on the caller's own objects, so only the lookup can fail.
BODIES: dict[tuple[str, str], Any] = {
    ("PUT", "/api/v2/teams/{team}/authorization"): {"authorization_mode": "allow_list"},
    ("POST", "/api/v2/teams/{team}/sites"): {
        "name": "Intruder",
        "street": "S",
        "house_number": 1,
        "postal_code": "1",
        "city": "C",
        "country": "NL",
    },
    ("PUT", "/api/v2/teams/{team}/sites/{site}"): {"name": "Renamed"},
    ("PUT", "/api/v2/teams/{team}/sites/{site}/smart-charging"): {
        "timezone": "Europe/Amsterdam",
        "smart_charging": "off_peak",
        "off_peak_start": "22:00",
        "off_peak_end": "06:00",
    },
    ("POST", "/api/v2/teams/{team}/sites/{site}/groups"): {"total_amps": 16},
    ("PUT", "/api/v2/teams/{team}/sites/{site}/groups/{group}"): {"total_amps": 20},
    ("PUT", "/api/v2/teams/{team}/sites/{site}/connectors/{connector}"): {"max_amperage": 16},
    ("PUT", "/api/v2/teams/{team}/chargers/{charger}"): {"reference": "mine now"},
    ("POST", "/api/v2/teams/{team}/id-tags"): {"id_tag": "INTRUDER1"},
}


def body_for(method: str, path: str, tenant: Tenant) -> Any:
    """A valid body for the endpoint, with fresh unique values where uniqueness matters."""
    if (method, path) in BODIES:
        return BODIES[(method, path)]
    if path.endswith("/groups/{group}/chargers"):
        return {"charger": tenant.objects["charger"]["id"]}
    if path.endswith("/chargers") and method == "POST":
        return {"identity": f"INTRUDE-{uuid.uuid4().hex[:10]}"}
    if path.endswith("/attach-charger"):
        return {"identity": tenant.charger_identity, "pincode": tenant.pincode}
    return {} if method in {"POST", "PUT", "PATCH"} else None


@dataclass
class Tenant:
    """One team with one of every object, reachable by id and by uuid."""

    account: Account
    objects: dict[str, dict[str, Any]]
    charger_identity: str
    pincode: str

    def ref(self, name: str, kind: str) -> str:
        return str(self.objects[name][kind])


def make_tenant(server: LiveServer) -> Tenant:
    account = server.account()
    with server.client(account) as api:
        team = api.get("/api/v2/teams").json()["data"][0]
        base = f"/api/v2/teams/{account.team_id}"
        site = api.post(f"{base}/sites", json=BODIES[("POST", "/api/v2/teams/{team}/sites")]).json()["data"]
        group = api.post(f"{base}/sites/{site['id']}/groups", json={"total_amps": 16}).json()["data"]
        identity = f"TEN-{uuid.uuid4().hex[:10]}"
        charger = api.post(f"{base}/sites/{site['id']}/chargers", json={"identity": identity}).json()["data"]

        async def add_connector() -> None:
            async with server.runtime.db.write() as conn:
                await charger_store.upsert_connector(conn, charger["id"], 1, {"status": "Available"})

        server.run(add_connector)

        async def add_reservation() -> dict[str, Any]:
            now = datetime.now(UTC).replace(tzinfo=None)
            values = {"connector_number": 1, "id_tag": "TAG1", "expires_at": now + timedelta(hours=1)}
            async with server.runtime.db.write() as conn:
                team_id, charger_id = account.team_id, charger["id"]
                row = await reservation_store.insert_pending_reservation(conn, team_id, charger_id, values, now)
                return dict(await reservation_store.activate_reservation(conn, row["id"], now))

        reservation = server.run(add_reservation)

        async def add_file() -> dict[str, Any]:
            now = datetime.now(UTC).replace(tzinfo=None)
            request = {"charger_id": charger["id"], "team_id": account.team_id, "log_type": "diagnostics"}
            request |= {"status": "Received", "file_name": "d.txt", "expires_at": now + timedelta(hours=1)}
            content = b"diagnostics"
            async with server.runtime.db.write() as conn:
                row = await diagnostics_store.insert_request(conn, request)
                file = {"request_id": row["id"], "charger_id": charger["id"], "team_id": account.team_id}
                file |= {"file_name": "d.txt", "content_type": "text/plain", "size": len(content)}
                file |= {"sha256": hashlib.sha256(content).hexdigest(), "content": content}
                return dict(await diagnostics_store.insert_file(conn, file, now))

        file = server.run(add_file)
        connector = api.get(f"{base}/sites/{site['id']}/connectors").json()["data"][0]
        id_tag = api.post(f"{base}/id-tags", json={"id_tag": f"T{uuid.uuid4().hex[:10]}"}).json()["data"]
        meter = api.post(f"{base}/meters", json={"charger_id": charger["id"]}).json()["data"]

    async def read_pincode() -> str:
        async with server.runtime.db.read() as conn:
            row = await charger_store.get_charger_by_identity(conn, identity)
            assert row is not None
            return str(row["pincode"])

    objects = {"team": team, "site": site, "group": group, "charger": charger, "connector": connector, "id_tag": id_tag}
    objects |= {"meter": meter, "number": {"id": 1, "uuid": 1}}  # number: an OCPP connector number
    objects |= {"reservation": reservation, "file": file}
    return Tenant(account, objects, identity, server.run(read_pincode))


def snapshot(server: LiveServer, tenant: Tenant) -> dict[str, Any]:
    """Everything the tenant can read about its own objects."""
    base = f"/api/v2/teams/{tenant.account.team_id}"
    site = tenant.objects["site"]["id"]
    paths = [
        "/api/v2/teams",
        f"{base}/authorization",
        f"{base}/sites",
        f"{base}/sites/{site}",
        f"{base}/sites/{site}/smart-charging",
        f"{base}/sites/{site}/groups",
        f"{base}/sites/{site}/chargers",
        f"{base}/sites/{site}/connectors",
        f"{base}/chargers",
        f"{base}/chargers/{tenant.objects['charger']['id']}",
        f"{base}/chargers/{tenant.objects['charger']['id']}/reservations",
        f"{base}/chargers/{tenant.objects['charger']['id']}/diagnostics-files",
        f"{base}/id-tags",
        f"{base}/meters",
    ]
    with server.client(tenant.account) as api:
        return {path: api.get(path).json() for path in paths}


@pytest.fixture
def tenants(server: LiveServer) -> tuple[Tenant, Tenant]:
    return make_tenant(server), make_tenant(server)


TEAM_ENDPOINTS = [ep for ep in ENDPOINTS if "{team}" in ep.path]


def fill(path: str, tenant: Tenant, kind: str, team: Tenant) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        owner = team if name == "team" else tenant
        assert name in owner.objects, f"tenancy test does not know the path parameter {{{name}}} of {path}"
        return owner.ref(name, kind)

    return PARAM.sub(replace, path)


def call(api: httpx.Client, method: str, url: str, body: Any) -> httpx.Response:
    return api.request(method, url, json=body) if body is not None else api.request(method, url)


@pytest.mark.parametrize("kind", ["id", "uuid"])
def test_another_teams_path_is_403_and_changes_nothing(
    server: LiveServer, tenants: tuple[Tenant, Tenant], kind: str
) -> None:
    a, b = tenants
    before = snapshot(server, b)
    with server.client(a.account) as api:
        for ep in TEAM_ENDPOINTS:
            response = call(api, ep.method, fill(ep.path, b, kind, b), body_for(ep.method, ep.path, b))
            assert (ep.method, ep.path, response.status_code) == (ep.method, ep.path, 403)
            assert response.json() == {"message": "This action is unauthorized."}
    assert snapshot(server, b) == before


@pytest.mark.parametrize("kind", ["id", "uuid"])
def test_another_teams_objects_under_ones_own_path_are_404_and_change_nothing(
    server: LiveServer, tenants: tuple[Tenant, Tenant], kind: str
) -> None:
    a, b = tenants
    before = snapshot(server, b)
    checked = 0
    with server.client(a.account) as api:
        for ep in TEAM_ENDPOINTS:
            if len(PARAM.findall(ep.path)) < 2:
                continue
            response = call(api, ep.method, fill(ep.path, b, kind, a), body_for(ep.method, ep.path, b))
            assert (ep.method, ep.path, response.status_code) == (ep.method, ep.path, 404)
            assert response.json() == {"message": "Not found."}
            checked += 1
    assert checked >= 10
    assert snapshot(server, b) == before


def test_attaching_another_teams_attached_charger_is_refused(
    server: LiveServer, tenants: tuple[Tenant, Tenant]
) -> None:
    """Even with the right pincode, a charger on B's site cannot be pulled onto A's site."""
    a, b = tenants
    before = snapshot(server, b)
    with server.client(a.account) as api:
        url = f"/api/v2/teams/{a.account.team_id}/sites/{a.objects['site']['id']}/attach-charger"
        response = api.post(url, json={"identity": b.charger_identity, "pincode": b.pincode})
    assert response.status_code == 422
    assert snapshot(server, b) == before


def test_collections_list_only_ones_own_objects(server: LiveServer, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    mine = snapshot(server, a)
    text = str(mine)
    for name in ("site", "group", "charger", "connector", "id_tag", "meter"):
        assert b.objects[name]["uuid"] not in text, name
        assert a.objects[name]["uuid"] in text, name


@pytest.mark.parametrize("kind", ["id", "uuid"])
def test_another_teams_objects_under_ones_own_site_are_404_and_change_nothing(
    server: LiveServer, tenants: tuple[Tenant, Tenant], kind: str
) -> None:
    """A's site in the path, B's group/charger/connector after it: the inner lookup is scoped too."""
    a, b = tenants
    before = snapshot(server, b)
    nested = [ep for ep in TEAM_ENDPOINTS if ep.path.count("{") >= 3 and "{site}" in ep.path]
    assert len(nested) >= 5
    with server.client(a.account) as api:
        for ep in nested:
            url = fill(ep.path, b, kind, a).replace(f"/sites/{b.ref('site', kind)}/", f"/sites/{a.ref('site', kind)}/")
            response = call(api, ep.method, url, body_for(ep.method, ep.path, b))
            assert (ep.method, ep.path, response.status_code) == (ep.method, ep.path, 404)
    assert snapshot(server, b) == before


# -- v3 (spec volttime-v3 §1.6; DESIGN "v3 API"): no team in the path, objects by uuid -------------------------

V3_ENDPOINTS = [ep for ep in ENDPOINTS if ep.path.startswith("/api/v3/") and PARAM.search(ep.path)]
# How each v3 path parameter names one of a tenant's objects: chargers and sites by uuid, connectors by
# OCPP number, cards (the team's id tags) by integer id.
V3_REFS = {
    "charger": ("charger", "uuid"),
    "site": ("site", "uuid"),
    "number": ("number", "id"),
    "card": ("id_tag", "id"),
}


def fill_v3(path: str, tenant: Tenant, outer: Tenant | None = None) -> str:
    """The v3 path with the tenant's objects; `outer`: whose site holds the inner object in the path."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in V3_REFS, f"tenancy test does not know the v3 path parameter {{{name}}} of {path}"
        owner = outer if outer is not None and name == "site" else tenant
        return owner.ref(*V3_REFS[name])

    return PARAM.sub(replace, path)


def test_another_teams_v3_objects_are_404_and_change_nothing(
    server: LiveServer, tenants: tuple[Tenant, Tenant]
) -> None:
    """Every v3 route with an object in its path: B's objects are 404 for A, and nothing of B changes."""
    a, b = tenants
    before = snapshot(server, b)
    assert len(V3_ENDPOINTS) >= 15
    with server.client(a.account) as api:
        for ep in V3_ENDPOINTS:
            response = call(api, ep.method, fill_v3(ep.path, b), body_for(ep.method, ep.path, b))
            assert (ep.method, ep.path, response.status_code) == (ep.method, ep.path, 404)
            assert response.json() == {"message": "Not found."}
            if "{site}" in ep.path and ep.path.count("{") >= 2:  # A's own site, B's object inside it
                response = call(api, ep.method, fill_v3(ep.path, b, a), body_for(ep.method, ep.path, b))
                assert (ep.method, ep.path, response.status_code) == (ep.method, ep.path, 404)
    assert snapshot(server, b) == before


def test_v3_paths_take_uuids_not_integer_ids(server: LiveServer, tenants: tuple[Tenant, Tenant]) -> None:
    """spec v3 §1.1: a charger or site named by its integer id, even one's own, names nothing."""
    a, _ = tenants
    with server.client(a.account) as api:
        for ep in V3_ENDPOINTS:
            if ep.method != "GET" or not ({"charger", "site"} & set(PARAM.findall(ep.path))):
                continue
            url = PARAM.sub(lambda m: str(a.objects[V3_REFS[m.group(1)][0]]["id"]), ep.path)
            assert (ep.path, api.get(url).status_code) == (ep.path, 404)
