"""Typed identifiers, so that a team id is never passed where a site id is meant."""

from __future__ import annotations

from typing import NewType

UserId = NewType("UserId", int)
TeamId = NewType("TeamId", int)
SiteId = NewType("SiteId", int)
GroupId = NewType("GroupId", int)
ChargerId = NewType("ChargerId", int)
ConnectorId = NewType("ConnectorId", int)
IdTagId = NewType("IdTagId", int)
MeterId = NewType("MeterId", int)

# A path segment names an object by its integer id or by its uuid (DESIGN: API decisions).
Ref = int | str
