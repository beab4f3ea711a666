"""Fault tests against a live server: dropped sockets, replays, a silent charger, a burst of bad frames.

Each test checks that nothing is lost: every frame the charger had acknowledged is stored, a
transaction survives its socket, and a broken peer costs nothing but its own CALLERRORs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from tests.clocked import ClockedServer, SteppedClock
from tests.conftest import LiveServer, server_settings
from tests.ocpp.gateway_support import (
    BOOT,
    Raw,
    charger_row,
    frame_rows,
    get_charger,
    open_charger,
    run,
    team_charger,
    transaction_rows,
    wait_for,
)
from voltline.domain.meter_values import unpack_samples
from voltline.errors import ChargerTimeoutError
from voltline.services.accounts import Account
from voltline.simulator.charger import SimulatedCharger

START = {"connectorId": 1, "idTag": "04A2B3C4D55E80", "meterStart": 5130117, "timestamp": "2025-03-31T12:00:00Z"}


def meter_values(index: int, transaction_id: int | None = None) -> dict[str, Any]:
    """A valid MeterValues payload: register reading `index` Wh, stamped `index` seconds after START."""
    stamp = (datetime(2025, 3, 31, 12) + timedelta(seconds=index)).strftime("%Y-%m-%dT%H:%M:%SZ")
    value = {"value": str(index), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    payload: dict[str, Any] = {"connectorId": 1, "meterValue": [{"timestamp": stamp, "sampledValue": [value]}]}
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    return payload


async def send_async(server: LiveServer, identity: str, command: str, args: dict[str, Any]) -> dict[str, Any]:
    """runtime.commands.send on the server's loop, awaited from the test's loop without blocking it."""
    result: dict[str, Any] = await asyncio.to_thread(
        server.run, lambda: server.runtime.commands.send(identity, command, args)
    )
    return result


def cut(ws: ClientConnection) -> None:
    """Kill the TCP connection without a closing handshake, as a lost network does."""
    assert ws.transport is not None
    ws.transport.abort()


async def in_thread(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """`wait_for` without blocking the test's event loop (where the chargers run)."""
    await asyncio.to_thread(wait_for, check, timeout)


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition of the test's own event loop every millisecond."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.001)


# ---------------------------------------------------------------- a transaction across a dropped socket


class CuttableCharger(SimulatedCharger):
    """The simulator's charger, with its socket exposed and a gate that holds reconnecting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Event()
        self.gate.set()
        self.socket: ClientConnection | None = None

    def _connect(self) -> Any:
        return self._gated(super()._connect())

    @contextlib.asynccontextmanager
    async def _gated(self, connecting: Any) -> AsyncIterator[ClientConnection]:
        await self.gate.wait()
        async with connecting as ws:
            self.socket = ws
            yield ws

    def idle(self) -> bool:
        """Booted and nothing queued or in flight."""
        return self.connection_state == "accepted" and len(self.outbox) == 0


@contextlib.asynccontextmanager
async def simulated(cp: SimulatedCharger) -> AsyncIterator[SimulatedCharger]:
    """Run the charger for the block, then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(cp.run(stop))
    try:
        yield cp
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def contexts(frame: dict[str, Any]) -> set[str | None]:
    """The reading contexts of a stored meter frame."""
    return {sample.context for sample in unpack_samples(frame["samples"])}


def test_a_charger_that_drops_mid_transaction_continues_it_and_loses_no_meter_values(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN "Durability": online -> offline -> online; one transaction; every MeterValues sent is stored."""
    charger = team_charger(api, account)
    base = f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}"
    ws_base = server.base_url.replace("http://", "ws://") + "/ocpp"
    cp = CuttableCharger(ws_base, charger["identity"], connectors=1, meter_interval=0.1, auto_sessions=False)
    seen: list[str] = []

    def status_is(wanted: str) -> bool:
        status = str(get_charger(api, account, charger["id"])["connection_status"])
        if not seen or seen[-1] != status:
            seen.append(status)
        return status == wanted

    async def scenario() -> None:
        async with simulated(cp):
            await until(cp.idle)
            await in_thread(lambda: status_is("online"))
            started = await asyncio.to_thread(
                api.post, f"{base}/commands/start", json={"connector_id": 1, "id_tag": "T1"}
            )
            assert started.json() == {"message": "Accepted"}
            await until(lambda: cp.counters.meter_values >= 5 and cp.idle())
            cp.gate.clear()
            assert cp.socket is not None
            cut(cp.socket)  # nothing is in flight: idle() held in this same step of the loop
            await in_thread(lambda: status_is("offline"))
            await until(lambda: len(cp.outbox) >= 3)  # readings taken while offline wait in the outbox
            cp.gate.set()
            await until(lambda: cp.counters.connects == 2 and cp.idle())
            await in_thread(lambda: status_is("online"))
            resumed = cp.counters.meter_values
            await until(lambda: cp.counters.meter_values >= resumed + 3)
            stopped = await asyncio.to_thread(api.post, f"{base}/commands/stop", json={})
            assert stopped.json() == {"message": "Accepted"}
            await until(lambda: len(cp.finished) == 1 and cp.idle())

    run(scenario())
    assert seen == ["online", "offline", "online"]
    [tx] = cp.finished
    [row] = transaction_rows(server, charger["id"])
    assert row["id"] == tx.transaction_id
    assert (row["status"], row["meter_start"], row["meter_stop"]) == ("finished", tx.meter_start, tx.meter_stop)
    assert row["stop_reason"] == "Remote"
    frames = frame_rows(server, charger["id"])
    assert {frame["transaction_id"] for frame in frames} == {row["id"]}
    periodic = [frame for frame in frames if contexts(frame) == {"Sample.Periodic"}]
    assert len(periodic) == cp.counters.meter_values
    assert len({frame["timestamp"] for frame in periodic}) == len(periodic)
    assert sorted(frame["timestamp"] for frame in periodic) == [frame["timestamp"] for frame in periodic]
    assert len(frames) == len(periodic) + 2  # transactionData: Transaction.Begin and Transaction.End


# ---------------------------------------------------------------- replays after a reconnect


def test_start_and_stop_replayed_after_a_reconnect_change_nothing(server: LiveServer, identity: str) -> None:
    """DESIGN: duplicates of Start/Stop are idempotent, also when the answer was lost with the socket."""
    charger_id = charger_row(server, identity)["id"]

    def state() -> list[tuple[Any, ...]]:
        return [(r["id"], r["status"], r["meter_stop"], r["stop_reason"]) for r in transaction_rows(server, charger_id)]

    stop = {"meterStop": 5140000, "timestamp": "2025-03-31T13:00:00Z", "reason": "EVDisconnected"}
    stop["transactionData"] = [meter_values(1)["meterValue"][0], meter_values(2)["meterValue"][0]]

    async def lose_the_answer(action: str, payload: dict[str, Any], stored: Callable[[], bool]) -> None:
        async with open_charger(server, identity) as ws:
            await ws.send(json.dumps([2, "lost", action, payload]))
            await in_thread(stored)
            cut(ws)

    async def scenario() -> None:
        await lose_the_answer("StartTransaction", START, lambda: len(state()) == 1)
        async with open_charger(server, identity) as ws:
            peer = Raw(ws)
            first = await peer.result("StartTransaction", START)
            again = await peer.result("StartTransaction", START)
            assert first["transactionId"] == again["transactionId"] == state()[0][0]
            await peer.result("MeterValues", meter_values(0, first["transactionId"]))
            stop["transactionId"] = first["transactionId"]
        await lose_the_answer("StopTransaction", stop, lambda: state()[0][1] == "finished")
        async with open_charger(server, identity) as ws:
            peer = Raw(ws)
            assert await peer.result("StopTransaction", stop) == {}
            later = {**stop, "meterStop": 9999999, "reason": "Other"}
            assert await peer.result("StopTransaction", later) == {}
            assert await peer.result("StartTransaction", START) == first

    run(scenario())
    [(tx_id, *finished)] = state()
    assert finished == ["finished", 5140000, "EVDisconnected"]
    frames = frame_rows(server, charger_id)
    assert [(f["transaction_id"], f["timestamp"].second) for f in frames] == [(tx_id, 0), (tx_id, 1), (tx_id, 2)]


# ---------------------------------------------------------------- a charger that never answers


@pytest.fixture(scope="module")
def clocked(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClockedServer]:
    """A server of its own on a SteppedClock, with the default 30 s call timeout."""
    settings = server_settings(fresh_database(server.backend), str(tmp_path_factory.mktemp("data")))
    live = ClockedServer(settings, server.backend, clock=SteppedClock())
    live.start()
    yield live
    live.stop()


def test_a_charger_that_never_answers_times_out_on_the_clock_and_takes_the_next_command(
    clocked: ClockedServer,
) -> None:
    """DESIGN: one injectable clock; the 30 s call timeout passes when the clock does, not in real time."""
    assert clocked.settings.ocpp_call_timeout == 30
    account = clocked.account()
    clock = clocked.clock
    with clocked.client(account) as api:
        charger = team_charger(api, account)
    identity = charger["identity"]

    async def time_out(pending: asyncio.Future[Any], ws: ClientConnection) -> float:
        swallowed = json.loads(await ws.recv())
        await until(lambda: 30.0 in clock.sleeping)
        began = time.monotonic()
        await asyncio.to_thread(clocked.run, lambda: clock.advance(30.0))
        with contextlib.suppress(ChargerTimeoutError):
            await pending
        await ws.send(json.dumps([3, swallowed[1], {"status": "Accepted"}]))  # late: ignored
        return time.monotonic() - began

    async def scenario() -> None:
        async with open_charger(clocked, identity) as ws:
            await Raw(ws).result("BootNotification", BOOT)
            command = asyncio.ensure_future(send_async(clocked, identity, "reset", {"type": "Soft"}))
            assert await time_out(command, ws) < 2
            assert isinstance(command.exception(), ChargerTimeoutError)
            with clocked.client(account) as api:
                url = f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}/commands/restart"
                request = asyncio.ensure_future(asyncio.to_thread(api.post, url, json={"type": "Hard"}))
                assert await time_out(request, ws) < 2
                response = request.result()
            assert (response.status_code, response.json()) == (504, {"message": "The charger did not respond in time."})
            unlock = asyncio.ensure_future(send_async(clocked, identity, "unlock", {"connector_id": 1}))
            frame = json.loads(await ws.recv())
            assert frame[2:] == ["UnlockConnector", {"connectorId": 1}]
            await ws.send(json.dumps([3, frame[1], {"status": "Unlocked"}]))
            assert await unlock == {"status": "Unlocked"}

    run(scenario())


# ---------------------------------------------------------------- a burst of malformed frames

# (frame with {id} for the message id, the CALLERROR code it gets, or None when it is dropped unanswered)
BAD_FRAMES: list[tuple[str, str | None]] = [
    ("not json {id}", None),
    ('[2,"{id}","Heartbeat",{{}}', None),
    ('{{"id":"{id}"}}', None),
    ("42", None),
    ("null", None),
    ('"{id}"', None),
    ("[]", None),
    ('[2,"{id}","NoSuchAction",{{}}]', "NotImplemented"),
    ('[2,"{id}","Reset",{{"type":"Hard"}}]', "NotSupported"),
    ('[2,"{id}","StatusNotification",{{"connectorId":"1","errorCode":"NoError","status":"Available"}}]',
     "TypeConstraintViolation"),
    ('[2,"{id}","MeterValues",{{"connectorId":1,"meterValue":"all of them"}}]', "TypeConstraintViolation"),
    ('[2,"{id}","BootNotification",{{"chargePointVendor":"V"}}]', "OccurenceConstraintViolation"),
    ('[2,"{id}","BootNotification",{{"chargePointVendor":"' + "V" * 5000 + '","chargePointModel":"M"}}]',
     "PropertyConstraintViolation"),
    ('[2,"{id}","DataTransfer",{{"vendorId":"' + "v" * 100_000 + '"}}]', "PropertyConstraintViolation"),
    ('[2,"{id}","Heartbeat",{{"extra":1}}]', "FormationViolation"),
    ('[2,"{id}","Heartbeat"]', "FormationViolation"),
    ('[9,"{id}","Heartbeat",{{}}]', "FormationViolation"),
    ('[3,"{id}",{{}}]', None),  # an answer to nothing outstanding
    ('[4,"{id}","GenericError","",{{}}]', None),
]  # fmt: skip
ROUNDS = 20


def test_a_burst_of_malformed_frames_loses_no_valid_meter_values_and_keeps_the_socket_open(
    server: LiveServer, identity: str
) -> None:
    """DESIGN: bad frames are dropped or get their CALLERROR; the socket stays open; valid MeterValues are stored."""
    sent: list[str] = []
    expected: dict[str, list[Any]] = {}
    for index in range(ROUNDS):
        sent.append(json.dumps([2, f"mv{index}", "MeterValues", meter_values(index)]))
        expected[f"mv{index}"] = [3, f"mv{index}", {}]
        for number, (template, code) in enumerate(BAD_FRAMES):
            message_id = f"b{index}.{number}"
            sent.append(template.format(id=message_id))
            if code is not None:
                expected[message_id] = [4, message_id, code]

    async def scenario() -> dict[str, list[Any]]:
        async with open_charger(server, identity) as ws:
            for frame in sent:
                await ws.send(frame)
            await ws.send(json.dumps([2, "last", "Heartbeat", {}]))
            answers = {}
            while "last" not in answers:
                frame = json.loads(await ws.recv())
                answers[frame[1]] = frame[:3]
            assert ws.state is State.OPEN
            assert (await asyncio.to_thread(charger_row, server, identity))["connection_status"] == "online"
            return answers

    answers = run(scenario())
    assert answers.pop("last")[0] == 3
    assert answers == expected
    assert len(sent) > 300
    frames = frame_rows(server, charger_row(server, identity)["id"])
    assert [unpack_samples(f["samples"])[0].value for f in frames] == [str(i) for i in range(ROUNDS)]


def test_a_frame_over_the_size_limit_closes_with_1009_after_storing_what_came_before(
    server: LiveServer, identity: str
) -> None:
    """DESIGN: ws_max_size 256 KiB, a larger frame closes with 1009; frames already acknowledged are kept."""

    async def scenario() -> int | None:
        async with open_charger(server, identity) as ws:
            peer = Raw(ws)
            for index in range(5):
                assert await peer.result("MeterValues", meter_values(index)) == {}
            await ws.send(json.dumps([2, "big", "DataTransfer", {"vendorId": "x", "data": "a" * 262_145}]))
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(5):
                    await ws.recv()
            return ws.close_code

    assert run(scenario()) == 1009
    assert len(frame_rows(server, charger_row(server, identity)["id"])) == 5
    wait_for(lambda: charger_row(server, identity)["connection_status"] == "offline")


@pytest.fixture
def identity(api: httpx.Client, account: Account) -> str:
    """A charger of a fresh team."""
    return str(team_charger(api, account)["identity"])
