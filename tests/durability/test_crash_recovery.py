"""SIGKILL under load: nothing answered is lost (DESIGN "Decisions for the next capabilities": Durability).

A real `voltline serve` process is killed with SIGKILL `KILLS` times at moments drawn from a
seeded `random.Random` while `CHARGERS` chargers send MeterValues (scheduled at `RATE` per
second in total, one outstanding CALL each, so the server's answers set the pace: the rate
reached while every charger is connected is printed), run Start/Stop bursts, get
smart-charging profiles from the control loop (the site's group is too small for all of them),
and an API client creates id tags and changes the site's smart-charging settings. After each
kill, before the server starts again, every MeterValues frame answered so far must be in the
raw table. The chargers then reconnect and send again what was not answered
(tests/support/replaying_chargers.py). After the last restart they finish what is outstanding,
the server is killed once more, and the database must hold: every answered frame exactly once
(also those a charger sent twice), a transaction for every answered StartTransaction with the
meter start and stop the charger sent and nothing else, the id tags the API created, and energy
registers and 15-minute rollups equal to a rebuild from the raw frames with the writer's own
domain functions (tests/support/meter_rebuild.py).

The seed is printed and named in every failure; `VOLTLINE_CRASH_SEED=<n>` replays a run's plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.support.killable_server import Fleet, KillableServer, seed_fleet
from tests.support.meter_rebuild import (
    FrameKey,
    Snapshot,
    max_powers,
    read_frames,
    read_snapshot,
    rebuilt_registers,
    rebuilt_rollups,
    rebuilt_transaction_registers,
    stored_registers,
    stored_rollups,
)
from tests.support.replaying_chargers import Control, Delivered, Ledger, ReplayingCharger

KILLS = 20
CHARGERS = 60
RATE = 2_000  # MeterValues per second asked of the whole fleet
CAPACITY_AMPS = 100  # 40 connectors x 6 A do not fit: the control loop limits and pauses
LOAD_SECONDS = (0.5, 2.0)  # full load before a kill
STORM_KILLS = 0.2  # the share of kills while the chargers reconnect
SERVER_SETTINGS = {"VOLTLINE_OCPP_CALL_TIMEOUT": "5"}
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class Run:
    """The plan's seed and what was measured, for the report and every failure message."""

    seed: int
    backend: str
    lost: list[tuple[int, int]] = field(default_factory=list)  # per kill: (answered frames since last check, missing)
    load_seconds: float = 0.0
    metered_in_load: int = 0
    api_writes: int = 0
    id_tags: list[str] = field(default_factory=list)

    def summary(self, ledger: Ledger) -> str:
        """One paragraph: seed, kills, rates, losses."""
        lost = sum(m for _, m in self.lost)
        answered = sum(a for a, _ in self.lost)
        actions = Counter(d.action for d in ledger.delivered)
        return (
            f"seed={self.seed} backend={self.backend} kills={len(self.lost) + 1} "
            f"MeterValues/s under full load={self.rate():.0f} answered: {dict(actions)} "
            f"replays={ledger.replays} duplicates sent={ledger.duplicates} profiles={ledger.profiles} "
            f"api writes={self.api_writes} lost at the kills: {lost} of {answered} answered frames "
            f"(per kill {[m for _, m in self.lost]})"
        )

    def rate(self) -> float:
        """MeterValues answered per second while every charger was connected."""
        return self.metered_in_load / self.load_seconds if self.load_seconds else 0.0


def frame_keys(delivered: Iterable[Delivered], ids: dict[str, int]) -> dict[FrameKey, tuple[int | None, list[Any]]]:
    """Each answered meter frame (MeterValues, StopTransaction transactionData): its transaction and samples."""
    found: dict[FrameKey, tuple[int | None, list[Any]]] = {}
    for d in delivered:
        if d.action == "MeterValues":
            elements, connector = d.payload["meterValue"], d.payload["connectorId"]
        elif d.action == "StopTransaction":
            elements, connector = d.payload.get("transactionData") or [], 1
        else:
            continue
        for element in elements:
            at = datetime.strptime(element["timestamp"], TIME_FORMAT)
            samples = [(s["value"], s.get("measurand"), s.get("phase")) for s in element["sampledValue"]]
            found[(ids[d.identity], connector, at)] = (d.payload.get("transactionId"), samples)
    return found


async def missing_since(url: str, fleet: Fleet, delivered: list[Delivered]) -> int:
    """How many of these answered frames the raw table does not hold (read while the server is dead)."""
    expected = frame_keys(delivered, dict(fleet.chargers))
    if not expected:
        return 0
    stored = await read_frames(url, fleet.chargers.values(), since=min(key[2] for key in expected))
    return len(set(expected) - {frame.key for frame in stored})


async def api_writes(client: httpx.AsyncClient, fleet: Fleet, control: Control, run: Run, rng: random.Random) -> None:
    """Create id tags and flip the site's smart-charging settings while the server lives (errors while it is dead)."""
    team = fleet.account.team_id
    settings = f"/api/v2/teams/{team}/sites/{fleet.site_id}/smart-charging"
    for n in itertools.count():
        await asyncio.sleep(rng.uniform(0.05, 0.2))
        await control.up.wait()
        with contextlib.suppress(httpx.HTTPError):
            tag = f"CRASH{n:09d}"
            answer = await client.post(f"/api/v2/teams/{team}/id-tags", json={"id_tag": tag})
            if answer.status_code == 201:
                run.id_tags.append(tag)
                run.api_writes += 1
            zone = rng.choice(("Europe/Amsterdam", "UTC", "Europe/Berlin"))
            answer = await client.put(settings, json={"timezone": zone, "smart_charging": "disabled"})
            run.api_writes += answer.status_code == 200


async def restart(server: KillableServer, control: Control) -> None:
    """Start the server (until it is ready), then let the chargers connect."""
    await asyncio.to_thread(server.start)
    control.up.set()


async def until(check: Callable[[], bool], timeout: float) -> bool:
    """Poll the test's own loop until the condition holds; False on timeout."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def load_then_kill(
    server: KillableServer, chargers: list[ReplayingCharger], control: Control, rng: random.Random, run: Run
) -> None:
    """Load, then SIGKILL: in the reconnect storm (`STORM_KILLS`), or after full load with a Start/Stop burst."""
    if rng.random() < STORM_KILLS:
        await asyncio.sleep(rng.uniform(0, 0.5))
    else:
        await until(lambda: all(c.booted for c in chargers), 30)
        seconds = rng.uniform(*LOAD_SECONDS)
        burst_at = rng.uniform(0, seconds) if rng.random() < 0.6 else None
        ledger = chargers[0].ledger
        began, metered = time.monotonic(), len(ledger.meter_values())
        if burst_at is not None:
            await asyncio.sleep(burst_at)
            control.burst()
            seconds = rng.uniform(0, 0.15) if rng.random() < 0.3 else seconds - burst_at
        await asyncio.sleep(seconds)
        run.load_seconds += time.monotonic() - began
        run.metered_in_load += len(ledger.meter_values()) - metered
    control.up.clear()
    await asyncio.to_thread(server.kill)


async def crash_run(server: KillableServer, fleet: Fleet, run: Run) -> Ledger:
    """Start, load, kill and check `KILLS` times; finish the chargers' queues; kill once more."""
    rng = random.Random(run.seed)
    ledger, control = Ledger(), Control()
    url = server.base_url.replace("http://", "ws://") + "/ocpp/"
    start = (datetime.now(UTC) - timedelta(days=2)).replace(tzinfo=None, second=0, microsecond=0)
    chargers = [
        ReplayingCharger(
            url + identity,
            identity,
            fleet.password,
            ledger=ledger,
            control=control,
            rng=random.Random(rng.random()),
            interval=CHARGERS / RATE,
            start=start,
        )
        for identity in fleet.chargers
    ]
    headers = {"Authorization": f"Bearer {fleet.account.token}", "Accept": "application/json"}
    await restart(server, control)
    tasks = [asyncio.create_task(charger.run()) for charger in chargers]
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=5) as client:
        writer = asyncio.create_task(api_writes(client, fleet, control, run, random.Random(rng.random())))
        checked = 0
        for _ in range(KILLS):
            await load_then_kill(server, chargers, control, rng, run)
            await until(lambda: not any(c.connected for c in chargers), 10)
            answered = ledger.delivered[checked:]
            checked += len(answered)
            frames = len(frame_keys(answered, dict(fleet.chargers)))
            run.lost.append((frames, await missing_since(server.database_url, fleet, answered)))
            await restart(server, control)
        # The plan's lives may all be too short for the control loop to reach a charger after its
        # restart (it reads each charger's configuration first); the last one lasts until a profile
        # arrived, so that the assertion below is about the loop, not about the plan.
        await until(lambda: ledger.profiles > 0, 60)
        control.finishing = True
        finished = await until(lambda: all(task.done() for task in tasks), 60)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    await asyncio.to_thread(server.kill)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert finished, f"the chargers did not get their last messages answered; {run.summary(ledger)}"
    return ledger


def frame_problems(snapshot: Snapshot, fleet: Fleet, ledger: Ledger) -> list[str]:
    """Answered frames missing, stored twice, changed, or stored without an answer."""
    expected = frame_keys(ledger.delivered, dict(fleet.chargers))
    counts = Counter(frame.key for frame in snapshot.frames)
    problems = []
    missing = [key for key in expected if key not in counts]
    if missing:
        problems.append(f"{len(missing)} of {len(expected)} answered frames are not stored, e.g. {missing[:3]}")
    twice = [key for key, n in counts.items() if n > 1]
    if twice:
        replayed = sum(d.sends > 1 for d in ledger.delivered)
        problems.append(f"{len(twice)} frames are stored more than once ({replayed} answered calls were sent again)")
    unknown = [key for key in counts if key not in expected]
    if unknown:
        problems.append(f"{len(unknown)} stored frames were never answered, e.g. {unknown[:3]}")
    for frame in snapshot.frames:
        sent = expected.get(frame.key)
        stored = [(s.value, s.measurand, s.phase) for s in frame.samples]
        if sent is not None and (frame.transaction_id != sent[0] or [tuple(s) for s in sent[1]] != stored):
            problems.append(f"frame {frame.key} is stored as {frame.transaction_id} {stored}, was sent as {sent}")
            break
    return problems


def transaction_problems(snapshot: Snapshot, fleet: Fleet, ledger: Ledger) -> list[str]:
    """A transaction per answered start (its id, meter start and stop as sent), none without one."""
    ids = dict(fleet.chargers)
    stored = {int(row["id"]): row for row in snapshot.transactions}
    starts = {int(d.result["transactionId"]): d for d in ledger.delivered if d.action == "StartTransaction"}
    stops = {int(d.payload["transactionId"]): d for d in ledger.delivered if d.action == "StopTransaction"}
    problems = []
    if set(stored) != set(starts):
        problems.append(f"transactions {sorted(set(stored) ^ set(starts))[:5]} are stored or answered, not both")
    for tx_id, start in starts.items():
        row = stored.get(tx_id)
        if row is None:
            continue
        started = datetime.strptime(start.payload["timestamp"], TIME_FORMAT)
        sent = (ids[start.identity], start.payload["meterStart"], started)
        if (row["charger_id"], row["meter_start"], row["started_at"]) != sent:
            problems.append(f"transaction {tx_id} stored {dict(row)}, started as {start.payload}")
        stop = stops.get(tx_id)
        finished = (row["status"], row["meter_stop"]) if stop else (row["status"], None)
        if finished != (("finished", stop.payload["meterStop"]) if stop else ("active", None)):
            problems.append(f"transaction {tx_id} stored {dict(row)}, stopped as {stop and stop.payload}")
    return problems


def derived_problems(snapshot: Snapshot) -> list[str]:
    """Energy registers, rollups and transaction registers equal their rebuild from the raw frames."""
    powers = max_powers(snapshot.connectors)
    problems = []
    rollups, rebuilt = stored_rollups(snapshot.rollups), rebuilt_rollups(snapshot.frames, powers)
    if len(rebuilt) != len({frame.charger_id for frame in snapshot.frames}):
        problems.append(f"only {len(rebuilt)} connectors have energy in their frames")
    wrong = [key for key in set(rollups) | set(rebuilt) if rollups.get(key) != rebuilt.get(key)]
    if wrong:
        key = wrong[0]
        diff = {
            b: (rollups.get(key, {}).get(b), rebuilt.get(key, {}).get(b))
            for b in sorted(set(rollups.get(key, {})) | set(rebuilt.get(key, {})))
            if rollups.get(key, {}).get(b) != rebuilt.get(key, {}).get(b)
        }
        problems.append(f"rollups of {len(wrong)} connectors differ from the rebuild, e.g. {key}: {diff}")
    registers, again = stored_registers(snapshot.registers), rebuilt_registers(snapshot.frames, powers)
    if registers != again:
        wrong = [key for key in set(registers) | set(again) if registers.get(key) != again.get(key)]
        problems.append(f"energy registers differ, e.g. {wrong[0]}: {registers.get(wrong[0])} != {again.get(wrong[0])}")
    highest = rebuilt_transaction_registers(snapshot.frames)
    bad = [(row["id"], row["register_wh"], highest.get(int(row["id"]))) for row in snapshot.transactions]
    bad = [b for b in bad if b[1] != b[2]]
    if bad:
        problems.append(f"{len(bad)} transaction registers differ (id, stored, rebuilt), e.g. {bad[:3]}")
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_nothing_answered_is_lost_when_the_server_is_killed_under_load(
    backend: str, fresh_database: Callable[[str], str], tmp_path: Path
) -> None:
    """DESIGN Durability: answered frames survive SIGKILL, replays are stored once, derived rows equal a rebuild."""
    seed = int(os.environ.get("VOLTLINE_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\ncrash test: seed {seed} on {backend}")
    began = time.monotonic()
    url = fresh_database(backend)
    fleet = asyncio.run(seed_fleet(url, CHARGERS, CAPACITY_AMPS))
    server = KillableServer(url, tmp_path, SERVER_SETTINGS)
    run = Run(seed, backend)
    try:
        ledger = asyncio.run(crash_run(server, fleet, run))
    finally:
        server.kill()
    snapshot = asyncio.run(read_snapshot(url, fleet.chargers.values(), fleet.account.team_id))
    problems = frame_problems(snapshot, fleet, ledger) + transaction_problems(snapshot, fleet, ledger)
    problems += derived_problems(snapshot)
    missing_tags = sorted(set(run.id_tags) - snapshot.id_tags)
    if missing_tags:
        problems.append(f"{len(missing_tags)} of {len(run.id_tags)} id tags created (201) are not stored")
    summary = run.summary(ledger)
    starts = [round(seconds, 1) for seconds in server.start_seconds]
    print(f"crash test: {summary}; {time.monotonic() - began:.1f} s in all, seconds to ready per start {starts}")
    assert not any(missing for _, missing in run.lost) and not problems and not ledger.errors, (
        f"{summary}\nproblems: {problems}\ncharger errors: {ledger.errors[:5]}\nserver log:\n{server.log_tail()}"
    )
    stops = sum(d.action == "StopTransaction" for d in ledger.delivered)
    assert ledger.profiles and ledger.replays and ledger.duplicates and run.api_writes and stops, summary
