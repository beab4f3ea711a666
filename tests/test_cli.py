"""The `voltline` command line (DESIGN: every command has --help, one-line errors, reliable exit codes)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from voltline.cli import main


@pytest.fixture
def voltline(tmp_path: Path) -> CliRunner:
    return CliRunner(env={"VOLTLINE_DATA_DIR": str(tmp_path / "data"), "VOLTLINE_DATABASE_URL": ""})


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["migrate"],
        ["demo"],
        ["users", "create"],
        ["teams", "create"],
        ["tokens", "create"],
        ["tokens", "list"],
        ["tokens", "revoke"],
        ["chargers", "add"],
        ["simulate"],
    ],
)
def test_every_command_has_help(voltline: CliRunner, command: list[str]) -> None:
    result = run(voltline, *command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_users_teams_and_tokens_work_together(voltline: CliRunner) -> None:
    created = run(voltline, "users", "create", "--email", "ops@example.com", "--name", "Ops")
    assert created.exit_code == 0 and "personal team" in created.output
    team = run(voltline, "teams", "create", "--name", "Fleet", "--owner", "ops@example.com", "--type", "Company")
    assert team.exit_code == 0 and "owned by ops@example.com" in team.output
    token = run(voltline, "tokens", "create", "--email", "ops@example.com", "--name", "ci")
    assert token.exit_code == 0
    assert token.stdout.strip().splitlines()[-1].startswith("vlt_")
    listed = run(voltline, "tokens", "list", "--email", "ops@example.com")
    assert "ci" in listed.output and token.stdout.strip() not in listed.output
    token_id = next(line.split()[1] for line in listed.output.splitlines() if " ci " in line)
    assert run(voltline, "tokens", "revoke", token_id).exit_code == 0
    again = run(voltline, "tokens", "revoke", token_id)
    assert again.exit_code == 1 and f"no active token with id {token_id}" in again.output


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["users", "create", "--email", "not-an-email", "--name", "X"], 2, "is not a valid email address"),
        (["users", "create", "--name", "X"], 2, "Missing option '--email'"),
        (["tokens", "create", "--email", "nobody@example.com"], 1, "No user with email nobody@example.com."),
        (["teams", "create", "--name", "T", "--owner", "nobody@example.com"], 1, "no user with email"),
        (["teams", "create", "--name", "T", "--owner", "a@b.co", "--type", "Pirate"], 2, "Invalid value for '--type'"),
        (["tokens", "revoke", "zero"], 2, "Invalid value for 'TOKEN_ID'"),
        (["serve", "--port", "70000"], 2, "Invalid value for '--port'"),
    ],
)
def test_bad_arguments_give_one_clear_line_and_a_non_zero_exit(
    voltline: CliRunner, args: list[str], code: int, text: str
) -> None:
    result = run(voltline, *args)
    assert result.exit_code == code
    assert text in result.output


def test_a_duplicate_user_is_refused(voltline: CliRunner) -> None:
    assert run(voltline, "users", "create", "--email", "dup@example.com", "--name", "A").exit_code == 0
    second = run(voltline, "users", "create", "--email", "dup@example.com", "--name", "B")
    assert second.exit_code == 1
    assert "already exists" in second.output


def test_demo_creates_the_login_once_and_keeps_the_token_private(voltline: CliRunner, tmp_path: Path) -> None:
    """The demo token is kept in <data dir>/demo-token, mode 0600, and printed on every run."""
    first = run(voltline, "demo")
    token_file = tmp_path / "data" / "demo-token"
    token = token_file.read_text().strip()
    assert first.exit_code == 0 and "(created)" in first.output
    assert f"curl -H 'Authorization: Bearer {token}' http://127.0.0.1:8000/api/v2/teams" in first.output
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    second = run(voltline, "demo")
    assert "(existing)" in second.output and token in second.output
    assert token_file.read_text().strip() == token


def test_demo_prints_the_address_the_server_is_configured_to_listen_on(tmp_path: Path) -> None:
    env = {"VOLTLINE_DATA_DIR": str(tmp_path / "data"), "VOLTLINE_DATABASE_URL": "", "VOLTLINE_PORT": "8765"}
    result = CliRunner(env=env).invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8765/api/v2/teams" in result.output
    assert "docs:  http://127.0.0.1:8765/docs" in result.output


def test_migrate_reports_the_revision(voltline: CliRunner) -> None:
    result = run(voltline, "migrate")
    assert result.exit_code == 0
    assert "database at revision" in result.output


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    runner = CliRunner(env={"VOLTLINE_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"})
    result = runner.invoke(main, ["users", "create", "--email", "a@b.co", "--name", "A"])
    assert result.exit_code == 1
    assert "cannot reach the database" in result.output
