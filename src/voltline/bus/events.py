"""The events that wake the smart-charging control loop (spec/smart-charging.md §7.4), as bus payloads.

The OCPP gateway and handlers publish a small JSON object on `SMART_EVENTS` after their
database commit (boot, connected, disconnected, status, start, stop, meter); the REST API
publishes `settings` when a site's smart-charging settings, groups, connectors or chargers change
(with the charger when one was attached), and `detached` (with the charger) when a charger leaves
a site; the id-tag service publishes `id_tags` (with the team) when a team's id tags change, for the
local-list service (services/local_lists.py). The controller listens, and so does the gateway (a
named charger's session re-reads its team and site); nobody waits for them.
"""

from __future__ import annotations

from typing import Any

from voltline import codec
from voltline.bus import Bus

SMART_EVENTS = "smart.events"
KINDS = (
    "boot",
    "connected",
    "disconnected",
    "status",
    "start",
    "stop",
    "meter",
    "settings",
    "detached",
    "id_tags",
)


def encode_event(kind: str, **fields: Any) -> bytes:
    """The bus payload of an event: its kind plus charger_id, site_id, connector... (None fields dropped)."""
    return codec.encode_json({"kind": kind, **{key: value for key, value in fields.items() if value is not None}})


def decode_event(data: bytes) -> dict[str, Any]:
    """An event payload as a dict (kind always present; an unreadable payload is an `unknown` event)."""
    try:
        body = codec.decode_json(data)
    except ValueError:  # msgspec.DecodeError: a foreign publisher must not stop the listener
        return {"kind": "unknown"}
    return body if isinstance(body, dict) and "kind" in body else {"kind": "unknown"}


async def publish_settings_changed(bus: Bus, site_id: int, *, charger_id: int | None = None) -> None:
    """Tell the control loop that a site's settings, groups or connectors changed (after the commit);
    `charger_id` names a charger that was attached to the site (its gateway re-reads its placement)."""
    await bus.publish(SMART_EVENTS, encode_event("settings", site_id=int(site_id), charger_id=charger_id))


async def publish_charger_detached(bus: Bus, site_id: int, charger_id: int) -> None:
    """Tell the control loop that a charger left the site: its profiles are cleared, the rest rebalanced."""
    await bus.publish(SMART_EVENTS, encode_event("detached", site_id=int(site_id), charger_id=int(charger_id)))


async def publish_id_tags_changed(bus: Bus, team_id: int) -> None:
    """Tell the local-list service that a team's id tags changed (after the commit; OCPP 1.6 §3.5.3)."""
    await bus.publish(SMART_EVENTS, encode_event("id_tags", team_id=int(team_id)))
