"""PostgreSQL backup and restore as docs/deploy.md says: `pg_dump -Fc` while serving, `pg_restore --clean` into another.

The dump is taken while a `voltline serve` process runs on the database, after data was written
through the store (a team, a site, a charger with an OCPP password) and through the API (another
site, the charger's lenient flag). It is restored with `pg_restore --clean --if-exists` into a
second, freshly migrated database (an installation that already exists, as after a failed
upgrade); a server on the restored database, with the same `VOLTLINE_SECRET_KEY`, answers the same
token with the same sites and charger, and lets the charger in with its password. Needs
`VOLTLINE_TEST_POSTGRES_URL` and PostgreSQL's client tools.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_ADMIN_URL
from tests.support.fleet_login import charger_let_in
from tests.support.killable_server import Fleet, KillableServer, seed_fleet
from tests.support.sites import SITE_BODY

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not POSTGRES_ADMIN_URL, reason="needs VOLTLINE_TEST_POSTGRES_URL"),
    pytest.mark.skipif(not (shutil.which("pg_dump") and shutil.which("pg_restore")), reason="needs pg_dump"),
]


def libpq_url(url: str) -> str:
    """The database URL as PostgreSQL's own tools take it (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_tool(*command: str) -> None:
    """Run pg_dump or pg_restore; its errors in the failure message."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def what_the_api_shows(server: KillableServer, fleet: Fleet) -> dict[str, Any]:
    """The team's sites and the charger as the server's API returns them (without the host-dependent links)."""
    headers = {"Authorization": f"Bearer {fleet.account.token}", "Accept": "application/json"}
    team = f"/api/v2/teams/{fleet.account.team_id}"
    charger_id = next(iter(fleet.chargers.values()))
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as api:
        sites = api.get(f"{team}/sites")
        charger = api.get(f"{team}/chargers/{charger_id}")
        ocpp = api.get(f"{team}/chargers/{charger_id}/ocpp")
    for answer in (sites, charger, ocpp):
        assert answer.status_code == 200, answer.text
    return {"sites": sites.json()["data"], "charger": charger.json()["data"], "ocpp": ocpp.json()["data"]}


def test_a_pg_dump_taken_while_serving_restores_into_another_database_that_serves_the_same_data(
    fresh_database: Callable[[str], str], tmp_path: Path
) -> None:
    """docs/deploy.md "Backup and restore": pg_dump -Fc while it runs, pg_restore --clean, same secret key."""
    original_url, restored_url = fresh_database("postgres"), fresh_database("postgres")
    fleet = asyncio.run(seed_fleet(original_url, 1, 32))
    for name in ("original", "restored"):
        (tmp_path / name).mkdir()
    original = KillableServer(original_url, tmp_path / "original", {"VOLTLINE_SMART_CONTROL": "false"})
    dump = tmp_path / "voltline.dump"
    original.start()
    try:
        headers = {"Authorization": f"Bearer {fleet.account.token}", "Accept": "application/json"}
        team = f"/api/v2/teams/{fleet.account.team_id}"
        with httpx.Client(base_url=original.base_url, headers=headers, timeout=30) as api:
            made = api.post(f"{team}/sites", json={**SITE_BODY, "name": "Made through the API"})
            assert made.status_code == 201, made.text
            charger_id = next(iter(fleet.chargers.values()))
            lenient = api.put(f"{team}/chargers/{charger_id}/ocpp", json={"lenient": True})
            assert lenient.status_code == 200, lenient.text
        before = what_the_api_shows(original, fleet)
        postgres_tool("pg_dump", "-Fc", "-d", libpq_url(original_url), "-f", str(dump))
    finally:
        original.stop()
    assert len(before["sites"]) == 2 and before["ocpp"]["lenient"] is True

    postgres_tool("pg_restore", "--clean", "--if-exists", "--no-owner", "-d", libpq_url(restored_url), str(dump))
    restored = KillableServer(restored_url, tmp_path / "restored", {"VOLTLINE_SMART_CONTROL": "false"})
    restored.start()
    try:
        assert what_the_api_shows(restored, fleet) == before
        assert asyncio.run(charger_let_in(restored, fleet))
    finally:
        restored.stop()
