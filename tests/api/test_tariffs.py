"""`GET /api/v2/tariffs`: stored day-ahead prices of a location (spec/volttime-api.md §2.G, DESIGN: tariffs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from tests.conftest import LiveServer
from tests.support.prices import unique_zone
from tests.support.sites import errors_of
from voltline.domain.prices import PriceSlot
from voltline.store.prices import store_prices

PATH = "/api/v2/tariffs"
KEYS = ["type", "location", "timestamp", "price", "price_includes_tax"]
DAY = {"date_from": "2025-03-12 00:00:00", "date_to": "2025-03-13 00:00:00"}


def put_prices(server: LiveServer, zone: str, start: datetime, prices: list[str], minutes: int = 60) -> None:
    """Store consecutive slots of the zone from `start`."""
    step = timedelta(minutes=minutes)
    slots = [PriceSlot(start + i * step, start + (i + 1) * step, Decimal(p)) for i, p in enumerate(prices)]
    server.run(lambda: store_prices(server.runtime.db, zone, slots))


def test_tariffs_have_the_spec_shape_and_price_in_hundredths_of_a_cent(server: LiveServer, api: httpx.Client) -> None:
    """DESIGN: 15.06 ct/kWh (150.6 EUR/MWh) -> 1506; price_includes_tax false; timestamps `.ffffffZ`."""
    zone = unique_zone()
    put_prices(server, zone, datetime(2025, 3, 12, 10), ["150.6", "72"])
    response = api.get(PATH, params={"location": zone, **DAY})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "data": [
            {
                "type": "epex-spot",
                "location": zone,
                "timestamp": "2025-03-12T10:00:00.000000Z",
                "price": 1506,
                "price_includes_tax": False,
            },
            {
                "type": "epex-spot",
                "location": zone,
                "timestamp": "2025-03-12T11:00:00.000000Z",
                "price": 720,
                "price_includes_tax": False,
            },
        ]
    }
    assert list(response.json()["data"][0]) == KEYS


@pytest.mark.parametrize(
    ("eur_per_mwh", "price"),
    [("150.6", 1506), ("95.37", 954), ("0.05", 1), ("0.04", 0), ("-12.34", -123), ("-0.05", -1), ("-500", -5000)],
)
def test_prices_round_half_up_and_may_be_negative(
    server: LiveServer, api: httpx.Client, eur_per_mwh: str, price: int
) -> None:
    """spec/smart-charging.md R-63, R-71: EUR/MWh x 10, half-up (away from zero); negative prices exist."""
    zone = unique_zone()
    put_prices(server, zone, datetime(2025, 3, 12, 8), [eur_per_mwh], minutes=15)
    assert [item["price"] for item in api.get(PATH, params={"location": zone, **DAY}).json()["data"]] == [price]


def test_the_default_window_is_today_and_tomorrow_in_utc(server: LiveServer, api: httpx.Client) -> None:
    """docs/api.md: without dates, the slots of today and tomorrow (UTC), oldest first."""
    zone = unique_zone()
    today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    put_prices(server, zone, today - timedelta(days=1), [str(d) for d in range(4)], minutes=24 * 60)
    items = api.get(PATH, params={"location": zone}).json()["data"]
    assert [item["price"] for item in items] == [10, 20]
    assert items[0]["timestamp"] == today.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def test_location_is_case_insensitive_limit_caps_and_unknown_locations_are_empty(
    server: LiveServer, api: httpx.Client
) -> None:
    zone = unique_zone()
    put_prices(server, zone, datetime(2025, 3, 12), [str(p) for p in range(96)], minutes=15)
    everything = api.get(PATH, params={"location": zone.lower(), **DAY}).json()["data"]
    assert len(everything) == 96 and {item["location"] for item in everything} == {zone}
    assert [item["timestamp"] for item in everything] == sorted(item["timestamp"] for item in everything)
    first = api.get(PATH, params={"location": zone, **DAY, "limit": "2"}).json()["data"]
    assert first == everything[:2]
    assert api.get(PATH, params={"location": "architecto", **DAY}).json() == {"data": []}


def test_parameters_may_come_in_a_json_body(server: LiveServer, api: httpx.Client) -> None:
    """spec/volttime-api.md C10: GET parameters documented as a body are read from a JSON body too."""
    zone = unique_zone()
    put_prices(server, zone, datetime(2025, 3, 12, 6), ["-3.5"])
    response = api.request("GET", PATH, json={"location": zone, **DAY})
    assert response.status_code == 200 and [item["price"] for item in response.json()["data"]] == [-35]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({}, "location", "The location field is required."),
        ({"location": ""}, "location", "The location field is required."),
        ({"location": "NL", "date_from": "2025-03-12 00:00:00"}, "date_to", "The date to field is required when"),
        (
            {"location": "NL", **DAY, "date_to": "2025-03-13"},
            "date_to",
            "The date to field must match the format Y-m-d H:i:s.",
        ),
        ({"location": "NL", "limit": "0"}, "limit", "The limit field must be at least 1."),
        ({"location": "N" * 17}, "location", "The location field must not be greater than 16 characters."),
    ],
)
def test_bad_parameters_are_a_laravel_422(api: httpx.Client, query: dict[str, str], field: str, message: str) -> None:
    response = api.get(PATH, params=query)
    errors = errors_of(response)
    assert errors[field][0].startswith(message)
    if not query:
        assert response.json() == {
            "message": "The location field is required.",
            "errors": {"location": ["The location field is required."]},
        }


def test_tariffs_need_a_token(server: LiveServer) -> None:
    with server.client() as anonymous:
        response = anonymous.get(PATH, params={"location": "NL"})
    assert response.status_code == 401 and response.json() == {"message": "Unauthenticated."}
