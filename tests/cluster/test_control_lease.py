"""The control lease across real processes (DESIGN "Cluster"): one gateway, two workers, PostgreSQL and NATS.

The control loops run in exactly one worker, the holder of the control lease. When it dies
(SIGKILL) or stalls (SIGSTOP) the other worker takes over within 10 s and goes on balancing the
site; a stalled holder that wakes up (SIGCONT) after the takeover has lost the lease, its late
commands are refused by the gateway (the lease epoch), and it steps down. The holder goes as soon
as the chargers run on its profiles, with their answers possibly not yet stored. Throughout, the
simulated chargers check at every profile they receive that no current rises while the limits
they run on exceed the group's capacity (spec/smart-charging.md R-85, Σ ≤ C; a new session's
failsafe counts, OCPP 1.6 §3.13). Which worker holds the lease is read from
each worker's `/metrics` (`voltline_control_lease_held`, `voltline_control_lease_epoch`).
Needs `VOLTLINE_TEST_POSTGRES_URL` and `VOLTLINE_TEST_NATS_URL` (`.ci/run` sets both).
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import NATS_URL, needs_cluster
from tests.support.killable_server import Fleet, KillableServer, seed_fleet
from tests.support.smart_e2e import Ledger, SmartCharger, big_car, offered_are, running

pytestmark = [
    needs_cluster,
    pytest.mark.slow,
]
METRICS_TOKEN = "lease-test-metrics-token"
CAPACITY = 32
TAKEOVER_SECONDS = 10.0  # the bound DESIGN "Cluster" (and the issue) ask of a takeover


@dataclass
class Cluster:
    """The processes on one fresh database and NATS subject prefix, and the seeded site."""

    fleet: Fleet
    gateway: KillableServer
    workers: list[KillableServer]


@pytest.fixture
def cluster(fresh_database: Callable[[str], str], tmp_path: Path) -> Iterator[Cluster]:
    """A gateway, then worker 0 (which takes the lease), then worker 1 (standing by)."""
    url = fresh_database("postgres")
    fleet = asyncio.run(seed_fleet(url, 3, CAPACITY))
    common = {
        "VOLTLINE_BUS_URL": NATS_URL,
        "VOLTLINE_BUS_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
        "VOLTLINE_METRICS_TOKEN": METRICS_TOKEN,
        "VOLTLINE_SMART_DEBOUNCE": "0.2",
        "VOLTLINE_SMART_RETRY_INTERVAL": "1",
        "VOLTLINE_OCPP_CALL_TIMEOUT": "5",
        "VOLTLINE_LOG_LEVEL": "info",
    }
    servers = []
    for name, role in (("gateway", "gateway"), ("worker0", "worker"), ("worker1", "worker")):
        (tmp_path / name).mkdir()
        servers.append(KillableServer(url, tmp_path / name, {**common, "VOLTLINE_ROLE": role}))
    try:
        for server in servers:
            server.start()
        yield Cluster(fleet, servers[0], servers[1:])
    finally:
        for server in servers:
            if server.process is not None:
                server.process.send_signal(signal.SIGCONT)  # a stopped process cannot stop gracefully
            server.stop()


async def lease_of(server: KillableServer) -> tuple[int, int]:
    """(held 0|1, epoch) from the worker's /metrics."""
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as client:
        text = (await client.get("/metrics", headers=headers)).text
    held = re.search(r"^voltline_control_lease_held (\S+)$", text, re.MULTILINE)
    epoch = re.search(r"^voltline_control_lease_epoch (\S+)$", text, re.MULTILINE)
    assert held is not None and epoch is not None, text[:2000]
    return int(float(held.group(1))), int(float(epoch.group(1)))


async def until_holds(server: KillableServer, since: float, what: str) -> tuple[float, int]:
    """Wait until the worker holds the lease; (seconds since `since`, its epoch)."""
    while time.monotonic() - since < TAKEOVER_SECONDS:
        held, epoch = await lease_of(server)
        if held:
            return time.monotonic() - since, epoch
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: no takeover within {TAKEOVER_SECONDS} s\n{server.log_tail()}")


def chargers_of(cluster: Cluster, ledger: Ledger) -> list[SmartCharger]:
    """One simulated charger per seeded identity, on the gateway, checking Σ ≤ C at each profile."""
    base = cluster.gateway.base_url.replace("http://", "ws://") + "/ocpp"
    return [
        SmartCharger(
            base,
            identity,
            connectors=1,
            password=cluster.fleet.password,
            meter_interval=1.0,
            auto_sessions=False,
            session_seconds=100_000,
            unplug_seconds=0.05,
            cars=big_car,
            ledger=ledger,
        )
        for identity in sorted(cluster.fleet.chargers)
    ]


def assert_fits(ledger: Ledger) -> None:
    """R-85 at every profile the chargers received: no current rose while the group was above C."""
    assert ledger.frames > 0, "the chargers received profiles"
    assert ledger.violations == [], f"a current rose with Σ above {CAPACITY} A at (frame, Σ): {ledger.violations}"
    print(f"profiles: {ledger.frames}, most the cars could draw at one: {ledger.peak:.1f} A")


def test_sigkill_of_the_lease_holder_hands_control_to_the_other_worker(cluster: Cluster) -> None:
    """DESIGN "Cluster": the holder dies; the other worker takes over within 10 s and balances the site."""
    first, second = cluster.workers
    ledger = Ledger(CAPACITY, physical=True)
    chargers = chargers_of(cluster, ledger)

    async def scenario() -> None:
        assert await lease_of(first) == (1, 1) and await lease_of(second) == (0, 0), "one holder"
        async with running(chargers):
            for charger in chargers[:2]:
                charger.begin()
            await offered_are(chargers[:2], [16.0, 16.0], "two share the group under worker 0")
            killed = time.monotonic()
            first.kill()
            took, epoch = await until_holds(second, killed, "after SIGKILL")
            assert epoch == 2
            chargers[2].begin()
            await offered_are(chargers, [10.6, 10.6, 10.6], "a third arrives under worker 1")
            print(f"takeover after SIGKILL: {took:.1f} s")
        assert_fits(ledger)

    asyncio.run(scenario())


def test_a_stalled_holder_loses_the_lease_and_steps_down_when_it_resumes(cluster: Cluster) -> None:
    """DESIGN "Cluster": SIGSTOP hands control over within 10 s; after SIGCONT the old holder sends nothing.

    The group's limits fit at every profile the chargers receive, also after the old holder resumed.
    """
    first, second = cluster.workers
    ledger = Ledger(CAPACITY, physical=True)
    chargers = chargers_of(cluster, ledger)

    async def scenario() -> None:
        async with running(chargers):
            for charger in chargers[:2]:
                charger.begin()
            await offered_are(chargers[:2], [16.0, 16.0], "two share the group under worker 0")
            assert first.process is not None
            stopped = time.monotonic()
            first.process.send_signal(signal.SIGSTOP)
            took, epoch = await until_holds(second, stopped, "after SIGSTOP")
            assert epoch == 2
            chargers[2].begin()  # worker 0 hears of it too, once it runs again
            await offered_are(chargers, [10.6, 10.6, 10.6], "a third arrives under worker 1")
            first.process.send_signal(signal.SIGCONT)
            resumed = time.monotonic()
            while (await lease_of(first))[0]:
                assert time.monotonic() - resumed < TAKEOVER_SECONDS, "the old holder still holds"
                await asyncio.sleep(0.1)
            assert await lease_of(second) == (1, 2), "the new holder keeps the lease"
            chargers[0].finish()
            await offered_are(chargers[1:], [16.0, 16.0], "one leaves; worker 1 gives the others more")
            print(f"takeover after SIGSTOP: {took:.1f} s")
        assert_fits(ledger)
        log = first.log_path.read_text(errors="replace")
        assert "control lease acquired (epoch 1)" in log and "control lease lost (epoch 1)" in log, log[-3000:]
        assert "control lease acquired (epoch 2)" in second.log_path.read_text(errors="replace")

    asyncio.run(scenario())
