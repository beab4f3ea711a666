"""Open-loop HTTP/1.1 load generator, run as its own process (`python bench/_loadgen.py ...`).

Requests are scheduled at a constant rate and sent on schedule whether or not earlier
ones have been answered; latency is measured from the *scheduled* send time, so a
stalled server cannot hide its queue (no coordinated omission). The client is a small
keep-alive HTTP/1.1 client on asyncio protocols (uvloop when available): one request in
flight per connection, a fixed pool of connections, and a FIFO of requests waiting for a
free connection (that wait counts in the latency). It prints one JSON object on stdout.

`--client httpx` drives the same schedule with `httpx.AsyncClient` instead, to measure
httpx's own ceiling. `--serve-canned PORT` runs a trivial HTTP server instead (used to
measure this generator's ceiling: that server is far cheaper than any real endpoint).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

T = TypeVar("T")

CRLF2 = b"\r\n\r\n"
TICK = 0.001


class Path:
    """Makes the request target: a fixed path, or a template with `{id}` drawn at random."""

    def __init__(self, template: str, ids: tuple[int, int] | None) -> None:
        self.template = template
        self.ids = ids
        self._rand = random.Random(42).randint

    def next(self) -> str:
        """The path of the next request."""
        if self.ids is None:
            return self.template
        return self.template.replace("{id}", str(self._rand(*self.ids)))


class Stats:
    """Latencies and outcomes of the requests scheduled inside the measured window."""

    def __init__(self) -> None:
        self.window: tuple[float, float] = (float("inf"), float("inf"))
        self.latencies: list[float] = []
        self.send_lag: list[float] = []  # generator lateness: launch time - scheduled time
        self.statuses: collections.Counter[str] = collections.Counter()
        self.scheduled = 0
        self.ok_in_window = 0
        self.max_waiting = 0

    def measured(self, scheduled_at: float) -> bool:
        """True for requests scheduled inside the measured window."""
        return self.window[0] <= scheduled_at < self.window[1]

    def done(self, scheduled_at: float, status: str, now: float) -> None:
        """Record one finished request (status code as text, or an error name)."""
        if status == "200" and self.window[0] <= now < self.window[1]:
            self.ok_in_window += 1
        if self.measured(scheduled_at):
            self.latencies.append(now - scheduled_at)
            self.statuses[status] += 1


class Conn(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.scheduled_at = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes, scheduled_at: float) -> None:
        """Write a request; the connection is busy until its response has been read."""
        assert self.transport is not None
        self.busy = True
        self.scheduled_at = scheduled_at
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.busy:
            end = self.buf.find(CRLF2)
            if end < 0:
                return
            status, length = _parse_head(bytes(self.buf[:end]))
            if len(self.buf) < end + 4 + length:
                return
            del self.buf[: end + 4 + length]
            self.busy = False
            self.pool.finished(self, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.lost(self)


def _parse_head(head: bytes) -> tuple[str, int]:
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ", 2)[1].decode()
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return status, int(value)
    return status, 0


class Pool:
    """A fixed set of connections and a FIFO of requests waiting for one."""

    def __init__(self, host: str, port: int, *, size: int, head: bytes, path: Path, stats: Stats) -> None:
        self.host, self.port, self.size = host, port, size
        self.head, self.path, self.stats = head, path, stats
        self.idle: collections.deque[Conn] = collections.deque()  # FIFO: every connection stays warm
        self.waiting: collections.deque[float] = collections.deque()
        self.in_flight: set[Conn] = set()
        self.loop = asyncio.get_running_loop()

    async def open(self) -> None:
        """Open every connection of the pool."""
        for _ in range(self.size):
            await self._connect()

    async def _connect(self) -> None:
        _, conn = await self.loop.create_connection(lambda: Conn(self), self.host, self.port)
        self.idle.append(conn)
        self._drain()

    def request(self, scheduled_at: float) -> None:
        """Send now on an idle connection, or queue until one is free."""
        if self.idle:
            self._send(self.idle.popleft(), scheduled_at)
        else:
            self.waiting.append(scheduled_at)
            self.stats.max_waiting = max(self.stats.max_waiting, len(self.waiting))

    def _send(self, conn: Conn, scheduled_at: float) -> None:
        request = b"GET " + self.path.next().encode() + self.head
        self.in_flight.add(conn)
        conn.send(request, scheduled_at)

    def finished(self, conn: Conn, status: str) -> None:
        """A response arrived: record it and reuse the connection."""
        self.in_flight.discard(conn)
        self.stats.done(conn.scheduled_at, status, time.perf_counter())
        self.idle.append(conn)
        self._drain()

    def _drain(self) -> None:
        while self.waiting and self.idle:
            self._send(self.idle.popleft(), self.waiting.popleft())

    def lost(self, conn: Conn) -> None:
        """The server closed a connection: fail its request and open a replacement."""
        if conn in self.in_flight:
            self.in_flight.discard(conn)
            self.stats.done(conn.scheduled_at, "closed", time.perf_counter())
        if conn in self.idle:
            self.idle.remove(conn)
        self.loop.create_task(self._connect())

    def pending(self) -> int:
        """Requests sent or queued but not answered yet."""
        return len(self.in_flight) + len(self.waiting)


async def schedule(rate: float, start: float, end: float, launch: Callable[[float], None]) -> None:
    """Call `launch(t)` for every t = start + i/rate before `end`, as close to t as the loop allows."""
    interval = 1.0 / rate
    i = 0
    while True:
        due = start + i * interval
        if due >= end:
            return
        delay = due - time.perf_counter()
        if delay > 0:
            # Event-loop timers have millisecond resolution; shorter sleeps would spin the CPU.
            await asyncio.sleep(max(delay, TICK))
        now = time.perf_counter()
        while i * interval + start <= now and start + i * interval < end:
            launch(start + i * interval)
            i += 1


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of already sorted values, or None if empty."""
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def summary(stats: Stats, args: argparse.Namespace, unfinished: int, cpu_share: float) -> dict[str, Any]:
    """The result object printed on stdout; unfinished requests count as infinitely slow."""
    latencies = sorted(stats.latencies) + [float("inf")] * unfinished
    lags = sorted(stats.send_lag)
    statuses = dict(stats.statuses)
    if unfinished:
        statuses["unfinished"] = unfinished
    errors = sum(n for status, n in statuses.items() if status != "200")
    ms = lambda v: None if v is None or v == float("inf") else round(v * 1000, 3)  # noqa: E731
    return {
        "target_rate": args.rate,
        "duration": args.duration,
        "scheduled": stats.scheduled,
        "achieved_rate": round(stats.ok_in_window / args.duration, 1),
        "statuses": statuses,
        "errors": errors,
        "p50_ms": ms(percentile(latencies, 0.50)),
        "p90_ms": ms(percentile(latencies, 0.90)),
        "p99_ms": ms(percentile(latencies, 0.99)),
        "p999_ms": ms(percentile(latencies, 0.999)),
        "max_ms": ms(latencies[-1] if latencies else None),
        "send_lag_p50_ms": ms(percentile(lags, 0.50)),
        "send_lag_p99_ms": ms(percentile(lags, 0.99)),
        "max_waiting": stats.max_waiting,
        "client_cpu": round(cpu_share, 3),
    }


async def run_raw(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    """Drive the schedule with the raw protocol client."""
    stats = Stats()
    head = f" HTTP/1.1\r\nHost: {args.host}:{args.port}\r\nAccept: application/json\r\n"
    if args.token:
        head += f"Authorization: Bearer {args.token}\r\n"
    pool = Pool(args.host, args.port, size=args.connections, head=(head + "\r\n").encode(), path=path, stats=stats)
    await pool.open()

    def launch(t: float) -> None:
        if stats.measured(t):
            stats.scheduled += 1
            stats.send_lag.append(time.perf_counter() - t)
        pool.request(t)

    return await _drive(args, stats, launch, pool.pending)


async def run_httpx(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    """Drive the schedule with httpx.AsyncClient (HTTP/1.1, keep-alive pool)."""
    import httpx

    stats = Stats()
    headers = {"Accept": "application/json"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections)
    pending: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(
        base_url=f"http://{args.host}:{args.port}", headers=headers, limits=limits, timeout=30
    ) as client:

        async def one(t: float) -> None:
            try:
                status = str((await client.get(path.next())).status_code)
            except httpx.HTTPError as error:
                status = type(error).__name__
            stats.done(t, status, time.perf_counter())

        def launch(t: float) -> None:
            if stats.measured(t):
                stats.scheduled += 1
                stats.send_lag.append(time.perf_counter() - t)
            task = asyncio.get_running_loop().create_task(one(t))
            pending.add(task)
            task.add_done_callback(pending.discard)

        result = await _drive(args, stats, launch, lambda: len(pending))
        for task in pending:
            task.cancel()
        return result


async def _drive(
    args: argparse.Namespace, stats: Stats, launch: Callable[[float], None], pending: Callable[[], int]
) -> dict[str, Any]:
    start = time.perf_counter() + 0.05
    measure_from = start + args.warmup
    measure_to = measure_from + args.duration
    stats.window = (measure_from, measure_to)
    marks: list[tuple[float, float]] = []

    async def mark(at: float, event: str) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        marks.append((time.perf_counter(), time.process_time()))
        print(json.dumps({"event": event}), flush=True)

    loop = asyncio.get_running_loop()
    markers = [loop.create_task(mark(measure_from, "measure_start")), loop.create_task(mark(measure_to, "measure_end"))]
    await schedule(args.rate, start, measure_to, launch)
    await asyncio.gather(*markers)
    (wall0, cpu0), (wall1, cpu1) = marks
    deadline = time.perf_counter() + args.drain
    while pending() and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    unfinished = stats.scheduled - sum(stats.statuses.values())
    return summary(stats, args, unfinished, (cpu1 - cpu0) / max(wall1 - wall0, 1e-9))


CANNED = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"status":"ok"}'


class CannedServer(asyncio.Protocol):
    """Answers every request (one per header block) with a fixed 200."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(CANNED * data.count(CRLF2))


async def serve_canned(port: int) -> None:
    """Serve the canned response on 127.0.0.1:port until killed."""
    server = await asyncio.get_running_loop().create_server(CannedServer, "127.0.0.1", port)
    print("ready", flush=True)
    await server.serve_forever()


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--path", default="/healthz", help="request target; `{id}` is replaced per request")
    parser.add_argument("--ids", help="LOW-HIGH: draw `{id}` uniformly from this range")
    parser.add_argument("--token", default="", help="bearer token")
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second (constant)")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--drain", type=float, default=5.0, help="seconds to wait for late answers")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU")
    parser.add_argument("--serve-canned", type=int, metavar="PORT", help="run the trivial server instead")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    """Run the generator (or the canned server) and print the JSON result."""
    args = parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    if args.serve_canned:
        run(serve_canned(args.serve_canned))
        return
    signal.alarm(int(args.warmup + args.duration + args.drain) + 60)  # never outlive a stuck run
    ids = tuple(int(x) for x in args.ids.split("-")) if args.ids else None
    path = Path(args.path, ids)  # type: ignore[arg-type]
    runner = run_raw if args.client == "raw" else run_httpx
    print(json.dumps({"event": "result", **run(runner(args, path))}), flush=True)


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed (it is, with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


if __name__ == "__main__":
    main(sys.argv[1:])
