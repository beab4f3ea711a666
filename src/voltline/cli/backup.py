"""`voltline backup FILE`: a consistent copy of the SQLite database while the server runs.

SQLite's online backup copies the database page by page, the pages a writer changes meanwhile
again, so the copy is one committed state (WAL included) and the server keeps serving. Restore:
stop the server and put the copy in place of `<data dir>/voltline.sqlite3` (or where
VOLTLINE_DATABASE_URL points). PostgreSQL is backed up with its own tools (`pg_dump`), see README.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from voltline.cli.base import fail, out, settings_from
from voltline.store.files import backup_sqlite, sqlite_path


@click.command()
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace TARGET when it exists.")
@click.pass_context
def backup(ctx: click.Context, target: Path, force: bool) -> None:
    """Copy the SQLite database to TARGET while the server may keep running (PostgreSQL: use pg_dump)."""
    settings = settings_from(ctx)
    if not settings.is_sqlite:
        fail("the database is PostgreSQL: back it up with pg_dump (see the README, Backup and restore)", 2)
    source = Path(sqlite_path(settings.effective_database_url))
    if not source.exists():
        fail(f"no database at {source}")
    if target.exists() and not force:
        fail(f"{target} exists; choose another file or add --force", 2)
    if target.resolve() == source.resolve():
        fail("TARGET is the database itself", 2)
    columns = (TextColumn("backup"), BarColumn(), MofNCompleteColumn(), TextColumn("pages"))
    with Progress(*columns, console=out, transient=True, disable=not out.is_terminal) as progress:
        task = progress.add_task("backup", total=None)
        try:
            pages = backup_sqlite(
                source, target, lambda done, total: progress.update(task, completed=done, total=total)
            )
        except OSError as error:
            fail(f"cannot write {target}: {error}")
    out.print(f"backed up {source} to {target} ({pages} pages, {target.stat().st_size:,} bytes)")
