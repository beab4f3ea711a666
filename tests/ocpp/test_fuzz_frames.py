"""The OCPP frame fuzzer: Hypothesis frames from the OCA schemas, mutated, against a live gateway over a real socket.

Every charger->CSMS action of OCPP 1.6 gets schema-valid CALLs and CALLs broken one way each;
broken frames (bad message ids, wrong message types, answers to nothing, unknown actions, invalid
UTF-8 in binary frames, deep nesting, not JSON) are mixed in (tests/support/ocpp_fuzz.py). The
frames are drawn once per run, derandomized, so CI sees the same frames every time; Hypothesis
draws about 300 frames a second, so the long run sends 2,750 distinct frames four times over.

What must hold (OCPP-J 1.6 §4.2.3 and DESIGN "OCPP"): every CALL with a usable message id gets a
CALLRESULT or a CALLERROR, never `InternalError`; the socket stays open (a Heartbeat after each
batch is answered); the server logs no error (a writer that cannot store what was acknowledged
logs one); the API answers no 5xx about the charger afterwards; and the process grows less than
20 MiB over 10,000 frames after a warm-up.

RSS is measured on this process: the test server runs in it, in a thread (tests/conftest.py
LiveServer), on the same database as every other test of the run. The frames are drawn before
the warm-up and the answers are checked and dropped as they come, so the test's own memory
stays flat while it is measured, and a leak per frame in the gateway, the session, the message
log or the writer shows; a dedicated server process would isolate more but not make a cheaper
or more reproducible test.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
from collections.abc import Iterator
from functools import cache

import httpx
import psutil
import pytest
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import team_charger, ws_url
from tests.support.ocpp_fuzz import FuzzFrame, corpus
from voltline.services.accounts import Account

WARM_UP = 1_000
MEASURED = 10_000
DISTINCT = 2_750  # drawing is ~3 ms a frame; the long run sends these four times (a leak per frame shows all the same)
QUICK = 600
BATCH = 25  # frames sent back to back before the Heartbeat that proves the socket is still open
RSS_GROWTH_MAX = 20 * 2**20


@cache
def distinct_frames() -> tuple[FuzzFrame, ...]:
    """The run's frames, drawn once and shared by both backends."""
    return tuple(corpus(DISTINCT))


def frames(count: int) -> tuple[FuzzFrame, ...]:
    """`count` frames: the distinct ones, over again as often as needed."""
    return tuple(itertools.islice(itertools.cycle(distinct_frames()), count))


class ErrorRecords(logging.Handler):
    """Every ERROR the server logs while a fuzz run lasts."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture
def server_errors() -> Iterator[ErrorRecords]:
    handler = ErrorRecords()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


class Fuzzer:
    """Sends fuzz frames in batches on one socket and checks every answer as it comes."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.batches = 0
        self.answers = {"CALLRESULT": 0, "CALLERROR": 0}
        self.codes: dict[str, int] = {}

    def send(self, frames: tuple[FuzzFrame, ...]) -> None:
        for start in range(0, len(frames), BATCH):
            self.batch(frames[start : start + BATCH])

    def batch(self, frames: tuple[FuzzFrame, ...]) -> None:
        """Send the frames, then a Heartbeat; every CALL before it must be answered, none with InternalError."""
        self.batches += 1
        sentinel = f"alive-{self.batches}"
        for frame in frames:
            self.ws.send(frame.data)
        self.ws.send(json.dumps([2, sentinel, "Heartbeat", {}]))
        try:
            answered = self.read_until(sentinel)
        except TimeoutError:
            pytest.fail(f"batch {self.batches} got no answer: {[frame.data[:200] for frame in frames]}")
        # DESIGN "Durability": a NUL is U+FFFD from the frame on, the message id's too.
        expected = [frame.call_id.replace("\x00", "\ufffd") for frame in frames if frame.call_id is not None]
        missing = _first_unanswered(expected, answered)
        assert missing is None, (missing, [frame.data[:300] for frame in frames if frame.call_id == missing])

    def read_until(self, sentinel: str) -> list[str]:
        answered: list[str] = []
        while True:
            frame = json.loads(self.ws.recv(timeout=30))
            if frame[0] == 2:  # a CALL of ours to the charger (none is expected; never answered here)
                continue
            assert frame[0] in (3, 4), frame
            if frame[0] == 4:
                assert frame[2] != "InternalError", frame
                self.codes[frame[2]] = self.codes.get(frame[2], 0) + 1
            self.answers["CALLRESULT" if frame[0] == 3 else "CALLERROR"] += 1
            if frame[1] == sentinel:
                assert frame[0] == 3, frame
                return answered
            answered.append(frame[1])


def _first_unanswered(expected: list[str], answered: list[str]) -> str | None:
    """The first expected id not answered in order (other frames may have been answered between them)."""
    remaining = iter(answered)
    return next((want for want in expected if not any(got == want for got in remaining)), None)


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def api_reads_without_server_errors(api: httpx.Client, account: Account, charger_id: int) -> dict[str, int]:
    """The API's views of what the fuzzed charger left behind: none may be a 5xx."""
    base = f"/api/v2/teams/{account.team_id}/chargers/{charger_id}"
    ever = "date_from=1000-01-01 00:00:00&date_to=9999-12-31 23:59:59"
    paths = [
        base,
        f"{base}/logs",
        f"{base}/ocpp",
        f"/api/v2/teams/{account.team_id}/chargers",
        f"{base}/transactions",
        f"{base}/transactions?{ever}",
        f"{base}/metervalues?{ever}",
        *(f"{base}/connectors/{number}/power-usage" for number in (0, 1, 2, 3100)),
    ]
    statuses = {path: api.get(path).status_code for path in paths}
    assert all(status < 500 for status in statuses.values()), statuses
    assert statuses[f"{base}/metervalues?{ever}"] == 200, statuses
    return statuses


def charger_socket(server: LiveServer, identity: str) -> ClientConnection:
    """A raw OCPP 1.6 socket, as a charger opens it."""
    return connect(ws_url(server, identity), subprotocols=[Subprotocol("ocpp1.6")], compression=None, max_size=None)


def fuzz(server: LiveServer, identity: str, frames: tuple[FuzzFrame, ...]) -> Fuzzer:
    with charger_socket(server, identity) as ws:
        fuzzer = Fuzzer(ws)
        fuzzer.send(frames)
    return fuzzer


def flush_writer(server: LiveServer) -> None:
    """What was acknowledged is written: the batched writer flushes without an error."""
    server.run(server.runtime.writer.flush)


@pytest.mark.slow
def test_a_short_fuzz_run_gets_answers_and_keeps_the_socket_open(
    server: LiveServer, api: httpx.Client, account: Account, server_errors: ErrorRecords
) -> None:
    """OCPP-J 1.6 §4.2.3: CALLRESULT or CALLERROR (never InternalError) for every CALL; the socket stays open."""
    charger = team_charger(api, account)
    fuzzer = fuzz(server, charger["identity"], frames(QUICK))
    flush_writer(server)
    api_reads_without_server_errors(api, account, charger["id"])
    assert server_errors.records == []
    assert fuzzer.answers["CALLRESULT"] > QUICK // 4 and fuzzer.answers["CALLERROR"] > QUICK // 4, fuzzer.answers


@pytest.mark.slow
def test_ten_thousand_fuzz_frames_after_warm_up_grow_the_process_by_less_than_20_mib(
    server: LiveServer, api: httpx.Client, account: Account, server_errors: ErrorRecords
) -> None:
    """The fuzzer's whole run: answers, an open socket, no server error, no 5xx, bounded memory."""
    charger = team_charger(api, account)
    drawn = frames(WARM_UP + MEASURED)
    with charger_socket(server, charger["identity"]) as ws:
        fuzzer = Fuzzer(ws)
        fuzzer.send(drawn[:WARM_UP])
        flush_writer(server)
        before = rss()
        fuzzer.send(drawn[WARM_UP:])
        flush_writer(server)
        grown = rss() - before
    api_reads_without_server_errors(api, account, charger["id"])
    assert server_errors.records == []
    assert grown < RSS_GROWTH_MAX, f"RSS grew {grown / 2**20:.1f} MiB over {MEASURED} frames"
    print(f"\n[{server.backend}] {fuzzer.answers}, codes {fuzzer.codes}, RSS +{grown / 2**20:.1f} MiB")
