"""(filled in by the work on this resource)"""

from __future__ import annotations

from voltline.api._routing import Endpoint

ENDPOINTS: list[Endpoint] = []
