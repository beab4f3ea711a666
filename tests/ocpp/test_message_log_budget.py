"""The message log's rate budget per charger, and a flood of big frames (README: VOLTLINE_OCPP_LOG_BUDGET_*).

Each charger's log takes at most N rows and M payload bytes a minute; frames over the budget are
counted, not stored, with one warning per charger per minute. A flood of 250 KB frames therefore
neither grows the database beyond the budget nor the process beyond a stated bound.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable, Iterator

import psutil
import pytest

from tests.clocked import ClockedServer, SteppedClock
from tests.conftest import LiveServer, server_settings
from tests.ocpp.gateway_support import Raw, dedicated_server, log_rows, open_charger, run, team_charger

ROWS, BYTES = 10, 20_000
SPENT = "message log budget spent"
FLOOD_FRAMES = 2_000
FLOOD_FRAME_BYTES = 250_000  # under VOLTLINE_OCPP_MAX_FRAME_BYTES (256 KiB)
WARM_UP_FRAMES = 100
RSS_GROWTH_MAX = 32 * 1024 * 1024  # the bound this test states (the growth measured is under 2 MiB)


@pytest.fixture
def budgeted(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClockedServer]:
    """A server of its own on a SteppedClock with a small log budget: 10 rows and 20,000 bytes a minute."""
    settings = server_settings(
        fresh_database(server.backend),
        str(tmp_path_factory.mktemp("data")),
        ocpp_log_budget_rows=ROWS,
        ocpp_log_budget_bytes=BYTES,
    )
    live = ClockedServer(settings, server.backend, clock=SteppedClock())
    live.start()
    yield live
    live.stop()


def warnings_for(caplog: pytest.LogCaptureFixture, identity: str) -> int:
    """How many budget warnings the server logged for the charger."""
    return sum(1 for record in caplog.records if SPENT in record.getMessage() and identity in record.getMessage())


async def data_transfers(server: LiveServer, identity: str, count: int, size: int = 10) -> None:
    """The charger sends `count` DataTransfers of about `size` bytes, each answered."""
    async with open_charger(server, identity) as ws:
        cp = Raw(ws)
        for _ in range(count):
            assert (await cp.result("DataTransfer", {"vendorId": "ACME", "data": "d" * size}))["status"]


def test_a_chargers_log_keeps_at_most_its_rows_a_minute_and_warns_once(
    budgeted: ClockedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Over the row budget frames are counted, not stored, with one warning a minute; reconnecting does
    not renew the budget; the next minute (on the injectable clock) logs again."""
    caplog.set_level(logging.WARNING, logger="voltline.ocpp")
    account = budgeted.account()
    with budgeted.client(account) as api:
        charger = team_charger(api, account)
    identity = charger["identity"]
    run(data_transfers(budgeted, identity, 20))  # 40 rows' worth: a CALL and its CALLRESULT each
    assert len(log_rows(budgeted, charger["id"])) == ROWS
    run(data_transfers(budgeted, identity, 5))  # a new socket, the same minute
    assert len(log_rows(budgeted, charger["id"])) == ROWS
    assert warnings_for(caplog, identity) == 1
    assert budgeted.run(lambda: _refused(budgeted, charger["id"])) == 50 - ROWS

    budgeted.run(lambda: budgeted.clock.advance(60))
    run(data_transfers(budgeted, identity, 20))
    assert len(log_rows(budgeted, charger["id"])) == 2 * ROWS
    assert warnings_for(caplog, identity) == 2


async def _refused(server: LiveServer, charger_id: int) -> int:
    refused: int = server.app.app.state.gateway.log_budget.refused_in_window(charger_id)
    return refused


def test_a_chargers_log_keeps_at_most_its_bytes_a_minute(budgeted: ClockedServer) -> None:
    """The byte budget counts stored payloads: 5,000-byte DataTransfers stop being logged at 20,000 bytes,
    while another charger's budget is its own."""
    account = budgeted.account()
    with budgeted.client(account) as api:
        big, small = team_charger(api, account), team_charger(api, account)
    run(data_transfers(budgeted, big["identity"], 8, size=5_000))
    stored = log_rows(budgeted, big["id"])
    assert sum(len(row["payload"]) for row in stored) <= BYTES
    assert len([row for row in stored if row["message_type"] == 2]) == 3  # the 4th 5,000 bytes would not fit
    run(data_transfers(budgeted, small["identity"], 2))
    assert len(log_rows(budgeted, small["id"])) == 4


@pytest.mark.slow
def test_a_flood_of_250_kb_frames_stays_within_the_budget_and_the_memory_bound(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """2,000 frames of 250 KB on one socket (DataTransfers and CALLRESULTs for ids never sent), with the
    default budget (300 rows, 256 KiB a minute) and cap (8 KiB): the charger's log stays within the budget,
    and the server process (in this test process) grows less than 32 MiB after a warm-up."""
    with dedicated_server(fresh_database, tmp_path_factory, server.backend) as live:
        settings = live.runtime.settings
        account = live.account()
        with live.client(account) as api:
            charger = team_charger(api, account)
        blob = json.dumps("f" * FLOOD_FRAME_BYTES)

        async def flood(frames: int) -> None:
            async with open_charger(live, charger["identity"]) as ws:
                cp = Raw(ws)
                for n in range(frames // 2):
                    await ws.send(f'[2,"c{n}","DataTransfer",{{"vendorId":"ACME","data":{blob}}}]')
                    await ws.send(f'[3,"unknown-{n}",{{"data":{blob}}}]')
                    assert (await cp.answer(f"c{n}"))[0] == 3

        run(flood(WARM_UP_FRAMES))
        gc.collect()
        before = psutil.Process().memory_info().rss
        run(flood(FLOOD_FRAMES))
        gc.collect()
        growth = psutil.Process().memory_info().rss - before
        stored = log_rows(live, charger["id"])
        assert len(stored) <= settings.ocpp_log_budget_rows
        assert sum(len(row["payload"]) for row in stored) <= settings.ocpp_log_budget_bytes
        assert all(len(row["payload"]) <= settings.ocpp_log_max_payload for row in stored)
        assert growth < RSS_GROWTH_MAX, f"RSS grew {growth / 2**20:.1f} MiB"
