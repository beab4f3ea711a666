"""Consumer prices on a live server: spec/smart-charging.md R-63's per-zone charges and VAT (R-66..R-69).

The server is configured with `VOLTLINE_PRICE_CHARGES=XT-TAXED=0.1228` and
`VOLTLINE_PRICE_VAT=XT-TAXED=0.21,XV-VAT=0.25`; its clock stands on the §6.5 day at 13:10 in
Amsterdam, the hour priced 20 EUR/MWh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
from voltline.services.accounts import Account
from voltline.services.pricing import site_gate_now
from voltline.smart.gates import Gate
from voltline.store import sites

TAXED = "XT-TAXED"  # (spot EUR/kWh + 0.1228) x 1.21
VAT_ONLY = "XV-VAT"  # spot x 1.25


@pytest.fixture(scope="module")
def taxed(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShiftedServer]:
    """A server of its own, on the backend of `server`, with charges and VAT for two zones."""
    settings = server_settings(
        fresh_database(server.backend),
        str(tmp_path_factory.mktemp("data")),
        price_charges=f"{TAXED}=0.1228",
        price_vat=f"{TAXED.lower()}=0.21, {VAT_ONLY}=0.25",
    )
    live = ShiftedServer(settings, server.backend)
    live.start()
    for zone in (TAXED, VAT_ONLY):
        import_day(live, zone)
    yield live
    live.stop()


@pytest.fixture
def client(taxed: ShiftedServer) -> Iterator[tuple[httpx.Client, Account]]:
    yield from account_client(taxed)


def test_the_automatic_smart_mode_price_is_the_consumer_price_of_the_site_zone(
    taxed: ShiftedServer, client: tuple[httpx.Client, Account]
) -> None:
    """spec/smart-charging.md R-63, R-69, R-04: q_8 = 72 EUR/MWh -> (0.072 + 0.1228) x 1.21 = 23.5708 -> 23.57 ct."""
    api, account = client
    untaxed_zone = unique_zone()
    import_day(taxed, untaxed_zone)
    taxed_site = site_with_zone(api, account, TAXED.lower())  # the site's zone matches case-insensitively
    vat_site = site_with_zone(api, account, VAT_ONLY)
    untaxed_site = site_with_zone(api, account, untaxed_zone)
    put = api.put(taxed_site, json=DAY_AHEAD)
    assert put.status_code == 200, put.text
    assert put.json()["data"]["day_ahead_pricing_smart_mode_price"] == 23.57
    for path in (vat_site, untaxed_site):
        assert api.put(path, json=DAY_AHEAD).status_code == 200
    # 72 x 1.25 = 90 EUR/MWh = 9.00 ct/kWh; a zone the configuration does not name keeps the spot price.
    assert (smart_price(api, taxed_site), smart_price(api, vat_site), smart_price(api, untaxed_site)) == (
        23.57,
        9.0,
        7.2,
    )


def test_a_manual_strategy_shows_the_consumer_smart_mode_price_as_the_threshold_hint(
    taxed: ShiftedServer, client: tuple[httpx.Client, Account]
) -> None:
    """spec/smart-charging.md R-04, R-63: the hint is in the unit the threshold is compared in (consumer ct/kWh)."""
    api, account = client
    path = site_with_zone(api, account, TAXED)
    data = api.put(path, json=MANUAL).json()["data"]
    assert (data["day_ahead_pricing_threshold"], data["day_ahead_pricing_smart_mode_price"]) == (8, 23.57)


def _gate(taxed: ShiftedServer, account: Account, path: str, *, with_taxes: bool) -> tuple[Any, ...]:
    """The gate inputs and the gate of the site at NOW, with the server's taxes or without any."""
    site_id = int(path.split("/")[-2])
    db = taxed.runtime.db

    async def evaluate() -> tuple[Any, ...]:
        async with db.read() as conn:
            site = await sites.get_site(conn, TeamId(account.team_id), site_id)
        taxes = {"taxes": taxed.runtime.settings.consumer_taxes} if with_taxes else {}
        return await site_gate_now(db, site, NOW, **taxes)

    return taxed.run(evaluate)


def test_a_spot_price_under_the_threshold_with_a_consumer_price_above_it_closes_the_gate(
    taxed: ShiftedServer, client: tuple[httpx.Client, Account]
) -> None:
    """spec/smart-charging.md R-63, R-66, R-68: spot 20 EUR/MWh (2 ct) < 8 ct, consumer 17.2788 ct > 8 ct: paused."""
    api, account = client
    path = site_with_zone(api, account, TAXED)
    assert api.put(path, json=MANUAL).status_code == 200
    next_slot = NOW.replace(hour=13, minute=0)
    spot = _gate(taxed, account, path, with_taxes=False)
    assert spot == (Decimal(20), Decimal(80), Gate(True, "price_ok", next_slot))
    consumer = _gate(taxed, account, path, with_taxes=True)
    assert consumer == (Decimal("172.788"), Decimal(80), Gate(False, "price_above_limit", next_slot))
    # VAT alone keeps this hour cheap: 20 x 1.25 = 25 EUR/MWh <= 80.
    vat_path = site_with_zone(api, account, VAT_ONLY)
    assert api.put(vat_path, json=MANUAL).status_code == 200
    assert _gate(taxed, account, vat_path, with_taxes=True) == (
        Decimal(25),
        Decimal(80),
        Gate(True, "price_ok", next_slot),
    )


def test_the_automatic_gate_compares_consumer_prices_and_lets_the_same_hours_through(
    taxed: ShiftedServer, client: tuple[httpx.Client, Account]
) -> None:
    """spec/smart-charging.md R-63, R-69: the limit is consumer(q_k); the transformation keeps the order."""
    api, account = client
    path = site_with_zone(api, account, TAXED)
    assert api.put(path, json=DAY_AHEAD).status_code == 200
    price, limit, gate = _gate(taxed, account, path, with_taxes=True)
    assert (price, limit, gate.open) == (Decimal("172.788"), Decimal("235.708"), True)


def test_tariffs_stay_spot_prices_without_tax(taxed: ShiftedServer, client: tuple[httpx.Client, Account]) -> None:
    """DESIGN (tariffs): `GET /api/v2/tariffs` serves spot prices, `price_includes_tax: false`, whatever R-63 adds."""
    api, _ = client
    window = {"date_from": "2025-03-12 12:00:00", "date_to": "2025-03-12 13:00:00"}
    items = api.get("/api/v2/tariffs", params={"location": TAXED, **window}).json()["data"]
    assert [(item["price"], item["price_includes_tax"]) for item in items] == [(200, False)]
