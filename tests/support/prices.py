"""Day-ahead prices for the tests: a zone of one's own, a server whose clock stands on a priced day."""

from __future__ import annotations

import functools
import random
import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.support.sites import make_site, sites_path
from voltline.app import create_app
from voltline.clock import Clock
from voltline.domain.prices import PriceSlot
from voltline.services.accounts import Account
from voltline.store.prices import store_prices


def unique_zone() -> str:
    """A zone name no other test uses (prices are shared by every team of the server)."""
    return "X" + random.choice(string.ascii_uppercase) + "-" + "".join(random.choices(string.ascii_uppercase, k=4))


HOURLY = [90, 85, 80, 75, 70, 72, 95, 110, 120, 100, 60, 40, 30, 20, 35, 50, 80, 130, 150, 140, 120, 100, 95, 92]
NOW = datetime(2025, 3, 12, 12, 10)  # 13:10 in Amsterdam: the hour priced 20
DAY_AHEAD = {"timezone": "Europe/Amsterdam", "smart_charging": "day_ahead_pricing"}
MANUAL = {**DAY_AHEAD, "day_ahead_pricing_strategy": "manual", "day_ahead_pricing_threshold": 8}


class ShiftedClock(Clock):
    """Real time moved so that the server starts at `NOW` (sleeps and monotonic time are untouched)."""

    def __init__(self) -> None:
        self.offset = NOW - datetime.now(UTC).replace(tzinfo=None)

    def now(self) -> datetime:
        """The shifted wall-clock time, naive UTC."""
        return super().now() + self.offset


class ShiftedServer(LiveServer):
    """A live server whose app runs on a ShiftedClock."""

    def start(self) -> None:
        """Start with the clock (LiveServer.start makes its app with the `create_app` of tests.conftest)."""
        from tests import conftest

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(conftest, "create_app", functools.partial(create_app, clock=ShiftedClock()))
            super().start()


def account_client(live: ShiftedServer) -> Iterator[tuple[httpx.Client, Account]]:
    """A new account on the server and an API client signed in as it."""
    account = live.account()
    with live.client(account) as api:
        yield api, account


def import_day(server: LiveServer, zone: str, prices: list[int] = HOURLY) -> None:
    """The hourly prices of 12 March 2025 (Amsterdam) for the zone."""
    start = datetime(2025, 3, 11, 23)
    hour = timedelta(hours=1)
    slots = [PriceSlot(start + i * hour, start + (i + 1) * hour, Decimal(p)) for i, p in enumerate(prices)]
    server.run(lambda: store_prices(server.runtime.db, zone, slots))


def site_with_zone(api: httpx.Client, account: Account, zone: str | None) -> str:
    """A new site with the price zone; its smart-charging path."""
    site = make_site(api, account)
    path = f"{sites_path(account)}/{site['id']}"
    assert api.put(path, json={"price_zone": zone}).status_code == 200
    return f"{path}/smart-charging"


def smart_price(api: httpx.Client, path: str) -> Any:
    """The smart mode price the GET answers."""
    return api.get(path).json()["data"]["day_ahead_pricing_smart_mode_price"]
