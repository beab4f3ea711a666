"""`voltline teams create`: a team owned by an existing user."""

from __future__ import annotations

from typing import Any

import click

from voltline.cli.base import out, run_with_db, settings_from
from voltline.clock import Clock
from voltline.errors import VoltlineError
from voltline.services import audit
from voltline.store import users
from voltline.store.engine import Database


@click.group("teams")
def teams_group() -> None:
    """Manage teams."""


@teams_group.command("create")
@click.option("--name", required=True, help="The team's name.")
@click.option("--owner", required=True, help="Email of the owning user.")
@click.option(
    "--type",
    "type_",
    default="Other",
    show_default=True,
    type=click.Choice(["Personal", "HOA", "Retailer", "Installer", "Wholesaler", "Company", "OEM", "Other"]),
)
@click.pass_context
def teams_create(ctx: click.Context, name: str, owner: str, type_: str) -> None:
    """Create a team owned by an existing user."""

    async def action(db: Database) -> Any:
        async with db.write() as conn:
            user = await users.get_user_by_email(conn, owner)
            if user is None:
                raise VoltlineError(f"no user with email {owner}")
            team = await users.create_team(conn, owner_id=user["id"], name=name, email=owner, type_=type_)
            await audit.record(
                Clock(), conn, team["id"], "team.created", ("team", team["uuid"]), detail={"type": type_}
            )
            return team

    team = run_with_db(settings_from(ctx), action)
    out.print(f"created team {team['id']} ({team['uuid']}) owned by {owner}")
