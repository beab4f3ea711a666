"""Rolling upgrades (DESIGN "Cluster": migrations are expand/contract): old and new code side by side on the new schema.

The old code is this repository's source as it was just before the newest migration was added
(the parent of the commit that added it, taken with `git archive`); the database is migrated to
the newest revision by `voltline migrate`, run once, as docs/deploy.md's upgrade does before it
restarts any process. A process of the old code and one of the new then serve the same database
at once: each reads what the other wrote, and a charger's password set before the upgrade still
lets it in on both. A migration that the old code cannot live with (a column it writes made
NOT NULL without a default, a table it reads dropped or renamed) fails here; such a change is
split into an expand migration now and a contract migration a release later.

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
from pathlib import Path

import httpx
import pytest

from tests.support.fleet_login import charger_let_in
from tests.support.killable_server import Fleet, KillableServer, seed_fleet
from tests.support.sites import SITE_BODY

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = "src/voltline/store/migrations/versions"
POSTGRES_URL = os.environ.get("VOLTLINE_TEST_POSTGRES_URL", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not POSTGRES_URL, reason="needs VOLTLINE_TEST_POSTGRES_URL"),
]


def git(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run git in this repository."""
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, timeout=60, check=False)


def source_before_newest_migration(into: Path) -> tuple[Path, str]:
    """`src/` as it was before the newest migration was added, extracted under `into`; (its path, that migration)."""
    newest = max(path.name for path in (ROOT / VERSIONS).glob("[0-9]*.py"))
    if shutil.which("git") is None or git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("needs a git checkout with history (the old code is the repository's own past)")
    added = git("log", "-1", "--format=%H", "--", f"{VERSIONS}/{newest}").stdout.decode().strip()
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


def voltline_migrate(url: str) -> str:
    """`voltline migrate` of the new code, once: its last line (the revision reached)."""
    env = {**os.environ, "VOLTLINE_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "voltline", "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def site_names(server: KillableServer, fleet: Fleet) -> list[str]:
    """The names of the team's sites, as the server's API lists them."""
    headers = {"Authorization": f"Bearer {fleet.account.token}", "Accept": "application/json"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as api:
        listed = api.get(f"/api/v2/teams/{fleet.account.team_id}/sites", params={"per_page": 100})
    assert listed.status_code == 200, listed.text
    return sorted(site["name"] for site in listed.json()["data"])


def make_site(server: KillableServer, fleet: Fleet, name: str) -> None:
    """Create a site through the server's API."""
    headers = {"Authorization": f"Bearer {fleet.account.token}", "Accept": "application/json"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as api:
        made = api.post(f"/api/v2/teams/{fleet.account.team_id}/sites", json={**SITE_BODY, "name": name})
    assert made.status_code == 201, made.text


def test_the_code_before_the_newest_migration_serves_beside_the_new_code_on_the_migrated_database(
    fresh_database: Callable[[str], str], tmp_path: Path
) -> None:
    """DESIGN "Cluster": old and new processes run side by side across one migration (expand/contract)."""
    old_source, newest = source_before_newest_migration(tmp_path / "old")
    url = fresh_database("postgres")  # at the newest revision already; migrate again is a no-op that says so
    assert voltline_migrate(url) == f"database at revision {newest.split('_', 1)[0]}"
    fleet = asyncio.run(seed_fleet(url, 1, 32))
    for name in ("old-run", "new-run"):
        (tmp_path / name).mkdir()
    quiet = {"VOLTLINE_SMART_CONTROL": "false"}
    old = KillableServer(url, tmp_path / "old-run", {**quiet, "PYTHONPATH": str(old_source)})
    new = KillableServer(url, tmp_path / "new-run", quiet)
    try:
        old.start()
        new.start()
        make_site(old, fleet, "Written by the old code")
        make_site(new, fleet, "Written by the new code")
        both = ["Crash depot", "Written by the new code", "Written by the old code"]
        assert site_names(old, fleet) == both
        assert site_names(new, fleet) == both
        assert asyncio.run(charger_let_in(old, fleet))
        assert asyncio.run(charger_let_in(new, fleet))
    finally:
        old.stop()
        new.stop()
    assert "Traceback" not in old.log_path.read_text(), old.log_tail()
