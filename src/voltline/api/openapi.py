"""OpenAPI 3.1 generated from the route table and the msgspec schemas, and an offline docs page.

A request body is its endpoint's contract (api/_contract.py): the Struct derived from the Laravel
rules its handler checks, with those rules as JSON Schema keywords where one exists (`max:45` on
a string is `maxLength: 45`) and verbatim under `x-rules`. Each operation names its guard
(`x-guard`, api/auth.py) and asks for the bearer token unless the guard is `public`. Every operation
lists the error statuses it can answer with their Laravel-shaped bodies, and the rate-limit
headers its responses carry when the limit is on. A create (201) links to every operation on
what it made (OpenAPI 3.1 §4.8.20 Link Object: the new `id` from `$response.body#/data/id`, the
rest of the path from the request), so clients and stateful testers can chain create -> read,
update, delete.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from voltline import __version__, codec
from voltline.api._contract import Contract
from voltline.api._kit import INT_MAX, UUID_PATTERN, json_response
from voltline.api._routing import Endpoint, declared_guard
from voltline.api._rules import PATTERNS, parse_rules

_PARAM = re.compile(r"{(\w+)}")
_CHILD = re.compile(r"/{(\w+)}")
_REF_PATTERN = f"^([0-9]{{1,{len(str(INT_MAX))}}}|{UUID_PATTERN.pattern})$"
_ERROR_REF = {"$ref": "#/components/schemas/ErrorMessage"}
_VALIDATION_REF = {"$ref": "#/components/schemas/ValidationErrors"}
_ERROR_SCHEMAS = {
    "ErrorMessage": {
        "type": "object",
        "description": "A Laravel-shaped error.",
        "properties": {"message": {"type": "string"}},
        "required": ["message"],
    },
    "ValidationErrors": {
        "type": "object",
        "description": 'A 422: the first error plus "(and N more errors)", and every error by field.',
        "properties": {
            "message": {"type": "string"},
            "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        },
        "required": ["message", "errors"],
    },
}
# Status -> (description, example body).
_ERRORS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("Malformed request", {"message": "The request body is not valid JSON."}),
    401: ("Unauthenticated", {"message": "Unauthenticated."}),
    403: ("Not a member of the team", {"message": "This action is unauthorized."}),
    404: ("Not found", {"message": "Not found."}),
    409: ("Conflict", {"message": "The charger is offline."}),
    413: ("Body over 1 MiB", {"message": "The request body is too large."}),
    422: (
        "Validation failed",
        {"message": "The name field is required.", "errors": {"name": ["The name field is required."]}},
    ),
    429: ("Too many attempts", {"message": "Too Many Attempts."}),
    502: ("The charger answered with an error", {"message": "The charger answered NotSupported: Unknown key."}),
    504: ("The charger did not respond in time", {"message": "The charger did not respond in time."}),
}
_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed per minute for this token (sent while the rate limit is on).",
    "X-RateLimit-Remaining": "Requests left in the current minute (sent while the rate limit is on).",
    "Retry-After": "Seconds until the next request is allowed.",
}
_NULLABLE_URL = {"type": ["string", "null"]}
_LINKS = {
    "type": "object",
    "properties": {"first": {"type": "string"}, "last": {"type": "null"}, "prev": _NULLABLE_URL, "next": _NULLABLE_URL},
    "required": ["first", "last", "prev", "next"],
}
_META = {
    "type": "object",
    "properties": {
        "current_page": {"type": "integer"},
        "from": {"type": ["integer", "null"]},
        "path": {"type": "string"},
        "per_page": {"type": "integer"},
        "to": {"type": ["integer", "null"]},
    },
    "required": ["current_page", "from", "path", "per_page", "to"],
}
_SUCCESS_TEXT = {200: "OK", 201: "Created", 204: "No content"}


_PHP_DATE_TOKENS = {
    "Y": "[0-9]{4}",
    "m": "[0-9]{2}",
    "d": "[0-9]{2}",
    "H": "[0-9]{2}",
    "i": "[0-9]{2}",
    "s": "[0-9]{2}",
}
_REGEX_SYNTAX = frozenset("^$\\.*+?()[]{}|/")
_CONDITIONS = {
    "required_if": "Required when {0} is {1}.",
    "required_with": "Required when {0} is present.",
    "required_without": "Required when {0} is not present.",
}


def _allows(schema: Mapping[str, Any], json_type: str) -> bool:
    """Whether a msgspec property schema admits the JSON type (directly or in an anyOf)."""
    if schema.get("type") == json_type:
        return True
    return any(option.get("type") == json_type for option in schema.get("anyOf", ()))


def _size_keywords(name: str, limit: str, numeric: bool) -> dict[str, Any]:
    number = int(limit) if numeric or limit.isdigit() else float(limit)
    if numeric:
        return {"min": {"minimum": number}, "max": {"maximum": number}, "size": {"const": number}}[name]
    return {
        "min": {"minLength": number},
        "max": {"maxLength": number},
        "size": {"minLength": number, "maxLength": number},
    }[name]


def _literal(char: str) -> str:
    """A character as an ECMA-262 pattern literal (JSON Schema patterns are not Python regexes)."""
    return "\\" + char if char in _REGEX_SYNTAX else char


def constraints(rules: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """JSON Schema keywords for a Laravel rule string, given the field's generated schema."""
    parsed = parse_rules(rules)
    names = {rule.name for rule in parsed}
    numeric = bool(names & {"integer", "numeric"})
    extra: dict[str, Any] = {"x-rules": rules}
    notes: list[str] = []
    for rule in parsed:
        if rule.name in {"min", "max", "size"}:
            extra.update(_size_keywords(rule.name, rule.params[0], numeric))
        elif rule.name == "in":
            as_int = _allows(schema, "integer") and all(p.lstrip("-").isdigit() for p in rule.params)
            values: list[Any] = [int(p) for p in rule.params] if as_int else list(rule.params)
            extra["enum"] = values + ([None] if _allows(schema, "null") else [])
        elif rule.name == "date_format":
            php = ",".join(rule.params)
            extra["pattern"] = "^" + "".join(_PHP_DATE_TOKENS.get(ch, _literal(ch)) for ch in php) + "$"
            notes.append(f"Format `{php}`.")
        elif rule.name == "regex":
            extra["pattern"] = PATTERNS[rule.params[0]]
        elif rule.name in {"email", "uuid"}:
            extra["format"] = rule.name
        elif rule.name == "timezone":
            notes.append("An IANA time zone name, such as `Europe/Amsterdam`.")
        elif rule.name in _CONDITIONS:
            notes.append(_CONDITIONS[rule.name].format(rule.params[0], " or ".join(rule.params[1:])))
    if notes:
        extra["description"] = " ".join(notes)
    return extra


def _constrained_body(schema: dict[str, Any], contract: Contract) -> dict[str, Any]:
    """The Struct's schema with each property's rules as JSON Schema keywords (aliases point to theirs)."""
    rules = contract.documented_rules
    properties: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        if name in rules:
            properties[name] = {**prop, **constraints(rules[name], prop)}
        else:
            properties[name] = {**prop, "description": f"Accepted for `{contract.aliases[name]}`."}
    return {**schema, "properties": properties}


def _wrap(shape: str, schema: dict[str, Any]) -> dict[str, Any]:
    if shape == "raw":
        return schema
    if shape == "page":
        return {
            "type": "object",
            "properties": {"data": {"type": "array", "items": schema}, "links": _LINKS, "meta": _META},
            "required": ["data", "links", "meta"],
        }
    if shape == "list":
        schema = {"type": "array", "items": schema}
    return {"type": "object", "properties": {"data": schema}, "required": ["data"]}


def _query_parameter(name: str, rules: str) -> dict[str, Any]:
    base: dict[str, Any] = {"type": "integer"} if "integer" in rules else {"type": "string"}
    schema = {**base, **constraints(rules, base)}
    description = schema.pop("description", None)
    parameter = {"name": name, "in": "query", "required": "required" in rules.split("|"), "schema": schema}
    return {**parameter, "description": description} if description else parameter


# spec volttime-v3 §1.1: chargers and sites by uuid, connectors by OCPP number, cards by integer id.
_V3_PATH_PARAMETERS = {
    "charger": "The uuid of the charger.",
    "site": "The uuid of the site.",
    "number": "The OCPP connector number.",
    "card": "The integer id of the card.",
}


def _path_description(path: str, name: str) -> str:
    """What a path parameter names: v2 takes an integer id or a uuid (a connector: its OCPP number); v3 as
    its §1.1 says."""
    if name == "number" or (path.startswith("/api/v3/") and name in _V3_PATH_PARAMETERS):
        return _V3_PATH_PARAMETERS[name]
    return f"The integer id or the uuid of the {name.replace('_', ' ')}."


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": _path_description(endpoint.path, name),
            "schema": {"type": "string", "pattern": _REF_PATTERN},
        }
        for name in _PARAM.findall(endpoint.path)
    ]
    return params + [
        _query_parameter(name, rules) for name, rules in (endpoint.query.rules if endpoint.query else {}).items()
    ]


def error_statuses(endpoint: Endpoint) -> list[int]:
    """Every error status the operation can answer with."""
    codes = set(endpoint.errors)
    if endpoint.body is not None:
        codes |= {400, 413, 422}
    if endpoint.query is not None:
        codes |= {400, 422}
    guard = declared_guard(endpoint)
    if guard.token:
        codes |= {401, 429} | ({403} if guard.team else set())
    if len(_PARAM.findall(endpoint.path)) > ("{team}" in endpoint.path):
        codes.add(404)
    return sorted(codes)


def _headers(endpoint: Endpoint, status: int) -> dict[str, Any]:
    if not declared_guard(endpoint).token or status == 401:
        return {}
    names = ["X-RateLimit-Limit", "X-RateLimit-Remaining"] + (["Retry-After"] if status == 429 else [])
    return {"headers": {name: {"$ref": f"#/components/headers/{name}"} for name in names}}


def _responses(endpoint: Endpoint, schemas: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    status = endpoint.status
    responses: dict[str, Any] = {str(status): {"description": _SUCCESS_TEXT.get(status, "OK")}}
    if endpoint.shape == "file":
        binary = {"schema": {"type": "string", "format": "binary"}}
        responses[str(status)]["content"] = {"application/octet-stream": binary}
    elif endpoint.shape != "empty":
        body = schemas[endpoint.response] if endpoint.response is not None else {"type": "object"}
        responses[str(status)]["content"] = {"application/json": {"schema": _wrap(endpoint.shape, body)}}
        if endpoint.query is not None and "csv" in endpoint.query.rules.get(
            "format", ""
        ):  # CSV export (api/transactions.py)
            responses[str(status)]["content"]["text/csv"] = {"schema": {"type": "string"}}
    responses[str(status)].update(_headers(endpoint, status))
    for code in error_statuses(endpoint):
        description, example = _ERRORS[code]
        if code == 403 and (role := declared_guard(endpoint).role) is not None:
            description = f"Not a member of the team, or not its {role}"
        schema = _VALIDATION_REF if code == 422 else _ERROR_REF
        content = {"application/json": {"schema": schema, "example": example}}
        responses[str(code)] = {"description": description, "content": content, **_headers(endpoint, code)}
    return responses


def links(endpoint: Endpoint, endpoints: list[Endpoint]) -> dict[str, Any]:
    """The operations a create leads to: those under `{path}/{new}` whose other path parameters it has."""
    after = len(endpoint.path)
    made = {m[1] for ep in endpoints if ep.path.startswith(endpoint.path) and (m := _CHILD.match(ep.path, after))}
    if endpoint.status != 201 or len(made) != 1:
        return {}
    [name] = made
    known = set(_PARAM.findall(endpoint.path))
    found: dict[str, Any] = {}
    for target in endpoints:
        wanted = set(_PARAM.findall(target.path))
        if f"{{{name}}}" in target.path and wanted <= known | {name}:
            parameters = {param: f"$request.path.{param}" for param in sorted(wanted - {name})}
            parameters[name] = "$response.body#/data/id"
            found[target.handler.__name__] = {"operationId": target.handler.__name__, "parameters": parameters}
    return found


def _operation(endpoint: Endpoint, schemas: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.handler.__name__,
        "summary": endpoint.summary,
        "description": (endpoint.handler.__doc__ or "").strip(),
        "tags": [endpoint.tag],
        "parameters": _parameters(endpoint),
        "responses": _responses(endpoint, schemas),
    }
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas[endpoint.body.struct]}},
        }
    guard = declared_guard(endpoint)
    operation["x-guard"] = guard.name
    if guard.token:
        operation["security"] = [{"bearerAuth": []}]
    return operation


def _components(types: list[Any], contracts: list[Contract]) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    """Schemas for the types (refs into components) and the components, bodies carrying their rules."""
    generated, components = codec.json_schema_components(types)
    for contract in contracts:
        components[contract.name] = _constrained_body(components[contract.name], contract)
    clash = set(components) & set(_ERROR_SCHEMAS)
    if clash:
        raise ValueError(f"component names taken: {sorted(clash)}")
    return dict(zip(types, generated, strict=True)), {**components, **_ERROR_SCHEMAS}


def build_openapi(endpoints: list[Endpoint]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for the given endpoints."""
    contracts = list(dict.fromkeys(ep.body for ep in endpoints if ep.body is not None))
    declared = (t for ep in endpoints for t in (ep.body and ep.body.struct, ep.response) if t is not None)
    types = list(dict.fromkeys(declared))
    schemas, components = _components(types, contracts)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation = _operation(endpoint, schemas)
        if found := links(endpoint, endpoints):
            operation["responses"][str(endpoint.status)]["links"] = found
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Voltline API",
            "version": __version__,
            "description": "Charge point management, wire-compatible with the Volttime cloud API v2.",
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": tag} for tag in dict.fromkeys(ep.tag for ep in endpoints)],
        "paths": paths,
        "components": {
            "schemas": components,
            "headers": {name: {"description": text, "schema": {"type": "integer"}} for name, text in _HEADERS.items()},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi_json(request: Request) -> Response:
    """Serve the OpenAPI document."""
    return json_response(request.app.state.openapi)


# Swagger UI 5 reads OpenAPI 3.1; `validatorUrl: null` keeps it from calling an online validator.
DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Voltline API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", validatorUrl: null});</script>
</body></html>"""


def docs_assets() -> Path:
    """The Swagger UI 5 files shipped in the `swagger-ui-py` package (found without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(spec.origin).parent / "static"


async def docs_page(_request: Request) -> Response:
    """The Swagger UI page; its assets come from the installed package, so it works offline."""
    return HTMLResponse(DOCS_HTML)
