"""Fencing in the gateway (DESIGN "Cluster"): a control command of a lower lease epoch never reaches the charger.

A live server on the real NATS bus holds a charger's socket; the test sends commands to it from
a bus connection of its own, as another process would: with a higher or equal epoch (the new
holder's), a lower one (a paused old holder's), and none (a user's, through the API).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import connect

from tests.conftest import BACKENDS, NATS_URL, LiveServer, needs_nats
from tests.ocpp.gateway_support import dedicated_server, team_charger, ws_url
from voltline.bus import NatsBus
from voltline.errors import CommandFencedError
from voltline.services.commands import Commands
from voltline.services.lease import EPOCH_SUBJECT, encode_epoch

pytestmark = needs_nats


class ResetCounter(ChargePoint):  # type: ignore[misc]
    """Accepts every Reset and notes its type; answers once `release` is set (set from the start)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resets: list[str] = []
        self.release = asyncio.Event()
        self.release.set()

    @on(Action.reset)
    async def on_reset(self, **payload: Any) -> Any:
        self.resets.append(str(payload["type"]))
        await self.release.wait()
        return call_result.Reset(status="Accepted")


@pytest.fixture(params=BACKENDS)
def gateway(
    request: pytest.FixtureRequest, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server of its own on the NATS bus (a subject prefix of its own), smart charging off."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings = {"bus_url": NATS_URL, "bus_prefix": prefix, "smart_control": False}
    with dedicated_server(fresh_database, tmp_path_factory, request.param, **settings) as live:
        yield live


def charger_identity(gateway: LiveServer) -> str:
    """The identity of a charger of a new team on the server."""
    account = gateway.account()
    with gateway.client(account) as api:
        return str(team_charger(api, account)["identity"])


@asynccontextmanager
async def booted(gateway: LiveServer, identity: str) -> AsyncIterator[tuple[ResetCounter, NatsBus]]:
    """The charger booted on the server, and a bus connection of the test's own (as another process's)."""
    bus = NatsBus(NATS_URL, gateway.settings.bus_prefix)
    await bus.start()
    try:
        async with connect(ws_url(gateway, identity), subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            charger = ResetCounter(identity, ws, response_timeout=10)
            task = asyncio.create_task(charger.start())
            try:
                boot = call.BootNotification(charge_point_model="Fence", charge_point_vendor="test")
                assert (await charger.call(boot)).status == "Accepted"
                yield charger, bus
            finally:
                task.cancel()
    finally:
        await bus.close()


def test_a_lower_epoch_is_refused_and_equal_higher_or_none_reach_the_charger(gateway: LiveServer) -> None:
    """DESIGN "Cluster": a gateway refuses a command whose epoch is lower than the highest it has seen."""
    identity = charger_identity(gateway)
    own = gateway.app.app.state.gateway.fence  # the server's own lease took an epoch at start

    async def scenario() -> None:
        async with booted(gateway, identity) as (charger, bus):
            base = own.highest
            user = Commands(bus, 10)
            leader = user.fenced(base + 5, lambda _higher: None)
            assert (await leader.send(identity, "reset", {"type": "Hard"}))["status"] == "Accepted"
            assert (await leader.send(identity, "reset", {"type": "Hard"}))["status"] == "Accepted", "equal"
            stale: list[int] = []
            old = user.fenced(base + 4, stale.append)
            with pytest.raises(CommandFencedError):
                await old.send(identity, "reset", {"type": "Soft"})
            assert stale == [base + 5], "the old holder learns the epoch that beat it"
            assert (await user.send(identity, "reset", {"type": "Soft"}))["status"] == "Accepted", "a user's"
            await bus.publish(EPOCH_SUBJECT, encode_epoch(base + 9))  # a new holder announces itself
            for _ in range(200):
                if own.highest == base + 9:
                    break
                await asyncio.sleep(0.01)
            with pytest.raises(CommandFencedError):
                await leader.send(identity, "reset", {"type": "Hard"})
            assert charger.resets == ["Hard", "Hard", "Soft"], "no refused command reached the charger"
            assert b"\nvoltline_commands_fenced_total 2.0\n" in own.runtime.metrics.exposition()

    asyncio.run(scenario())


def test_a_command_waiting_for_its_turn_is_refused_when_a_newer_term_began_meanwhile(gateway: LiveServer) -> None:
    """DESIGN "Cluster": the epoch is checked again when a queued command's turn on the connection comes."""
    identity = charger_identity(gateway)
    own = gateway.app.app.state.gateway.fence

    async def scenario() -> None:
        async with booted(gateway, identity) as (charger, bus):
            epoch = own.highest + 1
            user = Commands(bus, 10)
            charger.release.clear()
            first = asyncio.create_task(user.send(identity, "reset", {"type": "Hard"}))  # holds the connection
            while charger.resets != ["Hard"]:
                await asyncio.sleep(0.01)
            queued = asyncio.create_task(
                user.fenced(epoch, lambda _higher: None).send(identity, "reset", {"type": "Soft"})
            )
            while own.highest != epoch:  # admitted on arrival: the highest epoch seen is its own
                await asyncio.sleep(0.01)
            await bus.publish(EPOCH_SUBJECT, encode_epoch(epoch + 1))
            while own.highest != epoch + 1:
                await asyncio.sleep(0.01)
            charger.release.set()
            assert (await first)["status"] == "Accepted"
            with pytest.raises(CommandFencedError):
                await queued
            assert charger.resets == ["Hard"], "the queued command of the older term never reached the charger"

    asyncio.run(scenario())
