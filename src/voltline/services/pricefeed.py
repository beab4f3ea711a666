"""The optional ENTSO-E day-ahead price fetcher (spec §6.1, R-64); off unless configured.

It runs only when `VOLTLINE_PRICE_FETCH=true` and `VOLTLINE_ENTSOE_TOKEN` is set. It polls per
bidding zone in use (the `price_zone` of live sites that ENTSO-E knows, `BIDDING_ZONES`), not
per site: every hour, and every 15 minutes from 12:45 to 16:00 CET while tomorrow is not
complete. Each request asks for `[today 00:00 CET - 1 day, tomorrow 24:00 CET]`; the answer is
upserted, so republished history changes nothing. An acknowledgement ("no matching data") is
"not published yet"; 5xx, 429 and network errors back off exponentially (429 at least 10
minutes: ENTSO-E bans for that long). The security token never reaches the logs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx

from voltline.domain.prices import PriceFormatError, PriceSlot
from voltline.services.runtime import Runtime
from voltline.smart.prices import BIDDING_ZONES, PricesNotPublishedError, parse_entsoe_a44
from voltline.store.prices import get_price_coverage, list_zones_in_use, store_prices
from voltline.tasks import cancel_and_wait

log = logging.getLogger("voltline.services.pricefeed")
MARKET_TIMEZONE = ZoneInfo("Europe/Brussels")  # SDAC delivery days and gate closure are CET/CEST
PUBLICATION = (time(12, 45), time(16, 0))
QUARTER = timedelta(minutes=15)
ZONE_RECHECK_SECONDS = 300.0
BACKOFF_FIRST_SECONDS = 60.0
BACKOFF_MAX_SECONDS = 3600.0
RATE_LIMITED_SECONDS = 600.0
_TOKEN = re.compile(r"(securityToken=)[^&\s\"']+")


class PriceFetchError(Exception):
    """ENTSO-E answered with a status worth retrying later (5xx, 429) or not at all (other 4xx)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"ENTSO-E answered HTTP {status}")
        self.status = status


class _RedactToken(logging.Filter):
    """Hide the security token in httpx's request log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN.sub(r"\1***", str(a)) if "securityToken" in str(a) else a for a in record.args)
        return True


REDACT_TOKEN = _RedactToken()


def _local(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC).astimezone(MARKET_TIMEZONE)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _midnight(day: datetime, days: int) -> datetime:
    return _utc(datetime.combine(day.date() + timedelta(days=days), time(0), tzinfo=MARKET_TIMEZONE))


def request_window(now: datetime) -> tuple[datetime, datetime]:
    """R-64: `[today 00:00 CET - 1 day, tomorrow 24:00 CET]` as naive UTC."""
    today = _local(now)
    return _midnight(today, -1), _midnight(today, 2)


def tomorrow_end(now: datetime) -> datetime:
    """The end of tomorrow's delivery day (CET), naive UTC: prices up to here make tomorrow complete."""
    return _midnight(_local(now), 2)


def next_poll_at(now: datetime, tomorrow_complete: bool) -> datetime:
    """R-64: the next full hour, or sooner the next quarter-hour of 12:45-16:00 CET while tomorrow is missing."""
    hourly = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if tomorrow_complete:
        return hourly
    local = _local(now)
    first, last = (datetime.combine(local.date(), bound, tzinfo=MARKET_TIMEZONE) for bound in PUBLICATION)
    quarter = first
    while quarter <= local and quarter <= last:
        quarter += QUARTER
    return min(hourly, _utc(quarter)) if quarter <= last else hourly


def backoff_seconds(failures: int, status: int | None) -> float:
    """Exponential from 1 minute to 1 hour; at least 10 minutes after a 429."""
    delay = min(BACKOFF_FIRST_SECONDS * float(2 ** min(max(failures - 1, 0), 16)), BACKOFF_MAX_SECONDS)
    return max(delay, RATE_LIMITED_SECONDS) if status == 429 else delay


class PriceFeed:
    """Polls ENTSO-E for the zones in use and stores the prices, until stopped."""

    def __init__(self, runtime: Runtime, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.runtime = runtime
        self.due: dict[str, datetime] = {}
        self.failures: dict[str, int] = {}
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._unknown: set[str] = set()

    @property
    def enabled(self) -> bool:
        """Whether the settings turn fetching on (both the switch and a token)."""
        settings = self.runtime.settings
        return settings.price_fetch and bool(settings.entsoe_token)

    async def start(self) -> None:
        """Start polling when enabled; otherwise do nothing (the default)."""
        if self.runtime.settings.price_fetch and not self.enabled:
            log.warning("VOLTLINE_PRICE_FETCH is on but VOLTLINE_ENTSOE_TOKEN is empty: prices are not fetched")
        if not self.enabled:
            return
        self.open()
        self._task = asyncio.create_task(self._run(), name="voltline-pricefeed")

    def open(self) -> None:
        """Make the HTTP client (`start` does this; tests poll by hand after it)."""
        logging.getLogger("httpx").addFilter(REDACT_TOKEN)
        self._client = self._client or httpx.AsyncClient(timeout=30.0, transport=self._transport)

    async def stop(self) -> None:
        """Stop polling and close the HTTP client."""
        await cancel_and_wait([self._task])
        self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        clock = self.runtime.clock
        while True:
            now = clock.now()
            zones = await self._zones()
            for zone in zones:
                if self.due.get(zone, now) <= now:
                    self.due[zone] = await self._poll_guarded(zone, now)
            wake = min([self.due[zone] for zone in zones] + [now + timedelta(seconds=ZONE_RECHECK_SECONDS)])
            await clock.sleep(max((wake - clock.now()).total_seconds(), 1.0))

    async def _zones(self) -> list[str]:
        async with self.runtime.db.read() as conn:
            zones = await list_zones_in_use(conn)
        for zone in set(zones) - set(BIDDING_ZONES) - self._unknown:
            log.warning("price zone %s has no ENTSO-E bidding zone code; its prices must be imported", zone)
            self._unknown.add(zone)
        return [zone for zone in zones if zone in BIDDING_ZONES]

    async def _poll_guarded(self, zone: str, now: datetime) -> datetime:
        try:
            return await self.poll_zone(zone, now)
        except Exception:  # task boundary: log, back off, keep going
            log.exception("fetching day-ahead prices for %s failed", zone)
            return self._failed(zone, now, None)

    def _failed(self, zone: str, now: datetime, status: int | None) -> datetime:
        self.failures[zone] = self.failures.get(zone, 0) + 1
        return now + timedelta(seconds=backoff_seconds(self.failures[zone], status))

    async def poll_zone(self, zone: str, now: datetime) -> datetime:
        """Fetch and store one zone's prices; when to poll it next."""
        try:
            slots = await self.fetch(zone, now)
        except PriceFetchError as error:
            log.warning("day-ahead prices for %s: %s; retrying later", zone, error)
            return self._failed(zone, now, error.status)
        except httpx.HTTPError as error:
            log.warning("day-ahead prices for %s: %s; retrying later", zone, type(error).__name__)
            return self._failed(zone, now, None)
        self.failures.pop(zone, None)
        if slots:
            counts = await store_prices(self.runtime.db, zone, slots, now=now)
            log.info("day-ahead prices for %s: %d new, %d updated", zone, counts.inserted, counts.updated)
        async with self.runtime.db.read() as conn:
            covered = await get_price_coverage(conn, zone)
        return next_poll_at(now, covered is not None and covered >= tomorrow_end(now))

    async def fetch(self, zone: str, now: datetime) -> list[PriceSlot]:
        """One A44 request for the zone's window; [] while ENTSO-E has nothing published."""
        assert self._client is not None, "open() the feed first"
        start, end = request_window(now)
        eic = BIDDING_ZONES[zone]
        params = {"documentType": "A44", "in_Domain": eic, "out_Domain": eic}
        params |= {"periodStart": f"{start:%Y%m%d%H%M}", "periodEnd": f"{end:%Y%m%d%H%M}"}
        params["securityToken"] = self.runtime.settings.entsoe_token
        response = await self._client.get(self.runtime.settings.entsoe_url, params=params)
        if response.status_code == 429 or response.status_code >= 500:
            raise PriceFetchError(response.status_code)
        try:
            return await asyncio.to_thread(parse_entsoe_a44, response.content)
        except PricesNotPublishedError:
            log.info("day-ahead prices for %s are not published yet", zone)
            return []
        except PriceFormatError:
            if response.is_success:
                raise
            raise PriceFetchError(response.status_code) from None
