"""The audit service (DESIGN "Services tier"): the actor a front-end sets, and rows that commit with their change."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import LiveServer
from voltline.domain.audit import SYSTEM, user_actor
from voltline.domain.ids import TeamId
from voltline.services import audit, sites
from voltline.services.accounts import Account

SITE = {"name": "Depot", "street": "Main", "house_number": 1, "postal_code": "1000", "city": "C", "country": "NL"}


class Refused(Exception):
    """Raised inside a write to make it roll back."""


def rows_of(server: LiveServer, team_id: int) -> list[dict[str, Any]]:
    rows = server.run(lambda: audit.list_audit_log(server.runtime, TeamId(team_id), {}, offset=0, limit=100))
    return [dict(row) for row in rows]


def test_without_a_front_end_the_actor_is_system_and_acting_as_is_scoped_to_its_task() -> None:
    seen: dict[str, Any] = {}

    async def as_user(name: str, user_id: int) -> None:
        with audit.acting_as(user_actor(user_id, f"{name}@example.com")):
            await asyncio.sleep(0)  # the other task runs in between with its own actor
            seen[name] = audit.current_actor()
        seen[f"{name} after"] = audit.current_actor()

    async def scenario() -> None:
        await asyncio.gather(as_user("ann", 1), as_user("bob", 2))

    assert audit.current_actor() == SYSTEM
    asyncio.run(scenario())
    assert (seen["ann"].id, seen["bob"].id) == ("1", "2")
    assert seen["ann after"] == seen["bob after"] == SYSTEM


def test_a_service_records_the_actor_set_around_it(server: LiveServer, account: Account) -> None:
    """A CLI command acting for a user wraps the service call in `acting_as`."""

    async def create() -> Any:
        with audit.acting_as(user_actor(account.user_id, account.email)):
            return await sites.create_site(server.runtime, TeamId(account.team_id), SITE)

    site = server.run(create)
    [row] = rows_of(server, account.team_id)
    expected = ("user", str(account.user_id), account.user_id, account.email, "site.created", site["uuid"], "ok")
    got = ("actor_kind", "actor_id", "actor_user_id", "actor_label", "action", "object_id", "outcome")
    assert tuple(row[name] for name in got) == expected
    assert row["at"] <= server.runtime.clock.now()


def test_a_row_rolls_back_with_its_change(server: LiveServer, account: Account) -> None:
    """The row is written in the service's transaction: a write that fails after it leaves nothing."""
    team_id = TeamId(account.team_id)

    async def failing_write() -> None:
        async with server.runtime.db.write() as conn:
            await audit.record(server.runtime.clock, conn, team_id, "site.updated", ("site", "x"))
            raise Refused

    async def committed_write() -> None:
        async with server.runtime.db.write() as conn:
            await audit.record(
                server.runtime.clock, conn, team_id, "site.updated", ("site", "y"), detail={"token": "t"}
            )

    with pytest.raises(Refused):
        server.run(failing_write)
    server.run(committed_write)
    rows = rows_of(server, account.team_id)
    assert [(row["object_id"], row["actor_kind"], row["detail"]) for row in rows] == [("y", "system", None)]
