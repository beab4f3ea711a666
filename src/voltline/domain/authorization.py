"""Whether an id tag (RFID card) may charge, by the team's authorization mode and its stored tags."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

AuthorizationMode = Literal["accept_all", "allow_list"]


@dataclass(frozen=True, slots=True)
class StoredTag:
    """An id tag as the team stores it."""

    status: str
    expiry_date: datetime | None = None
    parent_id_tag: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer for one id tag (OCPP 1.6 IdTagInfo: status, and what the stored tag adds)."""

    status: str
    expiry_date: datetime | None = None
    parent_id_tag: str | None = None


def authorize(mode: str, tag: StoredTag | None, now: datetime) -> Verdict:
    """Decide on a presented tag: a stored tag's own status wins; an unknown tag depends on the mode.

    `accept_all` accepts unknown tags; `allow_list` accepts only stored Accepted tags. Either way a
    stored Blocked/Expired/Invalid tag keeps its status and a tag past its expiry date is Expired.
    """
    if tag is None:
        return Verdict("Accepted" if mode != "allow_list" else "Invalid")
    status = tag.status
    if status == "Accepted" and tag.expiry_date is not None and tag.expiry_date <= now:
        status = "Expired"
    return Verdict(status, tag.expiry_date, tag.parent_id_tag)
