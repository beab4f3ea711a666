"""OpenAPI 3.1 generated from the route table and the msgspec schemas, and an offline docs page."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from voltline import __version__, codec
from voltline.api._kit import json_response
from voltline.api._routing import Endpoint

_PARAM = re.compile(r"{(\w+)}")
_ERROR = {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}
_VALIDATION_ERROR = {
    "type": "object",
    "properties": {
        "message": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
    "required": ["message", "errors"],
}
_ERROR_TEXT = {
    400: "Malformed request",
    401: "Unauthenticated",
    403: "Not a member of the team",
    404: "Not found",
    409: "Conflict",
    422: "Validation failed",
    429: "Too many attempts",
    504: "The charger did not respond in time",
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


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": f"The integer id or the uuid of the {name.replace('_', ' ')}.",
            "schema": {"type": "string", "pattern": r"^([0-9]{1,18}|[0-9a-fA-F-]{36})$"},
        }
        for name in _PARAM.findall(endpoint.path)
    ]
    for name, rules in endpoint.query.items():
        schema: dict[str, Any] = {"type": "integer"} if "integer" in rules else {"type": "string"}
        in_rule = next((r for r in rules.split("|") if r.startswith("in:")), None)
        if in_rule:
            schema = {"type": "string", "enum": in_rule[3:].split(",")}
        params.append({"name": name, "in": "query", "required": "required|" in rules + "|", "schema": schema})
    return params


def _operation(endpoint: Endpoint, schemas: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if endpoint.shape == "empty":
        responses[str(endpoint.status)] = {"description": "No content"}
    else:
        body = schemas[endpoint.response] if endpoint.response is not None else {"type": "object"}
        responses[str(endpoint.status)] = {
            "description": "OK",
            "content": {"application/json": {"schema": _wrap(endpoint.shape, body)}},
        }
    codes = set(endpoint.errors) | ({400, 422} if endpoint.body is not None or endpoint.query else set())
    if not endpoint.public:
        codes |= {401, 429} | ({403} if "{team}" in endpoint.path else set())
    if len(_PARAM.findall(endpoint.path)) > ("{team}" in endpoint.path):
        codes.add(404)
    for code in sorted(codes):
        schema = _VALIDATION_ERROR if code == 422 else _ERROR
        responses[str(code)] = {"description": _ERROR_TEXT[code], "content": {"application/json": {"schema": schema}}}
    operation: dict[str, Any] = {
        "operationId": endpoint.handler.__name__,
        "summary": endpoint.summary,
        "description": (endpoint.handler.__doc__ or "").strip(),
        "tags": [endpoint.tag],
        "parameters": _parameters(endpoint),
        "responses": responses,
    }
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas[endpoint.body]}},
        }
    if not endpoint.public:
        operation["security"] = [{"bearerAuth": []}]
    return operation


def build_openapi(endpoints: list[Endpoint]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for the given endpoints."""
    types = list(dict.fromkeys(t for ep in endpoints for t in (ep.body, ep.response) if t is not None))
    generated, components = codec.json_schema_components(types)
    schemas = dict(zip(types, generated, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Voltline API",
            "version": __version__,
            "description": "Charge point management, wire-compatible with the Volttime cloud API v2.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi_json(request: Request) -> Response:
    """Serve the OpenAPI document."""
    return json_response(request.app.state.openapi)


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Voltline API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>"""


async def docs_page(_request: Request) -> Response:
    """The Swagger UI page; its assets come from the installed package, so it works offline."""
    return HTMLResponse(DOCS_HTML)
