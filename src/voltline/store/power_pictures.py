"""The controller's picture of its last run of a site (one row per site: the JSON and when it was taken).

The picture is smart/scheduler.py `snapshot`: the gate, the groups with capacity and allocation,
each connector's limit and reason. Its times are naive UTC; `computed_at` is the row's `taken_at`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline import codec
from voltline.store.schema import power_pictures


@functools.cache
def _upsert(dialect: str) -> Any:
    """`INSERT .. ON CONFLICT (site_id) DO UPDATE`, built once per dialect."""
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(power_pictures)
    changed = {name: statement.excluded[name] for name in ("picture", "taken_at")}
    return statement.on_conflict_do_update(index_elements=["site_id"], set_=changed)


def encode_power_picture(picture: Mapping[str, Any]) -> str:
    """A picture as the JSON text stored."""
    return codec.encode_json(picture).decode()


async def save_power_picture(conn: AsyncConnection, site_id: int, picture: str, taken_at: datetime) -> None:
    """Keep the site's newest picture (JSON text), replacing the one before."""
    await conn.execute(_upsert(conn.dialect.name), {"site_id": site_id, "picture": picture, "taken_at": taken_at})


async def get_power_picture(conn: AsyncConnection, site_id: int) -> dict[str, Any] | None:
    """The site's picture as the controller drew it; None before the first run."""
    query = select(power_pictures.c.picture, power_pictures.c.taken_at).where(power_pictures.c.site_id == site_id)
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    picture: dict[str, Any] = codec.decode_json(row.picture)
    picture["computed_at"] = row.taken_at
    gate = picture["gate"]
    if gate["next_change"] is not None:
        gate["next_change"] = datetime.fromisoformat(gate["next_change"])
    return picture


async def delete_power_picture(conn: AsyncConnection, site_id: int) -> None:
    """Forget the site's picture (the controller found nothing to control on it)."""
    await conn.execute(delete(power_pictures).where(power_pictures.c.site_id == site_id))
