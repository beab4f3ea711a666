"""REST adapter: the Volttime v2 compatible API; `ENDPOINTS` is its route table."""

from voltline.api import (
    audit_log,
    charger_ocpp,
    chargers,
    commands,
    connectors,
    diagnostics,
    firmware,
    groups,
    id_tags,
    local_lists,
    logs,
    meter_values,
    meters,
    power_management,
    power_usage,
    reservations,
    sites,
    smart_charging,
    tariffs,
    teams,
    transactions,
    usage,
    v3,
    v3_settings,
)
from voltline.api._kit import message
from voltline.api._routing import Endpoint, build_routes

__all__ = ["ENDPOINTS", "build_routes", "message"]

ENDPOINTS: list[Endpoint] = [
    *teams.ENDPOINTS,
    *sites.ENDPOINTS,
    *smart_charging.ENDPOINTS,
    *groups.ENDPOINTS,
    *chargers.ENDPOINTS,
    *charger_ocpp.ENDPOINTS,
    *commands.ENDPOINTS,
    *logs.ENDPOINTS,
    *connectors.ENDPOINTS,
    *id_tags.ENDPOINTS,
    *transactions.ENDPOINTS,
    *meter_values.ENDPOINTS,
    *usage.ENDPOINTS,
    *power_usage.ENDPOINTS,
    *power_management.ENDPOINTS,
    *meters.ENDPOINTS,
    *tariffs.ENDPOINTS,
    *audit_log.ENDPOINTS,
    *firmware.ENDPOINTS,
    *reservations.ENDPOINTS,
    *diagnostics.ENDPOINTS,
    *local_lists.ENDPOINTS,
    # Volttime v3 (spec volttime-v3; DESIGN "v3 API"): the same services under /api/v3.
    *v3.ENDPOINTS,
    *v3_settings.ENDPOINTS,
]
