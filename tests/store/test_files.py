"""The data directory and its files are owner-only whatever the umask (store/files.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveServer, server_settings
from voltline.services import accounts
from voltline.store import migrate
from voltline.store.files import create_private_file


def mode(path: Path) -> int:
    """The permission bits of a file."""
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o000, 0o022], ids=["umask-000", "umask-022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under a permissive umask (the process-wide one is restored after)."""
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def start_on(data_dir: Path) -> LiveServer:
    """A server on the embedded SQLite database of `data_dir`, with a generated secret."""
    settings = server_settings("", str(data_dir), secret_key="")
    live = LiveServer(settings, "sqlite")
    live.start()
    return live


def test_a_new_data_dir_and_every_file_in_it_are_owner_only(umask: int, tmp_path: Path) -> None:
    data_dir = tmp_path / "srv" / "data"
    live = start_on(data_dir)
    try:
        live.account()  # a write, so the WAL and its index exist while the server runs
        live.run(lambda: accounts.ensure_demo(live.runtime.db, str(data_dir)))
        files = {name: mode(data_dir / name) for name in os.listdir(data_dir)}
    finally:
        live.stop()
    assert mode(data_dir) == 0o700
    assert files == {
        "voltline.sqlite3": 0o600,
        "voltline.sqlite3-wal": 0o600,
        "voltline.sqlite3-shm": 0o600,
        "secret-key": 0o600,
        "demo-token": 0o600,
    }


def test_voltline_migrate_creates_the_database_owner_only(umask: int, tmp_path: Path) -> None:
    database = tmp_path / "new" / "voltline.sqlite3"
    asyncio.run(migrate.upgrade(f"sqlite+aiosqlite:///{database}"))
    assert (mode(database.parent), mode(database)) == (0o700, 0o600)


def test_an_existing_data_dir_and_database_keep_their_modes_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o750)
    database = data_dir / "voltline.sqlite3"
    database.touch()
    database.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="voltline"):
        live = start_on(data_dir)
        live.stop()
    assert (mode(data_dir), mode(database), mode(data_dir / "secret-key")) == (0o750, 0o644, 0o600)
    assert f"{database} can be read by other users (mode 644)" in caplog.text


def test_a_private_file_is_never_written_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    (tmp_path / "secret-key").symlink_to(target)
    with pytest.raises(OSError):
        create_private_file(tmp_path / "secret-key", "x", replace=True)
    assert target.read_text() == "keep"
