"""The `voltline` command: serve, migrate, and manage users, teams, tokens and chargers."""

from __future__ import annotations

import asyncio
import logging
import logging.config
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from voltline.cli_charger_security import IDENTITY_RULE, chargers_check, chargers_security
from voltline.cli_prices import prices_group
from voltline.domain.emails import is_valid_email
from voltline.errors import VoltlineError
from voltline.services import accounts
from voltline.settings import Settings, load_settings
from voltline.simulator.cli import simulate
from voltline.store import migrate as migrations
from voltline.store import users
from voltline.store.engine import Database

T = TypeVar("T")
err = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)


def fail(text: str, code: int = 1) -> NoReturn:
    """Print a one-line error to stderr and exit non-zero."""
    err.print(f"[bold red]error:[/] {text}", highlight=False)
    sys.exit(code)


def _environ() -> dict[str, str]:
    env = dict(os.environ)
    if os.path.exists(".env"):
        from dotenv import dotenv_values

        env = {**{k: v for k, v in dotenv_values(".env").items() if v is not None}, **env}
    return env


def settings_from(ctx: click.Context) -> Settings:
    """Settings for this invocation (environment, `.env`, and global options)."""
    settings: Settings = ctx.obj
    return settings


def run_with_db(settings: Settings, action: Callable[[Database], Awaitable[T]]) -> T:
    """Run an async action against the configured database, mapping known errors to exits."""

    async def main() -> T:
        url = settings.effective_database_url
        if settings.is_sqlite:
            await migrations.upgrade(url)
        db = Database(url, busy_timeout_ms=settings.sqlite_busy_timeout_ms, synchronous=settings.sqlite_synchronous)
        try:
            return await action(db)
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except VoltlineError as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot reach the database: {error}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar="VOLTLINE_DATA_DIR", help="Directory for the SQLite database and secrets.")
@click.option("--database-url", envvar="VOLTLINE_DATABASE_URL", help="SQLAlchemy URL; default: SQLite in the data dir.")
@click.version_option(package_name="voltline")
@click.pass_context
def main(ctx: click.Context, data_dir: str | None, database_url: str | None) -> None:
    """Voltline: an open charge point management system (OCPP-J and a Volttime v2 REST API)."""
    try:
        ctx.obj = load_settings(_environ(), data_dir=data_dir, database_url=database_url)
    except VoltlineError as error:
        fail(str(error), 2)


@main.command()
@click.option("--host", help="Address to listen on (default from VOLTLINE_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on (default 8000).")
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False), help="TLS certificate: serve https/wss.")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS private key.")
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, ssl_certfile: str | None, ssl_keyfile: str | None
) -> None:
    """Serve the REST API, the docs and the OCPP endpoint."""
    import msgspec
    import uvicorn

    from voltline.app import create_app
    from voltline.server import log_config, uvicorn_options

    settings = settings_from(ctx)
    if ssl_certfile:
        settings = msgspec.structs.replace(settings, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile or "")
    logging_config = log_config(settings)
    logging.config.dictConfig(logging_config)
    app = create_app(settings)
    port = settings.port if port is None else port
    uvicorn.run(app, host=host or settings.host, port=port, log_config=logging_config, **uvicorn_options(settings))


@main.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Apply database migrations (needed for PostgreSQL; SQLite migrates at start)."""
    settings = settings_from(ctx)

    async def action() -> str | None:
        await migrations.upgrade(settings.effective_database_url)
        return await migrations.current_revision(settings.effective_database_url)

    try:
        revision = asyncio.run(action())
    except OSError as error:
        fail(f"cannot reach the database: {error}")
    out.print(f"database at revision {revision}")


@main.command()
@click.option("--base-url", help="Where the server listens (default: VOLTLINE_HOST and VOLTLINE_PORT, http or https).")
@click.pass_context
def demo(ctx: click.Context, base_url: str | None) -> None:
    """Create the demo login on the first run and print it (token in <data dir>/demo-token)."""
    settings = settings_from(ctx)
    if base_url is None:
        scheme = "https" if settings.ssl_certfile else "http"
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        base_url = f"{scheme}://{host}:{settings.port}"
    account, created = run_with_db(settings, lambda db: accounts.ensure_demo(db, settings.data_dir))
    state = "created" if created else "existing"
    out.print(f"[bold]Voltline demo login[/] ({state})")
    out.print(f"  user:  {account.email}")
    out.print(f"  team:  {account.team_id}")
    out.print(f"  token: {account.token}")
    out.print("  try:")
    out.print(f"    curl -H 'Authorization: Bearer {account.token}' {base_url}/api/v2/teams")
    out.print(f"  docs:  {base_url}/docs")


@main.group()
def users_group() -> None:
    """Manage users."""


main.add_command(users_group, "users")


@users_group.command("create")
@click.option("--email", required=True, help="The user's email address (unique).")
@click.option("--name", required=True, help="The user's display name.")
@click.pass_context
def users_create(ctx: click.Context, email: str, name: str) -> None:
    """Create a user and their personal team."""
    _check_email(email)
    user_id, team_id = run_with_db(settings_from(ctx), lambda db: accounts.create_user(db, email=email, name=name))
    out.print(f"created user {user_id} ({email}) with personal team {team_id}")


@main.group("teams")
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
            return await users.create_team(conn, owner_id=user["id"], name=name, email=owner, type_=type_)

    team = run_with_db(settings_from(ctx), action)
    out.print(f"created team {team['id']} ({team['uuid']}) owned by {owner}")


@main.group("tokens")
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
    from rich.table import Table

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
            return await users.revoke_api_token(conn, token_id)

    if not run_with_db(settings_from(ctx), action):
        fail(f"no active token with id {token_id}")
    out.print(f"revoked token {token_id}")


def _check_email(email: str) -> None:
    if not is_valid_email(email):
        fail(f"--email: {email!r} is not a valid email address", 2)


@main.group("chargers")
def chargers_group() -> None:
    """Manage chargers."""


_ROW_ID = click.IntRange(1, 2**31 - 1)


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
    from voltline.domain.credentials import hash_ocpp_password, ocpp_password_problem
    from voltline.domain.identities import is_valid_identity
    from voltline.services.runtime import ensure_secret_key

    if not is_valid_identity(identity):
        fail(f"IDENTITY must be {IDENTITY_RULE}", 2)
    settings = settings_from(ctx)
    password_hash = None
    if password is not None:
        problem = ocpp_password_problem(password)
        if problem is not None:
            fail(f"--password {problem}", 2)
        password_hash = hash_ocpp_password(ensure_secret_key(settings), password)
    from rich.markup import escape

    charger = run_with_db(settings, lambda db: _add_charger(db, identity, password_hash, team_id, site_id))
    out.print(f"created charger {charger['id']} ({escape(charger['identity'])})")
    out.print(f"  uuid:    {charger['uuid']}")
    out.print(f"  pincode: {charger['pincode']}")
    if password_hash is None:
        out.print("  security profile 1 without a password: it cannot connect until you run")
        out.print(f"  `voltline chargers security {escape(identity)} --profile 1 --generate` (or --profile 0)")


async def _add_charger(
    db: Database, identity: str, password_hash: str | None, team_id: int | None, site_id: int | None
) -> Any:
    from voltline.domain.credentials import new_pincode
    from voltline.store import chargers

    async with db.write() as conn:
        placement = await _charger_placement(conn, team_id, site_id)
        values = {**placement, "password_hash": password_hash, "security_profile": 1}
        return await chargers.create_charger(conn, identity, new_pincode(), values)


async def _charger_placement(conn: Any, team_id: int | None, site_id: int | None) -> dict[str, Any]:
    from voltline.domain.ids import SiteId
    from voltline.store import chargers

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
    from rich.markup import escape
    from rich.table import Table

    from voltline.store import chargers

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
    from voltline.domain.ids import TeamId
    from voltline.store import sites

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
    from rich.markup import escape
    from rich.table import Table

    from voltline.domain.ids import TeamId
    from voltline.store import chargers

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
    from voltline.domain.ids import ChargerId
    from voltline.store import chargers

    value = {"on": True, "off": False, "default": None}[mode]

    async def action(db: Database) -> None:
        async with db.write() as conn:
            charger = await chargers.get_charger_by_identity(conn, identity)
            if charger is None:
                raise VoltlineError(f"no charger with identity {identity}")
            await chargers.update_charger(conn, ChargerId(charger["id"]), {"lenient": value})

    run_with_db(settings_from(ctx), action)
    out.print(f"charger {identity}: lenient {mode}")


chargers_group.add_command(chargers_security)
chargers_group.add_command(chargers_check)
main.add_command(simulate)
main.add_command(prices_group)
