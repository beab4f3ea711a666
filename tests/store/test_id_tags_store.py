"""Id tag lookups (store/id_tags.py) on SQLite and PostgreSQL: case-insensitive, and cheap on the OCPP path."""

from __future__ import annotations

import gc
import uuid

from tests.support.writer_scenarios import run
from voltline.domain.ids import TeamId, UserId
from voltline.store import id_tags, users
from voltline.store.engine import Database


async def new_team(db: Database) -> TeamId:
    """A team of its own for one test."""
    async with db.write() as conn:
        user = await users.create_user(conn, name="Owner", email=f"{uuid.uuid4().hex[:12]}@example.com")
        team = await users.create_team(conn, owner_id=UserId(user["id"]), name="T", email=None, type_="business")
    return TeamId(team["id"])


def test_a_tag_is_found_whatever_its_case_and_the_lookup_leaves_no_cyclic_garbage(db_url: str) -> None:
    """CiString20Type: `04a2b3` finds `04A2B3`, only in its own team. Every Authorize and
    StartTransaction asks this; the query is built once, so a lookup leaves the garbage collector
    nothing in reference cycles (a query built per call left about 7 objects)."""

    async def scenario(db: Database) -> None:
        team, other = await new_team(db), await new_team(db)
        async with db.write() as conn:
            await id_tags.create_id_tag(conn, team, "04A2B3", {})
        gc.collect()
        gc.disable()
        try:
            async with db.read() as conn:
                found = [await id_tags.find_id_tag(conn, team, "04a2b3") for _ in range(20)]
                elsewhere = await id_tags.find_id_tag(conn, other, "04A2B3")
            cyclic = gc.collect()
        finally:
            gc.enable()
        assert {row["id_tag"] for row in found if row is not None} == {"04A2B3"}
        assert all(row is not None for row in found) and elsewhere is None
        assert cyclic < 20, f"{cyclic} objects in reference cycles"

    run(db_url, scenario)
