"""`voltline backup`: SQLite's online backup while a server writes, restored and served again.

The backup is taken while `voltline serve` runs on the database; the copy is put in place of the
database of a fresh data directory (the restore the README describes), a server started there
answers the account's token with its team, and `PRAGMA integrity_check` passes.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.served import Served


def voltline(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI on a data directory (SQLite)."""
    env = {**os.environ, "VOLTLINE_DATA_DIR": str(data_dir), "VOLTLINE_DATABASE_URL": ""}
    command = [sys.executable, "-m", "voltline", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_a_backup_of_a_running_server_restores_and_serves(tmp_path: Path) -> None:
    """The copy is one committed state with the data in it, private (0600), and a server serves it."""
    data = tmp_path / "data"
    created = voltline(data, "users", "create", "--email", "owner@example.com", "--name", "Owner")
    assert created.returncode == 0, created.stderr
    token = voltline(data, "tokens", "create", "--email", "owner@example.com").stdout.strip().splitlines()[-1]
    served = Served(tmp_path, "text")
    try:
        copy = tmp_path / "backup.sqlite3"
        made = voltline(data, "backup", str(copy))
        assert made.returncode == 0, made.stderr
        assert f"to {copy}" in made.stdout and "pages" in made.stdout
        assert copy.stat().st_mode & 0o777 == 0o600
        again = voltline(data, "backup", str(copy))
        assert again.returncode == 2 and "exists" in again.stderr and "--force" in again.stderr
    finally:
        served.stop()
    with sqlite3.connect(copy) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    restored = tmp_path / "restored"
    restored.mkdir(mode=0o700)
    shutil.copy2(copy, restored / "voltline.sqlite3")
    (restored / "secret-key").write_text((data / "secret-key").read_text())
    os.chmod(restored / "secret-key", 0o600)
    served = Served(tmp_path / "restored-run", "text", data_dir=restored)
    try:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        teams = httpx.get(f"http://127.0.0.1:{served.port}/api/v2/teams", headers=headers, timeout=10)
        assert teams.status_code == 200 and teams.json()["data"], teams.text
    finally:
        served.stop()


def test_backup_of_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    """The CLI does not pretend: PostgreSQL has its own tools, and the message says which."""
    env = {
        **os.environ,
        "VOLTLINE_DATA_DIR": str(tmp_path),
        "VOLTLINE_DATABASE_URL": "postgresql+asyncpg://x@127.0.0.1:1/x",
    }
    result = subprocess.run(
        [sys.executable, "-m", "voltline", "backup", str(tmp_path / "b")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "pg_dump" in result.stderr
