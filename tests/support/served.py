"""A `voltline serve` process on a free port (SQLite in its data directory), as a user starts it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.ocpp.gateway_support import wait_for

LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class Served:
    """A `voltline serve` process on a free port, its stdout and stderr kept in files."""

    def __init__(self, tmp_path: Path, log_format: str, data_dir: Path | None = None) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.out, self.err = tmp_path / "stdout", tmp_path / "stderr"
        env = {
            **os.environ,
            "VOLTLINE_DATA_DIR": str(data_dir or tmp_path / "data"),
            "VOLTLINE_DATABASE_URL": "",
            "VOLTLINE_LOG_FORMAT": log_format,
            "VOLTLINE_OCPP_AUTO_REGISTER": "true",
            "VOLTLINE_SMART_CONTROL": "false",
        }
        with self.out.open("wb") as out, self.err.open("wb") as err:
            command = [sys.executable, "-m", "voltline", "serve", "--port", "0"]
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        wait_for(lambda: LISTENING.search(self.err.read_text()) is not None or self.process.poll() is not None, 60)
        found = LISTENING.search(self.err.read_text())
        assert found is not None, self.err.read_text()
        self.port = int(found.group(1))

    def lines(self) -> list[str]:
        """Every non-empty line the process wrote, stderr then stdout."""
        text = self.err.read_text() + self.out.read_text()
        return [line for line in text.splitlines() if line.strip()]

    def stop(self) -> None:
        """End the process and wait for it."""
        self.process.terminate()
        self.process.wait(30)
