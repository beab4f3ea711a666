"""`voltline users create`: a user and their personal team."""

from __future__ import annotations

import click

from voltline.cli.base import fail, out, run_with_db, settings_from
from voltline.domain.emails import is_valid_email
from voltline.services import accounts


@click.group("users")
def users_group() -> None:
    """Manage users."""


@users_group.command("create")
@click.option("--email", required=True, help="The user's email address (unique).")
@click.option("--name", required=True, help="The user's display name.")
@click.pass_context
def users_create(ctx: click.Context, email: str, name: str) -> None:
    """Create a user and their personal team."""
    _check_email(email)
    user_id, team_id = run_with_db(settings_from(ctx), lambda db: accounts.create_user(db, email=email, name=name))
    out.print(f"created user {user_id} ({email}) with personal team {team_id}")


def _check_email(email: str) -> None:
    if not is_valid_email(email):
        fail(f"--email: {email!r} is not a valid email address", 2)
