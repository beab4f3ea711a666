"""A real `voltline serve` process that the crash test kills with SIGKILL and starts again on the same database.

The fleet it serves is made in the store before the first start, the way `voltline chargers add
--site` makes chargers: a team with a token, a site with load management whose root group is
too small for every connector at once (so the control loop sends profiles), and chargers with
an OCPP password (HTTP Basic, security profile 1). `seed_fleet` is the one place to change
when chargers need another security set-up.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from voltline.domain.credentials import hash_ocpp_password, new_pincode
from voltline.domain.ids import SiteId
from voltline.services import accounts
from voltline.store import chargers as store_chargers
from voltline.store import sites as store_sites
from voltline.store.engine import Database

SECRET_KEY = "crash-test-secret-key"
OCPP_PASSWORD = "crash-test-password-0001"  # OCPP passwords are 16-40 characters (DESIGN: OCPP)
START_TIMEOUT = 60.0
SITE = {
    "name": "Crash depot",
    "street": "Main",
    "house_number": 1,
    "postal_code": "1234AB",
    "city": "Utrecht",
    "country": "NL",
    "load_management": True,
}


@dataclass(frozen=True)
class Fleet:
    """What `seed_fleet` made: the owning account, the site, and each charger's id by identity."""

    account: accounts.Account
    site_id: int
    chargers: Mapping[str, int]
    password: str = OCPP_PASSWORD


async def seed_fleet(url: str, count: int, capacity_amps: int) -> Fleet:
    """A team, a site with load management and a root group of `capacity_amps`, and `count` chargers on it."""
    db = Database(url)
    try:
        account = await accounts.create_account(db, email=f"crash-{uuid.uuid4().hex[:8]}@example.com", name="Crash")
        made: dict[str, int] = {}
        async with db.write() as conn:
            site = await store_sites.create_site(conn, account.team_id, {**SITE, "main_fuse_amperage": capacity_amps})
            team_id, group_id = await store_chargers.get_site_placement(conn, SiteId(site["id"]))
            placement = {"team_id": team_id, "site_id": site["id"], "group_id": group_id}
            password_hash = hash_ocpp_password(SECRET_KEY, OCPP_PASSWORD)
            for n in range(count):
                identity = f"CRASH-{uuid.uuid4().hex[:6]}-{n:03d}"
                values = {**placement, "password_hash": password_hash}
                row = await store_chargers.create_charger(conn, identity, new_pincode(), values)
                made[identity] = int(row["id"])
        return Fleet(account, int(site["id"]), made)
    finally:
        await db.close()


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class KillableServer:
    """`python -m voltline serve` on a fixed port; `start` waits until it answers, `kill` is SIGKILL."""

    database_url: str
    data_dir: Path
    settings: Mapping[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    start_seconds: list[float] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The HTTP address."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Where every start's stdout and stderr go (appended)."""
        return self.data_dir / "server.log"

    def environment(self) -> dict[str, str]:
        """The process environment: the database, no rate limit, a fixed secret, the default message log."""
        return {
            **os.environ,
            "VOLTLINE_DATABASE_URL": self.database_url,
            "VOLTLINE_DATA_DIR": str(self.data_dir),
            "VOLTLINE_RATE_LIMIT": "0",
            "VOLTLINE_SECRET_KEY": SECRET_KEY,
            "VOLTLINE_OCPP_LOG": "default",
            "VOLTLINE_LOG_LEVEL": "warning",
            **self.settings,
        }

    def start(self) -> float:
        """Start the server and wait until it is ready (`_ready`); the seconds that took."""
        began = time.monotonic()
        self.starts += 1
        command = [sys.executable, "-m", "voltline", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            log.write(f"\n---- start {self.starts}\n".encode())
            log.flush()
            self.process = subprocess.Popen(command, env=self.environment(), stdout=log, stderr=log)
        self._wait_ready(began)
        took = time.monotonic() - began
        self.start_seconds.append(took)
        return took

    def _wait_ready(self, began: float) -> None:
        # A bare TCP probe while the server starts (uvicorn listens once its lifespan started up), so
        # that waiting costs the starting process no CPU; then HTTP on one client.
        assert self.process is not None
        with httpx.Client(base_url=self.base_url, timeout=1) as client:
            while time.monotonic() - began < START_TIMEOUT:
                if self.process.poll() is not None:
                    raise AssertionError(f"voltline serve exited with {self.process.returncode}:\n{self.log_tail()}")
                with suppress(OSError, httpx.HTTPError):
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    if self._ready(client):
                        return
                time.sleep(0.02)
        raise AssertionError(f"voltline serve did not answer within {START_TIMEOUT} s:\n{self.log_tail()}")

    @staticmethod
    def _ready(client: httpx.Client) -> bool:
        """`/readyz` answers 200 (database writes work); `/healthz` where the server has no `/readyz`."""
        ready = client.get("/readyz")
        if ready.status_code == 404:
            ready = client.get("/healthz")
        return ready.status_code == 200

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing queued is flushed."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        """A graceful stop (SIGINT), SIGKILL after 30 s; nothing when it is not running."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for failure messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
