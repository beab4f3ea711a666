"""`day_ahead_pricing_smart_mode_price` in a site's smart-charging settings (spec/smart-charging.md R-04, R-69).

The server runs on a clock that stands in 2025-03-12 (the §6.5 day) so the site-local day is known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, server_settings
from tests.support.prices import (
    DAY_AHEAD,
    MANUAL,
    NOW,
    ShiftedServer,
    account_client,
    import_day,
    site_with_zone,
    smart_price,
    unique_zone,
)
from voltline.domain.ids import TeamId
from voltline.domain.prices import PriceSlot
from voltline.services.accounts import Account
from voltline.services.pricing import site_price_gate_inputs
from voltline.store import sites
from voltline.store.prices import store_prices


@pytest.fixture(scope="module")
def shifted(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShiftedServer]:
    """A server of its own, on the backend of `server`, whose clock stands on the §6.5 day."""
    settings = server_settings(fresh_database(server.backend), str(tmp_path_factory.mktemp("data")))
    live = ShiftedServer(settings, server.backend)
    live.start()
    yield live
    live.stop()


@pytest.fixture
def client(shifted: ShiftedServer) -> Iterator[tuple[httpx.Client, Account]]:
    yield from account_client(shifted)


def priced_site(server: LiveServer, api: httpx.Client, account: Account) -> tuple[str, str]:
    """A new zone holding the §6.5 day's prices and a site in it: (zone, smart-charging path)."""
    zone = unique_zone()
    import_day(server, zone)
    return zone, site_with_zone(api, account, zone)


def test_automatic_strategy_returns_the_smart_mode_price_of_the_local_day(
    shifted: ShiftedServer, client: tuple[httpx.Client, Account]
) -> None:
    """spec/smart-charging.md §6.5, R-69, R-05: the 8th cheapest of 24 hours, 72 EUR/MWh = 7.20 ct/kWh."""
    api, account = client
    _, path = priced_site(shifted, api, account)
    put = api.put(path, json=DAY_AHEAD)
    assert put.status_code == 200, put.text
    assert put.json()["data"]["day_ahead_pricing_smart_mode_price"] == 7.2
    assert put.json()["data"]["day_ahead_pricing_strategy"] == "automatic"
    assert smart_price(api, path) == 7.2


def test_the_smart_mode_price_rounds_half_up_to_two_decimals_in_ct_per_kwh(
    shifted: ShiftedServer, client: tuple[httpx.Client, Account]
) -> None:
    """spec/smart-charging.md R-04: a number in ct/kWh rounded to 2 decimals (72.15 EUR/MWh -> 7.215 -> 7.22)."""
    api, account = client
    zone, path = priced_site(shifted, api, account)
    shifted.run(
        lambda: store_prices(
            shifted.runtime.db,
            zone,
            [PriceSlot(datetime(2025, 3, 12, 4), datetime(2025, 3, 12, 5), Decimal("72.15"))],
        )
    )
    assert api.put(path, json=DAY_AHEAD).json()["data"]["day_ahead_pricing_smart_mode_price"] == 7.22


def test_the_smart_mode_price_is_null_without_prices_zone_or_day_ahead_mode(
    shifted: ShiftedServer, client: tuple[httpx.Client, Account]
) -> None:
    """spec/smart-charging.md R-04 (and its decision): null without prices, without a zone, or in another mode."""
    api, account = client
    zone, with_prices = priced_site(shifted, api, account)
    no_prices = site_with_zone(api, account, unique_zone())
    no_zone = site_with_zone(api, account, None)
    for path in (no_prices, no_zone, with_prices):
        assert api.put(path, json=DAY_AHEAD).status_code == 200
    assert (smart_price(api, no_prices), smart_price(api, no_zone), smart_price(api, with_prices)) == (None, None, 7.2)
    off_peak = {"timezone": "Europe/Amsterdam", "smart_charging": "off_peak", "off_peak_start": "23:00"}
    assert api.put(with_prices, json={**off_peak, "off_peak_end": "07:00"}).status_code == 200
    assert smart_price(api, with_prices) is None
    # The site-local day: Tokyo's 12 March ends at 15:00Z and holds only the first 16 hours: k = 6, 60 EUR/MWh.
    tokyo = site_with_zone(api, account, zone)
    assert api.put(tokyo, json={**DAY_AHEAD, "timezone": "Asia/Tokyo"}).status_code == 200
    assert smart_price(api, tokyo) == 6.0


def test_a_manual_strategy_still_shows_the_smart_mode_price(
    shifted: ShiftedServer, client: tuple[httpx.Client, Account]
) -> None:
    """R-04 decision (docs/api.md): shown for both strategies while the mode is day_ahead_pricing."""
    api, account = client
    _, path = priced_site(shifted, api, account)
    settings = api.put(path, json=MANUAL).json()["data"]
    assert (settings["day_ahead_pricing_threshold"], settings["day_ahead_pricing_smart_mode_price"]) == (8, 7.2)


def _site_row(shifted: ShiftedServer, account: Account, path: str) -> Any:
    site_id = int(path.split("/")[-2])

    async def read() -> Any:
        async with shifted.runtime.db.read() as conn:
            return await sites.get_site(conn, TeamId(account.team_id), site_id)

    return shifted.run(read)


def test_the_gate_inputs_give_the_price_now_the_limit_and_the_next_slot_in_eur_per_mwh(
    shifted: ShiftedServer, client: tuple[httpx.Client, Account]
) -> None:
    """spec/smart-charging.md R-66..R-70: price(now), the effective limit (automatic or manual x 10), next boundary."""
    api, account = client
    _, path = priced_site(shifted, api, account)
    db = shifted.runtime.db

    def inputs() -> tuple[Any, ...]:
        site = _site_row(shifted, account, path)
        return shifted.run(lambda: site_price_gate_inputs(db, site, NOW))

    assert inputs() == (None, None, None)  # smart charging disabled
    assert api.put(path, json=DAY_AHEAD).status_code == 200
    assert inputs() == (Decimal(20), Decimal(72), datetime(2025, 3, 12, 13))
    assert api.put(path, json=MANUAL).status_code == 200
    assert inputs() == (Decimal(20), Decimal(80), datetime(2025, 3, 12, 13))
    assert api.put(path.rsplit("/", 1)[0], json={"price_zone": unique_zone()}).status_code == 200
    assert inputs() == (None, Decimal(80), None)  # no prices: R-67 fails open with the threshold kept
