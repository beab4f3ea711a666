"""What the running process holds: settings, database, clock, bus, commands, the meter writer, metrics, the secret."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from voltline.bus import Bus, MemoryBus
from voltline.clock import Clock
from voltline.metrics import Metrics
from voltline.services.commands import Commands
from voltline.settings import Settings
from voltline.store.engine import Database
from voltline.store.files import create_private_file, ensure_private_dir, warn_if_shared
from voltline.store.writer import MeterWriter

SECRET_FILE = "secret-key"


def ensure_secret_key(settings: Settings) -> str:
    """The configured secret, or one kept in `<data dir>/secret-key` (made on first use, 0600 in a 0700 dir)."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / SECRET_FILE
    ensure_private_dir(path.parent)
    if not create_private_file(path, secrets.token_hex(32) + "\n"):
        warn_if_shared(path)
    return path.read_text().strip()


def node_id(settings: Settings) -> str:
    """DESIGN "Cluster": this process's name on the bus and on the chargers whose sockets it holds.

    `VOLTLINE_NODE_NAME` when set (unique per process, kept across restarts), else
    `<hostname>:<pid>:<random>`, new at every start.
    """
    return settings.node_name or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class Runtime:
    """Shared by every handler through `request.app.state.runtime`."""

    settings: Settings
    db: Database
    secret_key: str
    clock: Clock = field(default_factory=Clock)
    bus: Bus = field(default_factory=MemoryBus)
    metrics: Metrics = field(default_factory=Metrics)  # this app's own registry (voltline/metrics.py)
    node_id: str = ""  # empty: `node_id(settings)`
    commands: Commands = field(init=False)
    writer: MeterWriter = field(init=False)

    def __post_init__(self) -> None:
        self.node_id = self.node_id or node_id(self.settings)
        self.commands = Commands(self.bus, self.settings.ocpp_call_timeout, self.metrics)
        self.writer = MeterWriter(self.db, self.clock, hold_seconds=self.settings.ocpp_hold_seconds)
        self.writer.observe_batch = self.metrics.observe_batch
        self.metrics.gauge("voltline_writer_queue_frames", "Meter frames waiting to be written.", (), self._backlog)

    @property
    def role(self) -> str:
        """DESIGN "Cluster": all, api, gateway or worker."""
        return self.settings.role

    def _backlog(self) -> dict[tuple[str, ...], float]:
        return {(): self.writer.backlog}
