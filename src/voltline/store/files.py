"""Private files of the data directory: the SQLite database, the server secret, the demo token.

They are made owner-only whatever the process umask: a new directory 0700, a new file 0600
(set with chmod after creation, since the umask may have taken bits from the requested mode).
A directory or file that already exists belongs to its operator and keeps its mode; when
others may read an existing database or secret file, a warning says so once. SQLite creates its `-wal` and `-shm` files
with the mode of the database file (sqlite.org, "Temporary Files Used By SQLite" and os_unix.c
`findCreateFileMode`), so creating the database file 0600 before SQLite opens it covers them.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

log = logging.getLogger("voltline")

DIR_MODE = 0o700
FILE_MODE = 0o600
_WARNED: set[Path] = set()


def warn_if_shared(path: Path) -> None:
    """Log once when users other than the owner may read or write the file."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077 and path not in _WARNED:
        _WARNED.add(path)
        log.warning("%s can be read by other users (mode %o); chmod 600 it", path, mode)


def ensure_private_dir(path: Path) -> None:
    """Make the directory 0700 if it is missing (parents as usual); leave an existing one as it is."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:  # made by another process meanwhile: theirs to set
        return
    path.chmod(DIR_MODE)


def create_private_file(path: Path, text: str = "", *, replace: bool = False) -> bool:
    """Write a new owner-only file (0600); False when it exists and `replace` is not set.

    Never follows a symbolic link at `path`, so a planted link cannot redirect the write.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if replace else os.O_EXCL)
    try:
        fd = os.open(path, flags, FILE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), FILE_MODE)
        file.write(text)
    return True


def ensure_private_database(database: str) -> None:
    """Create the SQLite database file 0600 (in a 0700 directory) before SQLite does it 0644."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    ensure_private_dir(path.parent)
    if not create_private_file(path):
        warn_if_shared(path)


def sqlite_path(url: str) -> str:
    """The file of an SQLite database URL (`sqlite+aiosqlite:///data/voltline.sqlite3` -> `data/voltline.sqlite3`)."""
    return make_url(url).database or ""


def hold_sqlite_serve_lock(url: str) -> IO[bytes] | None:
    """DESIGN "Cluster": one `serve` per SQLite file; an exclusive lock beside it, held while the file is open.

    Returns the open lock file (keep it: closing it, or the process ending, frees the lock), or None
    when another process holds it. The lock is advisory and local: SQLite's own locking still
    guards every write; this only stops a second server on one file (CLI commands never take it).
    """
    path = Path(f"{sqlite_path(url)}.serve-lock")
    ensure_private_dir(path.parent)
    handle = path.open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def backup_sqlite(source: Path, target: Path, progress: Callable[[int, int], None]) -> int:
    """SQLite's online backup of `source` into a new private file `target` (0600); the pages copied.

    Written to `<target>.partial` and renamed at the end, so a failed backup leaves no half file.
    """
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    create_private_file(partial)
    try:
        with sqlite3.connect(source) as src, sqlite3.connect(partial) as dst:
            src.backup(dst, pages=1024, progress=lambda _status, left, total: progress(total - left, total))
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
        dst.close()
        src.close()
        os.replace(partial, target)
    except (sqlite3.Error, OSError) as error:
        partial.unlink(missing_ok=True)
        raise OSError(str(error)) from error
    return pages
