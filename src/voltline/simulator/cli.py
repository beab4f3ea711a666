"""`voltline simulate`: run simulated OCPP 1.6J charge points against a server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal

import click
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from voltline.simulator.fleet import (
    Fleet,
    FleetOptions,
    Summary,
    chargers_table,
    report_table,
    summary_line,
    summary_table,
)
from voltline.simulator.registration import RegistrationError, register_chargers

MAX_IDENTITY = 45
LINE_EVERY = 10.0


def _check_arguments(url: str, prefix: str, count: int, api: dict[str, str | None]) -> None:
    if not url.startswith(("ws://", "wss://")):
        raise click.BadParameter("must start with ws:// or wss://", param_hint="--url")
    if len(prefix) + max(4, len(str(count))) > MAX_IDENTITY or "/" in prefix:
        raise click.BadParameter(
            f"identities must be at most {MAX_IDENTITY} characters, without '/'", param_hint="--prefix"
        )
    if api["api_url"] is None and (api["site"] or api["team"]):
        raise click.UsageError("--site and --team need --api-url")
    if api["api_url"] is not None and not (api["token"] and api["site"]):
        raise click.UsageError("--api-url needs --token and --site")
    if api["api_url"] is not None and not api["api_url"].startswith(("http://", "https://")):
        raise click.BadParameter("must start with http:// or https://", param_hint="--api-url")


def _register(console: Console, options: FleetOptions, api: dict[str, str | None]) -> FleetOptions:
    """Register the identities and give each a password; the options with those passwords."""
    identities = options.identities()
    columns = (TextColumn("registering chargers"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task("register", total=len(identities))
        try:
            done = asyncio.run(
                register_chargers(
                    str(api["api_url"]),
                    str(api["token"]),
                    str(api["site"]),
                    identities,
                    team=api["team"],
                    password=options.password,
                    advance=lambda: progress.advance(task),
                )
            )
        except RegistrationError as error:
            raise click.ClickException(f"registration failed: {error}") from None
    console.print(f"registered {done.created} new and {done.existing} existing chargers on team {done.team}")
    return dataclasses.replace(options, passwords=done.passwords)


async def _simulate(console: Console, fleet: Fleet, duration: float) -> Summary:
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    if console.is_terminal:
        with Live(summary_table(fleet.summary(0.0)), console=console, refresh_per_second=1) as live:
            return await fleet.run(duration, lambda summary: live.update(summary_table(summary)), stop)
    printed = [0.0]

    def line(summary: Summary) -> None:
        if summary.elapsed - printed[0] >= LINE_EVERY:
            printed[0] = summary.elapsed
            console.print(summary_line(summary))

    return await fleet.run(duration, line, stop)


@click.command("simulate")
@click.option(
    "--url",
    default="ws://127.0.0.1:8000/ocpp",
    show_default=True,
    help="OCPP endpoint; a charger connects to URL/IDENTITY.",
)
@click.option(
    "--chargers", "count", type=click.IntRange(1, 100_000), default=1, show_default=True, help="How many charge points."
)
@click.option(
    "--prefix", default="SIM-", show_default=True, help="Identity prefix; identities are PREFIX0001, PREFIX0002..."
)
@click.option(
    "--connectors", type=click.IntRange(1, 16), default=2, show_default=True, help="Connectors per charge point."
)
@click.option(
    "--duration",
    type=click.FloatRange(0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds to run before a clean stop.",
)
@click.option(
    "--meter-interval",
    type=click.FloatRange(0.05),
    default=10.0,
    show_default=True,
    help="Seconds between MeterValues.",
)
@click.option(
    "--session-minutes",
    type=click.FloatRange(0, min_open=True),
    default=2.0,
    show_default=True,
    help="Average charging session length.",
)
@click.option(
    "--idle-seconds", type=click.FloatRange(0), default=15.0, show_default=True, help="Average pause between sessions."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; the same seed replays the same run.")
@click.option(
    "--password",
    help="OCPP password, sent with HTTP Basic auth; with --api-url it is set on each charger (default: generated).",
)
@click.option(
    "--phases", type=click.Choice(["1", "3"]), default="3", show_default=True, help="Phases of each charge point."
)
@click.option(
    "--max-current",
    type=click.FloatRange(6, 80),
    default=32.0,
    show_default=True,
    help="Connector maximum, A per phase.",
)
@click.option(
    "--api-url",
    help="Register the identities first through this REST API (e.g. http://127.0.0.1:8000) and set their passwords.",
)
@click.option("--token", envvar="VOLTLINE_TOKEN", help="API token for --api-url (or VOLTLINE_TOKEN).")
@click.option("--site", help="Site (id or uuid) the identities are registered on.")
@click.option("--team", help="Team (id or uuid) of the site; default: the token's first team.")
def simulate(
    *,
    url: str,
    count: int,
    prefix: str,
    connectors: int,
    duration: float,
    meter_interval: float,
    session_minutes: float,
    idle_seconds: float,
    seed: int,
    password: str | None,
    phases: str,
    max_current: float,
    api_url: str | None,
    token: str | None,
    site: str | None,
    team: str | None,
) -> None:
    """Run simulated OCPP 1.6J charge points: boot, sessions with meter values, answers to every command."""
    api = {"api_url": api_url, "token": token, "site": site, "team": team}
    _check_arguments(url, prefix, count, api)
    options = FleetOptions(
        url=url,
        chargers=count,
        prefix=prefix,
        connectors=connectors,
        meter_interval=meter_interval,
        session_seconds=session_minutes * 60,
        idle_seconds=idle_seconds,
        seed=seed,
        password=password,
        phases=int(phases),
        max_current=max_current,
    )
    console = Console(highlight=False)
    if api_url is not None:
        options = _register(console, options, api)
    fleet = Fleet(options)
    summary = asyncio.run(_simulate(console, fleet, duration))
    console.print(report_table(summary))
    if count <= 20 or summary.errors:
        console.print(chargers_table(fleet))
    if summary.booted == 0:
        raise click.ClickException(f"no charger could boot at {url}: {summary.last_error or 'no answer'}")
