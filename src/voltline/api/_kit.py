"""Shared pieces of every handler: envelopes, the one page helper, body decoding, path refs, query dates and limits.

Every paginated list reads its page with `page_window()` (or `page_of()` when `page` and
`per_page` are validated with the endpoint's other query rules), fetches `Page.fetch` rows (one
more than the page shows, which tells whether a next page exists) and answers with
`page_response()`. Query dates (`Y-m-d H:i:s` moments in UTC, `Y-m-d` days) and `limit` /
`order_by` are parsed here, once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from voltline import codec
from voltline.api._contract import Contract
from voltline.api._rules import error_summary
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
PAGE_QUERY = Contract("PageQuery", "A page of a list: `page` (from 1) and `per_page` (25 unless given).", PAGE_RULES)
# Query moments are `Y-m-d H:i:s` in UTC (DESIGN: inputs without offset are UTC); days are `Y-m-d`.
DATE_FORMAT = "Y-m-d H:i:s"
STRPTIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DAY_FORMAT = "Y-m-d"
DATE_RULES = {
    "date_from": f"required_with:date_to|date_format:{DATE_FORMAT}",
    "date_to": f"required_with:date_from|date_format:{DATE_FORMAT}",
}
LIMIT_DEFAULT = 1000
LIMIT_MAX = 10000
LIMIT_RULE = f"integer|min:1|max:{LIMIT_MAX}"
ORDER_RULE = "in:desc,asc"
_NUMBER_DIGITS = 10


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


def query_data(request: Request) -> dict[str, Any]:
    """The query string, normalised as every input is (trimmed; empty strings are null)."""
    return normalise_input(dict(request.query_params))


async def input_data(request: Request) -> dict[str, Any]:
    """Laravel's `$request->input()`: the query string merged with a JSON body (body wins)."""
    data = query_data(request)
    data.update(await json_body(request))
    return data


def path_number(request: Request, name: str) -> int:
    """A path segment as a small non-negative integer (an OCPP connector number); anything else is a 404."""
    raw: str = request.path_params[name]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= _NUMBER_DIGITS and int(raw) <= INT_MAX):
        raise NotFoundError(name)
    return int(raw)


def parse_date(value: str) -> datetime:
    """A validated `Y-m-d H:i:s` input as a naive UTC moment (DESIGN: inputs without offset are UTC)."""
    return datetime.strptime(value, STRPTIME_FORMAT)


def optional_date(value: str | None) -> datetime | None:
    """`parse_date` of an input that may be left out."""
    return None if value is None else parse_date(value)


def parse_day(value: str) -> date:
    """A validated `Y-m-d` input as a calendar day."""
    return date.fromisoformat(value)


def query_limit(clean: Mapping[str, Any]) -> int:
    """The validated `limit` (LIMIT_RULE), 1000 when left out."""
    return int(clean.get("limit") or LIMIT_DEFAULT)


def limit_and_order(clean: Mapping[str, Any]) -> tuple[int, bool]:
    """The validated `limit` (default 1000) and whether `order_by` is descending (the default)."""
    return query_limit(clean), clean.get("order_by", "desc") == "desc"


@dataclass(frozen=True)
class Page:
    """One page of a list: its number, its size (`per_page`) and the offset of its first row."""

    number: int
    size: int
    offset: int

    @property
    def fetch(self) -> int:
        """Rows to read: one more than the page shows, which tells whether a next page exists."""
        return self.size + 1


def page_of(clean: Mapping[str, Any]) -> Page:
    """The page named by validated `page` and `per_page` (PAGE_RULES); the offset clamped to INT_MAX rows."""
    number, size = int(clean.get("page") or 1), int(clean.get("per_page") or PER_PAGE_DEFAULT)
    return Page(number, size, min((number - 1) * size, INT_MAX))


def page_window(request: Request) -> Page:
    """The page of the query string, checked against PAGE_RULES (422 on bad values)."""
    return page_of(PAGE_QUERY.validate(query_data(request)))


def page_response(
    request: Request, page: Page, rows: Sequence[Any], shape: Callable[[Any], Any], *, more: bool | None = None
) -> Response:
    """The page's rows shaped for the API: `rows` were read with `page.fetch` (or `more` says what follows)."""
    has_more = len(rows) > page.size if more is None else more
    return _paginated(request, [shape(row) for row in rows[: page.size]], page.number, page.size, has_more=has_more)


def page_url(request: Request, page: int) -> str:
    """The request's URL (its other query parameters kept) on page `page`."""
    query = {k: v for k, v in request.query_params.items() if k != "page"}
    query["page"] = str(page)
    return f"{_path_url(request)}?{urlencode(query)}"


def _path_url(request: Request) -> str:
    return str(request.url.replace(query="", fragment=""))


def _paginated(request: Request, items: Sequence[Any], page: int, per_page: int, *, has_more: bool) -> Response:
    """Laravel simple pagination: `data`, `links` (absolute, `last` always null) and `meta`."""
    count = len(items)
    first_position = (page - 1) * per_page + 1
    return json_response(
        {
            "data": list(items),
            "links": {
                "first": page_url(request, 1),
                "last": None,
                "prev": page_url(request, page - 1) if page > 1 else None,
                "next": page_url(request, page + 1) if has_more else None,
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
