"""REST adapter: the Volttime v2 compatible API; `ENDPOINTS` is its route table."""

from voltline.api import teams
from voltline.api._routing import Endpoint

ENDPOINTS: list[Endpoint] = [
    *teams.ENDPOINTS,
]
