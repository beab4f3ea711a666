"""The root `voltline` group, its global options, and the helpers every command group shares."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import click
from dotenv import dotenv_values
from rich.console import Console

from voltline.errors import VoltlineError
from voltline.settings import Settings, load_settings
from voltline.store import migrate as migrations
from voltline.store.engine import Database

T = TypeVar("T")
err = Console(stderr=True, soft_wrap=True)  # one line per error, however long (no wrapping at 80 columns)
out = Console(highlight=False, soft_wrap=True)


def fail(text: str, code: int = 1) -> NoReturn:
    """Print a one-line error to stderr and exit non-zero."""
    err.print(f"[bold red]error:[/] {text}", highlight=False)
    sys.exit(code)


def _environ() -> dict[str, str]:
    env = dict(os.environ)
    if os.path.exists(".env"):
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
