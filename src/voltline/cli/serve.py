"""`voltline serve|migrate|demo`: run the server, migrate its database, and make the demo login."""

from __future__ import annotations

import asyncio
import logging.config
from typing import IO

import click
import msgspec

from voltline.cli.base import fail, out, run_with_db, settings_from
from voltline.services import accounts
from voltline.settings import ROLES, Settings
from voltline.store import migrate as migrations
from voltline.store.files import hold_sqlite_serve_lock, sqlite_path


@click.command()
@click.option("--host", help="Address to listen on (default from VOLTLINE_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on (default 8000).")
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False), help="TLS certificate: serve https/wss.")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS private key.")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    help="What this process runs (default from VOLTLINE_ROLE, all): api, gateway, worker or all of them.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    *,
    host: str | None,
    port: int | None,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    role: str | None,
) -> None:
    """Serve the REST API, the docs and the OCPP endpoint (or, by --role, a part of them)."""
    # The server stack loads here, not at start: every other command would pay its import time.
    import uvicorn

    from voltline.app import create_app
    from voltline.server import log_config, uvicorn_options

    settings = settings_from(ctx)
    if role is not None:
        settings = msgspec.structs.replace(settings, role=role)
    check_role(settings)
    lock = hold_serve_lock(settings)  # noqa: F841 (held until the process ends)
    if ssl_certfile:
        settings = msgspec.structs.replace(settings, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile or "")
    logging_config = log_config(settings)
    logging.config.dictConfig(logging_config)
    app = create_app(settings)
    port = settings.port if port is None else port
    uvicorn.run(app, host=host or settings.host, port=port, log_config=logging_config, **uvicorn_options(settings))


def check_role(settings: Settings) -> None:
    """DESIGN "Cluster": a process that serves only a part needs the others: PostgreSQL, a bus, one shared secret."""
    if settings.role == "all":
        return
    missing = [
        need
        for need, absent in (
            ("PostgreSQL (VOLTLINE_DATABASE_URL)", settings.is_sqlite),
            ("VOLTLINE_BUS_URL", not settings.bus_url),
            ("an explicit VOLTLINE_SECRET_KEY", not settings.secret_key),
        )
        if absent
    ]
    if missing:
        fail(f"voltline serve --role {settings.role} runs beside other processes and needs {', '.join(missing)}")


def hold_serve_lock(settings: Settings) -> IO[bytes] | None:
    """DESIGN "Cluster": a second `serve` on one SQLite file stops at start with one line (PostgreSQL: no lock)."""
    if not settings.is_sqlite:
        return None
    lock = hold_sqlite_serve_lock(settings.effective_database_url)
    if lock is None:
        fail(
            f"another voltline serve already uses the SQLite database {sqlite_path(settings.effective_database_url)}; "
            "several processes need PostgreSQL and VOLTLINE_BUS_URL"
        )
    return lock


@click.command()
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


@click.command()
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
