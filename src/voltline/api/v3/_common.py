"""Shared pieces of the v3 front-end: uuid paths, the user's scope, and the length-aware paginator.

spec volttime-v3 §1.1: chargers, sites and teams are named by uuid in paths (anything else is a
404); connectors by OCPP number. §1.6: a token is a user's; each object's team is the user's team
that owns it (services/reach.py), and the v2 team-scoped services are then called with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from voltline.api._kit import UUID_PATTERN, Page, json_response, page_url
from voltline.api.auth import runtime
from voltline.domain.ids import TeamId, UserId
from voltline.errors import NotFoundError
from voltline.services import reach

V3 = "/api/v3"


def user_of(request: Request) -> UserId:
    """The user behind the request's token."""
    user: UserId = request.state.principal.user_id
    return user


def uuid_of(request: Request, name: str) -> str:
    """A path segment that must be a uuid (spec v3 §1.1); anything else names nothing (404)."""
    raw: str = request.path_params[name]
    if not UUID_PATTERN.fullmatch(raw):
        raise NotFoundError(name)
    return raw.lower()


async def charger_team(request: Request) -> tuple[TeamId, str]:
    """The user's team owning the path's `{charger}`, and the charger's uuid; 404 for any other."""
    uuid = uuid_of(request, "charger")
    return await reach.charger_team(runtime(request), user_of(request), uuid), uuid


async def site_team(request: Request) -> tuple[TeamId, str]:
    """The user's team owning the path's `{site}`, and the site's uuid; 404 for any other."""
    uuid = uuid_of(request, "site")
    return await reach.site_team(runtime(request), user_of(request), uuid), uuid


def length_aware_page(request: Request, page: Page, items: Sequence[Any], shape: Callable[[Any], Any]) -> Response:
    """Laravel's length-aware paginator (spec v3 §1.3) over all `items`, with `last_page`, `total`, `links`."""
    total = len(items)
    last = max(1, -(-total // page.size))
    shown = [shape(item) for item in items[page.offset : page.offset + page.size]]
    first_position = page.offset + 1
    path = str(request.url.replace(query="", fragment=""))
    previous = page.number - 1 if page.number > 1 else None
    following = page.number + 1 if page.number < last else None

    def link(number: int | None, label: str, *, active: bool = False) -> dict[str, Any]:
        return {
            "url": None if number is None else page_url(request, number),
            "label": label,
            "page": number,
            "active": active,
        }

    links = [link(previous, "&laquo; Previous")]
    links += [link(number, str(number), active=number == page.number) for number in range(1, last + 1)]
    links.append(link(following, "Next &raquo;"))
    return json_response(
        {
            "data": shown,
            "links": {
                "first": page_url(request, 1),
                "last": page_url(request, last),
                "prev": None if previous is None else page_url(request, previous),
                "next": None if following is None else page_url(request, following),
            },
            "meta": {
                "current_page": page.number,
                "from": first_position if shown else None,
                "last_page": last,
                "links": links,
                "path": path,
                "per_page": page.size,
                "to": first_position + len(shown) - 1 if shown else None,
                "total": total,
            },
        }
    )
