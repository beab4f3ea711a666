"""What the command line changes is in the audit log as `system` (DESIGN "Services tier"), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import BACKENDS
from tests.support.cli import Cli
from voltline.store.schema import audit_log


@pytest.fixture(params=BACKENDS)
def command_line(request: pytest.FixtureRequest, tmp_path: Path, fresh_database: Callable[[str], str]) -> Cli:
    return Cli(tmp_path / "data", fresh_database("postgres") if request.param == "postgres" else "")


def audit_rows(cli: Cli) -> list[dict[str, Any]]:
    async def read(conn: Any) -> list[dict[str, Any]]:
        return [dict(row) for row in (await conn.execute(select(audit_log).order_by(audit_log.c.id))).mappings()]

    rows: list[dict[str, Any]] = cli.store(read)
    return rows


def test_users_tokens_teams_and_chargers_changed_from_the_command_line_are_recorded_as_system(
    command_line: Cli,
) -> None:
    cli = command_line
    personal = cli.team("ops@example.com")
    fleet = cli("teams", "create", "--name", "Fleet", "--owner", "ops@example.com")
    fleet_id = int(re.search(r"created team (\d+)", fleet.stdout).group(1))  # type: ignore[union-attr]
    token = cli("tokens", "create", "--email", "ops@example.com", "--name", "ci")
    listed = cli("tokens", "list", "--email", "ops@example.com")
    token_id = next(line.split()[1] for line in listed.output.splitlines() if " ci " in line)
    assert cli("tokens", "revoke", token_id).exit_code == 0
    assert cli("chargers", "add", "AUD_1", "--team", str(personal)).exit_code == 0
    assert cli("chargers", "security", "AUD_1", "--profile", "1", "--generate").exit_code == 0
    assert cli("chargers", "lenient", "AUD_1", "on").exit_code == 0
    charger = cli.charger("AUD_1")
    rows = audit_rows(cli)
    assert token.stdout.strip() not in str(rows)
    assert {(row["actor_kind"], row["actor_id"], row["outcome"]) for row in rows} == {("system", None, "ok")}
    assert [(row["team_id"], row["action"], row["object_type"]) for row in rows] == [
        (None, "user.created", "user"),
        (fleet_id, "team.created", "team"),
        (None, "token.created", "token"),
        (None, "token.revoked", "token"),
        (personal, "charger.created", "charger"),
        (personal, "charger.ocpp_settings_changed", "charger"),
        (personal, "charger.ocpp_settings_changed", "charger"),
    ]
    assert rows[3]["object_id"] == token_id
    assert {row["object_id"] for row in rows[4:]} == {charger["uuid"]}
    assert [row["detail"] for row in rows[5:]] == [
        '{"fields":["password_hash","security_profile"]}',
        '{"fields":["lenient"]}',
    ]
