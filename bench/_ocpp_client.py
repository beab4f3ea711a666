"""Open-loop OCPP 1.6J load generator: N chargers over real WebSockets, as its own process.

    python bench/_ocpp_client.py --port 8000 --first 0 --count 1000 --rate 2000 [--action meter|heartbeat]
    python bench/_ocpp_client.py --serve-raw-echo 9000     # the generator's own ceiling (no framework)

Each charger is one TCP connection with a WebSocket handshake (subprotocol `ocpp1.6`, no
extensions offered, so no permessage-deflate), then BootNotification and, for `--action
meter`, a StartTransaction whose id the MeterValues carry. Then the process prints
`{"event": "ready"}` and waits for `go <time.monotonic() start>` on stdin, so that several
generator processes share one schedule (CLOCK_MONOTONIC is system-wide on Linux).

Open loop: call i is due at start + offset + i/rate, on charger i mod N (so every charger
sends at an even rate/N). OCPP-J allows one outstanding CALL per charger: a charger still
waiting for its previous answer when the next call is due counts it as *late* and sends it
the moment the answer arrives. Latency always runs from the scheduled time (no coordinated
omission). MeterValues are 8 samples: Energy.Active.Import.Register (rising), Power,
Current.Import L1-L3, Voltage L1-N..L3-N, timestamped now.

Closed loop (`--closed-loop`): from `go`, every charger sends its next call the moment the
previous one is answered, until the window ends; latency runs from the send. The number of
chargers is then the concurrency, and the acknowledged rate is the server's throughput.

Frames are built here on asyncio protocols (uvloop): the client masks with a random key per
frame through websockets' C `apply_mask`, answers pings with pongs (uvicorn pings every
ping interval) and answers a CALL from the server with NotImplemented. It prints JSON lines:
`ready`, `progress` (every --progress s from go: acknowledged calls so far), `measure_start`,
`measure_end`, `result`; latencies of the measured window go to --latencies (array of doubles).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import collections
import gc
import hashlib
import json
import os
import resource
import signal
import sys
import time
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
from websockets.speedups import apply_mask

TICK = 0.001
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
decode = msgspec.json.Decoder().decode

SAMPLE = '{{"value":"{v}","context":"Sample.Periodic","measurand":"{m}",{p}"location":"Outlet","unit":"{u}"}}'
SAMPLES = ",".join(
    [
        SAMPLE.format(v="{wh}", m="Energy.Active.Import.Register", p="", u="Wh"),
        SAMPLE.format(v="11040.0", m="Power.Active.Import", p="", u="W"),
        *(SAMPLE.format(v="16.0", m="Current.Import", p=f'"phase":"{ph}",', u="A") for ph in ("L1", "L2", "L3")),
        *(SAMPLE.format(v="230.1", m="Voltage", p=f'"phase":"{ph}",', u="V") for ph in ("L1-N", "L2-N", "L3-N")),
    ]
)
METER = (
    '[2,"{mid}","MeterValues",{{"connectorId":1,"transactionId":{tx},"meterValue":[{{"timestamp":"{ts}",'
    '"sampledValue":[' + SAMPLES.replace("{", "{{").replace("}", "}}").replace("{{wh}}", "{wh}") + "]}}]}}]"
)


class Clock:
    """OCPP timestamps of now, formatted once per millisecond."""

    def __init__(self) -> None:
        self.key = -1
        self.text = ""

    def now(self) -> str:
        """Now as 2025-03-31T12:18:52.123Z."""
        ms = int(time.time() * 1000)
        if ms != self.key:
            self.key = ms
            moment = datetime.fromtimestamp(ms / 1000, UTC)
            self.text = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
        return self.text


CLOCK = Clock()


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One masked, unfragmented client frame (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")
    mask = os.urandom(4)
    return head + mask + apply_mask(payload, mask)


def server_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked server frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big") + payload


def next_frame(buf: bytearray) -> tuple[int, bytes] | None:
    """Cut one complete frame (opcode, unmasked payload) off the front of `buf`, or None."""
    if len(buf) < 2:
        return None
    opcode, second = buf[0] & 0x0F, buf[1]
    length, pos = second & 0x7F, 2
    if length == 126:
        if len(buf) < 4:
            return None
        length, pos = int.from_bytes(buf[2:4], "big"), 4
    elif length == 127:
        if len(buf) < 10:
            return None
        length, pos = int.from_bytes(buf[2:10], "big"), 10
    mask = b""
    if second & 0x80:
        mask, pos = bytes(buf[pos : pos + 4]), pos + 4
    if len(buf) < pos + length:
        return None
    payload = bytes(buf[pos : pos + length])
    del buf[: pos + length]
    return opcode, apply_mask(payload, mask) if mask else payload


class Stats:
    """What happened to the calls of the load (warm-up and measured window)."""

    def __init__(self) -> None:
        self.window = (float("inf"), float("inf"))
        self.latencies = array.array("d")
        self.send_lag = array.array("d")
        self.scheduled = self.late = self.acked = self.acked_in_window = 0
        self.errors: collections.Counter[str] = collections.Counter()

    def measured(self, scheduled_at: float) -> bool:
        """True for calls scheduled inside the measured window."""
        return self.window[0] <= scheduled_at < self.window[1]


class Charger(asyncio.Protocol):
    """One charger: a WebSocket connection with at most one CALL outstanding."""

    def __init__(self, gen: Generator, identity: str) -> None:
        self.gen = gen
        self.identity = identity
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.upgraded = False
        self.waiting: str | None = None  # message id of the outstanding CALL
        self.scheduled_at = 0.0
        self.future: asyncio.Future[list[Any]] | None = None  # setup calls
        self.late: collections.deque[float] = collections.deque()
        self.seq = 0
        self.transaction = 0
        self.energy = 1_000_000

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ocpp/{self.identity} HTTP/1.1\r\nHost: {self.gen.host}:{self.gen.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
        )
        self.transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded and not self._upgrade():
            return
        while (frame := next_frame(self.buf)) is not None:
            opcode, payload = frame
            if opcode == 0x1:
                self._message(decode(payload))
            elif opcode == 0x9:
                self._write(client_frame(payload, 0xA))
            elif opcode == 0x8:
                self.gen.stats.errors["server closed"] += 1

    def _upgrade(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[: end + 4]
        if not head.startswith("HTTP/1.1 101") or "ocpp1.6" not in head.lower():
            if not self.opened.done():
                self.opened.set_exception(ConnectionError(f"{self.identity}: upgrade refused: {head.splitlines()[0]}"))
            return False
        self.upgraded = True
        if not self.opened.done():
            self.opened.set_result(None)
        return True

    def _write(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    def _message(self, msg: list[Any]) -> None:
        kind = msg[0]
        if kind == 2:  # a CALL from the server: GetConfiguration answered (bench/cluster.py), others refused
            if msg[2] == "GetConfiguration":
                answer: list[Any] = [3, msg[1], {"configurationKey": [], "unknownKey": msg[3].get("key") or []}]
            else:
                answer = [4, msg[1], "NotImplemented", "bench client", {}]
            self._write(client_frame(msgspec.json.encode(answer)))
            return
        if msg[1] != self.waiting:
            self.gen.stats.errors["unexpected answer"] += 1
            return
        self.waiting = None
        if self.future is not None:
            future, self.future = self.future, None
            future.set_result(msg)
            return
        self.gen.answered(self, kind == 3, msg)

    def call(self, action: str, payload: dict[str, Any]) -> asyncio.Future[list[Any]]:
        """A setup CALL; the future gets the answer frame."""
        self.seq += 1
        self.waiting = f"s{self.seq}"
        self.future = asyncio.get_running_loop().create_future()
        self._write(client_frame(msgspec.json.encode([2, self.waiting, action, payload])))
        return self.future

    def send_load(self, scheduled_at: float) -> None:
        """Send the next call of the load, due at `scheduled_at`."""
        self.seq += 1
        self.waiting = mid = str(self.seq)
        self.scheduled_at = scheduled_at
        if self.gen.action == "heartbeat":
            text = f'[2,"{mid}","Heartbeat",{{}}]'
        else:
            self.energy += 7
            text = METER.format(mid=mid, tx=self.transaction, ts=CLOCK.now(), wh=self.energy)
        self._write(client_frame(text.encode()))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"{self.identity}: connection lost during the handshake"))
        if self.future is not None and not self.future.done():
            self.future.set_exception(ConnectionError(f"{self.identity}: connection lost"))
        self.gen.lost(self)


class Generator:
    """The chargers of this process and the open-loop schedule over them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.host, self.port, self.action = args.host, args.port, args.action
        self.closed_loop: bool = args.closed_loop
        self.args = args
        self.stats = Stats()
        self.chargers: list[Charger] = []
        self.closed = 0
        self.trace = array.array("d") if args.trace else None  # (scheduled time, latency) of every load call

    async def connect_all(self) -> None:
        """Connect and set up every charger, `--concurrency` at a time."""
        gate = asyncio.Semaphore(self.args.concurrency)
        identities = [self.args.identity.format(n) for n in range(self.args.first, self.args.first + self.args.count)]
        self.chargers = list(await asyncio.gather(*(self._setup(identity, gate) for identity in identities)))

    async def _setup(self, identity: str, gate: asyncio.Semaphore) -> Charger:
        async with gate:
            loop = asyncio.get_running_loop()
            _, charger = await loop.create_connection(lambda: Charger(self, identity), self.host, self.port)
            await asyncio.wait_for(charger.opened, 60)
            boot = {"chargePointVendor": "VoltBench", "chargePointModel": "OB-1", "firmwareVersion": "1.0.0"}
            answer = await asyncio.wait_for(charger.call("BootNotification", boot), 120)
            expect(answer, identity, "BootNotification")
            if self.action == "meter":
                start = {"connectorId": 1, "idTag": "BENCHTAG", "meterStart": 1_000_000, "timestamp": CLOCK.now()}
                answer = await asyncio.wait_for(charger.call("StartTransaction", start), 120)
                expect(answer, identity, "StartTransaction")
                charger.transaction = int(answer[2].get("transactionId", 0))
            return charger

    def launch(self, i: int, scheduled_at: float) -> None:
        """Call i of the schedule: send it now, or queue it on its busy charger (late)."""
        stats = self.stats
        charger = self.chargers[i % len(self.chargers)]
        measured = stats.measured(scheduled_at)
        if measured:
            stats.scheduled += 1
        if charger.waiting is not None:
            charger.late.append(scheduled_at)
            stats.late += measured
            return
        if measured:
            stats.send_lag.append(time.perf_counter() - scheduled_at)
        charger.send_load(scheduled_at)

    def answered(self, charger: Charger, ok: bool, msg: list[Any]) -> None:
        """The answer to a load call arrived: record it and send the charger's late call, if any."""
        now = time.perf_counter()
        stats = self.stats
        scheduled_at = charger.scheduled_at
        if ok:
            stats.acked += 1
            if stats.window[0] <= now < stats.window[1]:
                stats.acked_in_window += 1
        elif stats.errors["CALLERROR"] < 3:
            print(json.dumps({"event": "callerror", "frame": msg}), file=sys.stderr, flush=True)
        if stats.measured(scheduled_at):
            stats.latencies.append(now - scheduled_at if ok else float("inf"))
            if not ok:
                stats.errors["CALLERROR"] += 1
        if self.trace is not None:
            self.trace.extend((scheduled_at, now - scheduled_at))
        if charger.late:
            charger.send_load(charger.late.popleft())
        elif self.closed_loop and now < stats.window[1]:
            stats.scheduled += stats.measured(now)
            charger.send_load(now)

    def lost(self, charger: Charger) -> None:
        """A connection closed: its outstanding and late calls never get an answer."""
        self.closed += 1
        self.stats.errors["closed"] += 1

    def pending(self) -> int:
        """Load calls sent or due but not answered yet."""
        return sum((c.waiting is not None and c.future is None) + len(c.late) for c in self.chargers)

    def unfinished_in_window(self) -> int:
        """Measured calls that never got an answer."""
        stats, count = self.stats, 0
        for c in self.chargers:
            count += sum(stats.measured(t) for t in c.late)
            count += c.waiting is not None and c.future is None and stats.measured(c.scheduled_at)
        return count


async def sleep_until(moment: float) -> None:
    """Sleep until time.perf_counter() reaches `moment` (CLOCK_MONOTONIC, like time.monotonic)."""
    delay = moment - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


async def schedule(gen: Generator, rate: float, start: float, end: float) -> None:
    """Launch call i at start + i/rate until `end`, as close to its time as the loop allows."""
    interval, i = 1.0 / rate, 0
    while True:
        due = start + i * interval
        if due >= end:
            return
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(max(delay, TICK))  # loop timers have millisecond resolution
        now = time.perf_counter()
        while start + i * interval <= now and start + i * interval < end:
            gen.launch(i, start + i * interval)
            i += 1


async def closed_loop(gen: Generator, start: float, end: float) -> None:
    """Closed loop: every charger sends at `start`; `answered` sends each next call; done at `end`."""
    await sleep_until(start)
    now = time.perf_counter()
    for charger in gen.chargers:
        gen.stats.scheduled += gen.stats.measured(now)
        charger.send_load(now)
    await sleep_until(end)


async def progress(gen: Generator, go: float, every: float, until: float) -> None:
    """Print the acknowledged count at go + k*every (the orchestrator samples the database then too)."""
    k = 0
    while go + k * every <= until:
        await sleep_until(go + k * every)
        emit("progress", k=k, t=go + k * every, acked=gen.stats.acked, pending=gen.pending())
        k += 1


def emit(event: str, **fields: Any) -> None:
    """One JSON line on stdout."""
    print(json.dumps({"event": event, **fields}), flush=True)


def expect(answer: list[Any], identity: str, action: str) -> None:
    """Fail loudly when a setup call is not accepted."""
    if answer[0] != 3:
        raise SystemExit(f"{identity}: {action} answered {answer}")
    status = answer[2].get("status") or answer[2].get("idTagInfo", {}).get("status", "Accepted")
    if action == "BootNotification" and status != "Accepted":
        raise SystemExit(f"{identity}: {action} answered {answer}")


async def run_load(args: argparse.Namespace) -> None:
    """Connect, report ready, wait for `go`, run the schedule, report."""
    gen = Generator(args)
    started = time.perf_counter()
    await gen.connect_all()
    gc.collect()
    gc.freeze()
    emit("ready", chargers=len(gen.chargers), setup_s=round(time.perf_counter() - started, 2))
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    go = float(line.split()[1])
    rate = args.rate
    start = go + (args.offset / rate if rate > 0 else 0.0)
    window = (go + args.warmup, go + args.warmup + args.duration)
    gen.stats.window = window
    ticker = asyncio.create_task(progress(gen, go, args.progress, window[1] + args.drain))
    if gen.closed_loop:
        load = asyncio.create_task(closed_loop(gen, start, window[1]))
    else:
        load = asyncio.create_task(schedule(gen, rate, start, window[1]))
    await sleep_until(window[0])
    emit("measure_start")
    cpu0 = cpu_seconds()
    await load
    cpu = (cpu_seconds() - cpu0) / max(1e-9, time.perf_counter() - window[0])
    emit("measure_end", acked=gen.stats.acked)
    deadline = time.perf_counter() + args.drain
    while gen.pending() and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    await ticker
    write_result(gen, args, cpu)
    if gen.trace is not None:
        with open(args.trace, "wb") as out:
            array.array("d", [v - go if i % 2 == 0 else v for i, v in enumerate(gen.trace)]).tofile(out)
    await loop.run_in_executor(None, sys.stdin.readline)  # hold the sockets until told to quit


def write_result(gen: Generator, args: argparse.Namespace, cpu: float) -> None:
    """Latencies to the file, the summary on stdout."""
    stats = gen.stats
    unfinished = gen.unfinished_in_window()
    stats.latencies.extend([float("inf")] * unfinished)
    if args.latencies:
        with open(args.latencies, "wb") as out:
            stats.latencies.tofile(out)
            stats.send_lag.tofile(out)
        lag_count = len(stats.send_lag)
    else:
        lag_count = 0
    errors = dict(stats.errors) | ({"unfinished": unfinished} if unfinished else {})
    emit(
        "result",
        scheduled=stats.scheduled,
        acked_in_window=stats.acked_in_window,
        acked=stats.acked,
        late=stats.late,
        latencies=len(stats.latencies),
        send_lags=lag_count,
        errors=errors,
        client_cpu=round(cpu, 3),
        connections_closed=gen.closed,
    )


def cpu_seconds() -> float:
    """User + system CPU of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class RawEcho(asyncio.Protocol):
    """The generator's ceiling: a WebSocket server on bare asyncio answering each CALL with [3, id, {}]."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            del self.buf[: end + 4]
            key = next(
                line.split(":", 1)[1].strip()
                for line in head.split("\r\n")
                if line.lower().startswith("sec-websocket-key")
            )
            accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
            self.transport.write(
                f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n".encode()
            )
            self.upgraded = True
        while (frame := next_frame(self.buf)) is not None:
            opcode, payload = frame
            if opcode == 0x1:
                msg = decode(payload)
                if msg[0] == 2:
                    self.transport.write(server_frame(msgspec.json.encode([3, msg[1], {}])))
            elif opcode == 0x8:
                self.transport.close()


async def serve_raw_echo(port: int) -> None:
    """Serve RawEcho on 127.0.0.1:port until killed."""
    server = await asyncio.get_running_loop().create_server(RawEcho, "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    await server.serve_forever()


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--identity", default="BENCH-{:06d}", help="identity pattern, formatted with the number")
    parser.add_argument("--first", type=int, default=0, help="number of this process's first charger")
    parser.add_argument("--count", type=int, default=1000, help="chargers of this process")
    parser.add_argument("--action", choices=["meter", "heartbeat"], default="meter")
    parser.add_argument("--rate", type=float, default=2000.0, help="calls per second of this process")
    parser.add_argument("--closed-loop", action="store_true", help="each charger sends when answered (no --rate)")
    parser.add_argument("--offset", type=float, default=0.0, help="schedule offset in calls (interleaves processes)")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--drain", type=float, default=10.0, help="seconds to wait for late answers")
    parser.add_argument("--progress", type=float, default=5.0, help="seconds between progress lines")
    parser.add_argument("--concurrency", type=int, default=50, help="chargers connecting at once")
    parser.add_argument("--latencies", help="write the measured latencies and send lags here")
    parser.add_argument("--trace", help="write (scheduled time - go, latency) of every load call here")
    parser.add_argument("--serve-raw-echo", type=int, metavar="PORT", help="run the bare echo server instead")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    """Run the generator (or the bare echo server)."""
    args = parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import uvloop

    if args.serve_raw_echo:
        uvloop.run(serve_raw_echo(args.serve_raw_echo))
        return
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    uvloop.run(run_load(args))


if __name__ == "__main__":
    main(sys.argv[1:])
