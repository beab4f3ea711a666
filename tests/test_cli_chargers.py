"""`voltline chargers add|show|list|security|check` against a fresh database (SQLite, and PostgreSQL when set)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS
from tests.support.cli import Cli
from voltline.cli.chargers import IDENTITY_RULE
from voltline.domain.credentials import PINCODE_ALPHABET, check_ocpp_password
from voltline.store import chargers


@pytest.fixture(params=BACKENDS)
def cli(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_database: Callable[[str], str],
) -> Cli:
    """A CLI runner over a fresh data directory (SQLite) or a fresh PostgreSQL database."""
    monkeypatch.chdir(tmp_path)
    url = fresh_database("postgres") if request.param == "postgres" else ""
    return Cli(tmp_path / "data", url)


def test_add_prints_id_uuid_and_pincode_and_show_repeats_them(cli: Cli) -> None:
    result = cli("chargers", "add", "VT_1001")
    assert result.exit_code == 0, result.output
    row = cli.charger("VT_1001")
    assert f"created charger {row['id']} (VT_1001)" in result.stdout
    assert f"uuid:    {row['uuid']}" in result.stdout
    assert f"pincode: {row['pincode']}" in result.stdout
    assert len(row["pincode"]) == 8 and set(row["pincode"]) <= set(PINCODE_ALPHABET)
    assert (row["team_id"], row["site_id"], row["connection_status"], row["password_hash"]) == (
        None,
        None,
        "never_seen",
        None,
    )
    shown = cli("chargers", "show", "VT_1001")
    assert shown.exit_code == 0, shown.output
    for text in ("VT_1001", row["uuid"], "never_seen", row["pincode"], "connection status"):
        assert text in shown.stdout


def test_add_with_a_team_and_a_site(cli: Cli) -> None:
    team_id = cli.team("ann@example.com")
    site_id, root_group_id = cli.site(team_id)
    assert cli("chargers", "add", "VT_TEAM", "--team", str(team_id)).exit_code == 0
    assert cli("chargers", "add", "VT_SITE", "--site", str(site_id)).exit_code == 0
    assert cli("chargers", "add", "VT_BOTH", "--site", str(site_id), "--team", str(team_id)).exit_code == 0
    assert (cli.charger("VT_TEAM")["team_id"], cli.charger("VT_TEAM")["site_id"]) == (team_id, None)
    for identity in ("VT_SITE", "VT_BOTH"):
        row = cli.charger(identity)
        assert (row["team_id"], row["site_id"], row["group_id"]) == (team_id, site_id, root_group_id)
    shown = cli("chargers", "show", "VT_SITE").stdout
    assert f"{team_id} (Ann's Team)" in shown and f"{site_id} (Depot)" in shown


def test_add_stores_the_password_as_an_hmac_with_the_data_dirs_secret(cli: Cli) -> None:
    """DESIGN: OCPP passwords are 16-40 characters, stored as HMAC-SHA256 with a server secret."""
    password = "correct-horse-battery"
    assert cli("chargers", "add", "VT_PW", "--password", password).exit_code == 0
    secret = (cli.data_dir / "secret-key").read_text().strip()
    stored = cli.charger("VT_PW")["password_hash"]
    assert stored != password and check_ocpp_password(secret, password, stored)


@pytest.mark.parametrize("password", ["short", "x" * 41, "sixteen-chars-é-x", "tab\tin-the-middle!!"])
def test_add_refuses_a_bad_password_with_exit_2(cli: Cli, password: str) -> None:
    result = cli("chargers", "add", "VT_BADPW", "--password", password)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --password must be")
    assert cli("chargers", "list").stdout.count("VT_BADPW") == 0


@pytest.mark.parametrize("identity", ["", "   ", "x" * 46, "a b", "a:b", "a/b", "<script>"])
def test_add_refuses_a_bad_identity_with_exit_2(cli: Cli, identity: str) -> None:
    result = cli("chargers", "add", identity)
    assert (result.exit_code, result.stderr) == (2, f"error: IDENTITY must be {IDENTITY_RULE}\n")


def test_add_of_a_duplicate_identity_is_a_one_line_error(cli: Cli) -> None:
    assert cli("chargers", "add", "VT_DUP").exit_code == 0
    pincode = cli.charger("VT_DUP")["pincode"]
    result = cli("chargers", "add", "VT_DUP")
    assert result.exit_code == 1
    assert result.stderr == "error: A charger with identity 'VT_DUP' already exists.\n"
    assert cli.charger("VT_DUP")["pincode"] == pincode


def test_add_refuses_unknown_or_mismatched_teams_and_sites(cli: Cli) -> None:
    team_id = cli.team("bob@example.com")
    other_team = cli.team("cyd@example.com")
    site_id, _root = cli.site(team_id)
    cases = [
        (["--team", "999999"], "error: no team with id 999999\n"),
        (["--site", "999999"], "error: No site with id 999999.\n"),
        (["--site", str(site_id), "--team", str(other_team)], f"error: site {site_id} belongs to team {team_id}, "),
    ]
    for options, message in cases:
        result = cli("chargers", "add", "VT_NOPE", *options)
        assert result.exit_code == 1 and result.stderr.startswith(message), result.stderr
    assert cli("chargers", "add", "VT_NOPE", "--team", "0").exit_code == 2
    assert "VT_NOPE" not in cli("chargers", "list").stdout


def test_show_of_an_unknown_identity_fails(cli: Cli) -> None:
    result = cli("chargers", "show", "VT_GHOST")
    assert (result.exit_code, result.stderr) == (1, "error: no charger with identity VT_GHOST\n")


def test_list_shows_all_chargers_or_one_teams(cli: Cli) -> None:
    first, second = cli.team("dee@example.com"), cli.team("eve@example.com")
    for identity, team in (("VT_A", first), ("VT_B", second), ("VT_C", first)):
        assert cli("chargers", "add", identity, "--team", str(team)).exit_code == 0
    assert cli("chargers", "add", "VT_LOOSE").exit_code == 0
    everything = cli("chargers", "list")
    assert everything.exit_code == 0
    assert re.findall(r"VT_\w+", everything.stdout) == ["VT_A", "VT_B", "VT_C", "VT_LOOSE"]
    assert "connection status" in everything.stdout
    mine = cli("chargers", "list", "--team", str(first)).stdout
    assert re.findall(r"VT_\w+", mine) == ["VT_A", "VT_C"]


# -- security profiles and passwords (DESIGN: Charger security) --------------------------------------------


def secret(cli: Cli) -> str:
    return (cli.data_dir / "secret-key").read_text().strip()


def test_add_puts_a_charger_on_profile_1_and_says_how_to_let_it_connect(cli: Cli) -> None:
    result = cli("chargers", "add", "VT_NEW")
    assert result.exit_code == 0, result.output
    assert (cli.charger("VT_NEW")["security_profile"], cli.charger("VT_NEW")["password_hash"]) == (1, None)
    assert "voltline chargers security VT_NEW --profile 1 --generate" in result.stdout
    assert cli("chargers", "add", "VT_NEW_PW", "--password", "correct-horse-battery").exit_code == 0
    assert cli.charger("VT_NEW_PW")["security_profile"] == 1


def test_security_generates_a_password_and_prints_it_once_on_the_last_line(cli: Cli) -> None:
    assert cli("chargers", "add", "VT_SEC").exit_code == 0
    result = cli("chargers", "security", "VT_SEC", "--profile", "2", "--generate")
    assert result.exit_code == 0, result.output
    password = result.stdout.strip().splitlines()[-1]
    row = cli.charger("VT_SEC")
    assert row["security_profile"] == 2 and check_ocpp_password(secret(cli), password, row["password_hash"])
    assert "security profile 2, password set" in result.stdout


def test_security_sets_or_keeps_the_password(cli: Cli) -> None:
    assert cli("chargers", "add", "VT_KEEP").exit_code == 0
    result = cli("chargers", "security", "VT_KEEP", "--profile", "1", "--password", "correct-horse-battery")
    assert result.exit_code == 0, result.output
    stored = cli.charger("VT_KEEP")["password_hash"]
    assert check_ocpp_password(secret(cli), "correct-horse-battery", stored)
    kept = cli("chargers", "security", "VT_KEEP", "--profile", "0")
    assert kept.exit_code == 0 and "security profile 0, password kept" in kept.stdout
    assert (cli.charger("VT_KEEP")["security_profile"], cli.charger("VT_KEEP")["password_hash"]) == (0, stored)


def test_security_without_a_password_says_the_charger_cannot_connect(cli: Cli) -> None:
    assert cli("chargers", "add", "VT_LOCKED").exit_code == 0
    result = cli("chargers", "security", "VT_LOCKED", "--profile", "2")
    assert result.exit_code == 0, result.output
    assert "cannot connect until it has a password" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["--profile", "3"], 2, "'--profile'"),
        ([], 2, "Missing option '--profile'"),
        (["--profile", "1", "--password", "short"], 2, "error: --password must be 16 to 40 characters"),
        (["--profile", "1", "--password", "correct-horse-battery", "--generate"], 2, "exclude each other"),
    ],
)
def test_security_refuses_bad_arguments(cli: Cli, args: list[str], code: int, text: str) -> None:
    assert cli("chargers", "add", "VT_ARGS").exit_code == 0
    result = cli("chargers", "security", "VT_ARGS", *args)
    assert result.exit_code == code
    assert text in result.output
    assert (cli.charger("VT_ARGS")["security_profile"], cli.charger("VT_ARGS")["password_hash"]) == (1, None)


def test_security_of_an_unknown_identity_fails(cli: Cli) -> None:
    result = cli("chargers", "security", "NOBODY", "--profile", "0")
    assert (result.exit_code, result.stderr) == (1, "error: no charger with identity NOBODY\n")


def test_check_lists_identities_outside_the_rule_and_chargers_that_cannot_connect(cli: Cli) -> None:
    assert cli("chargers", "add", "VT_FINE", "--password", "correct-horse-battery").exit_code == 0
    clean = cli("chargers", "check")
    assert clean.exit_code == 0 and "every identity follows the rule" in clean.stdout

    async def old_rows(conn: Any) -> None:
        await chargers.create_charger(conn, "old one", "ABCD2345", {"security_profile": 0})
        await chargers.create_charger(conn, "a:b", "ABCD2346", {"security_profile": 0})

    cli.store(old_rows)
    assert cli("chargers", "add", "VT_NOPW").exit_code == 0
    result = cli("chargers", "check")
    assert result.exit_code == 0, result.output
    odd, _, locked = result.stdout.partition("without a password")
    assert "'old one'" in odd and "'a:b'" in odd and "VT_FINE" not in result.stdout
    assert "VT_NOPW" in locked and "old one" not in locked
