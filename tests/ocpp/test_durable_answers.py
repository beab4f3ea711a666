"""DESIGN "Durability" on a live server: answers follow the commit, and a replayed frame is stored once.

The charger side is a raw WebSocket peer. What is stored is read by the test's own database
connection (sqlite3 or asyncpg), never through the server's writer, so a frame counts as stored
only once it is in a committed transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import (
    BOOT,
    Raw,
    charger_row,
    frame_rows,
    meter_value,
    open_charger,
    rows,
    run,
    team_charger,
)
from tests.support.writer_scenarios import writes_blocked
from voltline.domain.ids import ChargerId
from voltline.services.accounts import Account
from voltline.store import transactions as store_transactions
from voltline.store.schema import energy_rollups, meter_latest, transactions

START = {"connectorId": 1, "idTag": "04A2B3C4D55E80", "meterStart": 1000, "timestamp": "2025-03-31T12:00:00Z"}
BLOCKED_FOR = 0.6  # seconds the test keeps the database from committing


def plain_url(server: LiveServer) -> str:
    """The server's database as the test's own driver takes it (a file path for SQLite)."""
    url = make_url(server.settings.effective_database_url)
    if server.backend == "sqlite":
        assert url.database is not None
        return url.database
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def stored_frames(server: LiveServer, charger_id: int) -> int:
    """Committed meter frames of the charger, counted on a connection of the test's own."""
    sql = "SELECT count(*) FROM meter_frames WHERE charger_id = "
    if server.backend == "sqlite":
        with contextlib.closing(sqlite3.connect(plain_url(server))) as conn:
            return int(conn.execute(sql + "?", (charger_id,)).fetchone()[0])
    conn = await asyncpg.connect(plain_url(server))
    try:
        return int(await conn.fetchval(sql + "$1", charger_id))
    finally:
        await conn.close()


def test_a_meter_values_answer_arrives_only_after_its_frame_is_committed(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN "Durability": MeterValues are answered after the group commit, not when queued."""
    charger = team_charger(api, account)

    async def scenario() -> tuple[list[Any], int, int]:
        async with open_charger(server, charger["identity"]) as ws:
            peer = Raw(ws)
            await peer.result("BootNotification", BOOT)
            payload = {"connectorId": 1, "meterValue": [meter_value(0, 1000)]}
            async with writes_blocked(server.settings.effective_database_url):
                await ws.send(json.dumps([2, "held", "MeterValues", payload]))
                with pytest.raises(TimeoutError):
                    await peer.answer("held", timeout=BLOCKED_FOR)
                during = await stored_frames(server, charger["id"])
            answer = await peer.answer("held", timeout=10)
            return answer, during, await stored_frames(server, charger["id"])

    answer, during, after = run(scenario())
    assert during == 0
    assert answer == [3, "held", {}]
    assert after == 1


def test_stop_transaction_data_is_committed_before_the_answer(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN "Durability": StopTransaction's transactionData is committed before Stop is answered."""
    charger = team_charger(api, account)

    async def scenario() -> tuple[list[Any], int]:
        async with open_charger(server, charger["identity"]) as ws:
            peer = Raw(ws)
            await peer.result("BootNotification", BOOT)
            transaction_id = (await peer.result("StartTransaction", START))["transactionId"]
            stop = {
                "transactionId": transaction_id,
                "meterStop": 2000,
                "timestamp": "2025-03-31T12:30:00Z",
                "transactionData": [meter_value(30, 2000)],
            }
            async with writes_blocked(server.settings.effective_database_url):
                await ws.send(json.dumps([2, "stop", "StopTransaction", stop]))
                with pytest.raises(TimeoutError):
                    await peer.answer("stop", timeout=BLOCKED_FOR)
            answer = await peer.answer("stop", timeout=10)
            return answer, await stored_frames(server, charger["id"])

    answer, stored = run(scenario())
    assert answer[0] == 3
    assert stored == 1


def derived(server: LiveServer, charger_id: int) -> dict[str, Any]:
    """Everything the writer derives from a charger's frames: registers, latest values, rollups."""
    registers = rows(server, select(transactions.c.register_wh).where(transactions.c.charger_id == charger_id))
    latest = rows(server, select(meter_latest).where(meter_latest.c.charger_id == charger_id))
    rollups = rows(server, select(energy_rollups).where(energy_rollups.c.charger_id == charger_id))
    return {"registers": registers, "latest": latest, "rollups": rollups}


def test_a_replayed_meter_values_frame_is_stored_once_and_counts_once(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN "Durability": a frame identical to a stored one (charger, connector, timestamp, samples) is stored
    once; latest values, the register and the 15-minute rollups (R-96..R-98) do not count it twice."""
    charger = team_charger(api, account)

    async def send(frames: list[list[dict[str, Any]]], transaction_id: int | None) -> list[dict[str, Any]]:
        async with open_charger(server, charger["identity"]) as ws:
            peer = Raw(ws)
            await peer.result("BootNotification", BOOT)
            if transaction_id is None:
                transaction_id = int((await peer.result("StartTransaction", START))["transactionId"])
            answers = []
            for values in frames:
                payload = {"connectorId": 1, "transactionId": transaction_id, "meterValue": values}
                answers.append(await peer.result("MeterValues", payload))
            return [{"transactionId": transaction_id}, *answers]

    first = [[meter_value(10, 1500)], [meter_value(20, 2500)], [meter_value(25, 3000), meter_value(25, 3000)]]
    started, *answers = run(send(first, None))
    charger_id = charger_row(server, charger["identity"])["id"]
    before = derived(server, charger_id)
    # The charger got no answer for these (a crash, a dropped socket) and sends them again on a new socket,
    # in another order and with one frame repeated within a request.
    replay = [[meter_value(20, 2500)], [meter_value(10, 1500), meter_value(25, 3000)], [meter_value(20, 2500)]]
    _, *replayed = run(send(replay, int(started["transactionId"])))
    stored = frame_rows(server, charger_id)
    assert answers == replayed == [{}, {}, {}]
    assert len(stored) == 3
    assert asyncio.run(stored_frames(server, charger_id)) == 3
    assert before["registers"] == [{"register_wh": 3000}]
    assert sum(row["wh"] for row in before["rollups"]) == 3000 - 1500  # from the first reading on
    assert derived(server, charger_id) == before
    # Other samples at a stored moment are a new frame, not a replay: stored (R-95 for latest values).
    _, other = run(send([[meter_value(10, 1500, "8.0")]], int(started["transactionId"])))
    assert other == {} and len(frame_rows(server, charger_id)) == 4
    assert derived(server, charger_id)["rollups"] == before["rollups"]


def test_a_stop_replayed_after_its_commit_stores_the_transaction_data_it_lost(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN "Durability": the stop committed, then the process died before its transactionData did and before
    the answer: the charger's replay is answered as before (idempotent) and brings the readings, stored once."""
    charger = team_charger(api, account)

    async def start() -> int:
        async with open_charger(server, charger["identity"]) as ws:
            peer = Raw(ws)
            await peer.result("BootNotification", BOOT)
            return int((await peer.result("StartTransaction", START))["transactionId"])

    transaction_id = run(start())
    finish = {"meter_stop": 2000, "stopped_at": datetime(2025, 3, 31, 12, 30), "stop_reason": "Local"}

    async def committed_stop_only() -> None:  # what survived the crash: the stop's own transaction
        async with server.runtime.db.write() as conn:
            await store_transactions.stop_transaction(conn, ChargerId(charger["id"]), transaction_id, finish)

    server.run(committed_stop_only)
    stop = {
        "transactionId": transaction_id,
        "meterStop": 2000,
        "timestamp": "2025-03-31T12:30:00Z",
        "transactionData": [meter_value(30, 2000)],
    }

    async def replay() -> list[dict[str, Any]]:
        async with open_charger(server, charger["identity"]) as ws:
            peer = Raw(ws)
            await peer.result("BootNotification", BOOT)
            return [await peer.result("StopTransaction", stop) for _ in range(2)]

    answers = run(replay())
    [row] = rows(server, select(transactions).where(transactions.c.id == transaction_id))
    assert answers == [{}, {}]
    assert (row["status"], row["meter_stop"]) == ("finished", 2000)
    assert [f["transaction_id"] for f in frame_rows(server, charger["id"])] == [transaction_id]
