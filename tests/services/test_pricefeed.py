"""The optional ENTSO-E fetcher against a real local HTTP server serving fixture XML (spec §6.1, R-64)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.conftest import BACKENDS, LiveServer, server_settings
from voltline.domain.ids import TeamId
from voltline.services import accounts
from voltline.services.pricefeed import PriceFeed, backoff_seconds, next_poll_at, request_window, tomorrow_end
from voltline.services.runtime import Runtime
from voltline.settings import Settings
from voltline.store import sites
from voltline.store.engine import Database
from voltline.store.prices import get_prices

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prices"
NL_DAY = (FIXTURES / "nl_2025-03-12_pt60m.xml").read_bytes()
ACK = (FIXTURES / "acknowledgement.xml").read_bytes()
TOKEN = "tok-" + "s3cr3t" * 3
NL_EIC = "10YNL----------L"


@dataclass
class FakeEntsoe:
    """A local HTTP server answering from a script of (status, body); the last answer repeats."""

    answers: list[tuple[int, bytes]] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        """Serve on 127.0.0.1 and an ephemeral port, in a thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(dict(parse_qsl(urlsplit(self.path).query)))
                status, body = fake.answers.pop(0) if len(fake.answers) > 1 else fake.answers[0]
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/api"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Shut the server down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def entsoe() -> Iterator[FakeEntsoe]:
    fake = FakeEntsoe()
    fake.start()
    yield fake
    fake.stop()


def feed_settings(url: str, tmp_path: Path, entsoe_url: str, **overrides: Any) -> Settings:
    """Settings with fetching on, the test token and the fake server."""
    values = {"price_fetch": True, "entsoe_token": TOKEN, "entsoe_url": entsoe_url, **overrides}
    return server_settings(url, str(tmp_path), **values)


def run_feed(settings: Settings, scenario: Callable[[PriceFeed], Any]) -> Any:
    """Run a scenario with an opened feed over the settings' database, then close both."""

    async def main() -> Any:
        runtime = Runtime(settings=settings, db=Database(settings.effective_database_url), secret_key="x")
        feed = PriceFeed(runtime)
        feed.open()
        try:
            return await scenario(feed)
        finally:
            await feed.stop()
            await runtime.db.close()

    return asyncio.run(main())


# -- schedule --------------------------------------------------------------------------------------


def test_the_request_window_is_yesterday_to_the_end_of_tomorrow_in_cet() -> None:
    """spec/smart-charging.md R-64: request [today 00:00 local - 1 day, tomorrow 24:00 local] in UTC."""
    assert request_window(datetime(2025, 3, 11, 12, 5)) == (datetime(2025, 3, 9, 23), datetime(2025, 3, 12, 23))
    assert request_window(datetime(2025, 3, 30, 23, 30)) == (datetime(2025, 3, 29, 23), datetime(2025, 4, 1, 22))
    assert tomorrow_end(datetime(2025, 10, 25, 12)) == datetime(2025, 10, 26, 23)


@pytest.mark.parametrize(
    ("now", "complete", "expected"),
    [
        ("10:20", False, "11:00"),  # 11:20 CET: before the publication window, hourly
        ("11:40", False, "11:45"),  # 12:40 CET: the window opens at 12:45 CET
        ("12:05", False, "12:15"),  # 13:05 CET: every quarter-hour
        ("12:05", True, "13:00"),  # tomorrow complete: hourly again
        ("14:50", False, "15:00"),  # 15:50 CET: the last quarter-hour is 16:00 CET
        ("15:05", False, "16:00"),  # 16:05 CET: the window has closed
    ],
)
def test_polls_are_hourly_and_quarter_hourly_while_tomorrow_is_awaited(now: str, complete: bool, expected: str) -> None:
    """spec/smart-charging.md R-64: every hour, plus every 15 minutes 12:45-16:00 CET until tomorrow is complete."""
    at = datetime.fromisoformat(f"2025-03-11T{now}")
    assert next_poll_at(at, complete) == datetime.fromisoformat(f"2025-03-11T{expected}")


def test_backoff_doubles_to_an_hour_and_waits_ten_minutes_after_429() -> None:
    """spec/smart-charging.md R-64, §6.1: exponential backoff; 429 brings a 10-minute ban."""
    assert [backoff_seconds(n, 503) for n in (1, 2, 3, 7, 50)] == [60, 120, 240, 3600, 3600]
    assert backoff_seconds(1, 429) == 600 and backoff_seconds(6, 429) == 1920


# -- polling a real HTTP server --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_zone_is_polled_with_backoff_until_its_prices_are_stored(
    backend: str,
    entsoe: FakeEntsoe,
    fresh_database: Callable[[str], str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """spec/smart-charging.md R-64, §6.1: 503 and 429 back off, an acknowledgement is "not yet", then A44 is stored."""
    caplog.set_level(logging.INFO, logger="httpx")
    entsoe.answers = [(503, b"busy"), (429, b""), (400, ACK), (200, NL_DAY)]
    now = datetime(2025, 3, 11, 12, 5)  # 13:05 CET, tomorrow (12 March) not published yet

    async def scenario(feed: PriceFeed) -> tuple[list[datetime], list[int]]:
        nexts, stored = [], []
        for _ in range(4):
            nexts.append(await feed.poll_zone("NL", now))
            stored.append(len(await get_prices(feed.runtime.db, "NL", datetime(2025, 3, 11), datetime(2025, 3, 13))))
        return nexts, stored

    nexts, stored = run_feed(feed_settings(fresh_database(backend), tmp_path, entsoe.url), scenario)
    assert nexts == [
        now + timedelta(seconds=60),
        now + timedelta(seconds=600),
        datetime(2025, 3, 11, 12, 15),  # acknowledgement: not an error, poll again next quarter-hour
        datetime(2025, 3, 11, 13),  # tomorrow complete: hourly
    ]
    assert stored == [0, 0, 0, 24]
    assert entsoe.requests[0] == {
        "documentType": "A44",
        "in_Domain": NL_EIC,
        "out_Domain": NL_EIC,
        "periodStart": "202503092300",
        "periodEnd": "202503122300",
        "securityToken": TOKEN,
    }
    assert len(entsoe.requests) == 4
    assert "HTTP Request" in caplog.text and TOKEN not in caplog.text and "securityToken=***" in caplog.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_stored_prices_are_readable_and_a_republished_document_changes_nothing(
    backend: str, entsoe: FakeEntsoe, fresh_database: Callable[[str], str], tmp_path: Path
) -> None:
    """spec/smart-charging.md R-64: cache the results; republished history is identical."""
    entsoe.answers = [(200, NL_DAY)]
    settings = feed_settings(fresh_database(backend), tmp_path, entsoe.url)

    async def scenario(feed: PriceFeed) -> tuple[int, int]:
        await feed.poll_zone("NL", datetime(2025, 3, 11, 12, 5))
        stored = await get_prices(feed.runtime.db, "NL", datetime(2025, 3, 11), datetime(2025, 3, 13))
        await feed.poll_zone("NL", datetime(2025, 3, 11, 13, 5))
        again = await get_prices(feed.runtime.db, "NL", datetime(2025, 3, 11), datetime(2025, 3, 13))
        assert again == stored
        return len(stored), len(entsoe.requests)

    assert run_feed(settings, scenario) == (24, 2)


def test_an_unreachable_server_backs_off_without_raising(tmp_path: Path, fresh_database: Callable[[str], str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = feed_settings(fresh_database("sqlite"), tmp_path, f"http://127.0.0.1:{port}/api")
    now = datetime(2025, 3, 11, 9)

    async def scenario(feed: PriceFeed) -> list[datetime]:
        return [await feed.poll_zone("BE", now) for _ in range(2)]

    assert run_feed(settings, scenario) == [now + timedelta(seconds=60), now + timedelta(seconds=120)]


@pytest.mark.parametrize(("fetch", "token", "enabled"), [(False, TOKEN, False), (True, "", False), (True, TOKEN, True)])
def test_the_feed_is_off_unless_switched_on_with_a_token(
    fetch: bool, token: str, enabled: bool, tmp_path: Path, fresh_database: Callable[[str], str]
) -> None:
    """DESIGN: the HTTP fetcher is off by default; it needs VOLTLINE_PRICE_FETCH and VOLTLINE_ENTSOE_TOKEN."""
    assert Settings().price_fetch is False and Settings().entsoe_token == ""
    settings = server_settings(fresh_database("sqlite"), str(tmp_path), price_fetch=fetch, entsoe_token=token)

    async def main() -> bool:
        runtime = Runtime(settings=settings, db=Database(settings.effective_database_url), secret_key="x")
        feed = PriceFeed(runtime)
        await feed.start()
        running = feed._task is not None
        await feed.stop()
        await runtime.db.close()
        return running

    assert asyncio.run(main()) is enabled


# -- from the app's lifespan -----------------------------------------------------------------------


async def _seed_site(url: str, zone: str) -> None:
    db = Database(url)
    try:
        account = await accounts.create_account(db, email=f"feed-{uuid.uuid4().hex[:8]}@example.com", name="Feed")
        values = {"name": "D", "street": "S", "house_number": 1, "postal_code": "1", "city": "C", "country": "NL"}
        async with db.write() as conn:
            await sites.create_site(conn, TeamId(account.team_id), {**values, "price_zone": zone})
    finally:
        await db.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_server_fetches_prices_for_the_zones_of_its_sites_when_enabled(
    backend: str, entsoe: FakeEntsoe, fresh_database: Callable[[str], str], tmp_path: Path
) -> None:
    """spec/smart-charging.md R-64/R-65: polled per zone in use (a site's price_zone), served by /api/v2/tariffs."""
    url = fresh_database(backend)
    asyncio.run(_seed_site(url, "nl"))
    entsoe.answers = [(200, NL_DAY)]
    live = LiveServer(feed_settings(url, tmp_path, entsoe.url), backend)
    live.start()
    try:
        account = live.account()
        query = {"location": "NL", "date_from": "2025-03-11 23:00:00", "date_to": "2025-03-12 23:00:00"}
        with live.client(account) as api:
            deadline = time.monotonic() + 15
            while not (items := api.get("/api/v2/tariffs", params=query).json()["data"]):
                assert time.monotonic() < deadline, "the feed stored nothing"
                time.sleep(0.05)
        assert len(items) == 24 and items[5]["price"] == 720
        assert [request["in_Domain"] for request in entsoe.requests] == [NL_EIC]
    finally:
        live.stop()
