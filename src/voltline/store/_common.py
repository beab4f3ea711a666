"""Small pieces every store module uses: new uuids, now, and id-or-uuid lookups."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Table

from voltline.domain.ids import Ref


def new_uuid() -> str:
    """A random uuid as text."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """Now, naive UTC, as stored."""
    return datetime.now(UTC).replace(tzinfo=None)


def ref_clause(table: Table, ref: Ref) -> ColumnElement[bool]:
    """`id = ref` for an integer, `uuid = ref` for text."""
    if isinstance(ref, int):
        return table.c.id == ref
    return table.c.uuid == ref


def stamped(values: dict[str, Any], *, created: bool = False) -> dict[str, Any]:
    """Values plus `updated_at` (and `created_at` for inserts)."""
    now = utcnow()
    values = {**values, "updated_at": now}
    if created:
        values["created_at"] = now
    return values
