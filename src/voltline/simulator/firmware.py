"""The simulated charger's firmware updates (OCPP 1.6 §5.19 UpdateFirmware, §4.5 FirmwareStatusNotification).

UpdateFirmware is answered at once (`{}`); then, at `retrieveDate`, the charger fetches `location`
with an HTTP GET (httpx; http and https only, so an ftp URL fails the download), trying
`1 + retries` times `retryInterval` seconds apart (0 retries and 30 s when not given), and reports
Downloading (each attempt), then Downloaded or DownloadFailed, Installing, then Installed or
InstallationFailed. After Installed it reboots: it stops its transactions (reason Reboot),
reconnects and sends a BootNotification with the new version.

The new version is the file's first line, stripped. Installation fails (InstallationFailed, the
version stays) when that line is empty (an empty file), is not UTF-8, or is longer than 50
characters (BootNotification's firmwareVersion is a CiString50). A download succeeds on a 2xx
answer of at most MAX_FIRMWARE_BYTES; anything else (404, a refused connection) is a failed try.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx

from voltline.simulator.connection import Answer, CallError, Payload

if TYPE_CHECKING:
    from voltline.simulator.charger import SimulatedCharger

DEFAULT_RETRIES = 0
DEFAULT_RETRY_INTERVAL = 30
MAX_FIRMWARE_BYTES = 64 * 1024 * 1024
VERSION_MAX_LENGTH = 50  # OCPP 1.6 BootNotification.req firmwareVersion: CiString50Type
POLL_SECONDS = 0.25  # how often a wait looks at the charger's clock (tests move it forward)


def version_of(content: bytes) -> str | None:
    """The firmware version a file carries (its first line, stripped), or None: installation fails."""
    try:
        first = content.decode("utf-8").splitlines()[0].strip() if content else ""
    except UnicodeDecodeError:
        return None
    return first if 0 < len(first) <= VERSION_MAX_LENGTH else None


def _optional_int(payload: Payload, key: str) -> int | None:
    value = payload.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise CallError("TypeConstraintViolation", f"{key} must be an integer")
    return value


def _moment(text: object) -> datetime:
    if not isinstance(text, str):
        raise CallError("TypeConstraintViolation", "retrieveDate must be a date-time string")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CallError("TypeConstraintViolation", "retrieveDate must be a date-time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def on_update_firmware(charger: SimulatedCharger, payload: Payload) -> Answer:
    """Take the update (OCPP 1.6 §5.19: the answer carries nothing) and run it in the background."""
    location = payload.get("location")
    if not isinstance(location, str):
        raise CallError("OccurenceConstraintViolation" if location is None else "TypeConstraintViolation", "location")
    if "retrieveDate" not in payload:
        raise CallError("OccurenceConstraintViolation", "retrieveDate is required")
    retrieve_at = _moment(payload["retrieveDate"])
    retries = _optional_int(payload, "retries")
    interval = _optional_int(payload, "retryInterval")
    plan = FirmwareUpdate(
        location,
        retrieve_at,
        DEFAULT_RETRIES if retries is None else max(0, retries),
        DEFAULT_RETRY_INTERVAL if interval is None else max(0, interval),
    )
    return {}, lambda: plan.run(charger)


class FirmwareUpdate:
    """One update the charger took: where, when, how often to try."""

    def __init__(self, location: str, retrieve_at: datetime, retries: int, retry_interval: int) -> None:
        self.location, self.retrieve_at = location, retrieve_at
        self.retries, self.retry_interval = retries, retry_interval

    async def run(self, charger: SimulatedCharger) -> None:
        """Download, install and reboot, reporting each state (see the module docstring)."""
        if not await _wait_until(charger, self.retrieve_at):
            return
        content = await self._download(charger)
        if content is None:
            _report(charger, "DownloadFailed")
            return
        _report(charger, "Downloaded")
        _report(charger, "Installing")
        version = version_of(content)
        if version is None:
            _report(charger, "InstallationFailed")
            return
        _report(charger, "Installed")
        charger.firmware_version = version
        await charger.reboot("Reboot")

    async def _download(self, charger: SimulatedCharger) -> bytes | None:
        for attempt in range(self.retries + 1):
            if attempt and not await _wait_until(charger, charger.now() + timedelta(seconds=self.retry_interval)):
                return None
            if charger.stopping():
                return None
            _report(charger, "Downloading")
            content = await _fetch(self.location, charger.call_timeout)
            if content is not None:
                return content
        return None


async def _fetch(location: str, timeout: float) -> bytes | None:
    """The file at `location` (a 2xx answer, at most MAX_FIRMWARE_BYTES), or None."""
    try:
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client,
            client.stream("GET", location) as response,
        ):
            if not response.is_success:
                return None
            content = bytearray()
            async for chunk in response.aiter_bytes():
                content += chunk
                if len(content) > MAX_FIRMWARE_BYTES:
                    return None
            return bytes(content)
    except (httpx.HTTPError, httpx.InvalidURL):
        return None


async def _wait_until(charger: SimulatedCharger, moment: datetime) -> bool:
    """Wait until the charger's clock reaches `moment`; False when the charger stops first."""
    while (left := (moment - charger.now()).total_seconds()) > 0:
        if charger.stopping():
            return False
        await charger.pause(min(left, POLL_SECONDS))
    return not charger.stopping()


def _report(charger: SimulatedCharger, status: str) -> None:
    """Queue a FirmwareStatusNotification; kept across a dropped connection, as a transaction message is."""
    payload = {"status": status}
    charger.queue("FirmwareStatusNotification", lambda: payload, keep=True)
