"""REST adapter: the Volttime v2 compatible API; `ENDPOINTS` is its route table."""

from voltline.api import charger_ocpp, chargers, connectors, groups, id_tags, sites, smart_charging, teams
from voltline.api._routing import Endpoint

ENDPOINTS: list[Endpoint] = [
    *teams.ENDPOINTS,
    *sites.ENDPOINTS,
    *smart_charging.ENDPOINTS,
    *groups.ENDPOINTS,
    *chargers.ENDPOINTS,
    *charger_ocpp.ENDPOINTS,
    *connectors.ENDPOINTS,
    *id_tags.ENDPOINTS,
]
