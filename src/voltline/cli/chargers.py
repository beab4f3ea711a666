"""`voltline chargers add|show|list|lenient|security|check`: chargers, their OCPP security, and rows to look at.

DESIGN: Charger security.
"""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from voltline.cli.base import fail, out, run_with_db, settings_from
from voltline.clock import Clock
from voltline.domain.credentials import hash_ocpp_password, new_ocpp_password, new_pincode, ocpp_password_problem
from voltline.domain.identities import is_valid_identity
from voltline.domain.ids import ChargerId, SiteId, TeamId
from voltline.errors import VoltlineError
from voltline.services import audit
from voltline.settings import Settings
from voltline.store import chargers, sites, users
from voltline.store.engine import Database

IDENTITY_RULE = "1 to 45 characters from letters, digits and *-_=+|@."
_ROW_ID = click.IntRange(1, 2**31 - 1)


@click.group("chargers")
def chargers_group() -> None:
    """Manage chargers."""


@chargers_group.command("add")
@click.argument("identity")
@click.option("--password", help="OCPP password for HTTP Basic auth: 16 to 40 printable ASCII characters.")
@click.option("--team", "team_id", type=_ROW_ID, help="Id of the owning team (default: none, attach by pincode).")
@click.option("--site", "site_id", type=_ROW_ID, help="Id of a site to place it on (in its root group).")
@click.pass_context
def chargers_add(
    ctx: click.Context, identity: str, password: str | None, team_id: int | None, site_id: int | None
) -> None:
    """Create a charger; prints its id, uuid and the pincode that attaches it to a site."""
    if not is_valid_identity(identity):
        fail(f"IDENTITY must be {IDENTITY_RULE}", 2)
    settings = settings_from(ctx)
    password_hash = None
    if password is not None:
        problem = ocpp_password_problem(password)
        if problem is not None:
            fail(f"--password {problem}", 2)
        password_hash = hash_ocpp_password(_secret_key(settings), password)
    charger = run_with_db(settings, lambda db: _add_charger(db, identity, password_hash, team_id, site_id))
    out.print(f"created charger {charger['id']} ({escape(charger['identity'])})")
    out.print(f"  uuid:    {charger['uuid']}")
    out.print(f"  pincode: {charger['pincode']}")
    if password_hash is None:
        out.print("  security profile 1 without a password: it cannot connect until you run")
        out.print(f"  `voltline chargers security {escape(identity)} --profile 1 --generate` (or --profile 0)")


def _secret_key(settings: Settings) -> str:
    # Loaded on use: `services.runtime` brings the meter writer and metrics, which other commands never need.
    from voltline.services.runtime import ensure_secret_key

    return ensure_secret_key(settings)


async def _add_charger(
    db: Database, identity: str, password_hash: str | None, team_id: int | None, site_id: int | None
) -> Any:
    async with db.write() as conn:
        placement = await _charger_placement(conn, team_id, site_id)
        values = {**placement, "password_hash": password_hash, "security_profile": 1}
        row = await chargers.create_charger(conn, identity, new_pincode(), values)
        detail = {"identity": identity, "site_id": site_id}
        await audit.record(Clock(), conn, row["team_id"], "charger.created", ("charger", row["uuid"]), detail=detail)
        return row


async def _charger_placement(conn: Any, team_id: int | None, site_id: int | None) -> dict[str, Any]:
    if site_id is not None:
        site_team, group_id = await chargers.get_site_placement(conn, SiteId(site_id))
        if team_id is not None and team_id != site_team:
            raise VoltlineError(f"site {site_id} belongs to team {site_team}, not to team {team_id}")
        return {"team_id": site_team, "site_id": site_id, "group_id": group_id}
    if team_id is not None and await users.get_team_by_ref(conn, team_id) is None:
        raise VoltlineError(f"no team with id {team_id}")
    return {"team_id": team_id}


@chargers_group.command("show")
@click.argument("identity")
@click.pass_context
def chargers_show(ctx: click.Context, identity: str) -> None:
    """Show one charger by identity, with its attach pincode."""

    async def action(db: Database) -> tuple[Any, str, str]:
        async with db.read() as conn:
            charger = await chargers.get_charger_by_identity(conn, identity)
            if charger is None:
                raise VoltlineError(f"no charger with identity {identity}")
            return charger, *await _owner_names(conn, charger)

    charger, team, site = run_with_db(settings_from(ctx), action)
    table = Table("field", "value")
    rows = [("identity", charger["identity"]), ("uuid", charger["uuid"]), ("team", team), ("site", site)]
    rows += [("connection status", charger["connection_status"]), ("pincode", charger["pincode"])]
    for name, value in rows:
        table.add_row(name, escape(value))
    out.print(table)


async def _owner_names(conn: Any, charger: Any) -> tuple[str, str]:
    if charger["team_id"] is None:
        return "-", "-"
    team = await users.get_team(conn, TeamId(charger["team_id"]))
    if charger["site_id"] is None:
        return f"{team['id']} ({team['name']})", "-"
    site = await sites.get_site(conn, TeamId(team["id"]), charger["site_id"])
    return f"{team['id']} ({team['name']})", f"{site['id']} ({site['name']})"


@chargers_group.command("list")
@click.option("--team", "team_id", type=_ROW_ID, help="Only the chargers of this team.")
@click.pass_context
def chargers_list(ctx: click.Context, team_id: int | None) -> None:
    """List chargers (all of them, or one team's)."""

    async def action(db: Database) -> list[Any]:
        async with db.read() as conn:
            if team_id is None:
                return await chargers.list_all_chargers(conn)
            return await chargers.list_team_chargers(conn, TeamId(team_id))

    table = Table("id", "identity", "team", "site", "connection status")
    for row in run_with_db(settings_from(ctx), action):
        team, site = (str(row[key]) if row[key] is not None else "-" for key in ("team_id", "site_id"))
        table.add_row(str(row["id"]), escape(row["identity"]), team, site, row["connection_status"])
    out.print(table)


@chargers_group.command("lenient")
@click.argument("identity")
@click.argument("mode", type=click.Choice(["on", "off", "default"]))
@click.pass_context
def chargers_lenient(ctx: click.Context, identity: str, mode: str) -> None:
    """Accept known-bad firmware payloads from one charger (on), refuse them (off), or use the server default."""
    value = {"on": True, "off": False, "default": None}[mode]

    async def action(db: Database) -> None:
        async with db.write() as conn:
            charger = await chargers.get_charger_by_identity(conn, identity)
            if charger is None:
                raise VoltlineError(f"no charger with identity {identity}")
            await chargers.update_charger(conn, ChargerId(charger["id"]), {"lenient": value})
            await _record_settings(conn, charger, ["lenient"])

    run_with_db(settings_from(ctx), action)
    out.print(f"charger {identity}: lenient {mode}")


@chargers_group.command("security")
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
    if password is not None and generate:
        fail("--password and --generate exclude each other", 2)
    if password is not None and (problem := ocpp_password_problem(password)) is not None:
        fail(f"--password {problem}", 2)
    settings = settings_from(ctx)
    new_password = new_ocpp_password() if generate else password
    values: dict[str, Any] = {"security_profile": profile}
    if new_password is not None:
        values["password_hash"] = hash_ocpp_password(_secret_key(settings), new_password)

    async def action(db: Database) -> Any:
        async with db.write() as conn:
            charger = await chargers.get_charger_by_identity(conn, identity)
            if charger is None:
                raise VoltlineError(f"no charger with identity {identity}")
            row = await chargers.update_charger(conn, ChargerId(charger["id"]), values)
            await _record_settings(conn, charger, values)
            return row

    row = run_with_db(settings, action)
    state = "set" if new_password is not None else ("kept" if row["password_hash"] else "none")
    out.print(f"charger {escape(identity)}: security profile {profile}, password {state}")
    if profile > 0 and row["password_hash"] is None:
        out.print("  it cannot connect until it has a password (--password or --generate) or profile 0")
    if generate:
        click.echo(new_password)


async def _record_settings(conn: Any, charger: Any, fields: Any) -> None:
    """The audit row of an OCPP-settings change made here (as `system`, DESIGN "Services tier")."""
    target = ("charger", charger["uuid"])
    detail = audit.changed_fields(fields)
    await audit.record(Clock(), conn, charger["team_id"], "charger.ocpp_settings_changed", target, detail=detail)


@chargers_group.command("check")
@click.pass_context
def chargers_check(ctx: click.Context) -> None:
    """List chargers to look at: identities that break the identity rule, and profiles 1-2 without a password."""

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
        out.print(_security_table(odd))
    if locked:
        out.print("security profile 1 or 2 without a password; they cannot connect (`voltline chargers security`):")
        out.print(_security_table(locked))


def _security_table(rows: list[Any]) -> Table:
    table = Table("id", "identity", "team", "site", "profile")
    for row in rows:
        team, site = (str(row[key]) if row[key] is not None else "-" for key in ("team_id", "site_id"))
        table.add_row(str(row["id"]), escape(repr(row["identity"])), team, site, str(row["security_profile"]))
    return table
