"""A fleet of simulated charge points: staggered starts, a live summary, and a final report."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.table import Table

from voltline.simulator.charger import SimulatedCharger


@dataclass(frozen=True)
class FleetOptions:
    """What to simulate: how many chargers, named how, and how they behave."""

    url: str
    chargers: int = 1
    prefix: str = "SIM-"
    connectors: int = 2
    meter_interval: float = 10.0
    session_seconds: float = 120.0
    idle_seconds: float = 15.0
    seed: int = 0
    password: str | None = None
    passwords: dict[str, str] = field(default_factory=dict)  # per identity, over `password`
    phases: int = 3
    max_current: float = 32.0
    stagger: float = 0.02

    def identities(self) -> list[str]:
        """The charger identities: prefix and a four-digit number from 1."""
        return [f"{self.prefix}{number:04d}" for number in range(1, self.chargers + 1)]


@dataclass(frozen=True)
class Summary:
    """The fleet at one moment."""

    chargers: int
    connected: int
    booted: int
    charging: int
    started: int
    stopped: int
    meter_values: int
    messages: int
    errors: int
    energy_wh: int
    elapsed: float
    rate: float = 0.0
    last_error: str | None = field(default=None, compare=False)


class Fleet:
    """N simulated chargers run together."""

    def __init__(self, options: FleetOptions) -> None:
        self.options = options
        self.chargers = [
            SimulatedCharger(
                options.url,
                identity,
                connectors=options.connectors,
                meter_interval=options.meter_interval,
                password=options.passwords.get(identity, options.password),
                phases=options.phases,
                max_current=options.max_current,
                seed=options.seed,
                session_seconds=options.session_seconds,
                idle_seconds=options.idle_seconds,
            )
            for identity in options.identities()
        ]
        self._registers = sum(sum(cp.registers.values()) for cp in self.chargers)

    def summary(self, elapsed: float, previous: Summary | None = None) -> Summary:
        """Counts over every charger; `rate` is messages per second since `previous` (or since the start)."""
        chargers = self.chargers
        messages = sum(cp.counters.sent + cp.counters.received for cp in chargers)
        since = previous.elapsed if previous else 0.0
        rate = (messages - (previous.messages if previous else 0)) / max(elapsed - since, 1e-9)
        return Summary(
            chargers=len(chargers),
            connected=sum(cp.connection_state == "accepted" for cp in chargers),
            booted=sum(cp.counters.boots > 0 for cp in chargers),
            charging=sum(status == "Charging" for cp in chargers for status in cp.statuses.values()),
            started=sum(cp.counters.transactions_started for cp in chargers),
            stopped=sum(cp.counters.transactions_stopped for cp in chargers),
            meter_values=sum(cp.counters.meter_values for cp in chargers),
            messages=messages,
            errors=sum(cp.counters.errors for cp in chargers),
            energy_wh=sum(sum(cp.registers.values()) for cp in chargers) - self._registers,
            elapsed=elapsed,
            rate=rate,
            last_error=next((cp.last_error for cp in reversed(chargers) if cp.last_error), None),
        )

    async def run(
        self, duration: float, on_tick: Callable[[Summary], None] | None = None, stop: asyncio.Event | None = None
    ) -> Summary:
        """Run every charger for `duration` seconds (or until `stop`), then stop them cleanly."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        began = loop.time()
        tasks = [
            asyncio.create_task(self._start(cp, index * self.options.stagger, stop))
            for index, cp in enumerate(self.chargers)
        ]
        previous = None
        while (left := duration - (loop.time() - began)) > 0 and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(1.0, left))
            previous = self.summary(loop.time() - began, previous)
            if on_tick is not None:
                on_tick(previous)
        stop.set()
        await asyncio.gather(*tasks)
        return self.summary(loop.time() - began)

    @staticmethod
    async def _start(cp: SimulatedCharger, delay: float, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        if not stop.is_set():
            await cp.run(stop)


def summary_table(summary: Summary, title: str = "voltline simulate") -> Table:
    """The live summary: one row of counters."""
    table = Table(title=title)
    for column in ("elapsed", "connected", "charging", "tx started", "tx stopped", "MeterValues", "errors", "msgs/s"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{summary.elapsed:.0f} s",
        f"{summary.connected}/{summary.chargers}",
        str(summary.charging),
        str(summary.started),
        str(summary.stopped),
        str(summary.meter_values),
        str(summary.errors),
        f"{summary.rate:.1f}",
    )
    return table


def summary_line(summary: Summary) -> str:
    """The live summary as one line, for output that is not a terminal."""
    return (
        f"[{summary.elapsed:.0f} s] connected {summary.connected}/{summary.chargers}, charging {summary.charging}, "
        f"transactions {summary.started} started / {summary.stopped} stopped, MeterValues {summary.meter_values}, "
        f"errors {summary.errors}, {summary.rate:.1f} msgs/s"
    )


def report_table(summary: Summary) -> Table:
    """The final report: totals of the whole run."""
    table = Table("", "total", title="simulation report")
    rows = [
        ("chargers", str(summary.chargers)),
        ("booted", str(summary.booted)),
        ("transactions started", str(summary.started)),
        ("transactions stopped", str(summary.stopped)),
        ("MeterValues sent", str(summary.meter_values)),
        ("messages", str(summary.messages)),
        ("errors", str(summary.errors)),
        ("energy", f"{summary.energy_wh / 1000:.2f} kWh"),
        ("duration", f"{summary.elapsed:.1f} s"),
        ("msgs/s", f"{summary.messages / max(summary.elapsed, 1e-9):.1f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def chargers_table(fleet: Fleet, limit: int = 20) -> Table:
    """Per-charger counters: every charger of a small fleet, else those with errors first."""
    chargers = sorted(fleet.chargers, key=lambda cp: -cp.counters.errors)[:limit]
    table = Table(
        "charger", "boots", "tx", "MeterValues", "limit A / drawn A", "errors", "last error", title="chargers"
    )
    for cp in sorted(chargers, key=lambda cp: cp.identity):
        counters = cp.counters
        table.add_row(
            cp.identity,
            str(counters.boots),
            f"{counters.transactions_started}/{counters.transactions_stopped}",
            str(counters.meter_values),
            connector_limits(cp),
            str(counters.errors),
            cp.last_error or "-",
        )
    return table


def connector_limits(cp: SimulatedCharger) -> str:
    """Each connector's installed charging-profile limit and the current its car draws: `1: 10.6/10.6`."""
    parts = []
    for number, conn in sorted(cp.connectors.items()):
        limit = cp.limits[number]
        parts.append(f"{number}: {'-' if limit is None else f'{limit:.1f}'}/{conn.meter.current:.1f}")
    return " ".join(parts)
