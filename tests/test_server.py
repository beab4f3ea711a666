"""`voltline serve` logging: VOLTLINE_LOG_FORMAT=json makes every line, uvicorn's included, one JSON object."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.ocpp.gateway_support import unique_identity, wait_for
from tests.support.served import Served
from voltline.server import JsonFormatter

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR|DEBUG)\s+[\w.]+: ")


@pytest.fixture
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    process = Served(tmp_path, request.param)
    try:
        yield process
    finally:
        process.stop()


def visit(served: Served) -> str:
    """An HTTP request and a charger that connects (auto-registered) and sends a Heartbeat; its identity."""
    assert httpx.get(f"http://127.0.0.1:{served.port}/healthz").status_code == 200
    identity = unique_identity("LOG")
    with connect(f"ws://127.0.0.1:{served.port}/ocpp/{identity}", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        ws.send(json.dumps([2, "1", "Heartbeat", {}]))
        assert json.loads(ws.recv(10))[0] == 3
    return identity


@pytest.mark.parametrize("served", ["json"], indirect=True)
def test_json_format_writes_one_json_object_per_line(served: Served) -> None:
    identity = visit(served)
    wait_for(lambda: any("offline" in line for line in served.lines()), 10)
    served.stop()
    entries: list[dict[str, Any]] = [json.loads(line) for line in served.lines()]
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry), entry
        assert ISO_UTC.match(entry["time"]), entry
        assert entry["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    loggers = {entry["logger"] for entry in entries}
    assert {"uvicorn.error", "uvicorn.access", "voltline.ocpp"} <= loggers
    access = next(e for e in entries if e["logger"] == "uvicorn.access" and e.get("path") == "/healthz")
    assert (access["method"], access["status"]) == ("GET", 200)
    assert any(e["logger"] == "voltline.ocpp" and f"{identity}: auto-registered" in e["message"] for e in entries)


@pytest.mark.parametrize("served", ["text"], indirect=True)
def test_text_format_stays_plain_lines(served: Served) -> None:
    identity = visit(served)
    wait_for(lambda: any("offline" in line for line in served.lines()), 10)
    lines = served.lines()
    assert not any(line.startswith("{") for line in lines)
    ours = [line for line in lines if " voltline.ocpp: " in line]
    assert ours and all(TEXT_LINE.match(line) for line in ours), ours
    assert any(f"{identity}: auto-registered" in line for line in ours)


def test_json_lines_carry_the_exception_text_and_stay_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("voltline.test").makeRecord(
            "voltline.test", logging.ERROR, __file__, 1, "failed for %s\nsecond line", ("CP-1",), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "ERROR",
        "voltline.test",
        "failed for CP-1\nsecond line",
    )
    assert entry["exception"].startswith("Traceback") and entry["exception"].endswith("ValueError: boom")
    assert ISO_UTC.match(entry["time"])


def test_a_second_serve_on_one_sqlite_file_stops_at_start_with_one_line(tmp_path: Path) -> None:
    """DESIGN "Cluster": several processes need PostgreSQL and a bus; the second on SQLite fails at once.

    The first keeps serving; CLI commands on the same file are unaffected.
    """
    first = Served(tmp_path, "text")
    try:
        env = {**os.environ, "VOLTLINE_DATA_DIR": str(tmp_path / "data"), "VOLTLINE_DATABASE_URL": ""}
        second = subprocess.run(
            [sys.executable, "-m", "voltline", "serve", "--port", "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "another voltline serve already uses the SQLite database" in lines[0], lines
        assert "PostgreSQL and VOLTLINE_BUS_URL" in lines[0]
        assert httpx.get(f"http://127.0.0.1:{first.port}/healthz", timeout=5).status_code == 200
        migrated = subprocess.run(
            [sys.executable, "-m", "voltline", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr
    finally:
        first.stop()
