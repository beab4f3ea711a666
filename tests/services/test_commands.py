"""The commands service over the in-memory bus (DESIGN: commands reach chargers only through the bus)."""

from __future__ import annotations

import asyncio

import pytest

from voltline.bus import MemoryBus
from voltline.errors import ChargerOfflineError, ChargerTimeoutError
from voltline.services.commands import (
    CommandFailedError,
    CommandRequest,
    Commands,
    command_subject,
    decode_request,
    encode_reply,
)


def test_a_command_reaches_the_responder_and_returns_the_chargers_answer() -> None:
    async def scenario() -> None:
        bus = MemoryBus()
        seen: list[CommandRequest] = []

        async def gateway(data: bytes) -> bytes:
            seen.append(decode_request(data))
            return encode_reply("ok", {"status": "Accepted"})

        await bus.respond(command_subject("CP1"), gateway)
        result = await Commands(bus, call_timeout=1).send("CP1", "remote_start", {"connector_id": 1, "id_tag": "T"})
        assert result == {"status": "Accepted"}
        assert seen == [("remote_start", {"connector_id": 1, "id_tag": "T"}, None)], "a user's command has no epoch"

    asyncio.run(scenario())


def test_no_responder_means_the_charger_is_offline() -> None:
    with pytest.raises(ChargerOfflineError):
        asyncio.run(Commands(MemoryBus(), call_timeout=1).send("nobody", "reset", {"type": "Soft"}))


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (encode_reply("offline"), ChargerOfflineError),
        (encode_reply("timeout"), ChargerTimeoutError),
        (encode_reply("error", code="NotSupported", description="no"), CommandFailedError),
    ],
)
def test_gateway_outcomes_become_errors(reply: bytes, error: type[Exception]) -> None:
    async def scenario() -> None:
        bus = MemoryBus()

        async def gateway(_data: bytes) -> bytes:
            return reply

        await bus.respond(command_subject("CP1"), gateway)
        await Commands(bus, call_timeout=1).send("CP1", "unlock", {"connector_id": 1})

    with pytest.raises(error):
        asyncio.run(scenario())


def test_a_responder_that_never_answers_times_out() -> None:
    async def scenario() -> None:
        bus = MemoryBus()

        async def silent(_data: bytes) -> bytes:
            await asyncio.sleep(3600)
            return b""

        await bus.respond(command_subject("CP1"), silent)
        await bus.request(command_subject("CP1"), b"{}", timeout=0.05)

    with pytest.raises(TimeoutError):
        asyncio.run(scenario())


def test_published_events_reach_every_listener() -> None:
    async def scenario() -> list[str]:
        bus = MemoryBus()
        got: list[str] = []

        async def listener(subject: str, data: bytes) -> None:
            got.append(f"{subject}:{data.decode()}")

        await bus.listen("site.1.events", listener)
        await bus.listen("site.1.events", listener)
        await bus.publish("site.1.events", b"start")
        await bus.close()
        return got

    assert asyncio.run(scenario()) == ["site.1.events:start", "site.1.events:start"]
