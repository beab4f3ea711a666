"""Shared pieces of every handler: envelopes, pagination, body decoding, path refs, errors."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from voltline import codec
from voltline.api._rules import error_summary, validate
from voltline.domain.ids import Ref
from voltline.errors import NotFoundError, ValidationError

PER_PAGE_DEFAULT = 25
PER_PAGE_MAX = 100
# Ids are 32-bit integer columns on PostgreSQL; a larger number names nothing.
INT_MAX = 2_147_483_647
# Only the canonical 8-4-4-4-12 form names a row; anything else (a NUL byte included) is a 404.
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
PAGE_RULES = {
    "page": "nullable|integer|min:1",
    "per_page": f"nullable|integer|min:1|max:{PER_PAGE_MAX}",
}


class BadRequestError(Exception):
    """The request could not be read at all (malformed JSON, wrong content)."""


def json_response(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response encoded by the codec."""
    return Response(codec.encode_json(content), status_code=status, headers=headers, media_type="application/json")


def envelope(data: Any, status: int = 200) -> Response:
    """`{"data": ...}`, Laravel's API resource wrapper."""
    return json_response({"data": data}, status)


def no_content() -> Response:
    """204, for detach and delete."""
    return Response(status_code=204)


def message(text: str, status: int, headers: Mapping[str, str] | None = None) -> Response:
    """`{"message": ...}` with a status code."""
    return json_response({"message": text}, status, headers)


def validation_response(error: ValidationError) -> Response:
    """422 with Laravel's body: the summary message and every error by field."""
    return json_response({"message": error_summary(error.errors), "errors": error.errors}, 422)


def path_ref(request: Request, name: str) -> Ref:
    """A path segment as an integer id or a uuid; anything else names nothing (404)."""
    raw: str = request.path_params[name]
    if raw.isascii() and raw.isdigit() and len(raw) <= 10 and int(raw) <= INT_MAX:
        return int(raw)
    if UUID_PATTERN.fullmatch(raw):
        return raw.lower()
    raise NotFoundError(name)


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is `{}`; anything else is a 400."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = codec.decode_json(raw)
    except (codec.DecodeError, RecursionError):  # msgspec refuses nesting deeper than ~1000 this way
        raise BadRequestError("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadRequestError("The request body must be a JSON object.")
    return normalise_input(data)


def normalise_input(data: dict[str, Any]) -> dict[str, Any]:
    """Laravel's TrimStrings and ConvertEmptyStringsToNull middleware, on top-level values."""
    if _has_nul(data):
        # PostgreSQL text cannot hold U+0000; refuse it up front rather than fail in the database.
        raise BadRequestError("The request must not contain NUL characters.")
    return {key: _normalise_value(value) for key, value in data.items()}


def _has_nul(data: Any) -> bool:
    """Whether any string in the decoded JSON holds U+0000 (a loop: bodies can nest deeply)."""
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, str) and "\x00" in value:
            return True
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def _normalise_value(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return value.strip() or None


async def input_data(request: Request) -> dict[str, Any]:
    """Laravel's `$request->input()`: the query string merged with a JSON body (body wins)."""
    data = normalise_input(dict(request.query_params))
    data.update(await json_body(request))
    return data


def page_params(request: Request) -> tuple[int, int]:
    """`page` and `per_page` from the query string, checked (422 on bad values)."""
    clean = validate(normalise_input(dict(request.query_params)), PAGE_RULES)
    return int(clean.get("page") or 1), int(clean.get("per_page") or PER_PAGE_DEFAULT)


def page_window(request: Request) -> tuple[int, int, int]:
    """`page`, `per_page` and the row offset (clamped: no table holds more than INT_MAX rows)."""
    page, per_page = page_params(request)
    return page, per_page, min((page - 1) * per_page, INT_MAX)


def _page_url(request: Request, page: int) -> str:
    query = {k: v for k, v in request.query_params.items() if k != "page"}
    query["page"] = str(page)
    return f"{_path_url(request)}?{urlencode(query)}"


def _path_url(request: Request) -> str:
    return str(request.url.replace(query="", fragment=""))


def paginated(request: Request, items: Sequence[Any], page: int, per_page: int, *, has_more: bool) -> Response:
    """Laravel simple pagination: `data`, `links` (absolute, `last` always null) and `meta`."""
    count = len(items)
    first_position = (page - 1) * per_page + 1
    return json_response(
        {
            "data": list(items),
            "links": {
                "first": _page_url(request, 1),
                "last": None,
                "prev": _page_url(request, page - 1) if page > 1 else None,
                "next": _page_url(request, page + 1) if has_more else None,
            },
            "meta": {
                "current_page": page,
                "from": first_position if count else None,
                "path": _path_url(request),
                "per_page": per_page,
                "to": first_position + count - 1 if count else None,
            },
        }
    )
