"""Cluster benchmark: memory per idle charger against the `ocpp` library, and many chargers across gateways.

Method (DESIGN.md "Benchmarks", "Cluster"). Two parts, each optional:

`--idle N[,N...]` (default 2000): side by side in one run, with the same load generator
(bench/_ocpp_client.py, `--clients` processes), a fresh `voltline serve` on a fresh SQLite
file and the `ocpp`-library central system (bench/ocpplib_server.py); with `--echo` also the bare
uvicorn + Starlette route that `voltline serve` is built on (bench/echo_server.py): the floor.
For each: start the server, connect and boot one warm-up charger, RSS with 0; connect and boot
N chargers that then stay idle, RSS with N. Memory per charger = (RSS with N - RSS with 0) / N.

`--cluster N`: N chargers over `--gateways` server processes, each on its own loopback address
(127.0.0.2, 127.0.0.3, ...; the per-process open-files limit of the machine caps one process
near 20,000 sockets), plus one more process on 127.0.0.1 that serves the API and holds no
charger. All run `voltline serve` on one fresh PostgreSQL database (seeded with bench/_seed.py)
with VOLTLINE_BUS_URL (NATS, a subject prefix of their own), one VOLTLINE_SECRET_KEY and smart
control off; `--role gateway|api` is used when this `voltline serve` has it, `all` otherwise.
Generator processes (at most `--per-generator` sockets each) connect and boot the chargers,
which then heartbeat every 300 s and answer the gateways' pings (every 60 s). While they hold
the sockets for `--hold` seconds, GetConfiguration commands go open loop at `--command-rate`
per second through the API process to random chargers (latency from the scheduled send time);
the gateways' RSS is sampled every 10 s and every socket the server closes is counted. Then one
gateway is SIGKILLed and restarted, and its chargers (new generator processes: the old ones
lost their sockets, as real chargers would) connect again; the time from the kill until every
one of them is booted on the restarted gateway is the recovery time.

    .venv/bin/python bench/cluster.py                                  # idle, 2,000 chargers, side by side
    .venv/bin/python bench/cluster.py --idle 2000,10000 --clients 4
    .venv/bin/python bench/cluster.py --idle 0 --cluster 5000 --gateways 2 --hold 60   # a quick cluster run
    .venv/bin/python bench/cluster.py --idle 0 --cluster 50000 --gateways 4 --markdown
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import random
import resource
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from _generator import GeneratorProcess
from _report import code_version, free_port, machine
from _seed import Seeded, create_postgres, drop_postgres, seed

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLIENT = HERE / "_ocpp_client.py"
DOC = ROOT / "docs" / "benchmarks.md"
RUNS = "## Cluster runs (appended by `bench/cluster.py --markdown`)"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_NATS = "nats://127.0.0.1:4222"
KIB, MIB = 1024, 1024 * 1024
GOAL_RSS_MIB = 1536  # the gateways' total RSS with 50,000 chargers
GOAL_P99_MS = 100.0  # command latency through the API process
GOAL_RECOVERY_S = 180.0  # every charger of a restarted gateway back
HEARTBEAT_S = 300.0
PING_S = 60.0


def rss(pid: int) -> int:
    """Resident set size in bytes."""
    return int(psutil.Process(pid).memory_info().rss)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def listening(host: str, port: int) -> bool:
    """The address accepts a TCP connection."""
    with suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


class Generator(GeneratorProcess):
    """One load-generator process (bench/_ocpp_client.py) and the JSON lines it printed."""

    @classmethod
    async def start(cls, host: str, port: int, first: int, count: int, *, hold: float, concurrency: int) -> Generator:
        """Chargers BENCH-<first>... on host:port, heartbeating every 300 s once told to go."""
        command = [sys.executable, str(CLIENT), "--host", host, "--port", str(port)]
        command += ["--first", str(first), "--count", str(count), "--action", "heartbeat"]
        command += ["--rate", str(max(count, 1) / HEARTBEAT_S), "--warmup", "0", "--duration", str(hold)]
        command += ["--drain", "5", "--progress", "10", "--concurrency", str(concurrency)]
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**20
        )
        return cls(proc)

    async def stop(self) -> None:
        """End the process (its sockets close)."""
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


class Server:
    """One server process under test."""

    def __init__(self, command: list[str], env: dict[str, str], host: str, port: int, log: Path) -> None:
        self.command, self.env, self.host, self.port, self.log = command, env, host, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 120) -> None:
        """Start and wait until it listens."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.command, env=self.env, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited early:\n{self.log.read_text()[-3000:]}")
            if await asyncio.to_thread(listening, self.host, self.port):
                return
            await asyncio.sleep(0.2)
        raise SystemExit(f"server did not listen within {timeout} s:\n{self.log.read_text()[-3000:]}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    async def stop(self) -> None:
        """SIGINT, then SIGKILL after 30 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(self.proc.wait, 30)
        except subprocess.TimeoutExpired:
            self.kill()


def voltline_env(url: str, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `voltline serve` under test (DESIGN "Benchmarks")."""
    return {
        **os.environ,
        "VOLTLINE_DATABASE_URL": url,
        "VOLTLINE_DATA_DIR": str(workdir),
        "VOLTLINE_RATE_LIMIT": "0",
        "VOLTLINE_OCPP_LOG": "default",
        "VOLTLINE_LOG_LEVEL": "warning",
        "VOLTLINE_SECRET_KEY": "bench-cluster-secret",
        "VOLTLINE_OCPP_HEARTBEAT_INTERVAL": str(int(HEARTBEAT_S)),
        "VOLTLINE_OCPP_PING_INTERVAL": str(PING_S),
        **extra,
    }


def serve_command(host: str, port: int, role: str | None) -> list[str]:
    """`python -m voltline serve` on host:port, with `--role` when given."""
    command = [sys.executable, "-m", "voltline", "serve", "--host", host, "--port", str(port)]
    return [*command, "--role", role] if role else command


def has_role_option() -> bool:
    """Whether this checkout's `voltline serve` takes `--role` (DESIGN "Cluster")."""
    done = subprocess.run(
        [sys.executable, "-m", "voltline", "serve", "--help"], capture_output=True, text=True, check=False
    )
    return "--role" in done.stdout


# ---------------------------------------------------------------------------------------------
# Part 1: memory per idle charger, Voltline against the `ocpp` library, side by side


@dataclass
class Idle:
    """RSS of one target with 0 and with N idle chargers."""

    target: str
    chargers: int
    rss_zero: int = 0
    rss_connected: int = 0
    setup_s: float = 0.0

    @property
    def per_charger_kib(self) -> float:
        return (self.rss_connected - self.rss_zero) / self.chargers / KIB


async def idle_one(args: argparse.Namespace, target: str, chargers: int, workdir: Path) -> Idle:
    """Start the target, warm it up with one charger, measure RSS at 0 and at N."""
    port = free_port()
    log = workdir / f"{target}-{port}.log"
    if target == "voltline":
        url = f"sqlite+aiosqlite:///{workdir / f'idle-{uuid.uuid4().hex[:8]}.sqlite3'}"
        await seed(url, chargers=chargers + 1, sites=max(1, chargers // 10))
        server = Server(serve_command("127.0.0.1", port, None), voltline_env(url, workdir), "127.0.0.1", port, log)
    else:
        script = {"ocpplib": "ocpplib_server.py", "echo": "echo_server.py"}[target]
        command = [sys.executable, str(HERE / script), "--port", str(port)]
        server = Server(command, dict(os.environ), "127.0.0.1", port, log)
    result = Idle(target, chargers)
    await server.start()
    generators: list[Generator] = []
    try:
        warm = await Generator.start("127.0.0.1", port, chargers, 1, hold=3600, concurrency=1)
        generators.append(warm)
        await warm.wait_for("ready", 60)
        await asyncio.sleep(2)
        result.rss_zero = rss(server.pid)
        share = math.ceil(chargers / args.clients)
        for n in range(args.clients):
            first, count = n * share, min(share, chargers - n * share)
            if count > 0:
                generators.append(await Generator.start("127.0.0.1", port, first, count, hold=3600, concurrency=50))
        readies = [await g.wait_for("ready", 900) for g in generators[1:]]
        result.setup_s = max(r["setup_s"] for r in readies)
        await asyncio.sleep(3)
        result.rss_connected = rss(server.pid)
    finally:
        for generator in generators:
            await generator.stop()
        await server.stop()
    return result


async def idle_part(args: argparse.Namespace) -> list[Idle]:
    """Both targets at every N, one after the other, in this run."""
    results = []
    with tempfile.TemporaryDirectory(prefix="voltline-cluster-") as tmp:
        for chargers in args.idle:
            for target in ("voltline", "ocpplib", *(["echo"] if args.echo else [])):
                result = await idle_one(args, target, chargers, Path(tmp))
                results.append(result)
                print(
                    f"idle {target:8s} N={chargers:6d}: RSS {result.rss_zero / MIB:.1f} MiB with 0, "
                    f"{result.rss_connected / MIB:.1f} MiB with N; {result.per_charger_kib:.1f} KiB per charger "
                    f"(set-up {result.setup_s:.1f} s)",
                    flush=True,
                )
    return results


# ---------------------------------------------------------------------------------------------
# Part 2: the cluster


@dataclass
class ClusterRun:
    """What the cluster run measured."""

    chargers: int
    gateways: int
    roles: str
    hold_s: float
    setup_s: float = 0.0
    connected: int = 0
    rss_zero: list[int] = field(default_factory=list)
    rss_connected: list[int] = field(default_factory=list)
    rss_max_total: int = 0
    disconnects: int = 0
    heartbeats_acked: int = 0
    commands: int = 0
    command_status: dict[str, int] = field(default_factory=dict)
    command_ms: dict[str, float | None] = field(default_factory=dict)
    command_late: int = 0
    recovery_s: float | None = None
    restarted_chargers: int = 0
    notes: list[str] = field(default_factory=list)


async def send_commands(run: ClusterRun, api: str, seeded: Seeded, *, rate: float, seconds: float) -> None:
    """`commands` in a process of its own (DESIGN "Benchmarks": the load generator is its own process)."""
    plan = {"api": api, "seeded": dataclasses.asdict(seeded), "rate": rate, "seconds": seconds}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--send-commands", json.dumps(plan), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    result = json.loads(out.decode().strip().splitlines()[-1])
    run.commands, run.command_status = result["commands"], result["command_status"]
    run.command_ms, run.command_late = result["command_ms"], result["command_late"]


async def command_process(plan: dict[str, Any]) -> None:
    """The command generator's process: send for `seconds`, print the outcome as one JSON line."""
    seeded = plan["seeded"]
    seeded = Seeded(seeded["team_id"], seeded["token"], tuple(seeded["charger_ids"]), seeded["database"])  # type: ignore[arg-type]
    run = ClusterRun(0, 0, "", 0.0)
    await commands(run, plan["api"], seeded, rate=plan["rate"], until=time.monotonic() + plan["seconds"])
    keys = ("commands", "command_status", "command_ms", "command_late")
    print(json.dumps({key: getattr(run, key) for key in keys}), flush=True)


async def commands(run: ClusterRun, api: str, seeded: Seeded, *, rate: float, until: float) -> None:
    """GetConfiguration of random chargers through the API process, open loop at `rate` per second."""
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {seeded.token}", "Accept": "application/json"}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    tasks: set[asyncio.Task[None]] = set()

    async def one(client: httpx.AsyncClient, scheduled: float) -> None:
        charger = random.randint(*seeded.charger_ids)
        path = f"/api/v2/teams/{seeded.team_id}/chargers/{charger}/commands/configuration"
        try:
            response = await client.get(path, headers=headers)
            status = str(response.status_code)
        except httpx.HTTPError as error:
            status = type(error).__name__
        latencies.append(time.monotonic() - scheduled)
        run.command_status[status] = run.command_status.get(status, 0) + 1

    async with httpx.AsyncClient(base_url=api, timeout=30, limits=limits) as client:
        start = time.monotonic()
        k = 0
        while True:
            scheduled = start + k / rate
            if scheduled >= until:
                break
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.005:
                run.command_late += 1
            task = asyncio.create_task(one(client, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            k += 1
        if tasks:
            await asyncio.gather(*tasks)
    run.commands = len(latencies)
    for name, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
        value = percentile(latencies, q)
        run.command_ms[name] = None if value is None else round(value * 1000, 2)


def blocks(chargers: int, gateways: int, per_generator: int) -> list[list[tuple[int, int]]]:
    """For each gateway, its generators' (first, count): contiguous identities, at most per_generator each."""
    per_gateway = math.ceil(chargers / gateways)
    out = []
    for g in range(gateways):
        first, count = g * per_gateway, max(0, min(per_gateway, chargers - g * per_gateway))
        parts = max(1, math.ceil(count / per_generator))
        share = math.ceil(count / parts) if count else 0
        out.append([(first + i * share, min(share, count - i * share)) for i in range(parts) if count - i * share > 0])
    return out


async def cluster_part(args: argparse.Namespace) -> ClusterRun:
    """Start the processes, connect, hold with commands, restart a gateway, measure."""
    roles = has_role_option()
    run = ClusterRun(args.cluster, args.gateways, "gateway/api" if roles else "all", args.hold)
    if not roles:
        run.notes.append(
            "this checkout's `voltline serve` has no --role: every process runs role `all` (smart control off)"
        )
    name = f"voltline_cluster_{uuid.uuid4().hex[:10]}"
    url = await create_postgres(args.postgres_url, name)
    servers: list[Server] = []
    generators: list[list[Generator]] = []
    try:
        seeded = await seed(url, chargers=args.cluster, sites=max(1, args.cluster // 10))
        with tempfile.TemporaryDirectory(prefix="voltline-cluster-") as tmp:
            workdir = Path(tmp)
            env = voltline_env(
                url,
                workdir,
                VOLTLINE_BUS_URL=args.nats_url,
                VOLTLINE_BUS_PREFIX=f"bench{uuid.uuid4().hex[:10]}",
                VOLTLINE_SMART_CONTROL="false",
            )
            port = free_port()
            hosts = [f"127.0.0.{g + 2}" for g in range(args.gateways)]
            servers += [gateway(host, port, env, roles=roles, log=workdir / f"gateway-{host}.log") for host in hosts]
            api = Server(
                serve_command("127.0.0.1", port, "api" if roles else None), env, "127.0.0.1", port, workdir / "api.log"
            )
            for server in [*servers, api]:
                await server.start()
            await asyncio.sleep(2)
            run.rss_zero = [rss(s.pid) for s in servers]
            plan = blocks(args.cluster, args.gateways, args.per_generator)
            started = time.monotonic()
            generators += [await start_block(args, host, port, parts) for host, parts in zip(hosts, plan, strict=True)]
            readies = [await gen.wait_for("ready", args.setup_timeout) for gens in generators for gen in gens]
            run.setup_s = round(time.monotonic() - started, 1)
            run.connected = sum(r["chargers"] for r in readies)
            print(f"cluster: {run.connected} chargers connected and booted in {run.setup_s} s", flush=True)
            await asyncio.sleep(5)
            run.rss_connected = [rss(s.pid) for s in servers]
            run.rss_max_total = sum(run.rss_connected)
            print(f"cluster: gateways' RSS {[round(r / MIB) for r in run.rss_connected]} MiB", flush=True)
            await hold(args, run, servers, generators, api_url=f"http://127.0.0.1:{port}", seeded=seeded)
            await restart(args, run, servers[0], generators, port=port, parts=plan[0])
    finally:
        for gens in generators:
            for gen in gens:
                await gen.stop()
        for server in servers:
            await server.stop()
        with suppress(NameError):
            await api.stop()
        await drop_postgres(args.postgres_url, name)
    return run


async def hold(
    args: argparse.Namespace,
    run: ClusterRun,
    servers: list[Server],
    generators: list[list[Generator]],
    *,
    api_url: str,
    seeded: Seeded,
) -> None:
    """Let the chargers heartbeat for `--hold` seconds while commands go through the API; count closed sockets."""
    go = time.monotonic() + 0.5
    everyone = [gen for gens in generators for gen in gens]
    for gen in everyone:
        await gen.send(f"go {go}")
    until = go + args.hold
    sender = asyncio.create_task(send_commands(run, api_url, seeded, rate=args.command_rate, seconds=args.hold))
    await watch_rss(run, servers, until)
    await sender
    outcomes = [await gen.wait_for("result", 120) for gen in everyone]
    run.disconnects = sum(int(o.get("connections_closed", 0)) for o in outcomes)
    run.heartbeats_acked = sum(int(o.get("acked", 0)) for o in outcomes)
    print(
        f"cluster: held {args.hold:g} s; {run.disconnects} sockets closed; gateways' RSS max "
        f"{run.rss_max_total / MIB:.0f} MiB; commands {run.commands} {run.command_status} "
        f"p50 {run.command_ms.get('p50')} p99 {run.command_ms.get('p99')} ms",
        flush=True,
    )


async def start_block(args: argparse.Namespace, host: str, port: int, parts: list[tuple[int, int]]) -> list[Generator]:
    """The generator processes of one gateway's chargers."""
    return [
        await Generator.start(host, port, first, count, hold=args.hold, concurrency=args.concurrency)
        for first, count in parts
    ]


def gateway(host: str, port: int, env: dict[str, str], *, roles: bool, log: Path) -> Server:
    """A gateway process on its own loopback address."""
    return Server(serve_command(host, port, "gateway" if roles else None), env, host, port, log)


async def watch_rss(run: ClusterRun, servers: list[Server], until: float) -> None:
    """The gateways' total RSS every 10 s until `until`; the highest is kept."""
    while time.monotonic() < until:
        await asyncio.sleep(min(10.0, max(0.0, until - time.monotonic())))
        run.rss_max_total = max(run.rss_max_total, sum(rss(s.pid) for s in servers))


async def restart(
    args: argparse.Namespace,
    run: ClusterRun,
    server: Server,
    generators: list[list[Generator]],
    *,
    port: int,
    parts: list[tuple[int, int]],
) -> None:
    """SIGKILL the first gateway, restart it, and time until its chargers are all booted on it again."""
    host = server.host
    killed = time.monotonic()
    server.kill()
    for gen in generators[0]:
        await gen.stop()
    await server.start()
    generators[0] = await start_block(args, host, port, parts)
    readies = [await gen.wait_for("ready", args.setup_timeout) for gen in generators[0]]
    run.recovery_s = round(time.monotonic() - killed, 1)
    run.restarted_chargers = sum(r["chargers"] for r in readies)
    print(f"cluster: {run.restarted_chargers} chargers back on the restarted gateway {run.recovery_s} s after the kill")


# ---------------------------------------------------------------------------------------------
# Report


def markdown(args: argparse.Namespace, idle: list[Idle], cluster: ClusterRun | None, context: dict[str, Any]) -> str:
    """The section appended to docs/benchmarks.md."""
    lines = [f"### Cluster run {context['started']:%Y-%m-%d %H:%M} UTC", ""]
    lines += [f"- command: `{context['command']}`", f"- machine: {machine()}"]
    lines += [f"- load average (1 min) before the run: {context['load']:.2f}", f"- code served: {context['code']}"]
    if idle:
        lines += [
            "",
            "| target | chargers | RSS 0 MiB | RSS N MiB | KiB per charger | set-up s |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r.target} | {r.chargers} | {r.rss_zero / MIB:.1f} | {r.rss_connected / MIB:.1f} | "
            f"{r.per_charger_kib:.1f} | {r.setup_s:.1f} |"
            for r in idle
        ]
        for chargers in args.idle:
            pair = {r.target: r for r in idle if r.chargers == chargers}
            ours, theirs = pair["voltline"].per_charger_kib, pair["ocpplib"].per_charger_kib
            verdict = "met" if ours <= theirs else "NOT met"
            lines.append(f"- {chargers} idle chargers: Voltline {ours:.1f} KiB against {theirs:.1f} KiB: {verdict}")
    if cluster is not None:
        c = cluster
        lines += ["", f"- roles: {c.roles}; {c.gateways} gateways; hold {c.hold_s:g} s"]
        lines += [f"- note: {note}" for note in c.notes]
        lines += [
            f"- connected and booted: {c.connected} of {c.chargers} in {c.setup_s} s",
            f"- gateways' RSS with 0 chargers: {', '.join(f'{r / MIB:.0f}' for r in c.rss_zero)} MiB; "
            f"{(sum(c.rss_connected) - sum(c.rss_zero)) / max(1, c.connected) / KIB:.1f} KiB per charger",
            f"- gateways' RSS after connecting: {', '.join(f'{r / MIB:.0f}' for r in c.rss_connected)} MiB "
            f"(total {sum(c.rss_connected) / MIB:.0f}); max total during the hold {c.rss_max_total / MIB:.0f} MiB "
            f"(goal < {GOAL_RSS_MIB} MiB)",
            f"- sockets closed by the servers during the hold: {c.disconnects}; heartbeats answered: "
            f"{c.heartbeats_acked}",
            f"- commands: {c.commands} at {args.command_rate:g}/s, answers {c.command_status}, "
            f"p50 {c.command_ms.get('p50')} ms, p99 {c.command_ms.get('p99')} ms, max {c.command_ms.get('max')} ms "
            f"(goal p99 < {GOAL_P99_MS:g} ms; {c.command_late} sent more than 5 ms late); CPU-bound figures: "
            "the machine was shared",
            f"- restart: {c.restarted_chargers} chargers of the killed gateway back {c.recovery_s} s after the "
            f"SIGKILL (goal < {GOAL_RECOVERY_S:g} s)",
        ]
    return "\n".join([*lines, ""]) + "\n"


def append_markdown(text: str) -> None:
    """Append the run under the cluster runs heading (created when missing)."""
    doc = DOC.read_text()
    if RUNS not in doc:
        doc = doc.rstrip("\n") + f"\n\n{RUNS}\n"
    DOC.write_text(doc.rstrip("\n") + "\n\n" + text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", default="2000", help="comma-separated N for the side-by-side idle run (0: skip)")
    parser.add_argument("--clients", type=int, default=2, help="idle run: load-generator processes")
    parser.add_argument(
        "--echo", action="store_true", help="idle run: also the bare uvicorn + Starlette route (bench/echo_server.py)"
    )
    parser.add_argument("--cluster", type=int, default=0, metavar="N", help="chargers of the cluster run (0: skip)")
    parser.add_argument("--gateways", type=int, default=4)
    parser.add_argument("--per-generator", type=int, default=12_500, help="sockets per generator process at most")
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes at once per generator")
    parser.add_argument("--hold", type=float, default=600.0, help="seconds the chargers hold their sockets")
    parser.add_argument("--command-rate", type=float, default=50.0, help="commands per second through the API")
    parser.add_argument("--setup-timeout", type=float, default=1800.0)
    parser.add_argument("--postgres-url", default=os.environ.get("VOLTLINE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES))
    parser.add_argument("--nats-url", default=os.environ.get("VOLTLINE_BENCH_NATS_URL", DEFAULT_NATS))
    parser.add_argument("--markdown", action="store_true", help=f"append the results to {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    args.idle = [int(n) for n in args.idle.split(",") if n.strip() and int(n) > 0]
    return args


async def main_async(args: argparse.Namespace) -> tuple[list[Idle], ClusterRun | None]:
    """The parts asked for, one after the other."""
    idle = await idle_part(args) if args.idle else []
    cluster = await cluster_part(args) if args.cluster else None
    return idle, cluster


def main(argv: list[str]) -> None:
    """Raise the open-files limit (inherited by every process started), run, print, record."""
    if argv[:1] == ["--send-commands"]:
        import uvloop

        uvloop.run(command_process(json.loads(argv[1])))
        return
    args = parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    context: dict[str, Any] = {"started": datetime.now(UTC), "load": os.getloadavg()[0], "code": code_version()}
    context["command"] = "python bench/cluster.py " + shlex.join(argv)
    import uvloop

    idle, cluster = uvloop.run(main_async(args))
    text = markdown(args, idle, cluster, context)
    print("\n" + text)
    if args.markdown:
        append_markdown(text)
        print(f"appended to {DOC}")


if __name__ == "__main__":
    main(sys.argv[1:])
