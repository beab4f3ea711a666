"""The simulated charger's local authorization list (OCPP 1.6 §3.5.3, §5.10, §5.15, §6.43).

SendLocalList: `Full` replaces the list, `Differential` applies its entries (one without idTagInfo is
removed) and is refused with VersionMismatch when its listVersion is not above the list's (§6.43);
Failed when the result would exceed LocalAuthListMaxLength or the request more than
SendLocalListMaxLength entries; NotSupported when the charger lacks the feature or LocalAuthListEnabled
is false. GetLocalListVersion: the list's version, 0 for none, -1 without the feature (§5.10).
While it cannot reach the server, a charger with LocalAuthorizeOffline authorizes from its list:
an Accepted tag that has not expired starts a transaction whose StartTransaction waits in the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from voltline.simulator.connection import Answer, CallError, Payload

if TYPE_CHECKING:
    from voltline.simulator.charger import SimulatedCharger

PROFILE = "LocalAuthListManagement"
KEYS = ("LocalAuthListEnabled", "LocalAuthListMaxLength", "SendLocalListMaxLength")


@dataclass
class LocalList:
    """The list the charger holds: its version and id tag -> idTagInfo."""

    version: int = 0
    entries: dict[str, Payload] = field(default_factory=dict)

    def status_of(self, id_tag: str, now: datetime) -> str | None:
        """The tag's status as the list says (Expired once its expiryDate passed); None when not listed."""
        info = self.entries.get(id_tag.lower())
        if info is None:
            return None
        expiry = info.get("expiryDate")
        if info.get("status") == "Accepted" and isinstance(expiry, str) and _parse(expiry) <= now:
            return "Expired"
        return str(info.get("status"))


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def available(charger: SimulatedCharger) -> bool:
    """True when the charger has the feature and LocalAuthListEnabled is true."""
    values = charger.config.values
    profiles = {p.strip() for p in values.get("SupportedFeatureProfiles", "").split(",")}
    return PROFILE in profiles and values.get("LocalAuthListEnabled", "false").lower() == "true"


def remove_feature(charger: SimulatedCharger) -> None:
    """Make the charger one without local lists: no profile, no keys."""
    values = charger.config.values
    profiles = [p for p in values["SupportedFeatureProfiles"].split(",") if p.strip() != PROFILE]
    values["SupportedFeatureProfiles"] = ",".join(profiles)
    for key in KEYS:
        values.pop(key, None)


def on_get_local_list_version(charger: SimulatedCharger, payload: Payload) -> Answer:
    """§5.10: the version of the list; -1 when the charger does not support one."""
    return {"listVersion": charger.local_list.version if available(charger) else -1}, None


def _entries(payload: Payload) -> list[Payload]:
    items = payload.get("localAuthorizationList", [])
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("idTag"), str) for i in items):
        raise CallError("TypeConstraintViolation", "localAuthorizationList must be a list of entries with an idTag")
    return items


def on_send_local_list(charger: SimulatedCharger, payload: Payload) -> Answer:
    """§5.15: apply a Full or Differential update (see the module docstring for the refusals)."""
    version = payload.get("listVersion")
    kind = payload.get("updateType")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CallError("OccurenceConstraintViolation", "listVersion is required and an integer")
    if kind not in ("Full", "Differential"):
        raise CallError("PropertyConstraintViolation", "updateType must be Full or Differential")
    items = _entries(payload)
    if not available(charger):
        return {"status": "NotSupported"}, None
    current = charger.local_list
    if kind == "Differential" and version <= current.version:
        return {"status": "VersionMismatch"}, None
    entries = {} if kind == "Full" else dict(current.entries)
    for item in items:
        info: Any = item.get("idTagInfo")
        if info is None:
            entries.pop(item["idTag"].lower(), None)
        else:
            entries[item["idTag"].lower()] = dict(info)
    values = charger.config.values
    if len(items) > int(values["SendLocalListMaxLength"]) or len(entries) > int(values["LocalAuthListMaxLength"]):
        return {"status": "Failed"}, None
    charger.local_list = LocalList(version, entries)
    return {"status": "Accepted"}, None


def authorizes_offline(charger: SimulatedCharger, id_tag: str) -> bool:
    """§3.5.3: while offline, with LocalAuthorizeOffline, an Accepted tag of the local list may start."""
    if not (available(charger) and charger.config.flag("LocalAuthorizeOffline")):
        return False
    return charger.local_list.status_of(id_tag, charger.now()) == "Accepted"
