"""A charger that reconnects at once, and a second socket that replaces an open one (DESIGN: OCPP).

DESIGN: "A new socket for an identity that is already connected replaces the old one." Whether the
old socket is still open, closing, or already gone when the new one is accepted, the new socket
must work and the charger must stay online.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import Raw, get_charger, run, team_charger, wait_for, ws_url
from voltline.services.accounts import Account

RECONNECTS = 100
# The new socket's connect starts this soon after the old socket's close returned, in at least
# RECONNECTS_ON_TIME of the rounds (on a loaded machine another process may take the CPU in between).
RECONNECT_GAP_MAX = 0.001
RECONNECTS_ON_TIME = 95


async def connect_charger(server: LiveServer, identity: str) -> ClientConnection:
    """A raw OCPP 1.6 socket as the charger (closed by the caller)."""
    return await connect(ws_url(server, identity), subprotocols=["ocpp1.6"], compression=None)  # type: ignore[list-item]


async def works(ws: ClientConnection) -> str | None:
    """None when the socket answers a Heartbeat with a CALLRESULT; otherwise what went wrong."""
    try:
        answer = await Raw(ws).call("Heartbeat", {})
    except (ConnectionClosed, TimeoutError) as error:
        return f"closed ({error!r})"
    return None if answer[0] == 3 else f"answered {answer}"


def test_a_charger_that_reconnects_within_a_millisecond_keeps_every_new_socket(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: a new socket replaces the old one; the old one closing at the same moment must not take it along.

    Each round the charger connects, closes at once (its session is still being set up; every other
    round the TCP connection just drops) and connects again within a millisecond: the new socket
    answers a Heartbeat and the charger shows online.
    """
    charger = team_charger(api, account)

    async def scenario() -> tuple[list[str], list[float]]:
        failures: list[str] = []
        gaps: list[float] = []
        for attempt in range(RECONNECTS):
            old = await connect_charger(server, charger["identity"])
            if attempt % 2:
                old.transport.abort()  # the connection drops without a close frame
            else:
                await old.close()
            closed = time.perf_counter()
            connecting = connect_charger(server, charger["identity"])
            gaps.append(time.perf_counter() - closed)
            new = await connecting
            problem = await works(new)
            status = get_charger(api, account, charger["id"])["connection_status"]
            if problem is None and status != "online":
                problem = f"the charger shows {status}"
            if problem is not None:
                failures.append(f"reconnect {attempt}: {problem}")
            await new.close()
        return failures, gaps

    failures, gaps = run(scenario())
    assert failures == []
    assert sum(gap < RECONNECT_GAP_MAX for gap in gaps) >= RECONNECTS_ON_TIME, sorted(gaps)[-10:]
    wait_for(lambda: get_charger(api, account, charger["id"])["connection_status"] == "offline")


def test_a_socket_opened_while_the_old_one_is_open_replaces_it_every_time(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: replacement proper: the old socket is closed (1000), the new one works, the charger stays online."""
    charger = team_charger(api, account)

    async def scenario() -> None:
        old = await connect_charger(server, charger["identity"])
        assert await works(old) is None
        for _ in range(10):
            new = await connect_charger(server, charger["identity"])
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(5):
                    await old.recv()
            assert old.close_code == 1000
            assert await works(new) is None
            assert get_charger(api, account, charger["id"])["connection_status"] == "online"
            old = new
        await old.close()

    run(scenario())
    wait_for(lambda: get_charger(api, account, charger["id"])["connection_status"] == "offline")
