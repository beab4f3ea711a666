"""The Volttime v3 front-end (spec volttime-v3): `/api/v3/...` beside v2, over the same services.

DESIGN "v3 API": same tokens, rate limit and tenancy; uuids in paths; the envelopes of spec v3
§1.2. `ENDPOINTS` is its route table, registered with v2's in api/__init__.py.
"""

from voltline.api._routing import Endpoint
from voltline.api.v3 import account, actions, chargers, connectors, logs, readings, sites

__all__ = ["ENDPOINTS"]

ENDPOINTS: list[Endpoint] = [
    *account.ENDPOINTS,
    *sites.ENDPOINTS,
    *chargers.ENDPOINTS,
    *connectors.ENDPOINTS,
    *readings.ENDPOINTS,
    *logs.ENDPOINTS,
    *actions.ENDPOINTS,
]
