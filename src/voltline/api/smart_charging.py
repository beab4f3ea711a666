"""A site's smart-charging settings: spec/smart-charging.md §1.3 R-01..R-03, volttime-api A9/A10.

The settings are columns of the site (its `timezone` is the same column the site shows).
A PUT replaces the fields it sends and keeps the others (R-02): a threshold survives a
switch to `automatic`, the off-peak window survives while smart charging is disabled.

`day_ahead_pricing_smart_mode_price` (R-04, R-69) is computed on every answer from the stored
prices of the site's `price_zone`: the ceil(f x N)-th cheapest slot of the site-local day that
contains now (f = `VOLTLINE_SMART_MODE_FRACTION`, default 1/3), as the zone's consumer price
(R-63: `(spot EUR/kWh + charges) x (1 + vat)`, from `VOLTLINE_PRICE_CHARGES` and
`VOLTLINE_PRICE_VAT`, both 0 by default), in ct/kWh rounded half-up to two decimals. It is null
while the mode is not `day_ahead_pricing` (either strategy shows it), and when the site has no
price zone or its zone has no prices for that day.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from voltline.api._contract import Contract
from voltline.api._kit import INT_MAX, envelope, json_body, path_ref
from voltline.api._routing import Endpoint
from voltline.api._rules import validate
from voltline.api.auth import runtime, scope, team_member
from voltline.services import smart_settings

MODES = ("day_ahead_pricing", "disabled", "off_peak")
STRATEGIES = ("automatic", "manual")
THRESHOLD = "day_ahead_pricing_threshold"
STRATEGY = "day_ahead_pricing_strategy"

SETTINGS_RULES = {
    "timezone": "required|timezone",
    "smart_charging": "required|in:" + ",".join(MODES),
    STRATEGY: "nullable|in:" + ",".join(STRATEGIES),
    THRESHOLD: f"nullable|integer|min:-{INT_MAX}|max:{INT_MAX}",
    "off_peak_start": "required_if:smart_charging,off_peak|date_format:H:i",
    "off_peak_end": "required_if:smart_charging,off_peak|date_format:H:i",
}


class SmartChargingResource(msgspec.Struct):
    """The site's smart-charging settings; always all seven keys (R-03)."""

    timezone: str | None
    smart_charging: str
    day_ahead_pricing_strategy: str
    day_ahead_pricing_threshold: int | None
    day_ahead_pricing_smart_mode_price: float | None
    off_peak_start: str
    off_peak_end: str


SETTINGS = Contract(
    "SmartChargingBody",
    "Body of PUT .../smart-charging (the smart mode price is read-only and ignored).",
    SETTINGS_RULES,
)


def settings_resource(row: Mapping[Any, Any], smart_mode_price: float | None = None) -> SmartChargingResource:
    """Shape a site row's smart-charging columns (and its computed smart mode price) for the API."""
    return SmartChargingResource(
        timezone=row["timezone"],
        smart_charging=row["smart_charging"],
        day_ahead_pricing_strategy=row[STRATEGY],
        day_ahead_pricing_threshold=row[THRESHOLD],
        day_ahead_pricing_smart_mode_price=smart_mode_price,
        off_peak_start=row["off_peak_start"],
        off_peak_end=row["off_peak_end"],
    )


def check_settings(body: dict[str, Any], site: Mapping[Any, Any]) -> dict[str, Any]:
    """Validate a PUT body against the stored settings; the values to store."""
    data, rules = dict(body), dict(SETTINGS.rules)
    if data.get(STRATEGY) is None:
        data[STRATEGY] = site[STRATEGY]
    # R-01 (Plugchoice wording): a threshold stored earlier satisfies a manual strategy.
    if THRESHOLD in data or site[THRESHOLD] is None:
        rules[THRESHOLD] = f"required_if:{STRATEGY},manual|{rules[THRESHOLD]}"
    return validate(data, rules)


async def get_settings(request: Request) -> Response:
    """Return the site's smart-charging settings."""
    site, price = await smart_settings.get_smart_settings(
        runtime(request), scope(request).team_id, path_ref(request, "site")
    )
    return envelope(settings_resource(site, price))


async def update_settings(request: Request) -> Response:
    """Change the site's smart-charging settings; fields not sent keep their values."""
    body = await json_body(request)
    site, price = await smart_settings.update_smart_settings(
        runtime(request), scope(request).team_id, path_ref(request, "site"), lambda stored: check_settings(body, stored)
    )
    return envelope(settings_resource(site, price))


_PATH = "/api/v2/teams/{team}/sites/{site}/smart-charging"

ENDPOINTS = [
    Endpoint(
        "GET",
        _PATH,
        get_settings,
        "Get smart charging settings",
        "Smart charging",
        response=SmartChargingResource,
        guard=team_member,
    ),
    Endpoint(
        "PUT",
        _PATH,
        update_settings,
        "Update smart charging settings",
        "Smart charging",
        body=SETTINGS,
        response=SmartChargingResource,
        errors=(422,),
        guard=team_member,
    ),
]
