"""Rolling upgrades (DESIGN "Cluster": migrations are expand/contract): old and new code side by side on the new schema.

The old code is this repository's source as it was just before the newest migration was added
(the parent of the commit that added it, taken with `git archive`). The upgrade runs as
docs/deploy.md says: the installation is made and filled by the old code (its `voltline
migrate`, an account by its CLI, a site and a charger with an OCPP password through its API);
then, while the old process serves, the new code's `voltline migrate` runs once on that data;
the old process keeps serving, and a process of the new code serves the same database beside
it: each reads what the other wrote, and the charger's password lets it in on both. A migration
that fails on existing rows, or that the old code cannot live with (a column it writes made NOT
NULL without a default, a table it reads dropped or renamed), fails here; such a change is split
into an expand migration now and a contract migration a release later.

Needs `VOLTLINE_TEST_POSTGRES_URL` and a git checkout with history (`.ci/run` runs in one).
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import POSTGRES_ADMIN_URL
from tests.support.fleet_login import upgrade_accepted
from tests.support.killable_server import KillableServer
from tests.support.sites import SITE_BODY

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = "src/voltline/store/migrations/versions"
IDENTITY, PASSWORD = "UPGRADE-0001", "rolling-upgrade-password"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not POSTGRES_ADMIN_URL, reason="needs VOLTLINE_TEST_POSTGRES_URL"),
]


def git(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run git in this repository."""
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, timeout=60, check=False)


def source_before_newest_migration(into: Path) -> tuple[Path, str]:
    """`src/` as it was before the newest migration was added, extracted under `into`; (its path, that migration)."""
    newest = max(path.name for path in (ROOT / VERSIONS).glob("[0-9]*.py"))
    if shutil.which("git") is None or git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("needs a git checkout with history (the old code is the repository's own past)")
    # The commit that added the file (a later one may have changed it, e.g. its down_revision), on the
    # main line: a merge that brought the file in counts as adding it (diffed against its first parent).
    log = ("log", "--first-parent", "-m", "--diff-filter=A", "-1", "--format=%H", "--", f"{VERSIONS}/{newest}")
    added = git(*log).stdout.decode().strip()
    if not added:
        pytest.skip(f"{newest} is not committed yet: no old code to run beside it")
    archive = git("archive", "--format=tar", f"{added}^", "src")
    if archive.returncode != 0:
        pytest.skip(f"the history before {added[:10]} is not in this checkout (a shallow clone?)")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    old_versions = {path.name for path in (into / VERSIONS).glob("[0-9]*.py")}
    assert newest not in old_versions, f"the old code already had {newest}"
    return into / "src", newest


def voltline(url: str, *args: str, source: Path | None = None) -> str:
    """The CLI of the new code (or of the code at `source`) on the database; its stdout."""
    env = {**os.environ, "VOLTLINE_DATABASE_URL": url}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    command = [sys.executable, "-m", "voltline", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def empty_database(url: str) -> None:
    """Drop what the fixture migrated: the old code makes its own schema, as it did before the upgrade."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class Owner:
    """The account the old code made: its token and team."""

    token: str
    team_id: int

    def api(self, server: KillableServer) -> httpx.Client:
        """An API client of the owner on one process."""
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        return httpx.Client(base_url=server.base_url, headers=headers, timeout=30)

    def make_site(self, server: KillableServer, name: str) -> int:
        """Create a site through the server's API; its id."""
        with self.api(server) as api:
            made = api.post(f"/api/v2/teams/{self.team_id}/sites", json={**SITE_BODY, "name": name})
        assert made.status_code == 201, made.text
        return int(made.json()["data"]["id"])

    def site_names(self, server: KillableServer) -> list[str]:
        """The names of the team's sites, as the server's API lists them."""
        with self.api(server) as api:
            listed = api.get(f"/api/v2/teams/{self.team_id}/sites", params={"per_page": 100})
        assert listed.status_code == 200, listed.text
        return sorted(site["name"] for site in listed.json()["data"])


def made_by_old_code(url: str, old_source: Path, old: KillableServer) -> Owner:
    """The old code's schema, an account by its CLI, then (with `old` started) a site and a charger by its API."""
    voltline(url, "migrate", source=old_source)
    voltline(url, "users", "create", "--email", "owner@example.com", "--name", "Owner", source=old_source)
    token = voltline(url, "tokens", "create", "--email", "owner@example.com", source=old_source).splitlines()[-1]
    old.start()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    with httpx.Client(base_url=old.base_url, headers=headers, timeout=30) as api:
        owner = Owner(token, int(api.get("/api/v2/teams").json()["data"][0]["id"]))
    site_id = owner.make_site(old, "Before the upgrade")
    with owner.api(old) as api:
        team = f"/api/v2/teams/{owner.team_id}"
        charger = api.post(f"{team}/sites/{site_id}/chargers", json={"identity": IDENTITY})
        assert charger.status_code == 201, charger.text
        secured = api.put(f"{team}/chargers/{charger.json()['data']['id']}/ocpp", json={"password": PASSWORD})
        assert secured.status_code == 200, secured.text
    return owner


def test_the_code_before_the_newest_migration_serves_beside_the_new_code_across_the_migration(
    fresh_database: Callable[[str], str], tmp_path: Path
) -> None:
    """DESIGN "Cluster": old and new processes run side by side across one migration (expand/contract)."""
    old_source, newest = source_before_newest_migration(tmp_path / "old")
    url = fresh_database("postgres")
    asyncio.run(empty_database(url))
    for name in ("old-run", "new-run"):
        (tmp_path / name).mkdir()
    quiet = {"VOLTLINE_SMART_CONTROL": "false"}
    old = KillableServer(url, tmp_path / "old-run", {**quiet, "PYTHONPATH": str(old_source)})
    new = KillableServer(url, tmp_path / "new-run", quiet)
    try:
        owner = made_by_old_code(url, old_source, old)
        reached = voltline(url, "migrate").strip().splitlines()[-1]  # once, while the old process serves
        assert reached == f"database at revision {newest.split('_', 1)[0]}"
        owner.make_site(old, "Old code, after the migration")
        new.start()
        owner.make_site(new, "New code")
        every = ["Before the upgrade", "New code", "Old code, after the migration"]
        assert owner.site_names(old) == every
        assert owner.site_names(new) == every
        assert asyncio.run(upgrade_accepted(old, IDENTITY, PASSWORD))
        assert asyncio.run(upgrade_accepted(new, IDENTITY, PASSWORD))
    finally:
        old.stop()
        new.stop()
    assert "Traceback" not in old.log_path.read_text(), old.log_tail()
