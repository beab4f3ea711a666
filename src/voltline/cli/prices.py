"""`voltline prices import|show`: day-ahead prices from ENTSO-E A44 XML or CSV files (spec §6)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from voltline.cli.base import fail, out, run_with_db, settings_from
from voltline.domain.prices import PriceSlot, check_zone
from voltline.errors import VoltlineError
from voltline.smart.prices import ct_per_kwh, parse_prices
from voltline.store.engine import Database
from voltline.store.prices import UpsertCounts, get_prices, store_prices

PROGRESS_FROM = 5000  # slots; smaller imports finish before a bar would be worth drawing
CSV_HELP = """
\b
FILE is an ENTSO-E day-ahead price document (Publication_MarketDocument, type A44, EUR/MWh;
PT15M/PT30M/PT60M; positions omitted under curve A03 repeat the previous price) or a CSV file:
    start,end,price
    2025-03-12T00:00:00+01:00,2025-03-12T01:00:00+01:00,95.37
or with `start,price` (the slot length is the smallest step between starts). Times are ISO-8601
with an offset or Z; prices are EUR/MWh with a decimal point; slots last 15, 30 or 60 minutes;
gaps are allowed; blank lines and lines starting with # are skipped. Importing the same file
again changes nothing; a republished slot replaces the stored price.
"""


@click.group("prices")
def prices_group() -> None:
    """Import and show day-ahead prices per bidding zone."""


def _zone(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return check_zone(value)
    except VoltlineError as error:
        raise click.BadParameter(str(error)) from None


@prices_group.command("import", epilog=CSV_HELP)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--zone", required=True, callback=_zone, help="Bidding zone of the prices, e.g. NL, DE-LU, SE3.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "entsoe", "csv"]),
    default="auto",
    show_default=True,
    help="File format; auto: XML is ENTSO-E, anything else CSV.",
)
@click.pass_context
def prices_import(ctx: click.Context, file: Path, zone: str, fmt: str) -> None:
    """Import a price file for a bidding zone and summarise what changed."""
    try:
        slots = parse_prices(file.read_bytes(), fmt)
    except OSError as error:
        fail(f"cannot read {file}: {error.strerror}")
    except VoltlineError as error:
        fail(f"{escape(str(file))}: {escape(str(error))}")
    if not slots:
        fail(f"{escape(str(file))}: no price slots in the file")
    counts = run_with_db(settings_from(ctx), lambda db: _store(db, zone, slots))
    _summary(zone, slots, counts)


async def _store(db: Database, zone: str, slots: list[PriceSlot]) -> UpsertCounts:
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, transient=True, disable=len(slots) < PROGRESS_FROM) as bar:
        task = bar.add_task("import", total=len(slots))
        return await store_prices(db, zone, slots, progress=lambda n: bar.advance(task, n))


def _summary(zone: str, slots: list[PriceSlot], counts: UpsertCounts) -> None:
    lengths = sorted({int((slot.end - slot.start).total_seconds() // 60) for slot in slots})
    resolution = " and ".join(f"{minutes}-minute" for minutes in lengths)
    out.print(
        f"imported {len(slots)} slots for {zone}: {counts.inserted} new, {counts.updated} updated, "
        f"{counts.unchanged} unchanged" + (f", {counts.removed} replaced" if counts.removed else "")
    )
    out.print(f"  first slot: {slots[0].start:%Y-%m-%d %H:%M} UTC, last slot: {slots[-1].start:%Y-%m-%d %H:%M} UTC")
    out.print(f"  resolution: {resolution} slots")


def _date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    try:
        return None if value is None else date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date in the form YYYY-MM-DD") from None


@prices_group.command("show")
@click.option("--zone", required=True, callback=_zone, help="Bidding zone, e.g. NL, DE-LU.")
@click.option("--date", "day", callback=_date, help="UTC day to show, YYYY-MM-DD (default: today).")
@click.pass_context
def prices_show(ctx: click.Context, zone: str, day: date | None) -> None:
    """Show a zone's stored prices for one UTC day, in EUR/MWh and ct/kWh."""
    start = datetime.combine(day or datetime.now(UTC).date(), time(0))
    slots = run_with_db(settings_from(ctx), lambda db: get_prices(db, zone, start, start + timedelta(days=1)))
    if not slots:
        fail(f"no prices for {zone} on {start:%Y-%m-%d}")
    table = Table("start (UTC)", "end (UTC)", "EUR/MWh", "ct/kWh", title=f"{zone} {start:%Y-%m-%d}")
    for slot in slots:
        cents = ct_per_kwh(slot.price)
        table.add_row(f"{slot.start:%Y-%m-%d %H:%M}", f"{slot.end:%H:%M}", f"{slot.price}", f"{cents:.3f}")
    out.print(table)
