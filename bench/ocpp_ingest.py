"""OCPP ingest benchmark: MeterValues from N chargers over real WebSockets into one server process.

Method (DESIGN.md "Benchmarks"). The server is `python -m voltline serve` (uvicorn,
uvloop, websockets-sansio, no permessage-deflate) with VOLTLINE_OCPP_LOG=default and
VOLTLINE_RATE_LIMIT=0 on a fresh SQLite file or a fresh PostgreSQL database (dropped at the
end), pinned to CPU 0. The chargers (`BENCH-000000`...) are bulk-inserted first (bench/_seed.py).
The load generator (bench/_ocpp_client.py, `--clients` processes, CPU 1) connects them, boots
them, starts one transaction each, then sends 8-sample MeterValues open loop at a constant total
rate, one outstanding call per charger (a call due while the previous one waits is *late* and
goes out on the ack); latency runs from the scheduled time. Warm-up, then the measured window.

Reported per rate: ack rate; persisted MeterValues/s = meter_frames rows added during the
window / its length (rows sampled every few seconds in step with the generator's ack counts);
backlog = frames acked minus rows written, at the window's start and end and 5 s after;
ack latency p50/p99; server CPU; RSS per connected charger = (RSS with N - RSS with 0) / N.
A rate is *sustained* when >= 99% of it is acknowledged, nothing fails, at most 1% of the calls
are late (due while the charger still waited for its previous answer), and the backlog does not
grow (not both: a least-squares trend over the window's samples above 1% of the rate and more
than half a second of frames waiting at the window's end); *within goal* when also p99 <= 10 ms.

    .venv/bin/python bench/ocpp_ingest.py --rate 2000                        # SQLite, full length
    .venv/bin/python bench/ocpp_ingest.py --rates 2000,4000,6000 --quick     # a quick ladder
    .venv/bin/python bench/ocpp_ingest.py --backend postgres --rate 2000
    .venv/bin/python bench/ocpp_ingest.py --target echo --rates 2000,5000,10000   # the ceiling
    .venv/bin/python bench/ocpp_ingest.py --closed-loop --targets ingest,ocpplib,wsecho  # durable vs others
    .venv/bin/python bench/ocpp_ingest.py --target raw --rates 10000         # the generator's ceiling
    .venv/bin/python bench/ocpp_ingest.py --idle 10000 --clients 4           # 10k idle chargers, RSS
    .venv/bin/python bench/ocpp_ingest.py --rate 2000 --quick --profile      # cProfile of the server

Closed loop (`--closed-loop`, 100 chargers unless --chargers says otherwise): each charger sends
its next 8-sample MeterValues the moment the previous one is answered, so the acknowledged rate
is the target's throughput. `--targets` runs several targets with the same generator in one run:
`ingest` (Voltline, durable: answered after commit), `ocpplib` (bench/ocpplib_server.py, a central
system on the `ocpp` library that stores nothing), `wsecho` (bench/ws_echo_server.py, a bare
`websockets` server that decodes each frame and answers a fixed CALLRESULT), `echo` (the same
uvicorn + Starlette route as `voltline serve`, answering a fixed CALLRESULT) and `raw` (the
generator's own ceiling). The run ends with Voltline's throughput as a multiple of each other's.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import math
import os
import platform
import pstats
import resource
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from _generator import GeneratorProcess
from _report import CpuMeter, code_version, free_port, machine
from _seed import create_postgres, drop_postgres, seed
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLIENT = HERE / "_ocpp_client.py"
DOC = ROOT / "docs" / "benchmarks.md"
MARKER = "<!-- end of OCPP ingest runs: bench/ocpp_ingest.py --markdown inserts above this line -->"
REST_RUNS = "## REST runs"  # bench/rest.py appends below this heading; the OCPP runs go above it
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
GOAL_P99_MS = 15.0  # open loop, ack p99 at 2,000 MeterValues/s with durable answers
GOAL_OVER_OCPPLIB = 10.0  # closed loop: durable ingest at least 10x the `ocpp` library's server ...
GOAL_OF_WSECHO = 0.7  # ... and at least 70% of the bare `websockets` echo
GROWTH = 0.01  # the backlog grows when its trend over the window exceeds 1% of the rate (frames/s) ...
BACKLOG_SECONDS = 0.5  # ... and at the window's end it holds more than half a second of frames
MAX_LAUNCH_LAG_MS = 5.0  # a generator later than this (p99) was starved: its latencies are not the server's
MB = 1024 * 1024


def pin(pid: int, cpu: int, nice: int) -> None:
    """Pin a process to one CPU (when there are several) and set its priority (Linux: its main thread's,
    which the threads it starts afterwards inherit)."""
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(pid, {cpu})
    if nice:
        os.setpriority(os.PRIO_PROCESS, pid, nice)


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of sorted values, None for none."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


async def versions(url: str) -> dict[str, str]:
    """Python, uvicorn, Starlette, websockets, SQLAlchemy and the database's version."""
    import sqlalchemy
    import starlette
    import uvicorn
    from websockets.version import version as websockets_version

    found = {"Python": platform.python_version(), "uvicorn": uvicorn.__version__, "Starlette": starlette.__version__}
    found |= {"websockets": websockets_version, "SQLAlchemy": sqlalchemy.__version__}
    if url.startswith("postgres"):
        parsed = make_url(url)
        conn = await asyncpg.connect(
            host=parsed.host, port=parsed.port or 5432, user=parsed.username, database=parsed.database
        )
        try:
            found["PostgreSQL"] = str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()
    else:
        found["SQLite"] = sqlite3.sqlite_version
    return found


@dataclass
class Result:
    """One run: a target, a backend, a rate."""

    target: str
    backend: str
    rate: float
    chargers: int
    clients: int
    mode: str = "open"  # "open" (a constant rate) or "closed" (each charger sends when answered)
    achieved: float = 0.0
    persisted: float | None = None
    backlog: dict[str, int] = field(default_factory=dict)
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t from go, acked, rows)
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    send_lag_ms: dict[str, float | None] = field(default_factory=dict)
    late: int = 0
    scheduled: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    usage: dict[str, float | None] = field(default_factory=dict)
    client_cpu: float = 0.0
    rss_mb: dict[str, float] = field(default_factory=dict)
    setup_s: float = 0.0
    final_rows: int | None = None
    acked_total: int = 0

    def sustained(self) -> bool:
        """>= 99% acknowledged, no errors, no growing backlog (closed loop: no errors, no growing backlog)."""
        if self.mode == "closed":
            growing = self.backlog.get("trend", 0) > GROWTH * self.achieved
            return self.achieved > 0 and not self.errors and not growing
        growing = self.backlog.get("trend", 0) > GROWTH * self.rate
        backlog_ok = not growing or self.backlog.get("end", 0) <= BACKLOG_SECONDS * self.rate
        keeping_up = self.late <= 0.01 * self.scheduled  # calls due while the previous one still waits
        return self.achieved >= 0.99 * self.rate and not self.errors and backlog_ok and keeping_up

    def within_goal(self) -> bool:
        """Sustained and ack p99 <= 10 ms."""
        p99 = self.latency_ms.get("p99")
        return self.sustained() and p99 is not None and p99 <= GOAL_P99_MS

    def overloaded(self) -> bool:
        """Clearly past the knee (never for closed loop, which has no rate to fall behind)."""
        if self.mode == "closed":
            return False
        p99 = self.latency_ms.get("p99")
        return self.achieved < 0.9 * self.rate or p99 is None or p99 > 2000


@dataclass
class Server:
    """The process under load."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    profile: Path | None = None


class Rows:
    """Counts meter_frames rows from outside the server (max(id): rows are append-only, ids contiguous)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pg: asyncpg.Connection | None = None
        self.lite: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Connect read-only."""
        if self.url.startswith("sqlite"):
            path = make_url(self.url).database
            self.lite = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        else:
            parsed = make_url(self.url)
            self.pg = await asyncpg.connect(
                host=parsed.host, port=parsed.port or 5432, user=parsed.username, database=parsed.database
            )

    async def query(self, sql: str) -> int:
        """One integer."""
        if self.lite is not None:
            return int(self.lite.execute(sql).fetchone()[0] or 0)
        assert self.pg is not None
        return int(await self.pg.fetchval(sql) or 0)

    async def latest(self) -> int:
        """Rows written so far."""
        return await self.query("SELECT max(id) FROM meter_frames")

    async def count(self) -> int:
        """Rows, counted."""
        return await self.query("SELECT count(*) FROM meter_frames")

    async def close(self) -> None:
        """Disconnect."""
        if self.lite is not None:
            self.lite.close()
        if self.pg is not None:
            await self.pg.close()


@asynccontextmanager
async def database(args: argparse.Namespace, workdir: Path, chargers: int) -> AsyncIterator[str]:
    """A fresh database with `chargers` chargers (and a tenth as many sites); PostgreSQL's is dropped after."""
    name = f"voltline_bench_{uuid.uuid4().hex[:10]}"
    if args.backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / (name + '.sqlite3')}"
    else:
        url = await create_postgres(args.postgres_url, name)
    try:
        await seed(url, chargers=chargers, sites=max(1, chargers // 10))
        yield url
    finally:
        if args.backend == "postgres":
            await drop_postgres(args.postgres_url, name)


def server_command(args: argparse.Namespace, target: str, port: int, profile: Path | None) -> list[str]:
    """The command line of the server under test."""
    if target == "echo":
        return [sys.executable, str(HERE / "echo_server.py"), "--port", str(port)]
    if target == "raw":
        return [sys.executable, str(CLIENT), "--serve-raw-echo", str(port)]
    if target == "ocpplib":
        return [sys.executable, str(HERE / "ocpplib_server.py"), "--port", str(port)]
    if target == "wsecho":
        return [sys.executable, str(HERE / "ws_echo_server.py"), "--port", str(port)]
    python = [sys.executable, "-m", "cProfile", "-o", str(profile)] if profile else [sys.executable]
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    if args.gc_threshold:  # an experiment, not the product: src/ is unchanged
        # The gateway's settle_gc() (freeze + young threshold 10,000) is turned off: these thresholds hold.
        young = args.gc_threshold.split(",")[0]
        code = (
            f"import gc; gc.set_threshold({args.gc_threshold}); import voltline.ocpp.gateway as g; "
            f"g.GC_YOUNG_THRESHOLD = {young}; from voltline.cli import main; main()"
        )
        return [*python, "-c", code, *serve] if not profile else [*python, "-m", "voltline", *serve]
    return [*python, "-m", "voltline", *serve]


@asynccontextmanager
async def serve(args: argparse.Namespace, target: str, url: str, workdir: Path) -> AsyncIterator[Server]:
    """Start the server on CPU 0, wait until it accepts connections, stop it (SIGINT) afterwards."""
    port = free_port()
    env = {
        **os.environ,
        "VOLTLINE_DATABASE_URL": url,
        "VOLTLINE_DATA_DIR": str(workdir),
        "VOLTLINE_RATE_LIMIT": "0",
        "VOLTLINE_OCPP_LOG": "default",
        "VOLTLINE_LOG_LEVEL": "warning",
        "VOLTLINE_SECRET_KEY": "bench-secret",
    }
    log = workdir / f"server-{port}.log"
    prof = args.profile.resolve() if args.profile else None
    with log.open("wb") as out:
        proc = subprocess.Popen(server_command(args, target, port, prof), env=env, cwd=workdir, stdout=out, stderr=out)
    pin(proc.pid, 0, args.nice)
    server = Server(proc, port, log, prof)
    try:
        await wait_listening(server)
        yield server
    finally:
        proc.send_signal(signal.SIGINT)  # graceful: the writer flushes, cProfile dumps
        try:
            await asyncio.to_thread(proc.wait, 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_listening(server: Server) -> None:
    """Until the port accepts a TCP connection (uvicorn listens only after the lifespan started)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"server exited early:\n{server.log.read_text()}")
        with suppress(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=1):
            return
        await asyncio.sleep(0.1)
    raise SystemExit(f"server did not listen within 60 s:\n{server.log.read_text()}")


def warm_up(port: int, identity: str, action: str) -> None:
    """One charger with the `websockets` client: boot, transaction, 20 MeterValues; every answer a CALLRESULT."""
    from _ocpp_client import CLOCK, METER
    from websockets.sync.client import connect
    from websockets.typing import Subprotocol

    frames = [[2, "w1", "BootNotification", {"chargePointVendor": "VoltBench", "chargePointModel": "OB-1"}]]
    start = {"connectorId": 1, "idTag": "BENCHTAG", "meterStart": 0, "timestamp": CLOCK.now()}
    frames.append([2, "w2", "StartTransaction", start])
    frames += [[2, "h", "Heartbeat", {}]]
    uri = f"ws://127.0.0.1:{port}/ocpp/{identity}"
    with connect(uri, subprotocols=[Subprotocol("ocpp1.6")], compression=None, open_timeout=30) as ws:
        texts = [json.dumps(frame) for frame in frames]
        if action == "meter":
            texts += [METER.format(mid=f"m{i}", tx=1, ts=CLOCK.now(), wh=1000 + i) for i in range(20)]
        for text in texts:
            ws.send(text)
            answer = json.loads(ws.recv(timeout=30))
            if answer[0] != 3:
                raise SystemExit(f"warm-up: {text[:80]}... was answered {answer}")


class Client(GeneratorProcess):
    """One load-generator process and the JSON lines it printed."""

    def acked_at(self, k: int) -> int | None:
        """Acknowledged calls at progress tick k."""
        return next((e["acked"] for e in self.events if e["event"] == "progress" and e["k"] == k), None)


async def start_clients(
    args: argparse.Namespace, port: int, *, rate: float, chargers: int, action: str, workdir: Path
) -> list[Client]:
    """`--clients` generator processes on CPU 1, each with its share of chargers and rate."""
    clients = []
    share = math.ceil(chargers / args.clients)
    for n in range(args.clients):
        first, count = n * share, min(share, chargers - n * share)
        command = [sys.executable, str(CLIENT), "--port", str(port), "--first", str(first), "--count", str(count)]
        command += ["--rate", str(rate / args.clients), "--offset", str(n / args.clients), "--action", action]
        command += ["--warmup", str(args.warmup), "--duration", str(args.duration), "--drain", str(args.drain)]
        command += ["--progress", str(args.step), "--latencies", str(workdir / f"lat-{n}.bin")]
        command += ["--concurrency", str(args.concurrency)]
        if args.closed_loop:
            command += ["--closed-loop"]
        if args.trace:
            command += ["--trace", f"{args.trace}.{n}"]
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        pin(proc.pid, 1, args.nice)
        clients.append(Client(proc))
    return clients


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB."""
    return round(float(psutil.Process(pid).memory_info().rss) / MB, 1)


async def sample(
    args: argparse.Namespace, result: Result, clients: list[Client], rows: Rows | None, *, go: float, pid: int
) -> None:
    """At every progress tick: rows in the database; CPU over the window; RSS at the end."""
    meter = CpuMeter(pid, database_name(rows.url if rows else ""))
    window_start, window_end = args.warmup, args.warmup + args.duration
    ticks = int((window_end + args.drain) // args.step) + 1
    for k in range(ticks):
        t = k * args.step
        await asyncio.sleep(max(0.0, go + t - time.monotonic()))
        written = await rows.latest() if rows else 0
        if t == window_start:
            meter.mark()
        if t == window_end:
            result.usage = asdict(meter.usage())
            result.rss_mb["end"] = rss_mb(pid)
        result.samples.append((t, -1, written))
    for client in clients:
        await client.wait_for("result", args.drain + 60)
    for i, (t, _, written) in enumerate(result.samples):
        counts = [c.acked_at(i) for c in clients]
        result.samples[i] = (t, sum(n or 0 for n in counts), written)


def summarise(args: argparse.Namespace, result: Result, clients: list[Client], workdir: Path) -> None:
    """Merge the generators' results and latencies; derive rates and backlog."""
    outcomes = [next(e for e in c.events if e["event"] == "result") for c in clients]
    result.achieved = round(sum(o["acked_in_window"] for o in outcomes) / args.duration, 1)
    result.late = sum(o["late"] for o in outcomes)
    result.scheduled = sum(o["scheduled"] for o in outcomes)
    result.client_cpu = round(sum(o["client_cpu"] for o in outcomes), 3)
    for o in outcomes:
        for name, n in o["errors"].items():
            result.errors[name] = result.errors.get(name, 0) + n
    latencies, lags = array.array("d"), array.array("d")
    for n, o in enumerate(outcomes):
        data = array.array("d")
        data.frombytes((workdir / f"lat-{n}.bin").read_bytes())
        latencies.extend(data[: o["latencies"]])
        lags.extend(data[o["latencies"] :])
    result.latency_ms = quantiles(sorted(latencies), ("p50", "p90", "p99", "p99.9", "max"))
    result.send_lag_ms = quantiles(sorted(lags), ("p50", "p99"))
    if result.target == "ingest":
        backlogs(args, result)


def quantiles(values: list[float], names: tuple[str, ...]) -> dict[str, float | None]:
    """Named quantiles in ms (None when no value, or for calls never answered)."""
    out: dict[str, float | None] = {}
    for name in names:
        value = values[-1] if name == "max" and values else percentile(values, float(name.strip("p") or 100) / 100)
        out[name] = None if value is None or value == float("inf") else round(value * 1000, 2)
    return out


def backlogs(args: argparse.Namespace, result: Result) -> None:
    """Persisted rate over the window and frames acked but not yet written at its start, end and after."""
    base = result.samples[0][2]
    at = {t: (acked, written - base) for t, acked, written in result.samples}
    start, end = at[args.warmup], at[args.warmup + args.duration]
    after = at.get(args.warmup + args.duration + args.step, end)
    result.persisted = round((end[1] - start[1]) / args.duration, 1)
    result.backlog = {"start": start[0] - start[1], "end": end[0] - end[1], "after": after[0] - after[1]}
    result.backlog["max"] = max(acked - written for acked, written in at.values())
    window = [
        (t, acked - written) for t, (acked, written) in at.items() if args.warmup <= t <= args.warmup + args.duration
    ]
    result.backlog["trend"] = round(slope(window))


def slope(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of (t, backlog): frames per second the backlog grows by."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_b = sum(b for _, b in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (b - mean_b) for t, b in points) / spread if spread else 0.0


async def run_one(args: argparse.Namespace, target: str, rate: float, chargers: int, action: str) -> Result:
    """Fresh database and server, warm-up connection, RSS at 0, connect N, RSS at N, load, counts."""
    backend = args.backend if target in ("ingest", "idle") else "-"
    result = Result(target, backend, rate, chargers, args.clients, "closed" if args.closed_loop else "open")
    with tempfile.TemporaryDirectory(prefix="voltline-ingest-") as tmp:
        workdir = Path(tmp)
        if target in ("ingest", "idle"):
            async with database(args, workdir, chargers) as url:
                await load(args, result, url, workdir, action)
        else:
            await load(args, result, "", workdir, action)
    return result


async def load(args: argparse.Namespace, result: Result, url: str, workdir: Path, action: str) -> None:
    """Everything between server start and stop, then the final count."""
    rows = Rows(url) if url else None
    async with serve(args, result.target, url, workdir) as server:
        if result.target != "raw":
            await asyncio.to_thread(warm_up, server.port, "BENCH-000000", action)
        await asyncio.sleep(1)
        result.rss_mb["zero"] = rss_mb(server.proc.pid)
        clients = await start_clients(
            args, server.port, rate=result.rate, chargers=result.chargers, action=action, workdir=workdir
        )
        readies = [await c.wait_for("ready", args.setup_timeout) for c in clients]
        result.setup_s = max(r["setup_s"] for r in readies)
        await asyncio.sleep(1)
        result.rss_mb["connected"] = rss_mb(server.proc.pid)
        if rows:
            await rows.open()
        go = time.monotonic() + 0.5
        for client in clients:
            await client.send(f"go {go}")
        await sample(args, result, clients, rows, go=go, pid=server.proc.pid)
        summarise(args, result, clients, workdir)
        result.acked_total = result.samples[-1][1] if result.samples else 0
        for client in clients:
            await client.send("quit")
            await client.proc.wait()
    if rows:
        result.final_rows = await rows.count()
        await rows.close()
    if server.profile:
        print_profile(server.profile)


def database_name(url: str) -> str | None:
    """The PostgreSQL database (for its backends' CPU), None for SQLite."""
    return None if not url or url.startswith("sqlite") else make_url(url).database


def print_profile(path: Path) -> None:
    """The server's top functions by own time and by cumulative time (main thread only)."""
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)


def fmt(value: float | None, digits: int = 2) -> str:
    """A number, or `-`."""
    return "-" if value is None else f"{value:.{digits}f}"


HEADER = (
    "| target | backend | chargers | clients | rate/s | acked/s | persisted/s | backlog start/end/+5 s "
    "| backlog trend /s | p50 ms | p99 ms | p99.9 ms | max ms | late | errors | server CPU | off-loop "
    "| server µs/msg | PG CPU | client CPU | machine CPU | RSS 0 / N / end MiB | KiB/charger "
    "| launch lag p99 ms | verdict |"
)


def row(r: Result) -> str:
    """One Markdown table row."""
    u = r.usage
    per_msg = (u.get("server") or 0) * 1e6 / r.achieved if r.achieved else None
    per_charger = (r.rss_mb["connected"] - r.rss_mb["zero"]) * 1024 / r.chargers
    backlog = "/".join(str(r.backlog.get(k, "-")) for k in ("start", "end", "after")) if r.backlog else "-"
    verdict = "within goal" if r.within_goal() else "sustained" if r.sustained() else "NOT sustained"
    if (r.send_lag_ms.get("p99") or 0) > MAX_LAUNCH_LAG_MS:
        verdict += " (generator starved: latencies overstated)"
    rate = "closed loop" if r.mode == "closed" else f"{r.rate:.0f}"
    cells = [r.target, r.backend, str(r.chargers), str(r.clients), rate, f"{r.achieved:.0f}"]
    trend = str(r.backlog["trend"]) if "trend" in r.backlog else "-"
    cells += [fmt(r.persisted, 0), backlog, trend, fmt(r.latency_ms.get("p50")), fmt(r.latency_ms.get("p99"))]
    cells += [fmt(r.latency_ms.get("p99.9")), fmt(r.latency_ms.get("max")), str(r.late), str(r.errors or 0)]
    cells += [fmt(u.get("server")), fmt(u.get("server_threads")), fmt(per_msg, 0), fmt(u.get("postgres"))]
    cells += [fmt(r.client_cpu), fmt(u.get("machine"))]
    cells += ["/".join(f"{r.rss_mb.get(k, 0):.0f}" for k in ("zero", "connected", "end")), f"{per_charger:.1f}"]
    cells += [fmt(r.send_lag_ms.get("p99")), verdict]
    return "| " + " | ".join(cells) + " |"


def verdict_lines(results: list[Result]) -> list[str]:
    """Highest sustained rate and highest rate within the p99 goal, per target and backend."""
    lines = comparison_lines(results)
    for key in dict.fromkeys((r.target, r.backend, r.chargers) for r in results if r.mode == "open"):
        runs = [r for r in results if (r.target, r.backend, r.chargers) == key and r.mode == "open"]
        best = max((r.rate for r in runs if r.sustained()), default=0)
        within = max((r.rate for r in runs if r.within_goal()), default=0)
        lines.append(
            f"- {key[0]} ({key[1]}, {key[2]} chargers): highest sustained rate **{best:.0f}/s**; "
            f"highest with ack p99 <= {GOAL_P99_MS:.0f} ms: **{within:.0f}/s** (of the rates tried)"
        )
        for r in runs:
            if r.final_rows is not None and r.target == "ingest":
                lost = r.acked_total + 20 - r.final_rows  # + the 20 warm-up frames
                lines.append(
                    f"  - at {r.rate:.0f}/s: {r.final_rows} rows after shutdown for {r.acked_total} acked "
                    f"load frames + 20 warm-up frames ({'none lost' if lost <= 0 else f'{lost} missing'})"
                )
    return lines


def comparison_lines(results: list[Result]) -> list[str]:
    """Closed loop: each target's throughput, and Voltline's as a multiple of the others' (the goals)."""
    closed = {r.target: r for r in results if r.mode == "closed"}
    lines = [
        f"- closed loop, {r.target} ({r.backend}, {r.chargers} chargers): **{r.achieved:.0f} MeterValues/s**, "
        f"ack p50 {fmt(r.latency_ms.get('p50'))} ms, p99 {fmt(r.latency_ms.get('p99'))} ms"
        + ("" if r.sustained() else " (NOT sustained: errors or a growing backlog)")
        for r in closed.values()
    ]
    ingest = closed.get("ingest")
    if ingest is None or not ingest.achieved:
        return lines
    for other, goal, text in (
        ("ocpplib", GOAL_OVER_OCPPLIB, f"goal >= {GOAL_OVER_OCPPLIB:.0f}x"),
        ("wsecho", GOAL_OF_WSECHO, f"goal >= {GOAL_OF_WSECHO:.0%}"),
        ("echo", 0.0, "for reference"),
    ):
        if other in closed and closed[other].achieved:
            ratio = ingest.achieved / closed[other].achieved
            met = "" if not goal else (" — met" if ratio >= goal else " — NOT met")
            lines.append(f"  - ingest / {other}: **{ratio:.2f}x** ({ratio:.0%}; {text}){met}")
    return lines


def markdown(args: argparse.Namespace, results: list[Result], context: dict[str, Any]) -> str:
    """The run's section for docs/benchmarks.md."""
    lines = [f"### OCPP ingest run {context['started']:%Y-%m-%d %H:%M} UTC", "", f"- command: `{context['command']}`"]
    lines += [f"- machine: {machine()}; load average (1 min) before the run {context['load']:.2f}"]
    lines += [f"- code served: {context['code']}"]
    lines += [f"- software: {', '.join(f'{k} {v}' for k, v in context['versions'].items())}"]
    lines += [
        f"- warm-up {args.warmup:g} s, measured {args.duration:g} s, server on CPU 0, "
        f"{args.clients} generator process(es) on CPU 1, nice {args.nice}"
    ]
    if args.gc_threshold:
        lines += [f"- EXPERIMENT: server started with gc.set_threshold({args.gc_threshold}) (not the shipped default)"]
    lines += [
        "",
        HEADER,
        "|" + "---|" * HEADER.count(" | ") + "---|",
        *map(row, results),
        "",
        *verdict_lines(results),
        "",
    ]
    return "\n".join(lines) + "\n"


def append_markdown(text: str) -> None:
    """Insert the section above the marker of the OCPP runs (creating that part once, before the REST runs)."""
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if MARKER not in doc:
        part = f"## OCPP ingest runs (inserted by `bench/ocpp_ingest.py --markdown`)\n\n{MARKER}\n\n"
        head, rest_runs, tail = doc.partition(REST_RUNS)
        doc = head + part + rest_runs + tail if rest_runs else doc.rstrip("\n") + "\n\n" + part
    DOC.write_text(doc.replace(MARKER, text + "\n" + MARKER))


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    targets = ["ingest", "echo", "raw", "ocpplib", "wsecho"]
    parser.add_argument("--target", choices=targets, default="ingest")
    parser.add_argument("--targets", help=f"comma-separated targets run one after another ({', '.join(targets)})")
    parser.add_argument("--closed-loop", action="store_true", help="each charger sends when answered (no rate)")
    parser.add_argument("--rate", type=float, help="one rate (MeterValues/s in total)")
    parser.add_argument("--rates", default="2000", help="comma-separated ladder of rates")
    parser.add_argument("--chargers", type=int, help="default 1000, or 100 with --closed-loop")
    parser.add_argument("--clients", type=int, default=1, help="load-generator processes")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--drain", type=int, default=10, help="seconds after the window for late answers")
    parser.add_argument("--quick", action="store_true", help="3 s warm-up, 10 s measured")
    parser.add_argument("--idle", type=int, metavar="N", help="N idle chargers, heartbeating every --heartbeat s")
    parser.add_argument("--heartbeat", type=float, default=300.0, help="idle mode: seconds between heartbeats")
    parser.add_argument("--concurrency", type=int, default=50, help="handshakes at once per generator")
    parser.add_argument("--setup-timeout", type=float, default=900.0)
    parser.add_argument(
        "--profile",
        nargs="?",
        const="ocpp_ingest.prof",
        type=Path,
        metavar="FILE",
        help="run the server under cProfile, keep the stats in FILE, print the top functions",
    )
    parser.add_argument("--nice", type=int, default=0, help="priority of server and generators (e.g. -10; needs root)")
    parser.add_argument("--trace", help="generators write (scheduled time, latency) of every call to TRACE.<n>")
    parser.add_argument(
        "--gc-threshold",
        metavar="G0,G1,G2",
        help="experiment: start the server with gc.set_threshold(G0, G1, G2) and without the gateway's "
        "settle_gc() (700,10,10 is CPython's default)",
    )
    parser.add_argument("--no-stop", action="store_true", help="run every rate even past overload")
    parser.add_argument("--markdown", action="store_true", help=f"insert the results into {DOC.relative_to(ROOT)}")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--postgres-url", default=os.environ.get("VOLTLINE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES))
    args = parser.parse_args(argv)
    if args.quick:
        args.warmup, args.duration = 3, 10
    args.rates = [args.rate] if args.rate else [float(r) for r in args.rates.split(",") if r]
    if args.closed_loop:
        args.rates = [0.0]
    if args.chargers is None:
        args.chargers = 100 if args.closed_loop else 1000
    args.targets = args.targets.split(",") if args.targets else [args.target]
    unknown = set(args.targets) - set(targets)
    if unknown:
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}; choose from {', '.join(targets)}")
    args.step = math.gcd(args.warmup, args.duration, 5) or 1
    args.drain = max(args.drain, args.step)
    return args


async def main_async(args: argparse.Namespace, context: dict[str, Any]) -> list[Result]:
    """The ladder (or the idle run)."""
    results: list[Result] = []
    postgres = args.backend == "postgres" and "ingest" in args.targets
    context["versions"] = await versions(args.postgres_url if postgres else "sqlite")
    print(HEADER, flush=True)
    if args.idle:
        rate = args.idle / args.heartbeat
        results.append(await run_one(args, "idle", rate, args.idle, "heartbeat"))
        print(row(results[-1]), flush=True)
        return results
    for target in args.targets:
        for rate in args.rates:
            result = await run_one(args, target, rate, args.chargers, "meter")
            results.append(result)
            print(row(result), flush=True)
            if result.overloaded() and not args.no_stop:
                print(f"  (overloaded at {rate:.0f}/s; higher rates skipped)", flush=True)
                break
    return results


def main(argv: list[str]) -> None:
    """Run, print, and optionally record."""
    args = parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the server and the generators
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # this process stays off the server's CPU
    context: dict[str, Any] = {"started": datetime.now(UTC), "load": os.getloadavg()[0], "code": code_version()}
    context["command"] = "python bench/ocpp_ingest.py " + shlex.join(argv)
    import uvloop

    results = uvloop.run(main_async(args, context))
    print("\n".join(["", *verdict_lines(results)]))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    if args.markdown:
        append_markdown(markdown(args, results, context))
        print(f"inserted into {DOC}")


if __name__ == "__main__":
    main(sys.argv[1:])
