"""`voltline serve --role` start-up checks (DESIGN "Cluster"): one clear line and a non-zero exit, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NEEDS = ("PostgreSQL (VOLTLINE_DATABASE_URL)", "VOLTLINE_BUS_URL", "an explicit VOLTLINE_SECRET_KEY")


def serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`voltline serve` with the given arguments and `VOLTLINE_*` variables (and none from this shell)."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("VOLTLINE_")}
    environment = {**clean, "VOLTLINE_DATA_DIR": str(tmp_path / "data"), **env}
    command = [sys.executable, "-m", "voltline", "serve", "--port", "0", *args]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60, check=False)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("role", ["api", "gateway", "worker"])
def test_a_part_role_on_sqlite_without_a_bus_or_secret_names_all_three(tmp_path: Path, role: str) -> None:
    result = serve(tmp_path, "--role", role)
    assert result.returncode == 1
    line = one_line(result)
    assert f"--role {role}" in line and all(need in line for need in NEEDS), line
    assert not (tmp_path / "data").exists(), "nothing was made before the check"


def test_the_role_comes_from_voltline_role_too(tmp_path: Path) -> None:
    result = serve(
        tmp_path,
        VOLTLINE_ROLE="gateway",
        VOLTLINE_DATABASE_URL="postgresql://postgres@127.0.0.1:1/none",
        VOLTLINE_BUS_URL="nats://127.0.0.1:1",
    )
    assert result.returncode == 1
    line = one_line(result)
    assert "--role gateway" in line and "an explicit VOLTLINE_SECRET_KEY" in line, line
    assert "PostgreSQL" not in line and "VOLTLINE_BUS_URL" not in line, line


def test_an_unknown_role_is_refused_in_one_line(tmp_path: Path) -> None:
    flag = serve(tmp_path, "--role", "scheduler")
    assert flag.returncode == 2 and "Invalid value for '--role'" in flag.stderr
    variable = serve(tmp_path, VOLTLINE_ROLE="scheduler")
    assert variable.returncode != 0
    assert "VOLTLINE_ROLE must be one of all, api, gateway, worker" in one_line(variable)
