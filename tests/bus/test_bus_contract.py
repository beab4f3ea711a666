"""The bus contract (bus/memory.py, DESIGN "Cluster") held by the in-memory bus and by NATS alike.

NATS runs when `VOLTLINE_TEST_NATS_URL` names a server (`.ci/run` sets it and starts
`nats-server`); every test puts its subjects under a prefix of its own, and two `NatsBus`
objects on one prefix stand for two processes of one installation.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest

from tests.conftest import NATS_URL, needs_nats
from voltline.bus import Bus, MemoryBus, NatsBus, NoRespondersError, make_bus
from voltline.services.commands import command_subject, subject_token

KINDS = ["memory", pytest.param("nats", marks=needs_nats)]
Scenario = Callable[[Callable[[], Awaitable[Bus]]], Awaitable[None]]


def run(kind: str, scenario: Scenario) -> None:
    """Run the scenario with a factory of buses that share one installation (one prefix)."""

    async def main() -> None:
        prefix = f"test-{uuid.uuid4().hex[:12]}"
        shared = MemoryBus()
        made: list[Bus] = []

        async def new_bus() -> Bus:
            bus: Bus = shared if kind == "memory" else NatsBus(NATS_URL, prefix)
            await bus.start()
            made.append(bus)
            return bus

        try:
            await scenario(new_bus)
        finally:
            for bus in made:
                await bus.close()

    asyncio.run(main())


async def echo(data: bytes) -> bytes:
    """A responder that answers with what it got, marked."""
    return b"re:" + data


@pytest.mark.parametrize("kind", KINDS)
def test_a_request_is_answered_by_the_responder_of_its_subject(kind: str) -> None:
    """Request/reply reaches the one responder, across processes on NATS."""

    async def scenario(new_bus: Callable[[], Awaitable[Bus]]) -> None:
        gateway, api = await new_bus(), await new_bus()
        await gateway.respond("charger.A1.command", echo)
        assert await api.request("charger.A1.command", b"reset", 2) == b"re:reset"

    run(kind, scenario)


@pytest.mark.parametrize("kind", KINDS)
def test_a_request_nobody_answers_fails_at_once_with_no_responders(kind: str) -> None:
    """An offline charger: NoRespondersError, not a wait for the timeout."""

    async def scenario(new_bus: Callable[[], Awaitable[Bus]]) -> None:
        bus = await new_bus()
        with pytest.raises(NoRespondersError):
            await bus.request("charger.nobody.command", b"x", 30)

    run(kind, scenario)


@pytest.mark.parametrize("kind", KINDS)
def test_a_slow_responder_times_out_and_an_undone_one_is_gone(kind: str) -> None:
    """TimeoutError after the timeout; after unsubscribe the subject has no responder."""

    async def scenario(new_bus: Callable[[], Awaitable[Bus]]) -> None:
        bus = await new_bus()
        never = asyncio.Event()

        async def stuck(_data: bytes) -> bytes:
            await never.wait()
            return b""

        subscription = await bus.respond("charger.S.command", stuck)
        with pytest.raises(TimeoutError):
            await bus.request("charger.S.command", b"x", 0.2)
        await subscription.unsubscribe()
        never.set()
        with pytest.raises(NoRespondersError):
            await bus.request("charger.S.command", b"x", 2)

    run(kind, scenario)


@pytest.mark.parametrize("kind", KINDS)
def test_a_later_responder_replaces_an_earlier_one_and_requests_run_side_by_side(kind: str) -> None:
    """A charger's new socket takes over its subject; a slow command does not hold up the next one."""

    async def scenario(new_bus: Callable[[], Awaitable[Bus]]) -> None:
        bus = await new_bus()
        await bus.respond("charger.R.command", echo)
        release = asyncio.Event()

        async def newer(data: bytes) -> bytes:
            if data == b"slow":
                await release.wait()
            return b"newer:" + data

        await bus.respond("charger.R.command", newer)
        slow = asyncio.ensure_future(bus.request("charger.R.command", b"slow", 5))
        assert await bus.request("charger.R.command", b"fast", 5) == b"newer:fast"
        assert not slow.done()
        release.set()
        assert await slow == b"newer:slow"

    run(kind, scenario)


@pytest.mark.parametrize("kind", KINDS)
def test_every_listener_gets_each_event_and_a_queue_group_shares_them(kind: str) -> None:
    """Publish fans out; the members of one queue group take one copy of each event between them."""

    async def scenario(new_bus: Callable[[], Awaitable[Bus]]) -> None:
        dashboard, worker_a, worker_b, gateway = [await new_bus() for _ in range(4)]
        got: dict[str, list[tuple[str, bytes]]] = {"dashboard": [], "a": [], "b": []}

        def keep(name: str) -> Callable[[str, bytes], Awaitable[None]]:
            async def listener(subject: str, data: bytes) -> None:
                got[name].append((subject, data))

            return listener

        await dashboard.listen("smart.events", keep("dashboard"))
        await worker_a.listen("smart.events", keep("a"), queue="control")
        await worker_b.listen("smart.events", keep("b"), queue="control")
        sent = [f"event-{n}".encode() for n in range(20)]
        for data in sent:
            await gateway.publish("smart.events", data)
        for _ in range(200):
            if len(got["dashboard"]) == len(sent) and len(got["a"]) + len(got["b"]) == len(sent):
                break
            await asyncio.sleep(0.01)
        assert sorted(data for _, data in got["dashboard"]) == sorted(sent)
        assert {subject for subject, _ in got["dashboard"]} == {"smart.events"}
        assert sorted(data for _, data in got["a"] + got["b"]) == sorted(sent), "each event once in the group"
        if kind == "memory":
            assert got["a"] and got["b"], "the in-memory bus takes the members in turn"

    run(kind, scenario)


@pytest.mark.parametrize("kind", KINDS)
def test_an_identity_with_subject_characters_has_a_subject_of_its_own(kind: str) -> None:
    """Identities may hold `.` and `*` (DESIGN: identity rule); on NATS those would split or match subjects."""

    async def scenario(new_bus: Callable[[], Awaitable[Bus]]) -> None:
        bus = await new_bus()
        identities = ["CP.1", "CP*1", "CP%2E1", "a b", "CP1"]
        for identity in identities:

            async def answer(data: bytes, identity: str = identity) -> bytes:
                return identity.encode() + b":" + data

            await bus.respond(command_subject(identity), answer)
        for identity in identities:
            assert await bus.request(command_subject(identity), b"x", 2) == identity.encode() + b":x"

    run(kind, scenario)


def test_subject_tokens_are_one_to_one_and_safe() -> None:
    """Escaping never maps two identities to one token and leaves no separator or wildcard."""
    samples = ["CP.1", "CP*1", "CP%2E1", "CP%252E1", "a b", "CP1", "é", ">", "x.y.z"]
    tokens = [subject_token(s) for s in samples]
    assert len(set(tokens)) == len(samples)
    assert all(not set(token) & set(".*> \t") for token in tokens)
    assert subject_token("EVB-P1234567_8") == "EVB-P1234567_8"


def test_the_bus_url_picks_the_bus() -> None:
    """DESIGN "Cluster": unset is the in-memory bus of one process; nats:// is NATS under the prefix."""
    assert isinstance(make_bus(""), MemoryBus)
    bus = make_bus("nats://127.0.0.1:4222", "site-a")
    assert isinstance(bus, NatsBus) and bus.prefix == "site-a" and not bus.connected


def test_an_unreachable_nats_server_is_an_os_error_at_start() -> None:
    """`voltline serve` with a bus URL nobody listens on stops with one clear line, not a hang."""

    async def main() -> None:
        bus = NatsBus("nats://127.0.0.1:9", "x")
        with pytest.raises(OSError, match="cannot reach the NATS server"):
            await bus.start()

    asyncio.run(main())
