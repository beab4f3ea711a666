"""Firmware updates: the request a team makes, the states an update goes through, and when it is done.

OCPP 1.6 §5.19 UpdateFirmware starts an update; §4.5 FirmwareStatusNotification reports its
progress (Downloading, Downloaded or DownloadFailed, Installing, Installed or InstallationFailed);
a BootNotification with a firmware version other than the one the charger had when the update
was asked for shows the new firmware runs. `Requested` is Voltline's own first state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from voltline import codec

REQUESTED = "Requested"
INSTALLED = "Installed"
IDLE = "Idle"
# An update in one of these states is finished: the charger is done with it, well or badly.
FAILED_STATUSES = frozenset({"DownloadFailed", "InstallationFailed"})
FINISHED_STATUSES = FAILED_STATUSES | {INSTALLED}
# An http, https or ftp URL with a host: where the charger fetches the firmware (Voltline serves none).
# Written so that it means the same as a Python regex and as an ECMA-262 pattern (OpenAPI).
LOCATION_PATTERN = r"(https?|ftp|HTTPS?|FTP)://[^\s/?#@]*@?[^\s/?#@]+[^\s]*"
# OCPP 2.0.1 UpdateFirmwareRequest fields (installDateTime, signingCertificate, signature).
V201_FIELDS = ("install_at", "signing_certificate", "signature")
V201 = "2.0.1"


@dataclass(frozen=True, slots=True)
class FirmwareRequest:
    """What a team asks for: where the firmware is, when to fetch it, how often to retry (2.0.1 extras)."""

    location: str
    retrieve_at: datetime | None = None
    retries: int | None = None
    retry_interval: int | None = None
    install_at: datetime | None = None
    signing_certificate: str | None = None
    signature: str | None = None

    def v201_fields(self) -> list[str]:
        """The OCPP 2.0.1-only fields that were given."""
        return [name for name in V201_FIELDS if getattr(self, name) is not None]


def is_finished(status: str) -> bool:
    """Whether an update in this state is over (installed, or failed for good)."""
    return status in FINISHED_STATUSES


def shows_new_firmware(version_before: str | None, booted_version: str | None) -> bool:
    """Whether a boot with `booted_version` shows the update installed (a version, and another one)."""
    return booted_version is not None and booted_version != version_before


def read_history(row: Any) -> list[dict[str, Any]]:
    """The states of a stored update in order: [{"status", "at"}] (`at` as the API writes timestamps)."""
    entries = codec.decode_json(str(row["history"]).encode())
    return list(entries) if isinstance(entries, list) else []
