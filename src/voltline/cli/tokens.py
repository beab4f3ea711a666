"""`voltline tokens create|list|revoke`: a user's API tokens."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from voltline.cli.base import err, fail, out, run_with_db, settings_from
from voltline.clock import Clock
from voltline.errors import VoltlineError
from voltline.services import accounts, audit
from voltline.store import users
from voltline.store.engine import Database


@click.group("tokens")
def tokens_group() -> None:
    """Manage API tokens."""


@tokens_group.command("create")
@click.option("--email", required=True, help="Email of the user the token acts as.")
@click.option("--name", default="cli", show_default=True, help="A label for the token.")
@click.pass_context
def tokens_create(ctx: click.Context, email: str, name: str) -> None:
    """Create an API token; it is printed once, alone on the last line."""
    token = run_with_db(settings_from(ctx), lambda db: accounts.create_token(db, email=email, name=name))
    err.print("Store this token now; only its hash is kept.")
    click.echo(token)


@tokens_group.command("list")
@click.option("--email", required=True, help="Email of the user.")
@click.pass_context
def tokens_list(ctx: click.Context, email: str) -> None:
    """List a user's tokens (ids and names, never the tokens)."""

    async def action(db: Database) -> list[Any]:
        async with db.read() as conn:
            user = await users.get_user_by_email(conn, email)
            if user is None:
                raise VoltlineError(f"no user with email {email}")
            return await users.list_api_tokens(conn, user["id"])

    table = Table("id", "name", "created", "revoked")
    for row in run_with_db(settings_from(ctx), action):
        table.add_row(str(row["id"]), row["name"], str(row["created_at"]), str(row["revoked_at"] or "-"))
    out.print(table)


@tokens_group.command("revoke")
@click.argument("token_id", type=click.IntRange(min=1))
@click.pass_context
def tokens_revoke(ctx: click.Context, token_id: int) -> None:
    """Revoke an API token by its id (see `tokens list`)."""

    async def action(db: Database) -> bool:
        async with db.write() as conn:
            revoked = await users.revoke_api_token(conn, token_id)
            if revoked:
                await audit.record(Clock(), conn, None, "token.revoked", ("token", token_id))
            return revoked

    if not run_with_db(settings_from(ctx), action):
        fail(f"no active token with id {token_id}")
    out.print(f"revoked token {token_id}")
