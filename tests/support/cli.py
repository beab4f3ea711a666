"""The voltline command line run in-process (click's CliRunner) against a fresh database and data directory."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from voltline.cli import main
from voltline.domain.ids import SiteId, TeamId
from voltline.store import chargers, sites
from voltline.store.engine import Database

UNSET_ENV = {"VOLTLINE_DATABASE_URL": None, "VOLTLINE_DATA_DIR": None, "VOLTLINE_SECRET_KEY": None}


@dataclass
class Cli:
    """Runs `voltline` against one fresh database and data directory."""

    data_dir: Path
    database_url: str

    def __call__(self, *args: str) -> Result:
        """Invoke the command line with the global options for this database."""
        options = ["--data-dir", str(self.data_dir)]
        if self.database_url:
            options += ["--database-url", self.database_url]
        return CliRunner().invoke(main, [*options, *args], env=UNSET_ENV)

    @property
    def url(self) -> str:
        """The database URL the CLI uses."""
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'voltline.sqlite3'}"

    def store(self, action: Callable[[Any], Any]) -> Any:
        """Run a store action in a write transaction against the same database."""

        async def run() -> Any:
            db = Database(self.url)
            try:
                async with db.write() as conn:
                    return await action(conn)
            finally:
                await db.close()

        return asyncio.run(run())

    def team(self, email: str) -> int:
        """Create a user through the CLI and return their personal team's id."""
        result = self("users", "create", "--email", email, "--name", "Ann")
        assert result.exit_code == 0, result.output
        match = re.search(r"personal team (\d+)", result.stdout)
        assert match is not None
        return int(match.group(1))

    def site(self, team_id: int) -> tuple[int, int]:
        """A site of the team and its root group id."""
        values = {
            "name": "Depot",
            "street": "Main",
            "house_number": 1,
            "postal_code": "1",
            "city": "X",
            "country": "NL",
        }

        async def make(conn: Any) -> tuple[int, int]:
            site = await sites.create_site(conn, TeamId(team_id), values)
            return site["id"], await sites.get_root_group_id(conn, SiteId(site["id"]))

        result: tuple[int, int] = self.store(make)
        return result

    def charger(self, identity: str) -> dict[str, Any]:
        """The stored charger row."""

        async def read(conn: Any) -> dict[str, Any]:
            row = await chargers.get_charger_by_identity(conn, identity)
            assert row is not None
            return dict(row)

        result: dict[str, Any] = self.store(read)
        return result
