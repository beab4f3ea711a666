"""A charger's connection as a state machine (ocpp/connection.py): CONNECTING -> OPEN -> CLOSING -> CLOSED.

The connections observed are the live server's own, held in its gateway's registry; the chargers
are raw WebSocket peers.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import Raw, booted_charger, get_charger, run, team_charger, wait_for
from voltline.errors import ChargerOfflineError
from voltline.ocpp.connection import TRANSITIONS, Connection, State
from voltline.ocpp.v16.messages import GetConfigurationRequest
from voltline.services.accounts import Account


def held(server: LiveServer, identity: str) -> Connection:
    """The charger's connection in the server's registry (waits until it is registered)."""
    registry = server.app.app.state.gateway.registry
    wait_for(lambda: registry.get(identity) is not None)
    connection: Connection = registry.get(identity)
    return connection


def released(server: LiveServer, identity: str) -> bool:
    """True when the server's registry holds no connection of the charger."""
    return server.app.app.state.gateway.registry.get(identity) is None


def test_states_only_move_forward_and_closed_is_final() -> None:
    """RFC 6455 §4, §7 (python-websockets' Protocol): a connection never reopens, and CLOSED ends it."""
    order = list(State)
    assert order == [State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED]
    for state, targets in TRANSITIONS.items():
        assert all(order.index(target) > order.index(state) for target in targets), state
    assert TRANSITIONS[State.CLOSED] == frozenset()
    assert State.CLOSED in TRANSITIONS[State.CONNECTING] and State.CLOSED in TRANSITIONS[State.OPEN]


def test_a_connection_is_open_while_served_and_closed_after_a_clean_close(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """RFC 6455 §7.1.2: after the charger's close frame the connection is CLOSED and leaves the registry."""
    identity = team_charger(api, account)["identity"]

    async def scenario() -> Connection:
        async with booted_charger(server, identity) as ws:
            connection = await asyncio.to_thread(held, server, identity)
            assert connection.state is State.OPEN
            await Raw(ws).result("Heartbeat", {})
        return connection

    connection = run(scenario())
    wait_for(lambda: connection.state is State.CLOSED and released(server, identity))


def test_a_connection_whose_peer_drops_ends_closed_and_the_charger_offline(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """RFC 6455 §7.1.5 (closed without a close frame): CLOSED all the same, and the charger shows offline."""
    charger = team_charger(api, account)
    identity = charger["identity"]

    async def scenario() -> Connection:
        async with booted_charger(server, identity) as ws:
            connection = await asyncio.to_thread(held, server, identity)
            ws.transport.abort()
        return connection

    connection = run(scenario())
    wait_for(lambda: connection.state is State.CLOSED and released(server, identity))
    wait_for(lambda: get_charger(api, account, charger["id"])["connection_status"] == "offline")


def test_a_replaced_connection_ends_closed_and_its_successor_is_open(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: OCPP, a new socket replaces the old one: the old one is closed with 1000 and ends CLOSED."""
    charger = team_charger(api, account)
    identity = charger["identity"]

    async def scenario() -> tuple[Connection, Connection, int | None]:
        async with booted_charger(server, identity) as old:
            first = await asyncio.to_thread(held, server, identity)
            async with booted_charger(server, identity) as new:
                with pytest.raises(ConnectionClosed):
                    async with asyncio.timeout(5):
                        await old.recv()
                await asyncio.to_thread(wait_for, lambda: held(server, identity) is not first)
                second = held(server, identity)
                await Raw(new).result("Heartbeat", {})
                assert second.state is State.OPEN
                return first, second, old.close_code

    first, second, code = run(scenario())
    assert code == 1000
    wait_for(lambda: first.state is State.CLOSED)
    wait_for(lambda: second.state is State.CLOSED and released(server, identity))


def test_a_closing_connection_refuses_a_new_outbound_call(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """OCPP-J 1.6 §4.1.1: a connection being closed starts no CALL; the caller hears the charger is offline."""
    identity = team_charger(api, account)["identity"]

    async def close_then_call(connection: Connection) -> tuple[State, str]:
        await connection.replace()  # as the gateway does when a newer socket arrives
        state = connection.state
        try:
            await connection.call("GetConfiguration", GetConfigurationRequest(), 5)
        except ChargerOfflineError:
            return state, "offline"
        return state, "sent"

    async def scenario() -> tuple[State, str, list[object]]:
        async with booted_charger(server, identity) as ws:
            connection = await asyncio.to_thread(held, server, identity)
            state, outcome = await asyncio.to_thread(server.run, lambda: close_then_call(connection))
            frames: list[object] = []
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(5):
                    while True:
                        frames.append(json.loads(await ws.recv()))
            return state, outcome, frames

    state, outcome, frames = run(scenario())
    assert (state, outcome, frames) == (State.CLOSING, "offline", [])


def test_a_call_waiting_for_its_answer_fails_at_once_when_the_connection_is_replaced(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """OCPP-J 1.6 §4.1.1: the outstanding CALL dies with its connection; it does not wait out its timeout."""
    identity = team_charger(api, account)["identity"]

    async def scenario() -> BaseException | None:
        async with booted_charger(server, identity) as old:
            connection = await asyncio.to_thread(held, server, identity)
            assert server.loop is not None
            call = connection.call("GetConfiguration", GetConfigurationRequest(), 60)
            pending = asyncio.run_coroutine_threadsafe(call, server.loop)
            async with asyncio.timeout(5):
                frame = json.loads(await old.recv())
            assert frame[0] == 2 and frame[2] == "GetConfiguration", frame
            async with booted_charger(server, identity):
                return await asyncio.to_thread(pending.exception, 5)

    assert isinstance(run(scenario()), ChargerOfflineError)
