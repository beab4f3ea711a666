"""REST benchmark: GET one charger and list sites, open loop, on one server process.

The server is `voltline serve` (uvicorn, uvloop, httptools, one worker) on 127.0.0.1,
pinned to CPU 0 with VOLTLINE_RATE_LIMIT=0; the load generator (bench/_loadgen.py) is a
separate process pinned to CPU 1. The database holds 10,000 chargers and 1,000 sites
(one team). For each rate of the ladder: warm-up, then a measured window; latency runs
from each request's scheduled send time (no coordinated omission). The verdict per
endpoint is the highest rate with p99 <= 10 ms, no errors and the rate achieved
(DESIGN.md, Benchmarks; goal: >= 1,000 req/s on one process).

    .venv/bin/python bench/rest.py                      # both backends, full length
    .venv/bin/python bench/rest.py --quick --backend sqlite
    .venv/bin/python bench/rest.py --rates 800,1000 --markdown
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _profile
import httpx
import uvloop
from _report import (
    ENDPOINTS,
    HEADER,
    CpuMeter,
    Report,
    Run,
    Usage,
    code_version,
    free_port,
    markdown,
    row,
    verdicts,
    versions,
)
from _seed import Seeded, create_postgres, drop_postgres, seed

ROOT = Path(__file__).resolve().parent.parent
LOADGEN = Path(__file__).resolve().parent / "_loadgen.py"
DOC = ROOT / "docs" / "benchmarks.md"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Server:
    """A `voltline serve` subprocess and where it listens."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Bench:
    """The server under load, its data, and the options."""

    server: Server
    data: Seeded
    args: argparse.Namespace
    backend: str


NICE = [0]  # --nice: scheduling priority for the server and the generator (negative needs root)


def pin(pid: int, cpu: int) -> None:
    """Pin a process to one CPU when the machine has more than one, and apply --nice."""
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(pid, {cpu})
    if NICE[0]:
        os.setpriority(os.PRIO_PROCESS, pid, NICE[0])


@contextmanager
def serve(url: str, workdir: Path) -> Iterator[Server]:
    """Start `voltline serve` on the database, wait until /healthz answers, stop it afterwards."""
    port = free_port()
    env = {
        **os.environ,
        "VOLTLINE_DATABASE_URL": url,
        "VOLTLINE_DATA_DIR": str(workdir),
        "VOLTLINE_RATE_LIMIT": "0",
        "VOLTLINE_LOG_LEVEL": "warning",
        "VOLTLINE_SECRET_KEY": "bench-secret",
    }
    log = workdir / f"server-{port}.log"
    command = [sys.executable, "-m", "voltline", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    pin(proc.pid, 0)  # before the server starts any thread; later threads inherit it
    server = Server(proc, port, log)
    try:
        wait_ready(server)
        yield server
    finally:
        proc.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(server: Server) -> None:
    """Poll /healthz for up to 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"server exited early:\n{server.log.read_text()}")
        try:
            if httpx.get(server.base_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"server did not answer /healthz within 30 s:\n{server.log.read_text()}")


def target(name: str, data: Seeded) -> tuple[str, str | None]:
    """The loadgen path (with `{id}` for a random charger) and its id range."""
    path = ENDPOINTS[name][1].replace("{team}", str(data.team_id))
    return path, (f"{data.charger_ids[0]}-{data.charger_ids[1]}" if "{id}" in path else None)


def random_paths(name: str, data: Seeded) -> Callable[[], str]:
    """A function giving the endpoint's path, with a random charger id where it takes one."""
    path, ids = target(name, data)
    if ids is None:
        return lambda: path
    low, high = data.charger_ids
    return lambda: path.replace("{id}", str(random.randint(low, high)))


def check_endpoint(server: Server, name: str, data: Seeded) -> str | None:
    """None when the endpoint answers 200 with JSON; otherwise why it is skipped."""
    path, _ = target(name, data)
    path = path.replace("{id}", str(data.charger_ids[0]))
    response = httpx.get(server.base_url + path, headers={"Authorization": f"Bearer {data.token}"}, timeout=10)
    if response.status_code != 200:
        return f"{ENDPOINTS[name][0]} answered {response.status_code} {response.text[:80]!r}: not measured"
    if name in {"sites", "charger"} and "data" not in response.json():
        return f"{ENDPOINTS[name][0]} answered without `data`: not measured"
    return None


def measure(bench: Bench, name: str, rate: int) -> Run:
    """One open-loop run of the load generator against one endpoint at one rate."""
    server, data, args, backend = bench.server, bench.data, bench.args, bench.backend
    path, ids = target(name, data)
    command = [sys.executable, str(LOADGEN), "--port", str(server.port), "--path", path, "--token", data.token]
    command += ["--rate", str(rate), "--warmup", str(args.warmup), "--duration", str(args.duration)]
    command += ["--connections", str(args.connections)]
    if ids:
        command += ["--ids", ids]
    meter = CpuMeter(server.proc.pid, bench.data.database if backend == "postgres" else None)
    result: dict[str, Any] = {}
    usage = Usage(0.0, 0.0, None, 0.0)
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        pin(proc.pid, 1)
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "measure_start":
                meter.mark()
            elif event["event"] == "measure_end":
                usage = meter.usage()
            else:
                result = event
    if not result:
        raise SystemExit(f"load generator failed (exit {proc.returncode})")
    return Run(backend, name, result, usage)


def ladder(bench: Bench, name: str, report: Report) -> None:
    """Every rate of the ladder, lowest first; stop once clearly overloaded."""
    args, backend = bench.args, bench.backend
    for rate in args.rates:
        run = measure(bench, name, rate)
        report.runs.append(run)
        print(row(run), flush=True)
        if run.overloaded() and not args.no_stop:
            print(f"  ({name} on {backend}: overloaded at {rate} req/s; higher rates skipped)", flush=True)
            break
        time.sleep(1)


def ceiling(args: argparse.Namespace, report: Report, workdir: Path) -> None:
    """The generator's own ceiling: the same ladder against a trivial canned-response server on CPU 0."""
    port = free_port()
    log = workdir / "canned.log"
    command = [sys.executable, str(LOADGEN), "--serve-canned", str(port), "--cpu", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()  # "ready"
        bench = Bench(Server(proc, port, log), Seeded(0, "", (0, 0), ""), args, "none")
        try:
            ladder(bench, "canned", report)
        finally:
            proc.terminate()


def run_backend(backend: str, args: argparse.Namespace, report: Report, workdir: Path) -> None:
    """Make and seed the database, start the server, run every endpoint's ladder, clean up."""
    name = f"voltline_bench_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / (name + '.sqlite3')}"
    else:
        url = asyncio.run(create_postgres(args.postgres_url, name))
    try:
        print(f"[{backend}] seeding {args.chargers} chargers and {args.sites} sites ...", flush=True)
        data = asyncio.run(seed(url, chargers=args.chargers, sites=args.sites))
        report.versions |= versions(url)
        for endpoint in args.endpoints:
            report.code.setdefault(backend, set()).add(code_version())
            with serve(url, workdir) as server:  # a fresh server per endpoint
                problem = check_endpoint(server, endpoint, data)
                if problem:
                    print(f"[{backend}] {problem}", flush=True)
                    report.notes.append(f"{backend}: {problem}")
                    continue
                ladder(Bench(server, data, args, backend), endpoint, report)
            if args.profile and not problem:
                print(f"[{backend}] {ENDPOINTS[endpoint][0]}: {args.profile} sequential requests, in-process, uvloop:")
                print(uvloop.run(_profile.profile(url, random_paths(endpoint, data), data.token, args.profile)))
    finally:
        if backend == "postgres":
            asyncio.run(drop_postgres(args.postgres_url, name))


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rates", default="250,500,1000,1500,2000", help="comma-separated req/s ladder")
    parser.add_argument("--endpoints", default="charger,sites", help=f"comma-separated, of {','.join(ENDPOINTS)}")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of warm-up per rate (default 10)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per rate (default 60)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s warm-up, 5 s measured")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections of the generator")
    parser.add_argument("--chargers", type=int, default=10_000)
    parser.add_argument("--sites", type=int, default=1_000)
    parser.add_argument("--no-stop", action="store_true", help="run every rate even past overload")
    parser.add_argument("--markdown", action="store_true", help=f"append the results to {DOC.relative_to(ROOT)}")
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    parser.add_argument("--nice", type=int, default=0, help="priority of server and generator (e.g. -10)")
    parser.add_argument("--ceiling", action="store_true", help="measure only the load generator's ceiling")
    parser.add_argument("--profile", type=int, metavar="N", help="also time N sequential in-process requests")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("VOLTLINE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="admin URL; a fresh database voltline_bench_<random> is made there and dropped",
    )
    args = parser.parse_args(argv)
    NICE[0] = args.nice
    if args.quick:
        args.warmup, args.duration = 2.0, 5.0
    args.rates = [int(r) for r in args.rates.split(",") if r]
    args.endpoints = [e for e in args.endpoints.split(",") if e]
    unknown = set(args.endpoints) - set(ENDPOINTS)
    if unknown:
        parser.error(f"unknown endpoints: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str]) -> None:
    """Run the benchmark and print (and optionally append) the results."""
    args = parse_args(argv)
    report = Report(datetime.now(UTC), "python bench/rest.py " + shlex.join(argv))
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory(prefix="voltline-bench-") as tmp:
        if args.ceiling:
            ceiling(args, report, Path(tmp))
            backends = []
        for backend in backends:
            run_backend(backend, args, report, Path(tmp))
    print("\n" + "\n".join(verdicts(report)))
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(run) for run in report.runs], indent=2))
    if args.markdown:
        with DOC.open("a") as out:
            out.write("\n" + markdown(report, args))
        print(f"appended to {DOC}")


if __name__ == "__main__":
    main(sys.argv[1:])
