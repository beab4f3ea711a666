"""`voltline chargers security|check`: a charger's OCPP security profile and password, and rows to look at.

DESIGN: Charger security. The shared CLI helpers are imported inside the commands: `voltline.cli`
imports this module.
"""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from voltline.domain.credentials import hash_ocpp_password, new_ocpp_password, ocpp_password_problem
from voltline.domain.identities import is_valid_identity
from voltline.domain.ids import ChargerId
from voltline.errors import VoltlineError
from voltline.store import chargers
from voltline.store.engine import Database

IDENTITY_RULE = "1 to 45 characters from letters, digits and *-_=+|@."


@click.command("security")
@click.argument("identity")
@click.option(
    "--profile",
    type=click.IntRange(0, 2),
    required=True,
    help="0 identity only, 1 HTTP Basic over ws or wss, 2 HTTP Basic over wss only.",
)
@click.option("--password", help="New OCPP password: 16 to 40 printable ASCII characters (default: keep the current).")
@click.option("--generate", is_flag=True, help="Make a new password and print it once, alone on the last line.")
@click.pass_context
def chargers_security(ctx: click.Context, identity: str, profile: int, password: str | None, generate: bool) -> None:
    """Set a charger's OCPP security profile, and its password."""
    from voltline.cli import fail, out, run_with_db, settings_from
    from voltline.services.runtime import ensure_secret_key

    if password is not None and generate:
        fail("--password and --generate exclude each other", 2)
    if password is not None and (problem := ocpp_password_problem(password)) is not None:
        fail(f"--password {problem}", 2)
    settings = settings_from(ctx)
    new_password = new_ocpp_password() if generate else password
    values: dict[str, Any] = {"security_profile": profile}
    if new_password is not None:
        values["password_hash"] = hash_ocpp_password(ensure_secret_key(settings), new_password)

    async def action(db: Database) -> Any:
        async with db.write() as conn:
            charger = await chargers.get_charger_by_identity(conn, identity)
            if charger is None:
                raise VoltlineError(f"no charger with identity {identity}")
            return await chargers.update_charger(conn, ChargerId(charger["id"]), values)

    row = run_with_db(settings, action)
    state = "set" if new_password is not None else ("kept" if row["password_hash"] else "none")
    out.print(f"charger {escape(identity)}: security profile {profile}, password {state}")
    if profile > 0 and row["password_hash"] is None:
        out.print("  it cannot connect until it has a password (--password or --generate) or profile 0")
    if generate:
        click.echo(new_password)


@click.command("check")
@click.pass_context
def chargers_check(ctx: click.Context) -> None:
    """List chargers to look at: identities that break the identity rule, and profiles 1-2 without a password."""
    from voltline.cli import out, run_with_db, settings_from

    async def action(db: Database) -> list[Any]:
        async with db.read() as conn:
            return await chargers.list_all_chargers(conn)

    rows = run_with_db(settings_from(ctx), action)
    odd = [row for row in rows if not is_valid_identity(row["identity"])]
    locked = [row for row in rows if row["security_profile"] > 0 and row["password_hash"] is None]
    if not odd and not locked:
        out.print(f"{len(rows)} chargers: every identity follows the rule and every profile 1-2 has a password")
        return
    if odd:
        out.print(f"identities that break the rule ({IDENTITY_RULE}); they keep working, new ones are refused:")
        out.print(_table(odd))
    if locked:
        out.print("security profile 1 or 2 without a password; they cannot connect (`voltline chargers security`):")
        out.print(_table(locked))


def _table(rows: list[Any]) -> Table:
    table = Table("id", "identity", "team", "site", "profile")
    for row in rows:
        team, site = (str(row[key]) if row[key] is not None else "-" for key in ("team_id", "site_id"))
        table.add_row(str(row["id"]), escape(repr(row["identity"])), team, site, str(row["security_profile"]))
    return table
