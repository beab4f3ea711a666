"""The OpenAPI document: valid 3.1, complete against the route table, and true to real responses.

DESIGN: "OpenAPI 3.1 is generated from the route table and the msgspec schemas, served at
`/openapi.json`". The structure tests read the generated document; the live tests make one
real call per operation and outcome (success, 422, 404, 403, 401) through the API and
validate each response body against the schema the document declares for that status.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastjsonschema
import httpx
import msgspec
import pytest
import schemathesis

from tests.conftest import LiveServer
from voltline import codec
from voltline.api import ENDPOINTS
from voltline.api._contract import Contract, is_required
from voltline.api.openapi import build_openapi, constraints
from voltline.errors import ValidationError
from voltline.services.accounts import Account
from voltline.services.commands import command_subject, decode_request, encode_reply
from voltline.store import chargers as charger_store
from voltline.store import reservations as reservation_store

DOC: dict[str, Any] = codec.to_builtins(build_openapi(ENDPOINTS))
OPERATIONS = [(ep.method, ep.path) for ep in ENDPOINTS]
PARAM = re.compile(r"{(\w+)}")
API_DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
T = "/api/v2/teams/{team}"
S = T + "/sites/{site}"
C = T + "/chargers/{charger}"
CMD = C + "/commands"
V3SET = "/api/v3/chargers/{charger}/settings"  # v3 charger settings (spec/volttime-v3.md §3.10)
V3 = "GET"
V3S = "/api/v3/sites/{site}"
V3C = "/api/v3/chargers/{charger}"
V3_PROFILE = {
    "stack_level": 1,
    "charging_profile_purpose": "TxDefaultProfile",
    "charging_profile_kind": "Absolute",
    "charging_schedule": {"charging_rate_unit": "A", "charging_schedule_period": [{"start_period": 0, "limit": 10}]},
}
SITE_BODY = {"name": "Depot", "street": "Main", "house_number": 1, "postal_code": "1000", "city": "C", "country": "NL"}


def operation(method: str, path: str) -> dict[str, Any]:
    """The document's operation object."""
    op: dict[str, Any] = DOC["paths"][path][method.lower()]
    return op


# -- structure ---------------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1() -> None:
    """Checked against the official OAS 3.1 meta-schema (the one schemathesis ships)."""
    assert DOC["openapi"] == "3.1.0"
    assert DOC["info"]["title"] == "Voltline API" and DOC["info"]["version"]
    schemathesis.openapi.from_dict(DOC).validate()


def test_the_served_document_is_the_generated_one(server: LiveServer) -> None:
    with server.client() as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert response.json() == DOC


def test_every_route_of_the_table_is_documented_with_its_method_and_nothing_else() -> None:
    documented = {(method.upper(), path) for path, item in DOC["paths"].items() for method in item}
    assert documented == set(OPERATIONS)
    assert len(OPERATIONS) == len(set(OPERATIONS))


def test_every_documented_operation_is_a_real_route_of_the_app(server: LiveServer) -> None:
    routes = {
        (method, route.path) for route in server.app.app.routes for method in getattr(route, "methods", None) or ()
    }
    for path, item in DOC["paths"].items():
        for method in item:
            assert (method.upper(), path) in routes, f"{method.upper()} {path} is documented but not served"


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_path_parameter_is_declared_as_an_id_or_uuid(method: str, path: str) -> None:
    declared = [p for p in operation(method, path)["parameters"] if p["in"] == "path"]
    assert [p["name"] for p in declared] == PARAM.findall(path)
    for parameter in declared:
        assert parameter["required"] is True and parameter["schema"]["type"] == "string"
        pattern = re.compile(parameter["schema"]["pattern"])
        assert pattern.match("42") and pattern.match(str(uuid.uuid4())) and not pattern.match("4x")


def test_operation_ids_are_present_and_unique() -> None:
    ids = [operation(method, path).get("operationId") for method, path in OPERATIONS]
    assert all(ids) and len(ids) == len(set(ids))
    assert all(operation(m, p)["summary"] and operation(m, p)["tags"] for m, p in OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_response_declares_its_json_body(method: str, path: str) -> None:
    """2xx with the resource schema (204 without a body); errors with the Laravel shapes."""
    endpoint = next(ep for ep in ENDPOINTS if (ep.method, ep.path) == (method, path))
    responses = operation(method, path)["responses"]
    success = responses[str(endpoint.status)]
    assert ("content" in success) == (endpoint.status != 204)
    for status, response in responses.items():
        if int(status) < 300:
            continue
        media = response["content"]["application/json"]
        name = "ValidationErrors" if status == "422" else "ErrorMessage"
        assert media["schema"] == {"$ref": f"#/components/schemas/{name}"}
        fastjsonschema.compile({**media["schema"], "components": DOC["components"]})(media["example"])


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_errors_are_documented_where_they_can_happen(method: str, path: str) -> None:
    """DESIGN: 401 without a token, 403 for another team, 404 for another team's objects, 400/413/422 on bodies."""
    op = operation(method, path)
    statuses = {int(s) for s in op["responses"]}
    params = PARAM.findall(path)
    assert {401, 429} <= statuses
    assert (403 in statuses) == ("team" in params)
    assert (404 in statuses) == bool(set(params) - {"team"})
    if "requestBody" in op:
        assert {400, 413, 422} <= statuses
    if any(p["in"] == "query" for p in op["parameters"]):
        assert {400, 422} <= statuses


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_operation_requires_the_bearer_token_and_documents_the_limit_headers(method: str, path: str) -> None:
    assert DOC["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert operation(method, path)["security"] == [{"bearerAuth": []}]
    limited = operation(method, path)["responses"]["429"]["headers"]
    assert set(limited) == {"X-RateLimit-Limit", "X-RateLimit-Remaining", "Retry-After"}


def test_every_reference_resolves() -> None:
    refs = set(re.findall(r'"\$ref":\s*"([^"]+)"', codec.encode_json(DOC).decode()))
    for ref in refs:
        node: Any = DOC
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict), ref


def test_every_request_body_is_derived_from_the_rules_its_handler_checks() -> None:
    """One source: each body's properties, required fields and keywords come from its contract's rules."""
    for endpoint in ENDPOINTS:
        if endpoint.body is None:
            continue
        contract = endpoint.body
        schema = DOC["components"]["schemas"][contract.name]
        assert list(schema["properties"]) == [*contract.rules, *contract.aliases], contract.name
        required = [] if contract.partial else [name for name, spec in contract.rules.items() if is_required(spec)]
        assert schema.get("required", []) == required, contract.name
        for name, spec in contract.documented_rules.items():
            prop = schema["properties"][name]
            assert prop["x-rules"] == spec
            assert {k: v for k, v in constraints(spec, prop).items() if k != "description"}.items() <= prop.items()


def test_a_rule_added_to_a_contract_is_checked_typed_and_documented() -> None:
    """A new rule shows up in the validator, the Struct and the OpenAPI document at once."""
    [endpoint] = [ep for ep in ENDPOINTS if ep.method == "POST" and ep.path == "/api/v2/teams"]
    assert endpoint.body is not None
    grown = Contract(
        "GrownTeamBody", "A team body with one more rule.", {**endpoint.body.rules, "colour": "required|in:red,blue"}
    )
    schema = build_openapi([dataclasses.replace(endpoint, body=grown)])["components"]["schemas"]["GrownTeamBody"]
    assert schema["properties"]["colour"]["enum"] == ["red", "blue"]
    assert schema["properties"]["colour"]["x-rules"] == "required|in:red,blue"
    assert "colour" in schema["required"]
    with pytest.raises(ValidationError) as refused:
        grown.validate({"name": "Fleet"})
    assert refused.value.errors == {"colour": ["The colour field is required."]}
    assert grown.read({"name": "Fleet", "colour": "red"}).colour == "red"


@pytest.mark.parametrize(
    ("rules", "value", "read"),
    [
        ("required|integer|min:1", "7", 7),
        ("nullable|numeric", "0.25", "0.25"),
        ("boolean", "1", True),
        ("in:1,3", "3", 3),
        ("nullable|string|max:5", None, None),
        ("required", 1.5, 1.5),
        ("required|size:8", 12345678, 12345678),
    ],
)
def test_a_contract_reads_validated_input_as_its_struct(rules: str, value: Any, read: Any) -> None:
    """The Struct's field types follow the rules, so every value the validator lets through converts."""
    contract = Contract("Probe", "A probe.", {"field": rules})
    assert contract.read({"field": value}).field == read


def test_a_partial_contract_checks_only_the_fields_sent() -> None:
    """Laravel's `sometimes`: a PUT changes only what it sends; left-out fields stay UNSET."""
    contract = Contract("Probe", "A probe.", {"name": "required|string", "size": "integer"}, partial=True)
    assert contract.validate({"size": "4"}) == {"size": 4}
    assert contract.read({}).name is msgspec.UNSET
    with pytest.raises(ValidationError):
        contract.validate({"name": None})


@pytest.mark.parametrize(
    ("rules", "schema", "expected"),
    [
        ("required|string|max:45", {"type": "string"}, {"maxLength": 45}),
        ("integer|min:1|max:10000", {"type": "integer"}, {"minimum": 1, "maximum": 10000}),
        ("required|size:8", {"type": "string"}, {"minLength": 8, "maxLength": 8}),
        ("in:1,3", {"type": "integer"}, {"enum": [1, 3]}),
        ("nullable|in:TN,TT,IT", {"anyOf": [{"type": "string"}, {"type": "null"}]}, {"enum": ["TN", "TT", "IT", None]}),
        (
            "nullable|date_format:Y-m-d H:i:s",
            {},
            {"pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"},
        ),
        ("nullable|email", {}, {"format": "email"}),
        ("required_if:smart_charging,off_peak", {}, {"description": "Required when smart_charging is off_peak."}),
    ],
)
def test_laravel_rules_become_json_schema_keywords(
    rules: str, schema: dict[str, Any], expected: dict[str, Any]
) -> None:
    made = constraints(rules, schema)
    assert made.pop("x-rules") == rules
    assert {k: v for k, v in made.items() if k != "description" or "description" in expected} == expected


def test_path_parameters_say_what_each_api_version_takes() -> None:
    """v2 takes an integer id or a uuid; v3 chargers and sites by uuid (spec v3 §1.1); connectors by OCPP number."""

    def described(method: str, path: str) -> dict[str, str]:
        return {p["name"]: p["description"] for p in operation(method, path)["parameters"] if p["in"] == "path"}

    assert described("GET", "/api/v3/chargers/{charger}") == {"charger": "The uuid of the charger."}
    assert described("PUT", "/api/v3/chargers/{charger}/connectors/{number}") == {
        "charger": "The uuid of the charger.",
        "number": "The OCPP connector number.",
    }
    assert described("GET", "/api/v2/teams/{team}/chargers/{charger}")["charger"] == (
        "The integer id or the uuid of the charger."
    )


def test_docs_describe_every_route() -> None:
    """docs/api.md lists every operation of the route table as `METHOD path`."""
    text = API_DOCS.read_text(encoding="utf-8")
    missing = [f"{method} {path}" for method, path in OPERATIONS if f"`{method} {path}`" not in text]
    assert not missing, missing


# -- real responses against the declared schemas -------------------------------------------------


@dataclass
class World:
    """A fresh account with one of everything, and a fake gateway answering commands for its charger."""

    account: Account
    refs: dict[str, Any] = field(default_factory=dict)
    loose_identity: str = ""
    pincode: str = ""
    subscription: Any = None


@dataclass(frozen=True)
class Call:
    """One request of a scenario: the status it must get, its body or query, and which refs to use."""

    status: int
    body: Any = None
    query: dict[str, str] | None = None
    refs: dict[str, str] = field(default_factory=dict)


def _identity() -> str:
    return f"OA-{uuid.uuid4().hex[:12]}"


async def _gateway(data: bytes) -> bytes:
    command, _args, _ = decode_request(data)
    if command == "get_configuration":
        keys = [
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            {"key": "LocalAuthListEnabled", "readonly": False, "value": "true"},  # a local list for local-list/sync
        ]
        return encode_reply("ok", {"configuration_key": keys, "unknown_key": []})
    return encode_reply("ok", {"status": "Accepted"})


def build_world(server: LiveServer) -> World:
    """Team, site (root and child group), charger with connector 1 on it, charger on no site, id tag."""
    made = World(server.account("OpenAPI"))
    with server.client(made.account) as api:
        base = f"/api/v2/teams/{made.account.team_id}"
        site = api.post(f"{base}/sites", json=SITE_BODY).json()["data"]
        groups = f"{base}/sites/{site['id']}/groups"
        group = api.post(groups, json={"total_amps": 16}).json()["data"]
        charger = api.post(f"{base}/sites/{site['id']}/chargers", json={"identity": _identity()}).json()["data"]
        loose = api.post(f"{base}/chargers", json={"identity": _identity()}).json()["data"]
        id_tag = api.post(f"{base}/id-tags", json={"id_tag": _identity()[:20]}).json()["data"]
        meter = api.post(f"{base}/meters", json={}).json()["data"]
        server.run(lambda: _add_connector(server, charger["id"]))
        connector = api.get(f"{base}/chargers/{charger['id']}").json()["data"]["connectors"][0]
    made.refs = {
        "team": made.account.team_id,
        "site": site["uuid"],
        "group": group["id"],
        "root_group": group["group_id"],
        "charger": charger["uuid"],
        "loose": loose["id"],
        "loose_uuid": loose["uuid"],
        "card": id_tag["id"],
        "connector": connector["id"],
        "id_tag": id_tag["uuid"],
        "missing": str(uuid.uuid4()),
        "charger_id": charger["id"],
        "meter": meter["uuid"],
        "number": 1,
        "reservation": server.run(lambda: _add_reservation(server, made.account.team_id, charger["id"])),
        "file": str(uuid.uuid4()),
    }
    made.loose_identity = loose["identity"]
    made.pincode = server.run(lambda: _pincode(server, loose["identity"]))
    made.subscription = server.run(lambda: server.runtime.bus.respond(command_subject(charger["identity"]), _gateway))
    return made


@pytest.fixture
def world(server: LiveServer) -> Iterator[World]:
    """A fresh world; its fake gateway stops answering afterwards."""
    made = build_world(server)
    yield made
    server.run(made.subscription.unsubscribe)


async def _add_connector(server: LiveServer, charger_id: int) -> None:
    async with server.runtime.db.write() as conn:
        await charger_store.upsert_connector(conn, charger_id, 1, {"status": "Available"})


async def _add_reservation(server: LiveServer, team_id: int, charger_id: int) -> str:
    """An active reservation of connector 1 for an hour (its uuid)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    values = {"connector_number": 1, "id_tag": "TAG1", "expires_at": now + timedelta(hours=1)}
    async with server.runtime.db.write() as conn:
        row = await reservation_store.insert_pending_reservation(conn, team_id, charger_id, values, now)
        await reservation_store.activate_reservation(conn, row["id"], now)
    return str(row["uuid"])


def _reservation_body(_: World) -> dict[str, Any]:
    """A valid reservation request: connector 1 for an hour."""
    expires_at = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    return {"connector_id": 1, "id_tag": "TAG1", "expires_at": expires_at}


async def _pincode(server: LiveServer, identity: str) -> str:
    async with server.runtime.db.read() as conn:
        row = await charger_store.get_charger_by_identity(conn, identity)
    assert row is not None
    return str(row["pincode"])


def _missing(name: str, body: Any = None) -> Call:
    """A 404: the named path segment is a uuid nothing has (with a valid body where rules come first)."""
    return Call(404, body, refs={name: "missing"})


BodyOf = Callable[[World], Any]
SUCCESS_NEEDS_STATE = {
    ("POST", CMD + "/stop"): "an active transaction (tests/api/test_commands_api.py)",
    ("GET", C + "/diagnostics-files/{file}"): "an uploaded file (tests/api/test_diagnostics.py)",
    ("POST", "/api/v3/chargers/{charger}/actions/stop"): "an active transaction (tests/api/v3/test_actions.py)",
}
SCENARIOS: dict[tuple[str, str], list[Call]] = {
    ("GET", "/api/v2/user"): [Call(200)],
    ("GET", "/api/v2/teams"): [Call(200)],
    ("POST", "/api/v2/teams"): [Call(422, {"type": "Nope"}), Call(201, {"name": "Acme", "type": "Company"})],
    ("GET", T + "/authorization"): [Call(200)],
    ("PUT", T + "/authorization"): [
        Call(422, {"authorization_mode": "x"}),
        Call(200, {"authorization_mode": "allow_list"}),
    ],
    ("GET", T + "/sites"): [Call(422, query={"per_page": "101"}), Call(200)],
    ("POST", T + "/sites"): [Call(422, {**SITE_BODY, "country": "NLD"}), Call(201, SITE_BODY)],
    ("GET", S): [_missing("site"), Call(200)],
    ("PUT", S): [
        _missing("site"),
        Call(422, {"timezone": "Mars/Base"}),
        Call(200, {"name": "Renamed", "timezone": "Europe/Amsterdam", "kwh_price": "0.25"}),
    ],
    ("DELETE", S): [_missing("site"), Call(204)],
    ("GET", S + "/smart-charging"): [_missing("site"), Call(200)],
    ("PUT", S + "/smart-charging"): [
        _missing("site"),
        Call(422, {"timezone": "Europe/Amsterdam", "smart_charging": "off_peak"}),
        Call(
            200,
            {
                "timezone": "Europe/Amsterdam",
                "smart_charging": "off_peak",
                "off_peak_start": "22:00",
                "off_peak_end": "06:00",
            },
        ),
    ],
    ("GET", S + "/groups"): [_missing("site"), Call(422, query={"page": "0"}), Call(200)],
    ("POST", S + "/groups"): [_missing("site"), Call(422, {"total_amps": 0}), Call(201, {"total_amps": 10})],
    ("GET", S + "/groups/{group}"): [_missing("group"), Call(200)],
    ("PUT", S + "/groups/{group}"): [_missing("group"), Call(422, {"total_amps": 0}), Call(200, {"method": "solar"})],
    ("DELETE", S + "/groups/{group}"): [_missing("group"), Call(422, refs={"group": "root_group"}), Call(204)],
    ("POST", S + "/groups/{group}/chargers"): [
        _missing("group"),
        Call(422, {"charger": 2147483646}),
        Call(200, lambda w: {"charger": w.refs["charger_id"]}),
    ],
    ("GET", S + "/chargers"): [_missing("site"), Call(422, query={"per_page": "0"}), Call(200)],
    ("POST", S + "/chargers"): [
        _missing("site"),
        Call(422, {"identity": "x" * 46}),
        Call(201, lambda _: {"identity": _identity()}),
    ],
    ("DELETE", S + "/chargers/{charger}"): [_missing("charger"), Call(204)],
    ("POST", S + "/attach-charger"): [
        _missing("site"),
        Call(422, lambda w: {"identity": w.loose_identity, "pincode": "WRONG123"}),
        Call(200, lambda w: {"identity": w.loose_identity, "pincode": w.pincode}),
    ],
    ("GET", T + "/chargers"): [Call(200)],
    ("POST", T + "/chargers"): [Call(422, {}), Call(201, lambda _: {"identity": _identity()})],
    ("GET", C): [_missing("charger"), Call(200)],
    ("PUT", C): [_missing("charger"), Call(422, {"reference": "x" * 256}), Call(200, {"reference": "Garage"})],
    ("GET", C + "/ocpp"): [_missing("charger"), Call(200)],
    ("PUT", C + "/ocpp"): [_missing("charger"), Call(422, {"lenient": "maybe"}), Call(200, {"lenient": True})],
    ("POST", CMD + "/start"): [
        _missing("charger", {"id_tag": "TAG1"}),
        Call(422, {}),
        Call(409, {"id_tag": "TAG1"}, refs={"charger": "loose"}),
        Call(200, {"id_tag": "TAG1", "connector_id": 1}),
    ],
    ("POST", CMD + "/stop"): [_missing("charger"), Call(422, {})],
    ("POST", CMD + "/restart"): [_missing("charger", {}), Call(422, {"type": "Medium"}), Call(200, {"type": "Hard"})],
    ("POST", CMD + "/unlock"): [
        _missing("charger", {"connector_id": 1}),
        Call(422, {}),
        Call(200, {"connector_id": 1}),
    ],
    ("POST", CMD + "/availability"): [
        _missing("charger", {"type": "Operative"}),
        Call(422, {"type": "x"}),
        Call(200, {"type": "Inoperative"}),
    ],
    ("POST", CMD + "/trigger"): [
        _missing("charger", {"message": "Heartbeat"}),
        Call(422, {"message": "Nope"}),
        Call(200, {"message": "Heartbeat"}),
    ],
    ("POST", CMD + "/clear-cache"): [_missing("charger", {}), Call(200, {})],
    ("POST", CMD + "/data-transfer"): [
        _missing("charger", {"vendor_id": "x"}),
        Call(422, {"vendor_id": 5}),
        Call(200, {"vendor_id": "org.voltline.simulator", "message_id": "Echo", "data": "hi"}),
    ],
    ("GET", CMD + "/configuration"): [_missing("charger"), Call(422, query={"keys": "k" * 2001}), Call(200)],
    ("PUT", CMD + "/configuration"): [
        _missing("charger", {"key": "HeartbeatInterval", "value": "300"}),
        Call(422, {}),
        Call(200, {"key": "HeartbeatInterval", "value": "300"}),
    ],
    ("GET", C + "/logs"): [_missing("charger"), Call(422, query={"per_page": "0"}), Call(200)],
    ("GET", S + "/connectors"): [_missing("site"), Call(422, query={"page": "0"}), Call(200)],
    ("PUT", S + "/connectors/{connector}"): [
        _missing("connector"),
        Call(422, {"max_amperage": 5}),
        Call(200, {"max_amperage": 16, "phases": 1}),
    ],
    ("GET", S + "/transactions"): [
        _missing("site"),
        Call(422, query={"date_from": "2025-03-12 13:49:24"}),
        Call(200, query={"status": "finished"}),
    ],
    ("GET", C + "/transactions"): [
        _missing("charger"),
        Call(422, query={"order_by": "up"}),
        Call(200, query={"limit": "5"}),
    ],
    ("GET", C + "/metervalues"): [
        _missing("charger"),
        Call(422, query={"date_from": "2025-03-12 13:49:24"}),
        Call(200, query={"date_from": "2025-03-12 00:00:00", "date_to": "2025-03-13 00:00:00"}),
    ],
    ("GET", S + "/usage"): [
        _missing("site"),
        Call(422, query={"from": "2025-03-12"}),
        Call(200, query={"from": "2025-03-12", "to": "2025-03-13", "interval": "hour"}),
    ],
    ("GET", T + "/id-tags"): [Call(422, query={"page": "abc"}), Call(200)],
    ("POST", T + "/id-tags"): [Call(422, {"id_tag": "x" * 21}), Call(201, lambda _: {"id_tag": _identity()[:20]})],
    ("DELETE", T + "/id-tags/{id_tag}"): [_missing("id_tag"), Call(204)],
    ("GET", T + "/meters"): [Call(422, query={"per_page": "0"}), Call(200)],
    ("POST", T + "/meters"): [Call(422, {"type": "gas_meter"}), Call(201, {"type": "ct_meter"})],
    ("POST", T + "/meters/{meter}/readings"): [
        _missing("meter", {"l1": 1}),
        Call(422, {"l2": "x"}),
        Call(200, {"l1": 1.5, "l2": -2, "l3": 0, "power": 300, "timestamp": "2025-03-12 13:49:24"}),
    ],
    ("GET", S + "/groups/{group}/meter"): [_missing("group"), Call(200), Call(200, refs={"group": "root_group"})],
    ("GET", S + "/connectors/{connector}/power-usage"): [_missing("connector"), Call(200)],
    ("GET", C + "/connectors/{number}/power-usage"): [_missing("number"), _missing("charger"), Call(200)],
    ("GET", S + "/power-management"): [_missing("site"), Call(200)],
    ("GET", T + "/audit-log"): [
        Call(422, query={"actor_kind": "robot"}),
        Call(200),
        Call(200, query={"object_type": "site", "actor_kind": "token"}),
    ],
    ("GET", C + "/reservations"): [_missing("charger"), Call(422, query={"per_page": "0"}), Call(200)],
    ("POST", C + "/reservations"): [
        _missing("charger", _reservation_body),
        Call(422, lambda w: {**_reservation_body(w), "id_tag": "x" * 21}),
        Call(409, lambda w: {**_reservation_body(w), "connector_id": 0}, refs={"charger": "loose"}),
        Call(201, _reservation_body),
    ],
    ("DELETE", C + "/reservations/{reservation}"): [_missing("reservation"), Call(204)],
    ("POST", CMD + "/diagnostics"): [
        _missing("charger", {}),
        Call(422, {"start_time": "2026-12-02 00:00:00", "stop_time": "2026-12-01 00:00:00"}),
        Call(409, {}, refs={"charger": "loose"}),
        Call(200, {"log_type": "diagnostics", "start_time": "2026-12-01 00:00:00"}),
    ],
    ("GET", C + "/diagnostics-files"): [_missing("charger"), Call(422, query={"per_page": "0"}), Call(200)],
    ("GET", C + "/diagnostics-files/{file}"): [_missing("file"), _missing("charger")],
    ("PUT", T + "/id-tags/{id_tag}"): [
        _missing("id_tag", {"status": "Blocked"}),
        Call(422, {"status": "Lost"}),
        Call(200, {"status": "Blocked"}),
    ],
    ("GET", C + "/local-list"): [_missing("charger"), Call(200)],
    ("POST", C + "/local-list/sync"): [_missing("charger"), Call(409, refs={"charger": "loose"}), Call(200)],
    ("GET", V3SET + "/plug-charge"): [_missing("charger"), Call(404, refs={"charger": "charger_id"}), Call(200)],
    ("POST", V3SET + "/plug-charge"): [
        _missing("charger", {"enabled": False}),
        Call(422, {"enabled": True}),
        Call(422, {"enabled": False, "card_uid": "X" * 21}),
        Call(204, {"enabled": True, "card_uid": "04A1B2C3"}),
    ],
    ("GET", V3SET + "/lock"): [_missing("charger"), Call(200)],
    ("POST", V3SET + "/lock"): [
        _missing("charger", {"enabled": True}),
        Call(422, {"enabled": "x"}),
        Call(204, {"enabled": True}),
    ],
    ("GET", V3SET + "/cable-lock"): [_missing("charger"), Call(200)],
    ("POST", V3SET + "/cable-lock"): [
        _missing("charger", {"enabled": False}),
        Call(422, {}),
        Call(204, {"enabled": False}),
    ],
    ("GET", V3SET + "/socket-lock"): [_missing("charger"), Call(200)],
    ("POST", V3SET + "/socket-lock"): [
        _missing("charger", {"enabled": True}),
        Call(422, {"enabled": 2}),
        Call(204, {"enabled": True}),
    ],
    ("GET", "/api/v2/tariffs"): [
        Call(422, query={"limit": "5"}),
        Call(200, query={"location": "NL", "date_from": "2025-03-12 00:00:00", "date_to": "2025-03-13 00:00:00"}),
    ],
    ("POST", CMD + "/update-firmware"): [
        _missing("charger", {"location": "https://example.com/fw.bin"}),
        Call(422, {"location": "file:///fw.bin"}),
        Call(422, {"location": "https://example.com/fw.bin", "signature": "c2ln"}),
        Call(409, {"location": "https://example.com/fw.bin"}, refs={"charger": "loose"}),
        Call(200, {"location": "https://example.com/fw.bin", "retries": 2, "retrieve_at": "2025-03-12 13:49:24"}),
    ],
    ("GET", C + "/firmware-updates"): [_missing("charger"), Call(422, query={"per_page": "0"}), Call(200)],
    # -- v3 (spec volttime-v3; tests/api/v3/) --
    (V3, "/api/v3/user"): [Call(200)],
    (V3, "/api/v3/teams"): [Call(200)],
    ("POST", "/api/v3/teams"): [Call(422, {}), Call(201, {"name": "Acme", "email": "acme@example.com"})],
    (V3, "/api/v3/sites"): [Call(422, query={"per_page": "101"}), Call(200, query={"search": "Main"})],
    ("POST", "/api/v3/sites"): [Call(422, {**SITE_BODY, "country": "NLD"}), Call(201, SITE_BODY)],
    (V3, V3S): [_missing("site"), Call(200)],
    ("PUT", V3S): [_missing("site"), Call(422, {"country": "NLD"}), Call(200, {"name": "Renamed"})],
    (V3, V3S + "/chargers"): [_missing("site"), Call(422, query={"per_page": "0"}), Call(200)],
    ("POST", V3S + "/chargers"): [
        _missing("site"),
        Call(422, lambda w: {"identity": w.loose_identity, "pincode": "WRONG123"}),
        Call(200, lambda w: {"identity": w.loose_identity, "pincode": w.pincode}),
    ],
    ("DELETE", V3S + "/chargers/{charger}"): [_missing("charger"), Call(204)],
    (V3, V3S + "/connectors"): [_missing("site"), Call(422, query={"per_page": "0"}), Call(200)],
    (V3, V3S + "/cards"): [_missing("site"), Call(422, query={"page": "0"}), Call(200)],
    ("POST", V3S + "/cards"): [
        _missing("site", {"name": "A", "id_token": "CARD1"}),
        Call(422, {"name": "A"}),
        Call(201, {"name": "A", "id_token": "CARD1"}),
    ],
    ("PUT", V3S + "/cards/{card}"): [
        _missing("card", {"name": "A", "id_token": "CARD1"}),
        Call(422, {}),
        Call(200, {"name": "A", "id_token": "CARD1"}),
    ],
    ("DELETE", V3S + "/cards/{card}"): [_missing("card"), Call(204)],
    (V3, "/api/v3/chargers"): [Call(422, query={"per_page": "101"}), Call(200)],
    ("POST", "/api/v3/chargers"): [Call(422, {}), Call(201, lambda _: {"identity": _identity()})],
    (V3, V3C): [_missing("charger"), Call(200)],
    ("PUT", V3C): [_missing("charger"), Call(422, {"reference": "x" * 256}), Call(200, {"reference": "Garage"})],
    ("PUT", V3C + "/connectors/{number}"): [
        _missing("number", {"phase_rotation": "RST", "max_amperage": 16}),
        _missing("charger", {"phase_rotation": "RST", "max_amperage": 16}),
        Call(422, {"max_amperage": 16}),
        Call(200, {"phase_rotation": "RST", "max_amperage": 16}),
    ],
    (V3, V3C + "/connectors/{number}/power-usage"): [_missing("number"), _missing("charger"), Call(200)],
    (V3, V3C + "/connectors/{number}/latest-metervalue"): [_missing("number"), _missing("charger"), Call(200)],
    (V3, V3C + "/transactions"): [
        _missing("charger"),
        Call(422, query={"sort": "up"}),
        Call(200, query={"limit": "5", "filter[status]": "finished"}),
    ],
    (V3, V3C + "/metervalues"): [
        _missing("charger"),
        Call(422, query={"date_from": "2025-03-12 13:49:24"}),
        Call(200, query={"date_from": "2025-03-12 00:00:00", "date_to": "2025-03-13 00:00:00"}),
    ],
    (V3, V3C + "/logs"): [
        _missing("charger"),
        Call(422, query={"filter[status]": "lost"}),
        Call(200, query={"filter[hide_insignificant]": "1", "filter[date_from]": "2025-03-12"}),
    ],
    ("POST", V3C + "/actions/start"): [
        _missing("charger", {"id_token": "TAG1"}),
        Call(422, {}),
        Call(409, {"id_token": "TAG1"}, refs={"charger": "loose_uuid"}),
        Call(200, {"id_token": "TAG1", "connector_id": 1}),
    ],
    ("POST", V3C + "/actions/stop"): [_missing("charger"), Call(422, {})],
    ("POST", V3C + "/actions/restart"): [_missing("charger"), Call(200)],
    ("POST", V3C + "/actions/unlock"): [
        _missing("charger", {"connector_id": 1}),
        Call(422, {}),
        Call(200, {"connector_id": 1}),
    ],
    ("POST", V3C + "/actions/charge-limit"): [
        _missing("charger", {"connector_id": 1, "limit": 16}),
        Call(422, {"connector_id": 1, "limit": 5}),
        Call(200, {"connector_id": 1, "limit": 16}),
    ],
    ("POST", V3C + "/actions/clear-charge-limit"): [
        _missing("charger", {}),
        Call(422, {"connector_id": -1}),
        Call(200, {"connector_id": 1}),
    ],
    ("POST", V3C + "/actions/charging-profile"): [
        _missing("charger", {"connector_id": 1, "charging_profile": {}}),
        Call(422, {"connector_id": 1}),
        Call(200, {"connector_id": 1, "charging_profile": V3_PROFILE}),
    ],
    ("POST", V3C + "/actions/clear-charging-profile"): [
        _missing("charger", {}),
        Call(422, {"charging_profile_purpose": "Other"}),
        Call(200, {}),
    ],
}


@functools.cache
def response_validator(method: str, path: str, status: int) -> Callable[[Any], Any] | None:
    """A validator for the documented body of the status, $refs resolved against the components; None for no body."""
    response = operation(method, path)["responses"].get(str(status))
    assert response is not None, f"{method} {path} answered {status}, which it does not document"
    if "content" not in response:
        return None
    schema = response["content"]["application/json"]["schema"]
    return fastjsonschema.compile({**schema, "components": DOC["components"]})  # type: ignore[no-any-return]


def url_for(path: str, world: World, refs: dict[str, str]) -> str:
    return PARAM.sub(lambda m: str(world.refs[refs.get(m.group(1), m.group(1))]), path)


def check(response: httpx.Response, method: str, path: str, status: int) -> None:
    """The status is the expected one and the body matches the schema the document declares for it."""
    assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
    validator = response_validator(method, path, status)
    if validator is None:
        assert response.content == b""
        return
    assert response.headers["content-type"].startswith("application/json")
    validator(response.json())


def test_every_operation_has_a_scenario_with_its_success_422_and_404() -> None:
    assert set(SCENARIOS) == set(OPERATIONS), "add a scenario for each new operation"
    for (method, path), calls in SCENARIOS.items():
        statuses = {call.status for call in calls}
        documented = {int(s) for s in operation(method, path)["responses"]}
        expected = {s for s in documented if s < 300 or s in {404, 422}}
        if (method, path) in SUCCESS_NEEDS_STATE:
            expected = {s for s in expected if s >= 300}
        assert expected <= statuses, (method, path)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_real_responses_match_the_declared_schemas(server: LiveServer, world: World, method: str, path: str) -> None:
    """One call per outcome; then 401 without a token and 403 on a team the caller is not in."""
    with server.client(world.account) as api:
        for call in SCENARIOS[(method, path)]:
            body = call.body(world) if callable(call.body) else call.body
            response = api.request(method, url_for(path, world, call.refs), json=body, params=call.query)
            check(response, method, path, call.status)
        if "{team}" in path:
            other = server.account("Other").team_id
            response = api.request(
                method, url_for(path, world, {}).replace(f"/teams/{world.account.team_id}", f"/teams/{other}")
            )
            check(response, method, path, 403)
    with server.client() as anonymous:
        check(anonymous.request(method, url_for(path, world, {})), method, path, 401)
