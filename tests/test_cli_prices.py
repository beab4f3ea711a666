"""`voltline prices import|show` against a fresh database (SQLite data dir, and PostgreSQL when set)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS
from tests.support.cli import Cli
from voltline.domain.prices import PriceSlot
from voltline.store.prices import list_prices
from voltline.store.schema import day_ahead_prices

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "prices"
XML_DAY = FIXTURES / "nl_2025-03-12_pt60m.xml"
DAY = (datetime(2025, 3, 11, 23), datetime(2025, 3, 12, 23))


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


def stored(cli: Cli, zone: str, start: datetime = DAY[0], end: datetime = DAY[1]) -> list[PriceSlot]:
    """The zone's stored slots in the window."""
    result: list[PriceSlot] = cli.store(lambda conn: list_prices(conn, zone, start, end))
    return result


def import_stamps(cli: Cli) -> list[Any]:
    """Every row's imported_at, in key order."""

    async def read(conn: Any) -> list[Any]:
        query = day_ahead_prices.select().order_by(day_ahead_prices.c.zone, day_ahead_prices.c.slot_start)
        return [row.imported_at for row in (await conn.execute(query)).all()]

    result: list[Any] = cli.store(read)
    return result


def test_importing_an_entsoe_file_stores_its_slots_and_summarises_them(cli: Cli) -> None:
    """spec/smart-charging.md R-60..R-62: the A44 day is stored as 24 UTC slots of zone NL."""
    result = cli("prices", "import", str(XML_DAY), "--zone", "nl")
    assert result.exit_code == 0, result.output
    assert "imported 24 slots for NL: 24 new, 0 updated, 0 unchanged" in result.stdout
    assert "first slot: 2025-03-11 23:00 UTC, last slot: 2025-03-12 22:00 UTC" in result.stdout
    assert "resolution: 60-minute slots" in result.stdout
    slots = stored(cli, "NL")
    assert len(slots) == 24 and slots[0] == PriceSlot(DAY[0], datetime(2025, 3, 12), Decimal(90))
    assert stored(cli, "BE") == []


def test_re_importing_the_same_file_changes_nothing_and_a_republished_slot_replaces_its_price(
    cli: Cli, tmp_path: Path
) -> None:
    """Idempotent import; a republished price wins (the CSV fixture holds the same day)."""
    assert cli("prices", "import", str(XML_DAY), "--zone", "NL").exit_code == 0
    stamps = import_stamps(cli)
    again = cli("prices", "import", str(FIXTURES / "nl_2025-03-12.csv"), "--zone", "NL")
    assert again.exit_code == 0, again.output
    assert "0 new, 0 updated, 24 unchanged" in again.stdout
    assert import_stamps(cli) == stamps
    republished = tmp_path / "republished.csv"
    republished.write_text("start,end,price\n2025-03-12T04:00:00+01:00,2025-03-12T05:00:00+01:00,-1.5\n")
    result = cli("prices", "import", str(republished), "--zone", "NL", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert "imported 1 slots for NL: 0 new, 1 updated, 0 unchanged" in result.stdout
    assert [slot.price for slot in stored(cli, "NL")][3:6] == [Decimal(75), Decimal("-1.5"), Decimal(72)]


def test_hourly_prices_over_quarter_hours_replace_them_so_a_day_never_mixes(cli: Cli, tmp_path: Path) -> None:
    """spec/smart-charging.md R-60: never mix resolutions; the 15-minute fixture is replaced by hourly slots."""
    quarter = cli("prices", "import", str(FIXTURES / "de-lu_2025-10-01_pt15m.xml"), "--zone", "DE-LU")
    assert quarter.exit_code == 0 and "96 new" in quarter.stdout and "15-minute slots" in quarter.stdout
    hourly = tmp_path / "hourly.csv"
    starts = [datetime(2025, 9, 30, 22) + timedelta(hours=h) for h in range(24)]
    hourly.write_text("start,price\n" + "".join(f"{s:%Y-%m-%dT%H:%M}Z,{h}.5\n" for h, s in enumerate(starts)))
    result = cli("prices", "import", str(hourly), "--zone", "DE-LU")
    assert result.exit_code == 0, result.output
    assert "0 new, 24 updated, 0 unchanged, 72 replaced" in result.stdout
    slots = stored(cli, "DE-LU", datetime(2025, 9, 30), datetime(2025, 10, 2))
    assert [(s.start, s.end - s.start) for s in slots] == [(s, timedelta(hours=1)) for s in starts]


def test_a_large_file_imports_in_batches_behind_a_progress_bar(cli: Cli, tmp_path: Path) -> None:
    """Over 5000 slots: several write batches; every slot lands once."""
    big = tmp_path / "year.csv"
    first = datetime(2025, 1, 1)
    rows = (f"{first + timedelta(minutes=15 * i):%Y-%m-%dT%H:%M}Z,{i % 300 - 50}.01\n" for i in range(6000))
    big.write_text("start,price\n" + "".join(rows))
    result = cli("prices", "import", str(big), "--zone", "AT")
    assert result.exit_code == 0, result.output
    assert "imported 6000 slots for AT: 6000 new" in result.stdout
    slots = stored(cli, "AT", first, first + timedelta(days=70))
    assert len(slots) == 6000 and slots[-1].price == Decimal(5999 % 300 - 50) + Decimal("0.01")


def test_show_lists_a_days_prices_in_eur_per_mwh_and_ct_per_kwh(cli: Cli) -> None:
    assert cli("prices", "import", str(XML_DAY), "--zone", "NL").exit_code == 0
    result = cli("prices", "show", "--zone", "NL", "--date", "2025-03-12")
    assert result.exit_code == 0, result.output
    assert "NL 2025-03-12" in result.stdout
    assert "2025-03-12 04:00" in result.stdout and "72.00" in result.stdout and "7.200" in result.stdout
    assert "2025-03-11 23:00" not in result.stdout  # another UTC day
    empty = cli("prices", "show", "--zone", "NL", "--date", "2025-03-14")
    assert empty.exit_code == 1 and "no prices for NL on 2025-03-14" in empty.output


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["import", "FILE", "--zone", "Netherlands"], 2, "'Netherlands' is not a price zone"),
        (["import", "FILE"], 2, "Missing option '--zone'"),
        (["import", "missing.xml", "--zone", "NL"], 2, "does not exist"),
        (["import", "FILE", "--zone", "NL", "--format", "json"], 2, "Invalid value for '--format'"),
        (["import", "FILE", "--zone", "NL", "--format", "csv"], 1, "line 1: the header must be"),
        (["import", "ACK", "--zone", "NL"], 1, "ENTSO-E has no prices for this period yet"),
        (["import", "BAD", "--zone", "NL"], 1, "bad.csv: line 3: '2025-03-12 01:00' has no UTC offset"),
        (["import", "EMPTY", "--zone", "NL"], 1, "the CSV file is empty"),
        (["show", "--zone", "NL", "--date", "12-03-2025"], 2, "'12-03-2025' is not a date"),
    ],
)
def test_bad_files_and_arguments_give_one_clear_line_and_an_exit_code(
    cli: Cli, tmp_path: Path, args: list[str], code: int, text: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("start,price\n2025-03-12T00:00Z,1\n2025-03-12 01:00,2\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("\n")
    files = {"FILE": str(XML_DAY), "ACK": str(FIXTURES / "acknowledgement.xml"), "BAD": str(bad), "EMPTY": str(empty)}
    result = cli("prices", *[files.get(arg, arg) for arg in args])
    assert result.exit_code == code, result.output
    assert text in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["prices"], ["prices", "import"], ["prices", "show"]])
def test_every_prices_command_has_help(cli: Cli, command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output
    if command[-1] == "import":
        assert "start,end,price" in result.output and "EUR/MWh" in result.output
